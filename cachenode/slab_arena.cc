#include "cachenode/slab_arena.h"

#include <algorithm>
#include <cassert>

#include "absl/strings/str_cat.h"

namespace strata::cachenode {
namespace {
constexpr uint64_t kAlign = 4096;
uint64_t RoundUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
}  // namespace

SlabArena::SlabArena(const SlabArenaOptions& options)
    : slab_bytes_(std::max<uint64_t>(RoundUp(options.slab_bytes, kAlign), kAlign)),
      num_slabs_(options.capacity_bytes / slab_bytes_) {
  // Classes: 4 KiB, then for each power of two p >= 4 KiB: p*5/4, p*6/4, p*7/4, 2p (4 KiB aligned).
  for (uint64_t p = kAlign; p < slab_bytes_; p *= 2) {
    for (uint64_t q = 4; q < 8; ++q) {
      const uint64_t size = RoundUp(p * q / 4, kAlign);
      if (size > slab_bytes_) break;
      if (class_bytes_.empty() || size > class_bytes_.back()) class_bytes_.push_back(size);
    }
  }
  if (class_bytes_.empty() || class_bytes_.back() != slab_bytes_)
    class_bytes_.push_back(slab_bytes_);
  slabs_.resize(num_slabs_);
  for (uint32_t i = 0; i < num_slabs_; ++i) free_slabs_.insert(i);
  partial_.resize(class_bytes_.size());
}

int SlabArena::SizeClassOf(uint64_t size) const {
  auto it = std::lower_bound(class_bytes_.begin(), class_bytes_.end(), size);
  if (it == class_bytes_.end()) return -1;
  return static_cast<int>(it - class_bytes_.begin());
}

uint64_t SlabArena::ChargeFor(uint64_t size) const {
  if (size == 0) return 0;
  const int c = SizeClassOf(size);
  const uint64_t charge = c >= 0 ? class_bytes_[c] : RoundUp(size, slab_bytes_);
  return charge <= capacity_bytes() ? charge : 0;
}

absl::StatusOr<SlabAllocation> SlabArena::Allocate(uint64_t size) {
  if (ChargeFor(size) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("block of ", size, " bytes can never fit an arena of ", capacity_bytes()));
  }
  const int c = SizeClassOf(size);
  if (c >= 0) {
    const uint64_t slot = class_bytes_[c];
    uint32_t slab_index;
    if (!partial_[c].empty()) {
      slab_index = *partial_[c].begin();
    } else {
      if (free_slabs_.empty()) return absl::ResourceExhaustedError("no free slab");
      slab_index = *free_slabs_.begin();
      free_slabs_.erase(free_slabs_.begin());
      Slab& s = slabs_[slab_index];
      s.size_class = c;
      const uint32_t slots = static_cast<uint32_t>(slab_bytes_ / slot);
      s.free_slots.clear();
      for (uint32_t i = slots; i-- > 0;) s.free_slots.push_back(i);  // pop_back yields slot 0 first
      partial_[c].insert(slab_index);
    }
    Slab& s = slabs_[slab_index];
    const uint32_t slot_index = s.free_slots.back();
    s.free_slots.pop_back();
    if (s.free_slots.empty()) partial_[c].erase(slab_index);
    used_bytes_ += slot;
    return SlabAllocation{slab_index * slab_bytes_ + slot_index * slot, slot};
  }
  // Large block: first fit over runs of free slabs.
  const uint64_t need = RoundUp(size, slab_bytes_) / slab_bytes_;
  uint32_t run_start = 0;
  uint64_t run_len = 0;
  for (uint32_t idx : free_slabs_) {
    if (run_len > 0 && idx == run_start + run_len) {
      ++run_len;
    } else {
      run_start = idx;
      run_len = 1;
    }
    if (run_len == need) {
      for (uint32_t i = run_start; i < run_start + need; ++i) {
        free_slabs_.erase(i);
        slabs_[i].size_class = (i == run_start) ? kLargeHead : kLargeBody;
      }
      slabs_[run_start].run_slabs = static_cast<uint32_t>(need);
      used_bytes_ += need * slab_bytes_;
      return SlabAllocation{run_start * slab_bytes_, need * slab_bytes_};
    }
  }
  return absl::ResourceExhaustedError(absl::StrCat("no run of ", need, " free slabs"));
}

void SlabArena::Free(const SlabAllocation& a) {
  const uint32_t slab_index = static_cast<uint32_t>(a.offset / slab_bytes_);
  assert(slab_index < slabs_.size());
  Slab& s = slabs_[slab_index];
  if (s.size_class == kLargeHead) {
    const uint32_t run = s.run_slabs;
    for (uint32_t i = slab_index; i < slab_index + run; ++i) {
      slabs_[i].size_class = kFree;
      slabs_[i].run_slabs = 0;
      free_slabs_.insert(i);
    }
    used_bytes_ -= static_cast<uint64_t>(run) * slab_bytes_;
    return;
  }
  assert(s.size_class >= 0);
  const int c = s.size_class;
  const uint64_t slot = class_bytes_[c];
  const uint32_t slot_index = static_cast<uint32_t>((a.offset - slab_index * slab_bytes_) / slot);
  s.free_slots.push_back(slot_index);
  used_bytes_ -= slot;
  const uint32_t slots = static_cast<uint32_t>(slab_bytes_ / slot);
  if (s.free_slots.size() == slots) {  // slab empty: back to the pool for any class
    partial_[c].erase(slab_index);
    s.size_class = kFree;
    s.free_slots.clear();
    s.free_slots.shrink_to_fit();
    free_slabs_.insert(slab_index);
  } else {
    partial_[c].insert(slab_index);
  }
}

}  // namespace strata::cachenode
