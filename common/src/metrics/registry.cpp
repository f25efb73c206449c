#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

#include "reelq/common/metrics.h"

namespace reelq::metrics {

void Counter::Inc(double by) {
  if (!(by >= 0) || std::isinf(by)) return;  // also rejects NaN
  value_.fetch_add(by, std::memory_order_relaxed);
}

Histogram::Histogram(std::shared_ptr<const std::vector<double>> bounds)
    : bounds_(std::move(bounds)),
      counts_(std::make_unique<std::atomic<uint64_t>[]>(bounds_->size() + 1)) {}

void Histogram::Observe(double value) {
  if (std::isnan(value)) return;
  const auto& b = *bounds_;
  // Prometheus buckets are "less than or equal": the first bound >= value.
  size_t i = static_cast<size_t>(std::lower_bound(b.begin(), b.end(), value) - b.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Snap() const {
  Snapshot s;
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_->size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  // The count is the +Inf bucket by construction, so a scrape racing with Observe never shows
  // a count that disagrees with its buckets (the sum may lag by the racing observations).
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> ExponentialBuckets(double start, double factor, size_t count) {
  if (!(start > 0) || !(factor > 1)) {
    throw std::invalid_argument("ExponentialBuckets: needs start > 0 and factor > 1");
  }
  std::vector<double> out;
  for (size_t i = 0; i < count; ++i, start *= factor) out.push_back(start);
  return out;
}

std::vector<double> LinearBuckets(double start, double width, size_t count) {
  if (!(width > 0)) throw std::invalid_argument("LinearBuckets: needs width > 0");
  std::vector<double> out;
  for (size_t i = 0; i < count; ++i) out.push_back(start + width * static_cast<double>(i));
  return out;
}

// --- Family --------------------------------------------------------------------------------

template <class Metric>
Family<Metric>::Family(std::string name, std::string help, std::vector<std::string> label_names,
                       std::function<std::unique_ptr<Metric>()> make)
    : name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      make_(std::move(make)) {}

template <class Metric>
Metric& Family<Metric>::WithLabels(const std::vector<std::string>& values) {
  if (values.size() != label_names_.size()) {
    throw std::invalid_argument(name_ + ": expected " + std::to_string(label_names_.size()) +
                                " label values, got " + std::to_string(values.size()));
  }
  std::lock_guard lock(mutex_);
  auto it = children_.find(values);
  if (it == children_.end()) it = children_.emplace(values, make_()).first;
  return *it->second;
}

template <class Metric>
Metric& Family<Metric>::WithLabels(std::initializer_list<std::string_view> values) {
  return WithLabels(std::vector<std::string>(values.begin(), values.end()));
}

template <class Metric>
void Family<Metric>::ForEach(
    const std::function<void(const std::vector<std::string>&, const Metric&)>& f) const {
  std::lock_guard lock(mutex_);
  for (const auto& [values, metric] : children_) f(values, *metric);
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// --- Names and text ------------------------------------------------------------------------

namespace {

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

bool IsValidMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (!(IsAlpha(c) || c == '_' || c == ':' || (i > 0 && IsDigit(c)))) return false;
  }
  return true;
}

bool IsValidLabelName(std::string_view name) {
  if (name.empty() || name.starts_with("__")) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (!(IsAlpha(c) || c == '_' || (i > 0 && IsDigit(c)))) return false;
  }
  return true;
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  // Shortest text that reads back as the same double: 1, 0.25, 1e+21.
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  return std::string(buf, ec == std::errc() ? end : buf);
}

std::string EscapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeHelp(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// --- Registry ------------------------------------------------------------------------------

template <class Metric>
Family<Metric>& Registry::Add(MetricType type, std::string name, std::string help,
                              std::vector<std::string> label_names,
                              std::function<std::unique_ptr<Metric>()> make,
                              const std::vector<double>* bounds) {
  if (!IsValidMetricName(name)) throw std::invalid_argument("invalid metric name: " + name);
  for (const auto& label : label_names) {
    if (!IsValidLabelName(label) || (type == MetricType::kHistogram && label == "le")) {
      throw std::invalid_argument(name + ": invalid label name: " + label);
    }
  }
  for (size_t i = 0; i < label_names.size(); ++i) {
    for (size_t j = i + 1; j < label_names.size(); ++j) {
      if (label_names[i] == label_names[j]) {
        throw std::invalid_argument(name + ": label listed twice: " + label_names[i]);
      }
    }
  }
  std::lock_guard lock(mutex_);
  if (auto it = families_.find(name); it != families_.end()) {
    auto* existing = static_cast<Family<Metric>*>(it->second.family.get());
    bool same = it->second.type == type && existing->label_names() == label_names;
    if (same && bounds) same = it->second.bounds == *bounds;
    if (!same) {
      throw std::invalid_argument(name + ": already registered with another type or labels");
    }
    return *existing;
  }
  auto family = std::make_shared<Family<Metric>>(name, std::move(help), std::move(label_names),
                                                 std::move(make));
  // A metric without labels exists (as 0) from registration, as Prometheus clients do.
  if (family->label_names().empty()) family->Get();
  auto& ref = *family;
  families_.emplace(std::move(name),
                    Entry{type, std::move(family), bounds ? *bounds : std::vector<double>{}});
  return ref;
}

Family<Counter>& Registry::AddCounter(std::string name, std::string help,
                                      std::vector<std::string> label_names) {
  return Add<Counter>(
      MetricType::kCounter, std::move(name), std::move(help), std::move(label_names),
      [] { return std::make_unique<Counter>(); }, nullptr);
}

Family<Gauge>& Registry::AddGauge(std::string name, std::string help,
                                  std::vector<std::string> label_names) {
  return Add<Gauge>(
      MetricType::kGauge, std::move(name), std::move(help), std::move(label_names),
      [] { return std::make_unique<Gauge>(); }, nullptr);
}

Family<Histogram>& Registry::AddHistogram(std::string name, std::string help,
                                          std::vector<double> bounds,
                                          std::vector<std::string> label_names) {
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1]))) {
      throw std::invalid_argument(name + ": bucket bounds must be finite and strictly increasing");
    }
  }
  auto shared = std::make_shared<const std::vector<double>>(bounds);
  return Add<Histogram>(
      MetricType::kHistogram, std::move(name), std::move(help), std::move(label_names),
      [shared] { return std::make_unique<Histogram>(shared); }, shared.get());
}

void Registry::AddCollectHook(std::function<void()> hook) {
  std::lock_guard lock(mutex_);
  hooks_.push_back(std::move(hook));
}

namespace {

// {a="x",b="y"} with an optional extra label (le for buckets); empty when there are none.
std::string LabelSet(const std::vector<std::string>& names, const std::vector<std::string>& values,
                     std::string_view extra_name = {}, std::string_view extra_value = {}) {
  if (names.empty() && extra_name.empty()) return {};
  std::string out = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    out += names[i] + "=\"" + EscapeLabelValue(values[i]) + '"';
  }
  if (!extra_name.empty()) {
    if (!names.empty()) out += ',';
    out += std::string(extra_name) + "=\"" + std::string(extra_value) + '"';
  }
  return out + "}";
}

template <class Metric>
void RenderHeader(std::string& out, const Family<Metric>& f, std::string_view type) {
  out += "# HELP " + f.name() + ' ' + EscapeHelp(f.help()) + '\n';
  out += "# TYPE " + f.name() + ' ' + std::string(type) + '\n';
}

template <class Metric>
void RenderSimple(std::string& out, const Family<Metric>& f, std::string_view type) {
  RenderHeader(out, f, type);
  f.ForEach([&](const std::vector<std::string>& values, const Metric& m) {
    out += f.name() + LabelSet(f.label_names(), values) + ' ' + FormatValue(m.Value()) + '\n';
  });
}

void RenderHistogram(std::string& out, const Family<Histogram>& f) {
  RenderHeader(out, f, "histogram");
  f.ForEach([&](const std::vector<std::string>& values, const Histogram& h) {
    const auto snap = h.Snap();
    const auto& bounds = h.bounds();
    for (size_t i = 0; i <= bounds.size(); ++i) {
      const std::string le = i < bounds.size() ? FormatValue(bounds[i]) : "+Inf";
      out += f.name() + "_bucket" + LabelSet(f.label_names(), values, "le", le) + ' ' +
             std::to_string(snap.cumulative[i]) + '\n';
    }
    const std::string labels = LabelSet(f.label_names(), values);
    out += f.name() + "_sum" + labels + ' ' + FormatValue(snap.sum) + '\n';
    out += f.name() + "_count" + labels + ' ' + std::to_string(snap.count) + '\n';
  });
}

}  // namespace

std::string Registry::Render() const {
  std::vector<std::function<void()>> hooks;
  {
    std::lock_guard lock(mutex_);
    hooks = hooks_;
  }
  for (const auto& hook : hooks) hook();

  std::string out;
  std::lock_guard lock(mutex_);
  for (const auto& [name, entry] : families_) {
    switch (entry.type) {
      case MetricType::kCounter:
        RenderSimple(out, *static_cast<const Family<Counter>*>(entry.family.get()), "counter");
        break;
      case MetricType::kGauge:
        RenderSimple(out, *static_cast<const Family<Gauge>*>(entry.family.get()), "gauge");
        break;
      case MetricType::kHistogram:
        RenderHistogram(out, *static_cast<const Family<Histogram>*>(entry.family.get()));
        break;
    }
  }
  return out;
}

}  // namespace reelq::metrics
