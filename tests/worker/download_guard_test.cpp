// Where a worker's requests may connect (worker/download_guard.h): a clip's result URL, or a
// redirect, that a provider's answer points at the machine's own or private network is refused at
// the connection, naming the host, the address and the setting that would allow it; the
// configured hosts, the allow list and public addresses go through. Against a real HTTP server on
// loopback, through the worker's HTTP client.
#include "reelq/worker/download_guard.h"

#include <gtest/gtest.h>

#include <optional>

#include "reelq/common/http_client.h"
#include "run_async.h"
#include "test_server.h"

namespace reelq::worker {
namespace {

using namespace std::chrono_literals;
using reelq::testing::Reply;
using reelq::testing::TestServer;

asio::ip::address Address(const char* text) { return asio::ip::make_address(text); }

net::AddressAllowList Allow(std::vector<std::string> entries) {
  auto list = net::AddressAllowList::Parse(entries, "worker.download_allow_hosts");
  if (!list) throw std::runtime_error(list.error().Describe());
  return *list;
}

TEST(DownloadGuard, RefusesWhatIsNotPublicUnlessConfiguredOrAllowed) {
  const DownloadGuard guard(Allow({"clips.internal", "10.20.0.0/16"}), {"API.Example.com"});
  // A host no account or store is at, resolving to the machine's own or private network.
  for (const char* address :
       {"127.0.0.1", "169.254.169.254", "10.0.0.5", "192.168.1.2", "172.16.0.1", "::1", "fe80::1",
        "fd00:ec2::254", "::ffff:127.0.0.1", "0.0.0.0"}) {
    auto refusal = guard.Refusal("cdn.example.net", Address(address));
    ASSERT_TRUE(refusal) << address;
    EXPECT_NE(refusal->find("worker.download_allow_hosts"), std::string::npos) << *refusal;
  }
  EXPECT_NE(guard.Refusal("x", Address("169.254.169.254"))->find("metadata"), std::string::npos);
  // Public addresses, the configured hosts (any case), the allow list's hosts and ranges.
  EXPECT_FALSE(guard.Refusal("cdn.example.net", Address("93.184.216.34")));
  EXPECT_FALSE(guard.Refusal("cdn.example.net", Address("2606:2800:220:1::1")));
  EXPECT_FALSE(guard.Refusal("api.example.com", Address("127.0.0.1")));
  EXPECT_FALSE(guard.Refusal("CLIPS.internal", Address("10.9.9.9")));
  EXPECT_FALSE(guard.Refusal("other", Address("10.20.3.4")));
  EXPECT_TRUE(guard.Refusal("other", Address("10.21.3.4")));
  EXPECT_FALSE(guard.Refusal("other", Address("::ffff:10.20.3.4")));
}

TEST(DownloadGuard, AMalformedAllowListEntryIsRefusedNamingTheSetting) {
  for (const std::string bad : {"", "https://clips.internal", "clips.internal:8080",
                                "clips.internal/path", "10.0.0.0/33", "bad host"}) {
    auto list = net::AddressAllowList::Parse({bad}, "worker.download_allow_hosts");
    ASSERT_FALSE(list) << bad;
    EXPECT_EQ(list.error().category, ErrorCategory::kInvalidRequest);
    EXPECT_NE(list.error().message.find("worker.download_allow_hosts"), std::string::npos)
        << list.error().message;
  }
}

// The provider's API is at 127.0.0.1 (configured); its answer's result URL redirects to
// "localhost", a name nothing configures, which resolves to loopback: refused at the connection.
TEST(DownloadGuard, ARedirectToAPrivateAddressIsRefusedAtTheConnection) {
  TestServer cdn([](const reelq::testing::ReceivedRequest&) { return Reply{.body = "secret"}; });
  const std::string inside = "http://localhost:" + cdn.Url("/").substr(cdn.Url("/").rfind(':') + 1);
  TestServer api([&](const reelq::testing::ReceivedRequest& r) {
    if (r.target == "/result") return Reply{.status = 302, .headers = {{"Location", inside}}};
    return Reply{.body = "api"};
  });
  auto fetch = [&](const DownloadGuard& guard) {
    asio::io_context io;
    http::ClientOptions options;
    options.refuse_address = [&guard](std::string_view host, const asio::ip::address& address) {
      return guard.Refusal(host, address);
    };
    auto client = http::MakeClient(io.get_executor(), options);
    http::Request request;
    request.url = api.Url("/result");
    request.timeout = 5s;
    request.max_redirects = 2;
    return testing::RunAsync(io, client->Send(request));
  };

  const DownloadGuard strict(Allow({}), {"127.0.0.1"});
  auto refused = fetch(strict);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().category, ErrorCategory::kInvalidRequest);
  EXPECT_NE(refused.error().message.find("localhost resolves to"), std::string::npos)
      << refused.error().message;
  EXPECT_NE(refused.error().message.find("a loopback address"), std::string::npos)
      << refused.error().message;
  EXPECT_TRUE(cdn.requests().empty()) << "the request reached the private address";

  const DownloadGuard allowing(Allow({"localhost"}), {"127.0.0.1"});
  auto fetched = fetch(allowing);
  ASSERT_TRUE(fetched) << fetched.error().Describe();
  EXPECT_EQ(fetched->body, "secret");
}

}  // namespace
}  // namespace reelq::worker
