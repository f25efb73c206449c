#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>

#include <yaml-cpp/yaml.h>

#include "reelq/common/error.h"
#include "reelq/common/redis.h"

namespace reelq::config {

// A loaded configuration document: the YAML file, with the catalogue file (`catalogue_file:`)
// merged in and REELQ__SECTION__KEY environment overrides applied.
struct Document {
  YAML::Node root;
  std::string base_dir;  // directory of the config file; relative paths resolve against it
  std::string path;
};

// Loads `path`. `env` is the environment to read overrides from (tests pass their own).
// Errors are kInvalidRequest naming the file, line and key.
Result<Document> Load(const std::string& path, const std::map<std::string, std::string>& env);
Result<Document> LoadFromString(const std::string& yaml, const std::string& base_dir,
                                const std::map<std::string, std::string>& env);
std::map<std::string, std::string> ProcessEnvironment();

// Typed reads with errors that name the key ("worker.lease_seconds: expected a positive
// number, got 'ten'"). A missing key yields the fallback.
Result<std::string> GetString(const YAML::Node& section, const std::string& section_name,
                              const std::string& key, const std::string& fallback);
Result<double> GetNumber(const YAML::Node& section, const std::string& section_name,
                         const std::string& key, double fallback, double min, double max);
Result<int64_t> GetInt(const YAML::Node& section, const std::string& section_name,
                       const std::string& key, int64_t fallback, int64_t min, int64_t max);
Result<bool> GetBool(const YAML::Node& section, const std::string& section_name,
                     const std::string& key, bool fallback);

// Refuses a key of `section` that is not in `known`, naming it and the nearest known key
// ("worker.lease_secnds: unknown key; did you mean lease_seconds?"): a misspelt setting must not
// silently fall back to its default. A missing section is fine.
Result<void> CheckKeys(const YAML::Node& section, const std::string& section_name,
                       const std::set<std::string>& known);

// Reads {env: NAME} or {file: PATH} (or nothing) and resolves it; empty when unset.
Result<std::string> GetSecret(const YAML::Node& section, const std::string& section_name,
                              const std::string& key,
                              const std::map<std::string, std::string>& env);

struct RedisSettings {
  redis::Options options;
  std::string prefix = "reelq";
  // redis.wait_replicas: an acknowledged submission (and top-up, and SetLimits) is on this many
  // replicas (WAIT), so it survives the loss of the master; 0: acknowledged once the master has
  // it.
  int wait_replicas = 0;
  std::chrono::milliseconds wait_timeout{1000};  // redis.wait_timeout_ms
};
Result<RedisSettings> ParseRedis(const Document& doc,
                                 const std::map<std::string, std::string>& env);

// "host:port" -> pair; errors name the key.
Result<std::pair<std::string, int>> ParseHostPort(const std::string& value,
                                                  const std::string& key_name);

// A listening address: "host:port", "[v6]:port" or ":port" (every interface), the port a number
// from 0 (any free one) to 65535. Only the form is checked (a host name is resolved when bound);
// kInvalidRequest naming `key_name` otherwise.
Result<void> CheckListenAddress(const std::string& value, const std::string& key_name);

}  // namespace reelq::config
