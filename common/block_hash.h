// The chained block hash (DESIGN section 3).
//
//   h_0 = SHA-256(domain, namespace id, tenant salt, tokens of block 0, extra)
//   h_i = SHA-256(domain, h_{i-1},                  tokens of block i, extra)
//
// Every field is tagged and length-prefixed: a one-byte tag, the field's length as a little-endian
// u64, then its bytes; token ids are little-endian u32. Tags separate the parent from the
// namespace, so a first block can never collide with a later one, and two tenants (different salts)
// never share a block. `extra` carries whatever else changes the KV (LoRA id, multimodal content
// hashes); empty is allowed. The result is stable across processes, machines and restarts (no
// seeds). Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "common/block_key.h"

namespace strata::common {

// Hash of one block. `parent` is empty for the first block of a chain; then `namespace_id` and
// `cache_salt` are mixed in. For later blocks they are already in the parent's hash.
ChainHash HashBlock(const std::optional<ChainHash>& parent, NamespaceId namespace_id,
                    std::string_view cache_salt, std::span<const uint32_t> tokens,
                    std::string_view extra = {});

// Hashes a token sequence block by block (`block_tokens` tokens each); a trailing partial block is
// not hashed (it is not a cacheable block). Returns one hash per full block, in chain order.
std::vector<ChainHash> HashChain(NamespaceId namespace_id, std::string_view cache_salt,
                                 std::span<const uint32_t> tokens, size_t block_tokens,
                                 std::string_view extra = {});

}  // namespace strata::common
