#include "router/router_core.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/checksum.h"
#include "common/status_macros.h"
#include "common/string_view_interop.h"

namespace strata::router {

absl::Status RouterOptions::Validate() const {
  STRATA_RETURN_IF_ERROR(membership.Validate());
  if (index.shards == 0 || (index.shards & (index.shards - 1)) != 0) {
    return absl::InvalidArgumentError("index shards must be a power of two");
  }
  if (max_request_blocks == 0) return absl::InvalidArgumentError("max_request_blocks must be > 0");
  if (decision_log_size == 0) return absl::InvalidArgumentError("decision_log_size must be > 0");
  if (route_memory.horizon < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("route memory horizon must be >= 0");
  }
  return ExperimentSpec::Parse(experiment).status();
}

absl::StatusOr<std::unique_ptr<RouterCore>> RouterCore::Create(const RouterOptions& options,
                                                               CostModel model,
                                                               common::Clock* clock) {
  STRATA_RETURN_IF_ERROR(options.Validate());
  STRATA_RETURN_IF_ERROR(model.params().Validate());
  std::unique_ptr<RouterCore> core(new RouterCore(options, std::move(model), clock));
  for (std::string_view name : PolicyNames()) {
    STRATA_ASSIGN_OR_RETURN(auto p, MakePolicy(name, &core->model_, options.seed));
    core->override_policies_.push_back(std::move(p));
  }
  STRATA_ASSIGN_OR_RETURN(auto experiment, core->MakeExperiment(options.experiment));
  absl::MutexLock lock(&core->experiment_mu_);
  core->experiment_ = std::move(experiment);
  return core;
}

RouterCore::RouterCore(const RouterOptions& options, CostModel model, common::Clock* clock)
    : options_(options),
      model_(std::move(model)),
      clock_(clock),
      index_(options.index),
      ingest_(&index_),
      membership_(options.membership, clock),
      memory_(options.route_memory, clock->Now()),
      log_(options.decision_log_size),
      // Ids start from the clock so a restarted router does not reissue ids an old outcome report
      // could match.
      next_decision_id_(static_cast<uint64_t>(absl::ToUnixMicros(clock->Now())) << 8 | 1) {}

absl::StatusOr<std::shared_ptr<RouterCore::Experiment>> RouterCore::MakeExperiment(
    const std::string& spec) const {
  auto e = std::make_shared<Experiment>();
  STRATA_ASSIGN_OR_RETURN(e->spec, ExperimentSpec::Parse(spec));
  for (const ExperimentArm& arm : e->spec.arms) {
    STRATA_ASSIGN_OR_RETURN(auto p, MakePolicy(arm.policy, &model_, options_.seed));
    e->policies.push_back(std::move(p));
  }
  e->stats = std::make_unique<ExperimentStats>(e->spec);
  return e;
}

std::shared_ptr<RouterCore::Experiment> RouterCore::CurrentExperiment() const {
  absl::MutexLock lock(&experiment_mu_);
  return experiment_;
}

absl::Status RouterCore::SetExperiment(const std::string& spec) {
  STRATA_ASSIGN_OR_RETURN(auto e, MakeExperiment(spec));
  absl::MutexLock lock(&experiment_mu_);
  experiment_ = std::move(e);
  return absl::OkStatus();
}

ExperimentReportData RouterCore::ExperimentReport() const {
  return CurrentExperiment()->stats->Report();
}

absl::Status RouterCore::CheckChainLength(size_t blocks, std::string_view what) const {
  if (blocks == 0) return absl::InvalidArgumentError(common::Concat(what, " has no blocks"));
  if (blocks > options_.max_request_blocks) {
    return absl::InvalidArgumentError(common::Concat(what, " has ", blocks, " blocks; at most ",
                                                     options_.max_request_blocks, " allowed"));
  }
  return absl::OkStatus();
}

void RouterCore::MatchMembers(std::span<const IndexKey> keys, const MemberView& view,
                              std::vector<NodeMatch>* holders) const {
  thread_local std::vector<NodeMatch> matches;
  index_.Match(keys, &matches);
  holders->clear();
  for (const NodeMatch& m : matches) {
    if (view.Find(m.node) != nullptr) holders->push_back(m);  // else: left since its last event
  }
}

absl::StatusOr<LocateResult> RouterCore::Locate(std::span<const IndexKey> keys) const {
  STRATA_RETURN_IF_ERROR(CheckChainLength(keys.size(), "locate request"));
  LocateResult r;
  r.view = membership_.View();
  r.total_blocks = static_cast<uint32_t>(keys.size());
  thread_local std::vector<NodeMatch> holders;
  MatchMembers(keys, *r.view, &holders);
  r.nodes.reserve(holders.size());
  for (const NodeMatch& h : holders) r.nodes.push_back(NodeHolding{r.view->Find(h.node), h});
  std::sort(r.nodes.begin(), r.nodes.end(), [](const NodeHolding& a, const NodeHolding& b) {
    return a.match.matched != b.match.matched ? a.match.matched > b.match.matched
                                              : a.member->node_id < b.member->node_id;
  });
  return r;
}

absl::StatusOr<RouteDecision> RouterCore::Route(const RouteQuery& q) {
  STRATA_RETURN_IF_ERROR(CheckChainLength(q.keys.size(), "route request"));
  std::shared_ptr<Experiment> experiment = CurrentExperiment();
  Policy* policy = nullptr;
  size_t arm = 0;
  bool is_arm = false;
  if (!q.policy.empty()) {
    for (size_t i = 0; i < experiment->spec.arms.size(); ++i) {
      if (experiment->spec.arms[i].policy == q.policy) {
        policy = experiment->policies[i].get();
        arm = i;
        is_arm = true;
      }
    }
    if (policy == nullptr) {
      for (auto& p : override_policies_) {
        if (p->name() == q.policy) policy = p.get();
      }
    }
    if (policy == nullptr) {
      std::string known;
      for (std::string_view n : PolicyNames())
        known += (known.empty() ? "" : ", ") + std::string(n);
      return absl::InvalidArgumentError(
          absl::StrCat("unknown policy '", q.policy, "'; known: ", known));
    }
  } else {
    arm = experiment->spec.Assign(q.split_key.empty() ? q.request_hash
                                                      : common::Checksum(q.split_key));
    policy = experiment->policies[arm].get();
    is_arm = true;
  }

  RouteDecision d;
  d.view = membership_.View();
  const MemberView& view = *d.view;
  if (view.members.empty()) return absl::UnavailableError("no live node is registered");

  thread_local std::vector<NodeMatch> holders;
  thread_local std::vector<Candidate> candidates;
  MatchMembers(q.keys, view, &holders);
  const absl::Time now = clock_->Now();
  // The memory bridges the time until events arrive: it counts only beyond what the index
  // already places somewhere, so confirmed blocks are never outweighed by a prediction.
  std::array<RememberedMatch, 2> remembered = memory_.Match(q.keys, now);
  uint32_t longest_indexed = 0;
  for (const NodeMatch& h : holders) longest_indexed = std::max(longest_indexed, h.matched);
  for (RememberedMatch& r : remembered) {
    if (r.blocks <= longest_indexed) r.node = kNoSlot;
  }
  candidates.clear();
  // Matches by member index; members without a match get an empty one.
  thread_local std::vector<NodeMatch> match_of_member;
  match_of_member.assign(view.members.size(), NodeMatch{});
  for (const NodeMatch& h : holders) match_of_member[view.Find(h.node) - view.members.data()] = h;
  for (size_t i = 0; i < view.members.size(); ++i) {
    const Member& m = view.members[i];
    NodeLoad load = membership_.EffectiveLoad(m);
    if (load.draining || Silent(m, now)) continue;
    NodeMatch match = match_of_member[i];
    match.node = m.slot;
    for (const RememberedMatch& r : remembered) {
      if (r.node != m.slot || r.blocks <= match.matched) continue;
      // Blocks routed here recently but not reported yet: they will be in HBM or DRAM by the
      // time this request runs behind the one that computes them.
      match.per_tier[static_cast<int>(Tier::kDram)] += r.blocks - match.matched;
      match.matched = r.blocks;
      if (match.slowest == Tier::kHbm) match.slowest = Tier::kDram;
    }
    candidates.push_back(Candidate{m.slot, m.node_id, load, match});
  }
  if (candidates.empty()) {
    return absl::UnavailableError(absl::StrCat(
        "all ", view.members.size(), " registered nodes are draining or silent past the ttl"));
  }

  RouteContext ctx;
  ctx.keys = q.keys;
  ctx.block_tokens = q.block_tokens != 0 ? q.block_tokens : model_.params().block_tokens;
  ctx.prompt_tokens = q.prompt_tokens != 0
                          ? q.prompt_tokens
                          : static_cast<uint32_t>(q.keys.size()) * ctx.block_tokens;
  ctx.request_hash = q.request_hash;
  ctx.candidates = candidates;
  // Longest match first: the cost model looks for peers longer than a candidate's own match and
  // can stop at the first that is not.
  std::sort(holders.begin(), holders.end(), [](const NodeMatch& a, const NodeMatch& b) {
    return a.matched != b.matched ? a.matched > b.matched : a.node < b.node;
  });
  ctx.holders = holders;
  ctx.holders_longest_first = true;

  const Choice choice = policy->Select(ctx);
  const Candidate& chosen = candidates[choice.index];
  d.chosen = view.Find(chosen.node);
  // What the index holds there; the choice may also have counted remembered routes.
  d.match = match_of_member[d.chosen - view.members.data()];
  d.match.node = chosen.node;
  d.cost = model_.Predict(CostInputOf(ctx, chosen));
  d.total_blocks = static_cast<uint32_t>(q.keys.size());
  d.block_tokens = ctx.block_tokens;
  d.policy = std::string(policy->name());

  // Peers: nodes (draining ones too) holding blocks beyond the chosen node's match.
  for (const NodeMatch& h : holders) {
    if (h.node == chosen.node || h.matched <= d.match.matched) continue;
    if (Silent(*view.Find(h.node), now)) continue;
    d.peers.push_back(PeerChoice{view.Find(h.node), d.match.matched, h.matched - d.match.matched,
                                 h.slowest});
  }
  std::sort(d.peers.begin(), d.peers.end(), [](const PeerChoice& a, const PeerChoice& b) {
    return a.blocks != b.blocks ? a.blocks > b.blocks : a.member->node_id < b.member->node_id;
  });
  if (d.peers.size() > 3) d.peers.resize(3);

  // Shadow: what every arm would have chosen, at no cost to the live decision.
  for (size_t i = 0; i < experiment->spec.arms.size(); ++i) {
    const Policy* p = experiment->policies[i].get();
    const Candidate& c = candidates[p == policy ? choice.index : p->Select(ctx).index];
    ShadowEntry s;
    s.policy = experiment->spec.arms[i].policy;
    s.member = view.Find(c.node);
    s.matched_blocks = match_of_member[s.member - view.members.data()].matched;  // indexed
    // The live choice was predicted above; only other nodes need the model again.
    s.predicted_ttft_ms =
        c.node == chosen.node ? d.cost.total_ms : model_.Predict(CostInputOf(ctx, c)).total_ms;
    experiment->stats->RecordShadow(
        i, ShadowResult{s.matched_blocks, s.predicted_ttft_ms, c.node == chosen.node});
    if (observer_ != nullptr) observer_->OnShadow(s.policy, s.matched_blocks, s.predicted_ttft_ms);
    d.shadow.push_back(std::move(s));
  }

  // Bookkeeping, now that the choice is made.
  policy->Commit(ctx, choice);
  memory_.Record(q.keys, chosen.node, now);
  const uint64_t served_blocks = d.cost.cached_blocks + d.cost.peer_blocks;
  const uint64_t served_tokens = served_blocks * ctx.block_tokens;
  membership_.AddPending(chosen.node, 1,
                         ctx.prompt_tokens > served_tokens ? ctx.prompt_tokens - served_tokens : 0);
  if (is_arm) {
    LiveDecision live;
    live.matched_per_tier = d.match.per_tier;
    live.requested_blocks = d.total_blocks;
    live.predicted_ttft_ms = d.cost.total_ms;
    experiment->stats->RecordLive(arm, live);
  }
  d.decision_id = next_decision_id_.fetch_add(1, std::memory_order_relaxed);
  {
    absl::MutexLock lock(&log_mu_);
    LoggedDecision& slot = log_[d.decision_id % log_.size()];
    slot.id = d.decision_id;
    slot.experiment = is_arm ? experiment : nullptr;
    slot.arm = arm;
    slot.policy = d.policy;
  }
  if (observer_ != nullptr) observer_->OnDecision(d);
  return d;
}

absl::Status RouterCore::ReportOutcome(uint64_t decision_id, double ttft_ms, uint32_t prompt_tokens,
                                       uint32_t cached_tokens) {
  if (!(ttft_ms >= 0)) return absl::InvalidArgumentError("ttft_ms must be >= 0");
  if (cached_tokens > prompt_tokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("cached_tokens ", cached_tokens, " exceeds prompt_tokens ", prompt_tokens));
  }
  LoggedDecision logged;
  {
    absl::MutexLock lock(&log_mu_);
    const LoggedDecision& slot = log_[decision_id % log_.size()];
    if (slot.id != decision_id || decision_id == 0) {
      return absl::NotFoundError(
          absl::StrCat("decision ", decision_id, " is unknown or too old to report on"));
    }
    logged = slot;
  }
  if (logged.experiment != nullptr) logged.experiment->stats->RecordOutcome(logged.arm, ttft_ms);
  if (observer_ != nullptr) {
    observer_->OnOutcome(logged.policy, ttft_ms, prompt_tokens, cached_tokens);
  }
  return absl::OkStatus();
}

absl::StatusOr<RegisterResult> RouterCore::RegisterNode(const std::string& node_id,
                                                        const std::string& endpoint, uint64_t epoch,
                                                        const NodeLoad& load, NodeSource source) {
  absl::MutexLock lock(&admin_mu_);
  STRATA_ASSIGN_OR_RETURN(RegisterResult r,
                          membership_.Register(node_id, endpoint, epoch, load, source));
  // Whatever the router held for the node is replaced by the snapshot it sends next.
  ingest_.ResetNode(r.slot, epoch);
  return r;
}

absl::Status RouterCore::Heartbeat(const std::string& node_id, uint64_t epoch,
                                   const NodeLoad& load) {
  return membership_.Heartbeat(node_id, epoch, load);
}

std::vector<std::string> RouterCore::ExpireNodes() {
  absl::MutexLock lock(&admin_mu_);
  std::shared_ptr<const MemberView> before = membership_.View();
  std::vector<std::string> ids;
  for (NodeSlot slot : membership_.Expire()) {
    ingest_.ForgetNode(slot);
    if (const Member* m = before->Find(slot)) ids.push_back(m->node_id);
  }
  return ids;
}

}  // namespace strata::router
