#include "bench/replay.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "bench/live_cluster.h"
#include "bench/replay_backend.h"
#include "bench/sim_cluster.h"
#include "common/json_text.h"
#include "common/namespace_id.h"
#include "common/status_macros.h"
#include "router/experiment.h"

namespace strata::bench {
namespace {

constexpr std::array<const char*, kNumHitTiers> kHitTierNames = {"hbm", "dram", "ssd", "peer"};

absl::StatusOr<std::string> MakeScratchDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp",
                                   "/strata-replay-XXXXXX");
  if (mkdtemp(templ.data()) == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("cannot create a directory like ", templ));
  }
  return templ;
}

}  // namespace

std::string TierSetName(TierSet t) {
  switch (t) {
    case TierSet::kHbm:
      return "hbm";
    case TierSet::kHbmDram:
      return "hbm+dram";
    case TierSet::kHbmDramSsd:
      return "hbm+dram+ssd";
    case TierSet::kHbmSsd:
      return "hbm+ssd";
  }
  return "?";
}

absl::StatusOr<TierSet> ParseTierSet(std::string_view name) {
  for (TierSet t : {TierSet::kHbm, TierSet::kHbmDram, TierSet::kHbmDramSsd, TierSet::kHbmSsd}) {
    if (name == TierSetName(t)) return t;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown tier set '", std::string(name), "'; expected hbm, hbm+dram, hbm+dram+ssd or hbm+ssd"));
}

absl::Status ReplayOptions::Validate() const {
  STRATA_RETURN_IF_ERROR(trace.Validate());
  if (nodes < 1 || nodes > 256) return absl::InvalidArgumentError("--nodes must be 1 to 256");
  STRATA_RETURN_IF_ERROR(router::ExperimentSpec::Parse(experiment).status());
  if (!(ssd_gbps >= 0) || !(peer_gbps >= 0)) {
    return absl::InvalidArgumentError("bandwidths must be >= 0");
  }
  if (mode == ReplayMode::kLive) {
    if (!(live.speedup > 0)) return absl::InvalidArgumentError("--speedup must be > 0");
    if (live.block_bytes == 0 || live.block_bytes > (64ull << 20)) {
      return absl::InvalidArgumentError("--live-block-bytes must be 1 byte to 64 MiB");
    }
  }
  return absl::OkStatus();
}

Percentiles PercentilesOf(std::vector<double>& values) {
  Percentiles p;
  if (values.empty()) return p;
  std::sort(values.begin(), values.end());
  auto at = [&](double q) {
    const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(values.size())));
    return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
  };
  p.p50 = at(0.50);
  p.p95 = at(0.95);
  p.p99 = at(0.99);
  return p;
}

ReplayFigures FiguresOf(const std::vector<RequestResult>& results, int nodes) {
  ReplayFigures f;
  f.requests = results.size();
  f.prefill_tokens_per_node.assign(nodes, 0);
  if (results.empty()) return f;
  double first = std::numeric_limits<double>::infinity(), last = 0;
  uint64_t tokens = 0, output = 0, blocks = 0;
  std::array<uint64_t, kNumHitTiers> hits{};
  std::vector<double> ttft, e2e;
  for (const RequestResult& r : results) {
    first = std::min(first, r.arrival_ms);
    last = std::max(last, r.finished_ms);
    tokens += uint64_t{r.input_tokens} + r.output_tokens;
    output += r.output_tokens;
    blocks += r.prompt_blocks;
    for (int t = 0; t < kNumHitTiers; ++t) hits[t] += r.hit_blocks[t];
    ttft.push_back(r.first_token_ms - r.arrival_ms);
    e2e.push_back(r.finished_ms - r.arrival_ms);
    f.prefill_tokens_per_node[r.node] += r.prefill_tokens;
  }
  const double span_s = (last - first) / 1000;
  if (span_s > 0) {
    f.throughput_tokens_per_s = static_cast<double>(tokens) / span_s;
    f.output_tokens_per_s = static_cast<double>(output) / span_s;
  }
  f.ttft_ms = PercentilesOf(ttft);
  f.e2e_ms = PercentilesOf(e2e);
  for (int t = 0; t < kNumHitTiers; ++t) {
    f.hit_ratio[t] = blocks > 0 ? static_cast<double>(hits[t]) / blocks : 0;
    f.total_hit_ratio += f.hit_ratio[t];
  }
  uint64_t sum = 0, max = 0;
  for (uint64_t p : f.prefill_tokens_per_node) sum += p, max = std::max(max, p);
  if (sum > 0) f.load_imbalance = static_cast<double>(max) / (static_cast<double>(sum) / nodes);
  return f;
}

absl::StatusOr<ReplayResult> RunReplay(const ReplayOptions& options, const ProgressFn& progress) {
  STRATA_RETURN_IF_ERROR(options.Validate());
  STRATA_ASSIGN_OR_RETURN(Trace trace, LoadTrace(options.trace_path, options.trace));
  return RunReplayOn(trace, options, progress);
}

absl::StatusOr<ReplayResult> RunReplayOn(const Trace& trace, const ReplayOptions& options,
                                         const ProgressFn& progress) {
  STRATA_RETURN_IF_ERROR(options.Validate());
  STRATA_ASSIGN_OR_RETURN(EngineParams params,
                          LoadEngineParams(options.engine_file, options.cost_model_file));
  if (options.hbm_bytes > 0) {
    params.gpu_memory_bytes = options.hbm_bytes;
    params.memory_utilization = 1;
    params.weights_bytes = 0;
    STRATA_RETURN_IF_ERROR(params.Validate());
  }
  const double ssd_gbps = options.ssd_gbps > 0 ? options.ssd_gbps : params.default_ssd_gbps;
  const absl::Time wall_start = absl::Now();

  std::unique_ptr<ReplayBackend> backend;
  if (options.mode == ReplayMode::kSim) {
    STRATA_ASSIGN_OR_RETURN(std::string scratch, MakeScratchDir());
    STRATA_ASSIGN_OR_RETURN(backend,
                            SimCluster::Create(options, params, trace.block_tokens, scratch));
  } else {
    STRATA_ASSIGN_OR_RETURN(backend, LiveCluster::Create(options, params, trace.block_tokens,
                                                         progress));
  }

  EngineOptions eo;
  eo.block_tokens = trace.block_tokens;
  eo.load_policy = options.load_policy;
  eo.ssd_gbps = ssd_gbps;
  eo.use_lower_tiers = options.tiers != TierSet::kHbm;
  std::vector<std::unique_ptr<Engine>> engines;
  for (int k = 0; k < options.nodes; ++k) {
    engines.push_back(std::make_unique<Engine>(k, params, eo, backend.get()));
  }

  ReplayResult out;
  out.mode = options.mode;
  out.trace = trace.source;
  out.experiment = options.experiment;
  out.nodes = options.nodes;
  out.tiers = options.tiers;
  out.ssd_gbps = ssd_gbps;
  out.hbm_blocks_per_node = engines[0]->pool_blocks();
  out.ideal_hit_ratio = IdealHitRatio(trace);

  const common::NamespaceId ns = common::NamespaceIdOf(kReplayNamespace);
  const size_t n = trace.requests.size();
  std::vector<RouteAnswer> answers(n);
  std::vector<RequestResult> results;
  results.reserve(n);
  size_t next = 0;
  absl::Time last_progress = wall_start;
  double now = 0;
  for (;;) {
    const double t_arrival =
        next < n ? trace.requests[next].arrival_ms : std::numeric_limits<double>::infinity();
    int k = -1;
    double t_engine = std::numeric_limits<double>::infinity();
    for (int i = 0; i < options.nodes; ++i) {
      const std::optional<double> e = engines[i]->NextEventMs();
      if (e.has_value() && *e < t_engine) k = i, t_engine = *e;
    }
    if (k < 0 && next >= n) break;
    if (options.cancel != nullptr && options.cancel->load()) {
      return absl::CancelledError(absl::StrFormat("stopped after %d of %d requests", next, n));
    }
    if (k >= 0 && t_engine <= t_arrival) {
      now = t_engine;
      backend->AdvanceTo(now);
      for (RequestResult& r : engines[k]->Advance()) {
        backend->ReportOutcome(answers[r.id], r);
        results.push_back(std::move(r));
      }
      backend->ReportLoad(k, engines[k]->Load());
    } else {
      now = t_arrival;
      backend->AdvanceTo(now);
      const TraceRequest& tr = trace.requests[next];
      EngineRequest req;
      req.id = static_cast<uint32_t>(next);
      req.arrival_ms = tr.arrival_ms;
      req.input_tokens = tr.input_tokens;
      req.output_tokens = tr.output_tokens;
      req.chain = ChainOf(tr, ns);
      ++next;
      if (engines[0]->BlocksNeeded(tr.input_tokens, tr.output_tokens) >
          engines[0]->pool_blocks()) {
        ++out.rejected;
        continue;
      }
      RouteCall call;
      call.chain = &req.chain;
      call.prompt_tokens = tr.input_tokens;
      call.block_tokens = trace.block_tokens;
      call.request_id = absl::StrCat("req-", tr.index);
      STRATA_ASSIGN_OR_RETURN(RouteAnswer answer, backend->Route(call));
      req.peer = answer.peer;
      const int node = answer.node;
      answers[req.id] = std::move(answer);
      engines[node]->Enqueue(std::move(req), now);
      backend->ReportLoad(node, engines[node]->Load());
    }
    backend->Flush();
    if (progress && absl::Now() - last_progress > absl::Seconds(2)) {
      last_progress = absl::Now();
      progress(absl::StrFormat("replay: %d/%d requests routed, %d finished, simulated %.1f s",
                               next, n, results.size(), now / 1000));
    }
  }
  out.sim_seconds = now / 1000;

  out.all = FiguresOf(results, options.nodes);
  out.all.policy = options.experiment;
  const router::ExperimentReportData report = backend->ExperimentReport();
  if (report.policies.size() > 1) {
    for (const router::PolicyReport& arm : report.policies) {
      std::vector<RequestResult> mine;
      for (const RequestResult& r : results) {
        if (answers[r.id].policy == arm.policy) mine.push_back(r);
      }
      ReplayFigures f = FiguresOf(mine, options.nodes);
      f.policy = arm.policy;
      f.shadow_requests = arm.shadow_requests;
      f.mean_shadow_hit_blocks = arm.mean_shadow_hit_blocks;
      f.shadow_agreements = arm.shadow_agreements;
      f.mean_predicted_ttft_ms = arm.mean_predicted_ttft_ms;
      out.policies.push_back(std::move(f));
    }
  }
  backend->Finish(&out);
  out.wall_seconds = absl::ToDoubleSeconds(absl::Now() - wall_start);
  return out;
}

namespace {

std::string FiguresRow(const ReplayFigures& f) {
  return absl::StrFormat(
      "%-16s %8d %10.0f %8.0f %9.0f %9.0f %9.0f %9.0f %9.0f  %5.3f %5.3f %5.3f %5.3f %5.3f %6.2f\n",
      f.policy, f.requests, f.throughput_tokens_per_s, f.output_tokens_per_s, f.ttft_ms.p50,
      f.ttft_ms.p95, f.ttft_ms.p99, f.e2e_ms.p50, f.e2e_ms.p99, f.hit_ratio[0], f.hit_ratio[1],
      f.hit_ratio[2], f.hit_ratio[3], f.total_hit_ratio, f.load_imbalance);
}

std::string FiguresJson(const ReplayResult& r, const ReplayFigures& f, bool arm) {
  std::string hit;
  for (int t = 0; t < kNumHitTiers; ++t) {
    absl::StrAppend(&hit, "\"", kHitTierNames[t], "\":", absl::StrFormat("%.6f", f.hit_ratio[t]),
                    ",");
  }
  std::string per_node;
  for (uint64_t p : f.prefill_tokens_per_node) {
    absl::StrAppend(&per_node, per_node.empty() ? "" : ",", p);
  }
  std::string s = absl::StrFormat(
      "{\"policy\":%s,\"nodes\":%d,\"tiers\":\"%s\",\"requests\":%d,"
      "\"throughput_tokens_per_s\":%.3f,\"output_tokens_per_s\":%.3f,"
      "\"ttft_ms\":{\"p50\":%.3f,\"p95\":%.3f,\"p99\":%.3f},\"e2e_ms\":{\"p50\":%.3f,\"p99\":%.3f},"
      "\"hit_ratio\":{%s\"total\":%.6f},\"ideal_hit_ratio\":%.6f,\"load_imbalance\":%.4f,"
      "\"prefill_tokens_per_node\":[%s]",
      common::JsonQuote(f.policy), r.nodes, TierSetName(r.tiers), f.requests,
      f.throughput_tokens_per_s, f.output_tokens_per_s, f.ttft_ms.p50, f.ttft_ms.p95,
      f.ttft_ms.p99, f.e2e_ms.p50, f.e2e_ms.p99, hit, f.total_hit_ratio, r.ideal_hit_ratio,
      f.load_imbalance, per_node);
  if (arm) {  // the router's shadow figures exist per experiment arm
    absl::StrAppend(&s,
                    absl::StrFormat(",\"shadow\":{\"requests\":%d,\"mean_hit_blocks\":%.3f,"
                                    "\"agreements\":%d},\"mean_predicted_ttft_ms\":%.3f",
                                    f.shadow_requests, f.mean_shadow_hit_blocks,
                                    f.shadow_agreements, f.mean_predicted_ttft_ms));
  }
  return s;
}

}  // namespace

std::string FormatReplayText(const ReplayResult& r) {
  std::string out = absl::StrFormat(
      "strata-bench replay: mode %s, trace %s, %d nodes, tiers %s, experiment %s\n"
      "engines: simulated (H100 80GB model, Llama-3-8B shapes), hbm(emulated): %d blocks of KV "
      "per node; SSD %.2f GB/s\n"
      "requests: %d finished, %d rejected (larger than a node's HBM); %.1f simulated s in %.1f "
      "wall s; ideal hit ratio %.3f\n\n",
      r.mode == ReplayMode::kSim ? "sim" : "live", r.trace, r.nodes, TierSetName(r.tiers),
      r.experiment, r.hbm_blocks_per_node, r.ssd_gbps, r.all.requests, r.rejected, r.sim_seconds,
      r.wall_seconds, r.ideal_hit_ratio);
  absl::StrAppend(&out,
                  absl::StrFormat("%-16s %8s %10s %8s %9s %9s %9s %9s %9s  %5s %5s %5s %5s %5s "
                                  "%6s\n",
                                  "policy", "requests", "tok/s", "out/s", "ttft p50", "ttft p95",
                                  "ttft p99", "e2e p50", "e2e p99", "hbm", "dram", "ssd", "peer",
                                  "hit", "imbal"));
  for (const ReplayFigures& f : r.policies) absl::StrAppend(&out, FiguresRow(f));
  ReplayFigures all = r.all;
  if (!r.policies.empty()) all.policy = "(all)";
  absl::StrAppend(&out, FiguresRow(all));
  absl::StrAppend(&out, "(times in ms; hit columns: share of prompt blocks served per tier",
                  r.policies.empty() ? ")\n"
                                     : "; the arms share the cluster, so an arm's tok/s counts only "
                                       "its own requests: compare arms by TTFT and hits)\n");
  if (!r.policies.empty()) {
    absl::StrAppend(&out, "\nshadow evaluation (what each arm would have matched on every "
                          "request):\n");
    for (const ReplayFigures& f : r.policies) {
      absl::StrAppend(&out, absl::StrFormat("  %-16s shadow requests %d, mean hit blocks %.2f, "
                                            "agrees with live %d\n",
                                            f.policy, f.shadow_requests,
                                            f.mean_shadow_hit_blocks, f.shadow_agreements));
    }
  }
  if (r.mode == ReplayMode::kLive) {
    const LiveFigures& l = r.live;
    absl::StrAppend(
        &out,
        absl::StrFormat(
            "\nlive: payloads %d bytes per block (1/%.0f of the modelled 64 MiB), wall %.1f s\n"
            "  route RPC latency us: p50 %.0f p95 %.0f p99 %.0f\n"
            "  event lag node->router ms: p50 %.1f p95 %.1f p99 %.1f (%d samples)\n"
            "  bytes read: dram %d, ssd %d, peer %d; written %d\n"
            "  RPC errors: %d%s\n",
            l.block_bytes, l.payload_scale, l.wall_s, l.route_us.p50, l.route_us.p95,
            l.route_us.p99, l.event_lag_ms.p50, l.event_lag_ms.p95, l.event_lag_ms.p99,
            l.event_lag_samples, l.bytes_read[0], l.bytes_read[1], l.bytes_read[2],
            l.bytes_written, l.rpc_errors,
            l.first_error.empty() ? "" : absl::StrCat(" (first: ", l.first_error, ")")));
  }
  return out;
}

PlotSpec ReplayPlot(const ReplayResult& r) {
  std::vector<const ReplayFigures*> rows;
  for (const ReplayFigures& f : r.policies) rows.push_back(&f);
  if (rows.empty()) rows.push_back(&r.all);
  PlotSpec spec;
  spec.kind = PlotKind::kBars;
  spec.x_label = "policy";
  spec.y_label = "share of prompt blocks served";
  spec.y_min = 0;
  spec.title = absl::StrFormat("hit ratio per tier, %d nodes, %s", r.nodes, TierSetName(r.tiers));
  for (const ReplayFigures* f : rows) {
    spec.categories.push_back(absl::StrFormat("%s (TTFT p50 %.0f ms)", f->policy, f->ttft_ms.p50));
  }
  for (int t = 0; t < kNumHitTiers; ++t) {
    PlotSeries s;
    s.name = kHitTierNames[t];
    for (const ReplayFigures* f : rows) s.y.push_back(f->hit_ratio[t]);
    spec.series.push_back(std::move(s));
  }
  spec.hlines.push_back({"ideal (one infinite cache)", r.ideal_hit_ratio});
  return spec;
}

std::string FormatReplayJson(const ReplayResult& r) {
  std::string s = FiguresJson(r, r.all, /*arm=*/false);
  absl::StrAppend(&s, absl::StrFormat(",\"mode\":\"%s\",\"trace\":%s,\"ssd_gbps\":%.3f,"
                                      "\"hbm_blocks_per_node\":%d,\"hbm\":\"hbm(emulated)\","
                                      "\"rejected\":%d,\"simulated_s\":%.3f",
                                      r.mode == ReplayMode::kSim ? "sim" : "live",
                                      common::JsonQuote(r.trace), r.ssd_gbps,
                                      r.hbm_blocks_per_node, r.rejected, r.sim_seconds));
  if (!r.policies.empty()) {
    absl::StrAppend(&s, ",\"policies\":[");
    for (size_t i = 0; i < r.policies.size(); ++i) {
      absl::StrAppend(&s, i ? "," : "", FiguresJson(r, r.policies[i], /*arm=*/true), "}");
    }
    absl::StrAppend(&s, "]");
  }
  if (r.mode == ReplayMode::kLive) {
    const LiveFigures& l = r.live;
    absl::StrAppend(
        &s, absl::StrFormat(
                ",\"live\":{\"block_bytes\":%d,\"payload_scale\":%.1f,\"wall_s\":%.3f,"
                "\"route_us\":{\"p50\":%.1f,\"p95\":%.1f,\"p99\":%.1f},"
                "\"event_lag_ms\":{\"p50\":%.3f,\"p95\":%.3f,\"p99\":%.3f,\"samples\":%d},"
                "\"bytes_read\":{\"dram\":%d,\"ssd\":%d,\"peer\":%d},\"bytes_written\":%d,"
                "\"rpc_errors\":%d}",
                l.block_bytes, l.payload_scale, l.wall_s, l.route_us.p50, l.route_us.p95,
                l.route_us.p99, l.event_lag_ms.p50, l.event_lag_ms.p95, l.event_lag_ms.p99,
                l.event_lag_samples, l.bytes_read[0], l.bytes_read[1], l.bytes_read[2],
                l.bytes_written, l.rpc_errors));
  }
  absl::StrAppend(&s, "}\n");
  return s;
}

}  // namespace strata::bench
