// A measurement of a design, not part of reelq (issue 11): what the worker's TRANSFERRING write
// costs Redis when its logic runs as native code in a Redis module instead of in phase.lua,
// issuing the same commands through RedisModule_Call. `module_cost.py` drives it and the real
// phase function on the same held entries under callgrind; bench/throughput/README.md has the
// figures. It handles only what that write does for a job in its worker's held table (layout 3,
// common_held.lua): the fence (the entry's token), the history entry appended, seq bumped, the
// slot given back (one HINCRBY per account a call), one XADD of the call's events and the
// dispatcher's wake-up. No webhook, no old layouts, no record fallback.
//
// Debian ships no redismodule.h, so the few entry points used are declared here from Redis's
// documented module API (RedisModule_Init's contract: the context's first word is the
// GetApi function, which returns each entry point by name).

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <vector>

extern "C" {
struct RedisModuleCtx;
struct RedisModuleString;
struct RedisModuleCallReply;
using RedisModuleCmdFunc = int (*)(RedisModuleCtx*, RedisModuleString**, int);
}

namespace {

constexpr int kOk = 0;
constexpr int kErr = 1;
constexpr int kApiVersion1 = 1;
constexpr int kReplyString = 0;
constexpr int kReplyArray = 3;

int (*GetApi)(const char*, void*) = nullptr;
int (*SetModuleAttribs)(RedisModuleCtx*, const char*, int, int) = nullptr;
int (*CreateCommand)(RedisModuleCtx*, const char*, RedisModuleCmdFunc, const char*, int, int,
                     int) = nullptr;
void (*AutoMemory)(RedisModuleCtx*) = nullptr;
RedisModuleCallReply* (*Call)(RedisModuleCtx*, const char*, const char*, ...) = nullptr;
int (*CallReplyType)(RedisModuleCallReply*) = nullptr;
size_t (*CallReplyLength)(RedisModuleCallReply*) = nullptr;
RedisModuleCallReply* (*CallReplyArrayElement)(RedisModuleCallReply*, size_t) = nullptr;
const char* (*CallReplyStringPtr)(RedisModuleCallReply*, size_t*) = nullptr;
long long (*CallReplyInteger)(RedisModuleCallReply*) = nullptr;
const char* (*StringPtrLen)(const RedisModuleString*, size_t*) = nullptr;
RedisModuleString* (*CreateString)(RedisModuleCtx*, const char*, size_t) = nullptr;
int (*ReplyWithArray)(RedisModuleCtx*, long) = nullptr;
int (*ReplyWithSimpleString)(RedisModuleCtx*, const char*) = nullptr;
int (*ReplyWithError)(RedisModuleCtx*, const char*) = nullptr;
int (*WrongArity)(RedisModuleCtx*) = nullptr;

template <typename F>
bool Api(const char* name, F* slot) {
  return GetApi(name, reinterpret_cast<void*>(slot)) == kOk;
}

std::string_view View(RedisModuleString* s) {
  size_t n = 0;
  const char* p = StringPtrLen(s, &n);
  return {p, n};
}

RedisModuleString* Str(RedisModuleCtx* ctx, std::string_view s) {
  return CreateString(ctx, s.data(), s.size());
}

// The head of a layout-3 held entry: "\30token\31account\31seq\31slot\31log\31intent\31up\31"
// then the rest (batch, tenant, ... and the history entries).
struct Held {
  std::string_view token, account, seq, slot, log, intent, upstream, rest, batch, tenant;
};

bool Parse(std::string_view text, Held& h) {
  if (text.empty() || text[0] != '\x1e') return false;
  std::string_view* heads[] = {&h.token, &h.account, &h.seq,     &h.slot,
                               &h.log,   &h.intent,  &h.upstream};
  size_t at = 1;
  for (std::string_view* field : heads) {
    const size_t end = text.find('\x1f', at);
    if (end == std::string_view::npos) return false;
    *field = text.substr(at, end - at);
    at = end + 1;
  }
  h.rest = text.substr(at);
  const size_t batch_end = h.rest.find('\x1f');
  if (batch_end == std::string_view::npos) return false;
  h.batch = h.rest.substr(0, batch_end);
  const size_t tenant_end = h.rest.find('\x1f', batch_end + 1);
  if (tenant_end == std::string_view::npos) return false;
  h.tenant = h.rest.substr(batch_end + 1, tenant_end - batch_end - 1);
  return true;
}

// REELQSPIKE.TRANSFER P now n (id token)*n: as phase.lua with phase TRANSFERRING for jobs in
// their workers' held tables. Replies per job OK or LEASELOST.
int Transfer(RedisModuleCtx* ctx, RedisModuleString** argv, int argc) {
  if (argc < 4) return WrongArity(ctx);
  AutoMemory(ctx);
  const std::string P(View(argv[1]));
  const std::string_view now = View(argv[2]);
  const int n = std::atoi(std::string(View(argv[3])).c_str());
  if (n < 0 || argc != 4 + 2 * n) return WrongArity(ctx);

  // Jobs grouped by worker (a token is "<fence>/<worker>"), one HMGET a table.
  struct Group {
    std::vector<RedisModuleString*> ids;
    std::vector<int> at;
  };
  std::map<std::string, Group> groups;
  std::vector<std::string_view> tokens(n);
  for (int i = 0; i < n; ++i) {
    tokens[i] = View(argv[5 + 2 * i]);
    const size_t slash = tokens[i].find('/');
    if (slash == std::string_view::npos) continue;
    Group& g = groups[std::string(tokens[i].substr(slash + 1))];
    g.ids.push_back(argv[4 + 2 * i]);
    g.at.push_back(i);
  }
  std::vector<bool> ok(n, false);
  std::map<std::string, long long> released;  // account -> slots given back
  std::vector<RedisModuleString*> events{Str(ctx, "MAXLEN"), Str(ctx, "~"), Str(ctx, "100000"),
                                         Str(ctx, "*")};
  for (auto& [worker, g] : groups) {
    const std::string key = P + ":wjobs:" + worker;
    RedisModuleCallReply* r = Call(ctx, "HMGET", "cv", key.c_str(), g.ids.data(), g.ids.size());
    if (r == nullptr || CallReplyType(r) != kReplyArray) {
      return ReplyWithError(ctx, "ERR held table read failed");
    }
    std::vector<RedisModuleString*> writes;
    for (size_t k = 0; k < g.ids.size(); ++k) {
      RedisModuleCallReply* e = CallReplyArrayElement(r, k);
      if (CallReplyType(e) != kReplyString) continue;
      size_t len = 0;
      const char* p = CallReplyStringPtr(e, &len);
      Held h;
      const int i = g.at[k];
      if (!Parse({p, len}, h) || h.token != tokens[i]) continue;
      const std::string seq = std::to_string(std::atoll(std::string(h.seq).c_str()) + 1);
      if (!h.slot.empty()) released[std::string(h.slot)] += 1;
      std::string entry;
      entry.reserve(len + 48);
      entry.append("\x1e").append(h.token).append("\x1f").append(h.account).append("\x1f");
      entry.append(seq).append("\x1f\x1f").append(h.log).append("\x1f").append(h.intent);
      entry.append("\x1f").append(h.upstream).append("\x1f").append(h.rest);
      entry.append("\x1fRUNNING|TRANSFERRING|").append(now).append("|");
      writes.push_back(g.ids[k]);
      writes.push_back(Str(ctx, entry));
      const std::string_view id = View(g.ids[k]);
      std::string event;
      event.append(id).append("\x1f").append(seq).append("\x1fRUNNING\x1fTRANSFERRING\x1f");
      event.append(now).append("\x1f").append(h.batch).append("\x1f").append(h.tenant);
      event.append("\x1f");
      events.push_back(Str(ctx, "e"));
      events.push_back(Str(ctx, event));
      ok[i] = true;
    }
    if (!writes.empty()) Call(ctx, "HSET", "cv", key.c_str(), writes.data(), writes.size());
  }
  for (const auto& [account, count] : released) {
    const std::string key = P + ":acct:" + account;
    Call(ctx, "HINCRBY", "ccl", key.c_str(), "in_flight", -count);
  }
  const std::string events_key = P + ":events";
  if (events.size() > 4) Call(ctx, "XADD", "cv", events_key.c_str(), events.data(), events.size());
  if (!released.empty()) {
    const std::string wake = P + ":dwake";
    RedisModuleCallReply* len = Call(ctx, "LLEN", "c", wake.c_str());
    if (len != nullptr && CallReplyInteger(len) == 0) Call(ctx, "LPUSH", "cc", wake.c_str(), "1");
  }
  ReplyWithArray(ctx, n);
  for (int i = 0; i < n; ++i) ReplyWithSimpleString(ctx, ok[i] ? "OK" : "LEASELOST");
  return kOk;
}

}  // namespace

extern "C" int RedisModule_OnLoad(RedisModuleCtx* ctx, RedisModuleString**, int) {
  GetApi = reinterpret_cast<int (*)(const char*, void*)>(reinterpret_cast<void**>(ctx)[0]);
  const bool all = Api("RedisModule_SetModuleAttribs", &SetModuleAttribs) &&
                   Api("RedisModule_CreateCommand", &CreateCommand) &&
                   Api("RedisModule_AutoMemory", &AutoMemory) && Api("RedisModule_Call", &Call) &&
                   Api("RedisModule_CallReplyType", &CallReplyType) &&
                   Api("RedisModule_CallReplyLength", &CallReplyLength) &&
                   Api("RedisModule_CallReplyArrayElement", &CallReplyArrayElement) &&
                   Api("RedisModule_CallReplyStringPtr", &CallReplyStringPtr) &&
                   Api("RedisModule_CallReplyInteger", &CallReplyInteger) &&
                   Api("RedisModule_StringPtrLen", &StringPtrLen) &&
                   Api("RedisModule_CreateString", &CreateString) &&
                   Api("RedisModule_ReplyWithArray", &ReplyWithArray) &&
                   Api("RedisModule_ReplyWithSimpleString", &ReplyWithSimpleString) &&
                   Api("RedisModule_ReplyWithError", &ReplyWithError) &&
                   Api("RedisModule_WrongArity", &WrongArity);
  if (!all) return kErr;
  SetModuleAttribs(ctx, "reelqspike", 1, kApiVersion1);
  return CreateCommand(ctx, "reelqspike.transfer", Transfer, "write deny-oom", 0, 0, 0);
}
