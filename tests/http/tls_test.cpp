// TLS against a real local server with a throw-away self-signed certificate: the client must
// verify the certificate chain and the host name, and talk HTTP over it when they check out.
#include <gtest/gtest.h>

#include <cstdlib>
#include <mutex>
#include <optional>
#include <thread>

#include <openssl/ssl.h>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "process.h"
#include "reelq/common/http_client.h"

namespace reelq::http {
namespace {

namespace ssl = asio::ssl;
namespace bhttp = boost::beast::http;
using namespace std::chrono_literals;

template <class T>
T RunSync(asio::io_context& io, awaitable<T> task) {
  std::optional<T> out;
  asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T value) {
    if (e) std::rethrow_exception(e);
    out = std::move(value);
  });
  io.restart();
  io.run();
  return std::move(*out);
}

// Serves "hello over tls" to each connection on its own thread, one request per connection.
class TlsServer {
 public:
  TlsServer(const std::string& cert, const std::string& key)
      : context_(ssl::context::tls_server),
        acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    context_.use_certificate_chain_file(cert);
    context_.use_private_key_file(key, ssl::context::pem);
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { Loop(); });
  }
  ~TlsServer() {
    stop_ = true;
    boost::system::error_code ignored;
    // Wake the blocking accept with a connection of our own.
    asio::io_context io;
    asio::ip::tcp::socket s(io);
    s.connect({asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port_)}, ignored);
    thread_.join();
  }
  int port() const { return port_; }
  std::string server_name() {
    std::lock_guard lock(mutex_);
    return server_name_;
  }

 private:
  void Loop() {
    while (!stop_) {
      boost::system::error_code ec;
      asio::ip::tcp::socket socket(io_);
      acceptor_.accept(socket, ec);
      if (ec || stop_) return;
      ssl::stream<asio::ip::tcp::socket> stream(std::move(socket), context_);
      stream.handshake(ssl::stream_base::server, ec);
      if (ec) continue;  // the client refused our certificate: expected in some tests
      if (const char* name =
              SSL_get_servername(stream.native_handle(), TLSEXT_NAMETYPE_host_name)) {
        std::lock_guard lock(mutex_);
        server_name_ = name;
      }
      boost::beast::flat_buffer buffer;
      bhttp::request<bhttp::string_body> request;
      bhttp::read(stream, buffer, request, ec);
      if (ec) continue;
      bhttp::response<bhttp::string_body> response{bhttp::status::ok, 11};
      response.body() = "hello over tls";
      response.keep_alive(false);
      response.prepare_payload();
      bhttp::write(stream, response, ec);
      stream.shutdown(ec);  // the client may not answer close_notify: harmless
    }
  }

  asio::io_context io_;
  ssl::context context_;
  asio::ip::tcp::acceptor acceptor_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::string server_name_;  // SNI of the last handshake
  std::thread thread_;
};

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cert_ = (dir_.path() / "cert.pem").string();
    key_ = (dir_.path() / "key.pem").string();
    const auto made = reelq::testing::RunCommand({"openssl", "req", "-x509", "-newkey", "rsa:2048",
                                                  "-nodes", "-days", "1", "-subj", "/CN=localhost",
                                                  "-addext", "subjectAltName=DNS:localhost",
                                                  "-keyout", key_, "-out", cert_});
    if (made.exit_code != 0)
      GTEST_SKIP() << "the openssl CLI could not make a cert: " << made.output;
    server_.emplace(cert_, key_);
  }
  Request Get(const std::string& host) {
    Request r;
    r.url = "https://" + host + ":" + std::to_string(server_->port()) + "/";
    r.timeout = 5s;
    return r;
  }

  testing::TempDir dir_;
  std::string cert_, key_;
  std::optional<TlsServer> server_;
};

TEST_F(TlsTest, TrustedCertificateAndMatchingNameWork) {
  asio::io_context io;
  auto client = MakeClient(io.get_executor(), ClientOptions{.ca_file = cert_});
  auto got = RunSync(io, client->Send(Get("localhost")));
  ASSERT_TRUE(got) << got.error().Describe();
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(got->body, "hello over tls");
  EXPECT_EQ(server_->server_name(), "localhost");  // SNI was sent
}

TEST_F(TlsTest, UntrustedCertificateIsRefused) {
  asio::io_context io;
  auto client = MakeClient(io.get_executor());  // system store: does not know our cert
  auto got = RunSync(io, client->Send(Get("localhost")));
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().category, ErrorCategory::kRetryable);
  EXPECT_NE(got.error().message.find("TLS handshake with localhost"), std::string::npos)
      << got.error().message;
}

TEST_F(TlsTest, HostNameMismatchIsRefused) {
  // The certificate names only localhost; 127.0.0.1 reaches the same server under a name the
  // certificate does not carry.
  asio::io_context io;
  auto client = MakeClient(io.get_executor(), ClientOptions{.ca_file = cert_});
  auto got = RunSync(io, client->Send(Get("127.0.0.1")));
  ASSERT_FALSE(got);
  EXPECT_NE(got.error().message.find("TLS handshake with 127.0.0.1"), std::string::npos)
      << got.error().message;
}

TEST_F(TlsTest, VerificationCanBeTurnedOffForTests) {
  asio::io_context io;
  auto client = MakeClient(io.get_executor(), ClientOptions{.verify_tls = false});
  auto got = RunSync(io, client->Send(Get("localhost")));
  ASSERT_TRUE(got) << got.error().Describe();
  EXPECT_EQ(got->body, "hello over tls");
}

}  // namespace
}  // namespace reelq::http
