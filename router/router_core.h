// RouterCore: the router without I/O. It owns the global index, event ingest, membership, the cost
// model and the experiment (policies plus their figures), and answers routes.
//
// Route: match the request's chain against the index, build candidates from the live members (not
// draining) with their effective load (reported + routed since their last heartbeat), let the
// request's policy choose (an override, else the experiment arm its split key hashes to), predict
// the choice's TTFT with the cost model, score every other arm in shadow, then do the bookkeeping:
// the arm's Commit, pending load on the chosen node, the decision log for ReportOutcome, the
// figures and the observer. Selection itself has no side effects.
//
// Locate: the same match as Route, reported per node, with no bookkeeping at all.
//
// Membership changes and ingest resets are serialised here (RegisterNode, ExpireNodes), so a slot
// is never reused while its old entries are still being cleared. Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "router/cost_model.h"
#include "router/event_ingest.h"
#include "router/experiment.h"
#include "router/global_index.h"
#include "router/membership.h"
#include "router/route_memory.h"
#include "router/policy.h"

namespace strata::router {

struct RouterOptions {
  MembershipOptions membership;
  GlobalIndexOptions index;
  // Initial experiment: a spec ("locality=50,round_robin=50") or one policy name.
  std::string experiment = "locality";
  // Longest chain a route may carry; longer requests are InvalidArgument (bounds per-route work).
  uint32_t max_request_blocks = 4096;
  // Recent decisions kept for ReportOutcome; older ids are NotFound.
  uint32_t decision_log_size = 1 << 16;
  uint64_t seed = 0;  // random policy
  // Where recent routes went: a chain routed to a node counts as held there (in DRAM) until its
  // events catch up, beyond the longest prefix the index already places anywhere
  // (router/route_memory.h). horizon 0 disables it.
  RouteMemoryOptions route_memory;

  absl::Status Validate() const;
};

struct RouteQuery {
  std::vector<IndexKey> keys;  // the chain, in order; never empty
  uint32_t prompt_tokens = 0;  // 0: keys * block_tokens
  uint32_t block_tokens = 0;   // 0: the cost model's default
  std::string split_key;       // session key, else request id; empty: the chain decides
  uint64_t request_hash = 0;   // stable per request (random policy)
  std::string policy;          // override; empty: the experiment decides
};

struct PeerChoice {
  const Member* member = nullptr;  // valid while `view` of the decision lives
  uint32_t from_block = 0;
  uint32_t blocks = 0;
  Tier slowest = Tier::kHbm;
};

struct ShadowEntry {
  std::string policy;
  const Member* member = nullptr;
  uint32_t matched_blocks = 0;
  double predicted_ttft_ms = 0;
};

struct RouteDecision {
  std::shared_ptr<const MemberView> view;  // keeps the Member pointers below valid
  const Member* chosen = nullptr;
  NodeMatch match;
  CostBreakdown cost;
  uint32_t total_blocks = 0;
  uint32_t block_tokens = 0;
  std::string policy;
  uint64_t decision_id = 0;
  std::vector<PeerChoice> peers;  // longest match first, at most 3
  std::vector<ShadowEntry> shadow;
};

// One node's prefix match of a chain, for Locate.
struct NodeHolding {
  const Member* member = nullptr;  // valid while `view` of the result lives
  NodeMatch match;                 // match.matched >= 1
};

struct LocateResult {
  std::shared_ptr<const MemberView> view;  // keeps the Member pointers below valid
  uint32_t total_blocks = 0;
  std::vector<NodeHolding> nodes;  // longest match first, ties by node id
};

// Receives figures as decisions happen (the binary's metrics exporter implements it).
class RouteObserver {
 public:
  virtual ~RouteObserver() = default;
  virtual void OnDecision(const RouteDecision& d) = 0;
  virtual void OnShadow(const std::string& policy, uint32_t matched_blocks,
                        double predicted_ttft_ms) = 0;
  virtual void OnOutcome(const std::string& policy, double ttft_ms, uint32_t prompt_tokens,
                         uint32_t cached_tokens) = 0;
};

class RouterCore {
 public:
  // InvalidArgument for bad options or experiment spec.
  static absl::StatusOr<std::unique_ptr<RouterCore>> Create(const RouterOptions& options,
                                                            CostModel model, common::Clock* clock);

  // InvalidArgument for an empty or overlong chain or an unknown policy override; Unavailable when
  // no live, non-draining node exists. A node silent for longer than the membership TTL is never
  // chosen (nor offered as a peer), even before the expiry scan removes it: a dead node leaves the
  // routes exactly one TTL after its last heartbeat, however late that scan runs.
  absl::StatusOr<RouteDecision> Route(const RouteQuery& q);
  // Which registered nodes (draining ones too) hold a prefix of `keys`, and in which tiers.
  // Read-only: no decision id, no pending load, no experiment figures, no observer call.
  // InvalidArgument for an empty or overlong chain, as Route; no live node holding block 0 is an
  // empty result.
  absl::StatusOr<LocateResult> Locate(std::span<const IndexKey> keys) const;
  // NotFound for an unknown or forgotten decision id; InvalidArgument for a negative TTFT or more
  // cached than prompt tokens.
  absl::Status ReportOutcome(uint64_t decision_id, double ttft_ms, uint32_t prompt_tokens = 0,
                             uint32_t cached_tokens = 0);

  // Registers (or re-registers) a node; its index entries are dropped and it must send a snapshot.
  absl::StatusOr<RegisterResult> RegisterNode(const std::string& node_id,
                                              const std::string& endpoint, uint64_t epoch,
                                              const NodeLoad& load,
                                              NodeSource source = NodeSource::kStrata);
  absl::Status Heartbeat(const std::string& node_id, uint64_t epoch, const NodeLoad& load);
  // Expires silent nodes and drops their entries. Returns the ids removed.
  std::vector<std::string> ExpireNodes();

  // Replaces the experiment (figures restart). InvalidArgument for a bad spec.
  absl::Status SetExperiment(const std::string& spec);
  ExperimentReportData ExperimentReport() const;

  // The observer must outlive the core; set before routing starts.
  void set_observer(RouteObserver* observer) { observer_ = observer; }

  GlobalIndex& index() { return index_; }
  EventIngest& ingest() { return ingest_; }
  Membership& membership() { return membership_; }
  const CostModel& cost_model() const { return model_; }
  common::Clock* clock() const { return clock_; }
  const RouterOptions& options() const { return options_; }

 private:
  // A Strata node whose last heartbeat is older than the TTL (engine event sources never are).
  bool Silent(const Member& m, absl::Time now) const {
    return m.source == NodeSource::kStrata && now - m.last_heartbeat > membership_.options().ttl;
  }
  struct Experiment {
    ExperimentSpec spec;
    std::vector<std::unique_ptr<Policy>> policies;  // one per arm
    std::unique_ptr<ExperimentStats> stats;
  };
  struct LoggedDecision {
    uint64_t id = 0;
    std::shared_ptr<Experiment> experiment;  // null when the policy was not an arm
    size_t arm = 0;
    std::string policy;
  };

  RouterCore(const RouterOptions& options, CostModel model, common::Clock* clock);
  absl::StatusOr<std::shared_ptr<Experiment>> MakeExperiment(const std::string& spec) const;
  std::shared_ptr<Experiment> CurrentExperiment() const;
  // InvalidArgument unless 1 <= blocks <= max_request_blocks; `what` names the request.
  absl::Status CheckChainLength(size_t blocks, std::string_view what) const;
  // Prefix matches of `keys` on the members of `view` (nodes that left since are skipped), in no
  // particular order, into `holders` (cleared first).
  void MatchMembers(std::span<const IndexKey> keys, const MemberView& view,
                    std::vector<NodeMatch>* holders) const;

  const RouterOptions options_;
  const CostModel model_;
  common::Clock* const clock_;
  GlobalIndex index_;
  EventIngest ingest_;
  Membership membership_;
  RouteMemory memory_;
  RouteObserver* observer_ = nullptr;
  // One instance per known policy, for per-request overrides outside the experiment.
  std::vector<std::unique_ptr<Policy>> override_policies_;

  absl::Mutex admin_mu_;  // serialises membership changes with their index resets

  mutable absl::Mutex experiment_mu_;
  std::shared_ptr<Experiment> experiment_ ABSL_GUARDED_BY(experiment_mu_);

  absl::Mutex log_mu_;
  std::vector<LoggedDecision> log_ ABSL_GUARDED_BY(log_mu_);
  std::atomic<uint64_t> next_decision_id_;
};

}  // namespace strata::router
