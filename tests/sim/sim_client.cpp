#include "sim_client.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdio>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "reelq/common/asio.h"

namespace reelq::simtest {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::string B64Url(const std::string& in) {
  static constexpr char kA[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kA[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(kA[(acc << (6 - bits)) & 63]);
  return out;
}

}  // namespace

HttpResult Http(int port, const std::string& method, const std::string& target,
                const std::string& body, const std::map<std::string, std::string>& headers,
                std::chrono::milliseconds timeout) {
  HttpResult result;
  asio::io_context io;
  beast::tcp_stream stream(io);
  stream.expires_after(timeout);
  beast::error_code ec;
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)),
                 ec);
  if (ec) {
    result.error = "connect: " + ec.message();
    return result;
  }
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  for (const auto& [k, v] : headers) req.set(k, v);
  if (!body.empty()) {
    // JSON unless the test names another type (Sora's multipart upload).
    if (req[http::field::content_type].empty())
      req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  // Async ops so the tcp_stream deadline applies to every step.
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  bool header_done = false;
  http::async_write(stream, req, [&](beast::error_code wec, size_t) {
    if (wec) {
      ec = wec;
      return;
    }
    http::async_read_header(stream, buffer, parser, [&](beast::error_code hec, size_t) {
      if (hec) {
        ec = hec;
        return;
      }
      header_done = true;
      http::async_read(stream, buffer, parser, [&](beast::error_code rec, size_t) { ec = rec; });
    });
  });
  io.run();
  if (header_done) {
    const auto& res = parser.get();
    result.status = static_cast<int>(res.result_int());
    for (const auto& f : res) {
      std::string name(f.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      result.headers[name] = std::string(f.value());
    }
    result.body = res.body();
  }
  if (ec) result.error = ec.message();
  return result;
}

HttpResult GetUrl(const std::string& url, const std::map<std::string, std::string>& headers,
                  std::chrono::milliseconds timeout) {
  const std::string prefix = "http://127.0.0.1:";
  if (url.rfind(prefix, 0) != 0) return {.error = "not a loopback URL: " + url};
  const auto slash = url.find('/', prefix.size());
  const int port = std::stoi(url.substr(prefix.size(), slash - prefix.size()));
  return Http(port, "GET", url.substr(slash), "", headers, timeout);
}

std::string KlingJwt(const std::string& ak, const std::string& sk, int exp_in, int nbf_in) {
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  const std::string header = B64Url(R"({"alg":"HS256","typ":"JWT"})");
  const std::string payload =
      B64Url(nlohmann::json{{"iss", ak}, {"exp", now + exp_in}, {"nbf", now + nbf_in}}.dump());
  const std::string input = header + "." + payload;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), sk.data(), static_cast<int>(sk.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return input + "." + B64Url(std::string(reinterpret_cast<char*>(mac), len));
}

std::optional<Probe> FfProbe(const std::filesystem::path& file) {
  if (testing::RunCommand({"ffprobe", "-version"}).exit_code != 0) return std::nullopt;
  const std::string out =
      testing::RunCommand({"ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                           "format=duration:stream=width,height,display_aspect_ratio", "-of",
                           "json", file.string()})
          .output;
  auto doc = nlohmann::json::parse(out, nullptr, false);
  Probe p;
  if (doc.is_discarded() || !doc.contains("streams") || doc["streams"].empty()) return p;
  p.duration = std::stod(doc["format"].value("duration", "0"));
  p.width = doc["streams"][0].value("width", 0);
  p.height = doc["streams"][0].value("height", 0);
  p.display_aspect_ratio = doc["streams"][0].value("display_aspect_ratio", "");
  return p;
}

SimProcess::SimProcess(std::vector<std::string> extra_args) {
  const auto port_file = dir_.path() / "port";
  std::vector<std::string> argv = {testing::BuildPath("providers/sim/reelq-provider-sim").string(),
                                   "--listen",
                                   "127.0.0.1:0",
                                   "--port-file",
                                   port_file.string(),
                                   "--media-dir",
                                   (dir_.path() / "media").string()};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  process_ = testing::ChildProcess::Start(argv, {}, dir_.path() / "sim.log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string text = testing::ReadFile(port_file);
    if (!text.empty()) {
      port_ = std::stoi(text);
      break;
    }
    if (!process_.running()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (port_ == 0) {
    ADD_FAILURE() << "simulator did not start; log:\n"
                  << testing::ReadFile(dir_.path() / "sim.log");
  }
}

nlohmann::json SimProcess::Stats() const {
  auto r = Http(port_, "GET", "/_sim/stats");
  EXPECT_EQ(r.status, 200) << r.error << r.body;
  return r.Json();
}

void SimProcess::Control(const nlohmann::json& config) const {
  auto r = Http(port_, "POST", "/_sim/config", config.dump());
  ASSERT_EQ(r.status, 200) << r.error << r.body;
}

}  // namespace reelq::simtest
