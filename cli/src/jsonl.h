#pragma once

// Reading job specs from files: JSONL batches (one JobSpec per line, in the protobuf JSON mapping,
// lowerCamel or snake_case field names) and shot lists for `submit --shots-file`.

#include <cstddef>
#include <istream>
#include <string>
#include <string_view>
#include <vector>

#include "parse.h"
#include "reelq/v1/jobs.pb.h"

namespace reelq::cli {

// A line longer than this cannot be one sane job. It covers an image inline at the scheduler's
// default scheduler.max_image_bytes (10 MiB, 13.4 MiB in base64) with room for a second one and
// the rest of the job; such a line's spec (about 3/4 of it in protobuf) still fits one message
// of the scheduler's default scheduler.max_message_bytes (32 MiB).
inline constexpr size_t kMaxLineBytes = 32 << 20;

// Parses one line into a JobSpec. The error names the field (or the byte position) that is wrong.
// Besides the strict protobuf mapping, `useCase` may be given by its short name ("fast_social").
Parsed<v1::JobSpec> ParseJobSpecJson(std::string_view text);

struct SpecLine {
  size_t line = 0;  // 1-based line number in the file
  v1::JobSpec spec;
};

struct LineError {
  size_t line = 0;
  std::string message;
};

struct JsonlFile {
  std::vector<SpecLine> specs;  // good lines, in file order
  std::vector<LineError> errors;
  size_t blank_lines = 0;
};

// Reads every line of `in`. Blank lines are skipped; every other line is a spec or an error.
JsonlFile ReadJsonl(std::istream& in);

// A shots file is either a JSON array of shots ([{"prompt": ..., "durationSeconds": 5}, ...]) or a
// JobSpec object (with "shots" and any other fields, which flags then override).
Parsed<v1::JobSpec> ParseShotsFile(std::string_view text);

}  // namespace reelq::cli
