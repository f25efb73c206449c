// A storyboard's join: its shots' clips, in order, into one clip. Stream copy (the concat
// demuxer) when every shot has the same codecs and parameters, which ffprobe tells; otherwise
// one re-encode to H.264/AAC at the storyboard's resolution and aspect ratio. The shots' own
// clips stay in the store; the sidecar lists every shot.
#include <fmt/format.h>

#include <fstream>

#include <spdlog/spdlog.h>

#include "group_step.h"
#include "media_tools.h"

namespace reelq::worker {
namespace {

// A line of the concat demuxer's list: the path quoted its way, and where to cut it (0: keep it
// whole).
std::string ConcatLine(const std::string& path, double cut_at) {
  std::string quoted;
  for (char c : path) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  std::string line = "file '" + quoted + "'\n";
  if (cut_at > 0) line += fmt::format("outpoint {:.3f}\n", cut_at);
  return line;
}

std::vector<std::string> CopyCommand(const std::filesystem::path& list,
                                     const std::filesystem::path& out) {
  std::vector<std::string> cmd{"ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y"};
  const auto input = ConcatInput(list.string());
  cmd.insert(cmd.end(), input.begin(), input.end());
  cmd.insert(cmd.end(), {"-map", "0", "-c", "copy", "-movflags", "+faststart", out.string()});
  return cmd;
}

std::vector<std::string> ReencodeCommand(const std::vector<std::string>& inputs,
                                         const std::vector<MediaInfo>& infos,
                                         const std::vector<double>& cuts, int width, int height,
                                         const std::filesystem::path& out) {
  std::vector<std::string> cmd{"ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y"};
  for (const auto& in : inputs) {
    const auto input = ClipInput(in);
    cmd.insert(cmd.end(), input.begin(), input.end());
  }
  const bool any_audio =
      std::any_of(infos.begin(), infos.end(), [](const MediaInfo& m) { return m.has_audio; });
  std::string graph, pads;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const double length = cuts[i] > 0 ? cuts[i] : infos[i].duration_seconds;
    const std::string vcut =
        cuts[i] > 0 ? fmt::format("trim=duration={:.3f},setpts=PTS-STARTPTS,", cuts[i]) : "";
    const std::string acut =
        cuts[i] > 0 ? fmt::format("atrim=duration={:.3f},asetpts=PTS-STARTPTS,", cuts[i]) : "";
    graph += fmt::format(
        "[{0}:v:0]{3}scale={1}:{2}:force_original_aspect_ratio=decrease,pad={1}:{2}:(ow-iw)/2:"
        "(oh-ih)/2,setsar=1,fps=24,format=yuv420p[v{0}];",
        i, width, height, vcut);
    pads += fmt::format("[v{}]", i);
    if (any_audio) {
      if (infos[i].has_audio) {
        graph += fmt::format(
            "[{0}:a:0]{1}aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo[a{0}];", i,
            acut);
      } else {
        // A shot without sound gets silence of its own length, so picture and sound stay in
        // step.
        graph += fmt::format("anullsrc=r=48000:cl=stereo:d={1:.3f}[a{0}];", i, length);
      }
      pads += fmt::format("[a{}]", i);
    }
  }
  graph += pads + fmt::format("concat=n={}:v=1:a={}[v]", inputs.size(), any_audio ? 1 : 0);
  if (any_audio) graph += "[a]";
  cmd.insert(cmd.end(), {"-filter_complex", graph, "-map", "[v]"});
  if (any_audio) cmd.insert(cmd.end(), {"-map", "[a]", "-c:a", "aac", "-b:a", "128k"});
  cmd.insert(cmd.end(), {"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                         "-movflags", "+faststart", out.string()});
  return cmd;
}

}  // namespace

awaitable<RunOutcome> GroupStep::Join(std::vector<queue::JobRecord> shots) {
  ScratchDir scratch("join-" + job_.id);
  if (!scratch.ok()) {
    Error failure{ErrorCategory::kInternal, "join: cannot create a temporary directory"};
    auto outcome = co_await Fail(failure);
    co_return outcome;
  }
  auto clips = co_await ProbeChildren(shots, "join", "shots");
  if (!clips) {
    Error failure = clips.error();
    auto outcome = co_await StopOrFail(failure);
    co_return outcome;
  }
  const std::vector<std::string>& inputs = clips->inputs;
  const std::vector<MediaInfo>& infos = clips->infos;
  if (!LeaseHeld()) {
    auto stopped = co_await Stopped();
    co_return stopped;
  }
  // A shot made longer than asked (no model makes one that short) is cut to its length.
  std::vector<double> cuts;
  for (size_t i = 0; i < shots.size(); ++i) {
    const int index = shots[i].child_index;
    const double wanted =
        index >= 0 && index < spec_.shots_size() ? spec_.shots(index).duration_seconds() : 0;
    cuts.push_back(wanted > 0 && infos[i].duration_seconds > wanted + 0.25 ? wanted : 0);
  }
  const bool same = std::all_of(infos.begin(), infos.end(), [&](const MediaInfo& m) {
    return m.signature == infos.front().signature;
  });
  const auto out = scratch.path() / "joined.mp4";
  const auto [width, height] = FrameSizeFor(spec_.resolution(), spec_.aspect_ratio());
  std::vector<std::string> command;
  if (same) {
    const auto list = scratch.path() / "shots.txt";
    std::ofstream f(list);
    for (size_t i = 0; i < inputs.size(); ++i) f << ConcatLine(inputs[i], cuts[i]);
    f.close();
    command = CopyCommand(list, out);
  } else {
    command = ReencodeCommand(inputs, infos, cuts, width, height, out);
  }
  const int64_t join_started = deps_.clock->NowMs();
  std::vector<std::vector<std::string>> commands{std::move(command)};
  double seconds = 0;
  for (const auto& info : infos) seconds += info.duration_seconds;
  auto limits = Limits(RenderTimeout(seconds));
  auto joined =
      co_await RenderAndProbe("join", std::move(commands), out.string(), std::move(limits));
  if (!joined) {
    Error failure = joined.error();
    auto outcome = co_await StopOrFail(failure);
    co_return outcome;
  }
  if (!LeaseHeld()) {
    auto stopped = co_await Stopped();
    co_return stopped;
  }
  const std::string clip_key = JobRunner::ClipKey(job_.tenant, job_.batch, job_.id);
  const std::string sidecar_key = JobRunner::SidecarKey(clip_key);
  auto stored = co_await StoreFile(out, clip_key, "video/mp4");
  if (!stored) {
    Error failure = stored.error();
    auto outcome = co_await StopOrFail(failure);
    co_return outcome;
  }
  const int64_t now = deps_.clock->NowMs();
  nlohmann::json shot_list = nlohmann::json::array();
  double cost = 0;
  bool cost_known = true;
  for (size_t i = 0; i < shots.size(); ++i) {
    auto entry = ChildEntry(shots[i]);
    entry["probed_seconds"] = infos[i].duration_seconds;
    if (cuts[i] > 0) entry["cut_to_seconds"] = cuts[i];
    if (entry.contains("cost_usd_estimate")) {
      cost += entry["cost_usd_estimate"].get<double>();
    } else {
      cost_known = false;
    }
    shot_list.push_back(std::move(entry));
  }
  nlohmann::json sidecar = {
      {"job_id", job_.id},
      {"kind", "storyboard"},
      {"tenant", job_.tenant},
      {"batch_id", job_.batch},
      {"object_key", clip_key},
      {"size_bytes", stored->size},
      {"sha256", stored->sha256},
      {"clip_seconds", joined->duration_seconds},
      {"width", joined->width},
      {"height", joined->height},
      {"aspect_ratio", spec_.aspect_ratio()},
      {"resolution", spec_.resolution()},
      // How the shots were joined: "stream_copy" (same codecs and parameters) or "reencode".
      {"join", same ? "stream_copy" : "reencode"},
      {"worker", deps_.settings.worker_id},
      {"timings_ms",
       {{"created", job_.created_ms},
        {"leased", leased_ms_},
        {"join_started", join_started},
        {"stored", now}}},
      {"shots", shot_list},
  };
  if (cost_known) sidecar["cost_usd_estimate"] = cost;
  nlohmann::json labels = nlohmann::json::object();
  for (const auto& [k, v] : spec_.labels()) labels[k] = v;
  sidecar["labels"] = labels;
  auto written = co_await StoreText(sidecar_key, sidecar.dump(2) + "\n");
  if (!written) {
    Error failure = written.error();
    auto outcome = co_await StopOrFail(failure);
    co_return outcome;
  }
  spdlog::info("job={} storyboard joined {} shots ({}) into {} ({:.2f} s)", job_.id, shots.size(),
               same ? "stream copy" : "re-encoded", clip_key, joined->duration_seconds);
  queue::CompleteRequest done;
  done.output_key = clip_key;
  done.sidecar_key = sidecar_key;
  done.sha256 = stored->sha256;
  done.clip_seconds = joined->duration_seconds;
  auto url = deps_.objects->PresignGet(clip_key, std::chrono::hours(24 * 7));
  done.output_url = url ? *url : "";
  auto outcome = co_await Finish(done);
  co_return outcome;
}

}  // namespace reelq::worker
