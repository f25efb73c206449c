// Issue 11 ListJobs at depth against a real redis-server: pages follow an opaque cursor (a
// position in a sorted-set index), so paging while jobs change state lists every job that stays
// in the filter exactly once; a malformed cursor is refused naming page_token; a token is sealed
// and bound to its listing; a page at 100,000 queued answers fast.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "store_fixture.h"

namespace reelq::queue {
namespace {

using namespace std::chrono_literals;
using testing::RunAsync;

class ListCursorTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    QueueSettings s = OneModel();
    s.models.push_back({.id = "m2", .accounts = {"a1"}});
    s.accounts[0].max_concurrent = 1000000;
    Sync(s);
  }

  void Submit(const std::string& prefix, int n, const std::string& tenant = "studio",
              const std::string& batch = "", const std::string& model = "m1") {
    for (int at = 0; at < n; at += 1000) {
      std::vector<NewJob> jobs;
      for (int i = at; i < std::min(n, at + 1000); ++i) {
        jobs.push_back(NewJob{.id = prefix + std::to_string(i),
                              .tenant = tenant,
                              .batch = batch,
                              .spec_bytes = "spec",
                              .candidate_models = {model}});
      }
      auto r = RunAsync(io_, store_->SubmitMany(jobs, 3600));
      ASSERT_TRUE(r) << r.error().Describe();
    }
  }

  ListPage Page(ListFilter filter) {
    auto page = RunAsync(io_, store_->List(filter));
    if (!page) throw std::runtime_error(page.error().Describe());
    return *page;
  }

  // Every job of the filter, page by page.
  std::vector<std::string> All(ListFilter filter) {
    std::vector<std::string> ids;
    for (int pages = 0; pages < 10000; ++pages) {
      auto page = Page(filter);
      for (const auto& j : page.jobs) ids.push_back(j.id);
      if (page.next_page_token.empty()) return ids;
      filter.page_token = page.next_page_token;
    }
    throw std::runtime_error("paging never ended");
  }
};

TEST_F(ListCursorTest, PagingWhileJobsMoveListsEveryStayingJobOnce) {
  // 300 jobs submitted in the same millisecond: their index scores tie, so the cursor must order
  // by id within a score, including when the cursor's own job has left the index.
  Submit("p", 300);
  ListFilter filter{.state = JobState::kPending, .page_size = 40};
  std::set<std::string> left;  // jobs that left PENDING while paging
  std::vector<std::string> listed;
  int round = 0;
  for (;;) {
    auto page = Page(filter);
    ASSERT_LE(page.jobs.size(), 40u);
    for (const auto& j : page.jobs) {
      EXPECT_EQ(j.state, JobState::kPending) << j.id;
      listed.push_back(j.id);
    }
    if (page.next_page_token.empty()) break;
    filter.page_token = page.next_page_token;
    // Between pages: the cursor's own job is cancelled (it leaves the index), jobs from the
    // head are dispatched, and new jobs arrive later in time.
    const std::string last = page.jobs.back().id;
    ASSERT_TRUE(RunAsync(io_, store_->Cancel(last)));
    left.insert(last);
    auto d = RunAsync(io_, store_->Dispatch(7, 16, 1));
    ASSERT_TRUE(d) << d.error().Describe();
    clock_->Advance(1ms);
    Submit("n" + std::to_string(round) + "-", 5);
    ++round;
  }
  ASSERT_GT(round, 5);
  std::set<std::string> unique(listed.begin(), listed.end());
  EXPECT_EQ(unique.size(), listed.size()) << "a job was listed twice";
  // Every job still PENDING now (it never left the filter) was listed.
  for (const auto& id : All(ListFilter{.state = JobState::kPending, .page_size = 1000})) {
    EXPECT_TRUE(unique.contains(id)) << id << " stayed PENDING but was never listed";
  }
  // And the jobs that moved are where they went.
  auto dispatched = All(ListFilter{.state = JobState::kDispatched, .page_size = 13});
  EXPECT_EQ(dispatched.size(), static_cast<size_t>(7 * round));
  auto cancelled = All(ListFilter{.state = JobState::kCancelled, .page_size = 7});
  EXPECT_EQ(std::set<std::string>(cancelled.begin(), cancelled.end()), left);
}

TEST_F(ListCursorTest, FiltersByBatchTenantAndModel) {
  Submit("a", 120, "studio", "b1", "m1");
  Submit("b", 30, "other", "b2", "m2");
  ASSERT_TRUE(RunAsync(io_, store_->Dispatch(1000, 1000, 1)));
  EXPECT_EQ(All(ListFilter{.batch = "b1", .page_size = 50}).size(), 120u);
  EXPECT_EQ(All(ListFilter{.tenant = "other", .page_size = 7}).size(), 30u);
  EXPECT_EQ(All(ListFilter{.model = "m2", .page_size = 9}).size(), 30u);
  EXPECT_EQ(All(ListFilter{.model = "m1", .page_size = 100}).size(), 120u);
  // Combined: the state index, filtered by tenant.
  EXPECT_EQ(
      All(ListFilter{.tenant = "other", .state = JobState::kDispatched, .page_size = 4}).size(),
      30u);
  EXPECT_TRUE(All(ListFilter{.tenant = "other", .state = JobState::kPending}).empty());
  // No filter: every job once.
  auto all = All(ListFilter{.page_size = 33});
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), 150u);
  EXPECT_EQ(all.size(), 150u);
}

// One damaged record (a hand edit, a partial restore) is left out of its page, named in the
// page's `unreadable`, and paging goes on past it: it does not hide every job listed after it.
TEST_F(ListCursorTest, ADamagedRecordIsLeftOutAndPagingGoesOn) {
  Submit("d", 5);
  server_->Run({"HSET", "t:{q}:job:d2", "state", "BOGUS"});
  std::vector<std::string> ids, unreadable;
  ListFilter filter{.page_size = 2};
  for (int pages = 0; pages < 100; ++pages) {
    auto page = Page(filter);
    for (const auto& job : page.jobs) ids.push_back(job.id);
    unreadable.insert(unreadable.end(), page.unreadable.begin(), page.unreadable.end());
    if (page.next_page_token.empty()) break;
    filter.page_token = page.next_page_token;
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"d0", "d1", "d3", "d4"}));
  EXPECT_EQ(unreadable, (std::vector<std::string>{"d2"}));
  auto got = RunAsync(io_, store_->Get("d2"));
  ASSERT_FALSE(got);
  EXPECT_NE(got.error().message.find("BOGUS"), std::string::npos) << got.error().message;
}

// Text in a record that is not valid UTF-8 (a provider message an older build cut mid-character)
// is read back shown as \xNN: a client refuses an answer holding invalid UTF-8, and the job (and
// any page listing it) would be unreadable.
TEST_F(ListCursorTest, TextThatIsNotUtf8IsReadBackShownNotPassedOn) {
  Submit("u", 1);
  server_->Run({"HSET", "t:{q}:job:u0", "err_msg", "caf\xe9 \xe5\x86", "err_code", "\xff"});
  auto got = RunAsync(io_, store_->Get("u0"));
  ASSERT_TRUE(got) << got.error().Describe();
  EXPECT_EQ(got->error_message, "caf\\xe9 \\xe5\\x86");
  EXPECT_EQ(got->error_code, "\\xff");
  auto page = Page(ListFilter{.page_size = 10});
  ASSERT_EQ(page.jobs.size(), 1u);
  EXPECT_EQ(page.jobs[0].error_message, "caf\\xe9 \\xe5\\x86");
}

// No filter: there is no all-jobs index, and a tenant's jobs are one entry per submit call
// (submit.lua); list.lua merges the tenants' calls. Pages follow submit order (time, call,
// position) across tenants whose calls tie in time, jobs submitted while paging come after the
// cursor and are listed too, and a job the previous layout indexed per job (in its tenant's
// sorted set and in the all-jobs index) is listed once, at its place.
TEST_F(ListCursorTest, EveryJobPagesMergeTenantsInSubmitOrder) {
  Submit("p", 1, "t1");
  clock_->Advance(1ms);
  Submit("x", 50, "t1");
  Submit("y", 40, "t2");  // same millisecond as t1's: ties across two tenants
  clock_->Advance(1ms);
  Submit("z", 30, "t3");
  Submit("w", 20, "t1");
  EXPECT_EQ(server_->Run({"EXISTS", "t:{q}:jobs"}).integer, 0);
  EXPECT_EQ(server_->Run({"EXISTS", "t:{q}:tenant:t1:jobs"}).integer, 0);
  EXPECT_EQ(server_->Run({"ZCARD", "t:{q}:tenant:t1:calls"}).integer, 3);
  // p0 as the previous layout left it: no call, an entry in its tenant's sorted set and one in
  // the all-jobs index, scored by its submit time.
  const auto p_call =
      server_->Run({"ZRANGE", "t:{q}:tenant:t1:calls", "0", "0"}).elements.at(0).str;
  ASSERT_EQ(server_->Run({"HGET", "t:{q}:tenant:t1:callids", p_call}).str, "p0");
  server_->Run({"ZREM", "t:{q}:tenant:t1:calls", p_call});
  server_->Run({"HDEL", "t:{q}:tenant:t1:callids", p_call, "#" + p_call});
  server_->Run({"ZADD", "t:{q}:tenant:t1:jobs", "1700000000000", "p0"});
  server_->Run({"ZADD", "t:{q}:jobs", "1700000000000", "p0"});
  std::vector<std::string> expected{"p0"};
  for (const auto& [prefix, n] :
       std::vector<std::pair<std::string, int>>{{"x", 50}, {"y", 40}, {"z", 30}, {"w", 20}}) {
    for (int i = 0; i < n; ++i) expected.push_back(prefix + std::to_string(i));
  }
  ListFilter filter{.page_size = 7};
  std::vector<std::string> listed;
  int pages = 0;
  for (;; ++pages) {
    ASSERT_LT(pages, 200);
    auto page = Page(filter);
    ASSERT_LE(page.jobs.size(), 7u);
    for (const auto& j : page.jobs) listed.push_back(j.id);
    if (page.next_page_token.empty()) break;
    filter.page_token = page.next_page_token;
    clock_->Advance(1ms);
    const std::string late = "late" + std::to_string(pages) + "-";
    Submit(late, 3, "t2");
    for (int i = 0; i < 3; ++i) expected.push_back(late + std::to_string(i));
  }
  ASSERT_GT(pages, 10);
  EXPECT_EQ(listed, expected);
  // One tenant's jobs alone: its calls and its previous layout's sorted set, merged the same way.
  std::vector<std::string> t1;
  for (const auto& id : expected) {
    if (id[0] == 'p' || id[0] == 'x' || id[0] == 'w') t1.push_back(id);
  }
  EXPECT_EQ(All(ListFilter{.tenant = "t1", .page_size = 6}), t1);
}

// PENDING without a per-job state entry at submit (list.lua, pending_page): the dispatch
// queues first (a job there until its first transition), then state:PENDING (jobs back from a
// retry or a backoff, which may be in a queue too, and the previous layout's, indexed in both).
// Every PENDING job is listed once, with or without a tenant filter, whatever the page size.
TEST_F(ListCursorTest, PendingListsTheDispatchQueuesThenTheJobsOutsideThemEachOnce) {
  Submit("s", 50, "studio");
  Submit("o", 30, "other");
  ASSERT_TRUE(RunAsync(io_, store_->Dispatch(10, 16, 1)));
  auto leased = RunAsync(io_, store_->Lease("w", 10, 60s));
  ASSERT_TRUE(leased);
  ASSERT_EQ(leased->size(), 10u);
  std::set<std::string> running;
  for (size_t i = 0; i < leased->size(); ++i) {
    const auto& j = (*leased)[i];
    if (i >= 5) {
      running.insert(j.id);
      continue;
    }
    // Three back in their queue after a short backoff, two still waiting theirs out.
    FailRequest f{.job_id = j.id,
                  .token = j.token,
                  .category = ErrorCategory::kRetryable,
                  .message = "503",
                  .retry = true,
                  .retry_at_ms = clock_->NowMs() + (i < 3 ? 1000 : 100000)};
    ASSERT_TRUE(RunAsync(io_, store_->Fail(f)));
  }
  clock_->Advance(2s);
  ASSERT_TRUE(RunAsync(io_, store_->Reap(100)));
  // Cancelled and retried by request: state:PENDING and its queue.
  ASSERT_TRUE(RunAsync(io_, store_->Cancel("s40")));
  ASSERT_TRUE(RunAsync(io_, store_->Retry("s40")));
  // As the previous layout submitted it: `seq` stored, in its queue and in state:PENDING.
  server_->Run({"HSET", "t:{q}:job:old", "state", "PENDING", "seq", "1", "created", "1700000000000",
                "tenant", "studio", "score", "1759218604441600", "models", "m1", "spec", "spec"});
  server_->Run({"ZADD", "t:{q}:pending:studio", "1759218604441600", "old"});
  server_->Run({"ZADD", "t:{q}:state:PENDING", "1700000000000", "old"});
  std::set<std::string> expected{"old"}, studio{"old"};
  for (int i = 0; i < 50; ++i) expected.insert("s" + std::to_string(i));
  for (int i = 0; i < 30; ++i) expected.insert("o" + std::to_string(i));
  for (const auto& id : running) expected.erase(id);
  for (const auto& id : expected) {
    if (id[0] != 'o') studio.insert(id);
  }
  for (int size : {1, 7, 40, 1000}) {
    auto listed = All(ListFilter{.state = JobState::kPending, .page_size = size});
    EXPECT_EQ(std::set<std::string>(listed.begin(), listed.end()), expected) << size;
    EXPECT_EQ(listed.size(), expected.size()) << "a job was listed twice, page size " << size;
    auto by_tenant =
        All(ListFilter{.tenant = "studio", .state = JobState::kPending, .page_size = size});
    EXPECT_EQ(std::set<std::string>(by_tenant.begin(), by_tenant.end()), studio) << size;
    EXPECT_EQ(by_tenant.size(), studio.size()) << size;
  }
}

TEST_F(ListCursorTest, MalformedCursorIsRefusedNamingPageToken) {
  Submit("j", 3);
  for (const std::string& bad :
       std::vector<std::string>{"!!not-base64!!", "aGVsbG8", "eCB5",  // "hello", "x y"
                                std::string(2000, 'A')}) {
    auto page = RunAsync(io_, store_->List(ListFilter{.page_token = bad}));
    ASSERT_FALSE(page) << bad;
    EXPECT_EQ(page.error().category, ErrorCategory::kInvalidRequest);
    EXPECT_NE(page.error().message.find("page_token"), std::string::npos) << page.error().message;
  }
  // A position written by hand ("0.5 @", as the plain tokens of earlier releases were made)
  // does not open: tokens are sealed.
  Submit("b", 3, "studio", "b1", "m1");
  auto forged = RunAsync(io_, store_->List(ListFilter{.batch = "b1", .page_token = "MC41IEA"}));
  ASSERT_FALSE(forged);
  EXPECT_EQ(forged.error().category, ErrorCategory::kInvalidRequest);
  EXPECT_NE(forged.error().message.find("does not open"), std::string::npos)
      << forged.error().message;
}

// A tenant's page over a shared index (a state) stops at the last entry it looked at, which may
// be another tenant's job. The token is sealed: it shows neither that job's id nor its time, and
// it opens only for the listing that gave it out (not for another tenant's).
TEST_F(ListCursorTest, APageTokenHidesWhereItStoppedAndOpensOnlyForItsListing) {
  // Dispatched at one time, the state index orders them by id.
  Submit("a-mine", 1, "studio");
  Submit("m-theirs-", 5001, "other");  // more than a page scans (kListScanLimit)
  Submit("z-mine", 1, "studio");
  for (int round = 0; round < 20; ++round) {
    auto dispatched = RunAsync(io_, store_->Dispatch(1000, 100, 1));
    ASSERT_TRUE(dispatched) << dispatched.error().Describe();
    if (dispatched->dispatched == 0) break;
  }
  const ListFilter mine{.tenant = "studio", .state = JobState::kDispatched, .page_size = 10};
  auto first = Page(mine);
  ASSERT_EQ(first.jobs.size(), 1u);  // the scan stopped among the other tenant's jobs
  EXPECT_EQ(first.jobs[0].id, "a-mine0");
  ASSERT_FALSE(first.next_page_token.empty());
  std::string raw;  // the token's bytes (base64url)
  {
    const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint32_t bits = 0;
    int held = 0;
    for (char c : first.next_page_token) {
      const auto at = alphabet.find(c);
      ASSERT_NE(at, std::string::npos) << first.next_page_token;
      bits = (bits << 6) | static_cast<uint32_t>(at);
      held += 6;
      if (held >= 8) {
        held -= 8;
        raw.push_back(static_cast<char>((bits >> held) & 0xff));
      }
    }
  }
  EXPECT_EQ(raw.find("theirs"), std::string::npos) << "the token names the other tenant's job";

  ListFilter theirs{
      .tenant = "other", .state = JobState::kDispatched, .page_token = first.next_page_token};
  auto refused = RunAsync(io_, store_->List(theirs));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().category, ErrorCategory::kInvalidRequest);
  EXPECT_NE(refused.error().message.find("page_token"), std::string::npos);

  // Its own listing goes on from it (with another page size too), every job once.
  ListFilter next = mine;
  next.page_token = first.next_page_token;
  next.page_size = 3;
  auto rest = All(next);
  EXPECT_EQ(rest, std::vector<std::string>{"z-mine0"});
  // A second store (another scheduler) opens the same token: the key is the deployment's.
  auto other_store = NewStore();
  auto again = RunAsync(io_, other_store->List(next));
  ASSERT_TRUE(again) << again.error().Describe();
}

TEST_F(ListCursorTest, PageOfHundredAtHundredThousandQueuedIsFast) {
  Submit("d", 100000);
  std::vector<double> ms;
  ListFilter filter{.state = JobState::kPending, .page_size = 100};
  for (int i = 0; i < 20; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto page = Page(filter);
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    ASSERT_EQ(page.jobs.size(), 100u);
    filter.page_token = page.next_page_token;
  }
  std::sort(ms.begin(), ms.end());
  std::printf("ListJobs state=PENDING, 100 rows at 100,000 queued: median %.1f ms, max %.1f ms\n",
              ms[ms.size() / 2], ms.back());
  EXPECT_LE(ms[ms.size() / 2], 50.0);
  // By tenant (its submit calls) and unfiltered (every tenant's calls merged), at that depth.
  for (ListFilter by :
       {ListFilter{.tenant = "studio", .page_size = 100}, ListFilter{.page_size = 100}}) {
    ms.clear();
    for (int i = 0; i < 20; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      auto page = Page(by);
      ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      ASSERT_EQ(page.jobs.size(), 100u);
      EXPECT_EQ(page.jobs.front().id, "d" + std::to_string(100 * i));
      by.page_token = page.next_page_token;
    }
    std::sort(ms.begin(), ms.end());
    std::printf("ListJobs %s, 100 rows at 100,000 queued: median %.1f ms, max %.1f ms\n",
                by.tenant.empty() ? "unfiltered" : "tenant=studio", ms[ms.size() / 2], ms.back());
    EXPECT_LE(ms[ms.size() / 2], 50.0);
  }
}

}  // namespace
}  // namespace reelq::queue
