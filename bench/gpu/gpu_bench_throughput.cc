#include "bench/gpu/gpu_bench_throughput.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>

#include "cachenode/gpu/kv_cuda.h"
#include "cachenode/gpu/kv_layout.h"

namespace strata::bench {
namespace {

using gpu::EngineLayoutKind;
using gpu::KvLayout;
using gpu::KvShape;

constexpr uint64_t kKiB = 1ull << 10;
constexpr uint64_t kMiB = 1ull << 20;
// Targets of the issue: kernels within 10% of one large pinned memcpy for 16-32 KiB pieces, the
// two directions at once 1.5x one, launch and bookkeeping under 5% of a 1,000-block offload.
constexpr double kPieceTarget = 0.9;
constexpr uint64_t kPieceTargetMaxBytes = 32 * kKiB;
constexpr double kBothTarget = 1.5;
constexpr double kOverheadTarget = 0.05;
// Llama-3-8B: 8 KV heads x head_dim 128 x bf16 = 2 KiB per token and layer (K or V).
constexpr uint32_t kHeads = 8, kHeadDim = 128, kDtype = 2;
constexpr uint64_t kTokenBytes = kHeads * kHeadDim * kDtype;

class Event {
 public:
  Event() = default;
  ~Event() {
    if (e_ != nullptr) cudaEventDestroy(e_);
  }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  gpu::Status Create() {
    BENCH_CUDA(cudaEventCreate(&e_));
    return gpu::Status::Ok();
  }
  cudaEvent_t get() const { return e_; }

 private:
  cudaEvent_t e_ = nullptr;
};

// One stream's share of a timed step: what to enqueue on it and how to wait for it.
struct Lane {
  cudaStream_t stream = nullptr;
  std::function<gpu::Status()> enqueue;
  std::function<gpu::Status()> wait;
  const gpu::KvTransferStream* kv = nullptr;  // set: its last_kernel_ms() is collected
};

struct Timing {
  double ms = 0;          // median cudaEvent interval: start to the last lane's stop
  double wall_ms = 0;     // median host interval: first enqueue to every wait returned
  double kernel_ms = -1;  // median last_kernel_ms() of lane 0, when it is a KvTransferStream
};

// Starts all lanes together (lane 0 records the start; the others wait for it) and times them
// with cudaEvents, warm-up reps first.
class Timer {
 public:
  gpu::Status Init() {
    BENCH_RETURN_IF_ERROR(start_.Create());
    for (Event& e : stop_) BENCH_RETURN_IF_ERROR(e.Create());
    return gpu::Status::Ok();
  }

  gpu::Status Time(const std::vector<Lane>& lanes, int warmup, int reps, Timing* out) {
    if (lanes.empty() || lanes.size() > 2) return gpu::Internal("Timer takes 1 or 2 lanes");
    std::vector<double> ms, wall, kernel;
    for (int r = 0; r < warmup + reps; ++r) {
      BENCH_CUDA(cudaEventRecord(start_.get(), lanes[0].stream));
      for (size_t i = 1; i < lanes.size(); ++i) {
        BENCH_CUDA(cudaStreamWaitEvent(lanes[i].stream, start_.get(), 0));
      }
      const auto t0 = std::chrono::steady_clock::now();
      for (const Lane& lane : lanes) BENCH_RETURN_IF_ERROR(lane.enqueue());
      for (size_t i = 0; i < lanes.size(); ++i) {
        BENCH_CUDA(cudaEventRecord(stop_[i].get(), lanes[i].stream));
      }
      for (const Lane& lane : lanes) BENCH_RETURN_IF_ERROR(lane.wait());
      const auto t1 = std::chrono::steady_clock::now();
      float longest = 0;
      for (size_t i = 0; i < lanes.size(); ++i) {
        BENCH_CUDA(cudaEventSynchronize(stop_[i].get()));
        float e = 0;
        BENCH_CUDA(cudaEventElapsedTime(&e, start_.get(), stop_[i].get()));
        longest = std::max(longest, e);
      }
      if (r < warmup) continue;
      ms.push_back(longest);
      wall.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      if (lanes[0].kv != nullptr) kernel.push_back(lanes[0].kv->last_kernel_ms());
    }
    out->ms = Median(ms);
    out->wall_ms = Median(wall);
    out->kernel_ms = kernel.empty() ? -1 : Median(kernel);
    return gpu::Status::Ok();
  }

 private:
  Event start_;
  Event stop_[2];
};

// What every section shares: the arenas, two transfer streams, the timer.
struct Bench {
  int warmup = 2;
  int reps = 15;
  Rng* rng = nullptr;
  DeviceBuffer device;    // engine caches; the device side of the memcpy baselines
  MappedHostBuffer host;  // payloads; the host side of the memcpy baselines
  std::unique_ptr<gpu::KvTransferStream> a, b;
  Timer timer;
  std::vector<ThroughputRow>* rows = nullptr;

  cudaStream_t sa() const { return static_cast<cudaStream_t>(a->native_stream()); }
  cudaStream_t sb() const { return static_cast<cudaStream_t>(b->native_stream()); }
};

double Gbps(uint64_t bytes, double ms) { return ms > 0 ? bytes / (ms * 1e6) : 0; }

ThroughputRow& AddRow(Bench& b, const std::string& name, const std::string& layout, uint64_t piece,
                      uint64_t bytes, double ms, const std::string& baseline, double baseline_gbps,
                      TargetKind kind, double target, bool in_table) {
  ThroughputRow r;
  r.name = name;
  r.layout = layout;
  r.piece_bytes = piece;
  r.bytes = bytes;
  r.ms = ms;
  r.gbps = Gbps(bytes, ms);
  r.baseline = baseline;
  r.baseline_gbps = baseline_gbps;
  SetRatio(&r);
  r.target_kind = kind;
  r.target = target;
  r.in_table = in_table;
  b.rows->push_back(r);
  ThroughputRow& row = b.rows->back();
  std::printf("  %-14s %-21s piece %-6s %8.1f MiB %9.3f ms %8.2f GB/s", name.c_str(),
              layout.c_str(), FormatBytes(piece).c_str(), bytes / double(kMiB), ms, row.gbps);
  if (!baseline.empty()) {
    std::printf("  %.2fx %s (%.2f)", row.ratio, baseline.c_str(), baseline_gbps);
  }
  std::printf("\n");
  std::fflush(stdout);
  return row;
}

Lane MemcpyLane(cudaStream_t s, void* dst, const void* src, uint64_t bytes, cudaMemcpyKind kind) {
  Lane l;
  l.stream = s;
  l.enqueue = [=]() -> gpu::Status {
    BENCH_CUDA(cudaMemcpyAsync(dst, src, bytes, kind, s));
    return gpu::Status::Ok();
  };
  l.wait = [=]() -> gpu::Status {
    BENCH_CUDA(cudaStreamSynchronize(s));
    return gpu::Status::Ok();
  };
  return l;
}

// The layout, ids and payload addresses must outlive the lane.
Lane KernelLane(gpu::KvTransferStream* kv, const KvLayout* layout, const std::vector<uint32_t>* ids,
                const std::vector<uint64_t>* payloads, bool gather) {
  Lane l;
  l.stream = static_cast<cudaStream_t>(kv->native_stream());
  l.kv = kv;
  l.enqueue = [=]() -> gpu::Status {
    const uint32_t n = static_cast<uint32_t>(ids->size());
    if (gather) {
      BENCH_LAUNCH(kv->Gather(*layout, ids->data(), payloads->data(), n));
    } else {
      BENCH_LAUNCH(kv->Scatter(*layout, ids->data(), payloads->data(), n));
    }
    return gpu::Status::Ok();
  };
  l.wait = [=]() { return kv->Synchronize(); };
  return l;
}

// The naive baseline: one cudaMemcpyAsync per (block, layer, K/V) piece, each piece contiguous in
// the vLLM layout. `host` is the payload area (block i at host + i * payload).
Lane LoopLane(cudaStream_t s, const KvLayout* layout, const std::vector<uint32_t>* ids,
              uint8_t* host, bool gather) {
  Lane l;
  l.stream = s;
  l.enqueue = [=]() -> gpu::Status {
    const KvShape& sh = layout->shape;
    const uint64_t piece = sh.PieceBytes();
    for (size_t i = 0; i < ids->size(); ++i) {
      uint8_t* payload = host + i * sh.PayloadBytes();
      for (uint32_t layer = 0; layer < sh.num_layers; ++layer) {
        for (uint32_t kv = 0; kv < 2; ++kv) {
          auto* engine = reinterpret_cast<uint8_t*>(
              static_cast<uintptr_t>(layout->layer_bases[layer] + (*ids)[i] * layout->block_stride +
                                     kv * layout->kv_stride));
          uint8_t* p = payload + (layer * 2 + kv) * piece;
          if (gather) {
            BENCH_CUDA(cudaMemcpyAsync(p, engine, piece, cudaMemcpyDeviceToHost, s));
          } else {
            BENCH_CUDA(cudaMemcpyAsync(engine, p, piece, cudaMemcpyHostToDevice, s));
          }
        }
      }
    }
    return gpu::Status::Ok();
  };
  l.wait = [=]() -> gpu::Status {
    BENCH_CUDA(cudaStreamSynchronize(s));
    return gpu::Status::Ok();
  };
  return l;
}

gpu::Status DenseAt(EngineLayoutKind kind, const KvShape& shape, uint64_t base, KvLayout* out) {
  std::vector<uint64_t> bases;
  const uint64_t region = gpu::DenseRegionBytes(kind, shape);
  const uint32_t n = kind == EngineLayoutKind::kCrossLayer ? 1 : shape.num_layers;
  for (uint32_t l = 0; l < n; ++l) bases.push_back(base + l * region);
  return gpu::MakeDenseLayout(kind, shape, bases, out);
}

// Layers and blocks of a piece section: 32 layers, fewer when that leaves under 32 blocks.
KvShape PieceShape(uint64_t piece, uint64_t per_rep) {
  uint64_t layers = 32;
  if (per_rep / (layers * 2 * piece) < 32)
    layers = std::max<uint64_t>(1, per_rep / (32 * 2 * piece));
  const uint64_t count = std::max<uint64_t>(1, per_rep / (layers * 2 * piece));
  KvShape s;
  s.num_layers = static_cast<uint32_t>(layers);
  s.num_blocks = static_cast<uint32_t>(2 * count);  // half offloaded, the other half onloaded
  s.block_tokens = static_cast<uint32_t>(piece / kTokenBytes);
  s.kv_heads = kHeads;
  s.head_dim = kHeadDim;
  s.dtype_bytes = kDtype;
  return s;
}

gpu::Status PieceSection(Bench& b, uint64_t piece, uint64_t per_rep) {
  const KvShape shape = PieceShape(piece, per_rep);
  const uint32_t count = shape.num_blocks / 2;
  const uint64_t payload = shape.PayloadBytes();
  const uint64_t bytes = count * payload;
  const char* name = gpu::EngineLayoutName(EngineLayoutKind::kVllmFlashAttention);
  std::printf("pieces of %s: %u layers x %u of %u blocks, %s payloads, %.0f MiB per rep\n",
              FormatBytes(piece).c_str(), shape.num_layers, count, shape.num_blocks,
              FormatBytes(payload).c_str(), bytes / double(kMiB));
  KvLayout layout;
  BENCH_RETURN_IF_ERROR(
      DenseAt(EngineLayoutKind::kVllmFlashAttention, shape, b.device.address(), &layout));
  const std::vector<uint32_t> perm = b.rng->Permutation(shape.num_blocks);
  const std::vector<uint32_t> out_ids(perm.begin(), perm.begin() + count);
  const std::vector<uint32_t> in_ids(perm.begin() + count, perm.end());
  std::vector<uint64_t> out_at(count), in_at(count);
  for (uint32_t i = 0; i < count; ++i) {
    out_at[i] = b.host.device_address() + i * payload;
    in_at[i] = b.host.device_address() + bytes + i * payload;
  }
  uint8_t* host_out = b.host.host();
  uint8_t* host_in = b.host.host() + bytes;

  const Lane d2h = MemcpyLane(b.sa(), host_out, b.device.data(), bytes, cudaMemcpyDeviceToHost);
  const Lane h2d =
      MemcpyLane(b.sb(), b.device.data() + bytes, host_in, bytes, cudaMemcpyHostToDevice);
  const Lane off = KernelLane(b.a.get(), &layout, &out_ids, &out_at, /*gather=*/true);
  const Lane on = KernelLane(b.b.get(), &layout, &in_ids, &in_at, /*gather=*/false);
  const Lane loop_off = LoopLane(b.sa(), &layout, &out_ids, host_out, /*gather=*/true);
  const Lane loop_on = LoopLane(b.sb(), &layout, &in_ids, host_in, /*gather=*/false);

  Timing t;
  const bool targeted = piece <= kPieceTargetMaxBytes;
  const TargetKind piece_kind = targeted ? TargetKind::kAtLeast : TargetKind::kNone;
  BENCH_RETURN_IF_ERROR(b.timer.Time({d2h}, b.warmup, b.reps, &t));
  const double d2h_gbps =
      AddRow(b, "memcpy-d2h", "one buffer", piece, bytes, t.ms, "", 0, TargetKind::kNone, 0, false)
          .gbps;
  BENCH_RETURN_IF_ERROR(b.timer.Time({h2d}, b.warmup, b.reps, &t));
  const double h2d_gbps =
      AddRow(b, "memcpy-h2d", "one buffer", piece, bytes, t.ms, "", 0, TargetKind::kNone, 0, false)
          .gbps;
  BENCH_RETURN_IF_ERROR(b.timer.Time({off}, b.warmup, b.reps, &t));
  const double off_gbps = AddRow(b, "offload", name, piece, bytes, t.ms, "memcpy-d2h", d2h_gbps,
                                 piece_kind, kPieceTarget, true)
                              .gbps;
  BENCH_RETURN_IF_ERROR(b.timer.Time({on}, b.warmup, b.reps, &t));
  const double on_gbps = AddRow(b, "onload", name, piece, bytes, t.ms, "memcpy-h2d", h2d_gbps,
                                piece_kind, kPieceTarget, true)
                             .gbps;
  BENCH_RETURN_IF_ERROR(b.timer.Time({off, on}, b.warmup, b.reps, &t));
  AddRow(b, "both", name, piece, 2 * bytes, t.ms, "one-direction", std::max(off_gbps, on_gbps),
         TargetKind::kAtLeast, kBothTarget, true)
      .note = "offload and onload at once on two streams; baseline: the faster direction alone";
  // Into the HBM pool: the gather writing device memory (a D2D move), next to a D2D memcpy of one
  // buffer. The pool's stand-in lies after the engine cache (which takes 2 x bytes).
  std::vector<uint64_t> pool_at(count);
  for (uint32_t i = 0; i < count; ++i) pool_at[i] = b.device.address() + 2 * bytes + i * payload;
  const Lane d2d = MemcpyLane(b.sa(), b.device.data() + 2 * bytes, b.device.data(), bytes,
                              cudaMemcpyDeviceToDevice);
  BENCH_RETURN_IF_ERROR(b.timer.Time({d2d}, b.warmup, b.reps, &t));
  const double d2d_gbps =
      AddRow(b, "memcpy-d2d", "one buffer", piece, bytes, t.ms, "", 0, TargetKind::kNone, 0, false)
          .gbps;
  BENCH_RETURN_IF_ERROR(b.timer.Time(
      {KernelLane(b.a.get(), &layout, &out_ids, &pool_at, /*gather=*/true)}, b.warmup, b.reps, &t));
  AddRow(b, "offload-hbm", name, piece, bytes, t.ms, "memcpy-d2d", d2d_gbps, TargetKind::kNone, 0,
         false)
      .note = "gather into device memory (the HBM pool): a D2D move";
  BENCH_RETURN_IF_ERROR(b.timer.Time({d2h, h2d}, b.warmup, b.reps, &t));
  AddRow(b, "memcpy-both", "one buffer", piece, 2 * bytes, t.ms, "one-direction",
         std::max(d2h_gbps, h2d_gbps), TargetKind::kNone, 0, false)
      .note = "D2H and H2D at once on two streams";
  BENCH_RETURN_IF_ERROR(b.timer.Time({loop_off}, b.warmup, b.reps, &t));
  AddRow(b, "offload-loop", name, piece, bytes, t.ms, "memcpy-d2h", d2h_gbps, TargetKind::kNone, 0,
         false)
      .note = "one cudaMemcpyAsync per piece";
  BENCH_RETURN_IF_ERROR(b.timer.Time({loop_on}, b.warmup, b.reps, &t));
  AddRow(b, "onload-loop", name, piece, bytes, t.ms, "memcpy-h2d", h2d_gbps, TargetKind::kNone, 0,
         false)
      .note = "one cudaMemcpyAsync per piece";
  return gpu::Status::Ok();
}

// Llama-3-8B shape, `count` random blocks of a `blocks`-block cache, for each engine layout.
gpu::Status RealisticSection(Bench& b, uint32_t blocks, uint32_t count) {
  KvShape shape;
  shape.num_layers = 32;
  shape.num_blocks = blocks;
  shape.block_tokens = 16;
  shape.kv_heads = kHeads;
  shape.head_dim = kHeadDim;
  shape.dtype_bytes = kDtype;
  const uint64_t payload = shape.PayloadBytes();
  const uint64_t bytes = count * payload;
  const uint64_t piece = shape.PieceBytes();
  std::printf("llama-3-8b shape: %u of %u blocks, %s payloads, %.0f MiB per rep\n", count, blocks,
              FormatBytes(payload).c_str(), bytes / double(kMiB));
  Timing t;
  BENCH_RETURN_IF_ERROR(b.timer.Time(
      {MemcpyLane(b.sa(), b.host.host(), b.device.data(), bytes, cudaMemcpyDeviceToHost)}, b.warmup,
      b.reps, &t));
  const double d2h_gbps = AddRow(b, "llama-memcpy-d2h", "one buffer", piece, bytes, t.ms, "", 0,
                                 TargetKind::kNone, 0, false)
                              .gbps;
  BENCH_RETURN_IF_ERROR(b.timer.Time(
      {MemcpyLane(b.sa(), b.device.data(), b.host.host(), bytes, cudaMemcpyHostToDevice)}, b.warmup,
      b.reps, &t));
  const double h2d_gbps = AddRow(b, "llama-memcpy-h2d", "one buffer", piece, bytes, t.ms, "", 0,
                                 TargetKind::kNone, 0, false)
                              .gbps;

  std::vector<uint64_t> at(count);
  for (uint32_t i = 0; i < count; ++i) at[i] = b.host.device_address() + i * payload;
  for (EngineLayoutKind kind : {EngineLayoutKind::kVllmFlashAttention,
                                EngineLayoutKind::kFlashInfer, EngineLayoutKind::kCrossLayer}) {
    const char* name = gpu::EngineLayoutName(kind);
    KvLayout layout;
    BENCH_RETURN_IF_ERROR(DenseAt(kind, shape, b.device.address(), &layout));
    std::vector<uint32_t> ids = b.rng->Permutation(blocks);
    ids.resize(count);
    BENCH_RETURN_IF_ERROR(
        b.timer.Time({KernelLane(b.a.get(), &layout, &ids, &at, true)}, b.warmup, b.reps, &t));
    AddRow(b, "llama-offload", name, piece, bytes, t.ms, "memcpy-d2h", d2h_gbps,
           TargetKind::kAtLeast, kPieceTarget, true);
    const Timing off = t;
    BENCH_RETURN_IF_ERROR(
        b.timer.Time({KernelLane(b.a.get(), &layout, &ids, &at, false)}, b.warmup, b.reps, &t));
    AddRow(b, "llama-onload", name, piece, bytes, t.ms, "memcpy-h2d", h2d_gbps,
           TargetKind::kAtLeast, kPieceTarget, true);
    // Overhead: host wall time of Gather() + Synchronize() against the kernel alone.
    for (const auto& [row_name, timing, table] :
         {std::tuple{"llama-overhead", off, true}, std::tuple{"llama-overhead-onload", t, false}}) {
      ThroughputRow& r =
          AddRow(b, row_name, name, piece, bytes, timing.wall_ms, "kernel-alone",
                 Gbps(bytes, timing.kernel_ms), TargetKind::kAtMost, kOverheadTarget, table);
      r.kernel_ms = timing.kernel_ms;
      r.ratio = timing.wall_ms > 0 ? 1 - timing.kernel_ms / timing.wall_ms : 0;
      r.note = "ratio = 1 - kernel_ms / ms (host wall of the call and its Synchronize)";
      std::printf("    %s %s: %.2f%% of %.3f ms wall (kernel %.3f ms)\n", row_name, name,
                  r.ratio * 100, timing.wall_ms, timing.kernel_ms);
    }
  }
  return gpu::Status::Ok();
}

}  // namespace

void RunThroughput(const GpuBenchOptions& options, Rng& rng, std::vector<ThroughputRow>* rows,
                   std::vector<std::string>* errors) {
  const uint64_t per_rep = options.quick ? 8 * kMiB : 512 * kMiB;
  const uint32_t real_blocks = options.quick ? 40 : 2000;
  const uint32_t real_count = options.quick ? 16 : 1000;
  const uint64_t real_payload = 32ull * 2 * 16 * kTokenBytes;  // 2 MiB
  // Engine cache (2 x per_rep) plus the HBM pool's stand-in (per_rep) for the piece sections.
  const uint64_t device_bytes = std::max<uint64_t>(3 * per_rep, real_blocks * real_payload);
  const uint64_t host_bytes = std::max<uint64_t>(2 * per_rep, real_count * real_payload);

  Bench b;
  b.warmup = options.quick ? 1 : 2;
  b.reps = options.quick ? std::min(options.reps, 3) : options.reps;
  b.rng = &rng;
  b.rows = rows;
  auto setup = [&]() -> gpu::Status {
    size_t free_bytes = 0, total_bytes = 0;
    BENCH_CUDA(cudaMemGetInfo(&free_bytes, &total_bytes));
    if (device_bytes + 512 * kMiB > free_bytes) {
      return gpu::Internal("throughput needs " + std::to_string(device_bytes >> 20) +
                           " MiB of device memory, " + std::to_string(free_bytes >> 20) + " free");
    }
    const auto t0 = std::chrono::steady_clock::now();
    BENCH_RETURN_IF_ERROR(DeviceBuffer::Allocate(device_bytes, &b.device));
    BENCH_CUDA(cudaMemset(b.device.data(), 0x5A, device_bytes));
    BENCH_RETURN_IF_ERROR(MappedHostBuffer::Allocate(host_bytes, &b.host));
    BENCH_CUDA(cudaDeviceSynchronize());
    std::printf(
        "throughput: %.0f MiB device, %.0f MiB mapped pinned host, set up in %.2f s; "
        "%d warm-up + %d timed reps per row, medians\n",
        device_bytes / double(kMiB), host_bytes / double(kMiB),
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), b.warmup,
        b.reps);
    const uint32_t max_blocks = std::max<uint32_t>(real_count, 1024);
    BENCH_RETURN_IF_ERROR(gpu::KvTransferStream::Create(max_blocks, 64, &b.a));
    BENCH_RETURN_IF_ERROR(gpu::KvTransferStream::Create(max_blocks, 64, &b.b));
    return b.timer.Init();
  };
  if (gpu::Status s = setup(); !s.ok()) {
    errors->push_back("throughput setup: " + s.ToString());
    std::printf("throughput setup failed: %s\n", s.ToString().c_str());
    return;
  }
  for (uint64_t piece : {16 * kKiB, 32 * kKiB, 128 * kKiB, 2 * kMiB}) {
    if (gpu::Status s = PieceSection(b, piece, per_rep); !s.ok()) {
      errors->push_back("pieces of " + FormatBytes(piece) + ": " + s.ToString());
      std::printf("  FAILED: %s\n", s.ToString().c_str());
    }
  }
  if (gpu::Status s = RealisticSection(b, real_blocks, real_count); !s.ok()) {
    errors->push_back("llama-3-8b shape: " + s.ToString());
    std::printf("  FAILED: %s\n", s.ToString().c_str());
  }
  std::fflush(stdout);
}

}  // namespace strata::bench
