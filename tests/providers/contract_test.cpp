// Contract tests: each adapter against the real simulator process, over real HTTP.
#include <gtest/gtest.h>

#include <cstdlib>
#include <thread>

#include "sim_fixture.h"

namespace reelq::providers {
namespace {

using namespace std::chrono_literals;
using testing::RunSync;
using testing::Sim;

class MemorySink final : public ByteSink {
 public:
  awaitable<Result<void>> Write(std::span<const std::byte> chunk) override {
    ++chunks;
    data.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
    co_return Result<void>{};
  }
  std::string data;
  size_t chunks = 0;
};

class ContractTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    sim_ = Sim::Start(0.0005).release();
    // The adapters read keys from the environment, as in production.
    ::setenv("REELQ_TEST_KLING_AK", "sim-kling-ak-a", 1);
    ::setenv("REELQ_TEST_KLING_SK", "sim-kling-sk-a", 1);
    ::setenv("REELQ_TEST_KLING_BAD_SK", "not-the-secret", 1);
    ::setenv("REELQ_TEST_SORA", "sim-sora-key-a", 1);
    ::setenv("REELQ_TEST_SORA_B", "sim-sora-key-b", 1);
    ::setenv("REELQ_TEST_VEO", "sim-veo-key-a", 1);
    ::setenv("REELQ_TEST_SEEDANCE", "sim-seedance-key-a", 1);
    ::setenv("REELQ_TEST_KLING_AK_B", "sim-kling-ak-b", 1);
    ::setenv("REELQ_TEST_KLING_SK_B", "sim-kling-sk-b", 1);
    ::setenv("REELQ_TEST_VEO_B", "sim-veo-key-b", 1);
    ::setenv("REELQ_TEST_SEEDANCE_B", "sim-seedance-key-b", 1);
    ::setenv("REELQ_TEST_WRONG", "wrong-key", 1);
  }
  static void TearDownTestSuite() {
    delete sim_;
    sim_ = nullptr;
  }
  void SetUp() override {
    if (sim_ == nullptr) GTEST_SKIP() << "reelq-provider-sim not built or did not start";
    client_ = http::MakeClient(io_.get_executor());
  }

  ProviderPtr Make(const std::string& provider, const std::string& key_env,
                   const std::string& secret_env = "", AdapterOptions options = {}) {
    AccountSpec account;
    account.id = provider + "-test";
    account.provider = provider;
    account.base_url = sim_->base_url() + "/" + provider;
    account.api_key.env = key_env;
    account.secret_key.env = secret_env;
    if (options.api_timeout == AdapterOptions{}.api_timeout) options.api_timeout = 5s;
    auto made = MakeProvider(account, client_, std::make_shared<SystemClock>(), options);
    EXPECT_TRUE(made) << made.error().message;
    return made ? *made : nullptr;
  }
  ProviderPtr Kling(AdapterOptions o = {}) {
    return Make("kling", "REELQ_TEST_KLING_AK", "REELQ_TEST_KLING_SK", o);
  }
  ProviderPtr Sora(AdapterOptions o = {}) { return Make("sora", "REELQ_TEST_SORA", "", o); }
  ProviderPtr Veo(AdapterOptions o = {}) { return Make("veo", "REELQ_TEST_VEO", "", o); }
  ProviderPtr Seedance(AdapterOptions o = {}) {
    return Make("seedance", "REELQ_TEST_SEEDANCE", "", o);
  }

  static GenerationRequest Request(const std::string& model, int seconds,
                                   const std::string& prompt = "a quiet harbour at dawn") {
    GenerationRequest r;
    r.upstream_model = model;
    r.prompt = prompt;
    r.duration_seconds = seconds;
    r.aspect_ratio = "16:9";
    r.resolution = "720p";
    r.idempotency_id = "attempt-" + std::to_string(++counter_);
    return r;
  }

  // Polls until the task leaves queued/running (bounded).
  Result<TaskStatus> WaitDone(Provider& p, const std::string& id) {
    for (int i = 0; i < 500; ++i) {
      auto s = RunSync(io_, p.Poll(id));
      if (!s || (s->state != TaskState::kQueued && s->state != TaskState::kRunning)) return s;
      std::this_thread::sleep_for(20ms);
    }
    return MakeError(ErrorCategory::kDeadlineExceeded, "task did not finish in 10 s");
  }

  void ExpectMp4(const MemorySink& sink) {
    ASSERT_GT(sink.data.size(), 8u);
    EXPECT_EQ(sink.data.substr(4, 4), "ftyp");
  }

  static Sim* sim_;
  static int counter_;
  asio::io_context io_;
  http::ClientPtr client_;
};
Sim* ContractTest::sim_ = nullptr;
int ContractTest::counter_ = 0;

// --- happy paths ---

TEST_F(ContractTest, KlingCreatePollDownload) {
  auto kling = Kling();
  auto id = RunSync(io_, kling->Create(Request("kling-v3", 5)));
  ASSERT_TRUE(id) << id.error().Describe();
  auto status = WaitDone(*kling, *id);
  ASSERT_TRUE(status) << status.error().Describe();
  ASSERT_EQ(status->state, TaskState::kSucceeded);
  MemorySink sink;
  auto downloaded = RunSync(io_, kling->Download(*id, *status, sink));
  ASSERT_TRUE(downloaded) << downloaded.error().Describe();
  ExpectMp4(sink);
  EXPECT_EQ(RunSync(io_, kling->Cancel(*id)).error().category, ErrorCategory::kInvalidRequest);
}

TEST_F(ContractTest, KlingSixShotsReachTheSimAsOneMultiPrompt) {
  sim_->Reset();
  auto kling = Kling();
  auto request = Request("kling-v3", 15);
  request.shots = {{"wide: harbour", 3}, {"close: rope", 2}, {"gull", 2},
                   {"boat", 3},          {"keeper", 2},      {"sunrise", 3}};
  auto id = RunSync(io_, kling->Create(request));
  ASSERT_TRUE(id) << id.error().Describe();
  auto stats = sim_->Stats();
  EXPECT_EQ(stats["providers"]["kling"]["creates"], 1);
  ASSERT_EQ(stats["creates"].size(), 1u);
  EXPECT_EQ(stats["creates"][0]["duration_s"], 15);
  EXPECT_EQ(stats["creates"][0]["external_id"], request.idempotency_id);
  auto status = WaitDone(*kling, *id);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->state, TaskState::kSucceeded);
}

// --- lost creates (a create whose answer never reached the worker) ---

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST_F(ContractTest, KlingLostCreateIsFoundByIdempotencyId) {
  sim_->Reset();
  auto kling = Kling();
  ASSERT_TRUE(kling->CanFindLostCreate());
  const int64_t sent = WallMs();
  auto request = Request("kling-v3", 5);
  auto id = RunSync(io_, kling->Create(request));
  ASSERT_TRUE(id) << id.error().Describe();
  // The worker "lost" the answer: it looks the attempt up instead of creating again.
  auto found = RunSync(io_, kling->FindLostCreate(request, sent));
  ASSERT_TRUE(found) << found.error().Describe();
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ(found->front(), *id);
  // The same request under another attempt id made nothing.
  auto other = request;
  other.idempotency_id = "attempt-never-sent";
  auto none = RunSync(io_, kling->FindLostCreate(other, sent));
  ASSERT_TRUE(none) << none.error().Describe();
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(sim_->Stats()["providers"]["kling"]["creates"], 1);
}

TEST_F(ContractTest, SoraLostCreateIsFoundInTheListAcrossPages) {
  sim_->Reset();
  AdapterOptions small_pages;
  small_pages.list_page_size = 2;  // the target sits on the third page
  auto sora = Sora(small_pages);
  // The foreign key is one of its own: the rate-limit tests count creates on key b.
  sim_->Configure({{"providers", {{"sora", {{"keys", {{{"key", "sim-sora-key-c"}}}}}}}}});
  ::setenv("REELQ_TEST_SORA_C", "sim-sora-key-c", 1);
  auto sora_b = Make("sora", "REELQ_TEST_SORA_C");
  ASSERT_TRUE(sora->CanFindLostCreate());
  const std::string prompt = "lost sora create " + std::to_string(WallMs());
  const int64_t sent = WallMs();
  auto request = Request("sora-2", 4, prompt);
  auto id = RunSync(io_, sora->Create(request));
  ASSERT_TRUE(id) << id.error().Describe();
  // Newer videos that must not match: another prompt, other seconds, another size, and the
  // identical request on another key (another account's list: never seen).
  ASSERT_TRUE(RunSync(io_, sora->Create(Request("sora-2", 4, prompt + " (not this one)"))));
  ASSERT_TRUE(RunSync(io_, sora->Create(Request("sora-2", 8, prompt))));
  auto portrait = Request("sora-2", 4, prompt);
  portrait.aspect_ratio = "9:16";
  ASSERT_TRUE(RunSync(io_, sora->Create(portrait)));
  ASSERT_TRUE(RunSync(io_, sora_b->Create(Request("sora-2", 4, prompt))));
  ASSERT_TRUE(RunSync(io_, sora->Create(Request("sora-2", 12, prompt))));

  auto found = RunSync(io_, sora->FindLostCreate(request, sent));
  ASSERT_TRUE(found) << found.error().Describe();
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ(found->front(), *id);
  EXPECT_GE(sim_->Stats()["providers"]["sora"]["lists"], 3);

  // Not found: a prompt never sent.
  auto never = RunSync(io_, sora->FindLostCreate(Request("sora-2", 4, prompt + " never"), sent));
  ASSERT_TRUE(never) << never.error().Describe();
  EXPECT_TRUE(never->empty());
  // Videos made long before the create was sent are not candidates.
  auto later = RunSync(io_, sora->FindLostCreate(request, sent + 10 * 60 * 1000));
  ASSERT_TRUE(later) << later.error().Describe();
  EXPECT_TRUE(later->empty());
}

TEST_F(ContractTest, SoraIdenticalRequestsAreAllCandidates) {
  // Two identical prompts in one batch: both videos match. The adapter returns both (the
  // caller skips the one another job already owns), never silently one of them.
  auto sora = Sora();
  const std::string prompt = "twin sora create " + std::to_string(WallMs());
  const int64_t sent = WallMs();
  auto first = RunSync(io_, sora->Create(Request("sora-2", 4, prompt)));
  auto second = RunSync(io_, sora->Create(Request("sora-2", 4, prompt)));
  ASSERT_TRUE(first && second);
  auto found = RunSync(io_, sora->FindLostCreate(Request("sora-2", 4, prompt), sent));
  ASSERT_TRUE(found) << found.error().Describe();
  ASSERT_EQ(found->size(), 2u);
  EXPECT_TRUE((found->at(0) == *first && found->at(1) == *second) ||
              (found->at(0) == *second && found->at(1) == *first));
}

TEST_F(ContractTest, SeedanceLostCreateIsFoundByItsDerivedSeedAcrossPages) {
  sim_->Reset();
  AdapterOptions small_pages;
  small_pages.list_page_size = 2;
  auto seedance = Seedance(small_pages);
  sim_->Configure({{"providers", {{"seedance", {{"keys", {{{"key", "sim-seedance-key-c"}}}}}}}}});
  ::setenv("REELQ_TEST_SEEDANCE_C", "sim-seedance-key-c", 1);
  auto seedance_b = Make("seedance", "REELQ_TEST_SEEDANCE_C");
  ASSERT_TRUE(seedance->CanFindLostCreate());
  const int64_t sent = WallMs();
  auto request = Request("dreamina-seedance-2-0-260128", 5);
  auto id = RunSync(io_, seedance->Create(request));
  ASSERT_TRUE(id) << id.error().Describe();
  // Newer tasks of the same model and prompt under other attempt ids (other seeds), and the
  // same attempt id on another key: none may match.
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(RunSync(io_, seedance->Create(Request("dreamina-seedance-2-0-260128", 5))));
  }
  auto same_on_b = request;
  ASSERT_TRUE(RunSync(io_, seedance_b->Create(same_on_b)));
  auto found = RunSync(io_, seedance->FindLostCreate(request, sent));
  ASSERT_TRUE(found) << found.error().Describe();
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ(found->front(), *id);
  EXPECT_GE(sim_->Stats()["providers"]["seedance"]["lists"], 3);

  auto never = Request("dreamina-seedance-2-0-260128", 5);
  auto none = RunSync(io_, seedance->FindLostCreate(never, sent));
  ASSERT_TRUE(none) << none.error().Describe();
  EXPECT_TRUE(none->empty());
}

// A busy account: more tasks were made after the lost create than the lookup reads pages of.
// "Nothing found" would make the worker create again and pay twice; the lookup says it could
// not tell (retryable), naming why.
TEST_F(ContractTest, SeedanceLookupThatRunsOutOfPagesBeforeTheSendTimeIsAnError) {
  sim_->Reset();
  AdapterOptions one_per_page;
  one_per_page.list_page_size = 1;
  auto seedance = Seedance(one_per_page);
  const std::string model = "dreamina-seedance-2-0-260128";
  const int64_t sent = WallMs();
  auto request = Request(model, 5);
  auto id = RunSync(io_, seedance->Create(request));
  ASSERT_TRUE(id) << id.error().Describe();
  for (int i = 0; i < 21; ++i) ASSERT_TRUE(RunSync(io_, seedance->Create(Request(model, 5))));

  auto found = RunSync(io_, seedance->FindLostCreate(request, sent));
  ASSERT_FALSE(found) << "the lookup answered " << found->size()
                      << " tasks without reading back to the send time";
  EXPECT_EQ(found.error().category, ErrorCategory::kRetryable);
  EXPECT_NE(found.error().message.find("lookup incomplete: 20 pages"), std::string::npos)
      << found.error().message;
  EXPECT_EQ(sim_->Stats()["providers"]["seedance"]["lists"], 20);
}

TEST_F(ContractTest, SoraLookupThatRunsOutOfPagesBeforeTheSendTimeIsAnError) {
  sim_->Reset();
  AdapterOptions one_per_page;
  one_per_page.list_page_size = 1;
  auto sora = Sora(one_per_page);
  const std::string prompt = "busy sora account " + std::to_string(WallMs());
  const int64_t sent = WallMs();
  auto request = Request("sora-2", 4, prompt);
  auto id = RunSync(io_, sora->Create(request));
  ASSERT_TRUE(id) << id.error().Describe();
  for (int i = 0; i < 21; ++i) {
    ASSERT_TRUE(RunSync(io_, sora->Create(Request("sora-2", 4, prompt + " other"))));
  }

  auto found = RunSync(io_, sora->FindLostCreate(request, sent));
  ASSERT_FALSE(found) << "the lookup answered " << found->size()
                      << " videos without reading back to the send time";
  EXPECT_EQ(found.error().category, ErrorCategory::kRetryable);
  EXPECT_NE(found.error().message.find("lookup incomplete: 20 pages"), std::string::npos)
      << found.error().message;
  EXPECT_EQ(sim_->Stats()["providers"]["sora"]["lists"], 20);
}

TEST_F(ContractTest, VeoCannotFindALostCreate) {
  auto veo = Veo();
  EXPECT_FALSE(veo->CanFindLostCreate());
  auto found = RunSync(io_, veo->FindLostCreate(Request("veo-3.1-generate-preview", 8), WallMs()));
  ASSERT_FALSE(found);
  EXPECT_EQ(found.error().category, ErrorCategory::kInvalidRequest);
}

TEST_F(ContractTest, HeldCreateAnswerIsLostButTheTaskIsFound) {
  // The sim records the create, then drops the connection without answering: the adapter's
  // error says the request may have been delivered, and the lookup finds the task.
  sim_->Reset();
  sim_->Configure(
      {{"providers",
        {{"sora", {{"hold_create", {{"count", 1}, {"delay_ms", 100}, {"drop", true}}}}}}}});
  auto sora = Sora();
  const int64_t sent = WallMs();
  auto request = Request("sora-2", 4, "dropped answer " + std::to_string(sent));
  auto created = RunSync(io_, sora->Create(request));
  ASSERT_FALSE(created);
  EXPECT_TRUE(MaybeDelivered(created.error())) << created.error().Describe();
  EXPECT_EQ(sim_->Stats()["providers"]["sora"]["creates"], 1);
  EXPECT_EQ(sim_->Stats()["providers"]["sora"]["create_answers_held"], 1);
  auto found = RunSync(io_, sora->FindLostCreate(request, sent));
  ASSERT_TRUE(found) << found.error().Describe();
  EXPECT_EQ(found->size(), 1u);
  // The knob was for one create only.
  EXPECT_TRUE(RunSync(io_, sora->Create(Request("sora-2", 4))));
}

TEST_F(ContractTest, RefusedConnectionIsNotMaybeDelivered) {
  // Nothing listens there: a create that cannot connect sent nothing.
  AccountSpec account;
  account.id = "sora-nowhere";
  account.provider = "sora";
  account.base_url = "http://127.0.0.1:1/sora";
  account.api_key.env = "REELQ_TEST_SORA";
  AdapterOptions o;
  o.api_timeout = 2s;
  auto made = MakeProvider(account, client_, std::make_shared<SystemClock>(), o);
  ASSERT_TRUE(made);
  auto created = RunSync(io_, (*made)->Create(Request("sora-2", 4)));
  ASSERT_FALSE(created);
  EXPECT_FALSE(MaybeDelivered(created.error())) << created.error().Describe();
}

TEST_F(ContractTest, SoraCreatePollDownloadWithPollHint) {
  auto sora = Sora();
  auto id = RunSync(io_, sora->Create(Request("sora-2", 4)));
  ASSERT_TRUE(id) << id.error().Describe();
  auto first = RunSync(io_, sora->Poll(*id));
  ASSERT_TRUE(first) << first.error().Describe();
  if (first->state != TaskState::kSucceeded) {
    EXPECT_TRUE(first->poll_after.has_value());
  }
  auto status = WaitDone(*sora, *id);
  ASSERT_TRUE(status) << status.error().Describe();
  ASSERT_EQ(status->state, TaskState::kSucceeded);
  MemorySink sink;
  auto downloaded = RunSync(io_, sora->Download(*id, *status, sink));
  ASSERT_TRUE(downloaded) << downloaded.error().Describe();
  ExpectMp4(sink);
}

TEST_F(ContractTest, VeoDownloadFollowsRedirect) {
  auto veo = Veo();
  auto request = Request("veo-3.1-generate-preview", 8);
  auto id = RunSync(io_, veo->Create(request));
  ASSERT_TRUE(id) << id.error().Describe();
  auto status = WaitDone(*veo, *id);
  ASSERT_TRUE(status) << status.error().Describe();
  ASSERT_EQ(status->state, TaskState::kSucceeded);
  MemorySink sink;
  auto downloaded = RunSync(io_, veo->Download(*id, *status, sink));
  ASSERT_TRUE(downloaded) << downloaded.error().Describe();
  ExpectMp4(sink);
  EXPECT_GT(sink.chunks, 0u);
}

TEST_F(ContractTest, SeedanceCreatePollDownload) {
  auto seedance = Seedance();
  auto id = RunSync(io_, seedance->Create(Request("dreamina-seedance-2-0-260128", 5)));
  ASSERT_TRUE(id) << id.error().Describe();
  auto status = WaitDone(*seedance, *id);
  ASSERT_TRUE(status) << status.error().Describe();
  ASSERT_EQ(status->state, TaskState::kSucceeded);
  MemorySink sink;
  auto downloaded = RunSync(io_, seedance->Download(*id, *status, sink));
  ASSERT_TRUE(downloaded) << downloaded.error().Describe();
  ExpectMp4(sink);
}

// --- error categories ---

TEST_F(ContractTest, PolicyRejectionsCarryTheProvidersReason) {
  auto kling = RunSync(io_, Kling()->Create(Request("kling-v3", 5, "x [sim:policy]")));
  ASSERT_FALSE(kling);
  EXPECT_EQ(kling.error().category, ErrorCategory::kPolicyRejected);
  EXPECT_EQ(kling.error().provider_code, "1301");

  auto seedance = RunSync(
      io_, Seedance()->Create(Request("dreamina-seedance-2-0-260128", 5, "x [sim:policy]")));
  ASSERT_FALSE(seedance);
  EXPECT_EQ(seedance.error().category, ErrorCategory::kPolicyRejected);
  EXPECT_EQ(seedance.error().provider_code, "InputTextSensitiveContentDetected");

  auto sora = Sora();
  auto sora_id = RunSync(io_, sora->Create(Request("sora-2", 4, "x [sim:policy]")));
  ASSERT_TRUE(sora_id);
  auto sora_status = WaitDone(*sora, *sora_id);
  ASSERT_TRUE(sora_status);
  ASSERT_EQ(sora_status->state, TaskState::kFailed);
  EXPECT_EQ(sora_status->error->category, ErrorCategory::kPolicyRejected);
  EXPECT_EQ(sora_status->error->provider_code, "moderation_blocked");

  auto veo = Veo();
  auto veo_id = RunSync(io_, veo->Create(Request("veo-3.1-generate-preview", 8, "x [sim:policy]")));
  ASSERT_TRUE(veo_id);
  auto veo_status = WaitDone(*veo, *veo_id);
  ASSERT_TRUE(veo_status);
  ASSERT_EQ(veo_status->state, TaskState::kFailed);
  EXPECT_EQ(veo_status->error->category, ErrorCategory::kPolicyRejected);
  EXPECT_NE(veo_status->error->message.find("filters: "), std::string::npos)
      << veo_status->error->message;
}

TEST_F(ContractTest, InjectedTaskFailuresAreRetryable) {
  auto seedance = Seedance();
  auto id =
      RunSync(io_, seedance->Create(Request("dreamina-seedance-2-0-260128", 5, "x [sim:fail]")));
  ASSERT_TRUE(id);
  auto status = WaitDone(*seedance, *id);
  ASSERT_TRUE(status);
  ASSERT_EQ(status->state, TaskState::kFailed);
  EXPECT_EQ(status->error->category, ErrorCategory::kRetryable);
  auto veo = Veo();
  auto veo_id = RunSync(io_, veo->Create(Request("veo-3.1-generate-preview", 8, "x [sim:fail]")));
  ASSERT_TRUE(veo_id);
  auto veo_status = WaitDone(*veo, *veo_id);
  ASSERT_TRUE(veo_status);
  ASSERT_EQ(veo_status->state, TaskState::kFailed);
  EXPECT_EQ(veo_status->error->category, ErrorCategory::kRetryable);
}

TEST_F(ContractTest, AuthFailures) {
  auto kling = Make("kling", "REELQ_TEST_KLING_AK", "REELQ_TEST_KLING_BAD_SK");
  auto k = RunSync(io_, kling->Create(Request("kling-v3", 5)));
  ASSERT_FALSE(k);
  EXPECT_EQ(k.error().category, ErrorCategory::kAuthFailed);
  for (std::string provider : {"sora", "veo", "seedance"}) {
    auto p = Make(provider, "REELQ_TEST_WRONG");
    auto r = RunSync(io_, p->Create(Request(provider == "sora"  ? "sora-2"
                                            : provider == "veo" ? "veo-3.1-generate-preview"
                                                                : "dreamina-seedance-2-0-260128",
                                            provider == "veo" ? 8 : 4)));
    ASSERT_FALSE(r) << provider;
    EXPECT_EQ(r.error().category, ErrorCategory::kAuthFailed)
        << provider << ": " << r.error().message;
    EXPECT_EQ(r.error().message.find("wrong-key"), std::string::npos) << "key leaked";
  }
}

TEST_F(ContractTest, RetiredModelsAreModelGone) {
  auto k = RunSync(io_, Kling()->Create(Request("kling-v0-retired", 5)));
  ASSERT_FALSE(k);
  EXPECT_EQ(k.error().category, ErrorCategory::kModelGone) << k.error().message;
  auto v = RunSync(io_, Veo()->Create(Request("veo-2.0-retired", 8)));
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().category, ErrorCategory::kModelGone) << v.error().message;
  auto s = RunSync(io_, Seedance()->Create(Request("seedance-0-retired", 5)));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().category, ErrorCategory::kModelGone) << s.error().message;
}

TEST_F(ContractTest, InvalidRequests) {
  auto sora = RunSync(io_, Sora()->Create(Request("sora-2", 5)));  // 5 s is not a Sora duration
  ASSERT_FALSE(sora);
  EXPECT_EQ(sora.error().category, ErrorCategory::kInvalidRequest) << sora.error().message;
  auto veo = RunSync(io_, Veo()->Create(Request("veo-3.1-generate-preview", 5)));
  ASSERT_FALSE(veo);
  EXPECT_EQ(veo.error().category, ErrorCategory::kInvalidRequest) << veo.error().message;
}

TEST_F(ContractTest, RateLimitCarriesRetryAfter) {
  sim_->Configure(
      {{"providers", {{"sora", {{"keys", {{{"key", "sim-sora-key-b"}, {"rpm", 1}}}}}}}}});
  auto sora = Make("sora", "REELQ_TEST_SORA_B");
  auto first = RunSync(io_, sora->Create(Request("sora-2", 4)));
  ASSERT_TRUE(first) << first.error().Describe();
  auto second = RunSync(io_, sora->Create(Request("sora-2", 4)));
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().category, ErrorCategory::kRateLimited);
  EXPECT_EQ(second.error().http_status, 429);
  EXPECT_GT(second.error().retry_after.count(), 0);
  EXPECT_LE(second.error().retry_after.count(), 60'000);
}

TEST_F(ContractTest, MalformedAndTruncatedPollsAreRetryable) {
  auto sora = Sora();
  auto bad = RunSync(io_, sora->Create(Request("sora-2", 4, "x [sim:badjson]")));
  ASSERT_TRUE(bad);
  auto bad_poll = RunSync(io_, sora->Poll(*bad));
  ASSERT_FALSE(bad_poll);
  EXPECT_EQ(bad_poll.error().category, ErrorCategory::kRetryable);
  EXPECT_NE(bad_poll.error().message.find("sora poll: malformed JSON"), std::string::npos)
      << bad_poll.error().message;

  auto kling = Kling();
  auto cut = RunSync(io_, kling->Create(Request("kling-v3", 5, "x [sim:truncate]")));
  ASSERT_TRUE(cut);
  auto cut_poll = RunSync(io_, kling->Poll(*cut));
  ASSERT_FALSE(cut_poll);
  EXPECT_EQ(cut_poll.error().category, ErrorCategory::kRetryable);
  EXPECT_NE(cut_poll.error().message.find("truncated"), std::string::npos)
      << cut_poll.error().message;
}

TEST_F(ContractTest, HangingDownloadHitsTheDeadline) {
  AdapterOptions options;
  options.download_timeout = 1s;
  auto seedance = Seedance(options);
  auto id = RunSync(
      io_, seedance->Create(Request("dreamina-seedance-2-0-260128", 5, "x [sim:hang-download]")));
  ASSERT_TRUE(id);
  auto status = WaitDone(*seedance, *id);
  ASSERT_TRUE(status);
  ASSERT_EQ(status->state, TaskState::kSucceeded);
  MemorySink sink;
  auto start = std::chrono::steady_clock::now();
  auto downloaded = RunSync(io_, seedance->Download(*id, *status, sink));
  ASSERT_FALSE(downloaded);
  EXPECT_EQ(downloaded.error().category, ErrorCategory::kRetryable);
  EXPECT_NE(downloaded.error().message.find("timed out after 1s"), std::string::npos)
      << downloaded.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST_F(ContractTest, SeedanceCancelOfAQueuedTask) {
  sim_->Reset();
  sim_->Configure({{"latency_scale", 1.0}});  // the task stays queued for seconds
  auto seedance = Seedance();
  auto id = RunSync(io_, seedance->Create(Request("dreamina-seedance-2-0-260128", 5)));
  ASSERT_TRUE(id);
  auto queued = RunSync(io_, seedance->Poll(*id));
  auto cancelled = RunSync(io_, seedance->Cancel(*id));
  sim_->Configure({{"latency_scale", 0.0005}});
  ASSERT_TRUE(queued) << queued.error().Describe();
  EXPECT_EQ(queued->state, TaskState::kQueued);
  ASSERT_TRUE(cancelled) << cancelled.error().Describe();
  EXPECT_EQ(sim_->Stats()["providers"]["seedance"]["cancels"], 1);
  // Ark keeps the record as `cancelled`; the simulator currently drops it (404). Either way
  // the task is gone from the queue and a poll must not report it as running.
  auto status = RunSync(io_, seedance->Poll(*id));
  if (status) {
    EXPECT_EQ(status->state, TaskState::kCancelled);
  } else {
    EXPECT_EQ(status.error().category, ErrorCategory::kNotFound) << status.error().Describe();
  }
}

TEST_F(ContractTest, SeedanceCancelOfARunningTaskIsRefused) {
  sim_->Configure({{"latency_scale", 1.0}});
  auto seedance = Seedance();
  auto id = RunSync(io_, seedance->Create(Request("dreamina-seedance-2-0-260128", 5)));
  ASSERT_TRUE(id);
  // Past the queued tenth of a >= 20 s generation.
  Result<TaskStatus> status = MakeError(ErrorCategory::kInternal, "not polled");
  for (int i = 0; i < 200; ++i) {
    status = RunSync(io_, seedance->Poll(*id));
    if (!status || status->state != TaskState::kQueued) break;
    std::this_thread::sleep_for(50ms);
  }
  auto cancelled = RunSync(io_, seedance->Cancel(*id));
  sim_->Configure({{"latency_scale", 0.0005}});
  ASSERT_TRUE(status) << status.error().Describe();
  ASSERT_EQ(status->state, TaskState::kRunning);
  ASSERT_FALSE(cancelled);
  EXPECT_EQ(cancelled.error().category, ErrorCategory::kInvalidRequest);
  EXPECT_EQ(cancelled.error().http_status, 409);
  EXPECT_NE(cancelled.error().message.find("only a queued task"), std::string::npos);
}

TEST_F(ContractTest, MissingKeyIsAnAuthErrorNamingTheVariable) {
  AccountSpec account{.id = "sora-x", .provider = "sora", .base_url = sim_->base_url() + "/sora"};
  account.api_key.env = "REELQ_TEST_NOT_SET_ANYWHERE";
  auto made = MakeProvider(account, client_, nullptr);
  ASSERT_FALSE(made);
  EXPECT_EQ(made.error().category, ErrorCategory::kAuthFailed);
  EXPECT_NE(made.error().message.find("REELQ_TEST_NOT_SET_ANYWHERE"), std::string::npos);
}

// --- every fault, for every adapter ---
// The single-provider tests above show each fault in detail; this runs the same faults through
// all four adapters, since each parses its own responses and classifies its own errors.

struct AdapterCase {
  std::string provider, model;
  int seconds;
  std::string key_env, secret_env;  // the sim's second key, kept for the rate-limit case
  std::string sim_key;
};

const std::vector<AdapterCase>& AllAdapters() {
  static const std::vector<AdapterCase> cases = {
      {"kling", "kling-v3", 5, "REELQ_TEST_KLING_AK_B", "REELQ_TEST_KLING_SK_B", "sim-kling-ak-b"},
      {"sora", "sora-2", 4, "REELQ_TEST_SORA_B", "", "sim-sora-key-b"},
      {"veo", "veo-3.1-generate-preview", 8, "REELQ_TEST_VEO_B", "", "sim-veo-key-b"},
      {"seedance", "dreamina-seedance-2-0-260128", 5, "REELQ_TEST_SEEDANCE_B", "",
       "sim-seedance-key-b"},
  };
  return cases;
}

TEST_F(ContractTest, EveryAdapterClassifiesMalformedTruncatedAndHangingResponses) {
  sim_->Reset();
  AdapterOptions options;
  options.download_timeout = 1s;
  for (const auto& c : AllAdapters()) {
    SCOPED_TRACE(c.provider);
    // The first keys: the second ones are kept for the rate-limit case below.
    auto adapter = c.provider == "kling"  ? Kling(options)
                   : c.provider == "sora" ? Sora(options)
                   : c.provider == "veo"  ? Veo(options)
                                          : Seedance(options);
    ASSERT_NE(adapter, nullptr);

    auto bad = RunSync(io_, adapter->Create(Request(c.model, c.seconds, "x [sim:badjson]")));
    ASSERT_TRUE(bad) << bad.error().Describe();
    auto bad_poll = RunSync(io_, adapter->Poll(*bad));
    ASSERT_FALSE(bad_poll) << "a malformed poll answer was accepted";
    EXPECT_EQ(bad_poll.error().category, ErrorCategory::kRetryable) << bad_poll.error().message;
    EXPECT_NE(bad_poll.error().message.find(c.provider), std::string::npos)
        << bad_poll.error().message;

    auto cut = RunSync(io_, adapter->Create(Request(c.model, c.seconds, "x [sim:truncate]")));
    ASSERT_TRUE(cut) << cut.error().Describe();
    auto cut_poll = RunSync(io_, adapter->Poll(*cut));
    ASSERT_FALSE(cut_poll) << "a truncated poll answer was accepted";
    EXPECT_EQ(cut_poll.error().category, ErrorCategory::kRetryable) << cut_poll.error().message;

    auto hang = RunSync(io_, adapter->Create(Request(c.model, c.seconds, "x [sim:hang-download]")));
    ASSERT_TRUE(hang) << hang.error().Describe();
    auto status = WaitDone(*adapter, *hang);
    ASSERT_TRUE(status) << status.error().Describe();
    ASSERT_EQ(status->state, TaskState::kSucceeded);
    MemorySink sink;
    const auto start = std::chrono::steady_clock::now();
    auto downloaded = RunSync(io_, adapter->Download(*hang, *status, sink));
    ASSERT_FALSE(downloaded) << "a download that never finishes returned";
    EXPECT_EQ(downloaded.error().category, ErrorCategory::kRetryable);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  }
}

TEST_F(ContractTest, EveryAdapterSurfacesRateLimitsWithRetryAfter) {
  sim_->Reset();
  for (const auto& c : AllAdapters()) {
    SCOPED_TRACE(c.provider);
    nlohmann::json key = c.provider == "kling" ? nlohmann::json{{"access_key", c.sim_key},
                                                                {"secret_key", "sim-kling-sk-b"}}
                                               : nlohmann::json{{"key", c.sim_key}};
    key["rpm"] = 1;
    nlohmann::json keys = nlohmann::json::array({key});
    nlohmann::json limit;
    limit["providers"][c.provider]["keys"] = keys;
    sim_->Configure(limit);
    auto adapter = Make(c.provider, c.key_env, c.secret_env);
    ASSERT_NE(adapter, nullptr);
    // At 1 create per sliding minute the first or (when an earlier test already spent this
    // key's minute) the second create is refused.
    auto second = RunSync(io_, adapter->Create(Request(c.model, c.seconds)));
    if (second) second = RunSync(io_, adapter->Create(Request(c.model, c.seconds)));
    ASSERT_FALSE(second) << "the sim's 1 request/minute limit was not enforced";
    EXPECT_EQ(second.error().category, ErrorCategory::kRateLimited) << second.error().message;
    EXPECT_EQ(second.error().http_status, 429);
    // Veo's 429 (RESOURCE_EXHAUSTED) carries no wait in providers.md's account of it: the
    // queue's own cooldown backoff applies. The others give one, and it must come through.
    if (c.provider != "veo") {
      EXPECT_GT(second.error().retry_after.count(), 0) << "no retry-after for " << c.provider;
    }
    limit["providers"][c.provider]["keys"][0]["rpm"] = 6000;
    sim_->Configure(limit);
  }
}

}  // namespace
}  // namespace reelq::providers
