// SlabArena: an offset allocator over one fixed region (the DRAM arena or the HBM pool).
//
// The region is cut into slabs of `slab_bytes`. A block up to slab_bytes gets a slot of its size
// class (classes step by a quarter of each power of two, 4 KiB aligned, so rounding wastes at most
// 25%); each slab serves one class at a time and returns to the free pool when its last slot is
// freed. A block larger than a slab takes a contiguous run of whole slabs (first fit). Nothing is
// allocated after construction: capacity is a hard bound by construction.
//
// Only offsets are managed here; callers own the memory. Not thread-safe: the owning tier
// serializes calls under its own mutex.
#pragma once

#include <cstdint>
#include <set>
#include <vector>

#include "absl/status/statusor.h"

namespace strata::cachenode {

struct SlabArenaOptions {
  uint64_t capacity_bytes = 0;       // rounded down to whole slabs
  uint64_t slab_bytes = 4ull << 20;  // 4 MiB: two 2 MiB blocks per slab; larger blocks span slabs
};

struct SlabAllocation {
  uint64_t offset = 0;
  uint64_t bytes = 0;  // bytes charged: the slot size or the whole slab run
};

class SlabArena {
 public:
  explicit SlabArena(const SlabArenaOptions& options);

  // Bytes a block of `size` would be charged; 0 when it can never fit (0 bytes or beyond capacity).
  uint64_t ChargeFor(uint64_t size) const;

  // ResourceExhausted when no slot or slab run is free now; InvalidArgument when ChargeFor is 0.
  absl::StatusOr<SlabAllocation> Allocate(uint64_t size);

  // Returns an allocation made by this arena. Freeing twice is a bug (checked in debug builds).
  void Free(const SlabAllocation& allocation);

  uint64_t capacity_bytes() const { return num_slabs_ * slab_bytes_; }
  uint64_t used_bytes() const { return used_bytes_; }
  uint64_t slab_bytes() const { return slab_bytes_; }
  uint64_t free_slabs() const { return free_slabs_.size(); }

 private:
  static constexpr int32_t kFree = -1;
  static constexpr int32_t kLargeHead = -2;
  static constexpr int32_t kLargeBody = -3;

  struct Slab {
    int32_t size_class = kFree;        // class index, or kFree / kLargeHead / kLargeBody
    uint32_t run_slabs = 0;            // for kLargeHead: slabs in the run
    std::vector<uint32_t> free_slots;  // slot indices free in this slab (class slabs only)
  };

  int SizeClassOf(uint64_t size) const;  // -1 when larger than a slab
  uint64_t ClassSlotBytes(int size_class) const { return class_bytes_[size_class]; }

  uint64_t slab_bytes_;
  uint64_t num_slabs_;
  uint64_t used_bytes_ = 0;
  std::vector<uint64_t> class_bytes_;  // slot size per class, ascending
  std::vector<Slab> slabs_;
  std::set<uint32_t> free_slabs_;            // ordered for first-fit runs
  std::vector<std::set<uint32_t>> partial_;  // per class: slabs with a free slot
};

}  // namespace strata::cachenode
