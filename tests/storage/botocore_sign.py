#!/usr/bin/env python3
"""Signs the requests in a JSON file with botocore, the independent SigV4 implementation that
tests/storage/sigv4_botocore_test.cpp compares reelq's signer against.

usage: botocore_sign.py CASES.json OUT.json      (exit 3 when botocore is not installed)

Each case: {kind: "header"|"presign", s3: bool, method, host, key (S3: the raw object key,
encoded here with botocore's own percent_encode) or path (generic: the wire path), query:
[[name, value]...] (decoded), headers: [[name, value]...], body, access_key, secret_key,
session_token, region, service, amz_date, expires}.
Each result: {path, signature, authorization (header signing) or url (presigning),
canonical_request}.
"""
import json
import sys

try:
    from botocore import auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from botocore.utils import percent_encode
except ImportError:  # pragma: no cover
    sys.exit(3)


def sign(case):
    creds = Credentials(case["access_key"], case["secret_key"], case.get("session_token") or None)
    if case["s3"]:
        path = "/" + percent_encode(case["key"], safe="/~")
    else:
        path = case["path"]
    url = "https://" + case["host"] + path
    request = AWSRequest(method=case["method"], url=url, data=case["body"].encode("utf-8"))
    for name, value in case["headers"]:
        request.headers[name] = value  # email.message semantics: a repeated name is appended
    if case["kind"] == "header":
        request.params = [tuple(p) for p in case["query"]]
        cls = auth.S3SigV4Auth if case["s3"] else auth.SigV4Auth
        signer = cls(creds, case["service"], case["region"])
    else:
        request.params = {p[0]: p[1] for p in case["query"]}
        cls = auth.S3SigV4QueryAuth if case["s3"] else auth.SigV4QueryAuth
        signer = cls(creds, case["service"], case["region"], expires=case["expires"])
    # add_auth() with a fixed timestamp instead of utcnow().
    request.context["timestamp"] = case["amz_date"]
    signer._modify_request_before_signing(request)
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    signer._inject_signature_to_request(request, signature)
    out = {"path": path, "signature": signature, "canonical_request": canonical}
    if case["kind"] == "header":
        out["authorization"] = request.headers["Authorization"]
    else:
        out["url"] = request.url
    return out


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = json.load(f)
    results = [sign(c) for c in cases]
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(results, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
