#include <algorithm>
#include <chrono>
#include <utility>

#include "reelq/common/logging.h"
#include "reelq/common/redis.h"

namespace reelq::redis {

namespace {

bool IsMissingFunction(const Reply& reply) {
  return reply.IsError() && reply.str.find("Function not found") != std::string::npos;
}

// Redis before 7.0 knows neither FCALL nor FUNCTION.
bool IsUnknownCommand(const Reply& reply) {
  return reply.IsError() && (reply.str.starts_with("ERR unknown command") ||
                             reply.str.starts_with("ERR unknown subcommand"));
}

std::unexpected<Error> NoFunctions(const std::string& answer) {
  return MakeError(ErrorCategory::kFailedPrecondition,
                   "this Redis has no functions (it answered \"" + answer +
                       "\"): reelq needs Redis 7.0 or later");
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

FunctionLibrary::FunctionLibrary(std::string family, std::string name, std::string source)
    : family_(std::move(family)), name_(std::move(name)), source_(std::move(source)) {}

awaitable<Result<void>> FunctionLibrary::Load(Connection& connection) const {
  std::vector<std::string> load{"FUNCTION", "LOAD", source_};
  auto loaded = co_await connection.Command(std::move(load));
  if (!loaded) co_return std::unexpected(std::move(loaded.error()));
  if (IsUnknownCommand(*loaded)) co_return NoFunctions(loaded->str);
  // "already exists": another process of this build loaded it first.
  if (loaded->IsError() && loaded->str.find("already exists") == std::string::npos) {
    co_return MakeError(ErrorCategory::kInternal,
                        "loading Redis function library " + name_ + " failed: " + loaded->str);
  }

  // Keep the newest kKeptLibraries of the family. Best effort: the library is loaded whatever
  // happens here, and the next load prunes again.
  const std::string registry = family_ + ":function-libraries";
  std::vector<std::string> note{"HSET", registry, name_, std::to_string(NowMs())};
  auto noted = co_await connection.Command(std::move(note));
  Result<Reply> all = Reply{};
  std::string why;
  if (!noted) {
    why = noted.error().Describe();
  } else if (noted->IsError()) {
    why = noted->str;
  } else {
    std::vector<std::string> read{"HGETALL", registry};
    all = co_await connection.Command(std::move(read));
    if (!all) {
      why = all.error().Describe();
    } else if (all->IsError()) {
      why = all->str;
    }
  }
  if (!why.empty()) {
    spdlog::warn("redis: could not prune old function libraries of {}: {}", family_, why);
    co_return Result<void>{};
  }
  std::vector<std::pair<int64_t, std::string>> by_age;  // newest first
  for (size_t i = 0; i + 1 < all->elements.size(); i += 2) {
    int64_t at = 0;
    try {
      at = std::stoll(all->elements[i + 1].str);
    } catch (const std::exception&) {
      at = 0;  // not a time: oldest
    }
    by_age.emplace_back(at, all->elements[i].str);
  }
  std::sort(by_age.rbegin(), by_age.rend());
  for (size_t i = FunctionLibrary::kKeptLibraries; i < by_age.size(); ++i) {
    const std::string& old = by_age[i].second;
    if (old == name_) continue;
    std::vector<std::string> drop{"FUNCTION", "DELETE", old};
    auto dropped = co_await connection.Command(std::move(drop));
    if (!dropped) break;
    // "Library not found": deleted by hand or by another process's prune.
    if (dropped->IsError() && dropped->str.find("not found") == std::string::npos) {
      spdlog::warn("redis: could not delete old function library {}: {}", old, dropped->str);
      continue;
    }
    std::vector<std::string> forget{"HDEL", registry, old};
    co_await connection.Command(std::move(forget));
  }
  co_return Result<void>{};
}

Function::Function(const FunctionLibrary& library, std::string name)
    : library_(library), name_(std::move(name)), registered_(library.name() + "_" + name_) {}

awaitable<Result<Reply>> Function::Call(Connection& connection, std::vector<std::string> keys,
                                        std::vector<std::string> args) const {
  std::vector<std::string> command;
  command.reserve(3 + keys.size() + args.size());
  command.push_back("FCALL");
  command.push_back(registered_);
  command.push_back(std::to_string(keys.size()));
  for (auto& k : keys) command.push_back(std::move(k));
  for (auto& a : args) command.push_back(std::move(a));

  Result<Reply> reply = co_await connection.Command(command);
  if (reply && IsUnknownCommand(*reply)) co_return NoFunctions(reply->str);
  if (!reply || !IsMissingFunction(*reply)) co_return reply;
  auto loaded = co_await library_.Load(connection);
  if (!loaded) co_return std::unexpected(std::move(loaded.error()));
  co_return co_await connection.Command(std::move(command));
}

}  // namespace reelq::redis
