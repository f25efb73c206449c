#include "e2e_util.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "process.h"

namespace reelq::testing {

namespace v1 = reelq::v1;

v1::JobSpec MakeSpec(const std::string& prompt, const std::string& model, uint32_t duration_seconds,
                     const std::string& aspect_ratio) {
  v1::JobSpec spec;
  spec.set_prompt(prompt);
  if (!model.empty()) spec.add_models(model);
  spec.set_duration_seconds(duration_seconds);
  if (!aspect_ratio.empty()) spec.set_aspect_ratio(aspect_ratio);
  return spec;
}

v1::SubmitBatchResponse SubmitBatch(v1::JobService::Stub& stub,
                                    const std::vector<v1::JobSpec>& specs, grpc::Status* status,
                                    std::chrono::seconds timeout, size_t items_per_message) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  v1::SubmitBatchResponse response;
  auto writer = stub.SubmitBatch(&ctx, &response);
  const size_t per_message = std::max<size_t>(1, items_per_message);
  for (size_t at = 0; at < specs.size(); at += per_message) {
    v1::SubmitBatchRequest message;
    if (per_message == 1) {
      *message.mutable_spec() = specs[at];
    } else {
      for (size_t i = at; i < std::min(specs.size(), at + per_message); ++i) {
        *message.add_specs() = specs[i];
      }
    }
    if (!writer->Write(message)) break;  // the server ended the call; Finish says why
  }
  writer->WritesDone();
  *status = writer->Finish();
  return response;
}

std::optional<v1::JobStatus> GetJob(v1::JobService::Stub& stub, const std::string& job_id,
                                    std::chrono::milliseconds deadline) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + deadline);
  v1::GetJobRequest req;
  req.set_job_id(job_id);
  v1::JobStatus out;
  if (!stub.GetJob(&ctx, req, &out).ok()) return std::nullopt;
  return out;
}

v1::SubmitJobResponse SubmitJob(v1::JobService::Stub& stub, const v1::JobSpec& spec,
                                grpc::Status* status) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::SubmitJobRequest req;
  *req.mutable_spec() = spec;
  v1::SubmitJobResponse resp;
  *status = stub.SubmitJob(&ctx, req, &resp);
  return resp;
}

std::vector<v1::JobEvent> Watch(v1::JobService::Stub& stub, const v1::WatchJobRequest& request,
                                grpc::Status* status, std::chrono::seconds timeout) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  auto reader = stub.WatchJob(&ctx, request);
  std::vector<v1::JobEvent> events;
  v1::JobEvent event;
  while (reader->Read(&event)) events.push_back(event);
  *status = reader->Finish();
  return events;
}

std::vector<v1::JobStatus> ListBatch(v1::JobService::Stub& stub, const std::string& batch_id) {
  std::vector<v1::JobStatus> out;
  std::string token;
  for (int page = 0; page < 1000; ++page) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::ListJobsRequest req;
    req.set_batch_id(batch_id);
    req.set_page_size(500);
    req.set_page_token(token);
    v1::ListJobsResponse resp;
    if (!stub.ListJobs(&ctx, req, &resp).ok()) break;
    for (const auto& j : resp.jobs()) out.push_back(j);
    token = resp.next_page_token();
    if (token.empty()) break;
  }
  return out;
}

bool FfprobeAvailable() {
  return std::filesystem::exists("/usr/bin/ffprobe") ||
         RunShell("command -v ffprobe").exit_code == 0;
}

ClipInfo Probe(const std::filesystem::path& file) {
  ClipInfo info;
  CommandResult probe = RunCommand(
      {"ffprobe", "-v", "error", "-print_format", "json", "-show_entries",
       "format=duration:stream=codec_type,width,height,display_aspect_ratio", file.string()});
  const std::string& out = probe.output;
  const int rc = probe.exit_code;
  auto doc = nlohmann::json::parse(out, nullptr, false);
  if (rc != 0 || doc.is_discarded()) {
    info.error = "ffprobe exit " + std::to_string(rc) + ": " + out.substr(0, 500);
    return info;
  }
  if (doc.contains("format") && doc["format"].contains("duration")) {
    info.duration_seconds = std::stod(doc["format"]["duration"].get<std::string>());
  }
  for (const auto& s : doc.value("streams", nlohmann::json::array())) {
    if (s.value("codec_type", "") != "video") continue;
    info.has_video = true;
    info.width = s.value("width", 0);
    info.height = s.value("height", 0);
    info.display_aspect_ratio = s.value("display_aspect_ratio", "");
    break;
  }
  return info;
}

namespace {

// One `ffmpeg -i a -i b ...` (no output: it prints every input's header and stops) for many
// files; a process start costs ~0.1 s of CPU here, a header parse almost nothing. Entries that
// were not read (ffmpeg stops at the first unreadable input) keep has_video false and no error.
void ProbeBatch(const std::vector<std::filesystem::path>& files, size_t begin, size_t end,
                std::vector<ClipInfo>& out) {
  std::vector<std::string> argv = {"ffmpeg", "-hide_banner", "-nostdin"};
  for (size_t i = begin; i < end; ++i) argv.insert(argv.end(), {"-i", files[i].string()});
  const std::string text = RunCommand(argv).output;
  long current = -1;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    const std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.starts_with("Input #")) {
      current = std::strtol(line.c_str() + 7, nullptr, 10);
      continue;
    }
    if (current < 0 || begin + static_cast<size_t>(current) >= end) continue;
    ClipInfo& info = out[begin + static_cast<size_t>(current)];
    if (auto d = line.find("Duration: "); d != std::string::npos && info.duration_seconds == 0) {
      int h = 0, m = 0;
      double sec = 0;
      if (std::sscanf(line.c_str() + d + 10, "%d:%d:%lf", &h, &m, &sec) == 3) {
        info.duration_seconds = h * 3600 + m * 60 + sec;
      }
    }
    if (auto v = line.find(": Video: "); v != std::string::npos && !info.has_video) {
      // "..., 64x36 [SAR 1:1 DAR 16:9], ..." or "..., 64x36, ..."
      for (size_t c = line.find(", ", v); c != std::string::npos; c = line.find(", ", c + 2)) {
        int w = 0, h = 0;
        if (std::sscanf(line.c_str() + c + 2, "%dx%d", &w, &h) == 2 && w > 0 && h > 0) {
          info.has_video = true;
          info.width = w;
          info.height = h;
          if (auto dar = line.find("DAR ", c); dar != std::string::npos) {
            auto close = line.find_first_of("],", dar);
            info.display_aspect_ratio = line.substr(dar + 4, close - dar - 4);
          }
          break;
        }
      }
    }
  }
}

}  // namespace

std::vector<ClipInfo> ProbeAll(const std::vector<std::filesystem::path>& files, int parallel) {
  std::vector<ClipInfo> out(files.size());
  constexpr size_t kBatch = 50;
  std::atomic<size_t> next{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < std::max(1, parallel); ++t) {
    threads.emplace_back([&] {
      for (size_t b = next.fetch_add(kBatch); b < files.size(); b = next.fetch_add(kBatch)) {
        ProbeBatch(files, b, std::min(files.size(), b + kBatch), out);
      }
    });
  }
  for (auto& t : threads) t.join();
  // Whatever the batch did not read (or read without a duration) gets its own ffprobe, so a
  // bad file is reported with ffprobe's own error.
  for (size_t i = 0; i < files.size(); ++i) {
    if (!out[i].has_video || out[i].duration_seconds <= 0) out[i] = Probe(files[i]);
  }
  return out;
}

std::string Sha256File(const std::filesystem::path& file) {
  std::string data = ReadFile(file);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(hex[digest[i] >> 4]);
    out.push_back(hex[digest[i] & 15]);
  }
  return out;
}

}  // namespace reelq::testing
