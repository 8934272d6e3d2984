// What the kernel says about this process: storage I/O bytes (/proc/self/io) and resident memory
// (/proc/self/status).
//
// /proc/self/io `read_bytes`/`write_bytes` count bytes this process (all its threads, RocksDB's
// background threads included) caused to be fetched from or sent to the block layer. Unlike
// `rchar`/`wchar` they exclude page-cache hits, and they do count direct I/O, so their deltas give
// read and write amplification of the SSD tier. Parsing is split from reading so it is testable.
// Thread-safe (no state).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace strata::bench {

struct IoCounters {
  uint64_t read_bytes = 0;
  uint64_t write_bytes = 0;
};

struct MemoryCounters {
  uint64_t rss_bytes = 0;       // VmRSS: resident now (shared memfd pages included)
  uint64_t peak_rss_bytes = 0;  // VmHWM: the high-water mark of VmRSS
  // The parts of VmRSS (0 when the kernel does not report them): private memory (heaps, stacks),
  // and shared memory (the memfd DRAM arena).
  uint64_t rss_anon_bytes = 0;
  uint64_t rss_shmem_bytes = 0;
};

// Parses the text of /proc/<pid>/io. InvalidArgument when a field is missing or malformed.
absl::StatusOr<IoCounters> ParseProcIo(std::string_view text);

// Parses the text of /proc/<pid>/status ("VmRSS:  1234 kB"). InvalidArgument when VmRSS is missing.
absl::StatusOr<MemoryCounters> ParseProcStatus(std::string_view text);

// Reads and parses /proc/self/io. Unavailable when the file cannot be read (no procfs, or a kernel
// without task I/O accounting).
absl::StatusOr<IoCounters> ReadIoCounters();

// Reads and parses /proc/self/status, or /proc/<pid>/status for another process.
absl::StatusOr<MemoryCounters> ReadMemoryCounters(int pid = 0);

// (after - before) / payload_bytes; 0 when payload_bytes is 0.
double Amplification(uint64_t before, uint64_t after, uint64_t payload_bytes);

// Amplification of the reads (or writes) between two snapshots, or nullopt when it cannot be told:
// a snapshot is missing, or no block-layer bytes moved at all although payload did (tmpfs, or a
// kernel without I/O accounting), where 0 would read as a perfect score.
std::optional<double> MeasuredAmplification(const absl::StatusOr<IoCounters>& before,
                                            const absl::StatusOr<IoCounters>& after, bool reads,
                                            uint64_t payload_bytes);

}  // namespace strata::bench
