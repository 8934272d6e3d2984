#include "cachenode/memory_tier.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/fail_point.h"

namespace strata::cachenode {
namespace {
// Fail points of the tier boundary, named by kind ("hbm.put", "dram.read", ...); literals, so an
// unarmed point costs no string building. Unused in a build without fail points.
[[maybe_unused]] const char* PutPoint(TierKind kind) {
  return kind == TierKind::kHbm ? "hbm.put" : "dram.put";
}
[[maybe_unused]] const char* ReadPoint(TierKind kind) {
  return kind == TierKind::kHbm ? "hbm.read" : "dram.read";
}
// "dram.corrupt_read" / "hbm.corrupt_read": flips one byte of the slot being read, in place (the
// stored copy itself goes bad), so process tests can prove a corrupt arena slot is never served.
[[maybe_unused]] const char* CorruptPoint(TierKind kind) {
  return kind == TierKind::kHbm ? "hbm.corrupt_read" : "dram.corrupt_read";
}
}  // namespace

struct MemoryTier::Slot {
  BlockInfo info;
  SlabAllocation allocation;
  std::shared_ptr<Shared> shared;
  ~Slot() {
    if (shared == nullptr) return;  // never got an allocation
    absl::MutexLock lock(&shared->mu);
    shared->arena.Free(allocation);
  }
};

uint64_t ReservedSlot::offset() const { return offset_; }
uint64_t ReservedSlot::charged_bytes() const { return charged_; }

MemoryTier::MemoryTier(const MemoryTierOptions& options, std::unique_ptr<MemoryBackend> memory)
    : options_(options) {
  SlabArenaOptions arena;
  arena.capacity_bytes = memory ? memory->size() : 0;
  arena.slab_bytes = options.slab_bytes;
  shared_ = std::make_shared<Shared>(arena, std::move(memory));
}

MemoryTier::~MemoryTier() {
  absl::MutexLock lock(&mu_);
  blocks_.clear();
}

TierUsage MemoryTier::Usage() const {
  TierUsage u;
  {
    absl::MutexLock lock(&shared_->mu);
    u.capacity_bytes = shared_->arena.capacity_bytes();
    u.used_bytes = shared_->arena.used_bytes();
  }
  absl::MutexLock lock(&mu_);
  u.blocks = blocks_.size();
  return u;
}

uint64_t MemoryTier::ChargeFor(uint64_t size) const {
  absl::MutexLock lock(&shared_->mu);
  return shared_->arena.ChargeFor(size);
}

absl::Status MemoryTier::Put(const BlockInfo& info, std::span<const std::byte> payload) {
  if (payload.size() != info.size) {
    return absl::InvalidArgumentError(
        absl::StrCat("payload is ", payload.size(), " bytes, block info says ", info.size));
  }
  if (absl::Status injected = STRATA_FAIL_POINT(PutPoint(options_.kind)); !injected.ok()) {
    return injected;
  }
  auto slot = std::make_shared<Slot>();
  {
    absl::MutexLock lock(&shared_->mu);
    auto allocation = shared_->arena.Allocate(info.size);
    if (!allocation.ok()) {
      return absl::ResourceExhaustedError(
          absl::StrCat(options_.name, " tier full: ", allocation.status().message()));
    }
    slot->allocation = *allocation;
    slot->shared = shared_;
  }
  slot->info = info;
  // Copy outside every lock: the slot is ours until it is published below.
  if (absl::Status s = shared_->memory->Write(slot->allocation.offset, payload); !s.ok()) return s;
  Publish(std::move(slot));
  return absl::OkStatus();
}

void MemoryTier::Publish(std::shared_ptr<Slot> slot) {
  std::shared_ptr<Slot> replaced;
  {
    absl::MutexLock lock(&mu_);
    auto [it, inserted] = blocks_.try_emplace(slot->info.key, slot);
    if (!inserted) {
      replaced = std::move(it->second);
      it->second = std::move(slot);
    }
  }
  // `replaced` is freed here, outside mu_, unless a reader pins it.
}

absl::StatusOr<ReservedSlot> MemoryTier::Reserve(uint64_t size) {
  std::byte* base = shared_->memory->host_base();
  if (base == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(options_.name, " tier is not host-addressable: cannot reserve slots"));
  }
  auto slot = std::make_shared<Slot>();
  {
    absl::MutexLock lock(&shared_->mu);
    auto allocation = shared_->arena.Allocate(size);
    if (!allocation.ok()) {
      if (absl::IsInvalidArgument(allocation.status())) return allocation.status();
      return absl::ResourceExhaustedError(
          absl::StrCat(options_.name, " tier full: ", allocation.status().message()));
    }
    slot->allocation = *allocation;
    slot->shared = shared_;
  }
  ReservedSlot r;
  r.size_ = size;
  r.offset_ = slot->allocation.offset;
  r.charged_ = slot->allocation.bytes;
  r.data_ = std::span<std::byte>(base + slot->allocation.offset, size);
  r.slot_ = std::move(slot);
  return r;
}

absl::Status MemoryTier::Adopt(const BlockInfo& info, ReservedSlot reserved) {
  auto slot = std::static_pointer_cast<Slot>(std::move(reserved.slot_));
  if (slot == nullptr || slot->shared != shared_) {
    return absl::InvalidArgumentError("slot was not reserved in this tier");
  }
  if (info.size != reserved.size_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "block info says ", info.size, " bytes, slot was reserved for ", reserved.size_));
  }
  slot->info = info;
  Publish(std::move(slot));
  return absl::OkStatus();
}

absl::StatusOr<BlockHandle> MemoryTier::Read(const BlockKey& key) {
  if (absl::Status injected = STRATA_FAIL_POINT(ReadPoint(options_.kind)); !injected.ok()) {
    return injected;
  }
  std::shared_ptr<Slot> slot;
  {
    absl::MutexLock lock(&mu_);
    auto it = blocks_.find(key);
    if (it == blocks_.end()) return absl::NotFoundError(key.DebugString());
    slot = it->second;
  }
  std::byte* base = shared_->memory->host_base();
  if (base != nullptr && slot->info.size > 0 &&
      STRATA_FAIL_POINT_FIRES(CorruptPoint(options_.kind))) {
    base[slot->allocation.offset + slot->info.size / 2] ^= std::byte{0x5a};
  }
  if (base != nullptr) {
    std::span<const std::byte> data(base + slot->allocation.offset, slot->info.size);
    BlockInfo info = slot->info;
    return BlockHandle(std::move(info), data, std::move(slot));
  }
  auto buffer = std::make_shared<std::unique_ptr<std::byte[]>>(
      std::make_unique_for_overwrite<std::byte[]>(slot->info.size));
  std::span<std::byte> out(buffer->get(), slot->info.size);
  if (absl::Status s = shared_->memory->ReadInto(slot->allocation.offset, out); !s.ok()) return s;
  return BlockHandle(slot->info, out, std::move(buffer));
}

absl::Status MemoryTier::Erase(const BlockKey& key) {
  std::shared_ptr<Slot> erased;
  {
    absl::MutexLock lock(&mu_);
    auto it = blocks_.find(key);
    if (it == blocks_.end()) return absl::NotFoundError(key.DebugString());
    erased = std::move(it->second);
    blocks_.erase(it);
  }
  return absl::OkStatus();
}

bool MemoryTier::Contains(const BlockKey& key) const {
  absl::MutexLock lock(&mu_);
  return blocks_.contains(key);
}

}  // namespace strata::cachenode
