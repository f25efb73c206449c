#include "reelq/common/config.h"
#include "reelq/common/known_keys.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

extern char** environ;

namespace reelq::config {
namespace {

std::unexpected<Error> Invalid(std::string message) {
  return MakeError(ErrorCategory::kInvalidRequest, std::move(message));
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// The setting that holds path[k] ('the top level' for the first part), for messages.
std::string Owner(const std::vector<std::string>& path, size_t k) {
  if (k == 0) return "the top level";
  std::string dotted;
  for (size_t i = 0; i < k; ++i) dotted += (i == 0 ? "" : ".") + path[i];
  return "'" + dotted + "'";
}

// REELQ__WORKER__MAX_IN_FLIGHT=512 sets worker.max_in_flight. Numeric path parts index lists
// (REELQ__ACCOUNTS__0__BASE_URL).
Result<void> ApplyOverrides(YAML::Node& root, const std::map<std::string, std::string>& env) {
  constexpr std::string_view kPrefix = "REELQ__";
  for (const auto& [name, value] : env) {
    if (!name.starts_with(kPrefix)) continue;
    std::vector<std::string> path;
    std::string rest = name.substr(kPrefix.size());
    size_t pos = 0;
    while (true) {
      size_t next = rest.find("__", pos);
      path.push_back(Lower(rest.substr(pos, next - pos)));
      if (next == std::string::npos) break;
      pos = next + 2;
    }
    if (std::any_of(path.begin(), path.end(), [](const std::string& p) { return p.empty(); })) {
      return Invalid("environment override " + name + ": empty path segment");
    }
    std::vector<YAML::Node> chain{root};
    for (size_t i = 0; i + 1 < path.size(); ++i) {
      YAML::Node parent = chain.back();
      const std::string& part = path[i];
      YAML::Node child;
      if (parent.IsSequence()) {
        size_t index = 0;
        try {
          index = std::stoul(part);
        } catch (...) {
          return Invalid("environment override " + name + ": '" + part + "' is not a list index");
        }
        if (index >= parent.size()) {
          return Invalid("environment override " + name + ": index " + part + " is out of range");
        }
        child = parent[index];
      } else {
        if (parent.IsScalar()) {
          // yaml-cpp throws on a key under a scalar: say which setting is not a section.
          return Invalid("environment override " + name + ": " + Owner(path, i) +
                         " is a value, not a section with keys");
        }
        child = parent[part];
        if (!child.IsDefined() || child.IsNull()) {
          parent[part] = YAML::Node(YAML::NodeType::Map);
          child = parent[part];
        }
      }
      chain.push_back(child);
    }
    YAML::Node parent = chain.back();
    if (parent.IsSequence()) {
      return Invalid("environment override " + name + ": cannot replace a list entry whole");
    }
    if (parent.IsScalar()) {
      return Invalid("environment override " + name + ": " + Owner(path, path.size() - 1) +
                     " is a value, not a section with keys");
    }
    try {
      parent[path.back()] = YAML::Load(value.empty() ? "\"\"" : value);
    } catch (const YAML::Exception& e) {
      return Invalid("environment override " + name + ": its value is not valid YAML (" + e.msg +
                     "); quote a plain string");
    }
  }
  return {};
}

// The sections a config file may have: the processes' own and the catalogue's.
const std::set<std::string>& TopLevelSections() {
  static const std::set<std::string> sections{"catalogue_file", "redis",   "scheduler", "auth",
                                              "tenants",        "worker",  "storage",   "accounts",
                                              "models",         "routing", "queue",     "webhooks"};
  return sections;
}

Result<Document> Finish(YAML::Node root, std::string base_dir, std::string path,
                        const std::map<std::string, std::string>& env) {
  if (!root.IsMap()) return Invalid(path + ": the top level must be a mapping of sections");
  // REELQ__CATALOGUE_FILE names the catalogue to merge, so it applies before the merge; every
  // other override applies after it, so that it can override the catalogue's values too.
  std::map<std::string, std::string> catalogue_override;
  for (const auto& [name, value] : env) {
    if (name.starts_with("REELQ__") && Lower(name.substr(7)) == "catalogue_file") {
      catalogue_override.emplace(name, value);
    }
  }
  if (auto r = ApplyOverrides(root, catalogue_override); !r) return std::unexpected(r.error());
  if (auto cat = root["catalogue_file"]; cat && cat.IsScalar()) {
    std::filesystem::path file = cat.as<std::string>();
    if (file.is_relative()) file = std::filesystem::path(base_dir) / file;
    YAML::Node catalogue;
    try {
      catalogue = YAML::LoadFile(file.string());
    } catch (const YAML::Exception& e) {
      return Invalid("catalogue_file " + file.string() + ": " + e.what());
    }
    if (!catalogue.IsMap()) return Invalid("catalogue_file " + file.string() + ": not a mapping");
    // The config's own models replace the catalogue's by id; other sections fill in.
    for (const auto& kv : catalogue) {
      const std::string key = kv.first.as<std::string>();
      if (key == "models" && root["models"] && root["models"].IsSequence()) {
        YAML::Node merged(YAML::NodeType::Sequence);
        std::set<std::string> own;
        for (const auto& m : root["models"]) {
          if (m["id"]) own.insert(m["id"].as<std::string>());
          merged.push_back(m);
        }
        for (const auto& m : kv.second) {
          if (!m["id"] || !own.contains(m["id"].as<std::string>())) merged.push_back(m);
        }
        root["models"] = merged;
      } else if (!root[key]) {
        root[key] = kv.second;
      }
    }
  }
  if (auto r = ApplyOverrides(root, env); !r) return std::unexpected(r.error());
  if (auto r = CheckKeys(root, "", TopLevelSections()); !r) {
    return Invalid(path + ": " + r.error().message);
  }
  return Document{root, std::move(base_dir), std::move(path)};
}

std::string Describe(const YAML::Node& node) {
  if (!node.IsScalar()) return node.IsSequence() ? "a list" : "a mapping";
  return "'" + node.Scalar() + "'";
}

}  // namespace

std::map<std::string, std::string> ProcessEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string entry(*e);
    auto eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  return env;
}

Result<Document> Load(const std::string& path, const std::map<std::string, std::string>& env) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return Invalid("config file " + path + ": cannot be read");
  } catch (const YAML::Exception& e) {
    return Invalid("config file " + path + ": " + e.what());
  }
  auto dir = std::filesystem::absolute(path).parent_path().string();
  return Finish(root, dir, path, env);
}

Result<Document> LoadFromString(const std::string& yaml, const std::string& base_dir,
                                const std::map<std::string, std::string>& env) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return Invalid(std::string("config: ") + e.what());
  }
  return Finish(root, base_dir, "<string>", env);
}

Result<std::string> GetString(const YAML::Node& section, const std::string& section_name,
                              const std::string& key, const std::string& fallback) {
  if (!section || !section[key] || section[key].IsNull()) return fallback;
  const auto node = section[key];
  if (!node.IsScalar()) {
    return Invalid(section_name + "." + key + ": expected a string, got " + Describe(node));
  }
  return node.Scalar();
}

Result<double> GetNumber(const YAML::Node& section, const std::string& section_name,
                         const std::string& key, double fallback, double min, double max) {
  if (!section || !section[key] || section[key].IsNull()) return fallback;
  const auto node = section[key];
  double v = 0;
  try {
    if (!node.IsScalar()) throw YAML::Exception(YAML::Mark(), "");
    v = node.as<double>();
  } catch (const YAML::Exception&) {
    return Invalid(section_name + "." + key + ": expected a number, got " + Describe(node));
  }
  // Written so that NaN fails it (every comparison with NaN is false): yaml-cpp reads .nan and
  // .inf as numbers, and `v < min || v > max` let .nan through.
  if (!std::isfinite(v) || !(v >= min && v <= max)) {
    std::ostringstream msg;
    msg << section_name << "." << key << ": ";
    if (std::isfinite(v)) {
      msg << v << " is out of range";
    } else {
      msg << node.Scalar() << " is not a finite number; expected one";
    }
    msg << " [" << min << ", " << max << "]";
    return Invalid(msg.str());
  }
  return v;
}

Result<int64_t> GetInt(const YAML::Node& section, const std::string& section_name,
                       const std::string& key, int64_t fallback, int64_t min, int64_t max) {
  if (!section || !section[key] || section[key].IsNull()) return fallback;
  const auto node = section[key];
  int64_t v = 0;
  try {
    if (!node.IsScalar()) throw YAML::Exception(YAML::Mark(), "");
    v = node.as<int64_t>();
  } catch (const YAML::Exception&) {
    return Invalid(section_name + "." + key + ": expected a whole number, got " + Describe(node));
  }
  if (v < min || v > max) {
    return Invalid(section_name + "." + key + ": " + std::to_string(v) + " is out of range [" +
                   std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return v;
}

Result<bool> GetBool(const YAML::Node& section, const std::string& section_name,
                     const std::string& key, bool fallback) {
  if (!section || !section[key] || section[key].IsNull()) return fallback;
  try {
    return section[key].as<bool>();
  } catch (const YAML::Exception&) {
    return Invalid(section_name + "." + key + ": expected true or false, got " +
                   Describe(section[key]));
  }
}

Result<std::string> GetSecret(const YAML::Node& section, const std::string& section_name,
                              const std::string& key,
                              const std::map<std::string, std::string>& env) {
  if (!section || !section[key] || section[key].IsNull()) return std::string();
  const auto node = section[key];
  const std::string name = section_name + "." + key;
  if (!node.IsMap()) {
    return Invalid(name +
                   ": secrets are never written in the config; use {env: VAR} or "
                   "{file: /path}");
  }
  if (node["env"]) {
    const auto var = node["env"].as<std::string>();
    auto it = env.find(var);
    return it == env.end() ? std::string() : it->second;
  }
  if (node["file"]) {
    const auto path = node["file"].as<std::string>();
    std::ifstream in(path);
    if (!in) return Invalid(name + ": cannot read file " + path);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string s = ss.str();
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
    return s;
  }
  return Invalid(name + ": expected {env: VAR} or {file: /path}");
}

Result<std::pair<std::string, int>> ParseHostPort(const std::string& value,
                                                  const std::string& key_name) {
  auto colon = value.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Invalid(key_name + ": expected host:port, got '" + value + "'");
  }
  std::string host = value.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port = -1;
  try {
    size_t used = 0;
    port = std::stoi(value.substr(colon + 1), &used);
    if (used != value.size() - colon - 1) port = -1;
  } catch (...) {
    port = -1;
  }
  if (port < 0 || port > 65535) {
    return Invalid(key_name + ": '" + value.substr(colon + 1) + "' is not a port number");
  }
  return std::make_pair(host, port);
}

Result<void> CheckListenAddress(const std::string& value, const std::string& key_name) {
  const auto colon = value.rfind(':');
  if (colon == std::string::npos) {
    return Invalid(key_name + ": expected host:port, [v6]:port or :port, got '" + value + "'");
  }
  const std::string host = value.substr(0, colon);
  const std::string port = value.substr(colon + 1);
  const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (!bracketed && host.find(':') != std::string::npos) {
    return Invalid(key_name + ": an IPv6 address goes in brackets ([::1]:9464), got '" + value +
                   "'");
  }
  if (host.find_first_of(" \t/") != std::string::npos) {
    return Invalid(key_name + ": '" + host + "' is not a host name or address");
  }
  const bool digits =
      !port.empty() && port.size() <= 5 &&
      std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c); });
  if (!digits || std::stoi(port) > 65535) {
    return Invalid(key_name + ": '" + port +
                   "' is not a port number (0 to 65535; 0: any free port)");
  }
  return {};
}

// redis.sentinels (a list of "host:port", or one comma-separated string, which is what an
// environment override gives), redis.master_name, redis.wait_replicas, redis.wait_timeout_ms.
static Result<void> ParseSentinels(const YAML::Node& section, RedisSettings* out,
                                   const std::map<std::string, std::string>& env) {
  std::vector<std::string> entries;
  const YAML::Node sentinels = section ? section["sentinels"] : YAML::Node();
  if (sentinels && !sentinels.IsNull()) {
    if (sentinels.IsSequence()) {
      for (const auto& item : sentinels) {
        if (!item.IsScalar()) return Invalid("redis.sentinels: expected a list of host:port");
        entries.push_back(item.as<std::string>());
      }
    } else if (sentinels.IsScalar()) {
      std::string text = sentinels.as<std::string>();
      size_t start = 0;
      while (start <= text.size()) {
        const size_t comma = std::min(text.find(',', start), text.size());
        std::string entry = text.substr(start, comma - start);
        entry.erase(0, entry.find_first_not_of(" \t"));
        entry.erase(entry.find_last_not_of(" \t") + 1);
        if (!entry.empty()) entries.push_back(entry);
        start = comma + 1;
      }
    } else {
      return Invalid("redis.sentinels: expected a list of host:port");
    }
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    auto endpoint = ParseHostPort(entries[i], "redis.sentinels[" + std::to_string(i) + "]");
    if (!endpoint) return std::unexpected(endpoint.error());
    if (endpoint->second == 0) {
      return Invalid("redis.sentinels[" + std::to_string(i) + "]: port 0 is not a sentinel's port");
    }
    out->options.sentinels.push_back({endpoint->first, endpoint->second});
  }
  auto master_name = GetString(section, "redis", "master_name", "");
  if (!master_name) return std::unexpected(master_name.error());
  if (!entries.empty() && master_name->empty()) {
    return Invalid(
        "redis.master_name: required with redis.sentinels (the name the sentinels "
        "monitor, as in `sentinel monitor <name> ...`)");
  }
  if (entries.empty() && !master_name->empty()) {
    return Invalid("redis.master_name: set without redis.sentinels to ask for it");
  }
  out->options.master_name = *master_name;
  auto sentinel_password = GetSecret(section, "redis", "sentinel_password", env);
  if (!sentinel_password) return std::unexpected(sentinel_password.error());
  if (entries.empty() && !sentinel_password->empty()) {
    return Invalid("redis.sentinel_password: set without redis.sentinels to send it to");
  }
  out->options.sentinel_password = *sentinel_password;
  auto wait_replicas = GetInt(section, "redis", "wait_replicas", 0, 0, 16);
  if (!wait_replicas) return std::unexpected(wait_replicas.error());
  auto wait_timeout = GetInt(section, "redis", "wait_timeout_ms", 1000, 1, 60000);
  if (!wait_timeout) return std::unexpected(wait_timeout.error());
  out->wait_replicas = static_cast<int>(*wait_replicas);
  out->wait_timeout = std::chrono::milliseconds(*wait_timeout);
  return {};
}

Result<RedisSettings> ParseRedis(const Document& doc,
                                 const std::map<std::string, std::string>& env) {
  RedisSettings out;
  const auto section = doc.root["redis"];
  if (auto k =
          CheckKeys(section, "redis",
                    {"host", "port", "db", "prefix", "password", "command_timeout_ms", "sentinels",
                     "master_name", "sentinel_password", "wait_replicas", "wait_timeout_ms"});
      !k) {
    return std::unexpected(k.error());
  }
  auto host = GetString(section, "redis", "host", "127.0.0.1");
  auto port = GetInt(section, "redis", "port", 6379, 1, 65535);
  auto db = GetInt(section, "redis", "db", 0, 0, 1024);
  auto prefix = GetString(section, "redis", "prefix", "reelq");
  auto password = GetSecret(section, "redis", "password", env);
  auto timeout = GetInt(section, "redis", "command_timeout_ms", 5000, 10, 600000);
  for (const auto* r : {&host, &prefix}) {
    if (!*r) return std::unexpected(r->error());
  }
  if (!port) return std::unexpected(port.error());
  if (!db) return std::unexpected(db.error());
  if (!password) return std::unexpected(password.error());
  if (!timeout) return std::unexpected(timeout.error());
  if (prefix->empty() || prefix->find_first_of("{} \t") != std::string::npos) {
    return Invalid("redis.prefix: '" + *prefix + "' must be non-empty, without braces or spaces");
  }
  out.options.host = *host;
  out.options.port = static_cast<int>(*port);
  out.options.db = static_cast<int>(*db);
  out.options.password = *password;
  out.options.command_timeout = std::chrono::milliseconds(*timeout);
  out.prefix = *prefix;
  if (auto sentinel = ParseSentinels(section, &out, env); !sentinel) {
    return std::unexpected(sentinel.error());
  }
  return out;
}

Result<void> CheckKeys(const YAML::Node& section, const std::string& section_name,
                       const std::set<std::string>& known) {
  if (!section || section.IsNull()) return {};
  if (!section.IsMap()) return Invalid(section_name + ": expected a mapping");
  std::vector<std::string> keys;
  for (const auto& kv : section) keys.push_back(kv.first.as<std::string>());
  if (auto unknown =
          FindUnknownKey(keys, section_name, known, section_name.empty() ? "section" : "key")) {
    return Invalid(*unknown);
  }
  return {};
}

}  // namespace reelq::config
