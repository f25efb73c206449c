// The signer against an independent implementation: a few hundred randomised requests are
// signed here and by botocore (tests/storage/botocore_sign.py), and must agree byte for byte.

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "process.h"
#include "reelq/storage/sigv4.h"

namespace reelq::storage::sigv4 {
namespace {

using nlohmann::json;

constexpr int kCases = 400;

class Gen {
 public:
  explicit Gen(uint32_t seed) : rng_(seed) {}
  size_t Below(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  bool Chance(int percent) { return static_cast<int>(Below(100)) < percent; }
  template <class T>
  const T& Pick(const std::vector<T>& v) {
    return v[Below(v.size())];
  }

  // Unicode, reserved characters and plain ones, as object keys and query strings contain.
  std::string Text(size_t max_len, bool allow_slash) {
    static const std::vector<std::string> kAtoms = {"a",
                                                    "Z",
                                                    "0",
                                                    "9",
                                                    "-",
                                                    "_",
                                                    ".",
                                                    "~",
                                                    " ",
                                                    "!",
                                                    "*",
                                                    "'",
                                                    "(",
                                                    ")",
                                                    ";",
                                                    ":",
                                                    "@",
                                                    "&",
                                                    "=",
                                                    "+",
                                                    "$",
                                                    ",",
                                                    "?",
                                                    "#",
                                                    "[",
                                                    "]",
                                                    "%",
                                                    "\"",
                                                    "<",
                                                    ">",
                                                    "{",
                                                    "}",
                                                    "|",
                                                    "^",
                                                    "`",
                                                    "\\",
                                                    "\xc3\xa9",
                                                    "\xe6\x97\xa5\xe6\x9c\xac",
                                                    "\xf0\x9f\x8e\xac",
                                                    "clip",
                                                    "mp4"};
    std::string out;
    size_t len = Below(max_len) + 1;
    for (size_t i = 0; i < len; ++i) {
      if (allow_slash && Chance(10)) {
        out += "/";
      } else {
        out += Pick(kAtoms);
      }
    }
    return out;
  }

  // Header values: printable ASCII with runs of spaces and tabs to collapse.
  std::string HeaderValue() {
    std::string out;
    if (Chance(30)) out += "  ";
    size_t len = Below(20) + 1;
    for (size_t i = 0; i < len; ++i) {
      if (Chance(10)) {
        out += Chance(50) ? "   " : " \t ";
      } else {
        out.push_back(static_cast<char>('!' + Below(94)));
      }
    }
    if (Chance(30)) out += " \t";
    return out;
  }

 private:
  std::mt19937 rng_;
};

struct Case {
  json input;
  Request request;
  Credentials creds;
};

Case MakeCase(Gen& g) {
  Case c;
  const bool presign = g.Chance(35);
  const bool s3 = g.Chance(80);
  static const std::vector<std::string> kMethods = {"GET", "PUT", "POST", "DELETE", "HEAD"};
  static const std::vector<std::string> kRegions = {"us-east-1", "eu-west-3", "auto",
                                                    "ap-southeast-2"};
  static const std::vector<std::string> kDates = {"20130524T000000Z", "20240229T235959Z",
                                                  "20261125T011500Z"};
  static const std::vector<std::string> kHosts = {"examplebucket.s3.amazonaws.com",
                                                  "s3.eu-west-3.amazonaws.com", "127.0.0.1:9000",
                                                  "minio.internal:443"};
  static const std::vector<std::string> kHeaderNames = {
      "Content-Type",        "x-amz-meta-prompt",   "X-Amz-Meta-Model", "Range",   "If-None-Match",
      "x-amz-storage-class", "Content-Disposition", "content-md5",      "X-Custom"};
  static const std::vector<std::string> kPathAtoms = {"a",   "b-c",    ".",  "..",    "",
                                                      "%20", "%C3%A9", "~x", "seg_1", "A.B"};

  c.creds.access_key =
      g.Chance(50) ? "AKIAIOSFODNN7EXAMPLE" : "AKID" + std::to_string(g.Below(1e6));
  c.creds.secret_key = g.Chance(50) ? "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
                                    : "s3cr3t+/=" + std::to_string(g.Below(1e9));
  if (g.Chance(25)) c.creds.session_token = "FwoG/tok+en=" + std::to_string(g.Below(1e9));

  Request& r = c.request;
  r.s3 = s3;
  r.method = g.Pick(kMethods);
  const std::string host = g.Pick(kHosts);
  std::string key;
  if (s3) {
    key = g.Text(12, true);
    r.path = "/" + UriEncode(key, /*encode_slash=*/false);
  } else {
    r.path = "";
    size_t segs = g.Below(5) + 1;
    for (size_t i = 0; i < segs; ++i) r.path += "/" + g.Pick(kPathAtoms);
    if (g.Chance(20)) r.path += "/";
  }
  std::set<std::string> query_names;
  size_t nq = g.Below(5);
  for (size_t i = 0; i < nq; ++i) {
    std::string name = g.Chance(20) ? "uploadId" : g.Text(6, false);
    // A presigned URL's parameters are a dict in botocore: names stay unique there.
    if (presign && !query_names.insert(name).second) continue;
    r.query.emplace_back(name, g.Chance(20) ? "" : g.Text(8, true));
  }
  r.headers.emplace_back(g.Chance(50) ? "Host" : "host", host);
  size_t nh = g.Below(5);
  for (size_t i = 0; i < nh; ++i) r.headers.emplace_back(g.Pick(kHeaderNames), g.HeaderValue());
  std::string body;
  if (!presign && g.Chance(60)) body = g.Text(40, true);
  r.payload_hash = Sha256Hex(body);

  const std::string region = g.Pick(kRegions);
  const std::string service = s3 ? "s3" : (g.Chance(50) ? "service" : "execute-api");
  const int expires = static_cast<int>(g.Below(604800)) + 1;
  json headers = json::array();
  for (const auto& [n, v] : r.headers) headers.push_back({n, v});
  json query = json::array();
  for (const auto& [n, v] : r.query) query.push_back({n, v});
  c.input = {{"kind", presign ? "presign" : "header"},
             {"s3", s3},
             {"method", r.method},
             {"host", host},
             {"key", key},
             {"path", r.path},
             {"query", query},
             {"headers", headers},
             {"body", body},
             {"access_key", c.creds.access_key},
             {"secret_key", c.creds.secret_key},
             {"session_token", c.creds.session_token},
             {"region", region},
             {"service", service},
             {"amz_date", g.Pick(kDates)},
             {"expires", expires}};
  return c;
}

std::multiset<std::string> QueryParts(std::string_view query) {
  std::multiset<std::string> parts;
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    parts.emplace(query.substr(pos, amp - pos));
    pos = amp + 1;
  }
  return parts;
}

TEST(SigV4Botocore, RandomisedRequestsMatchByteForByte) {
  if (reelq::testing::RunCommand({"python3", "-c", "import botocore"}).exit_code != 0) {
    GTEST_SKIP() << "python3-botocore is not installed (apt-get install python3-botocore): "
                    "cannot compare the signer with botocore";
  }
  reelq::testing::TempDir dir;
  Gen gen(20261125);
  std::vector<Case> cases;
  json input = json::array();
  for (int i = 0; i < kCases; ++i) {
    cases.push_back(MakeCase(gen));
    input.push_back(cases.back().input);
  }
  const auto in_path = dir.path() / "cases.json";
  const auto out_path = dir.path() / "signed.json";
  std::ofstream(in_path) << input.dump();
  const auto script = reelq::testing::SourcePath("tests/storage/botocore_sign.py");
  const auto signer =
      reelq::testing::RunCommand({"python3", script.string(), in_path.string(), out_path.string()});
  ASSERT_EQ(signer.exit_code, 0) << signer.output;
  json results = json::parse(reelq::testing::ReadFile(out_path));
  ASSERT_EQ(results.size(), cases.size());

  int headers_checked = 0, presigned_checked = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    const json& want = results[i];
    const std::string region = c.input["region"], service = c.input["service"];
    const std::string date = c.input["amz_date"];
    SCOPED_TRACE("case " + std::to_string(i) + ": " + c.input.dump());
    ASSERT_EQ(c.request.path, want["path"].get<std::string>());
    if (c.input["kind"] == "header") {
      auto s = SignHeaders(c.request, c.creds, region, service, date);
      EXPECT_EQ(s.canonical_request, want["canonical_request"].get<std::string>());
      EXPECT_EQ(s.signature, want["signature"].get<std::string>());
      EXPECT_EQ(s.authorization, want["authorization"].get<std::string>());
      ++headers_checked;
    } else {
      auto p = Presign(c.request, c.creds, region, service, date,
                       std::chrono::seconds(c.input["expires"].get<int>()));
      EXPECT_EQ(p.canonical_request, want["canonical_request"].get<std::string>());
      EXPECT_EQ(p.signature, want["signature"].get<std::string>());
      // Same parameters (botocore orders them differently; the order carries no meaning).
      std::string url = want["url"];
      EXPECT_EQ(QueryParts(p.query), QueryParts(url.substr(url.find('?') + 1)));
      ++presigned_checked;
    }
    if (::testing::Test::HasFailure()) break;  // one readable failure, not four hundred
  }
  EXPECT_GT(headers_checked, 100);
  EXPECT_GT(presigned_checked, 50);
}

}  // namespace
}  // namespace reelq::storage::sigv4
