// Types the router's pure core shares: node slots, index keys, tiers, node load, prefix matches.
//
// The router indexes a 64-bit truncation of each block key (DESIGN section 3): a collision costs a
// wrong hit estimate, never wrong data, because nodes serve bytes by the full key. Value types;
// thread-compatible.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string>

#include "common/block_key.h"

namespace strata::router {

// Dense small integer naming a registered node inside the router (reused after the node is gone
// and its entries are cleared). Never sent on the wire; node ids are.
using NodeSlot = uint32_t;
inline constexpr NodeSlot kNoSlot = ~NodeSlot{0};

// 64-bit index key: the first 8 bytes of the chain hash (little-endian) XOR the namespace id. The
// chain hash already mixes in the namespace; the XOR keeps namespaces apart even for callers that
// pass the same raw hashes under two namespaces.
using IndexKey = uint64_t;
inline IndexKey IndexKeyOf(common::NamespaceId ns, const common::ChainHash& hash) {
  uint64_t head;
  std::memcpy(&head, hash.bytes.data(), sizeof(head));
  return head ^ ns;
}

// Storage tiers, fastest first. Router-local (router/ never includes cachenode/).
enum class Tier : uint8_t { kHbm = 0, kDram = 1, kSsd = 2 };
inline constexpr int kNumTiers = 3;
inline constexpr std::array<Tier, kNumTiers> kAllTiers = {Tier::kHbm, Tier::kDram, Tier::kSsd};
const char* TierName(Tier t);  // "hbm", "dram", "ssd"

// Bit set of tiers: bit (1 << Tier).
using TierMask = uint8_t;
inline constexpr TierMask TierBit(Tier t) { return TierMask(1u << static_cast<int>(t)); }

// What a node reports in its heartbeat.
struct NodeLoad {
  uint32_t queued_requests = 0;
  uint32_t running_requests = 0;
  uint64_t prefill_tokens_in_flight = 0;
  uint64_t free_hbm_blocks = 0;
  bool draining = false;
};

// One node's prefix match for a request: blocks 0..matched-1 are all on the node; per_tier counts
// each of them in the fastest tier the node holds it in; slowest is the slowest of those tiers.
struct NodeMatch {
  NodeSlot node = kNoSlot;
  uint32_t matched = 0;
  std::array<uint32_t, kNumTiers> per_tier{};
  Tier slowest = Tier::kHbm;
};

}  // namespace strata::router
