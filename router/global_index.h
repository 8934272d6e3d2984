// GlobalIndex: index key -> the set of (node, tiers) holding that block, over all nodes.
//
// Because keys are chained hashes, a request's prefix match on a node is the run of its keys, in
// order, that the node holds, ending at the first miss (Match). The index is sharded by key; each
// shard has its own reader/writer lock, so routes (readers) proceed while other shards ingest, and a
// batch of events takes each shard's lock once. Memory per (block, node) entry is reported by
// Stats() and tracked by `strata-bench router`.
//
// Removing a node (ClearNode) scans every shard; it is meant for rare events (expiry, restart,
// snapshot), not the per-event path. Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "router/types.h"

namespace strata::router {

struct GlobalIndexOptions {
  // Lock stripes. More shards: less contention between ingest and routes, a little more memory
  // slack (each shard grows its own table). Must be a power of two.
  uint32_t shards = 64;
};

struct GlobalIndexStats {
  uint64_t blocks = 0;         // distinct keys held by at least one node
  uint64_t entries = 0;        // (block, node) pairs
  uint64_t memory_bytes = 0;   // tables plus out-of-line holder lists
};

class GlobalIndex {
 public:
  explicit GlobalIndex(const GlobalIndexOptions& options = {});
  ~GlobalIndex();
  GlobalIndex(const GlobalIndex&) = delete;
  GlobalIndex& operator=(const GlobalIndex&) = delete;

  // Records that `node` holds `keys` in `tier` (idempotent). Takes each touched shard lock once.
  void Store(NodeSlot node, Tier tier, std::span<const IndexKey> keys);
  // Records that `node` no longer holds `keys` in `tier`; absent keys are ignored.
  void Remove(NodeSlot node, Tier tier, std::span<const IndexKey> keys);
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

  const GlobalIndexOptions options_;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace strata::router
