// reelq::http::MakeClient: Boost.Beast HTTP/1.1 over plain TCP or OpenSSL, with keep-alive
// reuse, redirects, streamed bodies and a deadline on every step.
#include <cctype>

#include <spdlog/spdlog.h>
#include <boost/beast/http/error.hpp>

#include "connection.h"
#include "exchange.h"
#include "reelq/common/http_client.h"

namespace reelq::http {
namespace {

using internal::Connection;
using internal::ConnectionPool;
using internal::Deadline;
using internal::ExchangeInput;
using internal::ExchangeOutcome;
using internal::Step;
using internal::Url;

bool IsRedirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

bool IsIdempotent(const std::string& method) {
  return method == "GET" || method == "HEAD" || method == "DELETE" || method == "PUT" ||
         method == "OPTIONS";
}

// Credentials must not follow a redirect to another origin (a CDN or a signed-URL host has
// no business seeing our API key).
void DropCredentials(Headers& headers) {
  std::erase_if(headers, [](const auto& header) {
    std::string name = header.first;
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return name == "authorization" || name == "x-goog-api-key" || name == "cookie" ||
           name == "proxy-authorization";
  });
}

void DropBodyHeaders(Headers& headers) {
  std::erase_if(headers, [](const auto& header) {
    std::string name = header.first;
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return name == "content-type" || name == "content-length";
  });
}

// A connection taken from the pool that fails before any byte of the response arrived was
// most likely closed by the server while idle; the request can go again on a fresh one. For
// a POST only when the write itself failed: once it was sent, the server may have acted on it.
bool LooksStale(const ExchangeOutcome& outcome, const std::string& method) {
  if (outcome.got_response_bytes) return false;
  if (outcome.failed_step == Step::kWrite) return true;
  if (outcome.failed_step != Step::kReadHead || !IsIdempotent(method)) return false;
  const auto& ec = outcome.ec;
  return ec == boost::beast::http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
}

class ClientImpl final : public Client, public std::enable_shared_from_this<ClientImpl> {
 public:
  ClientImpl(asio::any_io_executor executor, ClientOptions options)
      : executor_(std::move(executor)),
        options_(std::move(options)),
        tls_context_(internal::ssl::context::tls_client),
        pool_(options_.max_idle_connections_per_host, options_.idle_timeout) {
    boost::system::error_code ec;
    if (options_.ca_file.empty()) {
      tls_context_.set_default_verify_paths(ec);
    } else {
      tls_context_.load_verify_file(options_.ca_file, ec);
    }
    if (ec) {
      // Every https request will then fail verification with a clear handshake error.
      spdlog::warn("http client: cannot load CA certificates from '{}': {}",
                   options_.ca_file.empty() ? "system default" : options_.ca_file, ec.message());
    }
  }

  // Client
  awaitable<Result<Response>> Send(Request request) override {
    auto result = co_await Run(std::move(request), nullptr);
    co_return result;
  }
  awaitable<Result<Response>> Stream(Request request, ByteSink& sink) override {
    auto result = co_await Run(std::move(request), &sink);
    co_return result;
  }

 private:
  awaitable<Result<Response>> Run(Request request, ByteSink* sink) {
    auto self = shared_from_this();  // the pool and TLS context outlive this exchange
    Deadline deadline = std::chrono::steady_clock::now() + request.timeout;
    auto url = internal::ParseUrl(request.url);
    if (!url) co_return std::unexpected(url.error());

    for (int hop = 0;; ++hop) {
      bool may_redirect = hop < request.max_redirects;
      auto response = co_await Once(*url, request, deadline, sink);
      if (!response) co_return response;
      auto location = response->Header("location");
      if (!may_redirect || !IsRedirect(response->status) || !location) {
        response->final_url = internal::ToString(*url);
        co_return response;
      }
      auto next = internal::ResolveLocation(*url, *location);
      if (!next) {
        co_return MakeError(ErrorCategory::kRetryable,
                            "redirect from " + url->Authority() +
                                " to an unusable Location: " + next.error().message);
      }
      int status = response->status;
      if (status == 303 || ((status == 301 || status == 302) && request.method == "POST")) {
        request.method = status == 303 && request.method == "HEAD" ? "HEAD" : "GET";
        request.body.clear();
        DropBodyHeaders(request.headers);
      }
      if (next->Origin() != url->Origin()) DropCredentials(request.headers);
      url = std::move(next);
    }
  }

  awaitable<Result<Response>> Once(Url url, const Request& request, Deadline deadline,
                                   ByteSink* sink) {
    const std::string origin = url.Origin();
    bool sent_again = false;
    for (int attempt = 0;; ++attempt) {
      std::unique_ptr<Connection> connection = pool_.Take(origin);
      if (!connection) {
        auto opened = co_await Connection::Open(url, tls_context_, options_.verify_tls, deadline,
                                                request.timeout, &options_.refuse_address);
        if (!opened) co_return std::unexpected(opened.error());
        connection = std::move(*opened);
      }
      bool reused = connection->reused;
      // Built as a named variable: g++ 12 mishandles aggregate temporaries in co_await
      // arguments.
      ExchangeInput input;
      input.url = url;
      input.method = request.method;
      input.headers = request.headers;
      input.body = request.body;
      input.deadline = deadline;
      input.timeout = request.timeout;
      input.sink = sink;
      input.max_body_bytes = options_.max_body_bytes;
      input.accept_partial_body = request.accept_partial_body;
      ExchangeOutcome outcome = co_await internal::Exchange(*connection, std::move(input));
      if (outcome.error) {
        connection->Close();
        if (reused && attempt == 0 && LooksStale(outcome, request.method)) {
          sent_again = outcome.failed_step != Step::kWrite;
          continue;
        }
        co_return std::unexpected(std::move(*outcome.error));
      }
      if (outcome.keep_alive && options_.max_idle_connections_per_host > 0) {
        pool_.Put(origin, std::move(connection));
      } else {
        connection->Close();
      }
      outcome.response.sent_again = sent_again;
      co_return std::move(outcome.response);
    }
  }

  asio::any_io_executor executor_;
  ClientOptions options_;
  internal::ssl::context tls_context_;
  ConnectionPool pool_;
};

}  // namespace

Result<std::string> UrlHost(std::string_view url) {
  auto parsed = internal::ParseUrl(url);
  if (!parsed) return std::unexpected(parsed.error());
  std::string host = parsed->host;
  for (auto& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return host;
}

ClientPtr MakeClient(asio::any_io_executor executor, ClientOptions options) {
  return std::make_shared<ClientImpl>(std::move(executor), std::move(options));
}

}  // namespace reelq::http
