// EngineLoadTable: the latest load each inference engine on this node reported (ReportEngineLoad in
// cachenode.proto), for the router link to add to the load the node heartbeats.
//
// The node itself only sees its own RPCs; the engines beside it know their queues, running batches,
// prefill work and free HBM blocks. Each engine reports under its own id and the table keeps the
// latest report per id with the time it arrived. A report older than the TTL no longer counts, so
// an engine that crashed or hung stops making the node look loaded (or roomy) after one TTL. The
// table holds at most max_engines ids; a new id past that is refused, after reports older than the
// TTL have been dropped to make room.
//
// Thread-safe; times come from the injected clock.
#pragma once

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace strata::cachenode {

struct EngineLoadOptions {
  // A report older than this no longer counts. Shorter: a dead engine's load leaves the node's
  // heartbeats sooner; but an engine that reports less often than this drops in and out of them,
  // and the router then sees the node emptier than it is. 0: three heartbeat intervals (the node
  // resolves it), so an engine reporting once per heartbeat may miss two reports, the same ratio
  // as the router's node TTL to the heartbeat interval.
  absl::Duration ttl = absl::ZeroDuration();
  // Engines tracked at once. A node hosts a handful (one per GPU or per model); the bound keeps a
  // client that invents ids from growing the table.
  uint32_t max_engines = 64;

  // InvalidArgument naming the bad field; ttl must be resolved (> 0) by then.
  absl::Status Validate() const;
};

// Load figures as an engine reports them, and as the node reports them to the router.
struct LoadFigures {
  uint32_t queued_requests = 0;
  uint32_t running_requests = 0;
  uint64_t prefill_tokens_in_flight = 0;
  uint64_t free_hbm_blocks = 0;
};

// The fresh reports added up.
struct EngineLoadSum {
  LoadFigures total;
  uint32_t engines = 0;  // reports younger than the TTL
};

class EngineLoadTable {
 public:
  // `options` must validate; `clock` must outlive the table.
  explicit EngineLoadTable(const EngineLoadOptions& options,
                           common::Clock* clock = common::Clock::Real());
  EngineLoadTable(const EngineLoadTable&) = delete;
  EngineLoadTable& operator=(const EngineLoadTable&) = delete;

  // Replaces `engine_id`'s report with `load`, received now. InvalidArgument for an empty id;
  // ResourceExhausted for a new id while max_engines ids with fresh reports are held.
  absl::Status Report(const std::string& engine_id, const LoadFigures& load);

  // The reports younger than the TTL, added up (each figure saturates instead of wrapping).
  EngineLoadSum Sum() const;

  // `node`'s own figures plus the fresh reports: queued, running and prefill tokens add up;
  // free HBM blocks are the engines' sum when any engine counts (the engines own the HBM their KV
  // lives in), else the node's own figure.
  LoadFigures Merge(const LoadFigures& node) const;

  const EngineLoadOptions& options() const { return options_; }

 private:
  struct Entry {
    LoadFigures load;
    absl::Time received;
  };
  bool Fresh(const Entry& e, absl::Time now) const { return now - e.received <= options_.ttl; }

  const EngineLoadOptions options_;
  common::Clock* const clock_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> engines_ ABSL_GUARDED_BY(mu_);
};

}  // namespace strata::cachenode
