// Options of strata-gpu-bench and the parsing of its flags. Pure functions over plain values;
// thread-compatible. main() is the only place that reads the environment (STRATA_GPU_BENCH_OUT).
#pragma once

#include <cstdint>
#include <string>

#include "cachenode/gpu/gpu_status.h"

namespace strata::bench {

struct GpuBenchOptions {
  // Correctness only, no throughput: what compute-sanitizer runs (with quick).
  bool check_only = false;
  // Small shapes and ~8 MiB per throughput rep: finishes in seconds, even under compute-sanitizer.
  // Its throughput figures mean nothing.
  bool quick = false;
  // Timed repetitions per throughput row, after warm-up; rows report the median. Fewer than 10
  // makes the median noisy (the brief asks for >= 10); allowed for quick looks.
  int reps = 15;
  // Seed of all random data and choices; random (std::random_device) unless given.
  bool seed_given = false;
  uint64_t seed = 0;
  // Folder for gpu-bench.json and gpu-bench-table.txt; empty: main() picks
  // $STRATA_GPU_BENCH_OUT, else ./gpu-bench-results.
  std::string out_dir;

  // OK, or InvalidArgument naming the bad field.
  gpu::Status Validate() const;
};

enum class ParseOutcome {
  kRun,    // options filled, run
  kHelp,   // --help: print GpuBenchUsage() and exit 0
  kError,  // *error says what is wrong: print it with the usage, exit 2
};

// Parses argv[1..]. Flags: --help, --check-only, --quick, --reps N, --seed N, --out DIR (also
// --flag=value). Runs Validate() on the result.
ParseOutcome ParseGpuBenchFlags(int argc, char** argv, GpuBenchOptions* out, std::string* error);

std::string GpuBenchUsage();

}  // namespace strata::bench
