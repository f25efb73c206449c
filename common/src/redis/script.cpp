#include <openssl/evp.h>

#include "reelq/common/redis.h"

namespace reelq::redis {

namespace {

std::string Sha1Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha1(), nullptr) != 1) {
    throw std::runtime_error("SHA-1 is not available from OpenSSL");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0xf]);
  }
  return hex;
}

}  // namespace

Script::Script(std::string name, std::string source)
    : name_(std::move(name)), source_(std::move(source)), sha_(Sha1Hex(source_)) {}

awaitable<Result<Reply>> Script::Call(Connection& connection, std::vector<std::string> keys,
                                      std::vector<std::string> args) const {
  std::vector<std::string> command;
  command.reserve(3 + keys.size() + args.size());
  command.push_back("EVALSHA");
  command.push_back(sha_);
  command.push_back(std::to_string(keys.size()));
  for (auto& k : keys) command.push_back(std::move(k));
  for (auto& a : args) command.push_back(std::move(a));

  Result<Reply> reply = co_await connection.Command(command);
  if (!reply || !reply->IsError() || !reply->str.starts_with("NOSCRIPT")) co_return reply;

  // The server lost its script cache (restart, failover, SCRIPT FLUSH): load and retry once.
  // (A named vector: g++ 12 miscompiles braced string-literal lists inside coroutines.)
  std::vector<std::string> load = {std::string("SCRIPT"), std::string("LOAD"), source_};
  Result<Reply> loaded = co_await connection.Command(std::move(load));
  if (!loaded) co_return std::unexpected(std::move(loaded.error()));
  if (loaded->IsError()) {
    co_return MakeError(ErrorCategory::kInternal,
                        "loading redis script " + name_ + " failed: " + loaded->str);
  }
  if (loaded->str != sha_) {
    co_return MakeError(ErrorCategory::kInternal, "redis script " + name_ + " loaded as " +
                                                      loaded->str + ", expected SHA-1 " + sha_);
  }
  co_return co_await connection.Command(std::move(command));
}

}  // namespace reelq::redis
