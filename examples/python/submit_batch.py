#!/usr/bin/env python3
"""Submits a batch to a reelq scheduler and watches it to the end.

    PYTHONPATH=build/clients/python python3 examples/python/submit_batch.py \
        --target 127.0.0.1:50051 --count 100 --model kling-3.0 --duration 5

Prompts come from --prompts (a text file, one prompt per line; or JSONL lines with a "prompt"
key), or are made up ("clip <n>: ...") when it is not given; --count caps how many are sent.
Exits 0 when every job SUCCEEDED, 1 when some did not, 2 on a usage or connection error.
"""

import argparse
import itertools
import json
import os
import sys
import time

import grpc

from reelq import Client, job_spec
from reelq.v1 import jobs_pb2


def read_prompts(path):
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line:
                continue
            if line.startswith("{"):
                try:
                    yield json.loads(line)["prompt"]
                except (ValueError, KeyError) as error:
                    raise SystemExit(f"{path}:{number}: not a JSON object with a prompt ({error})")
            else:
                yield line


def made_up_prompts():
    for n in itertools.count():
        yield f"clip {n}: a paper boat drifting down a rainy street, golden hour"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", default="127.0.0.1:50051", help="scheduler host:port")
    parser.add_argument("--token", default=os.environ.get("REELQ_TOKEN"),
                        help="API token (default: $REELQ_TOKEN); sent as a bearer token")
    parser.add_argument("--tls", action="store_true", help="connect with TLS")
    parser.add_argument("--ca", help="PEM file of the CA that signed the scheduler's certificate")
    parser.add_argument("--prompts", help="prompt file (text or JSONL)")
    parser.add_argument("--count", type=int, default=100, help="at most this many jobs")
    parser.add_argument("--model", action="append", default=[],
                        help="model id (repeat for several; default: auto)")
    parser.add_argument("--duration", type=int, default=5, help="clip seconds")
    parser.add_argument("--batch-id", help="batch id (default: a new one)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to watch at most")
    args = parser.parse_args()
    if args.count <= 0:
        parser.error("--count must be positive")

    prompts = read_prompts(args.prompts) if args.prompts else made_up_prompts()
    # A generator: submit_batch reads it as the stream can take it.
    specs = (job_spec(prompt, models=args.model or ["auto"], duration_seconds=args.duration)
             for prompt in itertools.islice(prompts, args.count))
    root = None
    if args.ca:
        with open(args.ca, "rb") as ca:
            root = ca.read()
    started = time.monotonic()
    try:
        with Client(args.target, token=args.token, tls=args.tls or bool(root),
                    root_certificates=root) as client:
            return submit_and_watch(client, specs, args, started)
    except grpc.RpcError as error:
        print(f"reelq: {error.code().name}: {error.details()}", file=sys.stderr)
        return 2


def submit_and_watch(client, specs, args, started):
    batch = client.submit_batch(specs, batch_id=args.batch_id)
    print(f"batch {batch.batch_id}: {batch.accepted} accepted ({batch.duplicates} already known), "
          f"{len(batch.errors)} refused in {time.monotonic() - started:.1f} s", flush=True)
    for index, (code, message) in sorted(batch.errors.items()):
        print(f"  item {index} refused (code {code}): {message}")
    if batch.accepted == 0:
        return 1
    last_print = 0.0
    for event in client.watch_batch(batch.batch_id, timeout=args.timeout):
        p = event.batch
        done = p.succeeded + p.failed + p.cancelled
        now = time.monotonic()
        if now - last_print >= 1 or (p.total and done == p.total):
            print(f"  {done}/{p.total} done: {p.succeeded} succeeded, {p.failed} failed, "
                  f"{p.cancelled} cancelled, {p.running} running, {p.pending} pending", flush=True)
            last_print = now
    final = client.get_batch(batch.batch_id)
    print(f"batch {final.batch_id}: {final.succeeded}/{final.total} succeeded, {final.failed} "
          f"failed, {final.cancelled} cancelled in {time.monotonic() - started:.1f} s")
    if final.failed or final.cancelled:
        for job_id in filter(None, batch.job_ids):
            status = client.get(job_id)
            if status.state != jobs_pb2.JOB_STATE_SUCCEEDED:
                print(f"  {job_id}: {jobs_pb2.JobState.Name(status.state)} {status.error.message}")
    all_good = not batch.errors and final.succeeded == final.total == batch.accepted
    return 0 if all_good else 1


if __name__ == "__main__":
    sys.exit(main())
