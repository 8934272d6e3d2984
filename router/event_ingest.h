// EventIngest: applies each node's ordered stream of block events and snapshots to the
// GlobalIndex, enforcing the ordering rules of router.proto.
//
// Per node it keeps an epoch, the next expected batch sequence and a state: awaiting a snapshot,
// collecting one (chunk 0 arrived, `last` not yet), or synced. A batch is applied only when synced,
// in the node's epoch, at exactly the expected sequence; a gap makes the node await a snapshot
// (the index keeps its stale entries until chunk 0 replaces them); a sequence that goes backwards
// or an older epoch is rejected without touching anything. A snapshot of an older epoch never
// replaces newer state.
//
// Thread-safe. Each node's operations are serialized by that node's own mutex (the "one owner"
// of its stream), so different nodes ingest in parallel and nothing one node sends can disturb
// another node's entries or state. The index must outlive this object.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "router/global_index.h"
#include "router/types.h"

namespace strata::router {

// One block event in router terms (event_decode.h converts the wire form). `tier` is unused for
// kCleared; `keys` are index keys (IndexKeyOf) in the order the node sent them.
struct IngestEvent {
  enum class Kind { kStored, kRemoved, kCleared };
  Kind kind = Kind::kStored;
  Tier tier = Tier::kHbm;
  std::vector<IndexKey> keys;
};

struct IngestReply {
  enum class Result { kApplied, kSnapshotRequired, kRejected };
  Result result = Result::kApplied;
  std::string message;  // why, for kSnapshotRequired and kRejected; empty when applied
};

struct IngestCounters {
  uint64_t batches_applied = 0;
  uint64_t events_applied = 0;     // block events: keys of applied STORED/REMOVED events
  uint64_t gaps_detected = 0;      // batches whose sequence skipped ahead
  uint64_t snapshots_applied = 0;  // completed (last chunk applied)
  uint64_t snapshot_chunks_applied = 0;
  uint64_t rejected_batches = 0;   // batches answered kRejected
  uint64_t snapshot_required = 0;  // batches answered kSnapshotRequired (gaps included)
  uint64_t stale_snapshots = 0;    // snapshot chunks of an older epoch
  uint64_t rejected_chunks = 0;    // snapshot chunks answered kRejected (stale ones included)
};

class EventIngest {
 public:
  explicit EventIngest(GlobalIndex* index);
  ~EventIngest();
  EventIngest(const EventIngest&) = delete;
  EventIngest& operator=(const EventIngest&) = delete;

  // The node (re)registered with `epoch`: drops its index entries and stream state; it then
  // awaits a snapshot of that epoch (batches get kSnapshotRequired until the last chunk).
  void ResetNode(NodeSlot node, uint64_t epoch);

  // The node expired or was removed: drops its entries and state. Until the next ResetNode the
  // slot is unknown and everything it sends is rejected.
  void ForgetNode(NodeSlot node);

  // One event batch. kApplied: every event is in the index and the next batch is sequence + 1.
  // kSnapshotRequired: a newer epoch, a gap (counted) or no snapshot yet; nothing applied.
  // kRejected: unknown node, older epoch, a sequence that went backwards, or an event with an
  // invalid tier; nothing applied and the state is unchanged.
  IngestReply ApplyBatch(NodeSlot node, uint64_t epoch, uint64_t sequence,
                         std::span<const IngestEvent> events);

  // One snapshot chunk (STORED events only). Chunk 0 of an epoch not older than the node's clears
  // the node's entries, adopts the epoch and starts collecting; later chunks must follow in order
  // in the same epoch; `last` completes it (synced, next batch is sequence + 1). Every accepted
  // chunk returns kApplied. kRejected: unknown node, an older epoch (state unchanged), or a chunk
  // out of order or with a non-STORED event (the node then awaits a fresh snapshot).
  IngestReply ApplySnapshotChunk(NodeSlot node, uint64_t epoch, uint64_t sequence,
                                 uint32_t chunk_index, bool last,
                                 std::span<const IngestEvent> blocks);

  // True when the node's stream is in order with a completed snapshot; false for unknown nodes.
  bool Synced(NodeSlot node) const;

  IngestCounters Counters() const;

 private:
  struct NodeStream;
  // The node's stream, or null when the slot never was ResetNode'd. Streams are never freed
  // before this object (slots are dense and reused), so the pointer stays valid.
  NodeStream* Find(NodeSlot node) const;
  NodeStream* FindOrCreate(NodeSlot node);
  void ApplyEvents(NodeSlot node, std::span<const IngestEvent> events);

  GlobalIndex* const index_;
  mutable absl::Mutex streams_mu_;
  absl::flat_hash_map<NodeSlot, std::unique_ptr<NodeStream>> streams_ ABSL_GUARDED_BY(streams_mu_);

  struct AtomicCounters {
    std::atomic<uint64_t> batches_applied{0};
    std::atomic<uint64_t> events_applied{0};
    std::atomic<uint64_t> gaps_detected{0};
    std::atomic<uint64_t> snapshots_applied{0};
    std::atomic<uint64_t> snapshot_chunks_applied{0};
    std::atomic<uint64_t> rejected_batches{0};
    std::atomic<uint64_t> snapshot_required{0};
    std::atomic<uint64_t> stale_snapshots{0};
    std::atomic<uint64_t> rejected_chunks{0};
  };
  AtomicCounters counters_;
};

}  // namespace strata::router
