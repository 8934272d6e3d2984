// One storage tier of a cache node (HBM, DRAM or SSD) behind one small interface.
//
// A tier is plain storage: it keeps blocks and their metadata, bounded by its capacity, and never
// decides what to evict, promote or verify. Those decisions belong to TieredStore, the only
// component that moves blocks between tiers. Tiers do not verify checksums either: they return the
// checksum that was stored with the block, and the store verifies every read (one place, every
// tier).
//
// Thread-safety: every method may be called concurrently from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/block_key.h"

namespace strata::cachenode {

using common::BlockKey;

enum class TierKind { kHbm = 0, kDram = 1, kSsd = 2 };
inline constexpr int kNumTiers = 3;

// "hbm", "dram", "ssd".
std::string_view TierKindName(TierKind kind);

// What a tier keeps next to a block's payload.
struct BlockInfo {
  BlockKey key;
  uint64_t size = 0;            // payload bytes
  uint64_t checksum = 0;        // xxh3-64 of the payload as written by the client
  uint32_t chain_position = 0;  // 0 for the first block of a chain
};

// A pinned, read-only view of one block's payload. While a handle lives, its bytes stay valid and
// unchanged even if the block is erased or evicted meanwhile (the tier frees the memory when the
// last handle goes). Move-only; cheap to move.
class BlockHandle {
 public:
  BlockHandle() = default;
  BlockHandle(BlockInfo info, std::span<const std::byte> data, std::shared_ptr<const void> owner)
      : info_(std::move(info)), data_(data), owner_(std::move(owner)) {}
  BlockHandle(BlockHandle&&) = default;
  BlockHandle& operator=(BlockHandle&&) = default;
  BlockHandle(const BlockHandle&) = delete;
  BlockHandle& operator=(const BlockHandle&) = delete;

  const BlockInfo& info() const { return info_; }
  std::span<const std::byte> data() const { return data_; }
  bool valid() const { return owner_ != nullptr; }

 private:
  BlockInfo info_;
  std::span<const std::byte> data_;
  std::shared_ptr<const void> owner_;  // keeps the bytes alive (pin)
};

struct TierUsage {
  uint64_t capacity_bytes = 0;
  uint64_t used_bytes = 0;  // bytes charged against capacity (slot sizes for slab tiers)
  uint64_t blocks = 0;
};

class Tier {
 public:
  virtual ~Tier() = default;

  virtual TierKind kind() const = 0;
  // Name used in logs, Stats and metrics: "hbm", "hbm(emulated)", "dram", "ssd".
  virtual std::string name() const = 0;
  // True for an HBM tier that runs on host memory because no GPU is usable.
  virtual bool emulated() const { return false; }

  virtual TierUsage Usage() const = 0;
  // Bytes a block of `size` payload bytes is charged (slot rounding included); 0 when this tier can
  // never hold such a block (larger than its largest slot or its capacity).
  virtual uint64_t ChargeFor(uint64_t size) const = 0;

  // Stores a block, replacing any block with the same key. ResourceExhausted when there is no room
  // now (the caller evicts and retries); InvalidArgument when payload size != info.size.
  virtual absl::Status Put(const BlockInfo& info, std::span<const std::byte> payload) = 0;

  // Stores several blocks; one status per block, in order. Tiers with a cheaper batched write path
  // (SSD: one write batch) override it.
  virtual std::vector<absl::Status> PutBatch(std::span<const BlockInfo> infos,
                                             std::span<const std::span<const std::byte>> payloads);

  // Returns a pinned view of the block. NotFound when absent; other errors for I/O failures.
  virtual absl::StatusOr<BlockHandle> Read(const BlockKey& key) = 0;

  // Reads several blocks; one result per key, in order. SSD overrides it with one MultiGet.
  virtual std::vector<absl::StatusOr<BlockHandle>> ReadBatch(std::span<const BlockKey> keys);

  // Removes a block. NotFound when absent. Memory still pinned by handles is freed when they go.
  virtual absl::Status Erase(const BlockKey& key) = 0;

  virtual bool Contains(const BlockKey& key) const = 0;
};

}  // namespace strata::cachenode
