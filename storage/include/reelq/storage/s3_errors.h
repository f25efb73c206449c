#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "reelq/common/error.h"
#include "reelq/common/http_client.h"

namespace reelq::storage::s3 {

// Text of the first <tag>...</tag> in an S3 XML document, entities decoded. A tolerant
// extractor for the few fields reelq reads (Code, Message, UploadId, ETag): no DTDs, no
// namespaces, never throws, nullopt on anything it does not understand.
std::optional<std::string> XmlText(std::string_view xml, std::string_view tag);

// What the mapping reads besides the status and body, for the answers whose body says nothing
// (HEAD has none): the request's method, the configured region (storage.s3.region) and the
// response's headers (lower-case names; AWS names a bucket's region in x-amz-bucket-region).
struct S3ErrorContext {
  std::string_view method;
  std::string_view region;
  const http::Headers* headers = nullptr;
};

// The one mapping from an S3 answer (HTTP status + XML error body, possibly empty as for
// HEAD) to the error vocabulary. `what` names the request ("PUT s3://bucket/key part 3"),
// `bucket` the configured bucket.
Error MapS3Error(int status, std::string_view body, std::string_view what, std::string_view bucket,
                 const S3ErrorContext& context = {});

}  // namespace reelq::storage::s3
