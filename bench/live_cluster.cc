#include "bench/live_cluster.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/embedded_models.h"
#include "bench/sim_cluster.h"
#include "clients/cache_node_client.h"
#include "clients/router_client.h"
#include "common/checksum.h"
#include "common/namespace_id.h"
#include "common/status_macros.h"
#include "google/protobuf/util/json_util.h"
#include "strata/v1/cost_model.pb.h"
#include "tests/node_process.h"

namespace strata::bench {
namespace {

using common::ChainHash;

// One Put in this many is followed by polling the router until the block shows in its index.
constexpr int kLagSampleEvery = 8;
// Engine load reports to a node at most this often (wall time).
constexpr absl::Duration kLoadReportInterval = absl::Milliseconds(20);
// Unchanged load is re-sent this often; nodes keep a report for --engine-load-ttl (1 s here).
constexpr absl::Duration kLoadRefresh = absl::Milliseconds(250);

std::string SelfDir() {
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : exe.parent_path().string();
}

// The router's cost model with this replay's SSD and network figures and block size, as a file.
absl::StatusOr<std::string> WriteCostModel(const ReplayOptions& options, double ssd_gbps,
                                           uint32_t block_tokens, const std::string& dir) {
  strata::v1::CostModelConfig config;
  std::string text(kEmbeddedCostModelJson);
  if (!options.cost_model_file.empty()) {
    std::ifstream in(options.cost_model_file);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", options.cost_model_file));
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  if (!google::protobuf::util::JsonStringToMessage(text, &config).ok()) {
    return absl::InvalidArgumentError("cost model: bad JSON");
  }
  config.mutable_ssd_read_gbps()->set_value(ssd_gbps);
  config.mutable_ssd_read_gbps()->set_from("strata-bench replay --ssd-gbps");
  config.mutable_block_tokens()->set_value(block_tokens);
  if (options.peer_gbps > 0) config.mutable_peer_gbps()->set_value(options.peer_gbps);
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(config, &json).ok()) {
    return absl::InternalError("cost model: cannot write JSON");
  }
  const std::string path = dir + "/cost_model.json";
  std::ofstream out(path);
  out << json;
  if (!out) return absl::FailedPreconditionError(absl::StrCat("cannot write ", path));
  return path;
}

}  // namespace

struct LiveCluster::Impl {
  ReplayOptions options;
  uint32_t block_tokens = 512;
  std::string dir;
  common::NamespaceId ns = common::NamespaceIdOf(kReplayNamespace);
  std::unique_ptr<tests::NodeProcess> router;
  std::vector<std::unique_ptr<tests::NodeProcess>> nodes;
  std::unique_ptr<clients::RouterClient> router_client;
  std::vector<std::unique_ptr<clients::CacheNodeClient>> node_clients;
  absl::flat_hash_map<std::string, int> node_index;
  std::vector<std::optional<EngineLoad>> last_load;  // per node, as last reported by its engine
  std::vector<bool> load_changed;
  std::vector<absl::Time> last_load_report;
  absl::Time start;
  double sim_ms = 0;
  uint64_t writes = 0;
  uint64_t rpc_errors = 0;
  std::string first_error;
  std::vector<double> route_us, lag_ms;
  LiveFigures figures;

  void Error(const absl::Status& s) {
    if (s.ok()) return;
    if (rpc_errors++ == 0) first_error = s.ToString();
  }

  std::string Payload(const ChainHash& h) const {
    std::string p(options.live.block_bytes, '\0');
    for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<char>(h.bytes[i % 32] ^ (i >> 5));
    return p;
  }

  void ReadFrom(int node, std::span<const ChainHash> chain, bool peer) {
    absl::StatusOr<std::vector<clients::GetResult>> got =
        node_clients[node]->Get(ns, chain, /*stop_at_first_miss=*/true);
    if (!got.ok()) return Error(got.status());
    for (const clients::GetResult& g : *got) {
      if (!g.found) continue;
      const int slot = peer ? 2 : (g.tier == strata::v1::TIER_SSD ? 1 : 0);
      figures.bytes_read[slot] += g.payload.size();
    }
  }

  // Polls Locate until `node` holds `key`; records the wait (from `acked`).
  void SampleLag(int node, const ChainHash& key, absl::Time acked) {
    clients::ChainQuery q;
    q.namespace_name = kReplayNamespace;
    q.chain_hashes = {key};
    const std::string& id = nodes_ids[node];
    const absl::Time give_up = acked + absl::Seconds(2);
    while (absl::Now() < give_up) {
      absl::StatusOr<clients::LocateResult> r = router_client->Locate(q);
      if (!r.ok()) return Error(r.status());
      for (const clients::NodeHolding& h : r->nodes) {
        if (h.node_id == id) {
          lag_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - acked));
          return;
        }
      }
      absl::SleepFor(absl::Microseconds(200));
    }
  }

  std::vector<std::string> nodes_ids;

  // Sends each engine's load to its node: a change at most every kLoadReportInterval, and the
  // last figures again every kLoadRefresh so a long step does not let the report expire there.
  void ReportLoads() {
    const absl::Time now = absl::Now();
    for (size_t k = 0; k < last_load.size(); ++k) {
      if (!last_load[k].has_value()) continue;
      const absl::Duration age = now - last_load_report[k];
      if (!(load_changed[k] && age >= kLoadReportInterval) && age < kLoadRefresh) continue;
      const EngineLoad& l = *last_load[k];
      clients::EngineLoadReport r;
      r.engine_id = absl::StrCat("engine-", k);
      r.queued_requests = l.queued_requests;
      r.running_requests = l.running_requests;
      r.prefill_tokens_in_flight = l.prefill_tokens_in_flight;
      r.free_hbm_blocks = l.free_hbm_blocks;
      Error(node_clients[k]->ReportEngineLoad(r).status());
      load_changed[k] = false;
      last_load_report[k] = now;
    }
  }
};

LiveCluster::LiveCluster(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

LiveCluster::~LiveCluster() {
  impl_->node_clients.clear();
  impl_->router_client.reset();
  for (auto& n : impl_->nodes) {
    if (n->running()) (void)n->Terminate(absl::Seconds(20));
  }
  if (impl_->router != nullptr && impl_->router->running()) {
    (void)impl_->router->Terminate(absl::Seconds(20));
  }
  std::error_code ec;
  std::filesystem::remove_all(impl_->dir, ec);
}

absl::StatusOr<std::unique_ptr<LiveCluster>> LiveCluster::Create(const ReplayOptions& options,
                                                                 const EngineParams& params,
                                                                 uint32_t block_tokens,
                                                                 const ProgressFn& progress) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->block_tokens = block_tokens;
  const std::string bin = options.live.bin_dir.empty() ? SelfDir() : options.live.bin_dir;
  const std::string router_bin = bin + "/strata-router";
  const std::string node_bin = bin + "/strata-cachenode";
  for (const std::string& b : {router_bin, node_bin}) {
    if (access(b.c_str(), X_OK) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat(b, " not found: build it, or pass --bin-dir DIR"));
    }
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp",
                                   "/strata-live-XXXXXX");
  if (mkdtemp(templ.data()) == nullptr) {
    return absl::FailedPreconditionError("cannot create a scratch directory");
  }
  impl->dir = templ;
  auto cluster = std::unique_ptr<LiveCluster>(new LiveCluster(std::move(impl)));
  Impl& c = *cluster->impl_;

  const double ssd_gbps = options.ssd_gbps > 0 ? options.ssd_gbps : params.default_ssd_gbps;
  STRATA_ASSIGN_OR_RETURN(std::string cost_file,
                          WriteCostModel(options, ssd_gbps, block_tokens, c.dir));
  c.router = std::make_unique<tests::NodeProcess>(router_bin);
  STRATA_ASSIGN_OR_RETURN(
      std::string router_addr,
      c.router->Start({"--listen", "127.0.0.1:0", "--experiment", options.experiment,
                       "--cost-model", cost_file, "--route-memory",
                       absl::StrCat(options.route_memory_s * 1000, "ms")},
                      absl::Seconds(30)));
  if (progress) progress("live: strata-router serving on " + router_addr);
  STRATA_ASSIGN_OR_RETURN(c.router_client, clients::RouterClient::Connect(router_addr));

  // Capacities in blocks, as in sim mode, times the scaled payload size.
  const uint64_t real_block = params.cost.params().kv_bytes_per_token * block_tokens;
  const bool dram = options.tiers == TierSet::kHbmDram || options.tiers == TierSet::kHbmDramSsd;
  const bool ssd = options.tiers == TierSet::kHbmDramSsd || options.tiers == TierSet::kHbmSsd;
  const uint64_t dram_bytes = dram ? options.dram_bytes / real_block * options.live.block_bytes : 0;
  const uint64_t ssd_bytes = ssd ? options.ssd_bytes / real_block * options.live.block_bytes : 0;
  c.figures.block_bytes = options.live.block_bytes;
  c.figures.payload_scale =
      static_cast<double>(real_block) / static_cast<double>(options.live.block_bytes);
  for (int k = 0; k < options.nodes; ++k) {
    const std::string id = absl::StrCat("node-", k);
    c.nodes_ids.push_back(id);
    c.node_index[id] = k;
    auto node = std::make_unique<tests::NodeProcess>(node_bin);
    // The store needs some DRAM arena even for hbm+ssd; a tiny one keeps SSD the backing tier.
    const uint64_t arena = dram_bytes > 0 ? dram_bytes : options.live.block_bytes * 4;
    STRATA_ASSIGN_OR_RETURN(
        std::string addr,
        node->Start({"--listen", "127.0.0.1:0", "--data-dir", absl::StrCat(c.dir, "/", id),
                     "--dram-bytes", absl::StrCat(arena), "--ssd-bytes", absl::StrCat(ssd_bytes),
                     "--namespaces", kReplayNamespace, "--router", router_addr, "--node-id", id,
                     "--heartbeat-interval", "100ms", "--engine-load-ttl", "1s",
                     "--ssd-direct-io=false"},
                    absl::Seconds(30)));
    clients::ClientOptions co;
    co.target = addr;
    STRATA_ASSIGN_OR_RETURN(auto client, clients::CacheNodeClient::Connect(co));
    c.node_clients.push_back(std::move(client));
    c.nodes.push_back(std::move(node));
    if (progress) progress(absl::StrCat("live: strata-cachenode ", id, " serving on ", addr));
  }
  // Every node registered and synced before the first request.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  for (;;) {
    absl::StatusOr<std::vector<clients::NodeStatus>> list = c.router_client->ListNodes();
    int synced = 0;
    if (list.ok()) {
      for (const auto& n : *list) synced += n.synced ? 1 : 0;
    }
    if (synced == options.nodes) break;
    if (absl::Now() > deadline) {
      return absl::UnavailableError(
          absl::StrCat("only ", synced, " of ", options.nodes, " nodes synced with the router"));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  c.last_load.resize(options.nodes);
  c.load_changed.assign(options.nodes, false);
  c.last_load_report.assign(options.nodes, absl::InfinitePast());
  c.start = absl::Now();
  return cluster;
}

std::vector<bool> LiveCluster::Match(int node, std::span<const ChainHash> chain) {
  std::vector<bool> out;
  absl::StatusOr<strata::v1::LookupResponse> r = impl_->node_clients[node]->Lookup(impl_->ns, chain);
  if (!r.ok()) {
    impl_->Error(r.status());
    return out;
  }
  for (int t : r->tiers()) out.push_back(t == strata::v1::TIER_SSD);
  return out;
}

void LiveCluster::Read(int node, std::span<const ChainHash> chain) {
  impl_->ReadFrom(node, chain, false);
}

void LiveCluster::ReadPeer(int peer, std::span<const ChainHash> chain) {
  impl_->ReadFrom(peer, chain, true);
}

void LiveCluster::Write(int node, std::span<const ChainHash> chain, uint32_t first_position) {
  std::vector<std::string> payloads;
  std::vector<clients::PutBlock> blocks;
  payloads.reserve(chain.size());
  for (size_t i = 0; i < chain.size(); ++i) {
    payloads.push_back(impl_->Payload(chain[i]));
    clients::PutBlock b;
    b.hash = chain[i];
    b.payload = std::as_bytes(std::span<const char>(payloads.back()));
    b.chain_position = first_position + static_cast<uint32_t>(i);
    blocks.push_back(b);
  }
  absl::StatusOr<std::vector<clients::PutResult>> r = impl_->node_clients[node]->Put(impl_->ns, blocks);
  const absl::Time acked = absl::Now();
  if (!r.ok()) return impl_->Error(r.status());
  for (size_t i = 0; i < r->size(); ++i) {
    if ((*r)[i].status.ok()) impl_->figures.bytes_written += payloads[i].size();
  }
  if (++impl_->writes % kLagSampleEvery == 0 && !chain.empty()) {
    impl_->SampleLag(node, chain.back(), acked);
  }
}

// The router learns of blocks from the nodes' streams only in live mode (see the header).
void LiveCluster::HbmStored(int, std::span<const ChainHash>) {}
void LiveCluster::HbmRemoved(int, std::span<const ChainHash>) {}

void LiveCluster::AdvanceTo(double ms) {
  impl_->sim_ms = ms;
  const absl::Time target =
      impl_->start + absl::Microseconds(static_cast<int64_t>(ms * 1000 / impl_->options.live.speedup));
  // In slices, so a cancelled replay (Ctrl-C) stops within one.
  for (absl::Time now = absl::Now(); target > now; now = absl::Now()) {
    if (impl_->options.cancel != nullptr && impl_->options.cancel->load()) return;
    impl_->ReportLoads();
    absl::SleepFor(std::min(target - now, absl::Milliseconds(100)));
  }
}

absl::StatusOr<RouteAnswer> LiveCluster::Route(const RouteCall& call) {
  clients::RouteQuery q;
  q.namespace_name = kReplayNamespace;
  q.chain_hashes = *call.chain;
  q.prompt_tokens = call.prompt_tokens;
  q.block_tokens = call.block_tokens;
  q.request_id = call.request_id;
  const absl::Time t0 = absl::Now();
  STRATA_ASSIGN_OR_RETURN(clients::RouteResult r, impl_->router_client->Route(q));
  impl_->route_us.push_back(absl::ToDoubleMicroseconds(absl::Now() - t0));
  RouteAnswer a;
  auto it = impl_->node_index.find(r.node_id);
  if (it == impl_->node_index.end()) {
    return absl::InternalError(absl::StrCat("router chose unknown node ", r.node_id));
  }
  a.node = it->second;
  a.decision_id = r.decision_id;
  a.policy = r.policy;
  if (!r.peers.empty()) {
    auto p = impl_->node_index.find(r.peers.front().node_id);
    if (p != impl_->node_index.end()) {
      a.peer.node = p->second;
      a.peer.from_block = r.peers.front().from_block;
      a.peer.blocks = r.peers.front().blocks;
      a.peer.from_ssd = r.peers.front().tier == strata::v1::TIER_SSD;
    }
  }
  return a;
}

void LiveCluster::ReportOutcome(const RouteAnswer& answer, const RequestResult& result) {
  clients::RouteOutcome o;
  o.decision_id = answer.decision_id;
  o.ttft_ms = result.first_token_ms - result.arrival_ms;
  o.prompt_tokens = result.input_tokens;
  o.cached_tokens = result.cached_tokens;
  impl_->Error(impl_->router_client->ReportOutcome(o));
}

void LiveCluster::ReportLoad(int node, const EngineLoad& load) {
  impl_->last_load[node] = load;
  impl_->load_changed[node] = true;
}

void LiveCluster::Flush() { impl_->ReportLoads(); }

router::ExperimentReportData LiveCluster::ExperimentReport() {
  router::ExperimentReportData out;
  absl::StatusOr<clients::ExperimentReport> r = impl_->router_client->GetExperimentReport();
  if (!r.ok()) {
    impl_->Error(r.status());
    return out;
  }
  out.spec = r->spec;
  out.requests = r->requests;
  for (const clients::PolicyFigures& f : r->policies) {
    router::PolicyReport p;
    p.policy = f.policy;
    p.weight = f.weight;
    p.decisions = f.decisions;
    p.mean_predicted_ttft_ms = f.mean_predicted_ttft_ms;
    p.shadow_requests = f.shadow_requests;
    p.mean_shadow_hit_blocks = f.mean_shadow_hit_blocks;
    p.shadow_agreements = f.shadow_agreements;
    out.policies.push_back(std::move(p));
  }
  return out;
}

void LiveCluster::Finish(ReplayResult* result) {
  LiveFigures& f = impl_->figures;
  f.route_us = PercentilesOf(impl_->route_us);
  f.event_lag_samples = impl_->lag_ms.size();
  f.event_lag_ms = PercentilesOf(impl_->lag_ms);
  f.wall_s = absl::ToDoubleSeconds(absl::Now() - impl_->start);
  f.rpc_errors = impl_->rpc_errors;
  f.first_error = impl_->first_error;
  result->live = f;
}

}  // namespace strata::bench
