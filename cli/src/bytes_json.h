#pragma once

// The text fields of reelq.v1.JobSpec (prompt, shot prompts, models, ...) are `bytes` on the wire
// so that the scheduler, not protobuf's parser, refuses invalid UTF-8 and names the field.
// Protobuf's JSON form writes `bytes` as base64; a batch file and the CLI's JSON output keep
// them as plain text. These two walk a JSON object along a message descriptor and convert every
// `bytes` field (singular, repeated, or map value) between the two forms.
#include <nlohmann/json.hpp>

#include <google/protobuf/descriptor.h>

namespace reelq::cli {

// Plain text -> base64, before JsonStringToMessage. Non-string values are left for protobuf to
// refuse (with the field named).
void BytesTextToBase64(nlohmann::json& object, const google::protobuf::Descriptor& descriptor);
void BytesTextToBase64(nlohmann::ordered_json& object,
                       const google::protobuf::Descriptor& descriptor);

// base64 -> plain text, after MessageToJsonString. A value that does not decode to valid UTF-8
// stays base64.
void BytesBase64ToText(nlohmann::json& object, const google::protobuf::Descriptor& descriptor);
void BytesBase64ToText(nlohmann::ordered_json& object,
                       const google::protobuf::Descriptor& descriptor);

}  // namespace reelq::cli
