// `strata-bench tiers`: put/get throughput of each tier and data plane next to the physical limit
// it is bounded by, all measured in one run (DESIGN section 7):
//
//   dram  put/get      MemoryTier over the memfd arena           vs memcpy
//   ssd   put          SsdTier::PutBatch (write-behind batches) + Flush
//                                                                vs O_DIRECT sequential writes
//   ssd   read/batch   SsdTier::Read / ReadBatch of random keys  vs O_DIRECT random reads, same
//                                                                   block size and queue depth
//   grpc  get/put      in-process node + CacheNodeClient, one call per chain
//                                                                vs one loopback TCP stream
//   node  rss          a node with a 1 GiB DRAM tier filled over gRPC: resident memory
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

namespace strata::bench {

struct TiersOptions {
  // Block size of every case. 2 MiB is one 16-token vLLM page of a Llama-3-8B-shaped model (128 KiB
  // of KV per token, DESIGN section 9); the targets in bench/RESULTS.md are stated for it.
  uint64_t block_bytes = 2ull << 20;
  // Blocks in the DRAM/SSD working sets. 256 x 2 MiB = 512 MiB: far beyond CPU caches, and large
  // enough that an SSD pass takes about a second on the development disks (680 MB/s writes).
  uint64_t blocks = 256;
  // Parent of the temporary directory for the disk cases; must be on the disk under test.
  std::string dir = "/tmp";
  // Length of each time-bounded case. 2 s keeps a full run well under 2 minutes on 2 cores.
  absl::Duration seconds_per_case = absl::Seconds(2);
  // Blocks per gRPC chain call: 32 x 2 MiB = 64 MiB, the node's Get window (get_window_bytes).
  uint32_t chain_blocks = 32;
  // DRAM tier of the resident-memory check.
  uint64_t rss_dram_bytes = 1ull << 30;

  // InvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

using ProgressFn = std::function<void(const std::string& line)>;

// Runs every case; returns the rows in a fixed order (limits first, then each tier). An error means
// the run could not continue (setup failed, an operation failed); a missed target is not an error.
absl::StatusOr<std::vector<Row>> RunTiers(const TiersOptions& options, const ProgressFn& progress);

}  // namespace strata::bench
