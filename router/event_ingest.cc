#include "router/event_ingest.h"

#include <string_view>

#include "absl/strings/str_cat.h"

namespace strata::router {

struct EventIngest::NodeStream {
  enum class State {
    kUnknown,           // never reset, or forgotten
    kAwaitingSnapshot,  // batches get kSnapshotRequired
    kCollecting,        // chunk 0 applied, waiting for the rest up to `last`
    kSynced,            // batches apply at `expected`
  };

  mutable absl::Mutex mu;
  State state ABSL_GUARDED_BY(mu) = State::kUnknown;
  uint64_t epoch ABSL_GUARDED_BY(mu) = 0;
  uint64_t expected ABSL_GUARDED_BY(mu) = 0;    // next batch sequence, when synced
  uint32_t next_chunk ABSL_GUARDED_BY(mu) = 0;  // next snapshot chunk, when collecting
};

namespace {

IngestReply Reply(IngestReply::Result result, std::string message) {
  return IngestReply{result, std::move(message)};
}

void Bump(std::atomic<uint64_t>& counter, uint64_t by = 1) {
  counter.fetch_add(by, std::memory_order_relaxed);
}

bool ValidTier(Tier t) { return static_cast<unsigned>(t) < kNumTiers; }

// Checks everything the index cannot be asked to do, before anything is applied, so a bad batch
// changes nothing. Empty when fine, else why.
std::string InvalidEvent(std::span<const IngestEvent> events, bool stored_only) {
  for (size_t i = 0; i < events.size(); ++i) {
    const IngestEvent& e = events[i];
    switch (e.kind) {
      case IngestEvent::Kind::kStored:
        break;
      case IngestEvent::Kind::kRemoved:
      case IngestEvent::Kind::kCleared:
        if (stored_only) return absl::StrCat("event ", i, ": snapshots carry STORED events only");
        break;
      default:
        return absl::StrCat("event ", i, ": unknown kind ", static_cast<int>(e.kind));
    }
    if (e.kind != IngestEvent::Kind::kCleared && !ValidTier(e.tier)) {
      return absl::StrCat("event ", i, ": invalid tier ", static_cast<int>(e.tier));
    }
  }
  return {};
}

}  // namespace

EventIngest::EventIngest(GlobalIndex* index) : index_(index) {}

EventIngest::~EventIngest() = default;

EventIngest::NodeStream* EventIngest::Find(NodeSlot node) const {
  absl::ReaderMutexLock lock(&streams_mu_);
  auto it = streams_.find(node);
  return it == streams_.end() ? nullptr : it->second.get();
}

EventIngest::NodeStream* EventIngest::FindOrCreate(NodeSlot node) {
  absl::MutexLock lock(&streams_mu_);
  std::unique_ptr<NodeStream>& stream = streams_[node];
  if (stream == nullptr) stream = std::make_unique<NodeStream>();
  return stream.get();
}

void EventIngest::ApplyEvents(NodeSlot node, std::span<const IngestEvent> events) {
  // A batch's events go to the index in one Apply (each shard lock once per batch, not once per
  // event: events are often a single chain of a few dozen keys). CLEARED splits the batch.
  thread_local std::vector<IndexUpdate> updates;
  updates.clear();
  uint64_t keys = 0;
  for (const IngestEvent& e : events) {
    if (e.kind == IngestEvent::Kind::kCleared) {
      index_->Apply(node, updates);
      updates.clear();
      index_->ClearNode(node);
      continue;
    }
    updates.push_back(IndexUpdate{e.tier, e.kind == IngestEvent::Kind::kRemoved, e.keys});
    keys += e.keys.size();
  }
  index_->Apply(node, updates);
  Bump(counters_.events_applied, keys);
}

void EventIngest::ResetNode(NodeSlot node, uint64_t epoch) {
  NodeStream* s = FindOrCreate(node);
  absl::MutexLock lock(&s->mu);
  index_->ClearNode(node);
  s->state = NodeStream::State::kAwaitingSnapshot;
  s->epoch = epoch;
  s->expected = 0;
  s->next_chunk = 0;
}

void EventIngest::ForgetNode(NodeSlot node) {
  // FindOrCreate rather than Find: the stream's mutex orders this clear against a concurrent
  // ResetNode of the same (reused) slot.
  NodeStream* s = FindOrCreate(node);
  absl::MutexLock lock(&s->mu);
  index_->ClearNode(node);
  s->state = NodeStream::State::kUnknown;
  s->epoch = 0;
  s->expected = 0;
  s->next_chunk = 0;
}

IngestReply EventIngest::ApplyBatch(NodeSlot node, uint64_t epoch, uint64_t sequence,
                                    std::span<const IngestEvent> events) {
  using Result = IngestReply::Result;
  using State = NodeStream::State;
  const auto rejected = [this](std::string why) {
    Bump(counters_.rejected_batches);
    return Reply(Result::kRejected, std::move(why));
  };
  const auto snapshot_required = [this](std::string why) {
    Bump(counters_.snapshot_required);
    return Reply(Result::kSnapshotRequired, std::move(why));
  };

  NodeStream* s = Find(node);
  if (s == nullptr) return rejected(absl::StrCat("unknown node slot ", node));
  absl::MutexLock lock(&s->mu);
  if (s->state == State::kUnknown) return rejected(absl::StrCat("unknown node slot ", node));
  if (epoch < s->epoch) {
    return rejected(absl::StrCat("stale epoch ", epoch, ": the node is at epoch ", s->epoch));
  }
  if (epoch > s->epoch) {
    return snapshot_required(absl::StrCat("epoch ", epoch, " is newer than the router's ", s->epoch,
                                          ": send a snapshot"));
  }
  if (s->state != State::kSynced) {
    return snapshot_required(absl::StrCat("awaiting a snapshot of epoch ", s->epoch));
  }
  if (sequence < s->expected) {
    return rejected(
        absl::StrCat("sequence went backwards: got ", sequence, ", expected ", s->expected));
  }
  if (sequence > s->expected) {
    Bump(counters_.gaps_detected);
    const std::string why = absl::StrCat("sequence gap: got ", sequence, ", expected ", s->expected,
                                         ": send a snapshot");
    s->state = State::kAwaitingSnapshot;
    return snapshot_required(why);
  }
  if (std::string why = InvalidEvent(events, /*stored_only=*/false); !why.empty()) {
    return rejected(std::move(why));
  }
  ApplyEvents(node, events);
  ++s->expected;
  Bump(counters_.batches_applied);
  return Reply(Result::kApplied, {});
}

IngestReply EventIngest::ApplySnapshotChunk(NodeSlot node, uint64_t epoch, uint64_t sequence,
                                            uint32_t chunk_index, bool last,
                                            std::span<const IngestEvent> blocks) {
  using Result = IngestReply::Result;
  using State = NodeStream::State;
  const auto rejected = [this](std::string why) {
    Bump(counters_.rejected_chunks);
    return Reply(Result::kRejected, std::move(why));
  };

  NodeStream* s = Find(node);
  if (s == nullptr) return rejected(absl::StrCat("unknown node slot ", node));
  absl::MutexLock lock(&s->mu);
  if (s->state == State::kUnknown) return rejected(absl::StrCat("unknown node slot ", node));
  if (epoch < s->epoch) {
    Bump(counters_.stale_snapshots);
    return rejected(
        absl::StrCat("stale snapshot: epoch ", epoch, " is older than the node's ", s->epoch));
  }
  if (std::string why = InvalidEvent(blocks, /*stored_only=*/true); !why.empty()) {
    s->state = State::kAwaitingSnapshot;
    return rejected(std::move(why));
  }
  if (chunk_index == 0) {
    index_->ClearNode(node);
    s->epoch = epoch;
    s->state = State::kCollecting;
    s->next_chunk = 1;
  } else if (s->state != State::kCollecting || epoch != s->epoch || chunk_index != s->next_chunk) {
    std::string why =
        s->state == State::kCollecting
            ? absl::StrCat("snapshot chunk ", chunk_index, " of epoch ", epoch,
                           " out of order: expected chunk ", s->next_chunk, " of epoch ", s->epoch)
            : absl::StrCat("snapshot chunk ", chunk_index, " without chunk 0");
    s->state = State::kAwaitingSnapshot;
    return rejected(std::move(why));
  } else {
    ++s->next_chunk;
  }
  ApplyEvents(node, blocks);
  Bump(counters_.snapshot_chunks_applied);
  if (last) {
    s->state = State::kSynced;
    s->expected = sequence + 1;
    Bump(counters_.snapshots_applied);
  }
  return Reply(Result::kApplied, {});
}

bool EventIngest::Synced(NodeSlot node) const {
  NodeStream* s = Find(node);
  if (s == nullptr) return false;
  absl::ReaderMutexLock lock(&s->mu);
  return s->state == NodeStream::State::kSynced;
}

IngestCounters EventIngest::Counters() const {
  const auto get = [](const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  IngestCounters c;
  c.batches_applied = get(counters_.batches_applied);
  c.events_applied = get(counters_.events_applied);
  c.gaps_detected = get(counters_.gaps_detected);
  c.snapshots_applied = get(counters_.snapshots_applied);
  c.snapshot_chunks_applied = get(counters_.snapshot_chunks_applied);
  c.rejected_batches = get(counters_.rejected_batches);
  c.snapshot_required = get(counters_.snapshot_required);
  c.stale_snapshots = get(counters_.stale_snapshots);
  c.rejected_chunks = get(counters_.rejected_chunks);
  return c;
}

}  // namespace strata::router
