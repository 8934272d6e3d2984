// KvHandover: engines on the node hand their paged KV cache over to the node, which moves blocks
// between it and its tiers (hyper-converged mode). Reached through the same-node control channel
// (ShmServer; protocol strata/v1/local.proto, RegisterKv/Offload/Onload/UnregisterKv).
//
// Register: the engine says where each layer of its cache lives and how it is laid out
// (gpu::KvLayout). GPU memory comes as CUDA IPC handles, opened here once; host memory comes as a
// memfd, mapped here once. The layout is validated against the memory it names (a memfd's size
// bounds every layer; a CUDA allocation's size is the engine's word).
//
// Offload(chain hashes, engine block ids): reserves a DRAM arena slot per block, gathers the blocks
// into the slots in one launch of the gather kernel (the arena is pinned and mapped, so the kernel
// writes over PCIe straight into it), computes each block's xxh3 from the arena and adopts the slot
// as the block's DRAM copy: the store reports the new blocks to the router as for any put, and
// write-behind persists them. Onload: reads the blocks (DRAM copy preferred, every copy verified),
// stages any copy that is not in the arena into a temporary arena slot, and scatters them all into
// the named engine blocks in one launch. A reply is sent when the bytes have moved.
//
// Emulated path: host memory (KV_MEMORY_HOST_MEMFD) is moved by the CPU reference
// (gpu/kv_reference.h), and every reply says emulated = true. It is how the hand-over runs and is
// tested on machines without a GPU. CUDA IPC registrations need a usable GPU and a pinned arena
// (FailedPrecondition otherwise).
//
// The engine's side of the contract: the blocks an Offload names must be written (the engine's own
// streams synchronized) before the call, and the blocks an Onload names must not be read or written
// by the engine until the call returns.
//
// Thread-safe. Transfers of one registration run one at a time; different registrations (engines)
// move in parallel, each on its own CUDA stream, while the node keeps serving other requests.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "cachenode/gpu/kv_layout.h"
#include "cachenode/namespace_registry.h"
#include "cachenode/tiered_store.h"
#include "strata/v1/local.pb.h"

namespace strata::cachenode {

struct KvHandoverOptions {
  // Registered caches at once, over all clients. Each holds a mapping or IPC handles and a stream.
  uint32_t max_registrations = 64;
  // Blocks one Offload/Onload may name (the shared-memory plane's request limit applies too).
  uint32_t max_blocks_per_call = 1024;
  // Bytes moved per kernel launch: bounds the arena slots one call holds reserved at once. Larger
  // batches amortize the launch; 256 MiB is 128 blocks of a Llama-3-8B-shaped 16-token block.
  uint64_t batch_bytes = 256ull << 20;

  absl::Status Validate() const;
};

// How a registration's blocks move: by the CUDA kernels, or emulated (CPU, host memory).
enum class KvPath { kGpu = 0, kEmulated = 1 };
inline constexpr int kNumKvPaths = 2;

struct KvHandoverStats {
  struct Moved {
    uint64_t blocks = 0;
    uint64_t bytes = 0;
  };
  uint32_t registrations[kNumKvPaths] = {};  // live now, indexed by KvPath
  Moved offloaded[kNumKvPaths];
  Moved onloaded[kNumKvPaths];

  uint32_t total_registrations() const { return registrations[0] + registrations[1]; }
  Moved total_offloaded() const;
  Moved total_onloaded() const;
};

// The layout a spec describes over the given layer base addresses.
gpu::KvLayout LayoutFromSpec(const strata::v1::KvLayoutSpec& spec, std::vector<uint64_t> bases);

class KvHandover {
 public:
  // `store` (with a host-addressable DRAM tier) and `namespaces` (null: any id but 0) must outlive it.
  KvHandover(const KvHandoverOptions& options, TieredStore* store,
             const NamespaceRegistry* namespaces);
  ~KvHandover();

  // Registers a cache for `owner` (a client id). Takes ownership of `memfd` (-1 when none came),
  // which KV_MEMORY_HOST_MEMFD requires. InvalidArgument for a bad layout or regions outside the
  // memory; FailedPrecondition for CUDA IPC without a usable GPU or pinned arena;
  // ResourceExhausted over max_registrations.
  absl::StatusOr<strata::v1::LocalRegisterKvResponse> Register(
      uint64_t owner, const strata::v1::LocalRegisterKvRequest& request, int memfd);

  // Moves blocks from the engine into the tiers / from the tiers into the engine. Per-block
  // outcomes are in the response; the call fails as a whole for an unknown registration
  // (NotFound), bad hashes or block ids (InvalidArgument), an unregistered namespace
  // (FailedPrecondition) or a failed launch (the CUDA error).
  absl::StatusOr<strata::v1::LocalKvTransferResponse> Offload(
      uint64_t owner, const strata::v1::LocalKvTransferRequest& request);
  absl::StatusOr<strata::v1::LocalKvTransferResponse> Onload(
      uint64_t owner, const strata::v1::LocalKvTransferRequest& request);

  // Ends one registration (NotFound when it is not the owner's), or all of an owner's (its
  // connection closed). A transfer in flight finishes first.
  absl::Status Unregister(uint64_t owner, uint64_t registration_id);
  void DropOwner(uint64_t owner);

  KvHandoverStats Stats() const;

  struct Registration;  // public so that file-local helpers can name it; defined in the .cc

 private:
  struct Call;
  absl::StatusOr<std::shared_ptr<Registration>> Find(uint64_t owner, uint64_t id) const;
  absl::StatusOr<Call> Prepare(uint64_t owner, const strata::v1::LocalKvTransferRequest& request,
                               bool allow_repeated_ids) const;
  // Fills the response's totals and counts the moved blocks.
  void Finish(const Call& call, uint64_t moved_blocks, bool offload,
              strata::v1::LocalKvTransferResponse& response);
  // Moves one batch with the registration's mover.
  absl::Status Move(Registration& reg, const std::vector<uint32_t>& ids,
                    const std::vector<uint64_t>& host, const std::vector<uint64_t>& device,
                    bool gather);

  const KvHandoverOptions options_;
  TieredStore* const store_;
  const NamespaceRegistry* const namespaces_;
  MemoryTier* const dram_;

  mutable absl::Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, std::shared_ptr<Registration>> registrations_ ABSL_GUARDED_BY(mu_);
  KvHandoverStats counters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace strata::cachenode
