// A compare's contact sheet (issue 13): a grid video of every take (xstack; 2x2 for four), each
// tile labelled with its model (drawtext), and a PNG of one thumbnail per take laid out the
// same way. A take that failed (or was cancelled) keeps its place as a gray tile labelled with
// its model and "failed" ("cancelled"), so the grid always shows every model asked for. The
// takes' own clips stay in the store; the sidecar lists each take's state, model, upstream id,
// time and cost estimate, and a failed take's error.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include <spdlog/spdlog.h>

#include "group_step.h"
#include "media_tools.h"

namespace reelq::worker {
namespace {

// Tiles of the grid video and of the PNG sheet: the short side in pixels.
constexpr int kVideoTileShortSide = 360;
constexpr int kThumbTileShortSide = 180;

struct Grid {
  int columns = 1, rows = 1;
  int tile_width = 0, tile_height = 0;
};

Grid GridFor(size_t takes, const std::string& aspect_ratio, int short_side) {
  Grid g;
  g.columns = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(takes))));
  g.rows = static_cast<int>((takes + g.columns - 1) / g.columns);
  const auto [w, h] = FrameSizeFor(std::to_string(short_side) + "p", aspect_ratio);
  g.tile_width = w;
  g.tile_height = h;
  return g;
}

// drawtext's text, escaped for both the filter graph and drawtext itself.
std::string DrawTextLiteral(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\'' || c == '\\' || c == ':' || c == ',' || c == ';' || c == '[' || c == ']' ||
        c == '%') {
      out += '\\';
    }
    out += c;
  }
  return out;
}

// One tile of the grid: a take's clip (its ffmpeg input), or a take that did not succeed.
struct Tile {
  std::string label;  // the model
  int input = -1;     // the ffmpeg input of the take's clip; -1: no clip
  std::string ended;  // for no clip: what became of the take ("failed", "cancelled")
};

// The filter graph: each input scaled into its tile (letterboxed), labelled, then stacked; a
// take without a clip is a gray tile of `seconds` with its model and what became of it.
std::string GridGraph(const std::vector<Tile>& tiles, const Grid& g, const std::string& font,
                      int font_size, bool still, double seconds) {
  std::string graph, pads, layout;
  for (size_t i = 0; i < tiles.size(); ++i) {
    if (tiles[i].input >= 0) {
      graph += fmt::format(
          "[{0}:v:0]{1}scale={2}:{3}:force_original_aspect_ratio=decrease,pad={2}:{3}:(ow-iw)/2:"
          "(oh-ih)/2,setsar=1,format=yuv420p",
          tiles[i].input, still ? "" : "fps=12,", g.tile_width, g.tile_height);
    } else {
      graph += fmt::format("color=c=0x505050:s={}x{}:r=12:d={:.3f},setsar=1,format=yuv420p",
                           g.tile_width, g.tile_height, still ? 1.0 : std::max(1.0, seconds));
      if (!font.empty()) {
        graph += fmt::format(
            ",drawtext=fontfile={}:text={}:x=(w-text_w)/2:y=(h-text_h)/2:fontsize={}:"
            "fontcolor=white",
            font, DrawTextLiteral(tiles[i].ended), 2 * font_size);
      }
    }
    if (!font.empty()) {
      graph += fmt::format(
          ",drawtext=fontfile={}:text={}:x=8:y=8:fontsize={}:fontcolor=white:box=1:"
          "boxcolor=black@0.6:boxborderw=4",
          font, DrawTextLiteral(tiles[i].label), font_size);
    }
    graph += fmt::format("[t{}];", i);
    pads += fmt::format("[t{}]", i);
    const int x = static_cast<int>(i) % g.columns * g.tile_width;
    const int y = static_cast<int>(i) / g.columns * g.tile_height;
    layout += fmt::format("{}{}_{}", layout.empty() ? "" : "|", x, y);
  }
  // Tiles left empty (three takes on a 2x2 grid) are black; the grid is always columns x rows.
  const size_t cells = static_cast<size_t>(g.columns * g.rows);
  for (size_t i = tiles.size(); i < cells; ++i) {
    graph += fmt::format("color=c=black:s={}x{}:d=1[t{}];", g.tile_width, g.tile_height, i);
    pads += fmt::format("[t{}]", i);
    const int x = static_cast<int>(i) % g.columns * g.tile_width;
    const int y = static_cast<int>(i) / g.columns * g.tile_height;
    layout += fmt::format("|{}_{}", x, y);
  }
  graph += pads + fmt::format("xstack=inputs={}:layout={}[grid]", cells, layout);
  return graph;
}

}  // namespace

awaitable<RunOutcome> GroupStep::ContactSheet(std::vector<queue::JobRecord> takes) {
  ScratchDir scratch("sheet-" + job_.id);
  if (!scratch.ok()) {
    Error failure{ErrorCategory::kInternal, "compare: cannot create a temporary directory"};
    auto outcome = co_await Fail(failure);
    co_return outcome;
  }
  // The takes with a clip (Children: at least one) are read; the others are gray tiles.
  std::vector<queue::JobRecord> made;
  for (const auto& take : takes) {
    if (take.state == queue::JobState::kSucceeded) made.push_back(take);
  }
  auto clips = co_await ProbeChildren(made, "compare", "takes");
  if (!clips) {
    Error failure = clips.error();
    auto outcome = co_await StopOrFail(failure);
    co_return outcome;
  }
  const std::vector<std::string>& inputs = clips->inputs;
  std::vector<Tile> tiles;
  double longest = 0;
  int input = 0;
  for (const auto& take : takes) {
    Tile tile;
    tile.label = !take.model.empty()              ? take.model
                 : !take.candidate_models.empty() ? take.candidate_models.front()
                                                  : "take " + std::to_string(take.child_index);
    if (take.state == queue::JobState::kSucceeded) {
      longest = std::max(longest, clips->infos[static_cast<size_t>(input)].duration_seconds);
      tile.input = input++;
    } else {
      tile.ended = take.state == queue::JobState::kCancelled ? "cancelled" : "failed";
    }
    tiles.push_back(std::move(tile));
  }
  const std::string font = LabelFont();
  if (font.empty()) spdlog::warn("job={} no label font (install fonts-dejavu-core)", job_.id);
  const Grid video = GridFor(takes.size(), spec_.aspect_ratio(), kVideoTileShortSide);
  const Grid thumbs = GridFor(takes.size(), spec_.aspect_ratio(), kThumbTileShortSide);
  const auto grid_file = scratch.path() / "grid.mp4";
  const auto sheet_file = scratch.path() / "sheet.png";

  std::vector<std::string> grid_cmd{"ffmpeg", "-hide_banner", "-loglevel",
                                    "error",  "-nostdin",     "-y"};
  for (const auto& in : inputs) {
    const auto input_args = ClipInput(in);
    grid_cmd.insert(grid_cmd.end(), input_args.begin(), input_args.end());
  }
  grid_cmd.insert(
      grid_cmd.end(),
      {"-filter_complex", GridGraph(tiles, video, font, 28, false, longest), "-map", "[grid]", "-t",
       fmt::format("{:.3f}", longest), "-an", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt",
       "yuv420p", "-movflags", "+faststart", grid_file.string()});
  // The thumbnail: a frame from the middle of the shortest take's first second or so.
  std::vector<std::string> sheet_cmd{"ffmpeg", "-hide_banner", "-loglevel",
                                     "error",  "-nostdin",     "-y"};
  for (const auto& in : inputs) {
    const auto input_args = ClipInput(in);
    sheet_cmd.insert(sheet_cmd.end(), {"-ss", "0.5"});
    sheet_cmd.insert(sheet_cmd.end(), input_args.begin(), input_args.end());
  }
  sheet_cmd.insert(sheet_cmd.end(),
                   {"-filter_complex", GridGraph(tiles, thumbs, font, 16, true, longest), "-map",
                    "[grid]", "-frames:v", "1", sheet_file.string()});
  std::vector<std::vector<std::string>> commands{std::move(grid_cmd), std::move(sheet_cmd)};
  // Every take is read twice (the grid, the sheet): the bound of twice the longest, each take.
  auto limits = Limits(RenderTimeout(2 * longest * static_cast<double>(takes.size())));
  auto probed = co_await RenderAndProbe("compare", std::move(commands), grid_file.string(),
                                        std::move(limits));
  if (!probed) {
    Error failure = probed.error();
    auto outcome = co_await StopOrFail(failure);
    co_return outcome;
  }
  if (!LeaseHeld()) {
    auto stopped = co_await Stopped();
    co_return stopped;
  }
  const std::string grid_key = JobRunner::ClipKey(job_.tenant, job_.batch, job_.id);
  const std::string sidecar_key = JobRunner::SidecarKey(grid_key);
  const std::string sheet_key = grid_key.substr(0, grid_key.size() - 4) + "-sheet.png";
  auto grid = co_await StoreFile(grid_file, grid_key, "video/mp4");
  Result<StoredObject> sheet = std::unexpected(Error{});
  if (grid) sheet = co_await StoreFile(sheet_file, sheet_key, "image/png");
  if (!grid || !sheet) {
    Error failure = grid ? sheet.error() : grid.error();
    auto outcome = co_await StopOrFail(failure);
    co_return outcome;
  }
  queue::JobRecord group;
  group.id = job_.id;
  group.tenant = job_.tenant;
  group.batch = job_.batch;
  group.spec_bytes = job_.spec_bytes;
  auto sidecar = queue::CompareSidecar(group, takes, PriceOf(), grid_key, sheet_key, "");
  sidecar["grid"] = {{"columns", video.columns},
                     {"rows", video.rows},
                     {"width", probed->width},
                     {"height", probed->height},
                     {"sha256", grid->sha256}};
  sidecar["sheet_sha256"] = sheet->sha256;
  sidecar["worker"] = deps_.settings.worker_id;
  auto written = co_await StoreText(sidecar_key, sidecar.dump(2) + "\n");
  if (!written) {
    Error failure = written.error();
    auto outcome = co_await StopOrFail(failure);
    co_return outcome;
  }
  spdlog::info("job={} compare: {} takes ({} without a clip) on a {}x{} sheet: {}", job_.id,
               takes.size(), takes.size() - made.size(), video.columns, video.rows, grid_key);
  queue::CompleteRequest done;
  done.output_key = grid_key;
  done.sidecar_key = sidecar_key;
  done.sheet_key = sheet_key;
  done.sha256 = grid->sha256;
  done.clip_seconds = probed->duration_seconds;
  auto url = deps_.objects->PresignGet(grid_key, std::chrono::hours(24 * 7));
  done.output_url = url ? *url : "";
  auto outcome = co_await Finish(done);
  co_return outcome;
}

}  // namespace reelq::worker
