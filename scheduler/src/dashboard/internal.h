#pragma once

// Shared between the dashboard's HTTP shell (server.cpp), its routes (routes.cpp) and the JSON
// views (views.cpp). Not installed.
#include <array>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "reelq/scheduler/dashboard.h"

namespace reelq::scheduler {

namespace dashboard_detail {

namespace beast = boost::beast;
namespace http = boost::beast::http;
using Request = http::request<http::string_body>;
using Json = nlohmann::json;

struct Reply {
  http::status status = http::status::ok;
  std::string content_type = "application/json; charset=utf-8";
  std::string body;
  std::vector<std::pair<http::field, std::string>> headers;
  bool cacheable = false;  // the embedded assets; everything else is no-store
  // Set for the clip proxy: the body is these bytes of this file instead.
  struct File {
    std::string path;
    uint64_t size = 0;
    std::optional<ByteRange> range;
  };
  std::optional<File> file;
};

Reply JsonReply(const Json& body, http::status status = http::status::ok);
Reply ErrorReply(http::status status, std::string message);
Reply ErrorReply(const Error& error);

// One file of the single-page app, compiled in (generated from scheduler/dashboard/).
struct EmbeddedFile {
  std::string_view path;  // "/app.js"
  std::string_view content_type;
  std::string_view body;
};
std::span<const EmbeddedFile> EmbeddedFiles();

// Views: the API's messages as the JSON the pages read.
Json JobJson(const v1::JobStatus& job);
Json JobRowJson(const v1::JobStatus& job);
Json BatchJson(const v1::BatchProgress& progress);
Json AccountJson(const v1::AccountStats& account);
std::string CategoryName(v1::ErrorCategory category);
std::string PhaseName(v1::JobPhase phase);

}  // namespace dashboard_detail

struct Dashboard::State {
  State(asio::any_io_executor ex, JobApi& j, DashboardModels& m, Activity& a, DashboardOptions o)
      : executor(ex), acceptor(ex), jobs(j), models(m), activity(a), options(std::move(o)) {}

  asio::any_io_executor executor;
  asio::ip::tcp::acceptor acceptor;
  JobApi& jobs;
  DashboardModels& models;
  Activity& activity;
  DashboardOptions options;
  std::array<unsigned char, 32> csrf_key{};  // random per process: CSRF tokens are HMACs
  uint16_t port = 0;
  bool stopped = false;
  std::set<boost::beast::tcp_stream*> connections;
};

// The route table: one request in, one reply out. `loopback_peer`: the client connected from a
// loopback address.
awaitable<dashboard_detail::Reply> Route(std::shared_ptr<Dashboard::State> state,
                                         dashboard_detail::Request request, bool loopback_peer);

}  // namespace reelq::scheduler
