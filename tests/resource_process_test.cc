// Resource bounds of a real strata-cachenode process under many connections and under more data
// than it has room for: RESP and shared-memory connections past their limits are refused with a
// clear error and closed, the node's descriptors stay within limit + a fixed margin and return to
// their baseline once the clients go, many gRPC channels are served and released, and the DRAM
// tier never holds more than its capacity while resident memory stays within arena + overhead.
//
// Descriptor and thread counts come from /proc/PID (fd, status). Where the node releases things
// after a client's close, the test polls /proc until the figure settles, with a bound; nothing is
// timed.
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "cachenode/resp_test_client.h"
#include "clients/cache_node_client.h"
#include "clients/local_client.h"
#include "common/namespace_id.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "strata/v1/cachenode.grpc.pb.h"
#include "tests/node_process.h"

namespace strata::tests {
namespace {

// Descriptors a node may open besides one per client, on top of its baseline (12-17 on a fresh
// node, measured): transient ones (gRPC wakeup fds, a RocksDB file) while the clients come and go.
constexpr int kFdMargin = 32;

int CountFds(pid_t pid) {
  int n = 0;
  if (DIR* d = opendir(absl::StrCat("/proc/", pid, "/fd").c_str())) {
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

// A numeric field of /proc/PID/status ("VmRSS", "Threads"); kB fields are returned in bytes.
uint64_t StatusField(pid_t pid, const std::string& name) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + ":", 0) != 0) continue;
    std::vector<std::string> f = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    uint64_t v = 0;
    if (f.size() < 2 || !absl::SimpleAtoi(f[1], &v)) return 0;
    return f.size() > 2 && f[2] == "kB" ? v << 10 : v;
  }
  return 0;
}

// Polls `done` until it holds or `bound` passes: for state another process changes on its own
// schedule (closing a connection it saw end), which the test cannot be told of directly.
bool Eventually(const std::function<bool()>& done, absl::Duration bound = absl::Seconds(30)) {
  const absl::Time give_up = absl::Now() + bound;
  while (!done()) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

std::string SetCommand(const std::string& key, const std::string& value) {
  return absl::StrCat("*3\r\n$3\r\nSET\r\n$", key.size(), "\r\n", key, "\r\n$", value.size(),
                      "\r\n", value, "\r\n");
}
std::string GetCommand(const std::string& key) {
  return absl::StrCat("*2\r\n$3\r\nGET\r\n$", key.size(), "\r\n", key, "\r\n");
}

std::string Payload(uint64_t id, size_t size) {
  std::string p(size, '\0');
  uint64_t x = id * 0x9e3779b97f4a7c15ull + 1;
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p[i] = static_cast<char>(x);
  }
  return p;
}

common::ChainHash HashOf(uint64_t id) {
  common::ChainHash h;
  for (size_t i = 0; i < h.bytes.size(); ++i)
    h.bytes[i] = static_cast<uint8_t>((id >> (8 * (i % 8))) + i);
  return h;
}

std::unique_ptr<clients::CacheNodeClient> GrpcClient(const std::string& target) {
  clients::ClientOptions co;
  co.target = target;
  auto c = clients::CacheNodeClient::Connect(co);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? std::move(*c) : nullptr;
}

// A put and a read back over gRPC: the node still serves.
void ExpectServes(const std::string& target, uint64_t id) {
  auto client = GrpcClient(target);
  ASSERT_NE(client, nullptr);
  const common::NamespaceId ns = common::NamespaceIdOf("default");
  const std::string payload = Payload(id, 4096);
  clients::PutBlock b;
  b.hash = HashOf(id);
  b.payload = std::as_bytes(std::span<const char>(payload));
  auto put = client->Put(ns, {&b, 1});
  ASSERT_TRUE(put.ok()) << put.status();
  const common::ChainHash h = HashOf(id);
  auto got = client->Get(ns, {&h, 1}, true);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].payload, payload);
}

TEST(ResourceProcessTest, RespConnectionsPastMaxClientsAreRefusedAndFdsReturnToBaseline) {
  TempDir dir;
  NodeProcess node;
  constexpr int kLimit = 32, kExtra = 200;
  int port = 0;
  auto addr = StartOnFreePort(
      node,
      [&](int p) -> std::vector<std::string> {
        return {"--data-dir",         dir.File("data"),
                "--dram-bytes",       "64MiB",
                "--ssd-bytes",        "0",
                "--resp-listen",      absl::StrCat("127.0.0.1:", p),
                "--resp-max-clients", absl::StrCat(kLimit)};
      },
      &port);
  ASSERT_TRUE(addr.ok()) << addr.status();
  const int baseline = CountFds(node.pid());
  {
    cachenode::RespTestClient warm(port);
    warm.Send("PING\r\n");
    ASSERT_EQ(warm.ReadExact(7), "+PONG\r\n");
  }
  // A connection costs nothing once it is gone (the node closes it when it sees the EOF).
  ASSERT_TRUE(Eventually([&] { return CountFds(node.pid()) <= baseline; }))
      << CountFds(node.pid()) << " fds, baseline " << baseline;

  std::vector<std::unique_ptr<cachenode::RespTestClient>> admitted;
  for (int i = 0; i < kLimit; ++i) {
    admitted.push_back(std::make_unique<cachenode::RespTestClient>(port));
    ASSERT_TRUE(admitted.back()->connected());
    admitted.back()->Send("PING\r\n");
    ASSERT_EQ(admitted.back()->ReadExact(7), "+PONG\r\n") << "connection " << i;
  }
  int refused = 0, peak = CountFds(node.pid());
  std::vector<std::unique_ptr<cachenode::RespTestClient>> extra;
  for (int i = 0; i < kExtra; ++i) {
    extra.push_back(std::make_unique<cachenode::RespTestClient>(port));
    if (!extra.back()->connected()) continue;
    // Past the limit the node writes its reason and closes: the reply then EOF.
    const std::string reply = extra.back()->ReadToEof();
    refused += reply == "-ERR max number of clients reached\r\n";
    peak = std::max(peak, CountFds(node.pid()));
  }
  EXPECT_EQ(refused, kExtra);
  EXPECT_LE(peak, baseline + kLimit + kFdMargin) << "baseline " << baseline;
  // The admitted connections still work, and so does gRPC.
  const std::string value = Payload(7, 64 << 10);
  admitted[3]->Send(SetCommand("k", value));
  EXPECT_EQ(admitted[3]->ReadExact(5), "+OK\r\n");
  admitted[kLimit - 1]->Send(GetCommand("k"));
  const std::string header = absl::StrCat("$", value.size(), "\r\n");
  EXPECT_EQ(admitted[kLimit - 1]->ReadExact(header.size() + value.size() + 2),
            absl::StrCat(header, value, "\r\n"));
  ExpectServes(*addr, 1);

  extra.clear();
  admitted.clear();
  EXPECT_TRUE(Eventually([&] { return CountFds(node.pid()) <= baseline; }))
      << CountFds(node.pid()) << " fds, baseline " << baseline;
  // Room again for new connections.
  cachenode::RespTestClient after(port);
  after.Send("PING\r\n");
  EXPECT_EQ(after.ReadExact(7), "+PONG\r\n");
  RecordProperty("resp_fd_baseline", baseline);
  RecordProperty("resp_fd_peak", peak);
  std::cout << "RESP: baseline " << baseline << " fds, peak " << peak << " with " << kLimit
            << " admitted + " << kExtra << " refused" << std::endl;
}

TEST(ResourceProcessTest, ShmClientsPastMaxClientsAreRefusedAndReleasedOnDisconnect) {
  TempDir dir;
  NodeProcess node;
  constexpr int kLimit = 8, kExtra = 64;
  const std::string sock = dir.File("sock");
  auto addr =
      node.Start({"--data-dir", dir.File("data"), "--dram-bytes", "64MiB", "--ssd-bytes", "0",
                  "--local-socket", sock, "--local-max-clients", absl::StrCat(kLimit)});
  ASSERT_TRUE(addr.ok()) << addr.status();
  const int baseline = CountFds(node.pid());
  const int base_threads = static_cast<int>(StatusField(node.pid(), "Threads"));
  std::vector<std::unique_ptr<clients::LocalClient>> admitted;
  for (int i = 0; i < kLimit; ++i) {
    auto c = clients::LocalClient::Connect(sock);
    ASSERT_TRUE(c.ok()) << "client " << i << ": " << c.status();
    admitted.push_back(std::move(*c));
  }
  int refused = 0, peak = CountFds(node.pid());
  std::vector<std::string> unexplained;
  for (int i = 0; i < kExtra; ++i) {
    auto c = clients::LocalClient::Connect(sock);
    // The node answers the hello with its reason (RESOURCE_EXHAUSTED on the wire; the client
    // library reports a refusal as UNAVAILABLE) and closes.
    ASSERT_FALSE(c.ok()) << "client " << kLimit + i << " was admitted past the limit";
    if (absl::StrContains(c.status().message(),
                          absl::StrCat("at most ", kLimit, " local clients"))) {
      ++refused;
    } else {
      unexplained.push_back(c.status().ToString());
    }
    peak = std::max(peak, CountFds(node.pid()));
  }
  // Every extra client is refused (none was admitted, above) and learns why, including one whose
  // hello the node had not read when it closed (the close resets the connection; the client reads
  // the reason queued before the reset).
  EXPECT_EQ(refused, kExtra);
  for (const std::string& u : unexplained) ADD_FAILURE() << "refused without the reason: " << u;
  std::cout << refused << " of " << kExtra << " refused clients got the node's reason" << std::endl;
  EXPECT_LE(peak, baseline + kLimit + kFdMargin) << "baseline " << baseline;
  const int threads = static_cast<int>(StatusField(node.pid(), "Threads"));
  EXPECT_LE(threads, base_threads + kLimit + 4) << "one thread per admitted client";
  // Admitted clients work: a put and a verified read through the arena.
  const common::NamespaceId ns = common::NamespaceIdOf("default");
  const std::string payload = Payload(3, 64 << 10);
  clients::LocalPutBlock b{HashOf(3), std::as_bytes(std::span<const char>(payload)), 0};
  auto put = admitted[0]->Put(ns, {&b, 1});
  ASSERT_TRUE(put.ok()) << put.status();
  std::string back(payload.size(), '\0');
  std::span<std::byte> dest = std::as_writable_bytes(std::span<char>(back));
  const common::ChainHash h = HashOf(3);
  auto got = admitted[kLimit - 1]->GetInto(ns, {&h, 1}, {&dest, 1});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE((*got)[0].status.ok()) << (*got)[0].status;
  EXPECT_EQ(back, payload);
  ExpectServes(*addr, 2);

  admitted.clear();
  EXPECT_TRUE(Eventually([&] { return CountFds(node.pid()) <= baseline; }))
      << CountFds(node.pid()) << " fds, baseline " << baseline;
  auto again = clients::LocalClient::Connect(sock);
  EXPECT_TRUE(again.ok()) << again.status();
  std::cout << "shm: baseline " << baseline << " fds / " << base_threads << " threads, peak "
            << peak << " fds / " << threads << " threads with " << kLimit << " admitted + "
            << kExtra << " refused" << std::endl;
}

// gRPC 1.51's server has no connection limit to test; this measures what many channels cost the
// node and checks that they are served and released.
TEST(ResourceProcessTest, ManyGrpcChannelsAreServedAndReleased) {
  TempDir dir;
  NodeProcess node;
  auto addr =
      node.Start({"--data-dir", dir.File("data"), "--dram-bytes", "64MiB", "--ssd-bytes", "0"});
  ASSERT_TRUE(addr.ok()) << addr.status();
  const int fresh = CountFds(node.pid());
  ExpectServes(*addr, 1);
  // The node's first RPC may allocate for good (gRPC's thread pool, timers): the baseline is what
  // is left once that call's connection is gone.
  Eventually([&] { return CountFds(node.pid()) <= fresh; }, absl::Seconds(5));
  const int baseline = CountFds(node.pid());
  const int base_threads = static_cast<int>(StatusField(node.pid(), "Threads"));
  constexpr int kChannels = 256;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < kChannels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own each
    channels.push_back(grpc::CreateCustomChannel(*addr, grpc::InsecureChannelCredentials(), args));
  }
  // Every channel calls Stats concurrently, from a few threads.
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < kChannels; i += 8) {
        auto stub = strata::v1::CacheNode::NewStub(channels[i]);
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
        strata::v1::StatsResponse response;
        if (stub->Stats(&ctx, strata::v1::StatsRequest(), &response).ok()) ++ok;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), kChannels);
  const int fds = CountFds(node.pid());
  const int node_threads = static_cast<int>(StatusField(node.pid(), "Threads"));
  // One connection each: the channels really are separate.
  EXPECT_GE(fds, baseline + kChannels / 2);
  EXPECT_LE(fds, baseline + kChannels + kFdMargin);
  ExpectServes(*addr, 2);
  channels.clear();
  EXPECT_TRUE(Eventually([&] { return CountFds(node.pid()) <= baseline + 2; }))
      << CountFds(node.pid()) << " fds, baseline " << baseline;
  std::cout << "gRPC: baseline " << baseline << " fds / " << base_threads << " threads; with "
            << kChannels << " channels " << fds << " fds / " << node_threads << " threads"
            << std::endl;
}

// Puts eight times a node's DRAM through it (two phases, each 2x over gRPC and 2x over RESP),
// checking the DRAM tier's used bytes after every batch; then checks the node's resident memory.
void FillPastCapacity(bool with_ssd) {
  TempDir dir;
  NodeProcess node;
  constexpr uint64_t kDram = 32ull << 20, kBlock = 256 << 10;
  int port = 0;
  auto addr = StartOnFreePort(
      node,
      [&](int p) -> std::vector<std::string> {
        return {"--data-dir",
                dir.File("data"),
                "--dram-bytes",
                absl::StrCat(kDram),
                "--ssd-bytes",
                with_ssd ? "512MiB" : "0",
                "--ssd-direct-io=false",
                "--resp-listen",
                absl::StrCat("127.0.0.1:", p)};
      },
      &port);
  ASSERT_TRUE(addr.ok()) << addr.status();
  const uint64_t rss_start = StatusField(node.pid(), "VmRSS");
  auto client = GrpcClient(*addr);
  ASSERT_NE(client, nullptr);
  const common::NamespaceId ns = common::NamespaceIdOf("default");
  uint64_t max_used = 0, checks = 0;
  const auto check_dram = [&] {
    auto stats = client->Stats();
    ASSERT_TRUE(stats.ok()) << stats.status();
    for (const auto& t : stats->tiers()) {
      if (t.tier() != strata::v1::TIER_DRAM) continue;
      EXPECT_EQ(t.capacity_bytes(), kDram);
      EXPECT_LE(t.used_bytes(), t.capacity_bytes());
      max_used = std::max<uint64_t>(max_used, t.used_bytes());
      ++checks;
    }
  };
  constexpr int kBatch = 8;
  // Each phase puts 2x DRAM over gRPC and 2x over RESP.
  const int blocks = static_cast<int>(2 * kDram / kBlock);
  cachenode::RespTestClient resp(port);
  ASSERT_TRUE(resp.connected());
  std::vector<std::string> payloads(kBatch);
  uint64_t rss_mid = 0;
  for (int phase = 0; phase < 2; ++phase) {
    const int base = phase * blocks;
    for (int first = 0; first < blocks; first += kBatch) {
      std::vector<clients::PutBlock> batch(kBatch);
      for (int i = 0; i < kBatch; ++i) {
        const uint64_t id = 1000 + base + first + i;
        payloads[i] = Payload(id, kBlock);
        batch[i].hash = HashOf(id);
        batch[i].payload = std::as_bytes(std::span<const char>(payloads[i]));
        batch[i].chain_position = static_cast<uint32_t>(i);
      }
      auto put = client->Put(ns, batch);
      ASSERT_TRUE(put.ok()) << put.status();
      check_dram();
    }
    for (int i = 0; i < blocks; ++i) {
      resp.Send(SetCommand(absl::StrCat("key-", base + i), Payload(50000 + base + i, kBlock)));
      ASSERT_EQ(resp.ReadExact(5), "+OK\r\n") << "SET " << base + i;
      if (i % kBatch == 0) check_dram();
    }
    check_dram();
    if (phase == 0) rss_mid = StatusField(node.pid(), "VmRSS");
  }
  // The most recent blocks are still served, byte for byte.
  const int last = 2 * blocks - 1;
  resp.Send(GetCommand(absl::StrCat("key-", last)));
  const std::string value = Payload(50000 + last, kBlock);
  const std::string header = absl::StrCat("$", value.size(), "\r\n");
  EXPECT_EQ(resp.ReadExact(header.size() + value.size() + 2), absl::StrCat(header, value, "\r\n"));
  EXPECT_GT(checks, 2 * static_cast<uint64_t>(blocks) / kBatch);
  EXPECT_GT(max_used, kDram / 2) << "the tier never filled: the test proves nothing";
  // Resident memory is bounded: the arena plus a fixed overhead. Without an SSD tier, once DRAM
  // is full a second phase as large as the first costs (almost) nothing more. With one, the
  // overhead is the SSD tier's own bounds: 2 x 32 MiB memtables, the 32 MiB write-behind batch and
  // an 8 MiB block cache (ssd_tier.h); how full the memtables are at any moment depends on when
  // RocksDB flushed, so the phase comparison would be noise there (measured: -11 to +12 MiB).
  const uint64_t rss = StatusField(node.pid(), "VmRSS");
  if (!with_ssd) {
    EXPECT_LE(rss, rss_mid + (16ull << 20))
        << "after phase 1 " << (rss_mid >> 20) << " MiB, after phase 2 " << (rss >> 20) << " MiB";
  }
  const uint64_t overhead = with_ssd ? (160ull << 20) : (64ull << 20);
  EXPECT_LE(rss, rss_start + kDram + overhead)
      << "start " << (rss_start >> 20) << " MiB, now " << (rss >> 20) << " MiB";
  std::cout << (with_ssd ? "dram+ssd" : "dram only") << ": " << 4 * blocks << " x "
            << (kBlock >> 10) << " KiB through a " << (kDram >> 20) << " MiB DRAM tier; DRAM used "
            << "max " << (max_used >> 10) << " KiB over " << checks << " checks; RSS start "
            << (rss_start >> 20) << ", after half " << (rss_mid >> 20) << ", end " << (rss >> 20)
            << " MiB" << std::endl;
  auto code = node.Terminate(absl::Seconds(60));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << node.stderr_text();
}

TEST(ResourceProcessTest, DramNeverExceedsCapacityWithoutSsd) { FillPastCapacity(false); }
TEST(ResourceProcessTest, DramNeverExceedsCapacityWithSsd) { FillPastCapacity(true); }

}  // namespace
}  // namespace strata::tests
