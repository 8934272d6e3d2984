#include "bench/sim_cluster.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "cachenode/memory_backend.h"
#include "cachenode/memory_tier.h"
#include "cachenode/ssd_tier.h"
#include "cachenode/tiered_store.h"
#include "common/checksum.h"
#include "common/clock.h"
#include "common/namespace_id.h"
#include "common/status_macros.h"
#include "router/router_core.h"

namespace strata::bench {
namespace {

using cachenode::BlockEventKind;
using cachenode::TierKind;
using common::ChainHash;

// Stand-in payload of a block: its hash twice. Real bytes, so the store's checksums still run.
constexpr uint64_t kStandInBytes = 64;
// The DRAM arena's slot for a stand-in: one 4 KiB slab per block makes capacity exact in blocks.
constexpr uint64_t kDramSlotBytes = 4096;

std::array<std::byte, kStandInBytes> StandIn(const ChainHash& h) {
  std::array<std::byte, kStandInBytes> out;
  for (size_t i = 0; i < kStandInBytes; ++i) out[i] = std::byte{h.bytes[i % h.bytes.size()]};
  return out;
}

}  // namespace

struct SimCluster::Impl : cachenode::BlockEventSink {
  struct Node {
    std::string id;
    router::NodeSlot slot = router::kNoSlot;
    std::unique_ptr<cachenode::TieredStore> store;
    std::vector<router::IngestEvent> pending;
    uint64_t sequence = 0;
  };

  common::ManualClock clock;
  std::unique_ptr<router::RouterCore> core;
  common::NamespaceId ns = common::NamespaceIdOf(kReplayNamespace);
  std::vector<Node> nodes;
  std::vector<int> node_of_slot;
  std::string scratch;
  int sink_node = -1;  // the node whose store is being called (events carry no node)

  void Push(int node, router::IngestEvent::Kind kind, router::Tier tier,
            std::span<const ChainHash> keys) {
    auto& pending = nodes[node].pending;
    if (pending.empty() || pending.back().kind != kind || pending.back().tier != tier) {
      pending.push_back(router::IngestEvent{kind, tier, {}});
    }
    for (const ChainHash& h : keys) pending.back().keys.push_back(router::IndexKeyOf(ns, h));
  }

  void OnBlockEvent(BlockEventKind kind, TierKind tier, const common::BlockKey& key) override {
    Push(sink_node,
         kind == BlockEventKind::kStored ? router::IngestEvent::Kind::kStored
                                         : router::IngestEvent::Kind::kRemoved,
         static_cast<router::Tier>(static_cast<int>(tier)),
         std::span<const ChainHash>(&key.hash, 1));
  }
};

SimCluster::SimCluster(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SimCluster::~SimCluster() {
  for (auto& n : impl_->nodes) {
    if (n.store != nullptr) n.store->SetEventSink(nullptr);
    n.store.reset();
  }
  std::error_code ec;
  std::filesystem::remove_all(impl_->scratch, ec);
}

absl::StatusOr<std::unique_ptr<SimCluster>> SimCluster::Create(const ReplayOptions& options,
                                                               const EngineParams& params,
                                                               uint32_t block_tokens,
                                                               const std::string& scratch_dir) {
  auto impl = std::make_unique<Impl>();
  impl->scratch = scratch_dir;
  std::error_code ec;
  std::filesystem::create_directories(scratch_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create ", scratch_dir, ": ", ec.message()));
  }
  router::CostModelParams cost = params.cost.params();
  cost.block_tokens = block_tokens;
  if (options.ssd_gbps > 0) cost.ssd_gbps = options.ssd_gbps;
  else cost.ssd_gbps = params.default_ssd_gbps;
  if (options.peer_gbps > 0) cost.peer_gbps = options.peer_gbps;
  router::RouterOptions ro;
  ro.experiment = options.experiment;
  ro.seed = options.seed;
  ro.route_memory.horizon = absl::Milliseconds(options.route_memory_s * 1000);
  STRATA_ASSIGN_OR_RETURN(impl->core, router::RouterCore::Create(ro, router::CostModel(cost),
                                                                 &impl->clock));

  const uint64_t block_bytes = params.cost.params().kv_bytes_per_token * block_tokens;
  const bool dram = options.tiers == TierSet::kHbmDram || options.tiers == TierSet::kHbmDramSsd;
  const bool ssd = options.tiers == TierSet::kHbmDramSsd || options.tiers == TierSet::kHbmSsd;
  const uint64_t dram_blocks = options.dram_bytes / block_bytes;
  const uint64_t ssd_blocks = options.ssd_bytes / block_bytes;
  if (dram && dram_blocks == 0) {
    return absl::InvalidArgumentError("DRAM capacity is less than one block");
  }
  if (ssd && ssd_blocks == 0) return absl::InvalidArgumentError("SSD capacity is less than one block");

  impl->nodes.resize(options.nodes);
  for (int k = 0; k < options.nodes; ++k) {
    Impl::Node& n = impl->nodes[k];
    n.id = absl::StrCat("node-", k);
    if (dram || ssd) {
      cachenode::StoreTiers tiers;
      if (dram) {
        cachenode::HostMemoryOptions mo;
        mo.bytes = dram_blocks * kDramSlotBytes;
        mo.shared_memfd = false;
        mo.pin_for_gpu = false;
        mo.name = n.id;
        STRATA_ASSIGN_OR_RETURN(auto memory, cachenode::CreateHostMemory(mo));
        cachenode::MemoryTierOptions to;
        to.slab_bytes = kDramSlotBytes;
        tiers.dram = std::make_unique<cachenode::MemoryTier>(to, std::move(memory));
      }
      if (ssd) {
        cachenode::SsdTierOptions so;
        so.path = absl::StrCat(scratch_dir, "/", n.id);
        so.capacity_bytes = ssd_blocks * kStandInBytes;
        so.use_direct_io = false;  // stand-ins are tiny; the page cache is fine
        so.write_buffer_bytes = 4 << 20;
        STRATA_ASSIGN_OR_RETURN(tiers.ssd, cachenode::SsdTier::Open(so));
      }
      cachenode::TieredStoreOptions sto;
      sto.max_block_bytes = kDramSlotBytes;
      sto.write_behind_batch_bytes = 64 * kStandInBytes;
      STRATA_ASSIGN_OR_RETURN(n.store, cachenode::TieredStore::Open(sto, std::move(tiers)));
      n.store->SetEventSink(impl.get());
    }
    STRATA_ASSIGN_OR_RETURN(router::RegisterResult reg,
                            impl->core->RegisterNode(n.id, absl::StrCat("sim:", k), 1, {}));
    n.slot = reg.slot;
    if (impl->node_of_slot.size() <= n.slot) impl->node_of_slot.resize(n.slot + 1, -1);
    impl->node_of_slot[n.slot] = k;
    // An empty store: the snapshot is one empty last chunk.
    impl->core->ingest().ApplySnapshotChunk(n.slot, 1, 0, 0, true, {});
  }
  return std::unique_ptr<SimCluster>(new SimCluster(std::move(impl)));
}

std::vector<bool> SimCluster::Match(int node, std::span<const ChainHash> chain) {
  std::vector<bool> out;
  auto& store = impl_->nodes[node].store;
  if (store == nullptr) return out;
  const cachenode::LookupResult r = store->Lookup(impl_->ns, chain);
  out.reserve(r.matched_blocks);
  for (TierKind t : r.tiers) out.push_back(t == TierKind::kSsd);
  return out;
}

void SimCluster::Read(int node, std::span<const ChainHash> chain) {
  auto& store = impl_->nodes[node].store;
  if (store == nullptr) return;
  impl_->sink_node = node;
  (void)store->GetChain(impl_->ns, chain, /*stop_at_first_miss=*/true);
}

void SimCluster::ReadPeer(int peer, std::span<const ChainHash> chain) { Read(peer, chain); }

void SimCluster::Write(int node, std::span<const ChainHash> chain, uint32_t first_position) {
  auto& store = impl_->nodes[node].store;
  if (store == nullptr) return;
  impl_->sink_node = node;
  for (size_t i = 0; i < chain.size(); ++i) {
    const auto payload = StandIn(chain[i]);
    cachenode::BlockInfo info;
    info.key = common::BlockKey{impl_->ns, chain[i]};
    info.size = kStandInBytes;
    info.checksum = common::Checksum(std::span<const std::byte>(payload));
    info.chain_position = first_position + static_cast<uint32_t>(i);
    (void)store->Put(info, payload, /*from_gpu=*/false);  // a full tier drops it: a miss later
  }
  while (store->FlushWriteBehind() > 0) {
  }
}

void SimCluster::HbmStored(int node, std::span<const ChainHash> chain) {
  impl_->Push(node, router::IngestEvent::Kind::kStored, router::Tier::kHbm, chain);
}

void SimCluster::HbmRemoved(int node, std::span<const ChainHash> chain) {
  impl_->Push(node, router::IngestEvent::Kind::kRemoved, router::Tier::kHbm, chain);
}

void SimCluster::AdvanceTo(double ms) {
  impl_->clock.Set(absl::UnixEpoch() + absl::Microseconds(static_cast<int64_t>(ms * 1000)));
}

absl::StatusOr<RouteAnswer> SimCluster::Route(const RouteCall& call) {
  router::RouteQuery q;
  q.keys.reserve(call.chain->size());
  for (const ChainHash& h : *call.chain) q.keys.push_back(router::IndexKeyOf(impl_->ns, h));
  q.prompt_tokens = call.prompt_tokens;
  q.block_tokens = call.block_tokens;
  q.split_key = call.request_id;
  q.request_hash = common::Checksum(call.request_id);
  STRATA_ASSIGN_OR_RETURN(router::RouteDecision d, impl_->core->Route(q));
  RouteAnswer a;
  a.node = impl_->node_of_slot[d.chosen->slot];
  a.decision_id = d.decision_id;
  a.policy = d.policy;
  if (!d.peers.empty()) {
    const router::PeerChoice& p = d.peers.front();
    a.peer.node = impl_->node_of_slot[p.member->slot];
    a.peer.from_block = p.from_block;
    a.peer.blocks = p.blocks;
    a.peer.from_ssd = p.slowest == router::Tier::kSsd;
  }
  return a;
}

void SimCluster::ReportOutcome(const RouteAnswer& answer, const RequestResult& result) {
  (void)impl_->core->ReportOutcome(answer.decision_id, result.first_token_ms - result.arrival_ms,
                                   result.input_tokens, result.cached_tokens);
}

void SimCluster::ReportLoad(int node, const EngineLoad& load) {
  router::NodeLoad l;
  l.queued_requests = load.queued_requests;
  l.running_requests = load.running_requests;
  l.prefill_tokens_in_flight = load.prefill_tokens_in_flight;
  l.free_hbm_blocks = load.free_hbm_blocks;
  (void)impl_->core->Heartbeat(impl_->nodes[node].id, 1, l);
}

void SimCluster::Flush() {
  for (Impl::Node& n : impl_->nodes) {
    if (n.pending.empty()) continue;
    impl_->core->ingest().ApplyBatch(n.slot, 1, ++n.sequence, n.pending);
    n.pending.clear();
  }
}

router::ExperimentReportData SimCluster::ExperimentReport() {
  return impl_->core->ExperimentReport();
}

void SimCluster::Finish(ReplayResult* result) { (void)result; }

}  // namespace strata::bench
