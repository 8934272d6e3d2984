#include "router/membership.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace strata::router {

absl::Status MembershipOptions::Validate() const {
  if (ttl <= absl::ZeroDuration()) return absl::InvalidArgumentError("node ttl must be positive");
  if (heartbeat_interval <= absl::ZeroDuration() || heartbeat_interval > ttl) {
    return absl::InvalidArgumentError("heartbeat interval must be positive and at most the ttl");
  }
  if (max_nodes == 0) return absl::InvalidArgumentError("max_nodes must be positive");
  return absl::OkStatus();
}

const char* NodeSourceName(NodeSource s) { return s == NodeSource::kVllm ? "vllm" : "strata"; }

Membership::Membership(const MembershipOptions& options, common::Clock* clock)
    : options_(options), clock_(clock), pending_(new Pending[options.max_nodes]) {
  absl::MutexLock lock(&mu_);
  RebuildViewLocked();
}

std::vector<Member>::iterator Membership::FindLocked(const std::string& node_id) {
  return std::find_if(members_.begin(), members_.end(),
                      [&](const Member& m) { return m.node_id == node_id; });
}

absl::StatusOr<RegisterResult> Membership::Register(const std::string& node_id,
                                                    const std::string& endpoint, uint64_t epoch,
                                                    const NodeLoad& load, NodeSource source) {
  if (node_id.empty()) return absl::InvalidArgumentError("node id is empty");
  if (endpoint.empty()) return absl::InvalidArgumentError("node endpoint is empty");
  if (epoch == 0) return absl::InvalidArgumentError("node epoch must be > 0");
  RegisterResult result;
  {
    absl::MutexLock lock(&mu_);
    auto it = FindLocked(node_id);
    if (it != members_.end()) {
      if (epoch < it->epoch) {
        return absl::FailedPreconditionError(absl::StrCat("node ", node_id, ": epoch ", epoch,
                                                          " is older than the registered ",
                                                          it->epoch, " (a stale incarnation)"));
      }
      result.new_incarnation = epoch != it->epoch;
      it->endpoint = endpoint;
      it->epoch = epoch;
      it->source = source;
      it->load = load;
      it->last_heartbeat = clock_->Now();
      result.slot = it->slot;
    } else {
      NodeSlot slot;
      if (!free_slots_.empty()) {
        slot = free_slots_.back();
        free_slots_.pop_back();
      } else if (next_slot_ < options_.max_nodes) {
        slot = next_slot_++;
      } else {
        return absl::ResourceExhaustedError(
            absl::StrCat("router is full: ", options_.max_nodes, " nodes registered"));
      }
      members_.push_back(Member{slot, node_id, endpoint, epoch, source, load, clock_->Now()});
      result.slot = slot;
      result.new_incarnation = true;
    }
    RebuildViewLocked();
  }
  ClearPending(result.slot);
  return result;
}

absl::Status Membership::Heartbeat(const std::string& node_id, uint64_t epoch,
                                   const NodeLoad& load) {
  NodeSlot slot;
  {
    absl::MutexLock lock(&mu_);
    auto it = FindLocked(node_id);
    if (it == members_.end()) {
      return absl::NotFoundError(absl::StrCat("node ", node_id, " is not registered"));
    }
    if (it->epoch != epoch) {
      return absl::FailedPreconditionError(absl::StrCat("node ", node_id, ": heartbeat for epoch ",
                                                        epoch, ", registered epoch ", it->epoch));
    }
    it->load = load;
    it->last_heartbeat = clock_->Now();
    slot = it->slot;
    RebuildViewLocked();
  }
  ClearPending(slot);
  return absl::OkStatus();
}

std::vector<NodeSlot> Membership::Expire() {
  const absl::Time now = clock_->Now();
  std::vector<NodeSlot> expired;
  std::vector<NodeSlot> stale_pending;
  {
    absl::MutexLock lock(&mu_);
    auto keep = std::remove_if(members_.begin(), members_.end(), [&](const Member& m) {
      if (m.source == NodeSource::kVllm) {
        stale_pending.push_back(m.slot);
        return false;
      }
      if (now - m.last_heartbeat <= options_.ttl) return false;
      expired.push_back(m.slot);
      return true;
    });
    if (keep != members_.end()) {
      members_.erase(keep, members_.end());
      RebuildViewLocked();
    }
    for (NodeSlot s : expired) free_slots_.push_back(s);
  }
  for (NodeSlot s : expired) ClearPending(s);
  const int64_t cutoff = absl::ToUnixNanos(now - options_.heartbeat_interval);
  for (NodeSlot s : stale_pending) {
    if (pending_[s].since_ns.load(std::memory_order_relaxed) < cutoff) ClearPending(s);
  }
  return expired;
}

absl::StatusOr<NodeSlot> Membership::SlotOf(const std::string& node_id, uint64_t epoch) const {
  absl::MutexLock lock(&mu_);
  for (const Member& m : members_) {
    if (m.node_id != node_id) continue;
    if (m.epoch != epoch) {
      return absl::FailedPreconditionError(
          absl::StrCat("node ", node_id, ": epoch ", epoch, ", registered epoch ", m.epoch));
    }
    return m.slot;
  }
  return absl::NotFoundError(absl::StrCat("node ", node_id, " is not registered"));
}

std::shared_ptr<const MemberView> Membership::View() const {
  absl::MutexLock lock(&mu_);
  return view_;
}

void Membership::AddPending(NodeSlot slot, uint32_t requests, uint64_t prefill_tokens) {
  if (slot >= options_.max_nodes) return;
  Pending& p = pending_[slot];
  if (p.requests.fetch_add(requests, std::memory_order_relaxed) == 0) {
    p.since_ns.store(absl::ToUnixNanos(clock_->Now()), std::memory_order_relaxed);
  }
  p.prefill_tokens.fetch_add(prefill_tokens, std::memory_order_relaxed);
}

NodeLoad Membership::EffectiveLoad(const Member& m) const {
  NodeLoad load = m.load;
  if (m.slot < options_.max_nodes) {
    const Pending& p = pending_[m.slot];
    load.queued_requests += p.requests.load(std::memory_order_relaxed);
    load.prefill_tokens_in_flight += p.prefill_tokens.load(std::memory_order_relaxed);
  }
  return load;
}

void Membership::ClearPending(NodeSlot slot) {
  if (slot >= options_.max_nodes) return;
  pending_[slot].requests.store(0, std::memory_order_relaxed);
  pending_[slot].prefill_tokens.store(0, std::memory_order_relaxed);
}

void Membership::RebuildViewLocked() {
  auto view = std::make_shared<MemberView>();
  view->members = members_;
  std::sort(view->members.begin(), view->members.end(),
            [](const Member& a, const Member& b) { return a.node_id < b.node_id; });
  view->by_slot.assign(next_slot_, -1);
  for (size_t i = 0; i < view->members.size(); ++i) {
    view->by_slot[view->members[i].slot] = static_cast<int32_t>(i);
  }
  view_ = std::move(view);
}

}  // namespace strata::router
