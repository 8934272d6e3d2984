// Command line of strata-bench: `strata-bench COMMAND [--flag value | --flag=value]...`, parsed
// into the options structs of each command. Kept out of main.cc so the parsing is unit-tested.
// Pure.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/experiments.h"
#include "bench/replay.h"
#include "bench/router_bench.h"
#include "bench/trace_gen.h"
#include "bench/tiers_bench.h"
#include "bench/workload.h"

namespace strata::bench {

enum class OutputFormat { kText, kJson };

struct BenchCommand {
  enum class Kind { kHelp, kTiers, kWorkload, kRouter, kReplay, kGen, kExperiments };
  Kind kind = Kind::kHelp;
  OutputFormat output = OutputFormat::kText;
  TiersOptions tiers;
  WorkloadOptions workload;
  RouterBenchOptions router;
  ReplayOptions replay;
  std::string plot;  // replay --plot FILE.png
  GenOptions gen;
  ExperimentsOptions experiments;
  std::string gen_out;  // gen --out FILE; empty: stdout
};

// `args` excludes argv[0]. InvalidArgument naming the problem (unknown command or flag, missing or
// malformed value); options are validated too.
absl::StatusOr<BenchCommand> ParseBenchArgs(const std::vector<std::string>& args);

// The help text (commands, flags, defaults).
std::string BenchUsage();

}  // namespace strata::bench
