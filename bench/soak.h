// `strata-bench soak`: hundreds of concurrent clients on every data plane of a real local cluster
// for a bounded time, every returned byte verified, and the server processes' resident memory,
// descriptors and threads sampled every second, so leaks and unbounded growth show up as a failed
// run instead of an outage weeks later.
//
// The cluster is started here (a strata-router and --nodes strata-cachenode processes on loopback,
// through tests::NodeProcess like bench/live_cluster.h) or attached to (--node/--resp/--local-socket
// /--router addresses; --pids names the processes to sample). Planes and their operations:
//
//   grpc    CacheNodeClient Put / Get / Lookup of chains of --chain-blocks blocks
//   resp    SET / GET / MGET over raw sockets (RESP2)
//   shm     LocalClient Put (reserve, copy, commit) and Get (lease, CopyTo, release)
//   router  RouterClient Route of a chain, then ReportOutcome of the decision
//
// Every key maps to fixed contents (its id, then bytes of a seeded pool at an offset derived from
// the id), so any block read back is compared in full with what was written. Declared errors are
// NOT_FOUND (a miss: eviction, or not yet written) and RESOURCE_EXHAUSTED (a bound was hit); any
// other error code, any wrong byte, or memory growth after warm-up past the allowance fails the run.
//
// The pure parts (options, argument parsing, percentiles, the memory verdict) are exposed here so
// bench_test covers them. RunSoak itself is not thread-safe (one run per process).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace strata::bench {

enum class SoakPlane { kGrpc, kResp, kShm, kRouter };
inline constexpr std::array<SoakPlane, 4> kAllSoakPlanes = {SoakPlane::kGrpc, SoakPlane::kResp,
                                                            SoakPlane::kShm, SoakPlane::kRouter};
const char* SoakPlaneName(SoakPlane plane);

struct SoakOptions {
  // How long the clients run (after the prefill). CI uses 15-20 s; a real soak 10 minutes or more.
  absl::Duration duration = absl::Seconds(60);
  // Concurrent clients in all, one thread each, spread evenly over `planes` (at least one each).
  uint32_t clients = 256;
  std::vector<SoakPlane> planes = {kAllSoakPlanes.begin(), kAllSoakPlanes.end()};
  // Pause between a client's operations; 0 keeps every client busy all the time.
  absl::Duration think_time = absl::ZeroDuration();
  // Payload bytes per block (and per RESP value). Small enough that thousands of ops/s fit a
  // 2-core box; large enough that payload copies dominate framing.
  uint64_t block_bytes = 32ull << 10;
  // Blocks per gRPC/shm chain.
  uint32_t chain_blocks = 4;
  // Distinct chains per chain plane and distinct RESP keys. The defaults make each node's share
  // of all planes about 1.1x its DRAM: eviction runs, most reads still hit (so bytes get
  // compared), and the prefill alone touches the whole arena.
  uint32_t keys = 512;
  uint64_t seed = 1;

  // Started cluster (when no address is given): nodes, their DRAM tier and optional SSD tier.
  uint32_t nodes = 2;
  uint64_t dram_bytes = 64ull << 20;
  uint64_t ssd_bytes = 0;  // 0: no SSD tier (its caches would blur the memory verdict)
  std::string bin_dir;     // where strata-router and strata-cachenode are; empty: beside this binary

  // Attached cluster: any of these given means nothing is started; planes without an address are
  // left out. `pids` are the processes sampled (none: no memory verdict).
  std::vector<std::string> node_targets;   // gRPC HOST:PORT of each node
  std::vector<std::string> resp_targets;   // RESP HOST:PORT
  std::vector<std::string> local_sockets;  // shm socket paths
  std::string router_target;
  std::vector<int> pids;
  std::string namespace_name = "soak";

  // Memory verdict: RSS growth from the end of warm-up (this fraction of the run) to the end must
  // stay under max(max_growth_fraction x RSS at warm-up end, max_growth_bytes).
  double warmup_fraction = 0.25;
  double max_growth_fraction = 0.05;
  uint64_t max_growth_bytes = 32ull << 20;
  absl::Duration sample_interval = absl::Seconds(1);
  absl::Duration progress_interval = absl::Seconds(5);

  bool attach() const {
    return !node_targets.empty() || !resp_targets.empty() || !local_sockets.empty() ||
           !router_target.empty();
  }
  // The planes that run: `planes`, less those an attached cluster has no address for.
  std::vector<SoakPlane> ActivePlanes() const;
  // InvalidArgument naming the bad field.
  absl::Status Validate() const;
};

enum class SoakOutput { kText, kJson };
struct SoakCommand {
  SoakOptions options;
  SoakOutput output = SoakOutput::kText;
  bool help = false;
};

// `args` are the words after "soak". InvalidArgument naming the problem; options are validated.
absl::StatusOr<SoakCommand> ParseSoakArgs(const std::vector<std::string>& args);
std::string SoakUsage();

// NOT_FOUND and RESOURCE_EXHAUSTED: the error codes a soak allows (see the header comment).
bool IsDeclaredSoakError(absl::StatusCode code);

// Latencies in nanoseconds in log-linear buckets (32 per power of two: under 3.2% error), so a
// 10-minute run keeps a fixed few KiB per client and operation. Thread-compatible.
class LatencyHistogram {
 public:
  void Record(uint64_t ns);
  void Merge(const LatencyHistogram& other);
  uint64_t count() const { return count_; }
  // Nearest-rank percentile (p in (0, 1]): the middle of the bucket holding that rank, clamped to
  // the smallest and largest value recorded. 0 when empty.
  uint64_t Percentile(double p) const;

 private:
  static size_t BucketOf(uint64_t ns);
  static uint64_t BucketMiddle(size_t bucket);
  std::vector<uint64_t> buckets_;
  uint64_t count_ = 0;
  uint64_t min_ = 0;
  uint64_t max_ = 0;
};

// One sample of a server process.
struct ProcessSample {
  double t_s = 0;  // since the run's start
  uint64_t rss_bytes = 0;
  uint32_t fds = 0;
  uint32_t threads = 0;
};

struct MemoryVerdict {
  uint64_t warmup_rss = 0;  // the last sample at or before the warm-up's end (else the first)
  uint64_t peak_rss = 0;
  uint64_t end_rss = 0;     // the last sample
  int64_t growth = 0;       // end_rss - warmup_rss
  uint64_t allowed_growth = 0;
  uint32_t peak_fds = 0;
  uint32_t peak_threads = 0;
  bool flat = false;
  std::string why;  // for a verdict that is not flat
};

// Judges one process's samples of a run of `run_s` seconds (see SoakOptions). Not flat when there
// are no samples.
MemoryVerdict JudgeMemory(const std::vector<ProcessSample>& samples, double run_s,
                          const SoakOptions& options);

// "Threads:" of a /proc/PID/status text; 0 when absent.
uint32_t ParseThreadCount(std::string_view status_text);

// Figures of one operation of one plane.
struct SoakOpFigures {
  SoakPlane plane = SoakPlane::kGrpc;
  std::string op;
  uint64_t count = 0;  // attempts
  uint64_t bytes = 0;  // payload bytes moved by successful calls
  std::map<std::string, uint64_t> errors;  // by status code name
  uint64_t wrong_bytes = 0;                // blocks whose bytes differed from what was written
  double ops_per_s = 0;
  double p50_us = 0, p99_us = 0, p999_us = 0;
};

struct SoakProcessFigures {
  std::string name;  // "router", "node-0", or "pid N"
  int pid = 0;
  MemoryVerdict memory;
};

struct SoakResult {
  uint32_t clients = 0;
  double duration_s = 0;  // measured, from the first client op to the stop
  std::vector<SoakOpFigures> ops;
  std::vector<SoakProcessFigures> processes;
  uint64_t undeclared_errors = 0;
  uint64_t wrong_bytes = 0;
  std::vector<std::string> failures;  // why the run failed, one line each; empty: passed
  bool ok() const { return failures.empty(); }
};

using SoakProgressFn = std::function<void(const std::string& line)>;

// Starts or attaches to the cluster, prefills every key once, runs the clients for the duration
// and judges the result. An error only when the run could not happen (processes did not start,
// an address does not answer); a run that happened but failed is a result with failures.
absl::StatusOr<SoakResult> RunSoak(const SoakOptions& options, const SoakProgressFn& progress);

std::string FormatSoakText(const SoakResult& result);
// JSON Lines: one {"kind":"op",...} per operation, one {"kind":"process",...} per process, then
// one {"kind":"summary",...}.
std::string FormatSoakJson(const SoakResult& result);

}  // namespace strata::bench
