#include "bench/experiments.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "bench/plot.h"
#include "common/status_macros.h"

namespace strata::bench {
namespace {

constexpr const char* kBegin = "<!-- experiments:begin -->";
constexpr const char* kEnd = "<!-- experiments:end -->";
constexpr const char* kPolicies[] = {"locality", "round_robin", "random", "least_loaded",
                                     "consistent_hash"};

std::string Num(double v) { return absl::StrFormat("%.6g", v); }

// The `strata-bench replay` command that reproduces one run.
std::string CommandOf(const ExperimentsOptions& e, const ReplayOptions& o) {
  std::string c = absl::StrCat("strata-bench replay --trace ", e.trace_path);
  if (e.max_requests > 0) absl::StrAppend(&c, " --requests ", e.max_requests);
  absl::StrAppend(&c, " --nodes ", o.nodes);
  absl::StrAppend(&c, o.experiment.find('=') != std::string::npos ? " --experiment '"
                                                                  : " --policy ",
                  o.experiment, o.experiment.find('=') != std::string::npos ? "'" : "");
  absl::StrAppend(&c, " --tiers ", TierSetName(o.tiers));
  if (o.trace.time_scale != 1) absl::StrAppend(&c, " --time-scale ", Num(o.trace.time_scale));
  if (o.ssd_gbps > 0) absl::StrAppend(&c, " --ssd-gbps ", Num(o.ssd_gbps));
  if (o.load_policy == LoadPolicy::kAlways) absl::StrAppend(&c, " --load-policy always");
  return c;
}

std::string HitCells(const ReplayFigures& f) {
  return absl::StrFormat("%.3f | %.3f | %.3f | %.3f | %.3f", f.hit_ratio[0], f.hit_ratio[1],
                         f.hit_ratio[2], f.hit_ratio[3], f.total_hit_ratio);
}

class Runner {
 public:
  Runner(const ExperimentsOptions& e, const Trace& trace, const ProgressFn& progress)
      : e_(e), trace_(trace), progress_(progress) {}

  ReplayOptions Base(int nodes, const std::string& policy, TierSet tiers, bool saturated) const {
    ReplayOptions o;
    o.trace_path = e_.trace_path;
    o.trace.max_requests = e_.max_requests;
    o.trace.time_scale = saturated ? e_.saturated_time_scale : 1.0;
    o.nodes = nodes;
    o.experiment = policy;
    o.tiers = tiers;
    return o;
  }

  absl::StatusOr<ReplayResult> Run(const ReplayOptions& o) {
    ++runs_;
    if (progress_) progress_(absl::StrCat("experiments: run ", runs_, ": ", CommandOf(e_, o)));
    // The trace was parsed once at time scale 1; rescale arrivals for this run.
    Trace t = trace_;
    for (TraceRequest& r : t.requests) r.arrival_ms *= o.trace.time_scale;
    ReplayOptions run = o;
    run.trace.time_scale = 1;
    return RunReplayOn(t, run, nullptr);
  }

  std::string Command(const ReplayOptions& o) const { return CommandOf(e_, o); }

 private:
  const ExperimentsOptions& e_;
  const Trace& trace_;
  const ProgressFn& progress_;
  int runs_ = 0;
};

absl::Status Plot(const ExperimentsOptions& e, const PlotSpec& spec, const std::string& name,
                  std::string* md) {
  const std::string path = e.plot_dir + "/" + name;
  STRATA_RETURN_IF_ERROR(WritePlot(spec, path));
  // Linked relative to RESULTS.md.
  const std::string rel =
      std::filesystem::relative(path, std::filesystem::path(e.results_path).parent_path())
          .string();
  absl::StrAppend(md, "\n![", spec.title, "](", rel, ")\n");
  return absl::OkStatus();
}

std::string Verdict(bool met) { return met ? "**met**" : "**missed**"; }

absl::Status ExperimentA(const ExperimentsOptions& e, Runner& runner, std::string* md) {
  absl::StrAppend(md, "\n### (a) Tiers: HBM only vs +DRAM vs +DRAM+SSD\n\n"
                      "Saturated (arrivals x", Num(e.saturated_time_scale),
                  "), locality routing. Throughput is input + output tokens of finished requests "
                  "per simulated second.\n\n"
                  "| nodes | tiers | tokens/s | x HBM only | hit hbm | dram | ssd | peer | total "
                  "| TTFT p50 ms |\n|---|---|---|---|---|---|---|---|---|---|\n");
  PlotSpec plot;
  plot.kind = PlotKind::kBars;
  plot.title = "(a) throughput by tier set (saturated, locality)";
  plot.x_label = "cluster";
  plot.y_label = "tokens/s";
  plot.y_min = 0;
  const TierSet sets[] = {TierSet::kHbm, TierSet::kHbmDram, TierSet::kHbmDramSsd};
  for (TierSet t : sets) plot.series.push_back(PlotSeries{TierSetName(t), {}, {}});
  std::string commands, targets;
  for (int nodes : {1, 4}) {
    plot.categories.push_back(absl::StrCat(nodes, nodes == 1 ? " node" : " nodes"));
    double hbm_only = 0, full = 0;
    for (size_t i = 0; i < 3; ++i) {
      const ReplayOptions o = runner.Base(nodes, "locality", sets[i], true);
      STRATA_ASSIGN_OR_RETURN(ReplayResult r, runner.Run(o));
      const double tput = r.all.throughput_tokens_per_s;
      if (i == 0) hbm_only = tput;
      if (i == 2) full = tput;
      plot.series[i].y.push_back(tput);
      absl::StrAppend(md, absl::StrFormat("| %d | %s | %.0f | %.2f | %s | %.0f |\n", nodes,
                                          TierSetName(sets[i]), tput, tput / hbm_only,
                                          HitCells(r.all), r.all.ttft_ms.p50));
      absl::StrAppend(&commands, "    ", runner.Command(o), "\n");
    }
    const double ratio = full / hbm_only;
    absl::StrAppend(&targets, absl::StrFormat("- Target HBM+DRAM+SSD >= 2 x HBM only at %d "
                                              "node%s: %.2f x, %s.\n",
                                              nodes, nodes == 1 ? "" : "s", ratio,
                                              Verdict(ratio >= 2)));
  }
  absl::StrAppend(md, "\n", targets);
  STRATA_RETURN_IF_ERROR(Plot(e, plot, "a_tiers.png", md));
  absl::StrAppend(md, "\nRows:\n\n", commands);
  return absl::OkStatus();
}

absl::Status ExperimentB(const ExperimentsOptions& e, Runner& runner, std::string* md) {
  absl::StrAppend(md, "\n### (b) Nodes sharing their tiers (locality routing)\n\n"
                      "Saturated, hbm+dram+ssd; a node pulls a prefix a peer holds when that "
                      "beats recomputing it.\n\n"
                      "| nodes | tokens/s | x 1 node | hit hbm | dram | ssd | peer | total | "
                      "load imbalance |\n|---|---|---|---|---|---|---|---|---|\n");
  PlotSpec plot;
  plot.title = "(b) throughput vs nodes (saturated, locality, hbm+dram+ssd)";
  plot.x_label = "nodes";
  plot.y_label = "tokens/s";
  plot.y_min = 0;
  PlotSeries measured{"measured", {}, {}}, linear{"linear (n x 1 node)", {}, {}};
  std::string commands;
  double one = 0, two = 0;
  for (int nodes : {1, 2, 4, 8}) {
    const ReplayOptions o = runner.Base(nodes, "locality", TierSet::kHbmDramSsd, true);
    STRATA_ASSIGN_OR_RETURN(ReplayResult r, runner.Run(o));
    const double tput = r.all.throughput_tokens_per_s;
    if (nodes == 1) one = tput;
    if (nodes == 2) two = tput;
    measured.x.push_back(nodes);
    measured.y.push_back(tput);
    linear.x.push_back(nodes);
    linear.y.push_back(one * nodes);
    absl::StrAppend(md, absl::StrFormat("| %d | %.0f | %.2f | %s | %.2f |\n", nodes, tput,
                                        tput / one, HitCells(r.all), r.all.load_imbalance));
    absl::StrAppend(&commands, "    ", runner.Command(o), "\n");
  }
  plot.series = {measured, linear};
  absl::StrAppend(md, absl::StrFormat("\n- Target 2 nodes >= 1.9 x 1 node: %.2f x, %s.\n",
                                      two / one, Verdict(two / one >= 1.9)));
  STRATA_RETURN_IF_ERROR(Plot(e, plot, "b_nodes.png", md));
  absl::StrAppend(md, "\nRows:\n\n", commands);
  return absl::OkStatus();
}

absl::Status ExperimentC(const ExperimentsOptions& e, Runner& runner, double ideal,
                         std::string* md) {
  absl::StrAppend(md, "\n### (c) Routing policies\n\n"
                      "hbm+dram+ssd. Latency and hit ratios at the trace's own pace; throughput "
                      "saturated (arrivals x",
                  Num(e.saturated_time_scale), ").\n\n"
                  "| nodes | policy | TTFT p50 ms | TTFT p99 ms | hit total | x ideal | "
                  "imbalance | saturated tokens/s | x round_robin | saturated hit |\n"
                  "|---|---|---|---|---|---|---|---|---|---|\n");
  PlotSpec tput_plot, ttft_plot;
  tput_plot.kind = ttft_plot.kind = PlotKind::kBars;
  tput_plot.title = "(c) saturated throughput by policy";
  tput_plot.y_label = "tokens/s";
  ttft_plot.title = "(c) TTFT p99 at the trace's pace";
  ttft_plot.y_label = "ms";
  tput_plot.x_label = ttft_plot.x_label = "nodes";
  tput_plot.y_min = ttft_plot.y_min = 0;
  for (const char* p : kPolicies) {
    tput_plot.series.push_back(PlotSeries{p, {}, {}});
    ttft_plot.series.push_back(PlotSeries{p, {}, {}});
  }
  std::string commands, targets;
  for (int nodes : {2, 4, 8}) {
    tput_plot.categories.push_back(absl::StrCat(nodes));
    ttft_plot.categories.push_back(absl::StrCat(nodes));
    std::vector<ReplayResult> paced, saturated;
    for (const char* p : kPolicies) {
      const ReplayOptions po = runner.Base(nodes, p, TierSet::kHbmDramSsd, false);
      const ReplayOptions so = runner.Base(nodes, p, TierSet::kHbmDramSsd, true);
      STRATA_ASSIGN_OR_RETURN(ReplayResult pr, runner.Run(po));
      STRATA_ASSIGN_OR_RETURN(ReplayResult sr, runner.Run(so));
      absl::StrAppend(&commands, "    ", runner.Command(po), "\n    ", runner.Command(so), "\n");
      paced.push_back(std::move(pr));
      saturated.push_back(std::move(sr));
    }
    const double rr = saturated[1].all.throughput_tokens_per_s;
    for (size_t i = 0; i < paced.size(); ++i) {
      const ReplayFigures& f = paced[i].all;
      const ReplayFigures& s = saturated[i].all;
      tput_plot.series[i].y.push_back(s.throughput_tokens_per_s);
      ttft_plot.series[i].y.push_back(f.ttft_ms.p99);
      absl::StrAppend(md, absl::StrFormat("| %d | %s | %.0f | %.0f | %.3f | %.3f | %.2f | %.0f | "
                                          "%.2f | %.3f |\n",
                                          nodes, kPolicies[i], f.ttft_ms.p50, f.ttft_ms.p99,
                                          f.total_hit_ratio, f.total_hit_ratio / ideal,
                                          f.load_imbalance, s.throughput_tokens_per_s,
                                          s.throughput_tokens_per_s / rr, s.total_hit_ratio));
    }
    if (nodes == 8) {
      const ReplayFigures& loc = paced[0].all;
      const double x_rr = saturated[0].all.throughput_tokens_per_s / rr;
      absl::StrAppend(
          &targets,
          absl::StrFormat("- Target locality at 8 nodes >= 0.95 x ideal hit ratio: %.3f x "
                          "(%.3f of %.3f), %s.\n",
                          loc.total_hit_ratio / ideal, loc.total_hit_ratio, ideal,
                          Verdict(loc.total_hit_ratio >= 0.95 * ideal)),
          absl::StrFormat("- Target locality at 8 nodes load imbalance <= 1.2: %.2f, %s.\n",
                          loc.load_imbalance, Verdict(loc.load_imbalance <= 1.2)),
          absl::StrFormat("- Target locality at 8 nodes >= 1.5 x round_robin throughput "
                          "(saturated): %.2f x, %s.\n",
                          x_rr, Verdict(x_rr >= 1.5)));
    }
  }
  absl::StrAppend(md, "\n", targets);
  STRATA_RETURN_IF_ERROR(Plot(e, tput_plot, "c_throughput.png", md));
  STRATA_RETURN_IF_ERROR(Plot(e, ttft_plot, "c_ttft_p99.png", md));

  // One online A/B run: both arms share the cluster; each also scores every request in shadow.
  ReplayOptions ab = runner.Base(8, "locality=50,round_robin=50", TierSet::kHbmDramSsd, false);
  STRATA_ASSIGN_OR_RETURN(ReplayResult r, runner.Run(ab));
  absl::StrAppend(md, "\nA/B split at 8 nodes (trace pace): `", runner.Command(ab), "`\n\n"
                      "| arm | requests | TTFT p50 ms | TTFT p99 ms | hit total | shadow mean hit "
                      "blocks | shadow agrees with live |\n|---|---|---|---|---|---|---|\n");
  for (const ReplayFigures& f : r.policies) {
    absl::StrAppend(md, absl::StrFormat("| %s | %d | %.0f | %.0f | %.3f | %.2f | %d of %d |\n",
                                        f.policy, f.requests, f.ttft_ms.p50, f.ttft_ms.p99,
                                        f.total_hit_ratio, f.mean_shadow_hit_blocks,
                                        f.shadow_agreements, f.shadow_requests));
  }
  absl::StrAppend(md, "\nRows:\n\n", commands);
  return absl::OkStatus();
}

absl::Status ExperimentD(const ExperimentsOptions& e, Runner& runner, std::string* md) {
  absl::StrAppend(md, "\n### (d) SSD-backed vs DRAM-backed reuse as SSD bandwidth varies\n\n"
                      "One node, saturated. SSD-backed: hbm+ssd (no DRAM tier); `always` loads "
                      "every hit, `when-faster` only hits that beat recomputing them. "
                      "DRAM-backed: hbm+dram. Recompute: HBM only.\n\n");
  ReplayOptions recompute = runner.Base(1, "locality", TierSet::kHbm, true);
  ReplayOptions dram = runner.Base(1, "locality", TierSet::kHbmDram, true);
  STRATA_ASSIGN_OR_RETURN(ReplayResult rc, runner.Run(recompute));
  STRATA_ASSIGN_OR_RETURN(ReplayResult dr, runner.Run(dram));
  const double base = rc.all.throughput_tokens_per_s;
  absl::StrAppend(md, absl::StrFormat("Recompute (HBM only): %.0f tokens/s. DRAM-backed: %.0f "
                                      "tokens/s (%.2f x).\n\n",
                                      base, dr.all.throughput_tokens_per_s,
                                      dr.all.throughput_tokens_per_s / base),
                  "| SSD GB/s | always: tokens/s | x recompute | ssd hit | when-faster: "
                  "tokens/s | x recompute | ssd hit |\n|---|---|---|---|---|---|---|\n");
  PlotSpec plot;
  plot.title = "(d) SSD-backed reuse vs SSD bandwidth (1 node, saturated)";
  plot.x_label = "SSD read GB/s";
  plot.y_label = "tokens/s";
  plot.log_x = true;
  plot.y_min = 0;
  PlotSeries always{"SSD-backed, always load", {}, {}};
  PlotSeries faster{"SSD-backed, load when faster", {}, {}};
  std::string commands = absl::StrCat("    ", runner.Command(recompute), "\n    ",
                                      runner.Command(dram), "\n");
  double crossover = 0;
  for (double gbps : {0.25, 0.5, 1.0, 2.0, 4.0, 6.8, 14.0}) {
    ReplayOptions a = runner.Base(1, "locality", TierSet::kHbmSsd, true);
    a.ssd_gbps = gbps;
    a.load_policy = LoadPolicy::kAlways;
    ReplayOptions f = a;
    f.load_policy = LoadPolicy::kWhenFaster;
    STRATA_ASSIGN_OR_RETURN(ReplayResult ar, runner.Run(a));
    STRATA_ASSIGN_OR_RETURN(ReplayResult fr, runner.Run(f));
    const double at = ar.all.throughput_tokens_per_s, ft = fr.all.throughput_tokens_per_s;
    if (crossover == 0 && at > base) crossover = gbps;
    always.x.push_back(gbps);
    always.y.push_back(at);
    faster.x.push_back(gbps);
    faster.y.push_back(ft);
    absl::StrAppend(md, absl::StrFormat("| %s | %.0f | %.2f | %.3f | %.0f | %.2f | %.3f |\n",
                                        Num(gbps), at, at / base, ar.all.hit_ratio[2], ft,
                                        ft / base, fr.all.hit_ratio[2]));
    absl::StrAppend(&commands, "    ", runner.Command(a), "\n    ", runner.Command(f), "\n");
  }
  plot.series = {always, faster};
  plot.hlines = {{"DRAM-backed", dr.all.throughput_tokens_per_s}, {"recompute (HBM only)", base}};
  absl::StrAppend(md, "\n",
                  crossover > 0
                      ? absl::StrFormat("Always loading from SSD beats recomputing from %s GB/s "
                                        "up in this sweep; below it SSD reuse costs throughput. "
                                        "Loading only when faster never falls below recompute.\n",
                                        Num(crossover))
                      : "Always loading from SSD never beat recomputing in this sweep.\n");
  STRATA_RETURN_IF_ERROR(Plot(e, plot, "d_ssd_bandwidth.png", md));
  absl::StrAppend(md, "\nRows:\n\n", commands);
  return absl::OkStatus();
}

}  // namespace

absl::Status ExperimentsOptions::Validate() const {
  if (trace_path.empty()) return absl::InvalidArgumentError("experiments needs --trace FILE");
  if (!(saturated_time_scale > 0)) {
    return absl::InvalidArgumentError("--saturated-time-scale must be > 0");
  }
  if (only.empty() || only.find_first_not_of("abcd") != std::string::npos) {
    return absl::InvalidArgumentError("--only takes letters of abcd");
  }
  return absl::OkStatus();
}

std::string ReplaceSection(const std::string& document, const std::string& section) {
  const size_t begin = document.find(kBegin);
  const size_t end = document.find(kEnd);
  if (begin == std::string::npos || end == std::string::npos || end < begin) {
    std::string out = document;
    if (!out.empty() && out.back() != '\n') out += '\n';
    return out + "\n" + section;
  }
  const size_t after = end + std::string(kEnd).size();
  std::string tail = document.substr(after);
  if (!tail.empty() && tail.front() == '\n') tail.erase(0, 1);
  return document.substr(0, begin) + section + tail;
}

absl::StatusOr<std::string> RunExperiments(const ExperimentsOptions& options,
                                           const ProgressFn& progress) {
  STRATA_RETURN_IF_ERROR(options.Validate());
  if (!GnuplotAvailable()) {
    return absl::FailedPreconditionError("gnuplot is needed for the plots: apt install gnuplot-nox");
  }
  TraceOptions to;
  to.max_requests = options.max_requests;
  STRATA_ASSIGN_OR_RETURN(Trace trace, LoadTrace(options.trace_path, to));
  std::error_code ec;
  std::filesystem::create_directories(options.plot_dir, ec);
  if (ec) return absl::FailedPreconditionError(absl::StrCat("cannot create ", options.plot_dir));
  Runner runner(options, trace, progress);
  const double ideal = IdealHitRatio(trace);

  std::string md = absl::StrCat(
      kBegin, "\n## Replay experiments (strata-bench experiments)\n\n",
      "Generated by `strata-bench experiments --trace ", options.trace_path,
      options.max_requests > 0 ? absl::StrCat(" --requests ", options.max_requests) : "",
      absl::StrFormat(" --saturated-time-scale %s`", Num(options.saturated_time_scale)),
      " (sim mode: deterministic, so these figures reproduce exactly). Trace: ", trace.source,
      ", ", trace.requests.size(),
      absl::StrFormat(" requests, ideal hit ratio %.3f. Engines: simulated H100 80GB with "
                      "Llama-3-8B shapes (bench/README.md), hbm(emulated); DRAM 1 TiB and SSD 8 "
                      "TiB per node; SSD 6.8 GB/s unless a row says otherwise.\n",
                      ideal));
  if (options.only.find('a') != std::string::npos) {
    STRATA_RETURN_IF_ERROR(ExperimentA(options, runner, &md));
  }
  if (options.only.find('b') != std::string::npos) {
    STRATA_RETURN_IF_ERROR(ExperimentB(options, runner, &md));
  }
  if (options.only.find('c') != std::string::npos) {
    STRATA_RETURN_IF_ERROR(ExperimentC(options, runner, ideal, &md));
  }
  if (options.only.find('d') != std::string::npos) {
    STRATA_RETURN_IF_ERROR(ExperimentD(options, runner, &md));
  }
  absl::StrAppend(&md, kEnd, "\n");

  std::string document;
  {
    std::ifstream in(options.results_path);
    std::stringstream s;
    s << in.rdbuf();
    document = s.str();
  }
  const std::string updated = ReplaceSection(document, md);
  const std::string tmp = options.results_path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << updated;
    if (!out) return absl::FailedPreconditionError(absl::StrCat("cannot write ", tmp));
  }
  std::filesystem::rename(tmp, options.results_path, ec);
  if (ec) return absl::FailedPreconditionError(absl::StrCat("cannot write ", options.results_path));
  return md;
}

}  // namespace strata::bench
