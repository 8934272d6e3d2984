// Membership: the router's set of nodes, their epochs, load and liveness.
//
// A node registers (id, endpoint, epoch) and heartbeats with its load; one that stays silent longer
// than the TTL is expired (Expire returns its slot so the caller drops its index entries). A new
// epoch for a known id means the node restarted: it keeps its slot and the caller must drop its old
// entries (RegisterResult::new_incarnation). Engine event sources (vLLM) are registered as static
// members: they never heartbeat and never expire.
//
// Routes read an immutable MemberView (View()), rebuilt on every change, so a route sees one
// consistent set of nodes without holding a lock. Requests the router sends to a node between two
// of its heartbeats are added as pending load (AddPending) and cleared by the next heartbeat, so a
// burst does not pile onto one node before its reported load catches up.
//
// Thread-safe. Time comes from the injected clock.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "router/types.h"

namespace strata::router {

struct MembershipOptions {
  // Silence after which a node is removed. Shorter: dead nodes leave sooner, but a GC pause or a
  // slow network can evict a healthy node (which then re-registers and resends its snapshot).
  absl::Duration ttl = absl::Seconds(3);
  // Interval the router asks nodes to heartbeat at; a third of the TTL tolerates two lost beats.
  absl::Duration heartbeat_interval = absl::Seconds(1);
  // Slots are dense indices into per-node arrays; this bounds them.
  uint32_t max_nodes = 4096;

  absl::Status Validate() const;
};

enum class NodeSource { kStrata, kVllm };
const char* NodeSourceName(NodeSource s);  // "strata", "vllm"

struct Member {
  NodeSlot slot = kNoSlot;
  std::string node_id;
  std::string endpoint;
  uint64_t epoch = 0;
  NodeSource source = NodeSource::kStrata;
  NodeLoad load;  // as last reported
  absl::Time last_heartbeat;
};

// One consistent picture of the members. `by_slot[s]` is the index into `members` or -1.
struct MemberView {
  std::vector<Member> members;
  std::vector<int32_t> by_slot;

  const Member* Find(NodeSlot slot) const {
    return slot < by_slot.size() && by_slot[slot] >= 0 ? &members[by_slot[slot]] : nullptr;
  }
};

struct RegisterResult {
  NodeSlot slot = kNoSlot;
  // A new node, or a known id with a different epoch: its old index entries must be dropped.
  bool new_incarnation = false;
};

class Membership {
 public:
  Membership(const MembershipOptions& options, common::Clock* clock);

  // InvalidArgument for an empty id or endpoint or epoch 0; FailedPrecondition when the epoch is
  // older than the registered one (a stale incarnation); ResourceExhausted when max_nodes are
  // registered. Re-registering the same epoch refreshes endpoint, load and liveness.
  absl::StatusOr<RegisterResult> Register(const std::string& node_id, const std::string& endpoint,
                                          uint64_t epoch, const NodeLoad& load,
                                          NodeSource source = NodeSource::kStrata);
  // NotFound for an unknown id (register again); FailedPrecondition for another epoch.
  absl::Status Heartbeat(const std::string& node_id, uint64_t epoch, const NodeLoad& load);

  // Removes members silent for longer than the TTL (static sources excepted) and returns their
  // slots. Also clears pending load of static sources older than one heartbeat interval.
  std::vector<NodeSlot> Expire();

  // The slot of a registered (id, epoch). NotFound / FailedPrecondition as Heartbeat.
  absl::StatusOr<NodeSlot> SlotOf(const std::string& node_id, uint64_t epoch) const;

  std::shared_ptr<const MemberView> View() const;

  // Router-side load added after a routing decision; cleared by the node's next heartbeat.
  void AddPending(NodeSlot slot, uint32_t requests, uint64_t prefill_tokens);
  // The member's reported load plus its pending load.
  NodeLoad EffectiveLoad(const Member& m) const;

  const MembershipOptions& options() const { return options_; }

 private:
  struct Pending {
    std::atomic<uint32_t> requests{0};
    std::atomic<uint64_t> prefill_tokens{0};
    std::atomic<int64_t> since_ns{0};
  };
  void RebuildViewLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<Member>::iterator FindLocked(const std::string& node_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ClearPending(NodeSlot slot);

  const MembershipOptions options_;
  common::Clock* const clock_;
  std::unique_ptr<Pending[]> pending_;  // indexed by slot, max_nodes long

  mutable absl::Mutex mu_;
  std::vector<Member> members_ ABSL_GUARDED_BY(mu_);  // unordered
  std::vector<NodeSlot> free_slots_ ABSL_GUARDED_BY(mu_);
  NodeSlot next_slot_ ABSL_GUARDED_BY(mu_) = 0;
  std::shared_ptr<const MemberView> view_ ABSL_GUARDED_BY(mu_);
};

}  // namespace strata::router
