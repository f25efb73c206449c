// The adapters' one call path (providers/src/http_adapter.h: CallAndParse, StreamTo) against a
// scripted local HTTP server: the same answer means the same thing through all four adapters,
// credentials go where they belong, and the maybe-delivered flag comes through as a field.
#include <gtest/gtest.h>

#include <cstdlib>
#include <mutex>

#include "reelq/providers/factory.h"
#include "test_server.h"

namespace reelq::providers {
namespace {

using namespace std::chrono_literals;
using reelq::testing::ReceivedRequest;
using reelq::testing::Reply;
using reelq::testing::TestServer;

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

class NullSink final : public ByteSink {
 public:
  awaitable<Result<void>> Write(std::span<const std::byte>) override { co_return Result<void>{}; }
};

// Keeps what reaches it: what the worker would store as the clip.
class KeepSink final : public ByteSink {
 public:
  awaitable<Result<void>> Write(std::span<const std::byte> chunk) override {
    bytes.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
    co_return Result<void>{};
  }
  std::string bytes;
};

// The start of an MP4 as ffmpeg writes it (ftyp, then a free box, then mdat), and 200 KiB of
// payload, so the body arrives in several chunks.
std::string Mp4Bytes(std::string_view first_box_type = "ftyp") {
  using namespace std::string_literals;
  std::string out = "\0\0\0\x20"s + std::string(first_box_type) + "isom\0\0\x02\0isomiso2avc1mp41"s;
  out +=
      "\0\0\0\x08"
      "free"s;
  std::string payload(200 * 1024, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 131 % 251);
  const uint32_t size = static_cast<uint32_t>(payload.size() + 8);
  out += {static_cast<char>(size >> 24), static_cast<char>(size >> 16),
          static_cast<char>(size >> 8), static_cast<char>(size)};
  out += "mdat" + payload;
  return out;
}

struct AdapterCase {
  std::string provider, model, poll_id, credential_header;
};

const AdapterCase kAdapters[] = {
    {"kling", "kling-v3", "870", "authorization"},
    {"sora", "sora-2", "video_1", "authorization"},
    {"veo", "veo-3.1-generate-preview", "models/m/operations/1", "x-goog-api-key"},
    {"seedance", "dreamina-seedance-2-0-260128", "cgt-1", "authorization"},
};

class AdapterCallTest : public ::testing::Test {
 protected:
  AdapterCallTest()
      : server_([this](const ReceivedRequest&) {
          std::lock_guard lock(mutex_);
          return next_;
        }) {
    ::setenv("REELQ_ADAPTER_TEST_KEY", "adapter-test-key", 1);
    ::setenv("REELQ_ADAPTER_TEST_SECRET", "adapter-test-secret", 1);
  }

  void Answer(Reply reply) {
    std::lock_guard lock(mutex_);
    next_ = std::move(reply);
  }

  ProviderPtr Make(const AdapterCase& c) {
    AccountSpec account;
    account.id = c.provider + "-scripted";
    account.provider = c.provider;
    account.base_url = server_.Url("/" + c.provider);
    account.api_key.env = "REELQ_ADAPTER_TEST_KEY";
    account.secret_key.env = "REELQ_ADAPTER_TEST_SECRET";
    AdapterOptions options;
    options.api_timeout = 300ms;
    options.download_timeout = 2s;
    auto made = MakeProvider(account, http::MakeClient(io_.get_executor()),
                             std::make_shared<SystemClock>(), options);
    EXPECT_TRUE(made) << made.error().message;
    return made ? *made : nullptr;
  }

  static GenerationRequest Request(const AdapterCase& c) {
    GenerationRequest r;
    r.upstream_model = c.model;
    r.prompt = "a harbour";
    r.duration_seconds = c.provider == "veo" ? 8 : 4;
    r.idempotency_id = "job-1-1";
    return r;
  }

  Result<std::string> Create(const AdapterCase& c) {
    auto adapter = Make(c);
    return RunSync(io_, adapter->Create(Request(c)));
  }

  asio::io_context io_;
  std::mutex mutex_;
  Reply next_;
  TestServer server_;
};

TEST_F(AdapterCallTest, EveryAdapterSendsItsCredentialAndParsesTheAnswer) {
  for (const auto& c : kAdapters) {
    SCOPED_TRACE(c.provider);
    const std::string ok = c.provider == "kling" ? R"({"code":0,"data":{"task_id":"t-1"}})"
                           : c.provider == "veo" ? R"({"name":"t-1"})"
                                                 : R"({"id":"t-1"})";
    Answer({.status = c.provider == "kling" ? 200 : 201, .body = ok});
    auto id = Create(c);
    ASSERT_TRUE(id) << id.error().Describe();
    EXPECT_EQ(*id, "t-1");
    const auto sent = server_.requests().back();
    EXPECT_EQ(sent.method, "POST");
    EXPECT_EQ(sent.target.rfind("/" + c.provider + "/", 0), 0u) << sent.target;  // base_url
    EXPECT_FALSE(sent.Header(c.credential_header).empty());
    EXPECT_EQ(sent.Header("content-type"), "application/json");
  }
}

TEST_F(AdapterCallTest, AGatewayFailureOnCreateMayHaveBeenDelivered) {
  for (const auto& c : kAdapters) {
    SCOPED_TRACE(c.provider);
    for (int gateway : {502, 504}) {
      Answer({.status = gateway, .body = "<html>upstream failed</html>"});
      auto id = Create(c);
      ASSERT_FALSE(id);
      EXPECT_EQ(id.error().category, ErrorCategory::kRetryable);
      EXPECT_EQ(id.error().http_status, gateway);
      EXPECT_TRUE(MaybeDelivered(id.error())) << id.error().Describe();
    }
    // The provider's own 5xx and 429 made nothing.
    for (int answered : {500, 503, 429}) {
      Answer({.status = answered, .body = "{}"});
      auto id = Create(c);
      ASSERT_FALSE(id);
      EXPECT_FALSE(MaybeDelivered(id.error())) << answered << " " << id.error().Describe();
    }
  }
}

TEST_F(AdapterCallTest, AnAnswerLostAfterTheWriteMayHaveBeenDelivered) {
  for (const auto& c : kAdapters) {
    SCOPED_TRACE(c.provider);
    Answer({.mode = Reply::Mode::kNeverAnswer});
    auto id = Create(c);
    ASSERT_FALSE(id);
    EXPECT_EQ(id.error().category, ErrorCategory::kRetryable);
    EXPECT_NE(id.error().message.find("timed out"), std::string::npos) << id.error().message;
    EXPECT_TRUE(MaybeDelivered(id.error()));
  }
}

TEST_F(AdapterCallTest, A404MeansTheSameThroughEveryAdapter) {
  for (const auto& c : kAdapters) {
    SCOPED_TRACE(c.provider);
    Answer({.status = 404, .body = "not here"});
    auto id = Create(c);
    ASSERT_FALSE(id);
    EXPECT_EQ(id.error().category, ErrorCategory::kModelGone) << id.error().message;
    auto adapter = Make(c);
    auto polled = RunSync(io_, adapter->Poll(c.poll_id));
    ASSERT_FALSE(polled);
    EXPECT_EQ(polled.error().category, ErrorCategory::kNotFound) << polled.error().message;
    EXPECT_NE(polled.error().message.find(c.provider + " poll"), std::string::npos);
  }
}

TEST_F(AdapterCallTest, DownloadsCarryCredentialsOnlyToTheApiAndClassifyByTheTable) {
  for (const auto& c : kAdapters) {
    SCOPED_TRACE(c.provider);
    auto adapter = Make(c);
    TaskStatus done;
    done.state = TaskState::kSucceeded;
    // Kling and Seedance hand out pre-signed URLs elsewhere; Veo's file is on the API origin;
    // Sora's content endpoint is the API itself (the adapter builds it).
    if (c.provider != "sora") done.video_url = server_.Url("/" + c.provider + "/files/clip.mp4");
    const bool pre_signed = c.provider == "kling" || c.provider == "seedance";

    Answer({.status = 200, .body = "....ftypmp42"});
    NullSink sink;
    auto got = RunSync(io_, adapter->Download("t-1", done, sink));
    ASSERT_TRUE(got) << got.error().Describe();
    const auto sent = server_.requests().back();
    EXPECT_EQ(sent.HasHeader(c.credential_header), !pre_signed) << sent.target;

    Answer({.status = 403, .body = "<Error>expired</Error>"});
    auto forbidden = RunSync(io_, adapter->Download("t-1", done, sink));
    ASSERT_FALSE(forbidden);
    EXPECT_EQ(forbidden.error().category,
              pre_signed ? ErrorCategory::kNotFound : ErrorCategory::kAuthFailed)
        << forbidden.error().message;
    EXPECT_NE(forbidden.error().message.find(c.provider + " download"), std::string::npos);

    Answer({.status = 404, .body = ""});
    auto missing = RunSync(io_, adapter->Download("t-1", done, sink));
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().category, ErrorCategory::kNotFound);
  }
}

// A 2xx download that is no video (a CDN's or a proxy's page, an empty answer) is an error, not
// the clip: nothing reaches the sink (the worker stores nothing, the job does not succeed on
// it), and the error is retryable (the task is kept and its clip fetched again) and names what
// came back. Real MP4 bodies, whatever box they start with, reach the sink byte for byte.
TEST_F(AdapterCallTest, ADownloadThatIsNotAVideoIsRefusedAndNothingIsPassedOn) {
  struct Junk {
    std::string body, content_type, says, shows;  // `shows`: the start, quoted in the message
  };
  const Junk kJunk[] = {
      {"<html><body><h1>Access Denied</h1></body></html>", "text/html", "markup or JSON",
       "\"<html><body><h1>Access"},
      {"", "video/mp4", "it is empty", ""},
      {R"({"error":{"code":"expired","message":"link expired"}})", "application/json",
       "markup or JSON", R"("{\"error\":{\"code\")"},
      {"  \r\n<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code></Error>", "application/xml",
       "markup or JSON", R"("  \x0d\x0a<?xml version)"},
      {"Service temporarily unavailable, please retry", "text/plain", "it is text",
       "\"Service temporarily"},
      {std::string(100 * 1024, 'x'), "text/plain", "over 64 KiB", "\"xxxxxxxx"},
  };
  for (const auto& c : kAdapters) {
    SCOPED_TRACE(c.provider);
    auto adapter = Make(c);
    TaskStatus done;
    done.state = TaskState::kSucceeded;
    if (c.provider != "sora") done.video_url = server_.Url("/" + c.provider + "/files/clip.mp4");
    for (const auto& junk : kJunk) {
      SCOPED_TRACE(junk.body.substr(0, 40));
      Answer({.status = 200, .headers = {{"Content-Type", junk.content_type}}, .body = junk.body});
      KeepSink sink;
      auto got = RunSync(io_, adapter->Download("t-1", done, sink));
      ASSERT_FALSE(got) << "a " << junk.content_type << " answer was taken for the clip";
      EXPECT_EQ(got.error().category, ErrorCategory::kRetryable) << got.error().Describe();
      const std::string& message = got.error().message;
      EXPECT_NE(message.find(c.provider + " download: task t-1"), std::string::npos) << message;
      EXPECT_NE(message.find("not a video"), std::string::npos) << message;
      EXPECT_NE(message.find(junk.says), std::string::npos) << message;
      if (junk.says != "over 64 KiB") {
        EXPECT_NE(message.find(junk.content_type), std::string::npos) << message;
      }
      EXPECT_NE(message.find(junk.shows), std::string::npos) << message;
      EXPECT_TRUE(sink.bytes.empty()) << sink.bytes.size() << " bytes passed on";
    }
    for (std::string_view first : {"ftyp", "free", "mdat", "moov"}) {
      SCOPED_TRACE(first);
      const std::string mp4 = Mp4Bytes(first);
      Answer({.status = 200, .headers = {{"Content-Type", "video/mp4"}}, .body = mp4});
      KeepSink sink;
      auto got = RunSync(io_, adapter->Download("t-1", done, sink));
      ASSERT_TRUE(got) << got.error().Describe();
      EXPECT_TRUE(sink.bytes == mp4) << sink.bytes.size() << " of " << mp4.size() << " bytes";
    }
    // Split across chunks, and shorter than what is looked at before passing on.
    Answer({.status = 200, .body = Mp4Bytes(), .chunked = true});
    KeepSink chunked;
    auto got = RunSync(io_, adapter->Download("t-1", done, chunked));
    ASSERT_TRUE(got) << got.error().Describe();
    EXPECT_TRUE(chunked.bytes == Mp4Bytes());
    const std::string tiny(
        "\0\0\0\x10"
        "ftypisom\0\0\0\0",
        16);
    Answer({.status = 200, .body = tiny});
    KeepSink small;
    got = RunSync(io_, adapter->Download("t-1", done, small));
    ASSERT_TRUE(got) << got.error().Describe();
    EXPECT_TRUE(small.bytes == tiny);
  }
}

}  // namespace
}  // namespace reelq::providers
