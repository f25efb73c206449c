// `reelq wallet` (a tenant's balance, reservations, spending and ledger) and the admin's
// `reelq admin top-up` / `reelq admin set-limits` (issue 12).
#include <google/protobuf/util/time_util.h>

#include "context.h"
#include "format.h"
#include "money.h"
#include "resend.h"

namespace reelq::cli {
namespace {

using google::protobuf::util::TimeUtil;

std::string When(const google::protobuf::Timestamp& at) {
  return at.seconds() == 0 ? "-" : TimeUtil::ToString(at).substr(0, 19) + "Z";
}

void PrintWallet(Context& context, const v1::Wallet& w, bool with_ledger) {
  auto& out = context.io().out;
  out << "tenant      " << w.tenant() << (w.enforced() ? "" : "  (no wallet yet: not billed)")
      << "\n";
  out << "available   " << FormatUsd(w.available_micros()) << "\n";
  out << "reserved    " << FormatUsd(w.reserved_micros()) << "\n";
  out << "spent       " << FormatUsd(w.spent_micros()) << "  (today "
      << FormatUsd(w.spent_today_micros()) << ", this month "
      << FormatUsd(w.spent_this_month_micros()) << ")\n";
  out << "topped up   " << FormatUsd(w.topped_up_micros()) << "\n";
  if (!with_ledger || w.ledger_size() == 0) return;
  std::vector<std::vector<std::string>> cells;
  for (const auto& e : w.ledger()) {
    cells.push_back({When(e.at()), e.kind(), e.job_id().empty() ? "-" : e.job_id(),
                     e.model().empty() ? "-" : e.model(), FormatUsd(e.amount_micros()),
                     FormatUsd(e.charge_micros()), FormatUsd(e.balance_micros())});
  }
  out << "\n"
      << FormatTable({"AT", "KIND", "JOB", "MODEL", "AMOUNT", "CHARGED", "AVAILABLE"}, cells);
}

}  // namespace

void AddWalletCommands(CLI::App& root, CLI::App& admin, Context& context, Commands& commands) {
  auto* wallet = root.add_subcommand(
      "wallet", "Your wallet: available, reserved, spent (today, this month) and the ledger");
  auto tenant = std::make_shared<std::string>();
  auto entries = std::make_shared<uint32_t>(20);
  wallet->add_option("--tenant", *tenant, "Another tenant's wallet (admin token only)");
  wallet->add_option("--ledger", *entries, "Newest ledger entries to show (0: none; default 20)");
  commands.push_back({wallet, [&context, tenant, entries] {
                        v1::GetWalletRequest request;
                        request.set_tenant(*tenant);
                        request.set_ledger_limit(*entries == 0 ? 1 : *entries);
                        v1::Wallet response;
                        grpc::ClientContext rpc;
                        context.SetDeadline(rpc);
                        const auto status = context.Jobs().GetWallet(&rpc, request, &response);
                        if (!status.ok()) return context.RpcError(status, "wallet");
                        if (context.json()) {
                          context.io().out << ToJson(response, true) << "\n";
                        } else {
                          PrintWallet(context, response, *entries > 0);
                        }
                        return static_cast<int>(kExitOk);
                      }});

  auto* top_up = admin.add_subcommand(
      "top-up", "Add money to a tenant's wallet (its first top-up turns billing on)");
  auto top_tenant = std::make_shared<std::string>();
  auto amount = std::make_shared<std::string>();
  top_up->add_option("tenant", *top_tenant, "Tenant name")->required();
  top_up->add_option("amount", *amount, "USD, e.g. 25 or 12.50 (six decimals at most)")->required();
  auto request_id = std::make_shared<std::string>();
  top_up->add_option("--request-id", *request_id,
                     "Credit once however often this top-up is sent again with the same id (a "
                     "retry after a timeout); remembered 7 days. Without it, a new id is made, "
                     "used for the CLI's own resends, and printed when the credit may be made");
  commands.push_back({top_up, [&context, top_tenant, amount, request_id] {
                        auto micros = ParseUsd(*amount);
                        if (!micros) return context.UsageError("amount", micros.error());
                        v1::TopUpRequest request;
                        request.set_tenant(*top_tenant);
                        request.set_amount_micros(*micros);
                        request.set_request_id(*request_id);
                        v1::Wallet response;
                        if (const int code = TopUpResending(context, request, &response);
                            code != kExitOk) {
                          return code;
                        }
                        if (context.json()) {
                          context.io().out << ToJson(response, true) << "\n";
                        } else {
                          PrintWallet(context, response, false);
                        }
                        return static_cast<int>(kExitOk);
                      }});

  auto* limits = admin.add_subcommand(
      "set-limits", "Set a tenant's most jobs queued and in flight (0: no limit)");
  auto limit_tenant = std::make_shared<std::string>();
  auto max_queued = std::make_shared<int64_t>(0);
  auto max_in_flight = std::make_shared<int64_t>(0);
  limits->add_option("tenant", *limit_tenant, "Tenant name")->required();
  auto* queued_flag = limits->add_option("--max-queued", *max_queued,
                                         "Most jobs not yet running (0: no limit; unchanged when "
                                         "not given)");
  auto* in_flight_flag = limits->add_option(
      "--max-in-flight", *max_in_flight,
      "Most jobs submitted and not ended (0: no limit; unchanged when not given)");
  commands.push_back(
      {limits, [&context, limit_tenant, max_queued, max_in_flight, queued_flag, in_flight_flag] {
         const bool set_queued = queued_flag->count() > 0;
         const bool set_in_flight = in_flight_flag->count() > 0;
         if (!set_queued && !set_in_flight) {
           return context.UsageError("--max-queued",
                                     "give --max-queued and/or --max-in-flight (0 "
                                     "removes a limit)");
         }
         v1::SetLimitsRequest request;
         request.set_tenant(*limit_tenant);
         request.set_max_queued(*max_queued);
         request.set_max_in_flight(*max_in_flight);
         if (!set_queued || !set_in_flight) {
           // SetLimits sets both: the one not given keeps its current value.
           v1::ListTenantsResponse tenants;
           grpc::ClientContext list_rpc;
           context.SetDeadline(list_rpc);
           const auto listed = context.Admin().ListTenants(&list_rpc, {}, &tenants);
           if (!listed.ok()) return context.RpcError(listed, "list tenants");
           for (const auto& t : tenants.tenants()) {
             if (t.name() != *limit_tenant) continue;
             if (!set_queued) request.set_max_queued(t.max_queued());
             if (!set_in_flight) request.set_max_in_flight(t.max_in_flight());
           }
         }
         v1::Tenant response;
         grpc::ClientContext rpc;
         context.SetDeadline(rpc);
         const auto status = context.Admin().SetLimits(&rpc, request, &response);
         if (!status.ok()) return context.RpcError(status, "set-limits");
         if (context.json()) {
           context.io().out << ToJson(response, true) << "\n";
         } else {
           context.io().out << response.name() << "  max queued " << response.max_queued()
                            << "  max in flight " << response.max_in_flight() << "\n";
         }
         return static_cast<int>(kExitOk);
       }});
}

}  // namespace reelq::cli
