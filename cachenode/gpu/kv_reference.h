// The CPU reference of gather and scatter: the plainest correct code, one memcpy per (block, layer,
// K/V, token, head) row of head_dim elements, sharing nothing with the kernels' index arithmetic
// (kv_plan.h) so that it can judge them. It is also the emulated path: without a usable GPU the
// cache node moves host-memory KV caches with it (and says "emulated").
//
// All addresses are host addresses. Thread-compatible: concurrent calls on disjoint memory are fine.
// Builds without Abseil.
#pragma once

#include <cstdint>

#include "cachenode/gpu/gpu_status.h"
#include "cachenode/gpu/kv_layout.h"

namespace strata::gpu {

// Copies engine block block_ids[i] into the payload at payloads[i] (PayloadBytes() each), for i
// in [0, count). InvalidArgument for an invalid layout or a block id out of range.
Status GatherReference(const KvLayout& layout, const uint32_t* block_ids, const uint64_t* payloads,
                       uint64_t count);

// Copies the payload at payloads[i] into engine block block_ids[i]. InvalidArgument as above, and
// for a block id named twice.
Status ScatterReference(const KvLayout& layout, const uint32_t* block_ids,
                        const uint64_t* payloads, uint64_t count);

}  // namespace strata::gpu
