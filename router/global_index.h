// GlobalIndex: index key -> the set of (node, tiers) holding that block, over all nodes.
//
// Because keys are chained hashes, a request's prefix match on a node is the run of its keys, in
// order, that the node holds, ending at the first miss (Match). The index is sharded by key; each
// shard has its own reader/writer lock (an absl::Mutex) over its own table (index_table.h, 16
// bytes per slot), so routes (readers) proceed while other shards ingest, and a batch of events
// is grouped by shard and takes each shard's lock once per few keys, never for long. Memory per
// (block, node) entry is reported by Stats() and tracked by `strata-bench router` (about 26 bytes
// at 10M entries).
//
// A Match sees each block's holders as of one instant, not the whole request at one instant:
// under concurrent ingest it may combine blocks from before and after an update, which is what a
// route can use anyway.
//
// Removing a node (ClearNode) scans every shard; it is meant for rare events (expiry, restart,
// snapshot), not the per-event path (~100 ms at 10M entries). Thread-safe. Node slots must be
// below 2^24 (holders pack the slot in 24 bits).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "router/types.h"

namespace strata::router {

struct GlobalIndexOptions {
  // Lock stripes, 1 to 1024 (clamped). More shards: less contention between ingest and routes,
  // more lock operations per ingest batch.
  uint32_t shards = 64;
};

// One step of a node's changes: it now holds `keys` in `tier` (stored), or no longer does.
struct IndexUpdate {
  Tier tier = Tier::kHbm;
  bool removed = false;
  std::span<const IndexKey> keys;
};

struct GlobalIndexStats {
  uint64_t blocks = 0;        // distinct keys held by at least one node
  uint64_t entries = 0;       // (block, node) pairs
  uint64_t memory_bytes = 0;  // tables plus out-of-line holder lists
};

class GlobalIndex {
 public:
  explicit GlobalIndex(const GlobalIndexOptions& options = {});
  ~GlobalIndex();
  GlobalIndex(const GlobalIndex&) = delete;
  GlobalIndex& operator=(const GlobalIndex&) = delete;

  // Records that `node` holds `keys` in `tier` (idempotent). Grouped by shard like Apply.
  void Store(NodeSlot node, Tier tier, std::span<const IndexKey> keys);
  // Records that `node` no longer holds `keys` in `tier`; absent keys are ignored.
  void Remove(NodeSlot node, Tier tier, std::span<const IndexKey> keys);
  // Applies a batch of `node`'s updates as if one by one, in order (two updates of one key keep
  // their order). Keys are grouped by shard and each shard's lock is taken once per 8 keys, one
  // lock at a time: the small events of one batch share the locks, and routes never wait long.
  void Apply(NodeSlot node, std::span<const IndexUpdate> updates);
  // Drops every entry of `node`. Returns how many (block, node) entries it removed.
  uint64_t ClearNode(NodeSlot node);

  // Prefix match of `keys` on every node holding keys[0]: appends one NodeMatch per such node (in
  // no particular order) to `out` (cleared first). Stops early once no node matches further.
  void Match(std::span<const IndexKey> keys, std::vector<NodeMatch>* out) const;

  // Tiers `node` holds `key` in (0: none). For tests and snapshots.
  TierMask Get(IndexKey key, NodeSlot node) const;

  // Blocks `node` holds in any tier; O(shards) reads of per-node counters.
  uint64_t NodeEntries(NodeSlot node) const;

  GlobalIndexStats Stats() const;

 private:
  struct Shard;
  Shard& ShardOf(IndexKey key) const;
  uint32_t ShardIndex(size_t hash) const;

  const GlobalIndexOptions options_;
  std::unique_ptr<Shard[]> shards_;
  // Top bits of a key's hash -> shard. Shards take unequal shares of the keys (1x to 2x, spread
  // geometrically) so their tables double at different sizes: the memory per entry then stays near
  // its average instead of swinging between 21 and 43 bytes per block as all tables grow in step.
  std::vector<uint16_t> shard_of_bucket_;
  int bucket_shift_ = 64;
};

}  // namespace strata::router
