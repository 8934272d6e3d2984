#include "router/route_memory.h"

#include <algorithm>

namespace strata::router {
namespace {

constexpr int kTimeBits = 40;  // ms: 34 years
constexpr uint64_t kTimeMask = (uint64_t{1} << kTimeBits) - 1;

// Index keys are hash prefixes already; mixing again keeps related keys off neighbouring slots.
uint64_t Mix(uint64_t k) {  // splitmix64's finalizer
  k ^= k >> 30;
  k *= 0xbf58476d1ce4e5b9ULL;
  k ^= k >> 27;
  k *= 0x94d049bb133111ebULL;
  k ^= k >> 31;
  return k;
}

}  // namespace

RouteMemory::RouteMemory(const RouteMemoryOptions& options, absl::Time epoch)
    : epoch_(epoch),
      horizon_ms_(std::max<int64_t>(0, absl::ToInt64Milliseconds(options.horizon))) {
  if (options.slots == 0 || horizon_ms_ == 0) return;
  uint64_t n = 1;
  while (n < options.slots) n <<= 1;
  mask_ = n - 1;
  slots_ = std::make_unique<Slot[]>(n);
}

RouteMemory::Slot& RouteMemory::SlotOf(IndexKey key) const { return slots_[Mix(key) & mask_]; }

void RouteMemory::Record(std::span<const IndexKey> keys, NodeSlot node, absl::Time now) {
  if (!enabled()) return;
  const uint64_t ms =
      static_cast<uint64_t>(std::max<int64_t>(0, absl::ToInt64Milliseconds(now - epoch_)));
  const uint64_t meta = (uint64_t{node} + 1) << kTimeBits | (ms & kTimeMask);
  for (const IndexKey k : keys) {
    Slot& s = SlotOf(k);
    if (s.key.load(std::memory_order_relaxed) != k) {
      s.key.store(k, std::memory_order_relaxed);
      s.meta[0].store(meta, std::memory_order_relaxed);
      s.meta[1].store(0, std::memory_order_relaxed);
      continue;
    }
    const uint64_t first = s.meta[0].load(std::memory_order_relaxed);
    if ((first >> kTimeBits) != (meta >> kTimeBits)) {
      s.meta[1].store(first, std::memory_order_relaxed);  // the other node moves second
    }
    s.meta[0].store(meta, std::memory_order_relaxed);
  }
}

std::array<RememberedMatch, 2> RouteMemory::Match(std::span<const IndexKey> keys,
                                                  absl::Time now) const {
  std::array<RememberedMatch, 2> out;
  if (!enabled()) return out;
  const int64_t now_ms = absl::ToInt64Milliseconds(now - epoch_);
  // Keys are whole prefixes: if block p was routed to a node, so was every block before it. So the
  // longest remembered block per node gives its match, and a key lost to a collision costs
  // nothing while a later one of the same chain survives. Scan from the end.
  int found = 0;
  for (size_t p = keys.size(); p-- > 0 && found < 2;) {
    const Slot& s = SlotOf(keys[p]);
    if (s.key.load(std::memory_order_relaxed) != keys[p]) continue;
    for (int i = 0; i < 2 && found < 2; ++i) {
      const uint64_t meta = s.meta[i].load(std::memory_order_relaxed);
      if (meta == 0 || now_ms - static_cast<int64_t>(meta & kTimeMask) > horizon_ms_) continue;
      const NodeSlot node = static_cast<NodeSlot>((meta >> kTimeBits) - 1);
      if (found == 1 && out[0].node == node) continue;
      out[found++] = RememberedMatch{node, static_cast<uint32_t>(p + 1)};
    }
  }
  return out;
}

}  // namespace strata::router
