// Tables for `reelq models` and `reelq stats`.

#include <cstdio>
#include <string>

#include "format.h"

namespace reelq::cli {
namespace {

std::string Durations(const v1::ModelInfo& model) {
  const auto& d = model.durations();
  if (d.empty()) return "-";
  // A contiguous run prints as a range ("3-15"), anything else as a list ("4,8,12").
  bool contiguous = d.size() > 2;
  for (int i = 1; i < d.size() && contiguous; ++i) contiguous = d[i] == d[i - 1] + 1;
  if (contiguous) return std::to_string(d[0]) + "-" + std::to_string(d[d.size() - 1]) + "s";
  std::string out;
  for (int i = 0; i < d.size(); ++i) out += (i ? "," : "") + std::to_string(d[i]);
  return out + "s";
}

std::string Rate(double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f/min", value);
  return buf;
}

std::string AccountsTable(const google::protobuf::RepeatedPtrField<v1::AccountStats>& accounts,
                          const std::string& model) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& a : accounts) {
    std::string rate = Rate(a.requests_per_minute());
    if (a.learned_requests_per_minute() > 0 &&
        a.learned_requests_per_minute() < a.requests_per_minute()) {
      rate += " (learned " + Rate(a.learned_requests_per_minute()) + ")";
    }
    const std::string used =
        a.daily_cap() > 0 ? std::to_string(a.used_today()) + "/" + std::to_string(a.daily_cap())
                          : std::to_string(a.used_today());
    const std::string cooldown =
        a.cooling_down() ? "cooling " + FormatSeconds(a.cooldown_remaining_seconds()) : "-";
    const std::string polls = a.polls_per_minute() > 0 ? Rate(a.polls_per_minute()) : "-";
    std::vector<std::string> row;
    if (!model.empty()) row.push_back(model);
    std::string in_flight =
        std::to_string(a.in_flight()) + "/" + std::to_string(a.max_concurrent());
    if (a.learned_max_concurrent() > 0 && a.learned_max_concurrent() < a.max_concurrent()) {
      in_flight += " (learned " + std::to_string(a.learned_max_concurrent()) + ")";
    }
    row.insert(row.end(), {a.account(), a.provider(), rate, polls, in_flight, used,
                           std::to_string(a.rate_limited_total()), cooldown});
    rows.push_back(std::move(row));
  }
  std::vector<std::string> headers;
  if (!model.empty()) headers.push_back("MODEL");
  headers.insert(headers.end(), {"ACCOUNT", "PROVIDER", "RATE", "POLLS", "IN FLIGHT", "USED TODAY",
                                 "429s", "COOLDOWN"});
  return FormatTable(headers, rows);
}

}  // namespace

std::string FormatModels(const v1::ListModelsResponse& models) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& m : models.models()) {
    rows.push_back({m.id(), m.provider(), Durations(m), std::to_string(m.max_clip_seconds()) + "s",
                    std::to_string(m.queue_depth()), std::to_string(m.dispatched()),
                    std::to_string(m.in_flight()), FormatSeconds(m.latency_estimate_seconds()),
                    std::to_string(m.succeeded()), std::to_string(m.failed())});
  }
  // QUEUED: pending jobs that may go to the model (a job allowing several counts under each);
  // DISPATCHED: slot reserved, waiting for a worker; RUNNING: on a worker now.
  std::string out = FormatTable({"MODEL", "PROVIDER", "DURATIONS", "MAX CLIP", "QUEUED",
                                 "DISPATCHED", "RUNNING", "LATENCY", "SUCCEEDED", "FAILED"},
                                rows);
  // Accounts are listed once per model that uses them, under one table.
  std::string accounts;
  bool any = false;
  for (const auto& m : models.models()) {
    if (m.accounts_size() == 0) continue;
    std::string table = AccountsTable(m.accounts(), m.id());
    if (any) table = table.substr(table.find('\n') + 1);  // header only once
    accounts += table;
    any = true;
  }
  if (any) out += "\naccounts\n" + accounts;
  return out;
}

std::string FormatStats(const v1::GetStatsResponse& stats) {
  std::string out = "pending " + std::to_string(stats.pending()) + "  dispatched " +
                    std::to_string(stats.dispatched()) + "  running " +
                    std::to_string(stats.running()) + "  workers " +
                    std::to_string(stats.workers()) + "\n";
  if (stats.tenants_size() > 0) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& t : stats.tenants()) {
      char weight[32];
      std::snprintf(weight, sizeof weight, "%g", t.weight());
      rows.push_back(
          {t.tenant(), weight, std::to_string(t.pending()), std::to_string(t.in_flight())});
    }
    out += "\n" + FormatTable({"TENANT", "WEIGHT", "PENDING", "IN FLIGHT"}, rows);
  }
  if (stats.models_size() > 0) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& m : stats.models()) {
      rows.push_back({m.model(), std::to_string(m.queue_depth()), std::to_string(m.dispatched()),
                      std::to_string(m.in_flight())});
    }
    out += "\n" + FormatTable({"MODEL", "QUEUED", "DISPATCHED", "RUNNING"}, rows);
  }
  if (stats.accounts_size() > 0) out += "\n" + AccountsTable(stats.accounts(), "");
  return out;
}

}  // namespace reelq::cli
