// TLS and mutual TLS on the scheduler's listener, with certificates made here by `openssl`; the
// CLI's --tls/--ca/--cert/--key; and the refusal to serve without authentication on an address
// other than loopback.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <thread>

#include <sys/wait.h>

#include "auth_util.h"
#include "stack.h"

namespace reelq::testing {
namespace {

namespace v1 = reelq::v1;
namespace fs = std::filesystem;
using grpc::StatusCode;

constexpr const char* kAdminToken = "admin-token-for-tls-tests-5b81d04c7e";

const std::map<std::string, std::string> kSimKeys = {
    {"SIM_KLING_ACCESS_KEY_A", "sim-kling-ak-a"}, {"SIM_KLING_SECRET_KEY_A", "sim-kling-sk-a"},
    {"SIM_KLING_ACCESS_KEY_B", "sim-kling-ak-b"}, {"SIM_KLING_SECRET_KEY_B", "sim-kling-sk-b"},
    {"SIM_SORA_KEY_A", "sim-sora-key-a"},         {"SIM_SORA_KEY_B", "sim-sora-key-b"},
    {"SIM_VEO_KEY_A", "sim-veo-key-a"},           {"SIM_VEO_KEY_B", "sim-veo-key-b"},
    {"SIM_SEEDANCE_KEY_A", "sim-seedance-key-a"}, {"SIM_SEEDANCE_KEY_B", "sim-seedance-key-b"},
};

int Shell(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A CA, a server certificate for 127.0.0.1 signed by it, a client certificate signed by it, and
// a client certificate signed by another CA.
bool MakeCertificates(const fs::path& dir) {
  const std::string d = dir.string();
  const std::string quiet = " >/dev/null 2>&1";
  auto ca = [&](const std::string& name) {
    return Shell("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=" + name +
                 " -keyout " + d + "/" + name + ".key -out " + d + "/" + name + ".pem" + quiet) ==
           0;
  };
  auto leaf = [&](const std::string& name, const std::string& ca_name, const std::string& ext) {
    std::ofstream(dir / (name + ".ext")) << ext << "\n";
    return Shell("openssl req -newkey rsa:2048 -nodes -subj /CN=" + name + " -keyout " + d + "/" +
                 name + ".key -out " + d + "/" + name + ".csr" + quiet) == 0 &&
           Shell("openssl x509 -req -days 2 -in " + d + "/" + name + ".csr -CA " + d + "/" +
                 ca_name + ".pem -CAkey " + d + "/" + ca_name + ".key -CAcreateserial -out " + d +
                 "/" + name + ".pem -extfile " + d + "/" + name + ".ext" + quiet) == 0;
  };
  return ca("ca") && ca("other-ca") &&
         leaf("server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost") &&
         leaf("client", "ca", "extendedKeyUsage=clientAuth") &&
         leaf("stranger", "other-ca", "extendedKeyUsage=clientAuth");
}

std::shared_ptr<grpc::Channel> TlsChannel(int port, const fs::path& dir,
                                          const std::string& client) {
  grpc::SslCredentialsOptions tls;
  tls.pem_root_certs = ReadFile(dir / "ca.pem");
  if (!client.empty()) {
    tls.pem_cert_chain = ReadFile(dir / (client + ".pem"));
    tls.pem_private_key = ReadFile(dir / (client + ".key"));
  }
  return grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::SslCredentials(tls));
}

grpc::Status Stats(const std::shared_ptr<grpc::Channel>& channel, const std::string& token) {
  auto models = v1::ModelService::NewStub(channel);
  v1::GetStatsResponse resp;
  auto ctx = Authed(token);
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  return models->GetStats(ctx.get(), {}, &resp);
}

class AuthTls : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto missing = E2eStack::MissingBinaries(); !missing.empty()) GTEST_SKIP() << missing;
    if (Shell("openssl version >/dev/null 2>&1") != 0) GTEST_SKIP() << "openssl is not installed";
    if (!fs::exists(BuildPath("cli/reelq"))) GTEST_SKIP() << "reelq (cli) is not built";
    stack_ = std::make_unique<E2eStack>(E2eStackOptions{.schedulers = 1, .workers = 0});
  }

  // The stack's config (authentication off) with `extra` appended, as a new file.
  fs::path Config(const std::string& name, const std::string& extra) {
    const fs::path path = stack_->dir() / name;
    std::ofstream(path) << ReadFile(stack_->config_path()) << "\n" << extra << "\n";
    return path;
  }

  ChildProcess StartScheduler(const fs::path& config, const std::string& listen,
                              std::map<std::string, std::string> env, const std::string& log) {
    for (const auto& [k, v] : kSimKeys) env[k] = v;
    return ChildProcess::Start({BuildPath("scheduler/reelq-scheduler").string(), "--config",
                                config.string(), "--listen", listen},
                               env, stack_->log_dir() / log);
  }

  std::unique_ptr<E2eStack> stack_;
};

TEST_F(AuthTls, MutualTlsRefusesClientsWithoutItsCertificate) {
  const fs::path certs = stack_->dir() / "certs";
  fs::create_directories(certs);
  ASSERT_TRUE(MakeCertificates(certs));
  const auto config = Config("mtls.yaml", "auth:\n  admin_tokens:\n    - {env: TLS_ADMIN}\n");
  const int port = FreePort();
  auto scheduler =
      StartScheduler(config, "127.0.0.1:" + std::to_string(port),
                     {{"TLS_ADMIN", kAdminToken},
                      {"REELQ__SCHEDULER__TLS_CERT_FILE", (certs / "server.pem").string()},
                      {"REELQ__SCHEDULER__TLS_KEY_FILE", (certs / "server.key").string()},
                      {"REELQ__SCHEDULER__TLS_CLIENT_CA_FILE", (certs / "ca.pem").string()}},
                     "scheduler-mtls.log");
  ASSERT_TRUE(WaitForPort(port, std::chrono::seconds(30))) << stack_->Logs();

  // With the CA's client certificate and the admin token: served.
  grpc::Status ok;
  for (int i = 0; i < 50; ++i) {
    ok = Stats(TlsChannel(port, certs, "client"), kAdminToken);
    if (ok.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(ok.ok()) << ok.error_message() << stack_->Logs();
  // Certificate but no token: the TLS layer lets it in, authentication does not.
  EXPECT_EQ(Stats(TlsChannel(port, certs, "client"), "").error_code(), StatusCode::UNAUTHENTICATED);
  // No client certificate, one from another CA, or plaintext: refused before any RPC.
  for (const std::string client : {"", "stranger"}) {
    auto refused = Stats(TlsChannel(port, certs, client), kAdminToken);
    EXPECT_EQ(refused.error_code(), StatusCode::UNAVAILABLE)
        << "client '" << client << "': " << refused.error_message();
  }
  auto plain =
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
  EXPECT_EQ(Stats(plain, kAdminToken).error_code(), StatusCode::UNAVAILABLE);

  // The CLI, with and without its certificate.
  const std::string cli = BuildPath("cli/reelq").string() +
                          " --server 127.0.0.1:" + std::to_string(port) + " --ca " +
                          (certs / "ca.pem").string();
  const std::string with_cert =
      " --cert " + (certs / "client.pem").string() + " --key " + (certs / "client.key").string();
  const std::string out = (stack_->dir() / "cli.out").string();
  EXPECT_EQ(Shell("REELQ_TOKEN=" + std::string(kAdminToken) + " " + cli + with_cert + " stats >" +
                  out + " 2>&1"),
            0)
      << ReadFile(out);
  EXPECT_NE(
      Shell("REELQ_TOKEN=" + std::string(kAdminToken) + " " + cli + " stats >" + out + " 2>&1"), 0)
      << ReadFile(out);
  EXPECT_EQ(Shell(cli + with_cert + " --token wrong-token stats >" + out + " 2>&1"), 20 + 16)
      << ReadFile(out);
  EXPECT_EQ(ReadFile(out).find("wrong-token"), std::string::npos) << "the CLI echoed a token";
  scheduler.Stop();
  for (const auto& [k, v] : kSimKeys) {
    EXPECT_TRUE(LinesContaining(stack_->log_dir().string(), v).empty()) << k;
  }
  EXPECT_TRUE(LinesContaining(stack_->log_dir().string(), kAdminToken).empty());
}

// A certificate or key the scheduler cannot use stops it at start naming the setting and the file
// (gRPC alone reports only a port it could not listen on): a file that holds no PEM, and a key of
// another pair.
TEST_F(AuthTls, AnUnusableCertificateOrKeyIsNamedAtStart) {
  const fs::path certs = stack_->dir() / "certs";
  fs::create_directories(certs);
  ASSERT_TRUE(MakeCertificates(certs));
  std::ofstream(certs / "garbage.pem") << "not a certificate\n";
  struct Case {
    std::string cert, key, expected;
  };
  for (const auto& c :
       std::vector<Case>{{"garbage.pem", "server.key", "scheduler.tls_cert_file: "},
                         {"server.pem", "garbage.pem", "scheduler.tls_key_file: "},
                         {"server.pem", "client.key", "does not belong to the certificate"}}) {
    SCOPED_TRACE(c.cert + " + " + c.key);
    const std::string log = "scheduler-bad-" + c.cert + "-" + c.key + ".log";
    auto refused = StartScheduler(stack_->config_path(), "127.0.0.1:" + std::to_string(FreePort()),
                                  {{"REELQ__SCHEDULER__TLS_CERT_FILE", (certs / c.cert).string()},
                                   {"REELQ__SCHEDULER__TLS_KEY_FILE", (certs / c.key).string()}},
                                  log);
    auto status = refused.Wait(std::chrono::seconds(30));
    ASSERT_TRUE(status.has_value()) << "the scheduler started";
    EXPECT_EQ(WEXITSTATUS(*status), 2);
    const auto text = ReadFile(stack_->log_dir() / log);
    EXPECT_NE(text.find(c.expected), std::string::npos) << text;
    EXPECT_EQ(text.find("cannot listen"), std::string::npos) << text;
  }
}

TEST_F(AuthTls, RefusesToServeNonLoopbackWithoutAuthenticationUnlessTold) {
  const int port = FreePort();
  const std::string anywhere = "0.0.0.0:" + std::to_string(port);
  auto refused = StartScheduler(stack_->config_path(), anywhere, {}, "scheduler-open.log");
  auto status = refused.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(status.has_value()) << "the scheduler served 0.0.0.0 without authentication";
  EXPECT_EQ(WEXITSTATUS(*status), 2);
  const auto log = ReadFile(stack_->log_dir() / "scheduler-open.log");
  EXPECT_NE(log.find("auth.allow_unauthenticated_non_loopback"), std::string::npos) << log;

  // Said in so many words: it serves.
  const auto allowed = Config("open.yaml", "auth:\n  allow_unauthenticated_non_loopback: true\n");
  auto serving = StartScheduler(allowed, anywhere, {}, "scheduler-allowed.log");
  EXPECT_TRUE(WaitForPort(port, std::chrono::seconds(30)))
      << ReadFile(stack_->log_dir() / "scheduler-allowed.log");
  EXPECT_TRUE(serving.running());
  serving.Stop();
}

}  // namespace
}  // namespace reelq::testing
