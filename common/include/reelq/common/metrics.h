#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "reelq/common/asio.h"
#include "reelq/common/error.h"

// A small Prometheus registry (counters, gauges, fixed-bucket histograms, with labels) rendered
// in the text exposition format 0.0.4, and the HTTP server that exposes it with the health
// endpoints. Updating a metric is lock-free (atomics); looking up a labelled child takes its
// family's mutex, so hot paths keep the reference WithLabels returns (it stays valid for the
// registry's lifetime).
//
//   auto registry = std::make_shared<metrics::Registry>();
//   auto& jobs = registry->AddCounter("reelq_jobs_admitted_total", "Jobs admitted.", {"model"});
//   jobs.WithLabels({"kling-3.0"}).Inc();
//
// Registration mistakes (a malformed name, the same name with another type or other labels, a
// wrong number of label values) are programming errors and throw std::invalid_argument.
namespace reelq::metrics {

class Counter {
 public:
  // Negative or non-finite increments are ignored: a counter only goes up.
  void Inc(double by = 1);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Inc(double by = 1) { value_.fetch_add(by, std::memory_order_relaxed); }
  void Dec(double by = 1) { value_.fetch_add(-by, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  // `bounds`: the bucket upper bounds, finite and strictly increasing (+Inf is implicit).
  explicit Histogram(std::shared_ptr<const std::vector<double>> bounds);

  void Observe(double value);  // NaN is ignored

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf (== count)
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Snap() const;
  const std::vector<double>& bounds() const { return *bounds_; }

 private:
  std::shared_ptr<const std::vector<double>> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, not cumulative; last is +Inf
  std::atomic<double> sum_{0};
};

// Bucket helpers: start, start*factor, ... (count bounds); start, start+width, ...
std::vector<double> ExponentialBuckets(double start, double factor, size_t count);
std::vector<double> LinearBuckets(double start, double width, size_t count);

enum class MetricType { kCounter, kGauge, kHistogram };

// All children of one metric name, one per combination of label values.
template <class Metric>
class Family {
 public:
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::function<std::unique_ptr<Metric>()> make);

  // The child for these label values (in the order of the label names), created on first use.
  Metric& WithLabels(const std::vector<std::string>& values);
  Metric& WithLabels(std::initializer_list<std::string_view> values);
  // The only child of a family without labels.
  Metric& Get() { return WithLabels(std::vector<std::string>{}); }

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

  // Calls f(label_values, metric) for every child, ordered by label values.
  void ForEach(const std::function<void(const std::vector<std::string>&, const Metric&)>& f) const;

 private:
  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  std::function<std::unique_ptr<Metric>()> make_;
  mutable std::mutex mutex_;
  std::map<std::vector<std::string>, std::unique_ptr<Metric>> children_;
};

extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;

class Registry {
 public:
  // Registering the same name again with the same type, labels (and buckets) returns the
  // existing family, so independent components may declare a shared metric.
  Family<Counter>& AddCounter(std::string name, std::string help,
                              std::vector<std::string> label_names = {});
  Family<Gauge>& AddGauge(std::string name, std::string help,
                          std::vector<std::string> label_names = {});
  Family<Histogram>& AddHistogram(std::string name, std::string help, std::vector<double> bounds,
                                  std::vector<std::string> label_names = {});

  // Runs at the start of every Render (outside the registry's lock), e.g. to copy values that
  // live elsewhere into gauges. A hook must be quick and must not block: values that need I/O
  // (queue depth from Redis) belong in a task that sets the gauge.
  void AddCollectHook(std::function<void()> hook);

  // Text exposition format 0.0.4, families ordered by name.
  std::string Render() const;

  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  struct Entry {
    MetricType type;
    std::shared_ptr<void> family;  // Family<Counter|Gauge|Histogram>
    std::vector<double> bounds;    // histograms: to tell a repeated registration from a clash
  };
  template <class Metric>
  Family<Metric>& Add(MetricType type, std::string name, std::string help,
                      std::vector<std::string> label_names,
                      std::function<std::unique_ptr<Metric>()> make,
                      const std::vector<double>* bounds);

  mutable std::mutex mutex_;
  std::map<std::string, Entry, std::less<>> families_;
  std::vector<std::function<void()>> hooks_;
};
using RegistryPtr = std::shared_ptr<Registry>;

// Exposition helpers, public for tests and for anyone rendering by hand.
std::string FormatValue(double value);             // 1, 0.25, 1e+21, +Inf, -Inf, NaN
std::string EscapeLabelValue(std::string_view v);  // \ " and newline
std::string EscapeHelp(std::string_view v);        // \ and newline
bool IsValidMetricName(std::string_view name);     // [a-zA-Z_:][a-zA-Z0-9_:]*
bool IsValidLabelName(std::string_view name);      // [a-zA-Z_][a-zA-Z0-9_]*, not __*

struct MetricsServerOptions {
  // host:port, [v6]:port or :port (all interfaces); port 0 picks a free port.
  std::string listen = "127.0.0.1:0";
  // Deadline for each step (reading one request, writing one response).
  std::chrono::milliseconds io_timeout{10'000};
  // A connection (keep-alive included) is closed after this long in total.
  std::chrono::milliseconds connection_timeout{60'000};
  // Request head and body together; larger requests get 413 or 431 and the connection closes.
  size_t max_request_bytes = 16 * 1024;
  // Further connections are closed at once until one ends.
  size_t max_connections = 64;
};

// Serves, on one listening socket:
//   GET /metrics  200, the registry in the text format
//   GET /healthz  200 "ok" while the process runs
//   GET /readyz   200 "ready", or 503 "not ready: <reason>" (SetReady)
//   other paths 404; other methods on these paths 405 (HEAD is served like GET, without body).
// Every connection is a coroutine on a strand of the given executor.
class MetricsServer {
 public:
  // Binds and listens before returning, so the port is known and a bad address or a port in
  // use comes back as an error naming it. Not ready until SetReady(true).
  static Result<std::unique_ptr<MetricsServer>> Start(asio::any_io_executor executor,
                                                      RegistryPtr registry,
                                                      MetricsServerOptions options = {});
  ~MetricsServer();  // Stop(); destroy the server before its io_context
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  uint16_t port() const;
  // Thread-safe; `reason` is shown by /readyz while not ready ("draining", "redis down").
  void SetReady(bool ready, std::string reason = {});
  bool ready() const;
  // Closes the listener and every open connection. Thread-safe, idempotent.
  void Stop();

  struct State;

 private:
  explicit MetricsServer(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

}  // namespace reelq::metrics
