// strata-gpu-bench: correctness of the KV gather/scatter kernels against the CPU reference, then
// offload/onload throughput against pinned cudaMemcpyAsync measured in the same run
// (bench/gpu/README.md). Flags -> options -> run -> gpu-bench.json and the short table, last.
//
// Exit status: 0 every check passed; 1 a mismatch or a CUDA error; 2 bad flags; 3 no usable GPU
// (only the CPU cross-check ran, and it passed).
#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "bench/gpu/gpu_bench_buffers.h"
#include "bench/gpu/gpu_bench_correctness.h"
#include "bench/gpu/gpu_bench_options.h"
#include "bench/gpu/gpu_bench_report.h"
#include "bench/gpu/gpu_bench_throughput.h"
#include "cachenode/gpu/kv_cuda.h"

namespace strata::bench {
namespace {

constexpr int kExitFailed = 1;
constexpr int kExitBadFlags = 2;
constexpr int kExitNoGpu = 3;

gpu::Status DescribeDevice(GpuDeviceInfo* d) {
  gpu::GpuDevice dev;
  BENCH_RETURN_IF_ERROR(gpu::CurrentDevice(&dev));
  d->ordinal = dev.ordinal;
  d->name = dev.name;
  d->multiprocessors = dev.multiprocessors;
  d->total_memory_bytes = dev.total_memory_bytes;
  d->compute_major = dev.compute_major;
  d->compute_minor = dev.compute_minor;
  BENCH_CUDA(cudaDriverGetVersion(&d->driver_version));
  BENCH_CUDA(cudaRuntimeGetVersion(&d->runtime_version));
  char bus[32] = {};
  BENCH_CUDA(cudaDeviceGetPCIBusId(bus, sizeof(bus), dev.ordinal));
  d->pci_bus_id = bus;
  return gpu::Status::Ok();
}

// Writes gpu-bench.json and gpu-bench-table.txt, then prints the table (the last thing printed).
void Finish(const GpuBenchReport& report, const std::string& out_dir) {
  const std::string table = ShortTable(report);
  gpu::Status s = WriteFileIn(out_dir, "gpu-bench.json", ReportJson(report));
  if (s.ok()) s = WriteFileIn(out_dir, "gpu-bench-table.txt", table);
  if (s.ok()) {
    std::printf("results: %s/gpu-bench.json\n", out_dir.c_str());
  } else {
    std::printf("strata-gpu-bench: could not write results: %s\n", s.ToString().c_str());
  }
  std::printf("\n%s", table.c_str());
  std::fflush(stdout);
}

int Run(int argc, char** argv) {
  GpuBenchOptions options;
  std::string error;
  switch (ParseGpuBenchFlags(argc, argv, &options, &error)) {
    case ParseOutcome::kHelp:
      std::printf("%s", GpuBenchUsage().c_str());
      return 0;
    case ParseOutcome::kError:
      std::fprintf(stderr, "strata-gpu-bench: %s (see --help)\n", error.c_str());
      return kExitBadFlags;
    case ParseOutcome::kRun:
      break;
  }
  std::string out_dir = options.out_dir;
  if (out_dir.empty()) {
    const char* env = std::getenv("STRATA_GPU_BENCH_OUT");
    out_dir = env != nullptr && *env != '\0' ? env : "gpu-bench-results";
  }
  if (!options.seed_given) {
    std::random_device rd;
    options.seed = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }
  std::printf("strata-gpu-bench: seed %llu (--seed %llu reproduces the data)%s\n",
              static_cast<unsigned long long>(options.seed),
              static_cast<unsigned long long>(options.seed), options.quick ? ", quick" : "");
  std::fflush(stdout);

  GpuBenchReport report;
  report.seed = options.seed;
  report.quick = options.quick;
  report.check_only = options.check_only;
  report.reps = options.reps;
  Rng rng(options.seed);
  const std::vector<LayoutCase> cases = MakeLayoutCases(rng, options.quick);

  std::string why;
  report.device.usable = gpu::CudaUsable(&why);
  if (report.device.usable) {
    if (gpu::Status s = DescribeDevice(&report.device); !s.ok()) {
      report.device.usable = false;
      why = s.ToString();
    }
  }
  if (!report.device.usable) {
    report.device.why_unusable = why;
    std::printf("strata-gpu-bench: no usable GPU: %s\n", why.c_str());
    std::printf("correctness: CPU cross-check of the kernels' index math only\n");
    RunCpuCrossChecks(cases, rng, &report.cases);
    Finish(report, out_dir);
    return report.FailedCases() == 0 ? kExitNoGpu : kExitFailed;
  }
  const GpuDeviceInfo& d = report.device;
  std::printf("device %d: %s, %d SMs, %.1f GiB, compute %d.%d, PCI %s, CUDA driver %d runtime %d\n",
              d.ordinal, d.name.c_str(), d.multiprocessors,
              d.total_memory_bytes / double(1ull << 30), d.compute_major, d.compute_minor,
              d.pci_bus_id.c_str(), d.driver_version, d.runtime_version);

  std::printf("correctness: %zu layout cases, kernels and CPU plan against the CPU reference\n",
              cases.size());
  std::fflush(stdout);
  RunCpuCrossChecks(cases, rng, &report.cases);
  RunGpuChecks(cases, rng, &report.cases, &report.errors);
  std::printf("correctness: %zu checks, %d failed, %llu mismatched bytes\n", report.cases.size(),
              report.FailedCases(), static_cast<unsigned long long>(report.MismatchedBytes()));
  std::fflush(stdout);

  if (!options.check_only) {
    // A kernel fault leaves the context unusable: say so instead of timing garbage.
    const cudaError_t sticky = cudaDeviceSynchronize();
    if (sticky != cudaSuccess) {
      report.errors.push_back(
          std::string("device unusable after the checks, throughput skipped: ") +
          cudaGetErrorName(sticky) + ": " + cudaGetErrorString(sticky));
      std::printf("%s\n", report.errors.back().c_str());
    } else {
      RunThroughput(options, rng, &report.rows, &report.errors);
    }
  }
  Finish(report, out_dir);
  return report.FailedCases() == 0 && report.errors.empty() ? 0 : kExitFailed;
}

}  // namespace
}  // namespace strata::bench

int main(int argc, char** argv) { return strata::bench::Run(argc, argv); }
