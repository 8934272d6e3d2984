#include "cachenode/gpu/kv_plan.h"

#include <numeric>

namespace strata::gpu {

uint64_t AddressAlignment(const uint64_t* first, uint64_t n) {
  uint64_t bits = 16;
  for (uint64_t i = 0; i < n; ++i) bits |= first[i];
  return bits & (~bits + 1);  // lowest set bit, at most 16
}

Status MakeCopyPlan(const KvLayout& layout, uint64_t address_alignment, KvCopyPlan* out) {
  if (Status s = ValidateKvLayout(layout); !s.ok()) return s;
  const KvShape& s = layout.shape;
  if (layout.PayloadBytes() >= (1ull << 32)) {
    return InvalidArgument("a block payload of " + std::to_string(layout.PayloadBytes()) +
                           " bytes is 4 GiB or more");
  }
  KvCopyPlan p;
  p.payload_bytes = static_cast<uint32_t>(layout.PayloadBytes());
  p.block_stride = layout.block_stride;
  p.extent[0] = s.num_layers;
  p.extent[1] = 2;
  p.extent[2] = s.block_tokens;
  p.extent[3] = s.kv_heads;
  p.stride[1] = layout.kv_stride;
  p.stride[2] = layout.token_stride;
  p.stride[3] = layout.head_stride;
  // Merge inner dimensions that the engine keeps exactly as contiguous as the payload does.
  uint64_t run = static_cast<uint64_t>(s.head_dim) * s.dtype_bytes;
  for (int d = 3; d >= 1; --d) {
    if (p.extent[d] != 1 && p.stride[d] != run) break;
    run *= p.extent[d];
    p.extent[d] = 1;
    p.stride[d] = 0;
  }
  p.run_bytes = static_cast<uint32_t>(run);
  // The widest access every address allows: runs, strides of unmerged dimensions, bases, payloads.
  uint64_t g = std::gcd(run, address_alignment == 0 ? 1 : address_alignment);
  if (s.num_blocks > 1) g = std::gcd(g, layout.block_stride);
  for (int d = 1; d <= 3; ++d) {
    if (p.extent[d] > 1) g = std::gcd(g, p.stride[d]);
  }
  g = std::gcd(g, AddressAlignment(layout.layer_bases.data(), layout.layer_bases.size()));
  uint32_t vec = 16;
  while (g % vec != 0) vec /= 2;
  p.vec_bytes = vec;
  p.units_per_block = p.payload_bytes / vec;
  p.segments_per_block = (p.units_per_block + kSegmentUnits - 1) / kSegmentUnits;
  *out = p;
  return Status::Ok();
}

namespace {

template <uint32_t V>
void RunAll(const KvCopyArgs& args) {
  const uint64_t segments = args.total_segments();
  for (uint64_t seg = 0; seg < segments; ++seg) {
    for (uint32_t tid = 0; tid < kCopyThreads; ++tid) CopySegment<V>(args, seg, tid);
  }
}

}  // namespace

void RunCopyOnCpu(const KvCopyArgs& args) {
  switch (args.plan.vec_bytes) {
    case 16:
      return RunAll<16>(args);
    case 8:
      return RunAll<8>(args);
    case 4:
      return RunAll<4>(args);
    case 2:
      return RunAll<2>(args);
    default:
      return RunAll<1>(args);
  }
}

}  // namespace strata::gpu
