#include "jsonl.h"
#include "reelq/common/utf8.h"

#include "bytes_json.h"

#include <nlohmann/json.hpp>

#include <google/protobuf/util/json_util.h>

namespace reelq::cli {
namespace {

using nlohmann::json;

// nlohmann messages start with "[json.exception.parse_error.101] "; the user needs the rest.
std::string StripJsonPrefix(const std::string& what) {
  if (!what.empty() && what.front() == '[') {
    const auto end = what.find("] ");
    if (end != std::string::npos) return what.substr(end + 2);
  }
  return what;
}

// Short use-case names are a convenience of the CLI; the wire format wants the enum name. The
// job's own useCase and each shot's (shots[i].useCase) take them.
Parsed<void> NormaliseUseCase(json& object, const std::string& path = "") {
  for (const char* key : {"useCase", "use_case"}) {
    auto it = object.find(key);
    if (it == object.end() || !it->is_string()) continue;
    auto value = ParseUseCase(it->get<std::string>());
    if (!value) return std::unexpected("field " + path + key + ": " + value.error());
    *it = v1::UseCase_Name(*value);
  }
  if (!path.empty()) return {};
  auto shots = object.find("shots");
  if (shots == object.end() || !shots->is_array()) return {};
  for (size_t i = 0; i < shots->size(); ++i) {
    auto& shot = (*shots)[i];
    if (!shot.is_object()) continue;  // CheckJsonTypes names it
    if (auto ok = NormaliseUseCase(shot, "shots[" + std::to_string(i) + "]."); !ok) return ok;
  }
  return {};
}

Parsed<json> ParseJsonText(std::string_view text) {
  if (size_t bad = FindInvalidUtf8(text); bad != std::string_view::npos)
    return std::unexpected("invalid UTF-8 at byte " + std::to_string(bad + 1));
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    return std::unexpected("invalid JSON: " + StripJsonPrefix(e.what()));
  }
}

// Protobuf 3.21's JSON parser is lenient in places where a batch file is almost surely wrong: a
// scalar for a repeated field becomes a one-element list, "yes" becomes a bool. Check the JSON
// types against the message descriptor first, so such lines are refused with the field named.
Parsed<void> CheckJsonTypes(const json& object, const google::protobuf::Descriptor& descriptor,
                            const std::string& path) {
  using google::protobuf::FieldDescriptor;
  for (auto it = object.begin(); it != object.end(); ++it) {
    const FieldDescriptor* field = descriptor.FindFieldByName(it.key());
    if (field == nullptr) {
      for (int i = 0; i < descriptor.field_count() && field == nullptr; ++i) {
        if (descriptor.field(i)->json_name() == it.key()) field = descriptor.field(i);
      }
    }
    if (field == nullptr || it->is_null()) continue;  // protobuf names unknown fields itself
    const std::string name = path + it.key();
    auto expect = [&](bool ok, const char* what) -> Parsed<void> {
      if (ok) return {};
      return std::unexpected("field " + name + ": expected " + what + ", got a JSON " +
                             std::string(it->type_name()));
    };
    if (field->is_map()) {
      if (auto ok = expect(it->is_object(), "an object"); !ok) return ok;
      continue;
    }
    if (field->is_repeated()) {
      if (auto ok = expect(it->is_array(), "an array"); !ok) return ok;
      if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        for (size_t i = 0; i < it->size(); ++i) {
          const auto& item = (*it)[i];
          const std::string item_path = name + "[" + std::to_string(i) + "].";
          if (!item.is_object()) {
            return std::unexpected("field " + name + "[" + std::to_string(i) +
                                   "]: expected an object, got a JSON " + item.type_name());
          }
          if (auto ok = CheckJsonTypes(item, *field->message_type(), item_path); !ok) return ok;
        }
      } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
        for (const auto& item : *it) {
          if (!item.is_string())
            return std::unexpected("field " + name + ": expected an array of strings");
        }
      }
      continue;
    }
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_BOOL:
        if (auto ok = expect(it->is_boolean(), "true or false"); !ok) return ok;
        break;
      case FieldDescriptor::CPPTYPE_STRING:
        if (auto ok = expect(it->is_string(), "a string"); !ok) return ok;
        break;
      default:
        break;  // numbers, enums and timestamps: protobuf's own checks name the field
    }
  }
  return {};
}

// Protobuf's messages put the field first in two shapes: "<path>: Cannot find field." and
// "(<field>): invalid value ...". Say "unknown field" / "field <name>:" instead.
std::string ExplainProtobufError(std::string message) {
  constexpr std::string_view kUnknown = ": Cannot find field.";
  if (message.size() > kUnknown.size() && message.ends_with(kUnknown))
    return "unknown field \"" + message.substr(0, message.size() - kUnknown.size()) + "\"";
  if (message.starts_with("(")) {
    const auto close = message.find("): ");
    if (close != std::string::npos)
      return "field " + message.substr(1, close - 1) + ": " + message.substr(close + 3);
  }
  return message;
}

Parsed<v1::JobSpec> SpecFromObject(json object) {
  if (auto ok = NormaliseUseCase(object); !ok) return std::unexpected(ok.error());
  if (auto ok = CheckJsonTypes(object, *v1::JobSpec::descriptor(), ""); !ok)
    return std::unexpected(ok.error());
  BytesTextToBase64(object, *v1::JobSpec::descriptor());
  v1::JobSpec spec;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const std::string canonical = object.dump();
  const auto status = google::protobuf::util::JsonStringToMessage(canonical, &spec, options);
  if (!status.ok()) return std::unexpected(ExplainProtobufError(std::string(status.message())));
  return spec;
}

}  // namespace

Parsed<v1::JobSpec> ParseJobSpecJson(std::string_view text) {
  if (text.size() > kMaxLineBytes) {
    return std::unexpected("line is " + std::to_string(text.size()) + " bytes; at most " +
                           std::to_string(kMaxLineBytes) + " are allowed");
  }
  auto parsed = ParseJsonText(text);
  if (!parsed) return std::unexpected(parsed.error());
  if (!parsed->is_object())
    return std::unexpected(std::string("expected a JSON object (a JobSpec), got a JSON ") +
                           parsed->type_name());
  return SpecFromObject(std::move(*parsed));
}

JsonlFile ReadJsonl(std::istream& in) {
  JsonlFile file;
  std::string line;
  size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();  // files written on Windows
    if (line.find_first_not_of(" \t") == std::string::npos) {
      ++file.blank_lines;
      continue;
    }
    auto spec = ParseJobSpecJson(line);
    if (spec) {
      file.specs.push_back(SpecLine{number, std::move(*spec)});
    } else {
      file.errors.push_back(LineError{number, spec.error()});
    }
  }
  return file;
}

Parsed<v1::JobSpec> ParseShotsFile(std::string_view text) {
  auto parsed = ParseJsonText(text);
  if (!parsed) return std::unexpected(parsed.error());
  json object;
  if (parsed->is_array()) {
    object = json::object({{"shots", std::move(*parsed)}});
  } else if (parsed->is_object()) {
    object = std::move(*parsed);
  } else {
    return std::unexpected(
        std::string("expected a JSON array of shots or a JobSpec object, got a JSON ") +
        parsed->type_name());
  }
  auto spec = SpecFromObject(std::move(object));
  if (!spec) return spec;
  if (spec->shots_size() == 0) return std::unexpected("the file names no shots");
  for (int i = 0; i < spec->shots_size(); ++i) {
    const auto& shot = spec->shots(i);
    if (shot.prompt().empty())
      return std::unexpected("shot " + std::to_string(i + 1) + " has no prompt");
    if (shot.duration_seconds() == 0)
      return std::unexpected("shot " + std::to_string(i + 1) + " has no durationSeconds");
  }
  return spec;
}

}  // namespace reelq::cli
