// deploy/grafana/reelq-dashboard.json and deploy/prometheus/alerts.yml name metrics; this test
// starts a scheduler and a worker, scrapes their /metrics and requires every reelq_* name in
// those files to be exported, so a metric renamed in the code (or misspelt in the kit) fails
// here. The rules also go through `promtool check rules` and `promtool test rules`.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <regex>
#include <set>
#include <sstream>

#include "stack.h"

namespace reelq::testing {
namespace {

// GET http://127.0.0.1:<port>/metrics; the body, or "" when it cannot be read.
std::string ScrapeMetrics(const std::string& host_port) {
  const auto colon = host_port.rfind(':');
  const std::string host = host_port.substr(0, colon);
  const int port = std::stoi(host_port.substr(colon + 1));
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request =
        "GET /metrics HTTP/1.1\r\nHost: " + host_port + "\r\nConnection: close\r\n\r\n";
    if (write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buffer[8192];
      ssize_t n;
      while ((n = read(fd, buffer, sizeof buffer)) > 0) response.append(buffer, n);
    }
  }
  close(fd);
  const auto body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

// Names declared by "# TYPE <name> <type>" lines (a family is declared even before its first
// sample), plus the series names of histograms.
std::set<std::string> ExportedNames(const std::string& exposition) {
  std::set<std::string> names;
  static const std::regex kType(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)$)");
  std::istringstream lines(exposition);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (!std::regex_match(line, m, kType)) continue;
    names.insert(m[1]);
    if (m[2] == "histogram") {
      for (const char* suffix : {"_bucket", "_sum", "_count"}) names.insert(m[1].str() + suffix);
    }
  }
  return names;
}

// Every reelq_* metric name mentioned anywhere in the file.
std::set<std::string> NamesIn(const std::string& relative) {
  const std::string text = ReadFile(SourcePath(relative));
  std::set<std::string> names;
  static const std::regex kName(R"(\breelq_[a-z0-9_]*[a-z0-9]\b)");
  for (std::sregex_iterator it(text.begin(), text.end(), kName), end; it != end; ++it) {
    names.insert(it->str());
  }
  return names;
}

std::string SchedulerMetricsAddress(E2eStack& stack) {
  // The scheduler binds port 0 and logs the port it got.
  const std::regex kPort(R"(metrics on port (\d+))");
  for (int i = 0; i < 50; ++i) {
    const std::string log = ReadFile(stack.log_dir() / "scheduler-0.log");
    std::smatch m;
    if (std::regex_search(log, m, kPort)) return "127.0.0.1:" + m[1].str();
    usleep(100'000);
  }
  return "";
}

TEST(MonitoringKit, EveryMetricTheDashboardAndAlertsNameIsExported) {
  if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
  E2eStack stack({.schedulers = 1, .workers = 1});
  const std::string scheduler = SchedulerMetricsAddress(stack);
  ASSERT_FALSE(scheduler.empty()) << stack.Logs();
  const std::string scheduler_text = ScrapeMetrics(scheduler);
  const std::string worker_text = ScrapeMetrics(stack.worker_metrics_address(0));
  auto exported = ExportedNames(scheduler_text);
  const auto from_worker = ExportedNames(worker_text);
  ASSERT_TRUE(exported.contains("reelq_queue_pending")) << scheduler_text;
  ASSERT_TRUE(from_worker.contains("reelq_worker_jobs_in_flight")) << worker_text;
  exported.insert(from_worker.begin(), from_worker.end());

  for (const char* file : {"deploy/grafana/reelq-dashboard.json", "deploy/prometheus/alerts.yml",
                           "deploy/prometheus/alerts_test.yml"}) {
    const auto named = NamesIn(file);
    EXPECT_GE(named.size(), 5u) << file << " names hardly any reelq metric: is it still there?";
    for (const auto& name : named) {
      EXPECT_TRUE(exported.contains(name))
          << file << " names " << name << ", which no scheduler or worker exports";
    }
  }
  // The alerts the issue asks for each rest on a metric of their own.
  const auto rules = NamesIn("deploy/prometheus/alerts.yml");
  for (const char* needed :
       {"reelq_queue_pending", "reelq_worker_job_outcomes_total",
        "reelq_worker_provider_errors_total", "reelq_scheduler_leases_expired_total",
        "reelq_worker_store_failures_total"}) {
    EXPECT_TRUE(rules.contains(needed)) << "alerts.yml does not use " << needed;
  }
}

int RunPromtool(const std::vector<std::string>& args, std::string* output) {
  TempDir dir;
  const auto log = dir.path() / "promtool.log";
  std::vector<std::string> argv = {"promtool"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto process = ChildProcess::Start(argv, {}, log);
  auto status = process.Wait(std::chrono::seconds(60));
  *output = ReadFile(log);
  return status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
}

bool PromtoolInstalled() { return std::system("command -v promtool >/dev/null 2>&1") == 0; }

TEST(MonitoringKit, AlertRulesPassPromtool) {
  if (!PromtoolInstalled()) {
    GTEST_SKIP() << "promtool is not installed (Debian package prometheus, in "
                    "scripts/install-deps.sh)";
  }
  std::string output;
  EXPECT_EQ(
      RunPromtool({"check", "rules", SourcePath("deploy/prometheus/alerts.yml").string()}, &output),
      0)
      << output;
  std::cout << output;
  // The cases of alerts_test.yml: each alert fires on the series of its failure, and a healthy
  // fleet fires nothing.
  EXPECT_EQ(RunPromtool({"test", "rules", SourcePath("deploy/prometheus/alerts_test.yml").string()},
                        &output),
            0)
      << output;
  std::cout << output;
}

}  // namespace
}  // namespace reelq::testing
