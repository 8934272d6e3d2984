// TieredStore: the cache node's block store over its HBM, DRAM and SSD tiers; the only component
// that moves blocks between tiers.
//
// Placement. A put lands in DRAM, or in HBM when it comes from the GPU and the node has an HBM
// tier; a tier that cannot make room passes the put down. Blocks in HBM/DRAM are copied to SSD by
// write-behind in batches (FlushWriteBehind), so most blocks leaving DRAM already have an SSD copy.
//
// Eviction. Each tier evicts in least-recently-used order, where one request (a put stream or a
// chain read) stamps all its blocks with the same recency and ties go to the deepest chain position
// first: a chain's tail leaves before its head, and a shared head (touched by every chain through
// it) stays longest. A block leaving HBM or DRAM is demoted (copied one tier down) unless a lower
// tier already holds it; a block leaving SSD is dropped.
//
// Promotion. A block served from a lower tier counts hits while there; on its
// `promote_after_hits`-th hit it is copied one tier up (SSD -> DRAM, DRAM -> HBM when present). The
// lower copy stays, so promotion never loses persistence.
//
// Integrity. Every read from every tier is verified against the block's xxh3 checksum; a mismatch
// counts a checksum failure for that tier, removes the bad copy, and falls back to a lower copy if
// one exists, else reports a DATA_LOSS miss. Wrong bytes are never returned.
//
// Pins. Handles returned by GetChain pin the bytes they reference until destroyed.
//
// Slots. For the same-node shared-memory data plane, a put can go through the DRAM arena without a
// copy on the node: ReserveDram allocates an empty DRAM slot (evicting as a put would), another
// process fills it through its mapping, and CommitDram verifies the bytes and adopts the slot as
// the block's DRAM copy. A reserved slot is never handed to anything else until it is committed or
// its ReservedSlot is destroyed. Readers whose client verifies every byte it copies (the shm
// client) may skip the node's own verification of DRAM copies (ReadOptions); bad copies they find
// come back through ReportCorruptCopy.
//
// Events. With a BlockEventSink set, every change of which tiers hold a block is reported under
// the store mutex (block_events.h): stored(key, tier) when a copy appears, removed(key, tier) when
// one goes. VisitBlocks pairs a consistent full listing with a cut point in that event stream.
//
// Thread-safe. Metadata sits under one mutex; payload copies of puts and reads run outside it
// (demotions and write-behind bookkeeping run under it).
#pragma once

#include <array>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "cachenode/block_events.h"
#include "cachenode/memory_tier.h"
#include "cachenode/ssd_tier.h"
#include "cachenode/tier.h"

namespace strata::cachenode {

struct TieredStoreOptions {
  // Largest block accepted. 64 MiB holds one 512-token block of a Llama-3-8B-shaped model
  // (128 KiB per token); larger values raise the memory one in-flight put may hold.
  uint64_t max_block_bytes = 64ull << 20;
  // Hits in a lower tier before a block is copied up. 1 promotes on first hit (more copies, faster
  // second hit); 0 never promotes.
  uint32_t promote_after_hits = 2;
  // Bytes per write-behind batch: one RocksDB write batch, about one memtable.
  uint64_t write_behind_batch_bytes = 32ull << 20;

  absl::Status Validate() const;
};

// The tiers a store owns. Any may be null (not configured); at least one must exist.
struct StoreTiers {
  std::unique_ptr<Tier> hbm;
  std::unique_ptr<Tier> dram;
  std::unique_ptr<SsdTier> ssd;
};

struct BlockRead {
  absl::Status status;  // OK, NotFound (absent), DataLoss (every copy failed its checksum) or
                       // Unavailable (a copy could not be read now: an I/O error; it stays)
  TierKind tier = TierKind::kDram;  // where the payload came from, when OK
  BlockHandle handle;               // pinned payload, when OK
  bool verified = true;             // false: a DRAM copy read with verify_dram = false
};

// How GetChain reads. The defaults verify every copy, as everywhere else.
struct ReadOptions {
  // false: DRAM copies are handed out unverified (their stored checksum still comes with them).
  // Only for readers that verify every byte they copy and report mismatches (ReportCorruptCopy);
  // saves one pass over the bytes. Unverified bytes are never promoted.
  bool verify_dram = true;
  // true: read the DRAM copy when there is one, even if HBM holds the block too (shm readers can
  // only see the DRAM arena). Such a read does not count towards promotion.
  bool prefer_dram = false;
};

struct LookupResult {
  uint32_t matched_blocks = 0;
  std::array<uint32_t, kNumTiers> blocks_per_tier{};  // indexed by TierKind
  std::vector<TierKind> tiers;                        // best tier of each matched block
};

struct TierCounters {
  uint64_t hits = 0;
  uint64_t evictions = 0;
  uint64_t checksum_failures = 0;
  uint64_t bytes_written = 0;
  uint64_t bytes_read = 0;
};

struct StoreStats {
  struct PerTier {
    TierKind kind;
    std::string name;
    bool emulated = false;
    TierUsage usage;
    TierCounters counters;
  };
  std::vector<PerTier> tiers;  // configured tiers, HBM first
  uint64_t misses = 0;
  uint64_t blocks = 0;
  uint64_t demotions = 0;
  uint64_t promotions = 0;
  uint64_t demoted_bytes = 0;       // bytes copied down a tier by eviction
  uint64_t promoted_bytes = 0;      // bytes copied up a tier by promotion
  uint64_t write_behind_bytes = 0;  // bytes copied to SSD by write-behind
  uint64_t write_behind_pending = 0;
  uint64_t persisted_blocks = 0;
  uint64_t max_block_bytes = 0;
};

class TieredStore {
 public:
  // Takes the tiers and rebuilds the block index from the SSD tier. InvalidArgument for bad options
  // or no tier at all.
  static absl::StatusOr<std::unique_ptr<TieredStore>> Open(const TieredStoreOptions& options,
                                                           StoreTiers tiers);
  ~TieredStore();

  // Verifies the payload against info.checksum (DataLoss on mismatch), then stores it, replacing
  // any older block under the key. Returns the tier it landed in. InvalidArgument for an empty
  // payload or a size that disagrees with info; ResourceExhausted when it is larger than
  // max_block_bytes or than every tier, or when no tier can make room.
  absl::StatusOr<TierKind> Put(const BlockInfo& info, std::span<const std::byte> payload,
                               bool from_gpu);

  // Put for a caller that holds the payload but no checksum of its own (the RESP endpoint): the
  // store computes info.checksum from the payload (ignoring the given one) instead of verifying
  // one, which saves a pass over the bytes. Same errors as Put, less DataLoss.
  absl::StatusOr<TierKind> PutComputingChecksum(BlockInfo info, std::span<const std::byte> payload,
                                                bool from_gpu);

  // Reads a chain in order; one result per hash, verified. With stop_at_first_miss the result ends
  // with the first miss.
  std::vector<BlockRead> GetChain(common::NamespaceId ns, std::span<const common::ChainHash> chain,
                                  bool stop_at_first_miss);
  std::vector<BlockRead> GetChain(common::NamespaceId ns, std::span<const common::ChainHash> chain,
                                  bool stop_at_first_miss, const ReadOptions& options);

  // The DRAM tier when it is a host-addressable MemoryTier (slots can be reserved), else null.
  MemoryTier* dram_memory() const;

  // Allocates an empty DRAM slot for a block of `size` bytes, evicting (and demoting) like a put.
  // FailedPrecondition without a host-addressable DRAM tier; InvalidArgument for size 0;
  // ResourceExhausted when larger than LargestBlockBytes or the tier cannot make room.
  absl::StatusOr<ReservedSlot> ReserveDram(uint64_t size);

  // Verifies the slot's bytes against info.checksum (DataLoss on mismatch: nothing stored, the
  // slot is freed) and adopts the slot as the block's DRAM copy, replacing any older block under
  // the key, exactly as Put would place it. InvalidArgument when info.size != slot.size().
  absl::StatusOr<TierKind> CommitDram(const BlockInfo& info, ReservedSlot slot);
  // CommitDram for a slot the node itself filled (the RESP endpoint reads a SET's value from its
  // socket straight into the slot): the checksum is computed from the slot's bytes, not verified
  // against one (info.checksum is ignored). Same errors, less DataLoss.
  absl::StatusOr<TierKind> CommitDramComputingChecksum(BlockInfo info, ReservedSlot slot);

  // A reader found the copy in `tier` wrong against `checksum`. The store re-checks that copy (a
  // reader's word alone never removes good data); when it is bad, counts a checksum failure and
  // drops it. True when dropped.
  bool ReportCorruptCopy(const BlockKey& key, TierKind tier, uint64_t checksum);

  // Longest present prefix and where its blocks sit. No payload is read; recency is not changed.
  LookupResult Lookup(common::NamespaceId ns, std::span<const common::ChainHash> chain) const;

  // Payload size of each block, 0 when absent. Lets a reader bound how many bytes it pins at once.
  std::vector<uint64_t> PayloadSizes(common::NamespaceId ns,
                                     std::span<const common::ChainHash> chain) const;

  // Removes blocks from every tier; returns how many were present.
  uint32_t Delete(common::NamespaceId ns, std::span<const common::ChainHash> chain);

  // Copies up to one batch of not-yet-persisted blocks to SSD. Returns blocks written (0: nothing
  // to do). The binary calls it from a background loop; tests call it directly.
  size_t FlushWriteBehind();

  // Persists everything pending and makes it durable (SSD flush). Used on shutdown.
  absl::Status Drain();

  StoreStats Stats() const;

  // Largest payload a put can succeed with: max_block_bytes bounded by the largest tier.
  uint64_t LargestBlockBytes() const { return largest_block_bytes_; }

  // The tier of a kind, or null when not configured.
  Tier* tier(TierKind kind) const { return tiers_[static_cast<int>(kind)]; }

  // Reports every later change of a block's tier set to `sink` (null: off, no cost). Set it once,
  // before serving; `sink` must outlive the store or be replaced by null first.
  void SetEventSink(BlockEventSink* sink);

  // Under the store mutex: calls `cut` once, then `visit` for every block with its tier bitmask
  // (bit 1 << TierKind per tier holding a copy). No event can fall between the listing and the
  // events reported after it, so `cut` is where a snapshot consumer discards what it buffered.
  // Both callbacks must be cheap and must not call into the store; the store is blocked meanwhile.
  void VisitBlocks(absl::FunctionRef<void()> cut,
                   absl::FunctionRef<void(const BlockKey& key, uint8_t tiers)> visit) const;

 private:
  struct Entry {
    BlockInfo info;
    uint8_t present = 0;        // bit (1 << TierKind) per tier holding a copy
    uint64_t stamp = 0;         // recency
    uint32_t hits_in_tier = 0;  // hits since the block last moved up
    uint64_t generation = 0;    // bumps on every put of the key
    bool write_pending = false;
  };
  // Recency order of one tier: oldest stamp first; deeper chain position first on ties.
  using LruKey = std::tuple<uint64_t, uint32_t, BlockKey>;

  TieredStore(const TieredStoreOptions& options, StoreTiers tiers);
  // Put's checks of size and limits (not of the checksum).
  absl::Status CheckPut(const BlockInfo& info, std::span<const std::byte> payload) const;
  // Adopts a reserved slot whose bytes are known to match info.checksum as the DRAM copy.
  absl::StatusOr<TierKind> AdoptDram(const BlockInfo& info, ReservedSlot slot);
  // Places a block whose checksum is known to match its payload.
  absl::StatusOr<TierKind> PutChecked(const BlockInfo& info, std::span<const std::byte> payload,
                                      bool from_gpu);
  uint64_t ComputeLargestBlockBytes() const;

  static LruKey LruKeyOf(const Entry& e);
  static bool Has(const Entry& e, TierKind t) { return e.present & (1u << static_cast<int>(t)); }
  std::optional<TierKind> BestTier(const Entry& e) const;
  std::optional<TierKind> Below(TierKind t) const;
  std::optional<TierKind> Above(TierKind t) const;

  void TouchLocked(Entry& e, uint64_t stamp) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EmitLocked(BlockEventKind kind, TierKind t, const BlockKey& key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (sink_ != nullptr) sink_->OnBlockEvent(kind, t, key);
  }
  void AddCopyLocked(Entry& e, TierKind t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes the copy in t; erases the entry (and returns true) when it was the last copy.
  bool DropCopyLocked(const BlockKey& key, TierKind t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Evicts t's least recent block other than `keep` (demoting it when no lower copy exists).
  // False when there is nothing left to evict.
  bool EvictOneLocked(TierKind t, const BlockKey& keep) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Evicts until t has `charge` bytes free. False when it cannot.
  bool MakeRoomLocked(TierKind t, uint64_t charge, const BlockKey& keep)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stores a copy in t, evicting as needed. The copy runs under the lock (demotion path).
  absl::Status PutCopyLocked(TierKind t, const BlockInfo& info, std::span<const std::byte> payload)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stores into t with the copy outside the lock; evicts and retries on ResourceExhausted.
  absl::Status PutCopyUnlocked(TierKind t, const BlockInfo& info,
                               std::span<const std::byte> payload) ABSL_LOCKS_EXCLUDED(mu_);
  // Reads one block from its best tier onward, verifying; handles fallbacks and promotion.
  BlockRead ReadVerified(const BlockKey& key, std::optional<absl::StatusOr<BlockHandle>> prefetched,
                         TierKind prefetched_tier, const ReadOptions& options);
  // Records a new copy of `info` stored in t by a put: drops stale copies elsewhere, stamps it,
  // queues write-behind.
  void RecordPutLocked(const BlockInfo& info, TierKind t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybePromote(const BlockKey& key, TierKind from, const BlockHandle& handle);

  const TieredStoreOptions options_;
  StoreTiers owned_;
  std::array<Tier*, kNumTiers> tiers_{};
  uint64_t largest_block_bytes_ = 0;

  mutable absl::Mutex mu_;
  BlockEventSink* sink_ ABSL_GUARDED_BY(mu_) = nullptr;
  absl::flat_hash_map<BlockKey, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::array<absl::btree_set<LruKey>, kNumTiers> lru_ ABSL_GUARDED_BY(mu_);
  std::deque<BlockKey> write_queue_ ABSL_GUARDED_BY(mu_);
  uint64_t next_stamp_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t next_generation_ ABSL_GUARDED_BY(mu_) = 1;
  std::array<TierCounters, kNumTiers> counters_ ABSL_GUARDED_BY(mu_);
  uint64_t misses_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t demotions_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t promotions_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t demoted_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t promoted_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t write_behind_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t write_pending_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace strata::cachenode
