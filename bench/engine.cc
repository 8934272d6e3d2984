#include "bench/engine.h"

#include <algorithm>
#include <limits>

namespace strata::bench {

using common::ChainHash;

struct Engine::Running {
  EngineRequest req;
  RequestResult result;
  double ready_ms = 0;       // its load is done; prefill may start
  uint32_t computed = 0;     // prompt tokens whose KV exists (cached + prefilled)
  uint32_t generated = 0;    // output tokens so far
  uint32_t hbm_hits = 0;     // blocks pinned from the prefix cache at admission
  uint32_t lower_match = 0;  // blocks the node's tiers held from hbm_hits on
  uint64_t reserved = 0;     // blocks of reserved_ that are its own
  bool prefill_done = false;
  std::vector<ChainHash> pinned;
};

Engine::Engine(int node, const EngineParams& params, const EngineOptions& options,
               TierAccess* tiers)
    : node_(node), params_(params), options_(options), tiers_(tiers) {
  block_bytes_ = params_.cost.params().kv_bytes_per_token * options_.block_tokens;
  pool_blocks_ = params_.HbmKvBytes() / block_bytes_;
}

Engine::~Engine() = default;

uint64_t Engine::BlocksNeeded(uint32_t input_tokens, uint32_t output_tokens) const {
  const uint64_t tokens = uint64_t{input_tokens} + output_tokens;
  return (tokens + options_.block_tokens - 1) / options_.block_tokens;
}

void Engine::Enqueue(EngineRequest request, double now_ms) {
  now_ms_ = now_ms;
  // The load it adds is the prompt it will compute: what the node already holds of its prefix
  // (HBM, then its tiers) will not be recomputed.
  uint32_t held = 0;
  while (held < request.chain.size() && cache_.contains(request.chain[held])) ++held;
  if (options_.use_lower_tiers && held < request.chain.size()) {
    held += static_cast<uint32_t>(
        tiers_->Match(node_, std::span<const ChainHash>(request.chain).subspan(held)).size());
  }
  request.expected_prefill_tokens = static_cast<uint32_t>(std::max<int64_t>(
      1, int64_t{request.input_tokens} - int64_t{held} * options_.block_tokens));
  waiting_.push_back(std::move(request));
  AdmitWaiting(now_ms);
  if (!step_end_ms_.has_value()) StartStep(now_ms);
}

std::optional<double> Engine::NextEventMs() const {
  if (step_end_ms_.has_value()) return step_end_ms_;
  std::optional<double> wake;
  for (const auto& r : running_) {
    if (r->ready_ms > now_ms_ && (!wake.has_value() || r->ready_ms < *wake)) wake = r->ready_ms;
  }
  return wake;
}

void Engine::Pin(const ChainHash& key) {
  CacheSlot& slot = cache_.at(key);
  if (slot.refs == 0) evictable_.erase({slot.stamp, -int64_t{slot.position}, key});
  ++slot.refs;
}

void Engine::Unpin(const ChainHash& key, uint64_t stamp) {
  CacheSlot& slot = cache_.at(key);
  if (--slot.refs == 0) {
    slot.stamp = stamp;
    evictable_.insert({slot.stamp, -int64_t{slot.position}, key});
  }
}

void Engine::Insert(const ChainHash& key, uint32_t position, std::vector<ChainHash>* added) {
  auto [it, inserted] = cache_.try_emplace(key);
  if (inserted) {
    it->second.position = position;
    it->second.refs = 1;
    added->push_back(key);
    return;
  }
  Pin(key);  // another request cached the same block meanwhile
}

bool Engine::EvictOne() {
  if (evictable_.empty()) return false;
  const ChainHash key = std::get<2>(*evictable_.begin());
  evictable_.erase(evictable_.begin());
  cache_.erase(key);
  tiers_->HbmRemoved(node_, std::span<const ChainHash>(&key, 1));
  return true;
}

double Engine::LoadMs(uint32_t dram, uint32_t ssd, uint32_t peer, bool peer_ssd) const {
  const auto& p = params_.cost.params();
  const double mb = static_cast<double>(block_bytes_) / 1e6;  // ms per GB/s
  double ms = (dram + ssd + peer) * mb / p.dram_gbps;         // every block crosses PCIe
  ms += ssd * mb / options_.ssd_gbps;                         // SSD -> DRAM first
  if (peer > 0) {
    ms += p.peer_rtt_ms + peer * mb / p.peer_gbps;
    if (peer_ssd) ms += peer * mb / options_.ssd_gbps;
  }
  return ms;
}

std::pair<uint32_t, uint32_t> Engine::ChooseLoads(const EngineRequest& r, uint32_t hbm,
                                                  const std::vector<bool>& local,
                                                  uint32_t peer_blocks, bool peer_ssd) const {
  const uint32_t n_local = static_cast<uint32_t>(local.size());
  if (options_.load_policy == LoadPolicy::kAlways) return {n_local, peer_blocks};
  const uint32_t bt = options_.block_tokens;
  auto total = [&](uint32_t j, uint32_t dram, uint32_t ssd, uint32_t p) {
    const uint64_t cached = std::min<uint64_t>(uint64_t{hbm + j + p} * bt, r.input_tokens - 1);
    return LoadMs(dram, ssd, p, peer_ssd) +
           params_.cost.PrefillMs(cached, r.input_tokens - cached);
  };
  uint32_t best_j = 0, best_p = 0, dram = 0, ssd = 0;
  double best = total(0, 0, 0, 0);
  for (uint32_t j = 1; j <= n_local; ++j) {
    (local[j - 1] ? ssd : dram) += 1;
    const double t = total(j, dram, ssd, 0);
    if (t < best) best = t, best_j = j;
  }
  if (best_j == n_local) {
    for (uint32_t p = 1; p <= peer_blocks; ++p) {
      const double t = total(n_local, dram, ssd, p);
      if (t < best) best = t, best_p = p;
    }
  }
  return {best_j, best_p};
}

bool Engine::TryAdmit(EngineRequest& request, double now_ms) {
  if (running_.size() >= params_.max_running_requests) return false;
  const uint32_t blocks = static_cast<uint32_t>(request.chain.size());
  uint32_t hbm = 0;
  uint64_t matched_evictable = 0;
  while (hbm < blocks) {
    auto it = cache_.find(request.chain[hbm]);
    if (it == cache_.end()) break;
    if (it->second.refs == 0) ++matched_evictable;
    ++hbm;
  }
  const uint64_t need = BlocksNeeded(request.input_tokens, request.output_tokens) - hbm;
  if (need > FreeBlocks() + evictable_.size() - matched_evictable) return false;

  auto run = std::make_unique<Running>();
  Running& r = *run;
  for (uint32_t i = 0; i < hbm; ++i) {
    Pin(request.chain[i]);
    r.pinned.push_back(request.chain[i]);
  }
  while (FreeBlocks() < need) EvictOne();
  reserved_ += need;
  r.reserved = need;
  r.hbm_hits = hbm;

  std::vector<bool> local;
  uint32_t peer_blocks = 0;
  bool peer_ssd = false;
  const std::span<const ChainHash> rest(request.chain.data() + hbm, blocks - hbm);
  if (options_.use_lower_tiers && !rest.empty()) {
    local = tiers_->Match(node_, rest);
    const uint32_t reach = hbm + static_cast<uint32_t>(local.size());
    const PeerOffer& peer = request.peer;
    if (peer.blocks > 0 && peer.node != node_ && peer.from_block + peer.blocks > reach) {
      // The offer is as of the route; what the peer holds now decides.
      const std::vector<bool> held = tiers_->Match(
          peer.node, std::span<const ChainHash>(request.chain.data() + reach,
                                                peer.from_block + peer.blocks - reach));
      peer_blocks = static_cast<uint32_t>(held.size());
      for (bool ssd : held) peer_ssd = peer_ssd || ssd;
    }
  }
  r.lower_match = static_cast<uint32_t>(local.size());
  const auto [j, p] = ChooseLoads(request, hbm, local, peer_blocks, peer_ssd);
  uint32_t dram = 0, ssd = 0;
  for (uint32_t i = 0; i < j; ++i) (local[i] ? ssd : dram) += 1;
  if (j > 0) tiers_->Read(node_, rest.subspan(0, j));
  if (p > 0) tiers_->ReadPeer(request.peer.node, rest.subspan(j, p));
  const double load_ms = LoadMs(dram, ssd, p, peer_ssd);
  r.ready_ms = now_ms;
  if (load_ms > 0) {
    const double start = std::max(now_ms, link_free_ms_);
    r.ready_ms = start + load_ms;
    link_free_ms_ = r.ready_ms;
  }
  const uint32_t bt = options_.block_tokens;
  r.computed = static_cast<uint32_t>(
      std::min<uint64_t>(uint64_t{hbm + j + p} * bt, request.input_tokens - 1));

  RequestResult& res = r.result;
  res.id = request.id;
  res.node = node_;
  res.arrival_ms = request.arrival_ms;
  res.admitted_ms = now_ms;
  res.input_tokens = request.input_tokens;
  res.output_tokens = request.output_tokens;
  res.prompt_blocks = blocks;
  res.hit_blocks = {hbm, dram, ssd, p};
  res.cached_tokens = r.computed;
  res.load_ms = load_ms;
  res.loaded_bytes = uint64_t{j + p} * block_bytes_;
  r.req = std::move(request);
  running_.push_back(std::move(run));
  return true;
}

void Engine::AdmitWaiting(double now_ms) {
  while (!waiting_.empty() && TryAdmit(waiting_.front(), now_ms)) waiting_.pop_front();
}

void Engine::StartStep(double now_ms) {
  step_members_.clear();
  step_chunks_.clear();
  uint32_t decoding = 0;
  uint64_t context = 0;
  for (const auto& r : running_) {
    if (r->prefill_done) {
      step_members_.push_back(r.get());
      step_chunks_.push_back(0);
      ++decoding;
      context += uint64_t{r->req.input_tokens} + r->generated;
    }
  }
  uint32_t budget = params_.max_batched_tokens > decoding ? params_.max_batched_tokens - decoding : 0;
  const double t0 = params_.cost.params().prefill_t0_ms;
  double prefill_ms = 0;
  bool any_prefill = false;
  for (const auto& r : running_) {
    if (budget == 0) break;
    if (r->prefill_done || r->ready_ms > now_ms) continue;
    const uint32_t n = std::min(budget, r->req.input_tokens - r->computed);
    prefill_ms += params_.cost.PrefillMs(r->computed, n) - t0;
    any_prefill = true;
    budget -= n;
    step_members_.push_back(r.get());
    step_chunks_.push_back(n);
  }
  if (step_members_.empty()) {
    step_end_ms_.reset();
    return;
  }
  const double ms =
      (any_prefill ? t0 + prefill_ms : 0) + params_.DecodeMs(decoding, context, any_prefill);
  step_end_ms_ = now_ms + ms;
  busy_ms_ += ms;
  ++steps_;
}

std::vector<RequestResult> Engine::Advance() {
  std::vector<RequestResult> done;
  const std::optional<double> next = NextEventMs();
  if (!next.has_value()) return done;
  const bool was_step = step_end_ms_.has_value();
  now_ms_ = *next;
  step_end_ms_.reset();
  if (was_step) {
    const uint32_t bt = options_.block_tokens;
    for (size_t i = 0; i < step_members_.size(); ++i) {
      Running& r = *step_members_[i];
      const uint32_t n = step_chunks_[i];
      if (n == 0) {
        ++r.generated;
      } else {
        r.computed += n;
        r.result.prefill_tokens += n;
        prefill_tokens_total_ += n;
        if (r.computed == r.req.input_tokens) {
          r.prefill_done = true;
          r.generated = 1;
          r.result.first_token_ms = now_ms_;
          // Its prompt blocks now sit in HBM: into the prefix cache, pinned while it runs.
          const uint32_t blocks = static_cast<uint32_t>(r.req.chain.size());
          std::vector<ChainHash> added;
          for (uint32_t pos = r.hbm_hits; pos < blocks; ++pos) {
            Insert(r.req.chain[pos], pos, &added);
            r.pinned.push_back(r.req.chain[pos]);
          }
          const uint64_t moved = blocks - r.hbm_hits;
          reserved_ -= moved;
          r.reserved -= moved;
          if (!added.empty()) tiers_->HbmStored(node_, added);
          // Write-through of what the node's tiers do not hold yet.
          const uint32_t first = r.hbm_hits + r.lower_match;
          if (options_.use_lower_tiers && first < blocks) {
            tiers_->Write(node_,
                          std::span<const ChainHash>(r.req.chain.data() + first, blocks - first),
                          first);
          }
          (void)bt;
        }
      }
    }
    // Finished requests leave; their blocks stay cached, one recency stamp per request.
    for (auto it = running_.begin(); it != running_.end();) {
      Running& r = **it;
      const uint32_t want = std::max<uint32_t>(r.req.output_tokens, 1);
      if (!(r.prefill_done && r.generated >= want)) {
        ++it;
        continue;
      }
      r.result.finished_ms = now_ms_;
      const uint64_t stamp = next_stamp_++;
      for (const ChainHash& key : r.pinned) Unpin(key, stamp);
      reserved_ -= r.reserved;
      done.push_back(r.result);
      it = running_.erase(it);
    }
  }
  AdmitWaiting(now_ms_);
  StartStep(now_ms_);
  return done;
}

EngineLoad Engine::Load() const {
  EngineLoad load;
  load.queued_requests = static_cast<uint32_t>(waiting_.size());
  for (const EngineRequest& w : waiting_) load.prefill_tokens_in_flight += w.expected_prefill_tokens;
  for (const auto& r : running_) {
    if (r->ready_ms > now_ms_) {
      ++load.queued_requests;
    } else {
      ++load.running_requests;
    }
    load.prefill_tokens_in_flight += r->req.input_tokens - r->computed;
  }
  load.free_hbm_blocks = FreeBlocks() + evictable_.size();
  return load;
}

}  // namespace strata::bench
