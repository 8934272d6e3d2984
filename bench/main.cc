// strata-bench: args -> options -> run -> report. Progress on stderr, results on stdout.
#include <iostream>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "bench/bench_args.h"
#include "bench/report.h"
#include "bench/router_bench.h"
#include "bench/tiers_bench.h"
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

}  // namespace
}  // namespace strata::bench

int main(int argc, char** argv) {
  using strata::bench::BenchCommand;
  const std::vector<std::string> args(argv + 1, argv + argc);
  absl::StatusOr<BenchCommand> cmd = strata::bench::ParseBenchArgs(args);
  if (!cmd.ok()) {
    std::cerr << "strata-bench: " << cmd.status().message() << "\n\n"
              << strata::bench::BenchUsage();
    return 2;
  }
  switch (cmd->kind) {
    case BenchCommand::Kind::kHelp:
      std::cout << strata::bench::BenchUsage();
      return 0;
    case BenchCommand::Kind::kTiers:
      return strata::bench::RunTiersCommand(*cmd);
    case BenchCommand::Kind::kWorkload:
      return strata::bench::RunWorkloadCommand(*cmd);
    case BenchCommand::Kind::kRouter:
      return strata::bench::RunRouterCommand(*cmd);
  }
  return 2;
}
