#include "bench/gpu/gpu_bench_options.h"

#include <charconv>
#include <string_view>
#include <system_error>

namespace strata::bench {
namespace {

bool ParseU64(std::string_view text, uint64_t* out) {
  if (text.empty()) return false;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  return ec == std::errc() && ptr == end;
}

}  // namespace

gpu::Status GpuBenchOptions::Validate() const {
  if (reps < 1 || reps > 10000) {
    return gpu::InvalidArgument("--reps must be in [1, 10000], got " + std::to_string(reps));
  }
  return gpu::Status::Ok();
}

std::string GpuBenchUsage() {
  return "Usage: strata-gpu-bench [--check-only] [--quick] [--reps N] [--seed N] [--out DIR]\n"
         "\n"
         "Checks the KV gather/scatter kernels (cachenode/gpu) byte for byte against the CPU\n"
         "reference for every engine layout, then measures offload (gather into mapped pinned "
         "host\n"
         "memory) and onload (scatter from it) next to pinned cudaMemcpyAsync of one large buffer\n"
         "measured in the same run. See bench/gpu/README.md.\n"
         "\n"
         "  --check-only  correctness only, no throughput\n"
         "  --quick       small shapes and ~8 MiB per rep: seconds, also under compute-sanitizer;\n"
         "                its throughput figures are meaningless\n"
         "  --reps N      timed repetitions per throughput row, median reported (default 15)\n"
         "  --seed N      reproduce a run's random data (the seed is printed; default: random)\n"
         "  --out DIR     where gpu-bench.json and gpu-bench-table.txt go (default:\n"
         "                $STRATA_GPU_BENCH_OUT, else ./gpu-bench-results)\n"
         "  --help        this text\n"
         "\n"
         "Exit status: 0 all checks passed (targets are reported, never asserted); 1 a mismatch "
         "or\n"
         "a CUDA error; 2 bad flags; 3 no usable GPU (only the CPU cross-check ran, and passed).\n";
}

ParseOutcome ParseGpuBenchFlags(int argc, char** argv, GpuBenchOptions* out, std::string* error) {
  GpuBenchOptions o;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view value;
    bool has_value = false;
    if (const size_t eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    const bool takes_value = arg == "--reps" || arg == "--seed" || arg == "--out";
    if (takes_value && !has_value) {
      if (i + 1 >= argc) {
        *error = std::string(arg) + " needs a value";
        return ParseOutcome::kError;
      }
      value = argv[++i];
      has_value = true;
    } else if (!takes_value && has_value) {
      *error = std::string(arg) + " takes no value";
      return ParseOutcome::kError;
    }
    if (arg == "--help" || arg == "-h") {
      return ParseOutcome::kHelp;
    } else if (arg == "--check-only") {
      o.check_only = true;
    } else if (arg == "--quick") {
      o.quick = true;
    } else if (arg == "--reps") {
      uint64_t n = 0;
      if (!ParseU64(value, &n) || n > 1000000) {
        *error = "--reps needs a whole number, got '" + std::string(value) + "'";
        return ParseOutcome::kError;
      }
      o.reps = static_cast<int>(n);
    } else if (arg == "--seed") {
      if (!ParseU64(value, &o.seed)) {
        *error = "--seed needs a whole number in [0, 2^64), got '" + std::string(value) + "'";
        return ParseOutcome::kError;
      }
      o.seed_given = true;
    } else if (arg == "--out") {
      if (value.empty()) {
        *error = "--out needs a folder";
        return ParseOutcome::kError;
      }
      o.out_dir = std::string(value);
    } else {
      *error = "unknown argument '" + std::string(argv[i]) + "'";
      return ParseOutcome::kError;
    }
  }
  if (gpu::Status s = o.Validate(); !s.ok()) {
    *error = s.message();
    return ParseOutcome::kError;
  }
  *out = o;
  return ParseOutcome::kRun;
}

}  // namespace strata::bench
