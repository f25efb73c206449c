#pragma once

#include <yaml-cpp/yaml.h>

#include "reelq/common/asio.h"
#include "reelq/common/error.h"
#include "reelq/common/http_client.h"
#include "reelq/storage/object_store.h"

namespace reelq::storage {

// Builds the store named by the `storage:` section of the config (backend: fs | s3 | "null";
// null discards everything and is for benchmarks and tests only).
// Relative filesystem roots are resolved against `base_dir`. Malformed settings are
// kInvalidRequest errors naming the key ("storage.s3.bucket: required").
Result<ObjectStorePtr> MakeStore(const YAML::Node& storage_section, asio::any_io_executor executor,
                                 http::ClientPtr http, const std::string& base_dir);

}  // namespace reelq::storage
