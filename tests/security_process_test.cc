// Transport security end to end on loopback, with certificates made in the test by the `openssl`
// command line: a router with TLS and bearer tokens, a node with mutual TLS and tokens that
// registers with the router over TLS with its own token, and the C++ clients and the CLI with
// right, wrong and missing credentials. Also: two tenants with identical prompts never share a
// block, through the real router and node.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "clients/cache_node_client.h"
#include "clients/router_client.h"
#include "common/block_hash.h"
#include "common/namespace_id.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/node_process.h"

namespace strata::tests {
namespace {

constexpr char kRouteToken[] = "route-token-for-tests-0001";
constexpr char kNodeToken[] = "node-token-for-tests-00002";
constexpr char kAdminToken[] = "admin-token-for-tests-0003";

void WriteFile(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// Runs openssl; fails the test with its stderr when it fails.
void OpenSsl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = RunProcess(argv, absl::Seconds(60));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->exit_code, 0) << absl::StrJoin(args, " ") << "\n" << r->stderr_text;
}

// A CA, a server certificate for 127.0.0.1/localhost, a client certificate, and a client
// certificate from another CA; token files. Made once for the suite.
class Pki {
 public:
  explicit Pki(const TempDir& dir) : dir_(dir) {}
  std::string F(const std::string& name) const { return dir_.File(name); }

  void Make() {
    for (const std::string ca : {"ca", "other-ca"}) {
      OpenSsl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
               "/CN=strata-test-" + ca, "-keyout", F(ca + ".key"), "-out", F(ca + ".pem")});
    }
    WriteFile(F("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
    Issue("server", "ca", "server.ext");
    WriteFile(F("client.ext"), "extendedKeyUsage=clientAuth\n");
    Issue("client", "ca", "client.ext");
    Issue("stranger", "other-ca", "client.ext");
    WriteFile(F("tokens"), absl::StrCat("route ", kRouteToken, "\nnode ", kNodeToken, "\nadmin ",
                                        kAdminToken, "\n"));
    WriteFile(F("node.token"), absl::StrCat(kNodeToken, "\n"));
    WriteFile(F("route.token"), absl::StrCat(kRouteToken, "\n"));
  }

 private:
  void Issue(const std::string& name, const std::string& ca, const std::string& ext) {
    OpenSsl({"req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + name, "-keyout",
             F(name + ".key"), "-out", F(name + ".csr")});
    OpenSsl({"x509", "-req", "-in", F(name + ".csr"), "-CA", F(ca + ".pem"), "-CAkey",
             F(ca + ".key"), "-CAcreateserial", "-days", "2", "-extfile", F(ext), "-out",
             F(name + ".pem")});
  }
  const TempDir& dir_;
};

class SecurityProcessTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    pki_ = new Pki(*dir_);
    pki_->Make();
  }
  static void TearDownTestSuite() {
    delete pki_;
    delete dir_;
  }

  void SetUp() override {
    ASSERT_FALSE(HasFatalFailure());
    auto addr = router_.Start({"--tls-cert", pki_->F("server.pem"), "--tls-key",
                               pki_->F("server.key"), "--auth-tokens-file", pki_->F("tokens"),
                               "--metrics-listen", "127.0.0.1:0", "--node-ttl", "3s"});
    ASSERT_TRUE(addr.ok()) << addr.status() << "\n" << router_.stderr_text();
    router_addr_ = *addr;
  }

  std::unique_ptr<clients::RouterClient> Router(const std::string& token, bool tls = true) {
    clients::RouterClientOptions o;
    o.max_attempts = 1;
    if (tls) o.security.ca_file = pki_->F("ca.pem");
    o.security.token = token;
    auto c = clients::RouterClient::Connect(router_addr_, o);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }

  // A node with mutual TLS and tokens, registered with the router over TLS with its node token.
  std::string StartNode(NodeProcess& node, const std::string& data) {
    auto addr = node.Start({"--tls-cert", pki_->F("server.pem"), "--tls-key",
                            pki_->F("server.key"), "--tls-client-ca", pki_->F("ca.pem"),
                            "--auth-tokens-file", pki_->F("tokens"), "--dram-bytes", "64MiB",
                            "--ssd-bytes", "0", "--data-dir", data, "--router", router_addr_,
                            "--node-id", "secure-node", "--router-cacert", pki_->F("ca.pem"),
                            "--router-token-file", pki_->F("node.token")});
    EXPECT_TRUE(addr.ok()) << addr.status() << "\n" << node.stderr_text();
    return addr.ok() ? *addr : "";
  }

  std::unique_ptr<clients::CacheNodeClient> Node(const std::string& addr, const std::string& token,
                                                 const std::string& cert = "client") {
    clients::ClientOptions o;
    o.target = addr;
    o.max_attempts = 1;
    o.deadline = absl::Seconds(10);
    o.security.ca_file = pki_->F("ca.pem");
    if (!cert.empty()) {
      o.security.cert_file = pki_->F(cert + ".pem");
      o.security.key_file = pki_->F(cert + ".key");
    }
    o.security.token = token;
    auto c = clients::CacheNodeClient::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }

  // Waits (bounded) until the router lists `n` nodes.
  bool AwaitNodes(size_t n) {
    auto admin = Router(kAdminToken);
    for (int i = 0; i < 300; ++i) {
      auto nodes = admin->ListNodes();
      if (nodes.ok() && nodes->size() == n) return true;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return false;
  }

  static TempDir* dir_;
  static Pki* pki_;
  NodeProcess router_{RouterBinary()};
  std::string router_addr_;
};

TempDir* SecurityProcessTest::dir_ = nullptr;
Pki* SecurityProcessTest::pki_ = nullptr;

TEST_F(SecurityProcessTest, RouterChecksTokensAndRolesAndCountsRefusals) {
  EXPECT_TRUE(Router(kRouteToken)->ListNodes().ok());
  EXPECT_EQ(Router("")->ListNodes().status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Router("not-a-known-token-000000")->ListNodes().status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Router(kRouteToken)->SetExperiment("round_robin").status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Router(kNodeToken)->SetExperiment("round_robin").status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(Router(kAdminToken)->SetExperiment("round_robin").ok());
  // A plaintext client does not get through the TLS handshake.
  EXPECT_EQ(Router("", /*tls=*/false)->ListNodes().status().code(),
            absl::StatusCode::kUnavailable);

  const std::string log = router_.stderr_text();
  EXPECT_TRUE(absl::StrContains(log, "TLS + bearer tokens (3)")) << log;
  const std::string marker = "metrics on http://127.0.0.1:";
  ASSERT_NE(log.find(marker), std::string::npos) << log;
  auto metrics = HttpGet(std::stoi(log.substr(log.find(marker) + marker.size())), "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_TRUE(absl::StrContains(
      *metrics,
      "strata_auth_denied_total{code=\"unauthenticated\",method=\"/strata.v1.Router/ListNodes\"} 2"))
      << *metrics;
  EXPECT_TRUE(absl::StrContains(*metrics,
                                "strata_auth_denied_total{code=\"permission_denied\",method=\"/"
                                "strata.v1.Router/SetExperiment\"} 2"))
      << *metrics;
}

TEST_F(SecurityProcessTest, NodeWithMutualTlsServesTheRightClientAndRegistersOverTls) {
  NodeProcess node;
  const std::string addr = StartNode(node, dir_->File("node-a"));
  ASSERT_FALSE(addr.empty());
  ASSERT_TRUE(AwaitNodes(1)) << node.stderr_text() << router_.stderr_text();

  const common::NamespaceId ns = common::NamespaceIdOf("default");
  std::string payload(100000, '\0');
  std::mt19937 rng(3);
  for (char& c : payload) c = static_cast<char>(rng());
  common::ChainHash h;
  h.bytes.fill(0x42);
  const clients::PutBlock block{h, std::as_bytes(std::span(payload.data(), payload.size()))};
  auto put = Node(addr, kRouteToken)->Put(ns, std::span(&block, 1));
  ASSERT_TRUE(put.ok()) << put.status();
  auto got = Node(addr, kNodeToken)->Get(ns, std::span(&h, 1), false);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_TRUE((*got)[0].payload == payload);

  // Missing token, wrong role, no client certificate, a certificate from another CA.
  EXPECT_EQ(Node(addr, "")->Lookup(ns, std::span(&h, 1)).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Node(addr, kRouteToken)->Delete(ns, std::span(&h, 1)).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Node(addr, kRouteToken, /*cert=*/"")->Lookup(ns, std::span(&h, 1)).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(Node(addr, kRouteToken, "stranger")->Lookup(ns, std::span(&h, 1)).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(node.stderr_text(), "mutual TLS + bearer tokens (3)"))
      << node.stderr_text();
}

TEST_F(SecurityProcessTest, CliTakesCertificatesAndATokenFileAndWatchesStats) {
  NodeProcess node;
  const std::string addr = StartNode(node, dir_->File("node-cli"));
  ASSERT_FALSE(addr.empty());
  const std::vector<std::string> tls = {"--node", addr, "--cacert", pki_->F("ca.pem"), "--cert",
                                        pki_->F("client.pem"), "--key", pki_->F("client.key")};
  std::vector<std::string> ok = tls;
  ok.insert(ok.end(), {"--token-file", pki_->F("route.token"), "stats", "--watch", "100ms",
                       "--count", "2", "--output", "json"});
  auto r = RunCli(ok);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0) << r->stderr_text;
  EXPECT_EQ(Lines(r->stdout_text).size(), 2u) << r->stdout_text;  // one JSON object per round

  std::vector<std::string> no_token = tls;
  no_token.push_back("stats");
  r = RunCli(no_token);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r->stderr_text, "UNAUTHENTICATED")) << r->stderr_text;
}

TEST_F(SecurityProcessTest, ExampleFrontendRunsItsLoopWithCertificatesAndAToken) {
  NodeProcess node;
  const std::string addr = StartNode(node, dir_->File("node-example"));
  ASSERT_FALSE(addr.empty());
  ASSERT_TRUE(AwaitNodes(1));
  const std::string binary = RouterBinary().substr(0, RouterBinary().rfind('/')) +
                             "/strata-example-frontend";
  auto r = RunProcess({binary, "--router", router_addr_, "--cacert", pki_->F("ca.pem"), "--cert",
                       pki_->F("client.pem"), "--key", pki_->F("client.key"), "--token-file",
                       pki_->F("route.token"), "--requests", "3"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0) << r->stdout_text << r->stderr_text;
  // The first request stores the shared prompt's 4 blocks; the next ones find them.
  EXPECT_TRUE(absl::StrContains(r->stdout_text, "request 0: node secure-node")) << r->stdout_text;
  EXPECT_TRUE(absl::StrContains(r->stdout_text, "0 of 6 blocks cached")) << r->stdout_text;
  EXPECT_TRUE(absl::StrContains(r->stdout_text, "request 2: node secure-node")) << r->stdout_text;
  EXPECT_TRUE(absl::StrContains(r->stdout_text, "4 of 6 blocks cached")) << r->stdout_text;
}

TEST_F(SecurityProcessTest, ServerPicksUpARotatedCertificateWithoutARestart) {
  // A router of its own, on certificate files this test replaces.
  TempDir files;
  const std::string cert = files.File("server.pem"), key = files.File("server.key");
  std::filesystem::copy_file(pki_->F("server.pem"), cert);
  std::filesystem::copy_file(pki_->F("server.key"), key);
  NodeProcess router(RouterBinary());
  auto addr = router.Start({"--tls-cert", cert, "--tls-key", key});
  ASSERT_TRUE(addr.ok()) << addr.status() << router.stderr_text();
  auto list_nodes = [&](const std::string& ca) {
    clients::RouterClientOptions o;
    o.max_attempts = 1;
    o.security.ca_file = pki_->F(ca);
    auto c = clients::RouterClient::Connect(*addr, o);
    return c.ok() ? (*c)->ListNodes().status() : c.status();
  };
  EXPECT_TRUE(list_nodes("ca.pem").ok());
  EXPECT_FALSE(list_nodes("other-ca.pem").ok());
  // The new certificate comes from another CA; the files are replaced in place (renamed over).
  OpenSsl({"req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=rotated", "-keyout",
           files.File("new.key"), "-out", files.File("new.csr")});
  OpenSsl({"x509", "-req", "-in", files.File("new.csr"), "-CA", pki_->F("other-ca.pem"), "-CAkey",
           pki_->F("other-ca.key"), "-CAcreateserial", "-days", "2", "-extfile",
           pki_->F("server.ext"), "-out", files.File("new.pem")});
  std::filesystem::rename(files.File("new.key"), key);
  std::filesystem::rename(files.File("new.pem"), cert);
  // The watcher looks every 10 s; new connections then get the new certificate.
  bool rotated = false;
  for (int i = 0; i < 150 && !rotated; ++i) {
    rotated = list_nodes("other-ca.pem").ok();
    if (!rotated) absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_TRUE(rotated) << router.stderr_text();
  EXPECT_FALSE(list_nodes("ca.pem").ok());
}

TEST_F(SecurityProcessTest, HealthPortAnswersProbesInPlaintextBesideATlsPort) {
  NodeProcess node;
  TempDir data;
  // The health port is given, not picked: take a free one from the kernel and release it.
  const int sock = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sa);
  ASSERT_EQ(bind(sock, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  ASSERT_EQ(getsockname(sock, reinterpret_cast<sockaddr*>(&sa), &len), 0);
  close(sock);
  const std::string health = absl::StrCat("127.0.0.1:", ntohs(sa.sin_port));
  auto addr = node.Start({"--tls-cert", pki_->F("server.pem"), "--tls-key", pki_->F("server.key"),
                          "--auth-tokens-file", pki_->F("tokens"), "--health-listen", health,
                          "--dram-bytes", "16MiB", "--ssd-bytes", "0", "--data-dir",
                          data.File("d")});
  ASSERT_TRUE(addr.ok()) << addr.status() << "\n" << node.stderr_text();
  // grpc.health.v1.Health/Check with an empty request; SERVING is field 1 = 1 (bytes 08 01).
  grpc::GenericStub stub(grpc::CreateChannel(health, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::ByteBuffer request, response;
  std::promise<grpc::Status> done;
  grpc::Slice empty;
  request = grpc::ByteBuffer(&empty, 1);
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status st) { done.set_value(st); });
  const grpc::Status st = done.get_future().get();
  ASSERT_TRUE(st.ok()) << st.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const auto& sl : slices) bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));
}

TEST_F(SecurityProcessTest, TwoTenantsWithIdenticalPromptsNeverShareABlock) {
  NodeProcess node;
  const std::string addr = StartNode(node, dir_->File("node-tenants"));
  ASSERT_FALSE(addr.empty());
  ASSERT_TRUE(AwaitNodes(1));
  const std::string ns_name = "default";
  const common::NamespaceId ns = common::NamespaceIdOf(ns_name);
  std::vector<uint32_t> prompt(64);
  for (uint32_t i = 0; i < prompt.size(); ++i) prompt[i] = 1000 + i * 7;
  const auto a = common::HashChain(ns, "tenant-a-secret", prompt, 16);
  const auto b = common::HashChain(ns, "tenant-b-secret", prompt, 16);
  ASSERT_EQ(a.size(), 4u);
  for (const auto& ha : a) {
    for (const auto& hb : b) EXPECT_FALSE(ha == hb);
  }
  // Tenant A's blocks go to the node; the router hears of them.
  const std::string payload(4096, 'a');
  std::vector<clients::PutBlock> blocks;
  for (uint32_t i = 0; i < a.size(); ++i) {
    blocks.push_back({a[i], std::as_bytes(std::span(payload.data(), payload.size())), i});
  }
  ASSERT_TRUE(Node(addr, kRouteToken)->Put(ns, blocks).ok());
  auto frontend = Router(kRouteToken);
  clients::RouteQuery qa;
  qa.namespace_name = ns_name;
  qa.token_ids = prompt;
  qa.block_tokens = 16;
  qa.cache_salt = "tenant-a-secret";
  clients::RouteQuery qb = qa;
  qb.cache_salt = "tenant-b-secret";
  bool seen = false;
  for (int i = 0; i < 300 && !seen; ++i) {
    auto located = frontend->Locate(qa);
    seen = located.ok() && !located->nodes.empty() && located->nodes[0].matched_blocks == 4;
    if (!seen) absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(seen) << router_.stderr_text();
  auto ra = frontend->Route(qa);
  auto rb = frontend->Route(qb);
  ASSERT_TRUE(ra.ok() && rb.ok()) << ra.status() << rb.status();
  EXPECT_EQ(ra->matched_blocks, 4u);
  EXPECT_EQ(rb->matched_blocks, 0u);  // same tokens, another tenant: nothing to reuse
  auto lookup = Node(addr, kRouteToken)->Lookup(ns, b);
  ASSERT_TRUE(lookup.ok()) << lookup.status();
  EXPECT_EQ(lookup->matched_blocks(), 0u);
}

}  // namespace
}  // namespace strata::tests
