// Block identity: a 32-byte chain hash plus the namespace it lives in.
//
// A chain hash names a whole prefix (see block_hash.h). Storage keys are (namespace id, chain
// hash); a node never serves bytes by a truncated key. Value types; thread-compatible.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/hash/hash.h"
#include "absl/status/statusor.h"

namespace strata::common {

using NamespaceId = uint64_t;

inline constexpr size_t kChainHashBytes = 32;

struct ChainHash {
  std::array<uint8_t, kChainHashBytes> bytes{};

  std::string_view view() const {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }
  std::string Hex() const;  // 64 lowercase hex characters

  // Parses exactly 32 raw bytes (as carried on the wire). InvalidArgument otherwise.
  static absl::StatusOr<ChainHash> FromBytes(std::string_view raw);
  // Parses exactly 64 hex characters (either case). InvalidArgument otherwise.
  static absl::StatusOr<ChainHash> FromHex(std::string_view hex);

  friend bool operator==(const ChainHash&, const ChainHash&) = default;
  friend auto operator<=>(const ChainHash&, const ChainHash&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const ChainHash& c) {
    return H::combine(std::move(h), c.view());
  }
};

struct BlockKey {
  NamespaceId namespace_id = 0;
  ChainHash hash;

  // Fixed 40-byte encoding (big-endian namespace id, then the hash): sorts by namespace, then hash.
  std::string Encode() const;
  static absl::StatusOr<BlockKey> Decode(std::string_view encoded);
  std::string DebugString() const;  // "ns:0123456789abcdef/hash-prefix..."

  friend bool operator==(const BlockKey&, const BlockKey&) = default;
  friend auto operator<=>(const BlockKey&, const BlockKey&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const BlockKey& k) {
    return H::combine(std::move(h), k.namespace_id, k.hash);
  }
};

inline constexpr size_t kEncodedBlockKeyBytes = 8 + kChainHashBytes;

}  // namespace strata::common
