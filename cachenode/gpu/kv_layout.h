// KvLayout: where an inference engine keeps each block's K and V in its paged KV cache, and the
// fixed layout of a Strata block payload.
//
// Engine side. Element (block, layer, kv, token, head, dim) of the engine's cache lives at
//   layer_bases[layer] + block * block_stride + kv * kv_stride + token * token_stride
//                      + head * head_stride + dim * dtype_bytes
// (strides in bytes, kv = 0 for K and 1 for V; head_dim is always contiguous). Addresses are host
// or device addresses; the layout never dereferences them. The common engine layouts:
//   - vLLM FlashAttention: one tensor per layer, [2, num_blocks, block_tokens, kv_heads, head_dim].
//   - FlashInfer style:    one tensor per layer, [num_blocks, 2, block_tokens, kv_heads, head_dim].
//   - Cross-layer block:   one tensor, [num_blocks, layers, 2, block_tokens, kv_heads, head_dim],
//     so a block's whole payload is contiguous in the engine too.
//
// Strata payload. A block's payload is layer-major, then K/V, token, head, dim:
//   payload[((((layer * 2 + kv) * block_tokens + token) * kv_heads + head) * head_dim + dim)]
// (elements of dtype_bytes each), PayloadBytes() in all. The layout is the same whatever the
// engine's layout, so blocks offloaded by one engine onload into an engine with another layout of
// the same shape.
//
// Validate() rejects a descriptor whose strides would make two elements share bytes (overlap) or
// whose extent passes layer_bytes or 2^64 (overflow). Plain struct: copy freely, no threads.
// This header builds without Abseil (the STRATA_GPU_ONLY build).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cachenode/gpu/gpu_status.h"

namespace strata::gpu {

// The model-dependent sizes of a KV cache.
struct KvShape {
  uint32_t num_layers = 0;
  uint32_t num_blocks = 0;    // blocks the engine's cache holds
  uint32_t block_tokens = 0;  // tokens per block (vLLM's block_size)
  uint32_t kv_heads = 0;
  uint32_t head_dim = 0;
  uint32_t dtype_bytes = 0;  // 1, 2, 4 or 8 (fp8, bf16/fp16, fp32, fp64)

  // Bytes of one (layer, K or V) piece of one block: block_tokens * kv_heads * head_dim * dtype.
  uint64_t PieceBytes() const;
  // Bytes of one block's payload: num_layers * 2 * PieceBytes().
  uint64_t PayloadBytes() const;
  // Bytes of the whole cache when densely packed: num_blocks * PayloadBytes().
  uint64_t CacheBytes() const;
};

// Most layers a layout may describe (Llama-3-405B has 126).
inline constexpr uint32_t kMaxLayers = 1024;

struct KvLayout {
  KvShape shape;
  uint64_t block_stride = 0;
  uint64_t kv_stride = 0;
  uint64_t token_stride = 0;
  uint64_t head_stride = 0;
  std::vector<uint64_t> layer_bases;  // one address per layer
  // Bytes addressable from each layer's base: every element of the layer must lie within
  // [layer_bases[l], layer_bases[l] + layer_bytes).
  uint64_t layer_bytes = 0;

  uint64_t PayloadBytes() const { return shape.PayloadBytes(); }
};

enum class EngineLayoutKind {
  kVllmFlashAttention,  // per layer [2, num_blocks, block_tokens, kv_heads, head_dim]
  kFlashInfer,          // per layer [num_blocks, 2, block_tokens, kv_heads, head_dim]
  kCrossLayer,          // one tensor [num_blocks, layers, 2, block_tokens, kv_heads, head_dim]
};

// "vllm-flash-attention", "flashinfer", "cross-layer".
const char* EngineLayoutName(EngineLayoutKind kind);

// Bytes of one dense tensor of the kind: per layer for the first two, the whole cache for
// kCrossLayer.
uint64_t DenseRegionBytes(EngineLayoutKind kind, const KvShape& shape);

// The layout of a densely packed cache of the kind. `bases` holds one address per layer for the
// per-layer kinds (each region DenseRegionBytes long) and exactly one for kCrossLayer.
// InvalidArgument when bases has the wrong count, or from Validate().
Status MakeDenseLayout(EngineLayoutKind kind, const KvShape& shape,
                       const std::vector<uint64_t>& bases, KvLayout* out);

// OK, or InvalidArgument naming what is wrong: a zero size, dtype_bytes not 1/2/4/8, more than
// kMaxLayers layers, a missing base, strides under which two elements overlap (within a layer, or
// across layers whose regions intersect), an extent past layer_bytes, or arithmetic overflow.
Status ValidateKvLayout(const KvLayout& layout);

// OK when every id is < shape.num_blocks and no id repeats (a repeated destination would make a
// scatter's result depend on the order of writes); InvalidArgument naming the first bad id.
Status ValidateBlockIds(const KvLayout& layout, const uint32_t* ids, uint64_t count,
                        bool allow_repeats);

}  // namespace strata::gpu
