#include "bytes_json.h"
#include "reelq/common/utf8.h"

#include <optional>
#include <string>

#include "parse.h"

namespace reelq::cli {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using nlohmann::json;

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string Encode(const std::string& in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t n = (static_cast<uint8_t>(in[i]) << 16) |
                       (static_cast<uint8_t>(in[i + 1]) << 8) | static_cast<uint8_t>(in[i + 2]);
    for (int s : {18, 12, 6, 0}) out.push_back(kAlphabet[(n >> s) & 63]);
  }
  if (i < in.size()) {
    uint32_t n = static_cast<uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) n |= static_cast<uint8_t>(in[i + 1]) << 8;
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(i + 1 < in.size() ? kAlphabet[(n >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

// Standard or URL-safe alphabet, padding optional (protobuf prints standard with padding).
std::optional<std::string> Decode(const std::string& in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '+' || c == '-')
      v = 62;
    else if (c == '/' || c == '_')
      v = 63;
    else if (c == '=')
      break;
    else
      return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

const FieldDescriptor* FindField(const Descriptor& d, const std::string& key) {
  if (const auto* f = d.FindFieldByName(key)) return f;
  for (int i = 0; i < d.field_count(); ++i) {
    if (d.field(i)->json_name() == key) return d.field(i);
  }
  return nullptr;
}

// The one bytes field that holds binary data, not text: an image's bytes, which protobuf's JSON
// form carries as base64 already (every other bytes field is UTF-8 text, written plainly here).
bool IsBinary(const FieldDescriptor& field) {
  return field.full_name() == "reelq.v1.ImageInput.data";
}

template <class Json, class Convert>
void Walk(Json& object, const Descriptor& descriptor, const Convert& convert) {
  if (!object.is_object()) return;
  for (auto it = object.begin(); it != object.end(); ++it) {
    const FieldDescriptor* field = FindField(descriptor, it.key());
    if (field == nullptr) continue;
    Json& value = it.value();
    if (field->is_map()) {
      const FieldDescriptor* v = field->message_type()->map_value();
      if (!value.is_object()) continue;
      for (auto& [k, item] : value.items()) {
        if (v->type() == FieldDescriptor::TYPE_BYTES)
          convert(item);
        else if (v->type() == FieldDescriptor::TYPE_MESSAGE)
          Walk(item, *v->message_type(), convert);
      }
      continue;
    }
    auto one = [&](Json& item) {
      if (field->type() == FieldDescriptor::TYPE_BYTES && !IsBinary(*field))
        convert(item);
      else if (field->type() == FieldDescriptor::TYPE_MESSAGE)
        Walk(item, *field->message_type(), convert);
    };
    if (field->is_repeated() && value.is_array()) {
      for (auto& item : value) one(item);
    } else {
      one(value);
    }
  }
}

}  // namespace

template <class Json>
void ToBase64(Json& object, const Descriptor& descriptor) {
  Walk(object, descriptor, [](Json& item) {
    if (item.is_string()) item = Encode(item.template get<std::string>());
  });
}

template <class Json>
void ToText(Json& object, const Descriptor& descriptor) {
  Walk(object, descriptor, [](Json& item) {
    if (!item.is_string()) return;
    auto text = Decode(item.template get<std::string>());
    if (text && IsValidUtf8(*text)) item = *text;
  });
}

void BytesTextToBase64(json& object, const Descriptor& d) { ToBase64(object, d); }
void BytesTextToBase64(nlohmann::ordered_json& object, const Descriptor& d) { ToBase64(object, d); }
void BytesBase64ToText(json& object, const Descriptor& d) { ToText(object, d); }
void BytesBase64ToText(nlohmann::ordered_json& object, const Descriptor& d) { ToText(object, d); }

}  // namespace reelq::cli
