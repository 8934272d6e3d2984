#include "cachenode/gpu/kv_layout.h"

#include <algorithm>
#include <array>
#include <unordered_set>

namespace strata::gpu {
namespace {

// a * b, false on overflow.
bool MulOk(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_mul_overflow(a, b, out); }
bool AddOk(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_add_overflow(a, b, out); }

struct Dim {
  const char* name;
  uint64_t extent;
  uint64_t stride;
};

// Two elements share a byte iff the index map is not injective. Sorting the dimensions by stride,
// each stride must exceed the furthest byte the smaller ones reach: a sufficient condition that
// holds for every dense or padded layout and fails for every overlapping one engines use.
// Also computes the extent (bytes from the base to the end of the last element).
Status CheckDims(std::vector<Dim> dims, uint64_t elem_bytes, uint64_t* extent) {
  std::sort(dims.begin(), dims.end(),
            [](const Dim& a, const Dim& b) { return a.stride < b.stride; });
  uint64_t reach = elem_bytes;  // bytes spanned by the dimensions checked so far
  for (const Dim& d : dims) {
    if (d.extent <= 1) continue;
    if (d.stride < reach) {
      return InvalidArgument(std::string("stride of ") + d.name + " (" +
                             std::to_string(d.stride) + " bytes) overlaps the " +
                             std::to_string(reach) + " bytes its inner dimensions span");
    }
    uint64_t span = 0;
    if (!MulOk(d.extent - 1, d.stride, &span) || !AddOk(span, reach, &reach)) {
      return InvalidArgument(std::string("extent of ") + d.name + " overflows 64 bits");
    }
  }
  *extent = reach;
  return Status::Ok();
}

}  // namespace

uint64_t KvShape::PieceBytes() const {
  return static_cast<uint64_t>(block_tokens) * kv_heads * head_dim * dtype_bytes;
}
uint64_t KvShape::PayloadBytes() const { return static_cast<uint64_t>(num_layers) * 2 * PieceBytes(); }
uint64_t KvShape::CacheBytes() const { return static_cast<uint64_t>(num_blocks) * PayloadBytes(); }

const char* EngineLayoutName(EngineLayoutKind kind) {
  switch (kind) {
    case EngineLayoutKind::kVllmFlashAttention:
      return "vllm-flash-attention";
    case EngineLayoutKind::kFlashInfer:
      return "flashinfer";
    case EngineLayoutKind::kCrossLayer:
      return "cross-layer";
  }
  return "unknown";
}

uint64_t DenseRegionBytes(EngineLayoutKind kind, const KvShape& shape) {
  const uint64_t layer = static_cast<uint64_t>(shape.num_blocks) * 2 * shape.PieceBytes();
  return kind == EngineLayoutKind::kCrossLayer ? layer * shape.num_layers : layer;
}

Status MakeDenseLayout(EngineLayoutKind kind, const KvShape& shape,
                       const std::vector<uint64_t>& bases, KvLayout* out) {
  const size_t want = kind == EngineLayoutKind::kCrossLayer ? 1 : shape.num_layers;
  if (bases.size() != want) {
    return InvalidArgument(std::string(EngineLayoutName(kind)) + " layout needs " +
                           std::to_string(want) + " base address(es), got " +
                           std::to_string(bases.size()));
  }
  KvLayout l;
  l.shape = shape;
  l.head_stride = static_cast<uint64_t>(shape.head_dim) * shape.dtype_bytes;
  l.token_stride = l.head_stride * shape.kv_heads;
  const uint64_t piece = shape.PieceBytes();
  switch (kind) {
    case EngineLayoutKind::kVllmFlashAttention:
      l.block_stride = piece;
      l.kv_stride = piece * shape.num_blocks;
      l.layer_bases = bases;
      break;
    case EngineLayoutKind::kFlashInfer:
      l.kv_stride = piece;
      l.block_stride = 2 * piece;
      l.layer_bases = bases;
      break;
    case EngineLayoutKind::kCrossLayer:
      l.kv_stride = piece;
      l.block_stride = 2 * piece * shape.num_layers;
      for (uint32_t i = 0; i < shape.num_layers; ++i) {
        l.layer_bases.push_back(bases[0] + static_cast<uint64_t>(i) * 2 * piece);
      }
      break;
  }
  // Each layer's elements lie within one dense region's worth of bytes from its base.
  l.layer_bytes = DenseRegionBytes(kind, shape) -
                  (kind == EngineLayoutKind::kCrossLayer
                       ? 2 * piece * (shape.num_layers == 0 ? 0 : shape.num_layers - 1)
                       : 0);
  if (Status s = ValidateKvLayout(l); !s.ok()) return s;
  *out = std::move(l);
  return Status::Ok();
}

Status ValidateKvLayout(const KvLayout& layout) {
  const KvShape& s = layout.shape;
  if (s.num_layers == 0 || s.num_blocks == 0 || s.block_tokens == 0 || s.kv_heads == 0 ||
      s.head_dim == 0) {
    return InvalidArgument("layout has a zero size (layers, blocks, block tokens, heads, head dim)");
  }
  if (s.dtype_bytes != 1 && s.dtype_bytes != 2 && s.dtype_bytes != 4 && s.dtype_bytes != 8) {
    return InvalidArgument("dtype_bytes must be 1, 2, 4 or 8, got " + std::to_string(s.dtype_bytes));
  }
  if (s.num_layers > kMaxLayers) {
    return InvalidArgument("more than " + std::to_string(kMaxLayers) + " layers");
  }
  if (layout.layer_bases.size() != s.num_layers) {
    return InvalidArgument("layer_bases has " + std::to_string(layout.layer_bases.size()) +
                           " addresses for " + std::to_string(s.num_layers) + " layers");
  }
  uint64_t row = 0, piece = 0, payload = 0, cache = 0;
  if (!MulOk(s.head_dim, s.dtype_bytes, &row) || !MulOk(row, static_cast<uint64_t>(s.kv_heads) * s.block_tokens, &piece) ||
      !MulOk(piece, 2ull * s.num_layers, &payload) || !MulOk(payload, s.num_blocks, &cache)) {
    return InvalidArgument("layout sizes overflow 64 bits");
  }
  const std::vector<Dim> layer_dims = {{"block", s.num_blocks, layout.block_stride},
                                       {"kv", 2, layout.kv_stride},
                                       {"token", s.block_tokens, layout.token_stride},
                                       {"head", s.kv_heads, layout.head_stride},
                                       {"dim", s.head_dim, s.dtype_bytes}};
  uint64_t extent = 0;
  if (Status st = CheckDims(layer_dims, s.dtype_bytes, &extent); !st.ok()) return st;
  if (extent > layout.layer_bytes) {
    return InvalidArgument("a layer spans " + std::to_string(extent) +
                           " bytes from its base, past layer_bytes = " +
                           std::to_string(layout.layer_bytes));
  }
  for (uint64_t base : layout.layer_bases) {
    uint64_t end = 0;
    if (!AddOk(base, extent, &end)) return InvalidArgument("a layer's address range overflows");
  }
  if (s.num_layers == 1) return Status::Ok();

  // Across layers. Layers whose bases step evenly are one more dimension of the same check (the
  // cross-layer layout interleaves them); otherwise their address ranges must not intersect.
  const uint64_t first = layout.layer_bases[0];
  bool even = layout.layer_bases[1] > first;
  const uint64_t step = even ? layout.layer_bases[1] - first : 0;
  for (uint32_t i = 2; even && i < s.num_layers; ++i) {
    even = layout.layer_bases[i] == first + step * i;
  }
  if (even) {
    std::vector<Dim> dims = layer_dims;
    dims.push_back({"layer", s.num_layers, step});
    uint64_t all = 0;
    return CheckDims(dims, s.dtype_bytes, &all);
  }
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (uint64_t base : layout.layer_bases) ranges.push_back({base, base + extent});
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) {
      return InvalidArgument("two layers' address ranges overlap (bases " +
                             std::to_string(ranges[i - 1].first) + " and " +
                             std::to_string(ranges[i].first) + ", " + std::to_string(extent) +
                             " bytes each)");
    }
  }
  return Status::Ok();
}

Status ValidateBlockIds(const KvLayout& layout, const uint32_t* ids, uint64_t count,
                        bool allow_repeats) {
  std::unordered_set<uint32_t> seen;
  for (uint64_t i = 0; i < count; ++i) {
    if (ids[i] >= layout.shape.num_blocks) {
      return InvalidArgument("block id " + std::to_string(ids[i]) + " at index " +
                             std::to_string(i) + " is out of range (the cache has " +
                             std::to_string(layout.shape.num_blocks) + " blocks)");
    }
    if (!allow_repeats && !seen.insert(ids[i]).second) {
      return InvalidArgument("block id " + std::to_string(ids[i]) + " is named twice");
    }
  }
  return Status::Ok();
}

}  // namespace strata::gpu
