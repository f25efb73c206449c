// The benchmark provider (`provider: noop`): parsed without URL or key, built by the factory,
// and each call answers at once with what a job needs to run to the end.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>

#include "reelq/common/http_client.h"
#include "reelq/providers/catalogue.h"
#include "reelq/providers/factory.h"
#include "reelq/providers/noop_provider.h"

namespace reelq::providers {
namespace {

template <class T>
T RunSync(asio::io_context& io, awaitable<T> task) {
  std::optional<T> out;
  asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T value) {
    if (e) std::rethrow_exception(e);
    out = std::move(value);
  });
  io.restart();
  io.run();
  return std::move(*out);
}

class StringSink final : public ByteSink {
 public:
  awaitable<Result<void>> Write(std::span<const std::byte> chunk) override {
    data.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
    co_return Result<void>{};
  }
  std::string data;
};

const char* kNoopDoc = R"(
models:
  - id: noop-1
    provider: noop
    upstream_model: noop
    durations: [5]
    max_clip_seconds: 5
    aspect_ratios: ["16:9"]
    resolutions: ["720p"]
    latency: {min: 0, p50: 0, p95: 0, max: 0}
accounts:
  - {id: noop-a, provider: noop, requests_per_minute: 1000000, max_concurrent: 100000}
)";

TEST(NoopProvider, AccountNeedsNoUrlOrKey) {
  auto catalogue = ParseCatalogue(YAML::Load(kNoopDoc));
  ASSERT_TRUE(catalogue) << catalogue.error().message;
  ASSERT_EQ(catalogue->accounts.size(), 1u);
  EXPECT_EQ(catalogue->accounts[0].provider, "noop");
  EXPECT_TRUE(catalogue->accounts[0].base_url.empty());
  ASSERT_NE(catalogue->FindModel("noop-1"), nullptr);
  EXPECT_EQ(catalogue->AccountsFor(*catalogue->FindModel("noop-1")).size(), 1u);
}

TEST(NoopProvider, OtherProvidersStillNeedTheirUrl) {
  auto catalogue = ParseCatalogue(YAML::Load(R"(
models:
  - {id: sora-2, provider: sora, upstream_model: sora-2, durations: [4], max_clip_seconds: 4,
     aspect_ratios: ["16:9"], resolutions: ["720p"]}
accounts:
  - {id: sora-a, provider: sora, api_key: {env: X}}
)"));
  ASSERT_FALSE(catalogue);
  EXPECT_NE(catalogue.error().message.find("base_url"), std::string::npos)
      << catalogue.error().message;
}

TEST(NoopProvider, EveryCallAnswersAtOnce) {
  auto catalogue = ParseCatalogue(YAML::Load(kNoopDoc));
  ASSERT_TRUE(catalogue) << catalogue.error().message;
  asio::io_context io;
  auto made = MakeProvider(catalogue->accounts[0], http::MakeClient(io.get_executor()), nullptr);
  ASSERT_TRUE(made) << made.error().message;
  ProviderPtr provider = *made;
  EXPECT_EQ(provider->name(), "noop");

  GenerationRequest request;
  request.upstream_model = "noop";
  request.prompt = "a cat";
  request.duration_seconds = 5;
  request.idempotency_id = "job-1.1";
  auto task = RunSync(io, provider->Create(request));
  ASSERT_TRUE(task) << task.error().message;
  // A lost create is found again under the same id: nothing is "paid" twice.
  auto found = RunSync(io, provider->FindLostCreate(request, 0));
  ASSERT_TRUE(found);
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ(found->front(), *task);

  auto status = RunSync(io, provider->Poll(*task));
  ASSERT_TRUE(status) << status.error().message;
  EXPECT_EQ(status->state, TaskState::kSucceeded);
  EXPECT_FALSE(status->video_url.empty());

  StringSink sink;
  auto downloaded = RunSync(io, provider->Download(*task, *status, sink));
  ASSERT_TRUE(downloaded) << downloaded.error().message;
  EXPECT_EQ(sink.data, kNoopClipBody);
  EXPECT_TRUE(RunSync(io, provider->Cancel(*task)));

  auto unknown = RunSync(io, provider->Poll("kling-123"));
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().category, ErrorCategory::kNotFound);
}

}  // namespace
}  // namespace reelq::providers
