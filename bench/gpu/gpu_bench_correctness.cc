#include "bench/gpu/gpu_bench_correctness.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>

#include "cachenode/gpu/kv_cuda.h"
#include "cachenode/gpu/kv_plan.h"
#include "cachenode/gpu/kv_reference.h"

namespace strata::bench {
namespace {

using gpu::EngineLayoutKind;
using gpu::KvLayout;
using gpu::KvShape;

constexpr EngineLayoutKind kKinds[] = {EngineLayoutKind::kVllmFlashAttention,
                                       EngineLayoutKind::kFlashInfer,
                                       EngineLayoutKind::kCrossLayer};

uint64_t RoundUp(uint64_t v, uint64_t m) { return (v + m - 1) / m * m; }

KvShape Shape(uint32_t layers, uint32_t blocks, uint32_t tokens, uint32_t heads, uint32_t dim,
              uint32_t dtype) {
  KvShape s;
  s.num_layers = layers;
  s.num_blocks = blocks;
  s.block_tokens = tokens;
  s.kv_heads = heads;
  s.head_dim = dim;
  s.dtype_bytes = dtype;
  return s;
}

// Dense layers each in their own region with a 256-byte gap after it (the gaps must survive a
// scatter untouched), or one region for the cross-layer tensor.
LayoutCase DenseCase(std::string name, EngineLayoutKind kind, const KvShape& shape,
                     uint64_t payload_offset) {
  LayoutCase c;
  c.name = std::move(name);
  c.shape = shape;
  c.dense = true;
  c.kind = kind;
  c.payload_offset = payload_offset;
  const uint64_t region = gpu::DenseRegionBytes(kind, shape);
  const uint32_t regions = kind == EngineLayoutKind::kCrossLayer ? 1 : shape.num_layers;
  const uint64_t step = RoundUp(region, 256) + 256;
  for (uint32_t l = 0; l < regions; ++l) c.layer_offsets.push_back(l * step);
  c.region_bytes = regions * step;
  return c;
}

// Permutation-free but padded: every stride leaves a random gap after what it spans. Half the cases
// keep K/V outside the blocks (vLLM-like), half inside (FlashInfer-like). `unit` is the pad's
// granularity: dtype_bytes (so some strides are only element-aligned) or 16.
LayoutCase PaddedCase(int index, Rng& rng) {
  static constexpr uint32_t kDtypes[] = {1, 2, 4};
  const uint32_t dtype = kDtypes[rng.Below(3)];
  const uint64_t unit = rng.Below(2) == 0 ? dtype : 16;
  // With 16-byte pads, head rows of whole 16-byte vectors too, so the 16-byte path sees padding.
  const uint32_t head_dim = unit == 16 ? static_cast<uint32_t>(16 / dtype * rng.Between(1, 4))
                                       : static_cast<uint32_t>(rng.Between(1, 40));
  const KvShape shape =
      Shape(static_cast<uint32_t>(rng.Between(1, 4)), static_cast<uint32_t>(rng.Between(2, 12)),
            static_cast<uint32_t>(rng.Between(1, 17)), static_cast<uint32_t>(rng.Between(1, 5)),
            head_dim, dtype);
  LayoutCase c;
  c.name = "padded " + std::to_string(index);
  c.shape = shape;
  c.dense = false;
  const uint64_t row = static_cast<uint64_t>(shape.head_dim) * dtype;
  c.head_stride = RoundUp(row, unit) + unit * rng.Below(3);
  c.token_stride = shape.kv_heads * c.head_stride + unit * rng.Below(3);
  const uint64_t piece_span = shape.block_tokens * c.token_stride;
  if (rng.Below(2) == 0) {  // vLLM-like: [2, blocks, ...]
    c.block_stride = piece_span + unit * rng.Below(4);
    c.kv_stride = shape.num_blocks * c.block_stride + unit * rng.Below(4);
    c.layer_bytes = 2 * c.kv_stride + unit * rng.Below(4);
    c.name += " kv-outer";
  } else {  // FlashInfer-like: [blocks, 2, ...]
    c.kv_stride = piece_span + unit * rng.Below(4);
    c.block_stride = 2 * c.kv_stride + unit * rng.Below(4);
    c.layer_bytes = shape.num_blocks * c.block_stride + unit * rng.Below(4);
    c.name += " kv-inner";
  }
  uint64_t offset = unit * rng.Below(4);
  for (uint32_t l = 0; l < shape.num_layers; ++l) {
    c.layer_offsets.push_back(offset);
    offset += c.layer_bytes + unit * rng.Below(5);
  }
  c.region_bytes = offset + 64;
  return c;
}

// Payloads: slot i at base + payload_offset + i * slot, with a 16-byte poisoned gap after each.
uint64_t PayloadSlot(const LayoutCase& c) { return RoundUp(c.shape.PayloadBytes(), 16) + 16; }
uint64_t PayloadBufferBytes(const LayoutCase& c, uint64_t count) {
  return c.payload_offset + count * PayloadSlot(c) + 16;
}
std::vector<uint64_t> PayloadAddresses(const LayoutCase& c, uint64_t base, uint64_t count) {
  std::vector<uint64_t> a(count);
  for (uint64_t i = 0; i < count; ++i) a[i] = base + c.payload_offset + i * PayloadSlot(c);
  return a;
}

// Gather: num_blocks + 1..4 ids drawn with repeats, the last one always repeating the first.
std::vector<uint32_t> GatherIds(const LayoutCase& c, Rng& rng) {
  const uint32_t n = c.shape.num_blocks + static_cast<uint32_t>(rng.Between(1, 4));
  std::vector<uint32_t> ids(n);
  for (uint32_t& id : ids) id = static_cast<uint32_t>(rng.Below(c.shape.num_blocks));
  ids.back() = ids.front();
  return ids;
}

// Scatter: a random proper subset of distinct ids (untouched blocks must keep the poison).
std::vector<uint32_t> ScatterIds(const LayoutCase& c, Rng& rng) {
  std::vector<uint32_t> ids = rng.Permutation(c.shape.num_blocks);
  const uint32_t n =
      c.shape.num_blocks > 1 ? static_cast<uint32_t>(rng.Between(1, c.shape.num_blocks - 1)) : 1;
  ids.resize(n);
  return ids;
}

// The width MakeCopyPlan picks for these addresses (what the launch will use); 0 on error.
uint32_t VecBytes(const KvLayout& layout, const std::vector<uint64_t>& payloads) {
  gpu::KvCopyPlan plan;
  if (!gpu::MakeCopyPlan(layout, gpu::AddressAlignment(payloads.data(), payloads.size()), &plan)
           .ok()) {
    return 0;
  }
  return plan.vec_bytes;
}

// Compares whole buffers; `what` names the buffer ("payloads" or "engine") in the details.
void Compare(const uint8_t* want, const uint8_t* got, uint64_t bytes, const LayoutCase& c,
             bool payloads, CorrectnessCase* out) {
  out->bytes_compared = bytes;
  out->mismatched_bytes = 0;
  int shown = 0;
  for (uint64_t i = 0; i < bytes; ++i) {
    if (want[i] == got[i]) continue;
    ++out->mismatched_bytes;
    if (shown++ >= 3) continue;
    char buf[160];
    if (payloads) {
      const uint64_t rel = i >= c.payload_offset ? i - c.payload_offset : 0;
      std::snprintf(buf, sizeof(buf), "%sbyte %llu (payload %llu +%llu): want 0x%02x got 0x%02x",
                    shown > 1 ? "; " : "", static_cast<unsigned long long>(i),
                    static_cast<unsigned long long>(rel / PayloadSlot(c)),
                    static_cast<unsigned long long>(rel % PayloadSlot(c)), want[i], got[i]);
    } else {
      std::snprintf(buf, sizeof(buf), "%sengine byte %llu: want 0x%02x got 0x%02x",
                    shown > 1 ? "; " : "", static_cast<unsigned long long>(i), want[i], got[i]);
    }
    out->detail += buf;
  }
}

CorrectnessCase NewCase(const LayoutCase& c, const char* check, size_t blocks) {
  CorrectnessCase r;
  r.layout_case = c.name;
  r.shape = c.Describe();
  r.check = check;
  r.blocks = static_cast<uint32_t>(blocks);
  return r;
}

// Runs one check; a non-OK status becomes the case's error.
template <typename F>
void Record(CorrectnessCase r, std::vector<CorrectnessCase>* out, F&& body) {
  gpu::Status s = body(&r);
  if (!s.ok()) r.error = s.ToString();
  out->push_back(std::move(r));
}

// ---- CPU cross-check

gpu::Status CpuCopy(const KvLayout& layout, const std::vector<uint32_t>& ids,
                    const std::vector<uint64_t>& payloads, bool gather, uint32_t* vec) {
  gpu::KvCopyPlan plan;
  BENCH_RETURN_IF_ERROR(
      gpu::MakeCopyPlan(layout, gpu::AddressAlignment(payloads.data(), payloads.size()), &plan));
  BENCH_RETURN_IF_ERROR(gpu::ValidateBlockIds(layout, ids.data(), ids.size(), gather));
  *vec = plan.vec_bytes;
  gpu::KvCopyArgs args;
  args.plan = plan;
  args.layer_bases = layout.layer_bases.data();
  args.block_ids = ids.data();
  args.payloads = payloads.data();
  args.count = static_cast<uint32_t>(ids.size());
  args.gather = gather;
  gpu::RunCopyOnCpu(args);
  return gpu::Status::Ok();
}

gpu::Status CpuChecks(const LayoutCase& c, Rng& rng, std::vector<CorrectnessCase>* out) {
  HostBuffer engine;
  BENCH_RETURN_IF_ERROR(HostBuffer::Allocate(c.region_bytes, &engine));
  rng.Fill(engine.data(), engine.size());
  KvLayout layout;
  BENCH_RETURN_IF_ERROR(LayoutAt(c, engine.address(), &layout));

  const std::vector<uint32_t> gids = GatherIds(c, rng);
  const uint64_t gbytes = PayloadBufferBytes(c, gids.size());
  Record(NewCase(c, "cpu-plan-gather", gids.size()), out, [&](CorrectnessCase* r) {
    HostBuffer want, got;
    BENCH_RETURN_IF_ERROR(HostBuffer::Allocate(gbytes, &want));
    BENCH_RETURN_IF_ERROR(HostBuffer::Allocate(gbytes, &got));
    std::memset(want.data(), kPoison, gbytes);
    std::memset(got.data(), kPoison, gbytes);
    const auto want_at = PayloadAddresses(c, want.address(), gids.size());
    const auto got_at = PayloadAddresses(c, got.address(), gids.size());
    BENCH_RETURN_IF_ERROR(gpu::GatherReference(layout, gids.data(), want_at.data(), gids.size()));
    BENCH_RETURN_IF_ERROR(CpuCopy(layout, gids, got_at, /*gather=*/true, &r->vec_bytes));
    Compare(want.data(), got.data(), gbytes, c, /*payloads=*/true, r);
    return gpu::Status::Ok();
  });

  const std::vector<uint32_t> sids = ScatterIds(c, rng);
  const uint64_t sbytes = PayloadBufferBytes(c, sids.size());
  Record(NewCase(c, "cpu-plan-scatter", sids.size()), out, [&](CorrectnessCase* r) {
    HostBuffer src, want, got;
    BENCH_RETURN_IF_ERROR(HostBuffer::Allocate(sbytes, &src));
    BENCH_RETURN_IF_ERROR(HostBuffer::Allocate(c.region_bytes, &want));
    BENCH_RETURN_IF_ERROR(HostBuffer::Allocate(c.region_bytes, &got));
    rng.Fill(src.data(), sbytes);
    std::memset(want.data(), kPoison, c.region_bytes);
    std::memset(got.data(), kPoison, c.region_bytes);
    KvLayout want_layout, got_layout;
    BENCH_RETURN_IF_ERROR(LayoutAt(c, want.address(), &want_layout));
    BENCH_RETURN_IF_ERROR(LayoutAt(c, got.address(), &got_layout));
    const auto src_at = PayloadAddresses(c, src.address(), sids.size());
    BENCH_RETURN_IF_ERROR(
        gpu::ScatterReference(want_layout, sids.data(), src_at.data(), sids.size()));
    BENCH_RETURN_IF_ERROR(CpuCopy(got_layout, sids, src_at, /*gather=*/false, &r->vec_bytes));
    Compare(want.data(), got.data(), c.region_bytes, c, /*payloads=*/false, r);
    return gpu::Status::Ok();
  });
  return gpu::Status::Ok();
}

// ---- GPU checks

// Gathers `ids` on the GPU into payloads at `dev_payloads` (device addresses) and waits. The
// setup's cudaMemcpy/cudaMemset ran on the legacy stream, which a non-blocking stream does not
// wait for (and a pageable cudaMemcpy may return before its DMA ends): hence the device sync.
gpu::Status GpuGather(gpu::KvTransferStream& stream, const KvLayout& layout,
                      const std::vector<uint32_t>& ids, const std::vector<uint64_t>& dev_payloads) {
  BENCH_CUDA(cudaDeviceSynchronize());
  BENCH_LAUNCH(
      stream.Gather(layout, ids.data(), dev_payloads.data(), static_cast<uint32_t>(ids.size())));
  return stream.Synchronize();
}

gpu::Status GpuScatter(gpu::KvTransferStream& stream, const KvLayout& layout,
                       const std::vector<uint32_t>& ids,
                       const std::vector<uint64_t>& dev_payloads) {
  BENCH_CUDA(cudaDeviceSynchronize());
  BENCH_LAUNCH(
      stream.Scatter(layout, ids.data(), dev_payloads.data(), static_cast<uint32_t>(ids.size())));
  return stream.Synchronize();
}

gpu::Status GpuChecks(const LayoutCase& c, Rng& rng, gpu::KvTransferStream& stream,
                      std::vector<CorrectnessCase>* out) {
  // The engine cache: random bytes, on the device and as a host image for the reference.
  HostBuffer host_engine;
  BENCH_RETURN_IF_ERROR(HostBuffer::Allocate(c.region_bytes, &host_engine));
  rng.Fill(host_engine.data(), c.region_bytes);
  DeviceBuffer dev_engine;
  BENCH_RETURN_IF_ERROR(DeviceBuffer::Allocate(c.region_bytes, &dev_engine));
  BENCH_CUDA(
      cudaMemcpy(dev_engine.data(), host_engine.data(), c.region_bytes, cudaMemcpyHostToDevice));
  KvLayout host_layout, dev_layout;
  BENCH_RETURN_IF_ERROR(LayoutAt(c, host_engine.address(), &host_layout));
  BENCH_RETURN_IF_ERROR(LayoutAt(c, dev_engine.address(), &dev_layout));

  // Gather: one expected image, compared with a device and a mapped pinned destination.
  const std::vector<uint32_t> gids = GatherIds(c, rng);
  const uint64_t gbytes = PayloadBufferBytes(c, gids.size());
  HostBuffer want;
  BENCH_RETURN_IF_ERROR(HostBuffer::Allocate(gbytes, &want));
  std::memset(want.data(), kPoison, gbytes);
  const auto want_at = PayloadAddresses(c, want.address(), gids.size());
  BENCH_RETURN_IF_ERROR(
      gpu::GatherReference(host_layout, gids.data(), want_at.data(), gids.size()));

  Record(NewCase(c, "gather->device", gids.size()), out, [&](CorrectnessCase* r) {
    DeviceBuffer payloads;
    BENCH_RETURN_IF_ERROR(DeviceBuffer::Allocate(gbytes, &payloads));
    BENCH_CUDA(cudaMemset(payloads.data(), kPoison, gbytes));
    const auto at = PayloadAddresses(c, payloads.address(), gids.size());
    r->vec_bytes = VecBytes(dev_layout, at);
    BENCH_RETURN_IF_ERROR(GpuGather(stream, dev_layout, gids, at));
    HostBuffer got;
    BENCH_RETURN_IF_ERROR(HostBuffer::Allocate(gbytes, &got));
    BENCH_CUDA(cudaMemcpy(got.data(), payloads.data(), gbytes, cudaMemcpyDeviceToHost));
    Compare(want.data(), got.data(), gbytes, c, /*payloads=*/true, r);
    return gpu::Status::Ok();
  });
  Record(NewCase(c, "gather->mapped", gids.size()), out, [&](CorrectnessCase* r) {
    MappedHostBuffer payloads;
    BENCH_RETURN_IF_ERROR(MappedHostBuffer::Allocate(gbytes, &payloads));
    std::memset(payloads.host(), kPoison, gbytes);
    const auto at = PayloadAddresses(c, payloads.device_address(), gids.size());
    r->vec_bytes = VecBytes(dev_layout, at);
    BENCH_RETURN_IF_ERROR(GpuGather(stream, dev_layout, gids, at));
    Compare(want.data(), payloads.host(), gbytes, c, /*payloads=*/true, r);
    return gpu::Status::Ok();
  });

  // Scatter: random payloads into a poisoned engine; the whole region is compared.
  const std::vector<uint32_t> sids = ScatterIds(c, rng);
  const uint64_t sbytes = PayloadBufferBytes(c, sids.size());
  HostBuffer src, want_engine;
  BENCH_RETURN_IF_ERROR(HostBuffer::Allocate(sbytes, &src));
  BENCH_RETURN_IF_ERROR(HostBuffer::Allocate(c.region_bytes, &want_engine));
  rng.Fill(src.data(), sbytes);
  std::memset(want_engine.data(), kPoison, c.region_bytes);
  KvLayout want_layout;
  BENCH_RETURN_IF_ERROR(LayoutAt(c, want_engine.address(), &want_layout));
  const auto src_at = PayloadAddresses(c, src.address(), sids.size());
  BENCH_RETURN_IF_ERROR(
      gpu::ScatterReference(want_layout, sids.data(), src_at.data(), sids.size()));
  HostBuffer got_engine;
  BENCH_RETURN_IF_ERROR(HostBuffer::Allocate(c.region_bytes, &got_engine));

  // Poisons the engine, scatters the payloads at device addresses `base`..., compares the whole.
  auto scatter_from = [&](uint64_t base, CorrectnessCase* r) -> gpu::Status {
    BENCH_CUDA(cudaMemset(dev_engine.data(), kPoison, c.region_bytes));
    const auto at = PayloadAddresses(c, base, sids.size());
    r->vec_bytes = VecBytes(dev_layout, at);
    BENCH_RETURN_IF_ERROR(GpuScatter(stream, dev_layout, sids, at));
    BENCH_CUDA(
        cudaMemcpy(got_engine.data(), dev_engine.data(), c.region_bytes, cudaMemcpyDeviceToHost));
    Compare(want_engine.data(), got_engine.data(), c.region_bytes, c, /*payloads=*/false, r);
    return gpu::Status::Ok();
  };
  Record(NewCase(c, "scatter<-device", sids.size()), out, [&](CorrectnessCase* r) {
    DeviceBuffer payloads;
    BENCH_RETURN_IF_ERROR(DeviceBuffer::Allocate(sbytes, &payloads));
    BENCH_CUDA(cudaMemcpy(payloads.data(), src.data(), sbytes, cudaMemcpyHostToDevice));
    return scatter_from(payloads.address(), r);
  });
  Record(NewCase(c, "scatter<-mapped", sids.size()), out, [&](CorrectnessCase* r) {
    MappedHostBuffer payloads;
    BENCH_RETURN_IF_ERROR(MappedHostBuffer::Allocate(sbytes, &payloads));
    std::memcpy(payloads.host(), src.data(), sbytes);
    return scatter_from(payloads.device_address(), r);
  });
  return gpu::Status::Ok();
}

// The contract's rejections (kv_cuda.h): a scatter naming a block twice, and more blocks than the
// stream was created for, are InvalidArgument and leave no CUDA error behind.
void ContractChecks(const LayoutCase& c, gpu::KvTransferStream& stream, uint32_t max_blocks,
                    std::vector<CorrectnessCase>* out) {
  Record(NewCase(c, "scatter-rejects-repeated-ids", 2), out, [&](CorrectnessCase* r) {
    DeviceBuffer engine, payloads;
    BENCH_RETURN_IF_ERROR(DeviceBuffer::Allocate(c.region_bytes, &engine));
    BENCH_RETURN_IF_ERROR(DeviceBuffer::Allocate(PayloadBufferBytes(c, 2), &payloads));
    KvLayout layout;
    BENCH_RETURN_IF_ERROR(LayoutAt(c, engine.address(), &layout));
    const std::vector<uint32_t> ids = {0, 0};
    const auto at = PayloadAddresses(c, payloads.address(), 2);
    const gpu::Status s = stream.Scatter(layout, ids.data(), at.data(), 2);
    BENCH_RETURN_IF_ERROR(LastLaunchError("Scatter with a repeated id", __FILE__, __LINE__));
    BENCH_RETURN_IF_ERROR(stream.Synchronize());
    if (s.code() != gpu::Code::kInvalidArgument) {
      return gpu::Internal("want INVALID_ARGUMENT, got " + s.ToString());
    }
    return gpu::Status::Ok();
  });
  Record(NewCase(c, "rejects-count-over-max-blocks", max_blocks + 1), out, [&](CorrectnessCase* r) {
    DeviceBuffer engine;
    BENCH_RETURN_IF_ERROR(DeviceBuffer::Allocate(c.region_bytes, &engine));
    KvLayout layout;
    BENCH_RETURN_IF_ERROR(LayoutAt(c, engine.address(), &layout));
    const std::vector<uint32_t> ids(max_blocks + 1, 0);
    // Never dereferenced: the launch must be refused before anything is enqueued.
    const std::vector<uint64_t> at(max_blocks + 1, engine.address());
    const gpu::Status s =
        stream.Gather(layout, ids.data(), at.data(), static_cast<uint32_t>(ids.size()));
    BENCH_RETURN_IF_ERROR(LastLaunchError("Gather over max_blocks", __FILE__, __LINE__));
    BENCH_RETURN_IF_ERROR(stream.Synchronize());
    if (s.code() != gpu::Code::kInvalidArgument) {
      return gpu::Internal("want INVALID_ARGUMENT, got " + s.ToString());
    }
    return gpu::Status::Ok();
  });
}

void PrintProgress(const char* what, const LayoutCase& c, const std::vector<CorrectnessCase>& all,
                   size_t first) {
  int failed = 0;
  std::string vecs;
  for (size_t i = first; i < all.size(); ++i) {
    failed += all[i].passed() ? 0 : 1;
    if (all[i].vec_bytes != 0) {
      const std::string v = std::to_string(all[i].vec_bytes);
      if (vecs.find("/" + v + "/") == std::string::npos) vecs += "/" + v + "/";
    }
  }
  std::printf("  [%s] %s %s: %zu checks%s, vec bytes %s (%s)\n", failed == 0 ? "ok" : "FAIL", what,
              c.name.c_str(), all.size() - first,
              failed == 0 ? "" : (", " + std::to_string(failed) + " failed").c_str(),
              vecs.empty() ? "-" : vecs.c_str(), c.Describe().c_str());
  std::fflush(stdout);
}

}  // namespace

std::string LayoutCase::Describe() const {
  char buf[256];
  std::snprintf(buf, sizeof(buf), "L%u B%u T%u H%u D%u x%uB", shape.num_layers, shape.num_blocks,
                shape.block_tokens, shape.kv_heads, shape.head_dim, shape.dtype_bytes);
  std::string s = buf;
  if (!dense) {
    std::snprintf(
        buf, sizeof(buf), " strides block %llu kv %llu token %llu head %llu, layer %llu",
        static_cast<unsigned long long>(block_stride), static_cast<unsigned long long>(kv_stride),
        static_cast<unsigned long long>(token_stride), static_cast<unsigned long long>(head_stride),
        static_cast<unsigned long long>(layer_bytes));
    s += buf;
  }
  if (payload_offset != 0) s += " payloads +" + std::to_string(payload_offset);
  return s;
}

std::vector<LayoutCase> MakeLayoutCases(Rng& rng, bool quick) {
  std::vector<LayoutCase> cases;
  // The three engine layouts, dtype 1, 2 and 4; head rows of 96, 256 and 256 bytes.
  struct Dense {
    uint32_t dtype, tokens, heads, dim;
  };
  const Dense dense[] = {{1, 16, 2, 96}, {2, 16, 2, 128}, {4, 5, 3, 64}};
  for (EngineLayoutKind kind : kKinds) {
    for (const Dense& d : dense) {
      const KvShape s = Shape(quick ? 2 : 3, quick ? 6 : 10, d.tokens, d.heads, d.dim, d.dtype);
      cases.push_back(DenseCase(
          std::string("dense ") + gpu::EngineLayoutName(kind) + " dtype " + std::to_string(d.dtype),
          kind, s, 0));
    }
  }
  // Payload addresses offset so the widest common access is 8, 4, 2 and 1 bytes.
  struct Offset {
    uint32_t dtype, offset;
  };
  for (const Offset& o : {Offset{2, 8}, Offset{4, 4}, Offset{2, 2}, Offset{1, 1}}) {
    const KvShape s = Shape(2, 8, 4, 3, 40, o.dtype);
    cases.push_back(DenseCase("payload offset " + std::to_string(o.offset),
                              EngineLayoutKind::kVllmFlashAttention, s, o.offset));
  }
  const int padded = quick ? 4 : 8;
  for (int i = 0; i < padded; ++i) cases.push_back(PaddedCase(i, rng));
  // Llama-3-8B-shaped (2 MiB payloads): more segments than one grid holds, so the grid-stride loop
  // of the persistent kernel runs.
  cases.push_back(DenseCase("llama-shaped vllm-flash-attention",
                            EngineLayoutKind::kVllmFlashAttention,
                            Shape(32, quick ? 20 : 40, 16, 8, 128, 2), 0));
  return cases;
}

gpu::Status LayoutAt(const LayoutCase& c, uint64_t base, KvLayout* out) {
  if (c.dense) {
    std::vector<uint64_t> bases;
    for (uint64_t off : c.layer_offsets) bases.push_back(base + off);
    BENCH_RETURN_IF_ERROR(gpu::MakeDenseLayout(c.kind, c.shape, bases, out));
  } else {
    KvLayout l;
    l.shape = c.shape;
    l.block_stride = c.block_stride;
    l.kv_stride = c.kv_stride;
    l.token_stride = c.token_stride;
    l.head_stride = c.head_stride;
    l.layer_bytes = c.layer_bytes;
    for (uint64_t off : c.layer_offsets) l.layer_bases.push_back(base + off);
    *out = std::move(l);
  }
  gpu::Status s = gpu::ValidateKvLayout(*out);
  if (!s.ok()) {
    return gpu::Status(s.code(), "layout case '" + c.name + "' (" + c.Describe() +
                                     ") does not validate: " + s.message());
  }
  return gpu::Status::Ok();
}

void RunCpuCrossChecks(const std::vector<LayoutCase>& cases, Rng& rng,
                       std::vector<CorrectnessCase>* out) {
  for (const LayoutCase& c : cases) {
    const size_t first = out->size();
    gpu::Status s = CpuChecks(c, rng, out);
    if (!s.ok()) {
      CorrectnessCase r = NewCase(c, "cpu-setup", 0);
      r.error = s.ToString();
      out->push_back(std::move(r));
    }
    PrintProgress("cpu", c, *out, first);
  }
}

void RunGpuChecks(const std::vector<LayoutCase>& cases, Rng& rng, std::vector<CorrectnessCase>* out,
                  std::vector<std::string>* errors) {
  uint32_t max_blocks = 1;
  uint32_t max_layers = 1;
  for (const LayoutCase& c : cases) {
    max_blocks = std::max(max_blocks, c.shape.num_blocks + 4);  // GatherIds' most
    max_layers = std::max(max_layers, c.shape.num_layers);
  }
  std::unique_ptr<gpu::KvTransferStream> stream;
  if (gpu::Status s = gpu::KvTransferStream::Create(max_blocks, max_layers, &stream); !s.ok()) {
    errors->push_back("KvTransferStream::Create for the correctness checks: " + s.ToString());
    return;
  }
  for (const LayoutCase& c : cases) {
    const size_t first = out->size();
    gpu::Status s = GpuChecks(c, rng, *stream, out);
    if (!s.ok()) {
      CorrectnessCase r = NewCase(c, "gpu-setup", 0);
      r.error = s.ToString();
      out->push_back(std::move(r));
    }
    if (&c == &cases.front()) ContractChecks(c, *stream, max_blocks, out);
    PrintProgress("gpu", c, *out, first);
  }
}

}  // namespace strata::bench
