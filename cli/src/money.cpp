#include "money.h"

#include <cstdio>
#include <map>
#include <sstream>

namespace reelq::cli {

std::string FormatUsd(int64_t micros) {
  const bool negative = micros < 0;
  const uint64_t v = negative ? 0 - static_cast<uint64_t>(micros) : static_cast<uint64_t>(micros);
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%06llu", static_cast<unsigned long long>(v % 1'000'000));
  std::string fraction = buf;
  while (fraction.size() > 2 && fraction.back() == '0') fraction.pop_back();
  return std::string(negative ? "-" : "") + "$" + std::to_string(v / 1'000'000) + "." + fraction;
}

std::expected<int64_t, std::string> ParseUsd(std::string_view text) {
  std::string_view t = text;
  if (!t.empty() && t.front() == '$') t.remove_prefix(1);
  if (t.empty()) return std::unexpected("expected an amount in USD, such as 25 or 12.50");
  const size_t dot = t.find('.');
  const std::string_view whole = t.substr(0, dot);
  const std::string_view fraction = dot == std::string_view::npos ? "" : t.substr(dot + 1);
  auto digits = [](std::string_view s) {
    for (char c : s) {
      if (c < '0' || c > '9') return false;
    }
    return true;
  };
  if (!digits(whole) || !digits(fraction) || (whole.empty() && fraction.empty())) {
    return std::unexpected("'" + std::string(text) + "' is not an amount in USD (such as 12.50)");
  }
  if (fraction.size() > 6) {
    return std::unexpected("'" + std::string(text) +
                           "': at most six decimals (reelq counts micro-dollars)");
  }
  if (whole.size() > 12) return std::unexpected("'" + std::string(text) + "' is too large");
  int64_t micros = 0;
  for (char c : whole) micros = micros * 10 + (c - '0');
  micros *= 1'000'000;
  int64_t scale = 100'000;
  for (char c : fraction) {
    micros += (c - '0') * scale;
    scale /= 10;
  }
  return micros;
}

std::string FormatBatchCost(const v1::BatchProgress& progress) {
  std::ostringstream out;
  std::map<std::string, int64_t> by_model(progress.spent_micros_by_model().begin(),
                                          progress.spent_micros_by_model().end());
  int64_t spent = 0;
  for (const auto& [model, micros] : by_model) {
    out << "cost " << model << "  " << FormatUsd(micros) << "\n";
    spent += micros;
  }
  out << "cost total  " << FormatUsd(spent);
  if (progress.cost_micros() > spent) {
    out << " (+" << FormatUsd(progress.cost_micros() - spent) << " still reserved)";
  }
  if (progress.budget_micros() > 0) out << "  budget " << FormatUsd(progress.budget_micros());
  out << "\n";
  return out.str();
}

}  // namespace reelq::cli
