// MemoryTier: an HBM or DRAM tier, i.e. slab slots (SlabArena) over one memory region allocated at
// start (MemoryBackend): the memfd DRAM arena, the cudaMalloc'ed HBM pool, or the emulated HBM pool
// (host memory standing in for a GPU, named "hbm(emulated)" everywhere).
//
// Reads of a host-addressable region return spans straight into it, pinned: the slot is not reused
// until the last handle is gone, even if the block is erased meanwhile. Reads of device memory copy
// the block out to a host buffer the handle owns.
//
// Slots can also be reserved empty (Reserve), filled by someone else (a co-located process writing
// through its own mapping of the memfd arena), and then adopted as a block's copy without a copy
// (Adopt). A reserved slot is allocated in the arena, so nothing else is placed there until the
// reservation is adopted or destroyed.
//
// Thread-safe. Payload copies run outside the tier's lock.
#pragma once

#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "cachenode/memory_backend.h"
#include "cachenode/slab_arena.h"
#include "cachenode/tier.h"

namespace strata::cachenode {

struct MemoryTierOptions {
  TierKind kind = TierKind::kDram;
  std::string name = "dram";  // "hbm", "hbm(emulated)" or "dram"
  bool emulated = false;
  uint64_t slab_bytes = 4ull << 20;  // see SlabArenaOptions
};

class MemoryTier;

// An arena slot allocated for a block that is not there yet. Move-only; frees the slot on
// destruction unless MemoryTier::Adopt took it. Its bytes are writable by whoever maps the region.
class ReservedSlot {
 public:
  ReservedSlot() = default;
  ReservedSlot(ReservedSlot&&) = default;
  ReservedSlot& operator=(ReservedSlot&&) = default;

  bool valid() const { return slot_ != nullptr; }
  uint64_t offset() const;  // from the region's base
  uint64_t size() const { return size_; }  // payload bytes asked for
  uint64_t charged_bytes() const;          // the slot's size in the arena
  // The slot's bytes (host-addressable regions only; empty otherwise).
  std::span<std::byte> data() const { return data_; }

 private:
  friend class MemoryTier;
  std::shared_ptr<void> slot_;  // a MemoryTier::Slot; type-erased to keep it private
  uint64_t size_ = 0;
  std::span<std::byte> data_;
  uint64_t offset_ = 0;
  uint64_t charged_ = 0;
};

class MemoryTier final : public Tier {
 public:
  // The tier's capacity is the backend's size rounded down to whole slabs.
  MemoryTier(const MemoryTierOptions& options, std::unique_ptr<MemoryBackend> memory);
  ~MemoryTier() override;

  TierKind kind() const override { return options_.kind; }
  std::string name() const override { return options_.name; }
  bool emulated() const override { return options_.emulated; }
  TierUsage Usage() const override;
  uint64_t ChargeFor(uint64_t size) const override;
  absl::Status Put(const BlockInfo& info, std::span<const std::byte> payload) override;
  absl::StatusOr<BlockHandle> Read(const BlockKey& key) override;
  absl::Status Erase(const BlockKey& key) override;
  bool Contains(const BlockKey& key) const override;

  // The region's description for logs.
  std::string DescribeMemory() const { return shared_->memory->Describe(); }

  // Base of a host-addressable region (null for device memory) and its size; the memfd behind it
  // (-1 unless the region is a shared memfd). Valid for the tier's lifetime.
  std::byte* host_base() const { return shared_->memory->host_base(); }
  uint64_t region_bytes() const { return shared_->memory->size(); }
  int shared_fd() const { return shared_->memory->shared_fd(); }
  // The address GPU kernels use for the region's base; 0 when they cannot reach it (MemoryBackend).
  uint64_t device_address() const { return shared_->memory->device_address(); }

  // Allocates an empty slot for `size` payload bytes. ResourceExhausted when no slot is free now
  // (the caller evicts and retries); InvalidArgument when such a block can never fit;
  // FailedPrecondition when the region is not host-addressable.
  absl::StatusOr<ReservedSlot> Reserve(uint64_t size);

  // Publishes a reserved slot (of this tier) as the copy of `info.key`, without copying, replacing
  // any copy under the key. InvalidArgument when info.size differs from the reserved size or the
  // slot is not one of this tier's. The caller verified the bytes.
  absl::Status Adopt(const BlockInfo& info, ReservedSlot slot);

 private:
  // Outlives the tier while handles still pin slots.
  struct Shared {
    absl::Mutex mu;
    SlabArena arena ABSL_GUARDED_BY(mu);
    std::unique_ptr<MemoryBackend> memory;
    Shared(const SlabArenaOptions& o, std::unique_ptr<MemoryBackend> m)
        : arena(o), memory(std::move(m)) {}
  };
  struct Slot;  // frees its allocation when the last reference goes
  // Makes a filled slot the block's copy (slot->info.key), replacing any older one.
  void Publish(std::shared_ptr<Slot> slot);

  MemoryTierOptions options_;
  std::shared_ptr<Shared> shared_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<BlockKey, std::shared_ptr<Slot>> blocks_ ABSL_GUARDED_BY(mu_);
};

}  // namespace strata::cachenode
