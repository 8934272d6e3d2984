#include "cachenode/gpu/kv_reference.h"

#include <cstring>

namespace strata::gpu {
namespace {

Status Copy(const KvLayout& layout, const uint32_t* block_ids, const uint64_t* payloads,
            uint64_t count, bool gather) {
  if (Status s = ValidateKvLayout(layout); !s.ok()) return s;
  if (Status s = ValidateBlockIds(layout, block_ids, count, /*allow_repeats=*/gather); !s.ok()) {
    return s;
  }
  const KvShape& s = layout.shape;
  const uint64_t row = static_cast<uint64_t>(s.head_dim) * s.dtype_bytes;
  for (uint64_t i = 0; i < count; ++i) {
    auto* payload = reinterpret_cast<std::byte*>(static_cast<uintptr_t>(payloads[i]));
    uint64_t offset = 0;  // payload order: layer, kv, token, head, dim
    for (uint32_t layer = 0; layer < s.num_layers; ++layer) {
      for (uint32_t kv = 0; kv < 2; ++kv) {
        for (uint32_t token = 0; token < s.block_tokens; ++token) {
          for (uint32_t head = 0; head < s.kv_heads; ++head) {
            const uint64_t address = layout.layer_bases[layer] +
                                     block_ids[i] * layout.block_stride + kv * layout.kv_stride +
                                     token * layout.token_stride + head * layout.head_stride;
            auto* engine = reinterpret_cast<std::byte*>(static_cast<uintptr_t>(address));
            if (gather) {
              std::memcpy(payload + offset, engine, row);
            } else {
              std::memcpy(engine, payload + offset, row);
            }
            offset += row;
          }
        }
      }
    }
  }
  return Status::Ok();
}

}  // namespace

Status GatherReference(const KvLayout& layout, const uint32_t* block_ids, const uint64_t* payloads,
                       uint64_t count) {
  return Copy(layout, block_ids, payloads, count, /*gather=*/true);
}

Status ScatterReference(const KvLayout& layout, const uint32_t* block_ids,
                        const uint64_t* payloads, uint64_t count) {
  return Copy(layout, block_ids, payloads, count, /*gather=*/false);
}

}  // namespace strata::gpu
