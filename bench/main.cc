// strata-bench: args -> options -> run -> report. Progress on stderr, results on stdout.
#include <atomic>
#include <csignal>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "bench/bench_args.h"
#include "bench/experiments.h"
#include "bench/plot.h"
#include "bench/replay.h"
#include "bench/report.h"
#include "bench/router_bench.h"
#include "bench/soak.h"
#include "bench/tiers_bench.h"
#include "bench/trace.h"
#include "bench/trace_gen.h"
#include "bench/workload.h"

namespace strata::bench {
namespace {

void Progress(const std::string& line) { std::cerr << "strata-bench: " << line << std::endl; }

int RunTiersCommand(const BenchCommand& cmd) {
  absl::StatusOr<std::vector<Row>> rows = RunTiers(cmd.tiers, Progress);
  if (!rows.ok()) {
    std::cerr << "strata-bench tiers: " << rows.status().ToString() << "\n";
    return 1;
  }
  std::cout << (cmd.output == OutputFormat::kJson ? FormatJsonLines(*rows) : FormatTable(*rows));
  return 0;
}

int RunWorkloadCommand(const BenchCommand& cmd) {
  absl::StatusOr<WorkloadSummary> summary = RunWorkload(cmd.workload, Progress);
  if (!summary.ok()) {
    std::cerr << "strata-bench workload: " << summary.status().ToString() << "\n";
    return 1;
  }
  std::cout << (cmd.output == OutputFormat::kJson ? FormatWorkloadJson(*summary)
                                                  : FormatWorkloadText(*summary));
  return summary->ok() ? 0 : 1;
}

int RunRouterCommand(const BenchCommand& cmd) {
  // Debian's Abseil is built without NDEBUG, so every absl::Mutex acquisition runs deadlock
  // detection (a global graph lookup): 7% of this benchmark's CPU in a profile, on a path that
  // takes a shard lock per key. strata-router needs the same call in its main().
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::StatusOr<RouterSummary> summary = RunRouterBench(cmd.router, Progress);
  if (!summary.ok()) {
    std::cerr << "strata-bench router: " << summary.status().ToString() << "\n";
    return 1;
  }
  std::cout << (cmd.output == OutputFormat::kJson ? FormatRouterJson(*summary)
                                                  : FormatRouterText(*summary));
  return 0;
}

std::atomic<bool> g_stop{false};
extern "C" void OnStopSignal(int) { g_stop.store(true); }

int RunReplayCommand(const BenchCommand& cmd) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Ctrl-C stops the replay at its next event, so live mode stops the processes it started.
  std::signal(SIGINT, OnStopSignal);
  std::signal(SIGTERM, OnStopSignal);
  ReplayOptions options = cmd.replay;
  options.cancel = &g_stop;
  absl::StatusOr<ReplayResult> result = RunReplay(options, Progress);
  if (!result.ok()) {
    std::cerr << "strata-bench replay: " << result.status().ToString() << "\n";
    return 1;
  }
  std::cout << (cmd.output == OutputFormat::kJson ? FormatReplayJson(*result)
                                                  : FormatReplayText(*result));
  if (!cmd.plot.empty()) {
    const absl::Status s = WritePlot(ReplayPlot(*result), cmd.plot);
    if (!s.ok()) {
      std::cerr << "strata-bench replay: --plot: " << s.ToString() << "\n";
      return 1;
    }
    Progress("wrote " + cmd.plot);
  }
  return result->live.rpc_errors == 0 ? 0 : 1;
}

int RunExperimentsCommand(const BenchCommand& cmd) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::StatusOr<std::string> md = RunExperiments(cmd.experiments, Progress);
  if (!md.ok()) {
    std::cerr << "strata-bench experiments: " << md.status().ToString() << "\n";
    return 1;
  }
  std::cout << *md;
  Progress("updated " + cmd.experiments.results_path);
  return 0;
}

int RunGenCommand(const BenchCommand& cmd) {
  absl::StatusOr<std::vector<TraceRequest>> trace = GenerateTrace(cmd.gen);
  if (!trace.ok()) {
    std::cerr << "strata-bench gen: " << trace.status().ToString() << "\n";
    return 1;
  }
  const std::string text = FormatTrace(*trace);
  if (cmd.gen_out.empty()) {
    std::cout << text;
  } else {
    std::ofstream out(cmd.gen_out, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) {
      std::cerr << "strata-bench gen: cannot write " << cmd.gen_out << "\n";
      return 1;
    }
  }
  const GenSummary s = SummarizeTrace(*trace, cmd.gen.block_tokens);
  Progress(absl::StrFormat(
      "gen: %d requests over %.1f s, mean input %.0f tokens, mean output %.0f, ideal hit ratio "
      "%.3f%s",
      s.requests, s.duration_s, static_cast<double>(s.input_tokens) / std::max<uint64_t>(1, s.requests),
      static_cast<double>(s.output_tokens) / std::max<uint64_t>(1, s.requests), s.ideal_hit_ratio,
      cmd.gen_out.empty() ? "" : ", written to " + cmd.gen_out));
  return 0;
}

// `soak` parses its own flags (bench/soak.h), so its options stay beside the code that runs them.
int RunSoakCommand(const std::vector<std::string>& args) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::StatusOr<SoakCommand> cmd = ParseSoakArgs(args);
  if (!cmd.ok()) {
    std::cerr << "strata-bench: " << cmd.status().message() << "\n\n" << SoakUsage();
    return 2;
  }
  if (cmd->help) {
    std::cout << SoakUsage();
    return 0;
  }
  absl::StatusOr<SoakResult> result = RunSoak(cmd->options, Progress);
  if (!result.ok()) {
    std::cerr << "strata-bench soak: " << result.status().ToString() << "\n";
    return 1;
  }
  std::cout << (cmd->output == SoakOutput::kJson ? FormatSoakJson(*result)
                                                 : FormatSoakText(*result));
  for (const std::string& f : result->failures) Progress("soak failed: " + f);
  return result->ok() ? 0 : 1;
}

}  // namespace
}  // namespace strata::bench

int main(int argc, char** argv) {
  using strata::bench::BenchCommand;
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "soak") {
    return strata::bench::RunSoakCommand({args.begin() + 1, args.end()});
  }
  absl::StatusOr<BenchCommand> cmd = strata::bench::ParseBenchArgs(args);
  if (!cmd.ok()) {
    std::cerr << "strata-bench: " << cmd.status().message() << "\n\n"
              << strata::bench::BenchUsage();
    return 2;
  }
  switch (cmd->kind) {
    case BenchCommand::Kind::kHelp:
      std::cout << strata::bench::BenchUsage() << "\n" << strata::bench::SoakUsage();
      return 0;
    case BenchCommand::Kind::kTiers:
      return strata::bench::RunTiersCommand(*cmd);
    case BenchCommand::Kind::kWorkload:
      return strata::bench::RunWorkloadCommand(*cmd);
    case BenchCommand::Kind::kRouter:
      return strata::bench::RunRouterCommand(*cmd);
    case BenchCommand::Kind::kReplay:
      return strata::bench::RunReplayCommand(*cmd);
    case BenchCommand::Kind::kGen:
      return strata::bench::RunGenCommand(*cmd);
    case BenchCommand::Kind::kExperiments:
      return strata::bench::RunExperimentsCommand(*cmd);
  }
  return 2;
}
