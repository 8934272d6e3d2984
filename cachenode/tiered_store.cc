#include "cachenode/tiered_store.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/byte_size.h"
#include "common/checksum.h"
#include "common/status_macros.h"

namespace strata::cachenode {
namespace {
constexpr uint8_t Bit(TierKind t) { return static_cast<uint8_t>(1u << static_cast<int>(t)); }
constexpr int Idx(TierKind t) { return static_cast<int>(t); }
constexpr TierKind kOrder[kNumTiers] = {TierKind::kHbm, TierKind::kDram, TierKind::kSsd};

// True when a ResourceExhausted put into `tier` may succeed after an eviction. The SSD tier's only
// own bound is its capacity; when it refuses a block that fits that bound, the disk itself is full
// and evicting would only throw away blocks (their deletes cannot even be written).
bool EvictionCanHelp(Tier* tier, uint64_t charge) {
  if (tier->kind() != TierKind::kSsd) return true;  // slab tiers: fragmentation, pinned slots
  const TierUsage u = tier->Usage();
  return u.used_bytes + charge > u.capacity_bytes;
}
}  // namespace

absl::Status TieredStoreOptions::Validate() const {
  if (max_block_bytes == 0) return absl::InvalidArgumentError("max_block_bytes must be > 0");
  if (write_behind_batch_bytes == 0) {
    return absl::InvalidArgumentError("write_behind_batch_bytes must be > 0");
  }
  return absl::OkStatus();
}

TieredStore::TieredStore(const TieredStoreOptions& options, StoreTiers tiers)
    : options_(options), owned_(std::move(tiers)) {
  auto usable = [](Tier* t) { return t != nullptr && t->Usage().capacity_bytes > 0 ? t : nullptr; };
  tiers_[Idx(TierKind::kHbm)] = usable(owned_.hbm.get());
  tiers_[Idx(TierKind::kDram)] = usable(owned_.dram.get());
  tiers_[Idx(TierKind::kSsd)] = usable(owned_.ssd.get());
  largest_block_bytes_ = ComputeLargestBlockBytes();
}

TieredStore::~TieredStore() = default;

absl::StatusOr<std::unique_ptr<TieredStore>> TieredStore::Open(const TieredStoreOptions& options,
                                                               StoreTiers tiers) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  std::unique_ptr<TieredStore> store(new TieredStore(options, std::move(tiers)));
  if (std::none_of(store->tiers_.begin(), store->tiers_.end(), [](Tier* t) { return t; })) {
    return absl::InvalidArgumentError("no tier has capacity: configure HBM, DRAM or SSD bytes");
  }
  if (SsdTier* ssd = store->owned_.ssd.get(); ssd != nullptr) {
    absl::MutexLock lock(&store->mu_);
    absl::Status s = ssd->ForEachBlock([&](const BlockInfo& info) {
      Entry& e = store->entries_[info.key];
      e.info = info;
      e.generation = store->next_generation_++;
      store->AddCopyLocked(e, TierKind::kSsd);
    });
    if (!s.ok()) return s;
  }
  return store;
}

TieredStore::LruKey TieredStore::LruKeyOf(const Entry& e) {
  return {e.stamp, std::numeric_limits<uint32_t>::max() - e.info.chain_position, e.info.key};
}

std::optional<TierKind> TieredStore::BestTier(const Entry& e) const {
  for (TierKind t : kOrder) {
    if (Has(e, t)) return t;
  }
  return std::nullopt;
}

std::optional<TierKind> TieredStore::Below(TierKind t) const {
  for (int i = Idx(t) + 1; i < kNumTiers; ++i) {
    if (tiers_[i] != nullptr) return kOrder[i];
  }
  return std::nullopt;
}

std::optional<TierKind> TieredStore::Above(TierKind t) const {
  for (int i = Idx(t) - 1; i >= 0; --i) {
    if (tiers_[i] != nullptr) return kOrder[i];
  }
  return std::nullopt;
}

void TieredStore::TouchLocked(Entry& e, uint64_t stamp) {
  if (e.stamp == stamp) return;
  for (TierKind t : kOrder) {
    if (Has(e, t)) lru_[Idx(t)].erase(LruKeyOf(e));
  }
  e.stamp = stamp;
  for (TierKind t : kOrder) {
    if (Has(e, t)) lru_[Idx(t)].insert(LruKeyOf(e));
  }
}

void TieredStore::AddCopyLocked(Entry& e, TierKind t) {
  if (!Has(e, t)) {
    e.present |= Bit(t);
    lru_[Idx(t)].insert(LruKeyOf(e));
    EmitLocked(BlockEventKind::kStored, t, e.info.key);
  }
  if (t == TierKind::kSsd && e.write_pending) {
    e.write_pending = false;
    --write_pending_;
  }
}

bool TieredStore::DropCopyLocked(const BlockKey& key, TierKind t) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return false;
  Entry& e = it->second;
  if (Has(e, t)) {
    lru_[Idx(t)].erase(LruKeyOf(e));
    e.present &= static_cast<uint8_t>(~Bit(t));
    (void)tiers_[Idx(t)]->Erase(key);  // NotFound here only means it is already gone
    EmitLocked(BlockEventKind::kRemoved, t, key);
  }
  if (e.present != 0) return false;
  if (e.write_pending) --write_pending_;
  entries_.erase(it);
  return true;
}

bool TieredStore::EvictOneLocked(TierKind t, const BlockKey& keep) {
  auto& order = lru_[Idx(t)];
  auto victim_it = order.begin();
  while (victim_it != order.end() && std::get<2>(*victim_it) == keep) ++victim_it;
  if (victim_it == order.end()) return false;
  const BlockKey victim = std::get<2>(*victim_it);
  Entry& e = entries_.at(victim);
  const bool has_lower_copy = (e.present & ~((Bit(t) << 1) - 1)) != 0;
  if (!has_lower_copy) {
    if (auto lower = Below(t); lower.has_value()) {
      auto handle = tiers_[Idx(t)]->Read(victim);
      if (handle.ok() && common::Checksum(handle->data()) == e.info.checksum) {
        const BlockInfo info = e.info;  // `e` may move while the lower tier makes room
        if (PutCopyLocked(*lower, info, handle->data()).ok()) {
          ++demotions_;
          demoted_bytes_ += info.size;
          auto again = entries_.find(victim);
          if (again != entries_.end()) AddCopyLocked(again->second, *lower);
        }
      } else if (handle.ok()) {
        ++counters_[Idx(t)].checksum_failures;  // never demote bad bytes
      }
    }
  }
  ++counters_[Idx(t)].evictions;
  DropCopyLocked(victim, t);
  return true;
}

bool TieredStore::MakeRoomLocked(TierKind t, uint64_t charge, const BlockKey& keep) {
  Tier* tier = tiers_[Idx(t)];
  for (;;) {
    const TierUsage u = tier->Usage();
    if (u.used_bytes + charge <= u.capacity_bytes) return true;
    if (!EvictOneLocked(t, keep)) return false;
  }
}

absl::Status TieredStore::PutCopyLocked(TierKind t, const BlockInfo& info,
                                        std::span<const std::byte> payload) {
  Tier* tier = tiers_[Idx(t)];
  const uint64_t charge = tier->ChargeFor(info.size);
  if (charge == 0) return absl::ResourceExhaustedError("block larger than the tier");
  MakeRoomLocked(t, charge, info.key);
  for (;;) {
    absl::Status s = tier->Put(info, payload);
    if (s.ok()) {
      counters_[Idx(t)].bytes_written += info.size;
      return s;
    }
    // Slab fragmentation or pinned memory: free one more block and retry.
    if (!absl::IsResourceExhausted(s) || !EvictionCanHelp(tier, charge) ||
        !EvictOneLocked(t, info.key)) {
      return s;
    }
  }
}

absl::Status TieredStore::PutCopyUnlocked(TierKind t, const BlockInfo& info,
                                          std::span<const std::byte> payload) {
  Tier* tier = tiers_[Idx(t)];
  const uint64_t charge = tier->ChargeFor(info.size);
  if (charge == 0) return absl::ResourceExhaustedError("block larger than the tier");
  {
    absl::MutexLock lock(&mu_);
    if (!MakeRoomLocked(t, charge, info.key)) {
      return absl::ResourceExhaustedError(absl::StrCat(tier->name(), " tier cannot make room"));
    }
  }
  for (;;) {
    absl::Status s = tier->Put(info, payload);  // the payload copy, outside the store lock
    absl::MutexLock lock(&mu_);
    if (s.ok()) {
      counters_[Idx(t)].bytes_written += info.size;
      return s;
    }
    if (!absl::IsResourceExhausted(s) || !EvictionCanHelp(tier, charge) ||
        !EvictOneLocked(t, info.key)) {
      return s;
    }
  }
}

absl::Status TieredStore::CheckPut(const BlockInfo& info,
                                   std::span<const std::byte> payload) const {
  if (payload.empty()) return absl::InvalidArgumentError("empty block");
  if (payload.size() != info.size) {
    return absl::InvalidArgumentError(
        absl::StrCat("payload is ", payload.size(), " bytes, header says ", info.size));
  }
  if (info.size > LargestBlockBytes()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "block of ", common::FormatByteSize(info.size), " exceeds the largest accepted block (",
        common::FormatByteSize(LargestBlockBytes()), ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<TierKind> TieredStore::Put(const BlockInfo& info, std::span<const std::byte> payload,
                                          bool from_gpu) {
  STRATA_RETURN_IF_ERROR(CheckPut(info, payload));
  if (common::Checksum(payload) != info.checksum) {
    return absl::DataLossError(
        absl::StrCat("checksum mismatch for block ", info.key.DebugString(), ": not stored"));
  }
  return PutChecked(info, payload, from_gpu);
}

absl::StatusOr<TierKind> TieredStore::PutComputingChecksum(BlockInfo info,
                                                           std::span<const std::byte> payload,
                                                           bool from_gpu) {
  STRATA_RETURN_IF_ERROR(CheckPut(info, payload));
  info.checksum = common::Checksum(payload);
  return PutChecked(info, payload, from_gpu);
}

absl::StatusOr<TierKind> TieredStore::PutChecked(const BlockInfo& info,
                                                 std::span<const std::byte> payload,
                                                 bool from_gpu) {
  TierKind first = TierKind::kDram;
  if (from_gpu && tier(TierKind::kHbm) != nullptr) {
    first = TierKind::kHbm;
  } else if (tier(TierKind::kDram) == nullptr) {
    first = TierKind::kSsd;
  }
  absl::Status last = absl::ResourceExhaustedError("no tier can hold the block");
  for (std::optional<TierKind> t = tiers_[Idx(first)] ? std::optional(first) : Below(first);
       t.has_value(); t = Below(*t)) {
    if (tiers_[Idx(*t)]->ChargeFor(info.size) == 0) continue;
    last = PutCopyUnlocked(*t, info, payload);
    if (!last.ok()) {
      if (absl::IsResourceExhausted(last)) continue;  // pass the put down a tier
      return last;
    }
    absl::MutexLock lock(&mu_);
    RecordPutLocked(info, *t);
    return *t;
  }
  return last;
}

void TieredStore::RecordPutLocked(const BlockInfo& info, TierKind t) {
  Entry& e = entries_[info.key];
  // A re-put of the same bytes (same size and checksum: a retry, or a second engine storing the
  // same prefix) keeps the copies elsewhere: an SSD copy may be durable (Sync), and erasing it
  // would make the block non-durable until it is written and flushed again. Different bytes make
  // the other copies stale.
  const bool same_bytes =
      e.present != 0 && e.info.size == info.size && e.info.checksum == info.checksum;
  for (TierKind other : kOrder) {
    if (other != t && Has(e, other) && !same_bytes) {
      lru_[Idx(other)].erase(LruKeyOf(e));
      e.present &= static_cast<uint8_t>(~Bit(other));
      (void)tiers_[Idx(other)]->Erase(info.key);
      EmitLocked(BlockEventKind::kRemoved, other, info.key);
    }
  }
  // Every copy kept changes its recency, not the tier set (no removed/stored pair for the router):
  // the LRU keys carry the stamp, so they move.
  for (TierKind k : kOrder) {
    if (Has(e, k)) lru_[Idx(k)].erase(LruKeyOf(e));
  }
  e.info = info;
  e.generation = next_generation_++;
  e.hits_in_tier = 0;
  e.stamp = next_stamp_++;
  for (TierKind k : kOrder) {
    if (Has(e, k)) lru_[Idx(k)].insert(LruKeyOf(e));
  }
  AddCopyLocked(e, t);
  if (t != TierKind::kSsd && tier(TierKind::kSsd) != nullptr && !Has(e, TierKind::kSsd)) {
    if (!e.write_pending) {
      e.write_pending = true;
      ++write_pending_;
    }
    // Queued again even when already pending: a batch may be writing the replaced bytes right
    // now, and it drops them (not current) without queueing the key again.
    write_queue_.push_back(info.key);
  }
}

MemoryTier* TieredStore::dram_memory() const {
  auto* dram = dynamic_cast<MemoryTier*>(tier(TierKind::kDram));
  return dram != nullptr && dram->host_base() != nullptr ? dram : nullptr;
}

absl::StatusOr<ReservedSlot> TieredStore::ReserveDram(uint64_t size) {
  MemoryTier* dram = dram_memory();
  if (dram == nullptr) {
    return absl::FailedPreconditionError("no host-addressable DRAM tier to reserve slots in");
  }
  if (size == 0) return absl::InvalidArgumentError("empty block");
  if (size > LargestBlockBytes()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "block of ", common::FormatByteSize(size), " exceeds the largest accepted block (",
        common::FormatByteSize(LargestBlockBytes()), ")"));
  }
  const uint64_t charge = dram->ChargeFor(size);
  if (charge == 0) return absl::ResourceExhaustedError("block larger than the DRAM tier");
  const BlockKey none{};  // no block to keep: the slot belongs to no key yet
  {
    absl::MutexLock lock(&mu_);
    if (!MakeRoomLocked(TierKind::kDram, charge, none)) {
      return absl::ResourceExhaustedError("dram tier cannot make room (slots pinned or reserved)");
    }
  }
  for (;;) {
    absl::StatusOr<ReservedSlot> slot = dram->Reserve(size);
    if (slot.ok() || !absl::IsResourceExhausted(slot.status())) return slot;
    // Slab fragmentation or pinned memory: free one more block and retry.
    absl::MutexLock lock(&mu_);
    if (!EvictOneLocked(TierKind::kDram, none)) return slot.status();
  }
}

absl::StatusOr<TierKind> TieredStore::CommitDram(const BlockInfo& info, ReservedSlot slot) {
  MemoryTier* dram = dram_memory();
  if (dram == nullptr) return absl::FailedPreconditionError("no host-addressable DRAM tier");
  if (!slot.valid()) return absl::InvalidArgumentError("no reserved slot");
  if (info.size != slot.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("block info says ", info.size, " bytes, slot holds ", slot.size()));
  }
  if (common::Checksum(slot.data()) != info.checksum) {
    return absl::DataLossError(
        absl::StrCat("checksum mismatch for block ", info.key.DebugString(), ": not stored"));
  }
  return AdoptDram(info, std::move(slot));
}

absl::StatusOr<TierKind> TieredStore::CommitDramComputingChecksum(BlockInfo info,
                                                                  ReservedSlot slot) {
  if (!slot.valid()) return absl::InvalidArgumentError("no reserved slot");
  if (info.size != slot.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("block info says ", info.size, " bytes, slot holds ", slot.size()));
  }
  info.checksum = common::Checksum(slot.data());
  return AdoptDram(info, std::move(slot));
}

absl::StatusOr<TierKind> TieredStore::AdoptDram(const BlockInfo& info, ReservedSlot slot) {
  MemoryTier* dram = dram_memory();
  if (dram == nullptr) return absl::FailedPreconditionError("no host-addressable DRAM tier");
  STRATA_RETURN_IF_ERROR(dram->Adopt(info, std::move(slot)));
  absl::MutexLock lock(&mu_);
  counters_[Idx(TierKind::kDram)].bytes_written += info.size;
  RecordPutLocked(info, TierKind::kDram);
  return TierKind::kDram;
}

bool TieredStore::ReportCorruptCopy(const BlockKey& key, TierKind t, uint64_t checksum) {
  Tier* tr = tier(t);
  if (tr == nullptr) return false;
  auto current = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = entries_.find(key);
    return it != entries_.end() && Has(it->second, t) && it->second.info.checksum == checksum;
  };
  {
    absl::MutexLock lock(&mu_);
    if (!current()) return false;  // already gone or replaced
  }
  absl::StatusOr<BlockHandle> handle = tr->Read(key);  // the re-check, outside the lock
  if (handle.ok() && common::Checksum(handle->data()) == checksum) return false;
  absl::MutexLock lock(&mu_);
  if (!current()) return false;
  ++counters_[Idx(t)].checksum_failures;
  DropCopyLocked(key, t);
  return true;
}

BlockRead TieredStore::ReadVerified(const BlockKey& key,
                                    std::optional<absl::StatusOr<BlockHandle>> prefetched,
                                    TierKind prefetched_tier, const ReadOptions& options) {
  // Each pass reads the best remaining copy; a bad copy is dropped, so this ends within kNumTiers
  // passes (plus a few for copies that moved under us).
  bool saw_corruption = false;
  // Tiers whose read failed with an I/O error (Unavailable) in this call: skipped, not dropped,
  // since the copy may read fine later.
  uint8_t unreadable = 0;
  for (int attempt = 0; attempt < 2 * kNumTiers; ++attempt) {
    TierKind t;
    uint64_t expected;
    bool preferred = false;  // read below the best copy because the reader asked for DRAM
    {
      absl::MutexLock lock(&mu_);
      auto it = entries_.find(key);
      std::optional<TierKind> best;
      if (it != entries_.end()) {
        for (TierKind k : kOrder) {
          if (Has(it->second, k) && (unreadable & Bit(k)) == 0) {
            best = k;
            break;
          }
        }
      }
      if (!best.has_value()) break;
      t = *best;
      if (options.prefer_dram && t != TierKind::kDram && Has(it->second, TierKind::kDram) &&
          (unreadable & Bit(TierKind::kDram)) == 0) {
        t = TierKind::kDram;
        preferred = true;
      }
      expected = it->second.info.checksum;
    }
    absl::StatusOr<BlockHandle> handle = (prefetched.has_value() && prefetched_tier == t)
                                             ? std::move(*prefetched)
                                             : tiers_[Idx(t)]->Read(key);
    prefetched.reset();
    const bool verify = t != TierKind::kDram || options.verify_dram;
    if (handle.ok() && handle->info().checksum == expected &&
        (!verify || common::Checksum(handle->data()) == expected)) {
      {
        absl::MutexLock lock(&mu_);
        counters_[Idx(t)].hits += 1;
        counters_[Idx(t)].bytes_read += handle->data().size();
      }
      if (verify && !preferred) MaybePromote(key, t, *handle);
      return BlockRead{absl::OkStatus(), t, std::move(handle).value(), verify};
    }
    if (!handle.ok() && absl::IsUnavailable(handle.status())) {
      // An I/O error (or an injected fault): try a lower copy now, this one again next time.
      unreadable |= Bit(t);
      continue;
    }
    absl::MutexLock lock(&mu_);
    if (handle.ok() || !absl::IsNotFound(handle.status())) {
      // Wrong bytes, or a corrupt record (a corrupt SSD record reads as DataLoss): never served.
      ++counters_[Idx(t)].checksum_failures;
      saw_corruption = true;
      DropCopyLocked(key, t);
    } else {
      // Raced with an eviction or delete: the index is refreshed on the next pass.
      auto it = entries_.find(key);
      if (it != entries_.end() && Has(it->second, t) && !tiers_[Idx(t)]->Contains(key)) {
        DropCopyLocked(key, t);
      }
    }
  }
  absl::MutexLock lock(&mu_);
  ++misses_;
  if (saw_corruption) {
    return BlockRead{absl::DataLossError(
                         absl::StrCat("every copy of ", key.DebugString(), " failed its checksum")),
                     TierKind::kDram,
                     {}};
  }
  if (unreadable != 0) {
    return BlockRead{absl::UnavailableError(absl::StrCat("no copy of ", key.DebugString(),
                                                         " could be read now (I/O error)")),
                     TierKind::kDram,
                     {}};
  }
  return BlockRead{absl::NotFoundError(key.DebugString()), TierKind::kDram, {}};
}

void TieredStore::MaybePromote(const BlockKey& key, TierKind from, const BlockHandle& handle) {
  if (options_.promote_after_hits == 0) return;
  const std::optional<TierKind> up = Above(from);
  if (!up.has_value()) return;
  BlockInfo info;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(key);
    if (it == entries_.end() || Has(it->second, *up)) return;
    if (++it->second.hits_in_tier < options_.promote_after_hits) return;
    info = it->second.info;
  }
  if (!PutCopyUnlocked(*up, info, handle.data()).ok()) return;
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.info.checksum != info.checksum) {
    (void)tiers_[Idx(*up)]->Erase(key);  // deleted or replaced meanwhile
    return;
  }
  it->second.hits_in_tier = 0;
  AddCopyLocked(it->second, *up);
  ++promotions_;
  promoted_bytes_ += info.size;
}

std::vector<BlockRead> TieredStore::GetChain(common::NamespaceId ns,
                                             std::span<const common::ChainHash> chain,
                                             bool stop_at_first_miss) {
  return GetChain(ns, chain, stop_at_first_miss, ReadOptions{});
}

std::vector<BlockRead> TieredStore::GetChain(common::NamespaceId ns,
                                             std::span<const common::ChainHash> chain,
                                             bool stop_at_first_miss, const ReadOptions& options) {
  std::vector<BlockRead> out;
  out.reserve(chain.size());
  std::vector<BlockKey> keys;
  std::vector<std::optional<TierKind>> planned;
  {
    absl::MutexLock lock(&mu_);
    const uint64_t stamp = next_stamp_++;
    for (const common::ChainHash& h : chain) {
      BlockKey key{ns, h};
      auto it = entries_.find(key);
      keys.push_back(key);
      if (it == entries_.end()) {
        planned.push_back(std::nullopt);
        if (stop_at_first_miss) break;
        continue;
      }
      TouchLocked(it->second, stamp);
      planned.push_back(BestTier(it->second));
    }
  }
  // Blocks whose best copy is on SSD are fetched in one batched read (MultiGet).
  std::vector<BlockKey> ssd_keys;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (planned[i] == TierKind::kSsd) ssd_keys.push_back(keys[i]);
  }
  std::vector<absl::StatusOr<BlockHandle>> ssd_reads;
  if (!ssd_keys.empty()) ssd_reads = tiers_[Idx(TierKind::kSsd)]->ReadBatch(ssd_keys);
  size_t next_ssd = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!planned[i].has_value()) {
      {
        absl::MutexLock lock(&mu_);
        ++misses_;
      }
      out.push_back(BlockRead{absl::NotFoundError(keys[i].DebugString()), TierKind::kDram, {}});
    } else if (planned[i] == TierKind::kSsd) {
      out.push_back(
          ReadVerified(keys[i], std::move(ssd_reads[next_ssd++]), TierKind::kSsd, options));
    } else {
      out.push_back(ReadVerified(keys[i], std::nullopt, TierKind::kSsd, options));
    }
    if (stop_at_first_miss && !out.back().status.ok()) break;
  }
  return out;
}

LookupResult TieredStore::Lookup(common::NamespaceId ns,
                                 std::span<const common::ChainHash> chain) const {
  LookupResult r;
  absl::MutexLock lock(&mu_);
  for (const common::ChainHash& h : chain) {
    auto it = entries_.find(BlockKey{ns, h});
    if (it == entries_.end()) break;
    const std::optional<TierKind> best = BestTier(it->second);
    if (!best.has_value()) break;
    ++r.matched_blocks;
    ++r.blocks_per_tier[Idx(*best)];
    r.tiers.push_back(*best);
  }
  return r;
}

std::vector<uint64_t> TieredStore::PayloadSizes(common::NamespaceId ns,
                                                std::span<const common::ChainHash> chain) const {
  std::vector<uint64_t> sizes;
  sizes.reserve(chain.size());
  absl::MutexLock lock(&mu_);
  for (const common::ChainHash& h : chain) {
    auto it = entries_.find(BlockKey{ns, h});
    sizes.push_back(it == entries_.end() ? 0 : it->second.info.size);
  }
  return sizes;
}

uint32_t TieredStore::Delete(common::NamespaceId ns, std::span<const common::ChainHash> chain) {
  uint32_t deleted = 0;
  absl::MutexLock lock(&mu_);
  for (const common::ChainHash& h : chain) {
    const BlockKey key{ns, h};
    if (!entries_.contains(key)) continue;
    ++deleted;
    for (TierKind t : kOrder) {
      if (DropCopyLocked(key, t)) break;
    }
  }
  return deleted;
}

size_t TieredStore::FlushWriteBehind() {
  Tier* ssd = tier(TierKind::kSsd);
  if (ssd == nullptr) return 0;
  std::vector<BlockInfo> infos;
  std::vector<BlockHandle> handles;
  std::vector<uint64_t> generations;
  {
    absl::MutexLock lock(&mu_);
    std::vector<BlockKey> deferred;  // unreadable now (I/O error): retried by a later call
    uint64_t bytes = 0;
    while (!write_queue_.empty() && bytes < options_.write_behind_batch_bytes) {
      const BlockKey key = write_queue_.front();
      write_queue_.pop_front();
      auto it = entries_.find(key);
      if (it == entries_.end() || !it->second.write_pending || Has(it->second, TierKind::kSsd)) {
        continue;
      }
      const std::optional<TierKind> from = BestTier(it->second);
      auto handle = tiers_[Idx(*from)]->Read(key);
      if (!handle.ok() && absl::IsUnavailable(handle.status())) {
        deferred.push_back(key);
        continue;
      }
      const bool bad_bytes =
          handle.ok() && common::Checksum(handle->data()) != it->second.info.checksum;
      if (!handle.ok() || bad_bytes) {
        if (bad_bytes) ++counters_[Idx(*from)].checksum_failures;  // never persist bad bytes
        // Forget the copy that cannot be read; a copy left in another tier is retried.
        DropCopyLocked(key, *from);
        auto left = entries_.find(key);
        if (left != entries_.end() && left->second.write_pending) write_queue_.push_back(key);
        continue;
      }
      const BlockInfo info = it->second.info;
      const uint64_t generation = it->second.generation;
      if (!MakeRoomLocked(TierKind::kSsd, info.size, key)) {
        write_queue_.push_front(key);
        break;
      }
      bytes += info.size;
      infos.push_back(info);
      handles.push_back(std::move(handle).value());
      generations.push_back(generation);
    }
    write_queue_.insert(write_queue_.end(), deferred.begin(), deferred.end());
  }
  if (infos.empty()) return 0;
  std::vector<std::span<const std::byte>> payloads;
  payloads.reserve(handles.size());
  for (const BlockHandle& h : handles) payloads.push_back(h.data());
  const std::vector<absl::Status> results = ssd->PutBatch(infos, payloads);  // disk I/O, unlocked
  size_t written = 0;
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < infos.size(); ++i) {
    auto it = entries_.find(infos[i].key);
    const bool current = it != entries_.end() && it->second.generation == generations[i];
    if (!results[i].ok()) {
      if (current && it->second.write_pending) write_queue_.push_back(infos[i].key);
      continue;
    }
    counters_[Idx(TierKind::kSsd)].bytes_written += infos[i].size;
    write_behind_bytes_ += infos[i].size;
    ++written;
    if (current) {
      AddCopyLocked(it->second, TierKind::kSsd);
    } else if (it == entries_.end() || !Has(it->second, TierKind::kSsd)) {
      (void)ssd->Erase(infos[i].key);  // deleted or replaced while being written: stale
    }
  }
  return written;
}

absl::Status TieredStore::Drain() {
  // Bounded: each pass either persists blocks or stops making progress (full or failing disk).
  while (FlushWriteBehind() > 0) {
  }
  if (owned_.ssd != nullptr && tier(TierKind::kSsd) != nullptr) return owned_.ssd->Flush();
  return absl::OkStatus();
}

void TieredStore::SetEventSink(BlockEventSink* sink) {
  absl::MutexLock lock(&mu_);
  sink_ = sink;
}

void TieredStore::VisitBlocks(
    absl::FunctionRef<void()> cut,
    absl::FunctionRef<void(const BlockKey& key, uint8_t tiers)> visit) const {
  absl::MutexLock lock(&mu_);
  cut();
  for (const auto& [key, e] : entries_) {
    if (e.present != 0) visit(key, e.present);
  }
}

StoreStats TieredStore::Stats() const {
  StoreStats s;
  s.max_block_bytes = LargestBlockBytes();
  absl::MutexLock lock(&mu_);
  for (TierKind t : kOrder) {
    Tier* tr = tiers_[Idx(t)];
    if (tr == nullptr) continue;
    s.tiers.push_back({t, tr->name(), tr->emulated(), tr->Usage(), counters_[Idx(t)]});
  }
  s.misses = misses_;
  s.blocks = entries_.size();
  s.demotions = demotions_;
  s.promotions = promotions_;
  s.demoted_bytes = demoted_bytes_;
  s.promoted_bytes = promoted_bytes_;
  s.write_behind_bytes = write_behind_bytes_;
  s.write_behind_pending = write_pending_;
  s.persisted_blocks = lru_[Idx(TierKind::kSsd)].size();
  return s;
}

uint64_t TieredStore::ComputeLargestBlockBytes() const {
  uint64_t largest = 0;
  for (Tier* t : tiers_) {
    if (t == nullptr) continue;
    // Binary search for the largest size the tier can ever charge (monotone in size).
    uint64_t lo = 0, hi = t->Usage().capacity_bytes;
    while (lo < hi) {
      const uint64_t mid = lo + (hi - lo + 1) / 2;
      if (t->ChargeFor(mid) > 0)
        lo = mid;
      else
        hi = mid - 1;
    }
    largest = std::max(largest, lo);
  }
  return std::min(largest, options_.max_block_bytes);
}

}  // namespace strata::cachenode
