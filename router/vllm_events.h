// vLLM KV events: decoding of vLLM's `KVEventBatch` msgpack payload and the mapping of an engine's
// block hashes into Strata's key space (DESIGN sections 3 and 5). Pure: no I/O, no clock.
//
// Wire format (vllm/distributed/kv_events.py, encoded by msgspec): the batch is an array
// `[ts, events, data_parallel_rank?]` (a map with those field names is accepted too). Each event is
// a tagged struct, either an array whose first element is the tag ("BlockStored", "BlockRemoved",
// "AllBlocksCleared") followed by the fields in declaration order (vLLM up to 0.23), or a map with
// the tag under "type" and the fields by name (later vLLM, PR 42892). Fields vLLM added later
// (lora_name, extra_keys, group_idx, kv_cache_spec_*) are optional; unknown trailing fields and
// unknown map keys are ignored. Block hashes are ints (uint64 or negative int64) or bytes, by
// version; both become an EngineBlockHash.
//
// Engine hashes are private to one engine (vLLM seeds them per process), so the router rehashes
// each stored block's token ids with common::HashBlock; VllmKeyMapper keeps the engine->Strata
// mapping only to resolve later parents and removals. Decoding is thread-safe; a VllmKeyMapper is
// thread-compatible (one per source, applied in order by one owner).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/block_key.h"
#include "router/types.h"

namespace strata::router {

// An engine block hash, normalised: an int hash is its 64-bit two's-complement value as 8 bytes
// big-endian (so a negative int64 and the uint64 with the same bits are one hash); a bytes hash is
// kept as is.
using EngineBlockHash = std::string;

struct VllmBlockStored {
  std::vector<EngineBlockHash> block_hashes;
  std::optional<EngineBlockHash> parent;  // parent_block_hash; nullopt for a chain's first block
  std::vector<uint32_t> token_ids;        // block_hashes.size() * block_size ids when well formed
  uint32_t block_size = 0;
  std::optional<int64_t> lora_id;
  std::optional<std::string> medium;  // "GPU", "CPU", ...; absent in old versions
  std::optional<std::string> lora_name;
};

struct VllmBlockRemoved {
  std::vector<EngineBlockHash> block_hashes;
  std::optional<std::string> medium;
};

struct VllmAllBlocksCleared {};

using VllmEvent = std::variant<VllmBlockStored, VllmBlockRemoved, VllmAllBlocksCleared>;

struct VllmBatch {
  double ts = 0;
  std::vector<VllmEvent> events;
  std::optional<int64_t> data_parallel_rank;
};

// Bounds on one decoded batch: a publisher (or anyone who can reach the engine's ZMQ port) cannot
// make the router hold or hash more than this per message. The defaults sit far above what vLLM
// sends: one BlockStored per scheduler step and KV-cache group, with a prefill of 128k tokens at
// block size 16 being 8k hashes and 128k token ids.
struct VllmDecodeLimits {
  // Largest payload accepted (msgpack bytes); also bounds every container in it.
  size_t max_payload_bytes = 64 << 20;
  // Events in one batch.
  size_t max_events = 1 << 16;
  // block_hashes of one BlockStored or BlockRemoved.
  size_t max_hashes_per_event = 1 << 16;
  // token_ids of one BlockStored (each is hashed once by VllmKeyMapper).
  size_t max_tokens_per_event = 1 << 22;
};

// Decodes one msgpack `KVEventBatch` payload. InvalidArgument, naming the offending part, for
// anything that is not one well-formed batch (bad msgpack, trailing bytes, unknown tag, a field of
// the wrong type, a token id outside uint32); ResourceExhausted, naming the part, when the payload,
// the batch or an event is larger than `limits` allow. Never throws.
absl::StatusOr<VllmBatch> DecodeVllmBatch(std::string_view payload,
                                          const VllmDecodeLimits& limits = {});

// Decodes the 8-byte big-endian sequence frame. InvalidArgument for any other length.
absl::StatusOr<uint64_t> DecodeVllmSequence(std::string_view frame);

// The tier a vLLM medium counts as on the engine's node: absent, "GPU" (vLLM's own pool) -> HBM;
// "CPU" (the offloading connector) -> DRAM; "DISK"/"SSD" -> SSD. Case-insensitive. nullopt for any
// other medium: such blocks are tracked for parent resolution but not indexed, because the router
// cannot tell where (or whether on this node) they live.
std::optional<Tier> VllmMediumTier(const std::optional<std::string>& medium);

// The `extra` argument of common::HashBlock for a stored block: "lora:<decimal lora_id>" when
// lora_id is set (the same form Strata's clients use), else "lora-name:<lora_name>" when only the
// newer lora_name is set, else empty. vLLM's extra_keys (multimodal hashes, cache_salt) are not
// mixed in: Strata cannot reproduce them from the event, see VllmKeyMapper.
std::string VllmBlockExtra(const VllmBlockStored& stored);

// One change to the router's index for this source, in the router's terms.
struct VllmIndexEvent {
  enum Kind { kStored, kRemoved, kCleared };
  Kind kind = kStored;
  Tier tier = Tier::kHbm;
  // kStored: keys that became present in `tier`; kRemoved: keys no longer present there;
  // kCleared: every key this source still had in `tier` (all now gone).
  std::vector<IndexKey> keys;
};

struct VllmMapperStats {
  uint64_t batches = 0;
  uint64_t blocks_stored = 0;             // stored blocks mapped to a Strata key
  uint64_t blocks_removed = 0;            // removals of a live engine block
  uint64_t unresolved_parent_blocks = 0;  // stored blocks skipped: parent unknown or removed
  uint64_t unknown_removals = 0;          // removals of an engine block not live in that medium
  uint64_t malformed_blocks = 0;          // stored blocks skipped: token ids do not fill the blocks
  uint64_t block_size_mismatches = 0;     // stored blocks skipped: block_size != expected
  uint64_t clears = 0;                    // AllBlocksCleared events (and Reset calls)
  uint64_t live_engine_blocks = 0;        // current size of the engine-hash map
};

// Maps one engine's events into index events, keeping one entry per live engine block (and one
// per live Strata key): memory is bounded by the engine's cache, provided its removals arrive.
//
// A stored block's Strata hash is common::HashBlock(parent's Strata hash, namespace_id, salt "",
// its block_size token ids, VllmBlockExtra); the parent is the previous block of the same event or,
// for the first, the mapped parent_block_hash (none: chain start). An unknown parent means the
// chain cannot be placed: the event's remaining blocks are skipped and counted. Presence is
// reference-counted per tier on both sides, so an engine block stored twice (hybrid models store
// one per KV-cache group) or two engine blocks with one Strata key (ignored extra_keys) produce one
// kStored and, after the last removal, one kRemoved. Thread-compatible.
class VllmKeyMapper {
 public:
  // `expected_block_size` (0: any) guards against an engine whose page size differs from the
  // namespace's, whose keys would never match a Strata request.
  explicit VllmKeyMapper(common::NamespaceId namespace_id, uint32_t expected_block_size = 0);

  // Applies one batch in order; returns the index changes (possibly none), in order.
  std::vector<VllmIndexEvent> Apply(const VllmBatch& batch);

  // Forgets every engine block (e.g. the engine restarted) and returns kCleared events for the
  // keys that were live, one per tier that had any.
  std::vector<VllmIndexEvent> Reset();

  const VllmMapperStats& stats() const { return stats_; }

 private:
  // Slots 0..2 are Tier values; the last counts media that are tracked but not indexed.
  static constexpr int kMediumSlots = kNumTiers + 1;
  using SlotCounts = std::array<uint32_t, kMediumSlots>;
  struct EngineEntry {
    common::ChainHash strata_hash;
    SlotCounts counts{};
  };

  void ApplyStored(const VllmBlockStored& stored, std::vector<VllmIndexEvent>* out);
  void ApplyRemoved(const VllmBlockRemoved& removed, std::vector<VllmIndexEvent>* out);

  const common::NamespaceId namespace_id_;
  const uint32_t expected_block_size_;
  absl::flat_hash_map<EngineBlockHash, EngineEntry> engine_;
  // Per Strata key, how many live engine blocks hold it in each indexed tier.
  absl::flat_hash_map<IndexKey, std::array<uint32_t, kNumTiers>> strata_;
  VllmMapperStats stats_;
};

}  // namespace strata::router
