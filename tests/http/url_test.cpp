#include <gtest/gtest.h>

#include "transport_error.h"
#include "url.h"

namespace reelq::http::internal {
namespace {

TEST(Url, ParsesSchemesHostsPortsAndTargets) {
  auto u = ParseUrl("https://api-singapore.klingai.com/v1/videos/text2video?x=1");
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "api-singapore.klingai.com");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->target, "/v1/videos/text2video?x=1");
  EXPECT_EQ(u->HostHeader(), "api-singapore.klingai.com");

  auto p = ParseUrl("http://127.0.0.1:8080");
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->tls);
  EXPECT_EQ(p->port, 8080);
  EXPECT_EQ(p->target, "/");
  EXPECT_EQ(p->HostHeader(), "127.0.0.1:8080");

  auto v6 = ParseUrl("http://[::1]:9/x#frag");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->Authority(), "[::1]:9");
  EXPECT_EQ(v6->target, "/x");

  auto q = ParseUrl("http://h?a=b");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->target, "/?a=b");

  // Schemes are case-insensitive: a webhook URL admitted as "HTTPS://..." is delivered.
  auto upper = ParseUrl("HTTPS://Hooks.Example.com/reelq");
  ASSERT_TRUE(upper) << upper.error().message;
  EXPECT_TRUE(upper->tls);
  EXPECT_EQ(upper->target, "/reelq");
}

TEST(Url, RejectsMalformed) {
  for (const char* bad :
       {"", "ftp://x/", "http://", "http://:80/", "http://h:0/", "http://h:99999/", "http://h:12a/",
        "http://u@h/", "http://[::1/", "http://h/a b"}) {
    auto u = ParseUrl(bad);
    EXPECT_FALSE(u) << bad;
    if (!u) {
      EXPECT_EQ(u.error().category, ErrorCategory::kInvalidRequest);
    }
  }
}

TEST(Url, ResolvesRedirectLocations) {
  auto base = *ParseUrl("http://a:1/dir/file?q=1");
  EXPECT_EQ(ToString(*ResolveLocation(base, "/x")), "http://a:1/x");
  EXPECT_EQ(ToString(*ResolveLocation(base, "other")), "http://a:1/dir/other");
  EXPECT_EQ(ToString(*ResolveLocation(base, "//b:2/y")), "http://b:2/y");
  EXPECT_EQ(ToString(*ResolveLocation(base, "https://c/z")), "https://c:443/z");
  EXPECT_FALSE(ResolveLocation(base, ""));
}

TEST(TransportError, FormatsDurations) {
  using std::chrono::milliseconds;
  EXPECT_EQ(FormatDuration(milliseconds(30000)), "30s");
  EXPECT_EQ(FormatDuration(milliseconds(1500)), "1.5s");
  EXPECT_EQ(FormatDuration(milliseconds(200)), "200ms");
}

}  // namespace
}  // namespace reelq::http::internal
