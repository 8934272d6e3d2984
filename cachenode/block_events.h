// Block events: what a cache node tells the router about which tiers hold which blocks.
//
// TieredStore reports every change of a block's tier set to a BlockEventSink: a copy added to a
// tier is `stored(key, tier)`, a copy dropped from a tier (eviction, demotion source, delete,
// checksum failure, a re-put replacing stale copies) is `removed(key, tier)`. The store calls the
// sink under its own mutex, so a sink must be cheap, must not block, and must never call back into
// the store.
//
// BlockEventBuffer is the sink the router link uses: it keeps events in order as runs of
// (kind, tier, namespace) with concatenated 32-byte hashes, which is exactly the wire shape of a
// strata.v1.BlockEvent (one allocation per run, not one per block). It is bounded: on overflow it
// drops everything and marks "snapshot needed" rather than lose an event silently, and drops
// further events until a snapshot cut (DiscardAll) clears the mark, since the snapshot supersedes
// them. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "cachenode/tier.h"
#include "common/block_key.h"

namespace strata::cachenode {

enum class BlockEventKind { kStored, kRemoved };

// Receives the store's events. Called with the store mutex held (see above). Implementations must
// be thread-safe.
class BlockEventSink {
 public:
  virtual ~BlockEventSink() = default;
  virtual void OnBlockEvent(BlockEventKind kind, TierKind tier, const BlockKey& key) = 0;
};

// Consecutive events of one kind, tier and namespace, in order.
struct BlockEventRun {
  BlockEventKind kind = BlockEventKind::kStored;
  TierKind tier = TierKind::kDram;
  common::NamespaceId namespace_id = 0;
  std::string hashes;  // concatenated 32-byte chain hashes

  size_t events() const { return hashes.size() / common::kChainHashBytes; }
};

class BlockEventBuffer final : public BlockEventSink {
 public:
  // `max_events` bounds what is held between takes; 1M events is about 32 MiB of hashes.
  explicit BlockEventBuffer(size_t max_events);

  // Appends one event (joining the last run when kind, tier and namespace match). On overflow,
  // or while a snapshot is needed, the event is dropped and counted (see the header comment).
  void OnBlockEvent(BlockEventKind kind, TierKind tier, const BlockKey& key) override;

  // Removes and returns up to `max_events` of the oldest events, in order (a run may be split).
  std::vector<BlockEventRun> Take(size_t max_events);

  // Drops everything held and clears "snapshot needed". The link calls it at a snapshot's cut,
  // under the store mutex, so no event falls between the snapshot and what is buffered after it.
  void DiscardAll();

  // True after an overflow, until DiscardAll.
  bool snapshot_needed() const;
  // Events held now.
  size_t size() const;
  // Events dropped by overflows so far (for logs and tests).
  uint64_t dropped() const;

 private:
  const size_t max_events_;
  mutable absl::Mutex mu_;
  std::deque<BlockEventRun> runs_ ABSL_GUARDED_BY(mu_);
  size_t front_taken_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // of runs_.front(), already taken
  size_t size_ ABSL_GUARDED_BY(mu_) = 0;
  bool snapshot_needed_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace strata::cachenode
