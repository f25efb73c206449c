#pragma once

// A token-mode dashboard inside the test process, built from the same classes the scheduler
// wires (JobStore, JobApi, Activity, Dashboard) against an E2eStack's Redis, with a test token
// resolver: the real token resolver belongs to the auth layer, and the scheduler binary serves
// the open (tokenless, read-only) mode. Everything lives on one io thread of its own.
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "reelq/common/asio.h"
#include "reelq/scheduler/dashboard.h"
#include "stack.h"

namespace reelq::testing {

class DashboardHost {
 public:
  // `tokens`: token -> principal. Throws std::runtime_error when something does not start.
  DashboardHost(E2eStack& stack, std::map<std::string, scheduler::DashboardPrincipal> tokens);
  ~DashboardHost();
  DashboardHost(const DashboardHost&) = delete;
  DashboardHost& operator=(const DashboardHost&) = delete;

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  struct Parts;

 private:
  asio::io_context io_{1};
  std::unique_ptr<Parts> parts_;
  std::thread thread_;
  int port_ = 0;
};

// A minimal HTTP/1.1 client for the tests (one request per connection).
struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};
HttpReply HttpFetch(const std::string& method, int port, const std::string& target,
                    const std::map<std::string, std::string>& headers = {},
                    const std::string& body = "");

}  // namespace reelq::testing
