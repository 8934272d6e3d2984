// RouteMemory: where the router recently sent each chain, so requests that share a prefix keep
// going to the node that will hold it, before that node's events say it does.
//
// The index learns of a block only after the node computed and stored it, which for a queued
// request can be seconds to minutes after the route. Without a memory, a burst of requests sharing
// a system prompt or a document finds the prefix nowhere and is spread by load alone, and each
// node recomputes the same prefix. Dynamo's approximate indexer and SGLang's cache-aware router
// keep the same kind of record.
//
// It is a hint, kept cheap because it runs on every route: a direct-mapped table of `slots`
// entries (key, and the last two nodes it was routed to with their times), overwritten on
// collision, read and written with relaxed atomics and no lock. Keys are whole prefixes (chain
// hashes), so the longest remembered key of a chain gives a node's match: a collision that loses
// one key shortens nothing while a later key survives. Two nodes, because a burst that
// outgrows one node spills to a second, and both then hold the prefix. A route older than
// `horizon` (by then
// the node's events have either confirmed the blocks or they were evicted) no longer counts. A
// collision can only forget a key, never report another key's node: entries carry their key.
//
// Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>

#include "absl/time/time.h"
#include "router/types.h"

namespace strata::router {

struct RouteMemoryOptions {
  // How long a routed chain counts as (soon) held by its node. Longer covers deeper queues; too
  // long keeps sending a prefix to a node that has since evicted it (until its events say so).
  // Zero disables the memory.
  absl::Duration horizon = absl::Seconds(30);
  // Table entries (rounded up to a power of two; 24 bytes each). More entries forget less under
  // many distinct chains.
  uint32_t slots = 1 << 18;
};

struct RememberedMatch {
  NodeSlot node = kNoSlot;  // kNoSlot: nothing remembered for the chain's first block
  uint32_t blocks = 0;      // leading blocks routed to `node` within the horizon
};

class RouteMemory {
 public:
  // `epoch` is any time at or before the first Record (times are kept relative to it).
  RouteMemory(const RouteMemoryOptions& options, absl::Time epoch);

  bool enabled() const { return slots_ != nullptr; }

  // Remembers that `keys` were routed to `node` at `now`.
  void Record(std::span<const IndexKey> keys, NodeSlot node, absl::Time now);

  // The (at most two) nodes with the longest prefixes of `keys` routed to them within the horizon,
  // longest first, each with that prefix's length; unused entries have node kNoSlot.
  std::array<RememberedMatch, 2> Match(std::span<const IndexKey> keys, absl::Time now) const;

 private:
  struct Slot {
    std::atomic<uint64_t> key{0};
    std::atomic<uint64_t> meta[2] = {0, 0};  // (node + 1) << 40 | ms since epoch; 0: empty
  };
  Slot& SlotOf(IndexKey key) const;

  const absl::Time epoch_;
  const int64_t horizon_ms_;
  uint64_t mask_ = 0;
  std::unique_ptr<Slot[]> slots_;
};

}  // namespace strata::router
