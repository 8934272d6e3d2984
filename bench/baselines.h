// Physical limits that `strata-bench tiers` judges each tier against, measured in the same run on
// the same machine (these boxes are noisy; only ratios within one run mean anything):
//
//   memcpy              one thread copying blocks between buffers larger than the CPU caches
//   one TCP stream      a real socket pair over 127.0.0.1: one writer thread, one reader thread
//   direct writes       O_DIRECT sequential writes of whole blocks, fdatasync at the end
//   direct reads        O_DIRECT random block reads of a pre-written file, at a given queue depth
//
// The disk limits run on a file in the directory under test, so they see the same filesystem and
// device as the SSD tier. Each returns an error only when the measurement itself could not run
// (e.g. the filesystem refuses O_DIRECT). Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/process_stats.h"
#include "bench/throughput.h"

namespace strata::bench {

// Copies `block_bytes` at a time from one `working_set_bytes` buffer to another, for `duration`.
absl::StatusOr<Throughput> MeasureMemcpy(uint64_t block_bytes, uint64_t working_set_bytes,
                                         absl::Duration duration);

// Streams `write_bytes`-sized send() calls from a writer thread to a reader over one loopback TCP
// connection (default socket options, as gRPC's channel gets), for `duration`. Unavailable when the
// sockets cannot be set up.
absl::StatusOr<Throughput> MeasureLoopbackTcp(uint64_t write_bytes, absl::Duration duration);

struct DiskResult {
  Throughput throughput;
  // Block-layer bytes per payload byte from /proc/self/io; absent when it cannot be read. For raw
  // direct I/O this is about 1.0, which checks the accounting the SSD tier's figure relies on.
  std::optional<double> amplification;
};

// Writes `blocks` blocks of `block_bytes` (rounded up to 4 KiB) sequentially to `path` with
// O_DIRECT, then fdatasync; the file is kept for MeasureDirectRandomReads. FailedPrecondition when
// the filesystem refuses O_DIRECT.
absl::StatusOr<DiskResult> MeasureDirectSequentialWrite(const std::string& path,
                                                        uint64_t block_bytes, uint64_t blocks);

// Reads random whole blocks of a file written by MeasureDirectSequentialWrite with O_DIRECT,
// keeping `queue_depth` reads in flight (one thread per outstanding read), for `duration`.
absl::StatusOr<DiskResult> MeasureDirectRandomReads(const std::string& path, uint64_t block_bytes,
                                                    uint64_t blocks, int queue_depth,
                                                    absl::Duration duration, uint64_t seed);

}  // namespace strata::bench
