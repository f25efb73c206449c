#include "fake_s3.h"

#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "reelq/storage/s3_errors.h"
#include "reelq/storage/sha256.h"

namespace reelq::storage::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

namespace {

std::string Decode(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size()) {
      out.push_back(static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

std::string ErrorXml(const std::string& code, const std::string& message) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" + code + "</Code><Message>" +
         message + "</Message><RequestId>fake</RequestId></Error>";
}

}  // namespace

int FakeRequest::PartNumber() const {
  auto it = query.find("partNumber");
  return it == query.end() ? 0 : std::stoi(it->second);
}

FaultAction FaultAction::Respond(int status, std::string code, std::string message) {
  return {.kind = kRespond, .status = status, .body = ErrorXml(code, message)};
}

FaultAction FaultAction::RespondBare(int status,
                                     std::vector<std::pair<std::string, std::string>> headers) {
  return {.kind = kRespond, .status = status, .headers = std::move(headers)};
}

FakeS3::FakeS3(std::string upstream)
    : upstream_(std::move(upstream)),
      acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
  port_ = acceptor_.local_endpoint().port();
  accept_thread_ = std::thread([this] { Accept(); });
}

FakeS3::~FakeS3() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
  }
  // Wake the blocking accept.
  try {
    tcp::socket s(io_);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port_)));
  } catch (...) {
  }
  accept_thread_.join();
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    threads.swap(connections_);
  }
  for (auto& t : threads) t.join();
}

void FakeS3::SetFault(std::function<FaultAction(const FakeRequest&)> fault) {
  std::lock_guard lock(mu_);
  fault_ = std::move(fault);
}

std::vector<std::string> FakeS3::Log() {
  std::lock_guard lock(mu_);
  return log_;
}

std::optional<FakeObject> FakeS3::Object(const std::string& path) {
  std::lock_guard lock(mu_);
  auto it = objects_.find(path);
  if (it == objects_.end()) return std::nullopt;
  return it->second;
}

size_t FakeS3::OpenUploads() {
  std::lock_guard lock(mu_);
  return uploads_.size();
}

void FakeS3::Accept() {
  for (;;) {
    tcp::socket socket(io_);
    boost::system::error_code ec;
    acceptor_.accept(socket, ec);
    std::lock_guard lock(mu_);
    if (stopping_) return;
    if (ec) continue;
    open_fds_.push_back(socket.native_handle());
    connections_.emplace_back([this, s = std::move(socket)]() mutable { Serve(std::move(s)); });
  }
}

void FakeS3::Serve(tcp::socket socket) {
  beast::flat_buffer buffer;
  for (;;) {
    boost::system::error_code ec;
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(1ull << 30);
    bhttp::read_header(socket, buffer, parser, ec);
    if (ec) return;
    FakeRequest req;
    const auto& head = parser.get();
    req.method = std::string(head.method_string());
    req.target = std::string(head.target());
    for (const auto& f : head) {
      std::string name(f.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      req.headers[name] = std::string(f.value());
    }
    auto q = req.target.find('?');
    req.path = Decode(req.target.substr(0, q));
    if (q != std::string::npos) {
      std::string_view rest = std::string_view(req.target).substr(q + 1);
      while (!rest.empty()) {
        auto amp = rest.find('&');
        auto pair = rest.substr(0, amp);
        auto eq = pair.find('=');
        req.query[Decode(pair.substr(0, eq))] =
            eq == std::string_view::npos ? "" : Decode(pair.substr(eq + 1));
        rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
      }
    }
    FaultAction action;
    {
      std::lock_guard lock(mu_);
      req.index = ++requests_;
      log_.push_back(req.method + " " + req.target);
      if (fault_) action = fault_(req);
    }
    if (action.kind == FaultAction::kCloseMidBody) {
      // Read a little of the body (if any), then drop the connection.
      char scratch[4096];
      socket.read_some(asio::buffer(scratch), ec);
      socket.close(ec);
      return;
    }
    bhttp::read(socket, buffer, parser, ec);
    if (ec) return;
    auto request = parser.release();
    bhttp::response<bhttp::string_body> res;
    res.version(11);
    res.keep_alive(request.keep_alive());

    if (action.kind == FaultAction::kRespond) {
      res.result(action.status);
      if (!action.body.empty()) res.set(bhttp::field::content_type, "application/xml");
      for (const auto& [name, value] : action.headers) res.set(name, value);
      if (req.method != "HEAD") res.body() = action.body;
    } else if (!upstream_.empty()) {
      // Forward as is (the signature covers the Host header, which stays ours).
      tcp::socket up(io_);
      auto colon = upstream_.rfind(':');
      up.connect(tcp::endpoint(asio::ip::make_address(upstream_.substr(0, colon)),
                               static_cast<uint16_t>(std::stoi(upstream_.substr(colon + 1)))),
                 ec);
      if (ec) return;
      request.keep_alive(false);
      bhttp::write(up, request, ec);
      beast::flat_buffer ub;
      bhttp::response_parser<bhttp::string_body> rp;
      rp.body_limit(1ull << 30);
      if (req.method == "HEAD") rp.skip(true);
      bhttp::read(up, ub, rp, ec);
      if (ec) return;
      auto upstream_res = rp.release();
      upstream_res.keep_alive(request.keep_alive());
      bhttp::write(socket, upstream_res, ec);
      if (ec || !request.keep_alive()) return;
      continue;
    } else {
      std::lock_guard lock(mu_);
      const std::string& m = req.method;
      auto etag_of = [](const std::string& s) { return "\"" + Sha256Hex(s).substr(0, 32) + "\""; };
      auto fill_meta = [&](FakeObject& o) {
        o.content_type = req.headers["content-type"];
        for (const auto& [k, v] : req.headers) {
          if (k.starts_with("x-amz-meta-")) o.metadata[k.substr(11)] = v;
        }
      };
      const bool exists = objects_.contains(req.path);
      const bool if_none_match = req.headers["if-none-match"] == "*";
      if (m == "PUT" && req.query.contains("uploadId")) {
        auto it = uploads_.find(req.query["uploadId"]);
        if (it == uploads_.end()) {
          res.result(404);
          res.body() = ErrorXml("NoSuchUpload", "no such upload");
        } else {
          it->second.parts[req.PartNumber()] = request.body();
          res.result(200);
          res.set(bhttp::field::etag, etag_of(request.body()));
        }
      } else if (m == "PUT") {
        if (if_none_match && exists) {
          res.result(412);
          res.body() = ErrorXml("PreconditionFailed", "exists");
        } else {
          FakeObject o{.content = request.body()};
          fill_meta(o);
          objects_[req.path] = o;
          res.result(200);
          res.set(bhttp::field::etag, etag_of(o.content));
        }
      } else if (m == "POST" && req.query.contains("uploads")) {
        std::string id = "upload-" + std::to_string(next_upload_++);
        Upload u{.path = req.path};
        fill_meta(u.meta);
        uploads_[id] = u;
        res.result(200);
        res.body() = "<InitiateMultipartUploadResult><UploadId>" + id +
                     "</UploadId></InitiateMultipartUploadResult>";
      } else if (m == "POST" && req.query.contains("uploadId")) {
        auto it = uploads_.find(req.query["uploadId"]);
        if (it == uploads_.end()) {
          res.result(404);
          res.body() = ErrorXml("NoSuchUpload", "no such upload");
        } else if (if_none_match && exists) {
          res.result(412);
          res.body() = ErrorXml("PreconditionFailed", "exists");
        } else {
          FakeObject o = it->second.meta;
          // Every part listed in the request must be there with the ETag we gave it.
          bool ok = true;
          std::string_view xml = request.body();
          int expected = 1;
          size_t pos = 0;
          while ((pos = xml.find("<Part>", pos)) != std::string_view::npos) {
            auto part_xml = xml.substr(pos, xml.find("</Part>", pos) - pos);
            int n = std::stoi(s3::XmlText(part_xml, "PartNumber").value_or("0"));
            auto pit = it->second.parts.find(n);
            if (n != expected++ || pit == it->second.parts.end() ||
                s3::XmlText(part_xml, "ETag").value_or("") != etag_of(pit->second)) {
              ok = false;
              break;
            }
            o.content += pit->second;
            pos += 6;
          }
          if (!ok || expected == 1) {
            res.result(400);
            res.body() = ErrorXml("InvalidPart", "bad part list");
          } else {
            objects_[req.path] = o;
            uploads_.erase(it);
            res.result(200);
            res.body() = "<CompleteMultipartUploadResult><ETag>&quot;" +
                         Sha256Hex(o.content).substr(0, 32) +
                         "-n&quot;</ETag></CompleteMultipartUploadResult>";
          }
        }
      } else if (m == "DELETE" && req.query.contains("uploadId")) {
        uploads_.erase(req.query["uploadId"]);
        res.result(204);
      } else if (m == "DELETE") {
        objects_.erase(req.path);
        res.result(204);
      } else if (m == "HEAD" || m == "GET") {
        auto it = objects_.find(req.path);
        if (it == objects_.end()) {
          res.result(404);
          if (m == "GET") res.body() = ErrorXml("NoSuchKey", "no such key");
        } else {
          res.result(200);
          res.set(bhttp::field::etag, etag_of(it->second.content));
          res.set(bhttp::field::content_type, it->second.content_type);
          for (const auto& [k, v] : it->second.metadata) res.set("x-amz-meta-" + k, v);
          if (m == "GET")
            res.body() = it->second.content;
          else
            res.content_length(it->second.content.size());
        }
      } else {
        res.result(400);
        res.body() = ErrorXml("InvalidRequest", "the fake does not do " + m);
      }
    }
    if (action.kind == FaultAction::kLoseAnswer) {
      socket.close(ec);
      return;
    }
    if (req.method != "HEAD" || res.result_int() != 200) res.prepare_payload();
    bhttp::write(socket, res, ec);
    if (ec || !res.keep_alive()) return;
  }
}

}  // namespace reelq::storage::testing
