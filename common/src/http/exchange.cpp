#include "exchange.h"

#include <limits>

#include <algorithm>
#include <cctype>
#include <span>
#include <vector>

#include <boost/beast/http.hpp>

namespace reelq::http::internal {
namespace {

namespace bhttp = boost::beast::http;
constexpr size_t kChunkBytes = 64 * 1024;

bool IsTruncation(const boost::system::error_code& ec) {
  return ec == ssl::error::stream_truncated;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

template <class Stream>
awaitable<ExchangeOutcome> ExchangeOn(Stream& stream, Connection& connection, ExchangeInput in) {
  ExchangeOutcome out;
  auto& tcp = connection.Lowest();
  auto failure = [&](Step step, boost::system::error_code ec, uint64_t body_bytes,
                     std::optional<uint64_t> content_length) {
    return MapTransportError(TransportFailure{.step = step,
                                              .authority = in.url.Authority(),
                                              .ec = ec,
                                              .timeout = in.timeout,
                                              .body_bytes = body_bytes,
                                              .content_length = content_length,
                                              .max_body_bytes = in.max_body_bytes});
  };
  auto fail = [&](Step step, boost::system::error_code ec, uint64_t body_bytes = 0,
                  std::optional<uint64_t> content_length = std::nullopt) {
    out.failed_step = step;
    out.ec = ec;
    out.error = failure(step, ec, body_bytes, content_length);
  };
  // The head is the answer for a caller that accepts a partial body: the rest is dropped with
  // the connection (keep_alive stays false), which may be mid-body.
  auto cut_short = [&](boost::system::error_code ec, uint64_t body_bytes,
                       std::optional<uint64_t> content_length) {
    out.response.body_cut_short = failure(Step::kReadBody, ec, body_bytes, content_length).message;
    tcp.expires_never();
  };

  bhttp::request<bhttp::string_body> request;
  request.version(11);
  bhttp::verb verb = bhttp::string_to_verb(in.method);
  if (verb == bhttp::verb::unknown) {
    request.method_string(in.method);
  } else {
    request.method(verb);
  }
  request.target(in.url.target);
  request.set(bhttp::field::host, in.url.HostHeader());
  request.set(bhttp::field::user_agent, "reelq/0.1");
  for (const auto& [name, value] : in.headers) request.set(name, value);
  request.keep_alive(true);
  if (!in.body.empty() || verb == bhttp::verb::post || verb == bhttp::verb::put ||
      verb == bhttp::verb::patch) {
    request.body() = std::move(in.body);
    request.prepare_payload();
  }

  tcp.expires_at(in.deadline);
  auto [write_ec, written] = co_await bhttp::async_write(stream, request, use_nothrow_awaitable);
  if (write_ec) {
    fail(Step::kWrite, write_ec);
    co_return out;
  }

  bhttp::response_parser<bhttp::empty_body> head;
  if (verb == bhttp::verb::head) head.skip(true);
  // Boost 1.74 carries the header parser's default 8 MiB body limit into the body parser built
  // from it; the real limits are set on that parser below.
  head.body_limit(std::numeric_limits<std::uint64_t>::max());
  tcp.expires_at(in.deadline);
  auto [head_ec, head_bytes] =
      co_await bhttp::async_read_header(stream, connection.buffer(), head, use_nothrow_awaitable);
  if (head_ec) {
    out.got_response_bytes = head.got_some();
    fail(Step::kReadHead, head_ec);
    co_return out;
  }
  out.got_response_bytes = true;
  Response& response = out.response;
  response.status = static_cast<int>(head.get().result_int());
  for (const auto& field : head.get()) {
    response.headers.emplace_back(
        Lower(std::string_view(field.name_string().data(), field.name_string().size())),
        std::string(field.value()));
  }
  std::optional<uint64_t> content_length;
  if (auto cl = head.content_length()) content_length = *cl;

  bool stream_body = in.sink != nullptr && response.status >= 200 && response.status < 300;
  if (stream_body) {
    bhttp::response_parser<bhttp::buffer_body> parser(std::move(head));
    parser.body_limit(boost::none);  // bounded by the sink, not by memory
    // A body known to be smaller than a chunk gets a buffer of its size: a worker finishing
    // hundreds of small downloads at once would otherwise hold 64 KiB for each.
    size_t chunk_bytes = kChunkBytes;
    if (content_length) {
      chunk_bytes = static_cast<size_t>(std::clamp<uint64_t>(*content_length, 1, kChunkBytes));
    }
    std::vector<char> chunk(chunk_bytes);
    uint64_t total = 0;
    while (!parser.is_done()) {
      parser.get().body().data = chunk.data();
      parser.get().body().size = chunk.size();
      tcp.expires_at(in.deadline);
      auto [ec, n] =
          co_await bhttp::async_read(stream, connection.buffer(), parser, use_nothrow_awaitable);
      if (ec == bhttp::error::need_buffer) ec = {};
      size_t got = chunk.size() - parser.get().body().size;
      if (ec && IsTruncation(ec) && parser.need_eof()) parser.put_eof(ec);
      if (got > 0) {
        total += got;
        auto written_chunk =
            co_await in.sink->Write(std::as_bytes(std::span<const char>(chunk.data(), got)));
        if (!written_chunk) {
          // The sink's own error (object store), not a transport one: pass it on unchanged.
          out.failed_step = Step::kSink;
          out.error = written_chunk.error();
          co_return out;
        }
      }
      if (ec) {
        fail(Step::kReadBody, ec, total, content_length);
        co_return out;
      }
    }
    out.keep_alive = parser.keep_alive();
  } else {
    // Beast checks Content-Length against the limit while parsing the head, which the
    // header parser did with its own limit: check it here.
    if (content_length && *content_length > in.max_body_bytes) {
      if (in.accept_partial_body) {
        cut_short(bhttp::error::body_limit, 0, content_length);
      } else {
        fail(Step::kReadBody, bhttp::error::body_limit, 0, content_length);
      }
      co_return out;
    }
    bhttp::response_parser<bhttp::string_body> parser(std::move(head));
    parser.body_limit(static_cast<uint64_t>(in.max_body_bytes));
    tcp.expires_at(in.deadline);
    auto [ec, n] =
        co_await bhttp::async_read(stream, connection.buffer(), parser, use_nothrow_awaitable);
    if (ec && IsTruncation(ec) && parser.need_eof()) parser.put_eof(ec);
    if (ec && in.accept_partial_body) {
      cut_short(ec, parser.get().body().size(), content_length);
      response.body = std::move(parser.get().body());
      co_return out;
    }
    if (ec) {
      fail(Step::kReadBody, ec, parser.get().body().size(), content_length);
      co_return out;
    }
    response.body = std::move(parser.get().body());
    out.keep_alive = parser.keep_alive();
  }
  tcp.expires_never();
  co_return out;
}

}  // namespace

awaitable<ExchangeOutcome> Exchange(Connection& connection, ExchangeInput input) {
  if (auto* tls = connection.tls())
    co_return co_await ExchangeOn(*tls, connection, std::move(input));
  co_return co_await ExchangeOn(*connection.plain(), connection, std::move(input));
}

}  // namespace reelq::http::internal
