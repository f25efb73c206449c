#pragma once

#include "reelq/storage/object_store.h"
#include "s3_client.h"

namespace reelq::storage::s3 {

ObjectWriterPtr MakeWriter(ClientPtr client, std::string key, PutOptions options);

// HEAD of one object; kNotFound when absent. Shared by the store and the writers.
awaitable<Result<ObjectInfo>> HeadObject(ClientPtr client, std::string key);

}  // namespace reelq::storage::s3
