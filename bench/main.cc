// strata-bench: args -> options -> run -> report. Progress on stderr, results on stdout.
#include <iostream>
#include <string>
#include <vector>

#include "bench/bench_args.h"
#include "bench/report.h"
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
  }
  return 2;
}
