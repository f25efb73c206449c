#pragma once

// BytePlus ModelArk / Volcengine Ark Seedance wire format (shared/providers.md §4).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "reelq/providers/generation.h"
#include "src/wire_common.h"

namespace reelq::providers::seedance {

inline constexpr std::string_view kTasksPath = "/api/v3/contents/generations/tasks";

// {model, content:[{type:"text", text}], duration (int), ratio, resolution, generate_audio,
// seed}. `seed` is DerivedSeed(idempotency_id) when the request has an idempotency id.
Result<std::string> BuildCreateBody(const GenerationRequest& request);

// The seed sent with a create: a hash of the job attempt id in [0, 2^31). Ark echoes `seed` in
// its task list but not the prompt, and has no client-chosen task ids, so this is what makes
// a create whose answer was lost findable again (FindLostCreate). reelq requests carry no seed
// of their own; an unseeded Ark create draws a random one, so a derived seed changes nothing
// a user could have relied on.
int64_t DerivedSeed(std::string_view idempotency_id);

// One task of GET /contents/generations/tasks, with the fields a lost create is matched on.
struct ListedTask {
  std::string id, model, ratio, resolution;
  int64_t seed = -1, duration = 0, created_at_s = 0;
};
struct TaskPage {
  std::vector<ListedTask> items;
  int64_t total = 0;
};
// {"items":[task...], "total": n}.
Result<TaskPage> ParseListResponse(int http_status, std::string_view body,
                                   std::optional<std::string> retry_after, int64_t now_ms);
// Whether a listed task is what `create_body` (BuildCreateBody's output) asks for.
bool MatchesCreate(const ListedTask& task, std::string_view create_body);

Result<std::string> ParseCreateResponse(int http_status, std::string_view body,
                                        std::optional<std::string> retry_after, int64_t now_ms);
Result<TaskStatus> ParsePollResponse(int http_status, std::string_view body,
                                     std::optional<std::string> retry_after, int64_t now_ms);
// DELETE on a task: 2xx is done; a task that is no longer queued cannot be cancelled.
Result<void> ParseCancelResponse(int http_status, std::string_view body,
                                 std::optional<std::string> retry_after, int64_t now_ms);

// The one table (Ark error.code, exact or by pattern; a download's 403, a cancel's 400/409)
// through wire::Classify.
Error ClassifyError(wire::Op op, int http_status, std::string_view body,
                    std::optional<std::string> retry_after, int64_t now_ms);
// A failed task's error.code -> category, by the same table.
ErrorCategory CategoryForCode(std::string_view code, ErrorCategory fallback);

}  // namespace reelq::providers::seedance
