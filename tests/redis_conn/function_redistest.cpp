// Function libraries (Redis 7 FUNCTION LOAD / FCALL): loaded on first need and again after the
// server lost them, two builds' libraries side by side, and only the newest few of a family kept.
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "redis_server.h"
#include "reelq/common/redis.h"
#include "run_async.h"

namespace reelq::redis {
namespace {

using namespace std::chrono_literals;
using testing::RedisServer;
using testing::RunAsync;

// A library "<name>" of the family "fam" with one function, "<name>_add", adding `step` times
// ARGV[1] to KEYS[1]. Its top level runs once, at load: `step` is an upvalue the calls share.
std::string AddLibrary(const std::string& name, int step) {
  return "#!lua name=" + name + "\nlocal step = " + std::to_string(step) +
         "\nredis.register_function('" + name +
         "_add', function(KEYS, ARGV) return redis.call('INCRBY', KEYS[1], step * ARGV[1]) "
         "end)\n";
}

class RedisFunctionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto connected = RunAsync(io_, Connect(io_.get_executor(), server_.ClientOptions()));
    ASSERT_TRUE(connected) << connected.error().Describe();
    connection_ = std::move(*connected);
  }

  // The libraries Redis holds, by name.
  std::vector<std::string> Libraries() {
    std::vector<std::string> names;
    for (const auto& library : server_.Run({"FUNCTION", "LIST"}).elements) {
      for (size_t i = 0; i + 1 < library.elements.size(); i += 2) {
        if (library.elements[i].str == "library_name") names.push_back(library.elements[i + 1].str);
      }
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  RedisServer server_;
  asio::io_context io_;
  ConnectionPtr connection_;
};

TEST_F(RedisFunctionTest, LoadsOnFirstCallAndAgainAfterTheServerLostIt) {
  FunctionLibrary library("fam", "fam_a", AddLibrary("fam_a", 1));
  Function add(library, "add");
  EXPECT_EQ(add.registered_name(), "fam_a_add");

  auto first = RunAsync(io_, add.Call(*connection_, {"total"}, {"5"}));
  ASSERT_TRUE(first) << first.error().Describe();
  EXPECT_EQ(first->integer, 5);
  EXPECT_EQ(server_.CommandCalls("function|load"), 1);

  auto second = RunAsync(io_, add.Call(*connection_, {"total"}, {"2"}));
  ASSERT_TRUE(second);
  EXPECT_EQ(second->integer, 7);
  EXPECT_EQ(server_.CommandCalls("function|load"), 1);  // loaded: no second load

  server_.Run({"FUNCTION", "FLUSH"});  // as after a restart without persistence
  auto third = RunAsync(io_, add.Call(*connection_, {"total"}, {"3"}));
  ASSERT_TRUE(third) << third.error().Describe();
  EXPECT_EQ(third->integer, 10);
  EXPECT_EQ(server_.CommandCalls("function|load"), 2);
  EXPECT_EQ(server_.CommandCalls("fcall"), 5);  // 2 not found + 3 that ran

  // Loaded by another process first: "already exists" is no failure.
  EXPECT_TRUE(RunAsync(io_, library.Load(*connection_)));
}

TEST_F(RedisFunctionTest, ErrorsAreValuesOrNameTheLibrary) {
  // A function's own error reply is a value, not a failure, and is not retried.
  FunctionLibrary failing("fam", "fam_fail",
                          "#!lua name=fam_fail\nredis.register_function('fam_fail_go', "
                          "function() return redis.error_reply('DOMAIN went wrong') end)\n");
  auto domain = RunAsync(io_, Function(failing, "go").Call(*connection_, {}, {}));
  ASSERT_TRUE(domain);
  EXPECT_TRUE(domain->IsError());
  EXPECT_EQ(domain->str, "DOMAIN went wrong");
  EXPECT_EQ(server_.CommandCalls("function|load"), 1);

  // A library that does not compile is reported with its name.
  FunctionLibrary broken("fam", "fam_broken", "#!lua name=fam_broken\nthis is not lua\n");
  auto bad = RunAsync(io_, Function(broken, "go").Call(*connection_, {}, {}));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().category, ErrorCategory::kInternal);
  EXPECT_NE(bad.error().message.find("loading Redis function library fam_broken failed"),
            std::string::npos)
      << bad.error().message;
}

// Two builds during a rolling upgrade: each library is named after its own code, so each
// process runs its own version of a function.
TEST_F(RedisFunctionTest, TwoBuildsEachCallTheirOwnCode) {
  FunctionLibrary old_build("fam", "fam_old", AddLibrary("fam_old", 1));
  FunctionLibrary new_build("fam", "fam_new", AddLibrary("fam_new", 100));
  auto a = RunAsync(io_, Function(old_build, "add").Call(*connection_, {"k"}, {"1"}));
  auto b = RunAsync(io_, Function(new_build, "add").Call(*connection_, {"k"}, {"1"}));
  auto c = RunAsync(io_, Function(old_build, "add").Call(*connection_, {"k"}, {"1"}));
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a->integer, 1);
  EXPECT_EQ(b->integer, 101);
  EXPECT_EQ(c->integer, 102);
  EXPECT_EQ(Libraries(), (std::vector<std::string>{"fam_new", "fam_old"}));
}

// Every deploy loads a library; a load keeps the newest kKeptLibraries of its family, leaves
// other families alone, and a process whose library was dropped loads it again.
TEST_F(RedisFunctionTest, KeepsTheNewestLibrariesOfItsFamily) {
  FunctionLibrary other("elsewhere", "other_lib", AddLibrary("other_lib", 1));
  ASSERT_TRUE(RunAsync(io_, Function(other, "add").Call(*connection_, {"o"}, {"1"})));
  std::vector<std::unique_ptr<FunctionLibrary>> builds;
  for (int i = 1; i <= 6; ++i) {
    const std::string name = "fam_v" + std::to_string(i);
    builds.push_back(std::make_unique<FunctionLibrary>("fam", name, AddLibrary(name, i)));
    auto r = RunAsync(io_, Function(*builds.back(), "add").Call(*connection_, {"k"}, {"1"}));
    ASSERT_TRUE(r) << r.error().Describe();
    std::this_thread::sleep_for(5ms);  // load times a few milliseconds apart
  }
  ASSERT_EQ(FunctionLibrary::kKeptLibraries, 4);
  EXPECT_EQ(Libraries(),
            (std::vector<std::string>{"fam_v3", "fam_v4", "fam_v5", "fam_v6", "other_lib"}));
  EXPECT_EQ(server_.Run({"HLEN", "fam:function-libraries"}).integer, 4);

  // v1's processes still run: their next call loads v1 again (dropping the then oldest, v3).
  auto again = RunAsync(io_, Function(*builds[0], "add").Call(*connection_, {"v1"}, {"2"}));
  ASSERT_TRUE(again) << again.error().Describe();
  EXPECT_EQ(again->integer, 2);
  EXPECT_EQ(Libraries(),
            (std::vector<std::string>{"fam_v1", "fam_v4", "fam_v5", "fam_v6", "other_lib"}));
}

}  // namespace
}  // namespace reelq::redis
