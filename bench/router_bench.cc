#include "bench/router_bench.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "bench/process_stats.h"
#include "bench/router_workload.h"
#include "common/clock.h"
#include "common/json_text.h"
#include "common/status_macros.h"
#include "router/event_decode.h"
#include "router/event_ingest.h"
#include "router/global_index.h"
#include "router/router_core.h"
#include "strata/v1/router.pb.h"

namespace strata::bench {
namespace {

using router::EventIngest;
using router::GlobalIndex;
using router::IndexKey;
using router::IngestEvent;
using router::IngestReply;
using router::NodeMatch;
using router::NodeSlot;
using router::Tier;
using Clock = std::chrono::steady_clock;
using router_workload::ChainPlan;
using router_workload::Event;
using router_workload::kEpoch;
using router_workload::Mix;
using router_workload::Rng;
using router_workload::SecondsBetween;
using router_workload::Streams;

// Targets from the router issue (bench/RESULTS.md, "Router"): one router keeps up with 64 busy
// nodes' event streams, a route costs less than a network round trip, and the index stays within
// half of a published hash-table index's ~64 bytes per (block, node) entry.
constexpr double kIngestMinEventsPerSecond = 10e6;
constexpr double kRouteMaxP99Us = 10;
constexpr double kMaxBytesPerEntry = 32;

constexpr common::NamespaceId kNamespace = 0x0123456789abcdefull;  // proto path only

struct Latency {
  double p50_us = 0, p99_us = 0, p999_us = 0, mean_us = 0, max_us = 0;
  double mean_best_match = 0;  // blocks matched by the best node, averaged over requests
  uint64_t calls = 0;
};

Latency Summarize(std::vector<uint32_t>& ns, double best_match_sum) {
  Latency l;
  if (ns.empty()) return l;
  std::sort(ns.begin(), ns.end());
  const auto at = [&](double q) {
    const size_t i =
        std::min(ns.size() - 1, static_cast<size_t>(q * static_cast<double>(ns.size())));
    return ns[i] / 1e3;
  };
  l.p50_us = at(0.5);
  l.p99_us = at(0.99);
  l.p999_us = at(0.999);
  l.max_us = ns.back() / 1e3;
  double sum = 0;
  for (uint32_t v : ns) sum += v;
  l.mean_us = sum / static_cast<double>(ns.size()) / 1e3;
  l.calls = ns.size();
  l.mean_best_match = best_match_sum / static_cast<double>(ns.size());
  return l;
}

// Times `routes` Match calls (after routes / 10 untimed warm-up calls), each on its own clock.
// Requests: a live chain (per Streams::LiveChain from `live`, a copy taken before the phase), half
// of them cut at a random depth and continued with blocks nobody holds.
Latency MeasureRoutes(const GlobalIndex& index, const ChainPlan& plan, const Streams& live,
                      const RouterBenchOptions& o, uint64_t seed) {
  Rng rng(seed);
  std::vector<IndexKey> keys;
  keys.reserve(o.chain_blocks);
  std::vector<NodeMatch> out;
  out.reserve(o.nodes);
  std::vector<uint32_t> ns;
  ns.reserve(o.routes);
  double best_sum = 0;
  const uint64_t warmup = o.routes / 10;
  uint64_t fresh = 0;
  for (uint64_t i = 0; i < warmup + o.routes; ++i) {
    plan.RequestKeys(live.LiveChain(rng), &keys);
    if (rng.Next() % 2 == 0) {
      const uint64_t depth = 1 + rng.Below(keys.size());
      for (size_t b = depth; b < keys.size(); ++b) keys[b] = Mix(seed ^ (1ull << 62) ^ fresh++);
    }
    const Clock::time_point start = Clock::now();
    index.Match(keys, &out);
    const Clock::time_point end = Clock::now();
    if (i < warmup) continue;
    const auto elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count();
    ns.push_back(static_cast<uint32_t>(std::min<int64_t>(elapsed, UINT32_MAX)));
    uint32_t best = 0;
    for (const NodeMatch& m : out) best = std::max(best, m.matched);
    best_sum += best;
  }
  return Summarize(ns, best_sum);
}

uint64_t RssBytes() {
  absl::StatusOr<MemoryCounters> m = ReadMemoryCounters();
  return m.ok() ? m->rss_bytes : 0;
}

// One serialized EventBatch (what a node sends) and the slot its stream is bound to.
struct WireBatch {
  NodeSlot node;
  std::string bytes;
};

WireBatch Serialize(NodeSlot node, uint64_t sequence, std::span<const IngestEvent> events) {
  strata::v1::EventBatch batch;
  batch.set_node_id(absl::StrCat("node-", node));
  batch.set_epoch(kEpoch);
  batch.set_sequence(sequence);
  for (const IngestEvent& e : events) {
    strata::v1::BlockEvent* b = batch.add_events();
    b->set_kind(e.kind == IngestEvent::Kind::kStored ? strata::v1::BlockEvent::STORED
                                                     : strata::v1::BlockEvent::REMOVED);
    b->set_tier(static_cast<strata::v1::Tier>(static_cast<int>(e.tier) + 1));
    b->set_namespace_id(kNamespace);
    std::string* raw = b->mutable_chain_hashes();
    raw->resize(e.keys.size() * common::kChainHashBytes);
    for (size_t k = 0; k < e.keys.size(); ++k) {
      // The first 8 bytes decode back to the key; the other 24 stand in for the rest of the hash.
      const uint64_t head = e.keys[k] ^ kNamespace;
      char* at = raw->data() + k * common::kChainHashBytes;
      std::memcpy(at, &head, sizeof(head));
      for (size_t w = 1; w < 4; ++w) {
        const uint64_t filler = Mix(head + w);
        std::memcpy(at + w * 8, &filler, sizeof(filler));
      }
    }
  }
  return WireBatch{node, batch.SerializeAsString()};
}

RouterFigure Figure(std::string metric, double value, std::string unit, std::string note,
                    std::optional<double> min = std::nullopt,
                    std::optional<double> max = std::nullopt) {
  RouterFigure f;
  f.metric = std::move(metric);
  f.value = value;
  f.unit = std::move(unit);
  f.target_min = min;
  f.target_max = max;
  f.note = std::move(note);
  return f;
}

void AddLatencyFigures(const std::string& prefix, const Latency& l, const std::string& note,
                       std::vector<RouterFigure>* figures) {
  figures->push_back(Figure(prefix + "_p50", l.p50_us, "us", note));
  figures->push_back(Figure(prefix + "_p99", l.p99_us, "us", note, std::nullopt, kRouteMaxP99Us));
  figures->push_back(Figure(prefix + "_p999", l.p999_us, "us",
                            absl::StrFormat("max %.1f us, mean %.2f us", l.max_us, l.mean_us)));
}

}  // namespace

absl::Status RouterBenchOptions::Validate() const {
  if (nodes == 0 || nodes > (1u << 20)) {
    return absl::InvalidArgumentError("--nodes must be in [1, 1048576]");
  }
  if (chain_blocks < 2 || chain_blocks > 1024) {
    return absl::InvalidArgumentError("--chain must be in [2, 1024]");
  }
  if (shared_blocks >= chain_blocks) {
    return absl::InvalidArgumentError("--shared-blocks must be less than --chain");
  }
  if (shared_prefixes == 0) return absl::InvalidArgumentError("--shared-prefixes must be > 0");
  if (entries < uint64_t{nodes} * shared_prefixes * shared_blocks + chain_blocks) {
    return absl::InvalidArgumentError(
        "--blocks must exceed nodes x shared-prefixes x shared-blocks (the system prompts) plus "
        "one chain");
  }
  if (batch_keys == 0) return absl::InvalidArgumentError("--batch-keys must be > 0");
  if (routes == 0) return absl::InvalidArgumentError("--routes must be > 0");
  if (shards == 0 || shards > 1024)
    return absl::InvalidArgumentError("--shards must be in [1, 1024]");
  return absl::OkStatus();
}

std::optional<bool> RouterFigure::TargetMet() const {
  if (!target_min && !target_max) return std::nullopt;
  return (!target_min || value >= *target_min) && (!target_max || value <= *target_max);
}

absl::StatusOr<RouterSummary> RunRouterBench(const RouterBenchOptions& o,
                                             const RouterProgressFn& progress) {
  STRATA_RETURN_IF_ERROR(o.Validate());
  const Clock::time_point run_start = Clock::now();
  RouterSummary summary;
  summary.options = o;
  const ChainPlan plan(o);

  const uint64_t rss_before = RssBytes();
  // The whole router core (membership, cost model, policies), so full routes can be timed too; the
  // index and ingest cases use its GlobalIndex and EventIngest directly.
  common::ManualClock clock(absl::FromUnixSeconds(1'700'000'000));
  router::RouterOptions core_options;
  core_options.index.shards = o.shards;
  core_options.membership.max_nodes = std::max<uint32_t>(o.nodes, 1);
  STRATA_ASSIGN_OR_RETURN(
      std::unique_ptr<router::RouterCore> core,
      router::RouterCore::Create(core_options, router::CostModel::Default(), &clock));
  GlobalIndex& index = core->index();
  EventIngest& ingest = core->ingest();
  Streams streams(o, plan, &ingest);

  // ---- Fill: every node registers, sends an empty snapshot, then its system prompts and chains.
  for (NodeSlot n = 0; n < o.nodes; ++n) {
    STRATA_ASSIGN_OR_RETURN(
        router::RegisterResult reg,
        core->RegisterNode(absl::StrCat("node-", n), "127.0.0.1:1", kEpoch, {}));
    if (reg.slot != n) return absl::InternalError("node slots are not dense");
    const IngestReply r = ingest.ApplySnapshotChunk(n, kEpoch, 0, 0, true, {});
    if (r.result != IngestReply::Result::kApplied) {
      return absl::InternalError(absl::StrCat("snapshot of node ", n, ": ", r.message));
    }
  }
  progress(absl::StrCat("filling the index: ", o.nodes, " nodes, ~", o.entries,
                        " (block, node) entries, chains of ", o.chain_blocks, " (",
                        o.shared_prefixes, " system prompts of ", o.shared_blocks,
                        " blocks on every node), batches of ", o.batch_keys, " keys..."));
  std::vector<std::vector<IngestEvent>> pending(o.nodes);
  std::vector<uint64_t> pending_keys(o.nodes, 0);
  double fill_seconds = 0;
  double fill_cpu_seconds = 0;
  const auto add = [&](NodeSlot n, IngestEvent e) -> absl::Status {
    pending_keys[n] += e.keys.size();
    pending[n].push_back(std::move(e));
    if (pending_keys[n] < o.batch_keys) return absl::OkStatus();
    STRATA_RETURN_IF_ERROR(streams.Apply(n, pending[n], &fill_seconds, &fill_cpu_seconds));
    pending[n].clear();
    pending_keys[n] = 0;
    return absl::OkStatus();
  };
  uint64_t expected_entries = 0;
  for (NodeSlot n = 0; n < o.nodes; ++n) {
    for (uint32_t p = 0; p < o.shared_prefixes; ++p) {
      std::vector<IndexKey> keys;
      for (uint32_t b = 0; b < o.shared_blocks; ++b) keys.push_back(plan.PromptKey(p, b));
      expected_entries += keys.size();
      STRATA_RETURN_IF_ERROR(
          add(n, Event(IngestEvent::Kind::kStored, Tier::kHbm, std::move(keys))));
    }
  }
  uint64_t chains = 0;
  std::vector<IndexKey> keys;
  for (; expected_entries < o.entries; ++chains) {
    if (chains % 20'000 == 0 && chains > 0) {
      progress(absl::StrFormat("  %d chains, %.1fM entries", chains, expected_entries / 1e6));
    }
    plan.UniqueKeys(chains, &keys);
    const Tier tier = plan.TierOf(chains);
    STRATA_RETURN_IF_ERROR(add(plan.HomeOf(chains), Event(IngestEvent::Kind::kStored, tier, keys)));
    expected_entries += keys.size();
    if (const std::optional<NodeSlot> replica = plan.ReplicaOf(chains)) {
      STRATA_RETURN_IF_ERROR(add(*replica, Event(IngestEvent::Kind::kStored, tier, keys)));
      expected_entries += keys.size();
    }
  }
  for (NodeSlot n = 0; n < o.nodes; ++n) {
    if (pending[n].empty()) continue;
    STRATA_RETURN_IF_ERROR(streams.Apply(n, pending[n], &fill_seconds, &fill_cpu_seconds));
    pending[n].clear();
  }
  pending.clear();
  pending.shrink_to_fit();
  streams.SetFilled(chains);
  const uint64_t fill_events = ingest.Counters().events_applied;
  const uint64_t rss_after = RssBytes();
  const router::GlobalIndexStats stats = index.Stats();
  summary.chains = chains;
  summary.blocks = stats.blocks;
  summary.entries = stats.entries;
  if (stats.entries != expected_entries) {
    return absl::InternalError(absl::StrCat("index holds ", stats.entries,
                                            " entries; the workload stored ", expected_entries));
  }
  const double fill_rate = static_cast<double>(fill_events) / fill_seconds;
  progress(absl::StrFormat("filled: %d entries, %d blocks, %d chains; %.2fM block events/s",
                           stats.entries, stats.blocks, chains, fill_rate / 1e6));
  summary.figures.push_back(Figure(
      "ingest_fill", fill_rate, "events/s",
      absl::StrFormat("ApplyBatch from empty to %.1fM entries (table growth included); "
                      "%.2f s in ApplyBatch; %.2fM per CPU-second",
                      stats.entries / 1e6, fill_seconds, fill_events / fill_cpu_seconds / 1e6),
      kIngestMinEventsPerSecond));

  // Spot check: a sample of chains match in full on their home (and replica) node.
  {
    Rng rng(o.seed ^ 0x5eed);
    std::vector<NodeMatch> out;
    for (int i = 0; i < 1000; ++i) {
      const uint64_t c = rng.Below(chains);
      plan.RequestKeys(c, &keys);
      index.Match(keys, &out);
      const auto home = std::find_if(out.begin(), out.end(),
                                     [&](const NodeMatch& m) { return m.node == plan.HomeOf(c); });
      if (home == out.end() || home->matched != o.chain_blocks || out.size() != o.nodes) {
        return absl::InternalError(
            absl::StrCat("chain ", c, " does not match in full on node ", plan.HomeOf(c)));
      }
    }
  }

  // ---- Memory.
  const double index_per_entry =
      static_cast<double>(stats.memory_bytes) / static_cast<double>(stats.entries);
  summary.figures.push_back(Figure(
      "index_bytes_per_entry", index_per_entry, "B",
      absl::StrFormat("GlobalIndex::Stats: %.1f MiB for %d entries in %d blocks (%.1f B/block)",
                      stats.memory_bytes / 1048576.0, stats.entries, stats.blocks,
                      static_cast<double>(stats.memory_bytes) / stats.blocks),
      std::nullopt, kMaxBytesPerEntry));
  if (rss_before > 0 && rss_after > rss_before) {
    summary.figures.push_back(Figure(
        "rss_bytes_per_entry",
        static_cast<double>(rss_after - rss_before) / static_cast<double>(stats.entries), "B",
        absl::StrFormat("process VmRSS grew %.1f MiB while filling (index, ingest state, "
                        "allocator slack)",
                        (rss_after - rss_before) / 1048576.0)));
  }

  // ---- Route latency on the filled index, alone.
  progress(absl::StrCat("timing ", o.routes, " routes of ", o.chain_blocks, " blocks..."));
  const std::string route_note =
      absl::StrFormat("Match of %d keys, one call timed at a time", o.chain_blocks);
  const Latency alone = MeasureRoutes(index, plan, streams, o, o.seed ^ 0x7077e);
  AddLatencyFigures("route", alone, route_note, &summary.figures);
  summary.figures.push_back(Figure("route_mean_best_match", alone.mean_best_match, "blocks",
                                   "blocks the best node held, averaged over requests"));
  progress(absl::StrFormat("routes: p50 %.2f us, p99 %.2f us, p99.9 %.2f us", alone.p50_us,
                           alone.p99_us, alone.p999_us));

  // ---- Full routes through RouterCore: index match, candidates, the locality policy's cost model
  // over every node, shadow scoring and bookkeeping. Heartbeats every 4096 routes clear the load
  // the router books between them, as live nodes' heartbeats would.
  {
    progress(absl::StrCat("timing ", o.routes, " full routes (locality policy) of ", o.chain_blocks,
                          " blocks..."));
    Rng rng(o.seed ^ 0xc0de);
    std::vector<uint32_t> ns;
    ns.reserve(o.routes);
    double best_sum = 0;
    const uint64_t warmup = o.routes / 10;
    router::RouteQuery q;
    for (uint64_t i = 0; i < warmup + o.routes; ++i) {
      if (i % 4096 == 0) {
        for (NodeSlot n = 0; n < o.nodes; ++n) {
          STRATA_RETURN_IF_ERROR(core->Heartbeat(absl::StrCat("node-", n), kEpoch, {}));
        }
      }
      plan.RequestKeys(streams.LiveChain(rng), &q.keys);
      q.request_hash = i;
      const Clock::time_point start = Clock::now();
      absl::StatusOr<router::RouteDecision> d = core->Route(q);
      const Clock::time_point end = Clock::now();
      if (!d.ok()) return d.status();
      if (i < warmup) continue;
      const auto elapsed =
          std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count();
      ns.push_back(static_cast<uint32_t>(std::min<int64_t>(elapsed, UINT32_MAX)));
      best_sum += d->match.matched;
    }
    const Latency full = Summarize(ns, best_sum);
    AddLatencyFigures(
        "route_full", full,
        absl::StrFormat("RouterCore::Route of %d keys against %d nodes: match, locality cost model "
                        "per node, bookkeeping",
                        o.chain_blocks, o.nodes),
        &summary.figures);
    summary.figures.push_back(Figure("route_full_mean_chosen_match", full.mean_best_match, "blocks",
                                     "blocks matched on the node the policy chose"));
    progress(absl::StrFormat("full routes: p50 %.2f us, p99 %.2f us, p99.9 %.2f us", full.p50_us,
                             full.p99_us, full.p999_us));
  }

  // ---- Steady-state churn through ApplyBatch.
  progress(absl::StrCat("churn: ", o.churn_events, " block events (remove oldest chain, store a ",
                        "new one)..."));
  std::vector<IngestEvent> events;
  double churn_seconds = 0;
  double churn_cpu_seconds = 0;
  uint64_t churn_events = 0;
  while (churn_events < o.churn_events) {
    uint64_t keys_in_batch = 0;
    const NodeSlot n = streams.NextChurnBatch(&events, &keys_in_batch);
    STRATA_RETURN_IF_ERROR(streams.Apply(n, events, &churn_seconds, &churn_cpu_seconds));
    churn_events += keys_in_batch;
  }
  const double churn_rate = static_cast<double>(churn_events) / churn_seconds;
  summary.figures.push_back(Figure(
      "ingest_churn", churn_rate, "events/s",
      absl::StrFormat("ApplyBatch at full size: each batch removes old chains, stores new ones "
                      "(blocks and entries stay level); %.2f s; %.2fM per CPU-second",
                      churn_seconds, churn_events / churn_cpu_seconds / 1e6),
      kIngestMinEventsPerSecond));
  progress(absl::StrFormat("churn: %.2fM block events/s", churn_rate / 1e6));

  // ---- The service's path: parse a serialized EventBatch, DecodeEvents, ApplyBatch.
  {
    // Serialized up front (32 bytes per key), so capped at 1M events.
    const uint64_t wire_target =
        std::max<uint64_t>(std::min<uint64_t>(o.churn_events / 4, 1'000'000), o.batch_keys);
    std::vector<WireBatch> wire;
    uint64_t wire_events = 0;
    while (wire_events < wire_target) {
      uint64_t keys_in_batch = 0;
      const NodeSlot n = streams.NextChurnBatch(&events, &keys_in_batch);
      wire.push_back(Serialize(n, streams.TakeSequence(n), events));
      wire_events += keys_in_batch;
    }
    progress(absl::StrCat("wire path: ", wire.size(), " serialized batches, ", wire_events,
                          " block events: parse + DecodeEvents + ApplyBatch..."));
    strata::v1::EventBatch batch;
    const Clock::time_point start = Clock::now();
    for (const WireBatch& w : wire) {
      if (!batch.ParseFromString(w.bytes)) return absl::InternalError("EventBatch parse failed");
      STRATA_ASSIGN_OR_RETURN(std::vector<IngestEvent> decoded,
                              router::DecodeEvents(batch.events()));
      const IngestReply r = ingest.ApplyBatch(w.node, batch.epoch(), batch.sequence(), decoded);
      if (r.result != IngestReply::Result::kApplied) {
        return absl::InternalError(absl::StrCat("wire batch not applied: ", r.message));
      }
    }
    const double seconds = SecondsBetween(start, Clock::now());
    summary.figures.push_back(Figure(
        "ingest_wire", static_cast<double>(wire_events) / seconds, "events/s",
        absl::StrFormat("EventBatch::ParseFromString + DecodeEvents + ApplyBatch, 32-byte hashes; "
                        "%.2f s",
                        seconds)));
  }

  // ---- Route latency while another thread churns the index.
  {
    progress(absl::StrCat("timing ", o.routes, " routes while a thread churns the index..."));
    const Streams live = streams;  // requests draw from the chains live before the phase
    std::atomic<bool> stop{false};
    uint64_t concurrent_events = 0;
    double concurrent_seconds = 0;
    absl::Status ingest_status;
    std::thread writer([&] {
      std::vector<IngestEvent> batch;
      const Clock::time_point start = Clock::now();
      while (!stop.load(std::memory_order_relaxed)) {
        uint64_t keys_in_batch = 0;
        const NodeSlot n = streams.NextChurnBatch(&batch, &keys_in_batch);
        double ignored = 0;
        ingest_status = streams.Apply(n, batch, &ignored);
        if (!ingest_status.ok()) break;
        concurrent_events += keys_in_batch;
      }
      concurrent_seconds = SecondsBetween(start, Clock::now());
    });
    const Latency busy = MeasureRoutes(index, plan, live, o, o.seed ^ 0xb05e);
    stop.store(true);
    writer.join();
    STRATA_RETURN_IF_ERROR(ingest_status);
    AddLatencyFigures("route_during_ingest", busy,
                      absl::StrFormat("as route, with one thread churning at %.2fM events/s",
                                      concurrent_events / concurrent_seconds / 1e6),
                      &summary.figures);
    progress(absl::StrFormat("routes during ingest: p50 %.2f us, p99 %.2f us, p99.9 %.2f us",
                             busy.p50_us, busy.p99_us, busy.p999_us));
  }

  // ---- A node re-registering: ResetNode clears its entries (a scan of every shard).
  {
    const uint64_t before = index.NodeEntries(0);
    const Clock::time_point start = Clock::now();
    ingest.ResetNode(0, kEpoch + 1);
    const double ms = SecondsBetween(start, Clock::now()) * 1e3;
    summary.figures.push_back(Figure(
        "reset_node", ms, "ms",
        absl::StrFormat("ResetNode of one node: ClearNode of its %d entries, scanning every shard",
                        before)));
  }

  summary.seconds = SecondsBetween(run_start, Clock::now());
  return summary;
}

namespace {

std::string FormatValue(const RouterFigure& f) {
  if (f.unit == "events/s") return absl::StrFormat("%.2fM", f.value / 1e6);
  if (f.unit == "blocks") return absl::StrFormat("%.1f", f.value);
  return absl::StrFormat("%.2f", f.value);
}

std::string FormatTarget(const RouterFigure& f) {
  const auto num = [&](double v) {
    return f.unit == "events/s" ? absl::StrFormat("%.0fM", v / 1e6) : absl::StrFormat("%g", v);
  };
  std::vector<std::string> parts;
  if (f.target_min) parts.push_back(">=" + num(*f.target_min));
  if (f.target_max) parts.push_back("<=" + num(*f.target_max));
  return parts.empty() ? "-" : absl::StrJoin(parts, " ");
}

std::string SetupLine(const RouterSummary& s) {
  const RouterBenchOptions& o = s.options;
  return absl::StrFormat(
      "router: %d nodes, %d (block, node) entries in %d blocks; %d chains of %d blocks, "
      "%d system prompts x %d blocks on every node, 1 in 8 chains on two nodes; %d shards; "
      "batches of %d keys; %.1f s",
      o.nodes, s.entries, s.blocks, s.chains, o.chain_blocks, o.shared_prefixes, o.shared_blocks,
      o.shards, o.batch_keys, s.seconds);
}

}  // namespace

std::string FormatRouterText(const RouterSummary& s) {
  std::string out = SetupLine(s) + "\n";
  absl::StrAppendFormat(&out, "%-28s %10s %-9s %-8s %-4s %s\n", "metric", "value", "unit", "target",
                        "met", "note");
  for (const RouterFigure& f : s.figures) {
    const std::optional<bool> met = f.TargetMet();
    absl::StrAppendFormat(&out, "%-28s %10s %-9s %-8s %-4s %s\n", f.metric, FormatValue(f), f.unit,
                          FormatTarget(f), met ? (*met ? "yes" : "NO") : "-", f.note);
  }
  return out;
}

std::string FormatRouterJson(const RouterSummary& s) {
  const RouterBenchOptions& o = s.options;
  std::vector<std::string> figures;
  for (const RouterFigure& f : s.figures) {
    const std::optional<bool> met = f.TargetMet();
    std::string target = "null";
    if (f.target_min || f.target_max) target = common::JsonQuote(FormatTarget(f));
    figures.push_back(absl::StrFormat(
        "{\"metric\":%s,\"value\":%.6g,\"unit\":%s,\"target\":%s,\"target_met\":%s,\"note\":%s}",
        common::JsonQuote(f.metric), f.value, common::JsonQuote(f.unit), target,
        met ? (*met ? "true" : "false") : "null", common::JsonQuote(f.note)));
  }
  return absl::StrFormat(
      "{\"nodes\":%d,\"entries\":%d,\"blocks\":%d,\"chains\":%d,\"chain_blocks\":%d,"
      "\"shared_prefixes\":%d,\"shared_blocks\":%d,\"shards\":%d,\"batch_keys\":%d,"
      "\"seconds\":%.2f,\"figures\":[%s]}\n",
      o.nodes, s.entries, s.blocks, s.chains, o.chain_blocks, o.shared_prefixes, o.shared_blocks,
      o.shards, o.batch_keys, s.seconds, absl::StrJoin(figures, ","));
}

}  // namespace strata::bench
