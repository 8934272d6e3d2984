// MemoryTier: an HBM or DRAM tier, i.e. slab slots (SlabArena) over one memory region allocated at
// start (MemoryBackend): the memfd DRAM arena, the cudaMalloc'ed HBM pool, or the emulated HBM pool
// (host memory standing in for a GPU, named "hbm(emulated)" everywhere).
//
// Reads of a host-addressable region return spans straight into it, pinned: the slot is not reused
// until the last handle is gone, even if the block is erased meanwhile. Reads of device memory copy
// the block out to a host buffer the handle owns.
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

  MemoryTierOptions options_;
  std::shared_ptr<Shared> shared_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<BlockKey, std::shared_ptr<Slot>> blocks_ ABSL_GUARDED_BY(mu_);
};

}  // namespace strata::cachenode
