#include "sim.h"

#include <openssl/sha.h>

#include <fmt/format.h>
#include <algorithm>
#include <cmath>

#include <spdlog/spdlog.h>

namespace reelq::sim {
namespace {

constexpr auto kRpmWindow = std::chrono::seconds(60);

std::string_view OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kSucceed:
      return "succeed";
    case Outcome::kTransientFailure:
      return "transient_failure";
    case Outcome::kPolicyFailure:
      return "policy_failure";
  }
  return "?";
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  std::string hex;
  for (unsigned char c : digest) hex += fmt::format("{:02x}", c);
  return hex;
}

Triggers ParseTriggers(std::string_view text) {
  Triggers t;
  auto has = [&](std::string_view tag) { return text.find(tag) != std::string_view::npos; };
  t.policy = has("[sim:policy]");
  t.policy_output = has("[sim:policy-output]");
  t.fail = has("[sim:fail]");
  t.fail_once = has("[sim:fail-once]");
  t.slow = has("[sim:slow]");
  t.hang_download = has("[sim:hang-download]");
  t.truncate = has("[sim:truncate]");
  t.badjson = has("[sim:badjson]");
  return t;
}

Sim::Sim(SimConfig config, MediaLibrary media)
    : config_(std::move(config)),
      media_(std::move(media)),
      rng_(config_.seed),
      id_rng_(config_.seed ^ 0x9e3779b97f4a7c15ULL),
      now_(SimClock::now()) {
  SyncStore();
}

void Sim::SyncStore() {
  for (const auto& [p, pc] : config_.providers) {
    store_.SetRetention(p, std::chrono::seconds(pc.retention_s));
    for (const auto& k : pc.keys) store_.SetConcurrency(p, k.key, k.max_concurrent, now_);
  }
}

HttpResponse Sim::Handle(const HttpRequest& req) {
  now_ = SimClock::now();
  store_.Advance(now_);
  std::string_view path = req.path;
  auto strip = [&](std::string_view prefix) {
    if (path == prefix || path.starts_with(std::string(prefix) + "/")) {
      path.remove_prefix(prefix.size());
      return true;
    }
    return false;
  };
  launched_.reset();
  current_ = &req;
  auto held = [&](HttpResponse res) {
    if (launched_ && res.status >= 200 && res.status < 300) HoldCreateAnswer(*launched_, res);
    return res;
  };
  if (strip("/kling")) return held(HandleKling(*this, req, path));
  if (strip("/sora")) return held(HandleSora(*this, req, path));
  if (strip("/veo")) return held(HandleVeo(*this, req, path));
  if (strip("/seedance")) return held(HandleSeedance(*this, req, path));
  if (strip("/_sim")) return HandleControl(*this, req, path);
  if (strip("/media")) {
    // /media/<provider>/<task id>.mp4
    if (req.method == http::verb::get && path.size() > 1) {
      path.remove_prefix(1);
      const auto slash = path.find('/');
      if (slash != std::string_view::npos && path.ends_with(".mp4")) {
        auto p = ParseProvider(path.substr(0, slash));
        std::string id(path.substr(slash + 1, path.size() - slash - 1 - 4));
        if (p) return ServeMedia(*p, id);
      }
      // /media/<provider>/<task id>.last.png: Seedance's return_last_frame image.
      if (slash != std::string_view::npos && path.ends_with(".last.png")) {
        auto p = ParseProvider(path.substr(0, slash));
        std::string id(path.substr(slash + 1, path.size() - slash - 1 - 9));
        if (p) return ServeLastFrame(*p, id);
      }
    }
    HttpResponse r = HttpResponse::Json(404, "media not found\n");
    r.content_type = "text/plain";
    return r;
  }
  HttpResponse r = HttpResponse::Json(
      404, "unknown path; the simulator serves /kling, /sora, /veo, /seedance, /media, /_sim\n");
  r.content_type = "text/plain";
  return r;
}

const KeyConfig* Sim::FindKey(Provider p, std::string_view key) const {
  for (const auto& k : config_.provider(p).keys) {
    if (k.key == key) return &k;
  }
  return nullptr;
}

const ModelConfig* Sim::FindModel(Provider p, std::string_view id) const {
  for (const auto& m : config_.provider(p).models) {
    if (m.id == id) return &m;
  }
  return nullptr;
}

Admission Sim::Admit(Provider p, const KeyConfig& key, bool concurrency_rejects) {
  auto& window = rpm_windows_[std::string(ProviderName(p)) + "\n" + key.key];
  while (!window.empty() && window.front() + kRpmWindow <= now_) window.pop_front();
  Admission a;
  if (static_cast<int>(window.size()) >= key.rpm) {
    a.kind = Admission::kRateLimited;
    const auto wait = window.empty() ? kRpmWindow : window.front() + kRpmWindow - now_;
    a.retry_after_s =
        std::max<int>(1, static_cast<int>(std::ceil(std::chrono::duration<double>(wait).count())));
    return a;
  }
  window.push_back(now_);
  if (concurrency_rejects && store_.InFlight(p, key.key) >= key.max_concurrent) {
    a.kind = Admission::kConcurrency;
    a.retry_after_s = 1;
  }
  return a;
}

CreatePlan Sim::Plan(Provider p, const ModelConfig& model, const std::string& prompt) {
  CreatePlan plan;
  plan.triggers = ParseTriggers(prompt);
  const FaultRates& f = config_.FaultsFor(p);
  // Always draw the same numbers in the same order, so a seed replays the same run.
  const double u_create = Uniform(), u_policy = Uniform(), u_task = Uniform();
  const double z = std::normal_distribution<double>(0, 1)(rng_);

  plan.fail_create = u_create < f.create_failure;
  plan.policy = plan.triggers.policy || plan.triggers.policy_output || u_policy < f.policy;
  const bool first_fail_once =
      plan.triggers.fail_once && !seen_fail_once_.contains(Sha256Hex(prompt));
  if (plan.policy) {
    plan.outcome = Outcome::kPolicyFailure;
  } else if (plan.triggers.fail || first_fail_once || u_task < f.task_failure) {
    plan.outcome = Outcome::kTransientFailure;
  }

  const LatencyProfile& l = model.latency;
  const double mu = std::log(l.p50_s);
  const double sigma = l.p95_s > l.p50_s ? (std::log(l.p95_s) - mu) / 1.6448536269514722 : 0.0;
  double seconds = std::clamp(std::exp(mu + sigma * z), l.min_s, l.max_s);
  seconds *= config_.latency_scale * (plan.triggers.slow ? 20.0 : 1.0);
  plan.latency =
      std::chrono::duration_cast<SimClock::duration>(std::chrono::duration<double>(seconds));
  return plan;
}

void Sim::HoldCreateAnswer(Provider p, HttpResponse& res) {
  HoldCreate& hold = config_.provider(p).hold_create;
  if (hold.count <= 0) return;
  --hold.count;
  res.delay = std::chrono::milliseconds(hold.delay_ms);
  if (hold.drop) res.mode = HttpResponse::Mode::kDrop;
  stats_.Bump(p, "", "", &Counters::create_answers_held);
}

Result<Task*> Sim::Launch(Task task, const CreatePlan& plan) {
  launched_ = task.provider;
  // Made at create, so a finished task downloads at once: unlabelled clips once per
  // combination, labelled ones once per label.
  std::string label_text;
  Result<std::filesystem::path> media = std::filesystem::path();
  if (config_.clip_labels) {
    ClipLabel label{.model = task.model, .shot_durations = task.shot_durations};
    const std::string job = current_ ? current_->Header("x-reelq-job") : "";
    // The job id's tail: its head is a timestamp shared by jobs submitted together.
    label.job = job.empty() ? "task-" + task.id.substr(task.id.size() > 8 ? task.id.size() - 8 : 0)
                            : job.substr(job.size() > 8 ? job.size() - 8 : 0);
    if (const std::string shot = current_ ? current_->Header("x-reelq-shot") : ""; !shot.empty()) {
      label.shot = std::clamp(std::atoi(shot.c_str()), 1, 999);
    }
    label_text = label.Describe();
    media = media_.GetLabelled(task.duration_s, task.ratio, task.audio, label);
  } else {
    media = media_.Get(task.duration_s, task.ratio, task.audio);
  }
  if (!media) return std::unexpected(media.error());
  task.media = *media;
  // Renders run on the media library's threads, never on this one (it serves every client):
  // the task succeeds once they are done, even at zero latency.
  task.media_ready = media_.Pending(task.media);
  if (task.return_last_frame) {
    task.last_frame = media_.LastFrame(task.media);
    task.last_frame_ready = media_.Pending(task.last_frame);
  }
  task.outcome = plan.outcome;
  task.latency = plan.latency;
  task.queue_for = plan.latency / 10;
  task.hang_download = plan.triggers.hang_download;
  task.truncate_poll = plan.triggers.truncate;
  task.bad_json_poll = plan.triggers.badjson;
  task.created = now_;
  task.created_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  const std::string prompt_hash = Sha256Hex(task.prompt);
  if (plan.triggers.fail_once) seen_fail_once_.insert(prompt_hash);

  const KeyConfig* key = FindKey(task.provider, task.key);
  const int max_concurrent = key ? key->max_concurrent : 1;
  stats_.Bump(task.provider, task.key, task.model, &Counters::creates);
  if (plan.outcome == Outcome::kPolicyFailure) {
    stats_.Bump(task.provider, task.key, task.model, &Counters::policy_rejections);
  } else if (plan.outcome == Outcome::kTransientFailure) {
    stats_.Bump(task.provider, task.key, task.model, &Counters::task_failures_injected);
  }
  stats_.RecordCreate({.provider = std::string(ProviderName(task.provider)),
                       .key = task.key,
                       .model = task.model,
                       .task_id = task.id,
                       .external_id = task.external_id,
                       .prompt_sha256 = prompt_hash,
                       .shot_durations = task.shot_durations,
                       .duration_s = task.duration_s,
                       .ratio = task.ratio,
                       .outcome = std::string(OutcomeName(plan.outcome)),
                       .created_at_ms = task.created_unix_ms,
                       .images = task.images,
                       .label = label_text});
  Task& stored = store_.Add(std::move(task), max_concurrent);
  store_.Advance(now_);  // a zero-latency task whose clip is made is finished at once
  spdlog::debug("{} create {} model={} latency={}ms outcome={}", ProviderName(stored.provider),
                stored.id, stored.model,
                std::chrono::duration_cast<std::chrono::milliseconds>(stored.latency).count(),
                OutcomeName(stored.outcome));
  return &stored;
}

std::string Sim::NewTaskId(Provider p) {
  static constexpr char kAlnum[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  auto pick = [&](int n, std::string_view alphabet) {
    std::string s;
    for (int i = 0; i < n; ++i) s += alphabet[id_rng_() % alphabet.size()];
    return s;
  };
  switch (p) {
    case Provider::kKling:
      return "8" + pick(17, "0123456789");
    case Provider::kSora:
      return "video_" + pick(32, "0123456789abcdef");
    case Provider::kVeo:
      return pick(12, std::string_view(kAlnum, 36));
    case Provider::kSeedance: {
      const auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
      std::tm tm{};
      gmtime_r(&t, &tm);
      char stamp[32];
      std::strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
      return std::string("cgt-") + stamp + "-" + pick(5, std::string_view(kAlnum, 36));
    }
  }
  return pick(16, std::string_view(kAlnum, 36));
}

std::string Sim::NewRequestId() { return fmt::format("{:016x}{:016x}", id_rng_(), id_rng_()); }

std::string Sim::MediaUrl(const HttpRequest& req, const Task& task) const {
  return fmt::format("http://{}/media/{}/{}.mp4", req.host, ProviderName(task.provider), task.id);
}

HttpResponse Sim::ServeMedia(Provider p, const std::string& task_id) {
  Task* task = store_.Find(p, task_id, now_);
  if (!task || task->phase != Phase::kSucceeded) {
    HttpResponse r = HttpResponse::Json(404, "media not found\n");
    r.content_type = "text/plain";
    return r;
  }
  stats_.Bump(p, task->key, task->model, &Counters::downloads);
  if (auto ready = media_.WaitReady(task->media); !ready) {
    spdlog::error("media for {} task {}: {}", ProviderName(p), task_id, ready.error().message);
    HttpResponse r = HttpResponse::Json(500, "media failed\n");
    r.content_type = "text/plain";
    return r;
  }
  HttpResponse r;
  r.content_type = "video/mp4";
  r.file = task->media;
  r.mode = task->hang_download ? HttpResponse::Mode::kFileHang : HttpResponse::Mode::kFile;
  return r;
}

std::string Sim::LastFrameUrl(const HttpRequest& req, const Task& task) const {
  return fmt::format("http://{}/media/{}/{}.last.png", req.host, ProviderName(task.provider),
                     task.id);
}

HttpResponse Sim::ServeLastFrame(Provider p, const std::string& task_id) {
  Task* task = store_.Find(p, task_id, now_);
  if (!task || task->phase != Phase::kSucceeded || task->last_frame.empty()) {
    HttpResponse r = HttpResponse::Json(404, "media not found\n");
    r.content_type = "text/plain";
    return r;
  }
  if (task->last_frame_ready.valid()) {
    // Ready: the task succeeded after it.
    if (const auto& made = task->last_frame_ready.get(); !made) {
      spdlog::error("last frame for {} task {}: {}", ProviderName(p), task_id,
                    made.error().message);
      HttpResponse r = HttpResponse::Json(500, "media failed\n");
      r.content_type = "text/plain";
      return r;
    }
  }
  HttpResponse r;
  r.content_type = "image/png";
  r.file = task->last_frame;
  r.mode = HttpResponse::Mode::kFile;
  return r;
}

Result<void> Sim::ApplyControl(const nlohmann::json& doc) {
  if (doc.is_object() && doc.contains("media_dir")) {
    return MakeError(ErrorCategory::kInvalidRequest, "media_dir cannot change at run time");
  }
  const uint64_t old_seed = config_.seed;
  if (auto ok = ApplyConfig(config_, doc, /*replace_lists=*/false); !ok) return ok;
  if (config_.seed != old_seed) rng_.seed(config_.seed);
  SyncStore();
  return {};
}

nlohmann::json Sim::StatsJson() const {
  auto doc = stats_.ToJson(
      config_, [&](Provider p, const std::string& k) { return store_.InFlight(p, k); },
      [&](Provider p, const std::string& k) { return store_.Waiting(p, k); });
  doc["connections_accepted"] = connections_accepted_;
  return doc;
}

}  // namespace reelq::sim
