// Disk-full test of a real strata-cachenode: its --data-dir is a small tmpfs mounted in a private
// mount namespace (unshare -rm), filled up with a ballast file from outside through
// /proc/<node pid>/root. The node must stay up, keep serving reads, report the full disk as
// RESOURCE_EXHAUSTED to the client and in its metrics, and take puts again once the ballast is
// deleted, without a restart.
//
// The node runs with --dram-bytes 0, so every put goes straight to the SSD tier: with a DRAM tier
// a put lands in DRAM and succeeds, and the full disk shows only as write-behind that stays
// pending (strata_write_behind_pending_blocks) until DRAM fills and evictions drop the blocks
// that never reached SSD.
#include <signal.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clients/cache_node_client.h"
#include "common/namespace_id.h"
#include "gtest/gtest.h"
#include "tests/node_process.h"

namespace strata::tests {
namespace {

using clients::CacheNodeClient;
using clients::GetResult;
using clients::PutBlock;

constexpr size_t kKiB = 1 << 10;
constexpr size_t kMiB = 1 << 20;
constexpr char kUnshare[] = "/usr/bin/unshare";
const common::NamespaceId kDefaultNs = common::NamespaceIdOf("default");

common::ChainHash HashOf(uint64_t n) {
  common::ChainHash h;
  std::mt19937_64 rng(n * 7919 + 1);
  for (uint8_t& b : h.bytes) b = static_cast<uint8_t>(rng());
  return h;
}

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (size_t i = 0; i + 8 <= n; i += 8) {
    const uint64_t v = rng();
    std::memcpy(out.data() + i, &v, 8);
  }
  return out;
}

absl::Status PutOne(CacheNodeClient& client, const common::ChainHash& hash,
                    const std::string& payload) {
  const PutBlock block{hash, std::as_bytes(std::span(payload.data(), payload.size())), 0, false};
  absl::StatusOr<std::vector<clients::PutResult>> r = client.Put(kDefaultNs, {&block, 1});
  if (!r.ok()) return r.status();
  return r->front().status;
}

bool ReadsBack(CacheNodeClient& client, const common::ChainHash& hash, const std::string& want) {
  absl::StatusOr<std::vector<GetResult>> got = client.Get(kDefaultNs, {&hash, 1}, false);
  return got.ok() && got->size() == 1 && got->front().found && got->front().payload == want;
}

// Writes a ballast file of about `bytes` (less when the disk fills first).
uint64_t WriteBallast(const std::string& path, uint64_t bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  const std::string chunk(kMiB, 'b');
  uint64_t written = 0;
  while (written < bytes) {
    const size_t n = std::fwrite(chunk.data(), 1, std::min<uint64_t>(kMiB, bytes - written), f);
    written += n;
    if (n == 0) break;
  }
  std::fclose(f);
  return written;
}

uint64_t AvailableBytes(const std::string& path) {
  struct statvfs s {};
  if (statvfs(path.c_str(), &s) != 0) return 0;
  return static_cast<uint64_t>(s.f_bavail) * s.f_frsize;
}

TEST(DiskFullProcessTest, FullDiskIsResourceExhaustedReadsGoOnAndPutsResumeOnceSpaceReturns) {
  if (access(kUnshare, X_OK) != 0) GTEST_SKIP() << kUnshare << " is missing";
  TempDir dir;
  const std::string mount = dir.File("disk");
  std::filesystem::create_directories(mount);
  absl::StatusOr<ProcessResult> probe = RunProcess(
      {kUnshare, "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs \"$0\"", mount});
  ASSERT_TRUE(probe.ok()) << probe.status();
  if (probe->exit_code != 0) {
    GTEST_SKIP() << "user or mount namespaces refused here (unshare -rm + mount tmpfs): "
                 << probe->stderr_text;
  }

  // 96 MiB: room for the memtables RocksDB holds (two of 32 MiB) when it resumes.
  NodeProcess node(kUnshare);
  absl::StatusOr<std::string> address = node.Start(
      {"-rm", "sh", "-c", "mount -t tmpfs -o size=96m tmpfs \"$0\" && exec \"$@\"", mount,
       CacheNodeBinary(), "--dram-bytes", "0", "--ssd-bytes", "1GiB", "--data-dir",
       mount + "/data", "--metrics-listen", "127.0.0.1:0"});
  ASSERT_TRUE(address.ok()) << address.status() << "\n" << node.stderr_text();
  const std::string log = node.stderr_text();
  const std::string marker = "metrics on http://127.0.0.1:";
  ASSERT_NE(log.find(marker), std::string::npos) << log;
  const int metrics_port = std::stoi(log.substr(log.find(marker) + marker.size()));
  clients::ClientOptions options;
  options.target = *address;
  options.deadline = absl::Seconds(60);
  absl::StatusOr<std::unique_ptr<CacheNodeClient>> client = CacheNodeClient::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status();

  // Blocks written while there is room.
  std::vector<std::string> earlier;
  for (uint64_t i = 0; i < 8; ++i) {
    earlier.push_back(RandomBytes(kMiB, i));
    ASSERT_TRUE(PutOne(**client, HashOf(i), earlier.back()).ok());
  }

  // Fill the node's disk from outside, leaving 8 MiB.
  const std::string disk = absl::StrCat("/proc/", node.pid(), "/root", mount);
  const uint64_t available = AvailableBytes(disk);
  ASSERT_GT(available, 16 * kMiB) << disk;
  const std::string ballast = disk + "/ballast";
  const uint64_t ballast_bytes = WriteBallast(ballast, available - 8 * kMiB);
  ASSERT_GT(ballast_bytes, 0u);

  // Puts until the SSD tier fails; every failure must be RESOURCE_EXHAUSTED.
  absl::Status refused = absl::OkStatus();
  uint64_t accepted = 0;
  uint64_t next = 100;
  for (; next < 300 && refused.ok(); ++next) {
    const absl::Status s = PutOne(**client, HashOf(next), RandomBytes(kMiB, next));
    if (s.ok()) {
      ++accepted;
    } else {
      refused = s;
    }
  }
  ASSERT_FALSE(refused.ok()) << "200 puts of 1 MiB never hit the full disk";
  EXPECT_TRUE(absl::IsResourceExhausted(refused)) << refused;
  std::printf("disk full: %llu puts accepted after the ballast, then: %s\n",
              static_cast<unsigned long long>(accepted), refused.ToString().c_str());

  // Still up, still serving reads.
  ASSERT_EQ(kill(node.pid(), 0), 0) << "node died";
  for (uint64_t i = 0; i < earlier.size(); ++i) {
    EXPECT_TRUE(ReadsBack(**client, HashOf(i), earlier[i])) << "earlier block " << i;
  }
  absl::StatusOr<std::string> metrics = HttpGet(metrics_port, "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_NE(metrics->find("strata_rpc_duration_seconds_count{code=\"8\",method=\"Put\"}"),
            std::string::npos)
      << "RESOURCE_EXHAUSTED puts are not in the metrics";
  EXPECT_NE(metrics->find("\nstrata_ssd_writes_stopped 1"), std::string::npos) << *metrics;
  EXPECT_EQ(metrics->find("\nstrata_ssd_write_errors_total 0"), std::string::npos) << *metrics;

  // Space returns: puts succeed again (the node resumes RocksDB at most once a second, from the
  // next failing write), with no restart. Bounded by the deadline, not timed.
  ASSERT_EQ(unlink(ballast.c_str()), 0) << std::strerror(errno);
  const std::string probe_payload = RandomBytes(64 * kKiB, 5);
  absl::Status again = absl::UnknownError("not tried");
  int tries = 0;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(60);
       !again.ok() && absl::Now() < deadline; ++tries) {
    again = PutOne(**client, HashOf(5000), probe_payload);
    if (!again.ok()) {
      EXPECT_TRUE(absl::IsResourceExhausted(again)) << again;
    }
  }
  ASSERT_TRUE(again.ok()) << again;
  std::printf("disk full: puts succeed again after %d tries once the ballast is gone\n", tries);
  EXPECT_TRUE(ReadsBack(**client, HashOf(5000), probe_payload));
  const std::string later = RandomBytes(kMiB, 6000);
  ASSERT_TRUE(PutOne(**client, HashOf(6000), later).ok());
  for (uint64_t i = 0; i < earlier.size(); ++i) {
    EXPECT_TRUE(ReadsBack(**client, HashOf(i), earlier[i])) << "earlier block " << i;
  }
  metrics = HttpGet(metrics_port, "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_NE(metrics->find("\nstrata_ssd_writes_stopped 0"), std::string::npos) << *metrics;
  absl::StatusOr<int> code = node.Terminate();
  ASSERT_TRUE(code.ok()) << code.status() << "\n" << node.stderr_text();
  EXPECT_EQ(*code, 0) << node.stderr_text();
}

}  // namespace
}  // namespace strata::tests
