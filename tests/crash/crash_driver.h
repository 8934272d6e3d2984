// The crash test's driver: runs a real strata-cachenode, puts, reads, deletes and syncs blocks
// from several client threads, SIGKILLs the node at random moments (mostly under load, sometimes
// while it starts and recovers), restarts it and checks what comes back.
//
// What it checks, from Strata's promise ("it may lose cached data, it never returns wrong data,
// and it keeps serving") and Sync's contract (cachenode.proto, SyncRequest):
// - every byte any read returns equals what was put under that key (keys map to one content);
// - every block whose Put was acknowledged before an acknowledged Sync (and not deleted since) is
//   served byte-exact after the restart ("durable"), and while the node is up;
// - the node restarts after every kill.
// Blocks acknowledged without a Sync may be lost (counted, informational); deleted blocks may come
// back with their exact bytes or not at all.
//
// RunCrashTest is not thread-safe (one run per process); it runs its own client threads.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace strata::tests {

struct CrashOptions {
  int cycles = 20;          // kill-restart-verify cycles
  uint64_t seed = 1;        // keys, sizes, contents and every random choice of the driver
  std::string dir;          // node data directories go under it; empty: a temporary directory
  int threads = 4;          // client threads during the load phase
  uint64_t max_block_bytes = 256 << 10;  // block sizes are 1 B..this
  std::string node_binary;  // strata-cachenode to run
  std::string report;       // JSON summary file; empty: none
  // Bytes of live (acknowledged, not deleted) blocks above which threads delete instead of put:
  // bounds the working set, so the node's SSD capacity (ssd_bytes) is never reached and nothing
  // durable is evicted.
  uint64_t max_live_bytes = 64ull << 20;
  // DRAM tier of the node: small next to max_live_bytes, so DRAM evicts and demotes to SSD.
  uint64_t dram_bytes = 16ull << 20;
  // SSD tier capacity: far above max_live_bytes (plus deleted blocks a crash may bring back).
  uint64_t ssd_bytes = 8ull << 30;
  absl::Duration max_load = absl::Milliseconds(1500);  // the kill comes 0..this into the load
  int startup_kill_percent = 25;  // cycles that also kill the restarting node during start-up
  int sample = 200;               // non-durable blocks read back after each restart
  int fresh_dir_every = 20;       // start over on an empty data directory every N cycles; 0: never
  // Operation mix of a client thread, in percent (the rest are Gets): puts of new blocks, puts
  // again of known blocks (same bytes, as a retry or a second engine would), deletes, syncs.
  int put_percent = 50;
  int reput_percent = 5;
  int delete_percent = 7;
  int sync_percent = 4;

  // InvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

struct CrashReport {
  int cycles = 0;
  uint64_t kills = 0;          // SIGKILLs, those during start-up included
  uint64_t startup_kills = 0;  // SIGKILLs of a node that was starting (recovering)
  uint64_t puts_acked = 0;     // blocks whose Put returned OK (re-puts included)
  uint64_t reputs_acked = 0;
  uint64_t deletes = 0;        // blocks a Delete was sent for
  uint64_t gets = 0;           // blocks read while the node was up
  uint64_t syncs_acked = 0;
  uint64_t syncs_failed = 0;   // Sync calls that returned an error (the kill, mostly)
  uint64_t durable_checked = 0;  // durable blocks read back after restarts (summed over cycles)
  uint64_t sample_checked = 0;   // non-durable blocks read back after restarts
  uint64_t bytes_verified = 0;   // payload bytes compared with what was put, all reads
  uint64_t wrong_bytes = 0;      // bytes that differed (plus size differences); must be 0
  uint64_t corrupt_transfers = 0;  // reads the client refused as DataLoss; must be 0
  uint64_t durable_lost = 0;     // durable blocks missing (after a restart or while up); must be 0
  uint64_t nondurable_lost = 0;  // acknowledged, unsynced, sampled blocks missing after a restart
  uint64_t lost_while_up = 0;    // acknowledged blocks missing while the node ran (informational)
  uint64_t ssd_evictions = 0;    // reported by the node before each kill; durable blocks evicted
                                 // under capacity pressure would explain a loss
  uint64_t restart_failures = 0;  // the node did not come back after a kill; must be 0
  std::vector<std::string> failures;  // the first few failures, described

  bool ok() const {
    return wrong_bytes == 0 && corrupt_transfers == 0 && durable_lost == 0 &&
           restart_failures == 0;
  }
  std::string ToJson() const;
  std::string Summary() const;  // the final multi-line summary
};

// Runs the cycles, printing one line per cycle to `progress`. Errors only for a setup failure (bad
// options, the first node start); failures of the node under test are in the report.
absl::StatusOr<CrashReport> RunCrashTest(const CrashOptions& options, std::ostream& progress);

}  // namespace strata::tests
