// `strata-bench tiers`: put/get throughput of every data plane and tier next to the limit it is
// bounded by, all measured in one run (DESIGN section 7), once per block size:
//
//   memory  dram put/get, store(dram) put/get_chain         vs memcpy
//   shm     get/put through the node's Unix socket + mapped arena (LocalClient)
//                                                           vs memcpy
//   grpc    get_chain/put_chain, in-process node + CacheNodeClient
//                                                           vs one loopback TCP stream
//   resp    GET/SET by redis-benchmark against the node's RESP port
//                                                           vs the same against redis-server
//   ssd     put (PutBatch + Flush)                          vs O_DIRECT sequential writes
//           get (Read, 1 thread) / get_batch (ReadBatch)    vs O_DIRECT random reads, same
//                                                              block size and concurrency
//           and both next to db_bench with RocksDB's defaults (when installed)
//   rss     a strata-cachenode process with a full 1 GiB DRAM tier: resident memory
//
// Disk cases run in a fresh directory under `dir` (same filesystem as the limits they are judged
// against), removed at the end. Progress goes to the `progress` callback (stderr in the binary).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/report.h"
#include "cachenode/ssd_tier.h"

namespace strata::bench {

enum class TiersPath { kMemory, kShm, kHandover, kGrpc, kResp, kSsd, kRss };
inline constexpr TiersPath kAllTiersPaths[] = {TiersPath::kMemory, TiersPath::kShm,
                                               TiersPath::kHandover, TiersPath::kGrpc,
                                               TiersPath::kResp,   TiersPath::kSsd,
                                               TiersPath::kRss};
// "memory", "shm", "grpc", "resp", "ssd", "rss".
std::string TiersPathName(TiersPath path);
// Parses a comma-separated list of path names; InvalidArgument naming an unknown one.
absl::StatusOr<std::vector<TiersPath>> ParseTiersPaths(const std::string& list);

struct TiersOptions {
  // Block sizes, each a full pass over every path. 256 KiB is an LMCache chunk of a small model,
  // 2 MiB one 16-token vLLM page of a Llama-3-8B-shaped model (128 KiB of KV per token, DESIGN
  // section 9), 32 MiB a 256-token LMCache chunk of it.
  std::vector<uint64_t> block_sizes = {256ull << 10, 2ull << 20, 32ull << 20};
  // Bytes in the DRAM/SSD working sets (blocks = this / block size, at least 8). 512 MiB is far
  // beyond CPU caches and takes about a second per SSD pass on the development disks.
  uint64_t working_set_bytes = 512ull << 20;
  // Parent of the temporary directory for the disk cases; must be on the disk under test.
  std::string dir = "/tmp";
  // Length of each time-bounded case. 2 s keeps a full run to a few minutes on 2 cores.
  absl::Duration seconds_per_case = absl::Seconds(2);
  // Bytes per gRPC / shared-memory chain call (blocks per call = this / block size, at least 1):
  // 64 MiB is the node's Get window (get_window_bytes).
  uint64_t chain_bytes = 64ull << 20;
  // DRAM tier of the resident-memory check.
  uint64_t rss_dram_bytes = 1ull << 30;
  // Which paths to measure (all by default); the limits they need are measured with them.
  std::vector<TiersPath> paths{std::begin(kAllTiersPaths), std::end(kAllTiersPaths)};
  // redis-benchmark clients (-c), the same against the node and against redis-server.
  int resp_clients = 4;
  // SSD tier settings under test (defaults are the node's; path and capacity are the bench's).
  cachenode::SsdTierOptions ssd;

  bool Has(TiersPath path) const;
  // Blocks in the working set for one block size.
  uint64_t BlocksFor(uint64_t block_bytes) const;
  // InvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

using ProgressFn = std::function<void(const std::string& line)>;

// Runs every case; returns the rows in a fixed order (limits first, then each tier). An error means
// the run could not continue (setup failed, an operation failed); a missed target is not an error.
absl::StatusOr<std::vector<Row>> RunTiers(const TiersOptions& options, const ProgressFn& progress);

}  // namespace strata::bench
