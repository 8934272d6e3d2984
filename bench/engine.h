// Engine: the simulated GPU serving engine of one node in `strata-bench replay` (bench/README.md
// states its assumptions).
//
// It models a vLLM-style engine: continuous batching with chunked prefill, a paged KV pool in HBM
// of HbmKvBytes() / (kv_bytes_per_token x block_tokens) blocks, and a prefix cache in that pool
// (blocks of finished requests stay cached until their room is needed, least recently used first,
// a chain's tail before its head). A request is admitted in arrival order when the pool can hold
// its whole prompt and output beyond the blocks it shares from the prefix cache; otherwise it and
// every request behind it wait (no preemption: admission reserves the output too).
//
// On admission the engine matches the prompt's chain against its prefix cache (HBM hits), then
// asks the node's cache tiers (TierAccess) how far the chain continues in DRAM or SSD and whether a
// peer holds more (from the route), and loads the prefix whose load time beats recomputing it
// (LoadPolicy). Loads run over the node's PCIe link one after another, and the request's prefill
// starts when its load is done; the GPU meanwhile serves other requests.
//
// One step: every decoding request generates a token, and prefilling requests take chunks in
// admission order until max_batched_tokens are used (decode tokens count). Step time = prefill
// part (t0 once + per-chunk terms of the calibrated fit, each chunk attending to its request's
// tokens already computed) + decode part (EngineParams::DecodeMs). A request's first token comes
// at the end of the step that finishes its prefill; its prompt blocks then enter the prefix cache
// (pinned while it runs) and are written through to the node's tiers.
//
// Deterministic: no clocks, no randomness; times are simulated milliseconds given by the caller.
// Not thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "bench/engine_params.h"
#include "common/block_key.h"

namespace strata::bench {

enum class HitTier : uint8_t { kHbm = 0, kDram = 1, kSsd = 2, kPeer = 3 };
inline constexpr int kNumHitTiers = 4;

// When a block found in DRAM, SSD or on a peer is loaded instead of recomputed.
enum class LoadPolicy {
  kWhenFaster,  // load the prefix that minimises load + prefill time (slow tiers are skipped)
  kAlways,      // load every block found (what a cache that always loads does)
};

// A peer's offer from the route: `blocks` more blocks from chain position `from_block`.
struct PeerOffer {
  int node = -1;
  uint32_t from_block = 0;
  uint32_t blocks = 0;
  bool from_ssd = false;  // the slowest tier those blocks sit in on the peer (as routed)
};

// The node's cache tiers as the engine sees them (the replay's backend implements it).
class TierAccess {
 public:
  virtual ~TierAccess() = default;
  // How many blocks of `chain` are present from its first one on, and for each whether it is on
  // SSD (true) or DRAM (false): the result's size is the match length.
  virtual std::vector<bool> Match(int node, std::span<const common::ChainHash> chain) = 0;
  // Reads blocks the engine decided to load (hits, recency and promotion happen here).
  virtual void Read(int node, std::span<const common::ChainHash> chain) = 0;
  // Reads blocks from a peer node (the engine checks with Match(peer, ...) what it holds first).
  virtual void ReadPeer(int peer, std::span<const common::ChainHash> chain) = 0;
  // Stores blocks the node does not hold yet (write-through after prefill); `first_position` is
  // the chain position of chain[0].
  virtual void Write(int node, std::span<const common::ChainHash> chain,
                     uint32_t first_position) = 0;
  // The engine's HBM prefix cache gained or lost blocks (the router learns of them).
  virtual void HbmStored(int node, std::span<const common::ChainHash> chain) = 0;
  virtual void HbmRemoved(int node, std::span<const common::ChainHash> chain) = 0;
};

struct EngineRequest {
  uint32_t id = 0;  // the caller's index
  double arrival_ms = 0;
  uint32_t input_tokens = 0;
  uint32_t output_tokens = 0;
  std::vector<common::ChainHash> chain;  // prompt blocks
  PeerOffer peer;                        // from the route; blocks == 0: none
  uint32_t expected_prefill_tokens = 0;  // set by Enqueue: prompt tokens the node lacks
};

// What happened to a request, reported when it finishes.
struct RequestResult {
  uint32_t id = 0;
  int node = 0;
  double arrival_ms = 0;
  double admitted_ms = 0;
  double first_token_ms = 0;
  double finished_ms = 0;
  uint32_t input_tokens = 0;
  uint32_t output_tokens = 0;
  uint32_t prompt_blocks = 0;
  std::array<uint32_t, kNumHitTiers> hit_blocks{};  // blocks served per tier (not recomputed)
  uint32_t cached_tokens = 0;                       // prompt tokens not recomputed
  uint32_t prefill_tokens = 0;                      // prompt tokens recomputed
  double load_ms = 0;                               // time its loads took on the link
  uint64_t loaded_bytes = 0;                        // bytes moved into HBM for it, per its hits
};

// The load figures a node reports to the router.
struct EngineLoad {
  uint32_t queued_requests = 0;   // waiting for admission or for their load
  uint32_t running_requests = 0;  // prefilling or decoding
  uint64_t prefill_tokens_in_flight = 0;
  uint64_t free_hbm_blocks = 0;
};

struct EngineOptions {
  uint32_t block_tokens = 512;
  LoadPolicy load_policy = LoadPolicy::kWhenFaster;
  double ssd_gbps = 0;  // > 0
  bool use_lower_tiers = true;  // false: HBM only (no DRAM/SSD/peer lookups)
};

class Engine {
 public:
  // `tiers` must outlive the engine.
  Engine(int node, const EngineParams& params, const EngineOptions& options, TierAccess* tiers);
  ~Engine();

  // KV blocks the pool holds.
  uint64_t pool_blocks() const { return pool_blocks_; }
  // Blocks a request needs in all (prompt and output); more than pool_blocks() can never run.
  uint64_t BlocksNeeded(uint32_t input_tokens, uint32_t output_tokens) const;

  // Queues a request (at `now_ms`) and admits what fits.
  void Enqueue(EngineRequest request, double now_ms);

  // When the running step ends, or nullopt when idle and nothing becomes ready (a load finishing
  // is the end of a zero-work "step" that starts the next real one).
  std::optional<double> NextEventMs() const;

  // Advances to NextEventMs(): finishes the running step (or load wait), starts the next step, and
  // returns the requests that finished at that time.
  std::vector<RequestResult> Advance();

  EngineLoad Load() const;
  uint64_t cached_blocks() const { return cache_.size(); }
  uint64_t prefill_tokens() const { return prefill_tokens_total_; }
  uint64_t steps() const { return steps_; }
  double busy_ms() const { return busy_ms_; }

 private:
  struct Running;
  struct CacheSlot {
    uint32_t refs = 0;
    uint64_t stamp = 0;
    uint32_t position = 0;
  };
  using LruKey = std::tuple<uint64_t, int64_t, common::ChainHash>;  // stamp, -position, key

  void AdmitWaiting(double now_ms);
  bool TryAdmit(EngineRequest& request, double now_ms);
  // Chooses how many of `tiers` (local) and then `peer_blocks` to load; returns the counts.
  std::pair<uint32_t, uint32_t> ChooseLoads(const EngineRequest& r, uint32_t hbm,
                                            const std::vector<bool>& local,
                                            uint32_t peer_blocks, bool peer_ssd) const;
  double LoadMs(uint32_t dram, uint32_t ssd, uint32_t peer, bool peer_ssd) const;
  void StartStep(double now_ms);
  void Pin(const common::ChainHash& key);
  void Unpin(const common::ChainHash& key, uint64_t stamp);
  void Insert(const common::ChainHash& key, uint32_t position, std::vector<common::ChainHash>* added);
  bool EvictOne();
  uint64_t FreeBlocks() const { return pool_blocks_ - cache_.size() - reserved_; }

  const int node_;
  const EngineParams& params_;
  const EngineOptions options_;
  TierAccess* const tiers_;
  uint64_t pool_blocks_ = 0;
  uint64_t block_bytes_ = 0;

  std::deque<EngineRequest> waiting_;
  std::vector<std::unique_ptr<Running>> running_;  // admission order
  absl::flat_hash_map<common::ChainHash, CacheSlot> cache_;
  absl::btree_set<LruKey> evictable_;
  uint64_t reserved_ = 0;  // blocks reserved by running requests beyond the cache
  uint64_t next_stamp_ = 1;
  double link_free_ms_ = 0;
  double now_ms_ = 0;
  std::optional<double> step_end_ms_;
  std::vector<Running*> step_members_;  // requests whose work the running step carries
  std::vector<uint32_t> step_chunks_;   // prefill tokens per member (0: decode)
  uint64_t prefill_tokens_total_ = 0;
  uint64_t steps_ = 0;
  double busy_ms_ = 0;
};

}  // namespace strata::bench
