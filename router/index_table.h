// IndexTable: the hash table inside each GlobalIndex shard, index key -> Holders (the nodes
// holding that block and in which tiers). Internal to GlobalIndex; header-only so its tests can
// reach it.
//
// Open addressing with Robin Hood linear probing over 16-byte slots (key + Holders), no control
// bytes and no tombstones (erase shifts the run back). A lookup reads one cache line, sometimes
// two; a swiss table (absl::flat_hash_map, measured first) reads a control line and a slot line
// and leaves tombstones that force whole-table rehashes under churn. A slot is empty exactly when
// its Holders are empty: a key nobody holds is never kept. Grows by doubling at 3/4 load. Tables
// of 2 MiB and more are mapped 2 MiB-aligned and advised for transparent huge pages: at 10M
// entries the tables span ~240 MiB and with 4 KiB pages nearly every lookup also missed the TLB.
//
// Thread-compatible (the shard's mutex guards it), except Prefetch, which any thread may call at
// any time: it reads an atomic copy of the table's address and size and only issues prefetches.
#pragma once

#include <sys/mman.h>

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <utility>

#include "router/types.h"

namespace strata::router::index_internal {

// The tag test in Holders reads the low bits of a pointer out of the first 32-bit word.
static_assert(std::endian::native == std::endian::little, "Holders assumes little-endian");

// One holder packed in 32 bits: node slot in the high 24 bits, tier mask in the low 8. A valid
// entry always has a non-zero mask, and masks use only bits 0-2, which is what lets Holders tell
// an inline entry from an (8-byte aligned) pointer.
inline constexpr uint32_t kSlotLimit = 1u << 24;
inline constexpr TierMask kAllTierBits = (1u << kNumTiers) - 1;
inline uint32_t Pack(NodeSlot slot, TierMask mask) { return (slot << 8) | mask; }
inline NodeSlot SlotOf(uint32_t entry) { return entry >> 8; }
inline TierMask MaskOf(uint32_t entry) { return static_cast<TierMask>(entry & 0xff); }
// The tier a block is counted in on a node: the fastest it holds it in.
inline int FastestTier(TierMask mask) { return std::countr_zero(static_cast<unsigned>(mask)); }

// splitmix64's finalizer: a bijection with good avalanche. Keys are hash outputs already, but
// tests and structured callers use 1, 2, 3...
inline uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The top kShardHashBits of a key's hash pick its shard; a table places keys by the bits below.
inline constexpr int kShardHashBits = 16;

// What glibc's malloc really hands out for `request` bytes: chunks are 16-byte multiples with an
// 8-byte header, 32 bytes at least. Stats count this rather than the request.
constexpr uint64_t HeapChunkBytes(uint64_t request) {
  const uint64_t chunk = (request + 8 + 15) & ~uint64_t{15};
  return chunk < 32 ? 32 : chunk;
}

// Order-independent fingerprint of a holder set: the sum of a mix of each entry. Match uses it to
// see that consecutive blocks have the same holders in the same tiers (a shared prompt is held by
// every node, block after block). Different sets collide with probability about 2^-64.
inline uint64_t EntryPrint(uint32_t entry) { return Mix64(entry); }

// Out-of-line holder list, for blocks held by more than two nodes. Entries are unordered.
struct HolderList {
  uint32_t size;
  uint32_t capacity;
  uint64_t print;  // sum of EntryPrint over the entries
  uint32_t* entries() { return reinterpret_cast<uint32_t*>(this + 1); }
  const uint32_t* entries() const { return reinterpret_cast<const uint32_t*>(this + 1); }

  static uint64_t BytesFor(uint32_t capacity) {
    return HeapChunkBytes(sizeof(HolderList) + uint64_t{capacity} * sizeof(uint32_t));
  }
  static HolderList* New(uint32_t capacity, uint64_t* heap_bytes) {
    // Round the capacity up to fill the malloc chunk it gets anyway.
    capacity = static_cast<uint32_t>((BytesFor(capacity) - 8 - sizeof(HolderList)) / 4);
    void* raw = ::operator new (sizeof(HolderList) + size_t{capacity} * sizeof(uint32_t));
    auto* list = new (raw) HolderList{0, capacity, 0};
    *heap_bytes += BytesFor(capacity);
    return list;
  }
  static void Delete(HolderList* list, uint64_t* heap_bytes) {
    *heap_bytes -= BytesFor(list->capacity);
    ::operator delete(list);
  }
};
static_assert(sizeof(HolderList) == 16);
static_assert(__STDCPP_DEFAULT_NEW_ALIGNMENT__ >= 8, "pointer tag needs 8-byte alignment");

// The set of (node, tier mask) holding one block, in 8 bytes. Three states, told apart by the
// first 32-bit word:
//   both words 0                 -> no holder (an empty table slot)
//   low 3 bits of word 0 != 0    -> up to two inline entries (word 1 is 0 when there is one)
//   otherwise                    -> the two words are a HolderList* (never null here)
// Most blocks are held by one or two nodes, so most cost no allocation. A plain value (tables
// move slots with memcpy); whoever drops a non-empty one calls Free. Calls that may allocate take
// the owner's heap-bytes counter.
class Holders {
 public:
  struct View {
    const uint32_t* data;
    uint32_t size;
  };

  static Holders Single(NodeSlot slot, TierMask mask) {
    Holders h;
    h.w_[0] = Pack(slot, mask);
    return h;
  }

  bool empty() const { return w_[0] == 0 && w_[1] == 0; }

  View view() const {
    if (IsList()) return {list()->entries(), list()->size};
    return {w_, static_cast<uint32_t>((w_[0] != 0) + (w_[1] != 0))};
  }

  uint64_t Print() const {
    if (IsList()) return list()->print;
    return (w_[0] ? EntryPrint(w_[0]) : 0) + (w_[1] ? EntryPrint(w_[1]) : 0);
  }

  TierMask Get(NodeSlot slot) const {
    const View v = view();
    for (uint32_t i = 0; i < v.size; ++i) {
      if (SlotOf(v.data[i]) == slot) return MaskOf(v.data[i]);
    }
    return 0;
  }

  // Adds `bits` to the node's mask. Returns true when the node was not a holder before.
  bool Add(NodeSlot slot, TierMask bits, uint64_t* heap_bytes) {
    if (uint32_t* e = Find(slot)) {
      Replace(e, *e | bits);
      return false;
    }
    const uint32_t entry = Pack(slot, bits);
    if (!IsList()) {
      if (w_[0] == 0) {
        w_[0] = entry;
        return true;
      }
      if (w_[1] == 0) {
        w_[1] = entry;
        return true;
      }
      HolderList* grown = HolderList::New(3, heap_bytes);
      grown->entries()[0] = w_[0];
      grown->entries()[1] = w_[1];
      grown->size = 2;
      grown->print = EntryPrint(w_[0]) + EntryPrint(w_[1]);
      SetList(grown);
    }
    HolderList* l = list();
    if (l->size == l->capacity) {
      HolderList* grown = HolderList::New(l->capacity + l->capacity / 2, heap_bytes);
      std::memcpy(grown->entries(), l->entries(), l->size * sizeof(uint32_t));
      grown->size = l->size;
      grown->print = l->print;
      HolderList::Delete(l, heap_bytes);
      SetList(grown);
      l = grown;
    }
    l->entries()[l->size++] = entry;
    l->print += EntryPrint(entry);
    return true;
  }

  // Clears `bits` from the node's mask. Returns true when that removed the node entirely.
  bool Remove(NodeSlot slot, TierMask bits, uint64_t* heap_bytes) {
    uint32_t* e = Find(slot);
    if (e == nullptr) return false;
    const uint32_t remaining = MaskOf(*e) & ~bits;
    if (remaining != 0) {
      Replace(e, Pack(slot, static_cast<TierMask>(remaining)));
      return false;
    }
    if (!IsList()) {
      if (e == &w_[0]) w_[0] = w_[1];
      w_[1] = 0;
      return true;
    }
    HolderList* l = list();
    l->print -= EntryPrint(*e);
    *e = l->entries()[--l->size];
    if (l->size <= 2) {  // back inline: keeps the common case allocation-free
      const uint32_t a = l->entries()[0];
      const uint32_t b = l->size == 2 ? l->entries()[1] : 0;
      HolderList::Delete(l, heap_bytes);
      w_[0] = a;
      w_[1] = b;
    }
    return true;
  }

  // Releases an out-of-line list (teardown; no accounting).
  void Free() {
    if (IsList()) ::operator delete(list());
    w_[0] = w_[1] = 0;
  }

 private:
  bool IsList() const { return (w_[0] & 7u) == 0 && !empty(); }
  HolderList* list() const {
    HolderList* l;
    std::memcpy(&l, w_, sizeof(l));
    return l;
  }
  void SetList(HolderList* l) { std::memcpy(w_, &l, sizeof(l)); }

  void Replace(uint32_t* e, uint32_t entry) {
    if (IsList()) list()->print += EntryPrint(entry) - EntryPrint(*e);
    *e = entry;
  }

  uint32_t* Find(NodeSlot slot) {
    uint32_t* data = w_;
    uint32_t size = (w_[0] != 0) + (w_[1] != 0);
    if (IsList()) {
      data = list()->entries();
      size = list()->size;
    }
    for (uint32_t i = 0; i < size; ++i) {
      if (SlotOf(data[i]) == slot) return &data[i];
    }
    return nullptr;
  }

  alignas(8) uint32_t w_[2] = {0, 0};
};
static_assert(sizeof(Holders) == 8);

class IndexTable {
 public:
  struct Slot {
    IndexKey key;
    Holders holders;
  };
  static_assert(sizeof(Slot) == 16);

  IndexTable() = default;
  ~IndexTable() {
    for (size_t i = 0; i < capacity_; ++i) slots_[i].holders.Free();
    FreeSlots(slots_, capacity_);
  }
  IndexTable(const IndexTable&) = delete;
  IndexTable& operator=(const IndexTable&) = delete;

  static uint64_t Hash(IndexKey key) { return Mix64(key); }

  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  uint64_t bytes() const { return uint64_t{capacity_} * sizeof(Slot); }

  // The holders of `key` (hash = Hash(key)), or null.
  const Holders* Find(IndexKey key, uint64_t hash) const {
    if (size_ == 0) return nullptr;
    size_t i = Home(hash);
    for (size_t d = 0;; ++d, i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.holders.empty()) return nullptr;
      if (s.key == key) return &s.holders;
      if (Distance(i, s.key) < d) return nullptr;  // Robin Hood: it would sit before this one
    }
  }

  // Adds `bits` to the node's mask for `key`, inserting the key if new. True when the node was
  // not a holder of it before.
  bool Add(IndexKey key, uint64_t hash, NodeSlot node, TierMask bits, uint64_t* heap_bytes) {
    size_t i = 0;
    size_t d = 0;
    if (capacity_ != 0) {
      for (i = Home(hash);; ++d, i = (i + 1) & mask_) {
        Slot& s = slots_[i];
        if (s.holders.empty()) break;
        if (s.key == key) return s.holders.Add(node, bits, heap_bytes);
        if (Distance(i, s.key) < d) break;  // Robin Hood: it would sit before this one
      }
    }
    ++size_;
    if (size_ > max_size_) {
      Grow();
      Place(Slot{key, Holders::Single(node, bits)});
      return true;
    }
    // It goes to slot i; whatever sits there moves on.
    Slot carry{key, Holders::Single(node, bits)};
    for (;; ++d, i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.holders.empty()) {
        s = carry;
        return true;
      }
      const size_t resident = Distance(i, s.key);
      if (resident < d) {
        std::swap(s, carry);
        d = resident;
      }
    }
  }

  // Clears `bits` from the node's mask for `key`; drops the key when nobody holds it any more.
  // True when the node stopped being a holder. Absent keys and nodes are ignored.
  bool Remove(IndexKey key, uint64_t hash, NodeSlot node, TierMask bits, uint64_t* heap_bytes) {
    if (size_ == 0) return false;
    size_t i = Home(hash);
    for (size_t d = 0;; ++d, i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.holders.empty() || (s.key != key && Distance(i, s.key) < d)) return false;
      if (s.key != key) continue;
      const bool removed = s.holders.Remove(node, bits, heap_bytes);
      if (s.holders.empty()) EraseAt(i);
      return removed;
    }
  }

  // Removes `node` from every key, stopping once `expected` removals are done (the caller's count
  // of the node's keys here). Returns the removals.
  uint64_t RemoveNode(NodeSlot node, uint64_t expected, uint64_t* heap_bytes) {
    uint64_t removed = 0;
    size_t i = 0;
    while (i < capacity_ && removed < expected) {
      Slot& s = slots_[i];
      if (!s.holders.empty() && s.holders.Remove(node, kAllTierBits, heap_bytes)) {
        ++removed;
        if (s.holders.empty()) {
          // The run shifts back into slot i: look at it again. A key from the start of the table
          // can wrap into the end and be seen twice; its second Remove finds nothing.
          EraseAt(i);
          continue;
        }
      }
      ++i;
    }
    return removed;
  }

  // Prefetches the line where `hash` would sit. Safe from any thread without the shard lock: it
  // reads an atomic copy of the slots' address and size (possibly a stale or mixed pair during a
  // resize, which only makes the hint useless: prefetches never fault).
  void Prefetch(uint64_t hash) const {
    const uintptr_t base = hint_base_.load(std::memory_order_relaxed);
    const int shift = hint_shift_.load(std::memory_order_relaxed);
    if (base == 0 || shift >= 64) return;
    const uintptr_t at = base + (((hash << kShardHashBits) >> shift) * sizeof(Slot));
    __builtin_prefetch(reinterpret_cast<const void*>(at), 0, 3);
  }

 private:
  static constexpr size_t kMinCapacity = 16;
  static constexpr size_t kHugePage = size_t{2} << 20;
  static constexpr size_t kPage = 4096;

  size_t Home(uint64_t hash) const { return (hash << kShardHashBits) >> shift_; }
  size_t Distance(size_t at, IndexKey resident) const {
    return (at - Home(Hash(resident))) & mask_;
  }

  // Backward-shift deletion: pull the rest of the run one slot back until an empty slot or a key
  // already at its home.
  void EraseAt(size_t i) {
    for (size_t j = (i + 1) & mask_;; i = j, j = (j + 1) & mask_) {
      const Slot& next = slots_[j];
      if (next.holders.empty() || Distance(j, next.key) == 0) break;
      slots_[i] = next;
    }
    slots_[i] = Slot{};
    --size_;
  }

  void Grow() {
    const size_t capacity = capacity_ == 0 ? kMinCapacity : capacity_ * 2;
    Slot* old = slots_;
    const size_t old_capacity = capacity_;
    slots_ = AllocateSlots(capacity);
    capacity_ = capacity;
    mask_ = capacity - 1;
    shift_ = 64 - std::countr_zero(capacity);
    // Grow at 3/4 load. Measured against 7/8 (strata-bench router, 10M entries): ingest 20-30%
    // faster (shorter Robin Hood runs to shift on insert and erase), routes the same, memory
    // 26.2 instead of 23.5 bytes per entry.
    max_size_ = capacity - capacity / 4;
    // Keys sit in hash order (homes come from the hash's high bits), so this walk writes the new
    // table almost sequentially.
    for (size_t k = 0; k < old_capacity; ++k) {
      if (!old[k].holders.empty()) Place(old[k]);
    }
    FreeSlots(old, old_capacity);
    hint_shift_.store(shift_, std::memory_order_relaxed);
    hint_base_.store(reinterpret_cast<uintptr_t>(slots_), std::memory_order_relaxed);
  }

  // Inserts a key known to be absent (rehash).
  void Place(Slot carry) {
    size_t i = Home(Hash(carry.key));
    for (size_t d = 0;; ++d, i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.holders.empty()) {
        s = carry;
        return;
      }
      const size_t resident = Distance(i, s.key);
      if (resident < d) {
        std::swap(s, carry);
        d = resident;
      }
    }
  }

  static size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

  // Zeroed slots. Large tables come straight from mmap (zero pages, faulted in lazily), 2 MiB
  // aligned and advised for huge pages (Debian's THP mode is `madvise`; failure is harmless).
  static Slot* AllocateSlots(size_t capacity) {
    const size_t bytes = capacity * sizeof(Slot);
    if (bytes < kHugePage) {
      void* p = ::operator new (bytes, std::align_val_t{64});
      std::memset(p, 0, bytes);
      return static_cast<Slot*>(p);
    }
    const size_t len = RoundUp(bytes, kPage);
    const size_t span = len + kHugePage;
    void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) throw std::bad_alloc();
    const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
    const uintptr_t aligned = RoundUp(start, kHugePage);
    if (aligned > start) munmap(raw, aligned - start);
    if (start + span > aligned + len) {
      munmap(reinterpret_cast<void*>(aligned + len), start + span - aligned - len);
    }
    madvise(reinterpret_cast<void*>(aligned), len, MADV_HUGEPAGE);
    return reinterpret_cast<Slot*>(aligned);
  }
  static void FreeSlots(Slot* slots, size_t capacity) {
    if (slots == nullptr) return;
    const size_t bytes = capacity * sizeof(Slot);
    if (bytes < kHugePage) {
      ::operator delete (slots, std::align_val_t{64});
    } else {
      munmap(slots, RoundUp(bytes, kPage));
    }
  }

  Slot* slots_ = nullptr;
  size_t capacity_ = 0;
  size_t mask_ = 0;
  int shift_ = 64;
  size_t size_ = 0;
  size_t max_size_ = 0;
  std::atomic<uintptr_t> hint_base_{0};
  std::atomic<int> hint_shift_{64};
};

}  // namespace strata::router::index_internal
