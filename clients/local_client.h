// LocalClient: an engine's handle on the cache node running on the same machine, through the
// node's shared-memory data plane (strata-cachenode --local-socket PATH; protocol
// strata/v1/local.proto). Payload bytes never cross the socket: Connect maps the node's DRAM arena
// (a memfd) read-write once, reads copy straight out of it and puts write straight into it; the
// socket carries only hashes, offsets and checksums.
//
// Integrity: every block that is copied out (GetInto, LocalRead::CopyTo) is verified against its
// xxh3 checksum while it is copied (64 KiB chunks, hashed while still in cache), and after the copy,
// so bytes that changed under the reader (another client scribbling on the shared arena, or a read
// after the lease expired) are a DataLoss miss, never wrong data. Mismatches are reported to the
// node when the lease is released; the node re-checks and drops a bad copy.
//
// The node must outlive nothing: if it goes away, calls fail Unavailable and the mapping stays
// valid (the memfd lives while mapped). A client that restarts finds the blocks still there; the
// arena belongs to the node, not to any client.
//
// Thread-safety: all methods are thread-safe; requests on one client are serialized (one socket,
// one request at a time), so threads that want parallel requests use one client each. A LocalRead
// may be used from any thread, but its client must outlive it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "cachenode/gpu/kv_layout.h"
#include "common/block_key.h"
#include "strata/v1/local.pb.h"

namespace strata::clients {

class LocalClient;

// One block of a LocalRead.
struct LocalBlock {
  absl::Status status;  // OK, NotFound (absent) or DataLoss (failed its checksum)
  strata::v1::Tier tier = strata::v1::TIER_UNSPECIFIED;  // where the node found it
  uint64_t checksum = 0;
  // The payload inside the node's arena, pinned until the LocalRead goes. Verified when the read
  // was made with verify = true; a writable mapping elsewhere can still change it later, so copy it
  // with CopyTo where exact bytes matter.
  std::span<const std::byte> data;
};

// Blocks pinned under one lease. Move-only; releases the lease on destruction (or Release()).
class LocalRead {
 public:
  LocalRead() = default;
  LocalRead(LocalRead&& other) noexcept;
  LocalRead& operator=(LocalRead&& other) noexcept;
  LocalRead(const LocalRead&) = delete;
  LocalRead& operator=(const LocalRead&) = delete;
  ~LocalRead();

  size_t size() const { return blocks_.size(); }
  const LocalBlock& block(size_t i) const { return blocks_[i]; }
  const std::vector<LocalBlock>& blocks() const { return blocks_; }
  // Leading blocks that are OK.
  size_t found_prefix() const;

  // Copies block i into `dest` (at least its size) while verifying it. Returns the bytes copied;
  // DataLoss when the copied bytes do not match the checksum (reported at release; `dest` then
  // holds garbage), the block's own status when it is a miss, InvalidArgument when `dest` is short.
  absl::StatusOr<uint64_t> CopyTo(size_t i, std::span<std::byte> dest);

  // Releases the lease now (reporting blocks that failed verification). Idempotent.
  void Release();

 private:
  friend class LocalClient;
  LocalClient* client_ = nullptr;
  uint64_t lease_id_ = 0;
  std::vector<LocalBlock> blocks_;
  std::vector<uint32_t> corrupt_;  // indices that failed verification
};

// One block of a put.
struct LocalPutBlock {
  common::ChainHash hash;
  std::span<const std::byte> payload;
  uint32_t chain_position = 0;
};

struct LocalPutResult {
  absl::Status status;  // OK, DataLoss (bytes changed in the arena before commit), ...
  strata::v1::Tier tier = strata::v1::TIER_UNSPECIFIED;
};

// One block of GetInto.
struct LocalCopyResult {
  absl::Status status;  // OK, NotFound, DataLoss, or InvalidArgument (destination too small)
  strata::v1::Tier tier = strata::v1::TIER_UNSPECIFIED;
  uint64_t size = 0;  // bytes copied into the destination
};

class LocalClient {
 public:
  // Connects to the node's socket, says hello and maps the arena. Unavailable when no node answers
  // there (or it refuses: too many clients); Internal when the mapping fails.
  static absl::StatusOr<std::unique_ptr<LocalClient>> Connect(const std::string& socket_path);
  ~LocalClient();  // unmaps; leases still held are released by the node when the socket closes

  // Pins a chain's blocks under one lease. Blocks are verified in place when `verify`. Fails as a
  // whole (Unavailable, ResourceExhausted over the node's per-client limits, InvalidArgument) only
  // for the request; misses are per block.
  absl::StatusOr<LocalRead> Get(common::NamespaceId ns, std::span<const common::ChainHash> chain,
                                bool stop_at_first_miss = true, bool verify = true);

  // Get + CopyTo of each block into dest[i] + release: the engine's read path. One result per
  // block of the chain (up to the first miss when stop_at_first_miss; later entries stay
  // NotFound). Chains longer than the node's request limit are read in several leases.
  absl::StatusOr<std::vector<LocalCopyResult>> GetInto(common::NamespaceId ns,
                                                       std::span<const common::ChainHash> chain,
                                                       std::span<const std::span<std::byte>> dest,
                                                       bool stop_at_first_miss = true);

  // Reserves arena slots, copies each payload into its slot (checksums computed on the way) and
  // commits: one memcpy per block. One result per block. Fails as a whole when the reservation
  // cannot be had (ResourceExhausted: DRAM pinned/reserved, or over the client's limits).
  absl::StatusOr<std::vector<LocalPutResult>> Put(common::NamespaceId ns,
                                                  std::span<const LocalPutBlock> blocks);

  // Longest present prefix of a chain and its tiers (no payload is touched).
  absl::StatusOr<strata::v1::LookupResponse> Lookup(common::NamespaceId ns,
                                                    std::span<const common::ChainHash> chain);

  // The data plane's counters. wait_until_clients_at_most > 0 first waits (bounded by `wait`)
  // until at most that many clients are connected, counting this one.
  absl::StatusOr<strata::v1::LocalStatsResponse> Stats(uint32_t wait_until_clients_at_most = 0,
                                                       uint64_t wait_ms = 0);

  // ---- KV hand-over: the engine's side of cachenode/kv_handover.h. ----
  // Registers the engine's paged KV cache (build the request with HostKvRegistration or
  // CudaKvRegistration); `memfd` is the host-memory cache's memfd (sent over the socket, kept
  // open here), -1 for CUDA IPC. The response says whether the node moves it emulated (CPU, host
  // memory) or with its kernels. InvalidArgument for a layout the node rejects.
  absl::StatusOr<strata::v1::LocalRegisterKvResponse> RegisterKv(
      const strata::v1::LocalRegisterKvRequest& request, int memfd = -1);
  // Gathers engine blocks block_ids[i] into the node's tiers as the blocks of chain[i] (chain
  // position first_position + i). Returns when the bytes have moved, with one result per block.
  // The engine must have finished writing those blocks (its streams synchronized) before calling,
  // and must leave the blocks an Onload names alone until it returns.
  absl::StatusOr<strata::v1::LocalKvTransferResponse> Offload(
      uint64_t registration_id, common::NamespaceId ns, std::span<const common::ChainHash> chain,
      std::span<const uint32_t> block_ids, uint32_t first_position = 0);
  // Scatters the stored blocks of chain[i] into engine blocks block_ids[i] (distinct); misses are
  // per block (NOT_FOUND, DATA_LOSS) and leave their engine block untouched.
  absl::StatusOr<strata::v1::LocalKvTransferResponse> Onload(
      uint64_t registration_id, common::NamespaceId ns, std::span<const common::ChainHash> chain,
      std::span<const uint32_t> block_ids);
  // Ends a registration (the node also ends it when this client disconnects).
  absl::Status UnregisterKv(uint64_t registration_id);

  const strata::v1::LocalHelloResponse& hello() const { return hello_; }

 private:
  friend class LocalRead;
  LocalClient() = default;
  // One request/response round trip. The response's own code becomes the status.
  // `fd` >= 0 travels with the request (SCM_RIGHTS).
  absl::StatusOr<strata::v1::LocalResponse> Call(const strata::v1::LocalRequest& request,
                                                 int fd = -1);
  void ReleaseLease(uint64_t lease_id, const std::vector<uint32_t>& corrupt);
  // The arena bytes [offset, offset + length), or an empty span when out of range.
  std::span<const std::byte> ArenaSpan(uint64_t offset, uint64_t length) const;

  absl::Mutex mu_;  // one request on the socket at a time
  int fd_ = -1;
  std::byte* arena_ = nullptr;
  uint64_t arena_bytes_ = 0;
  strata::v1::LocalHelloResponse hello_;
};

// Registration requests for RegisterKv. For host memory, layout.layer_bases are each layer's offset
// within the memfd; for GPU memory, each layer's offset within the allocation whose CUDA IPC handle
// is ipc_handles[layer].
strata::v1::LocalRegisterKvRequest HostKvRegistration(const std::string& engine_id,
                                                      const gpu::KvLayout& layout);
strata::v1::LocalRegisterKvRequest CudaKvRegistration(const std::string& engine_id,
                                                      const gpu::KvLayout& layout,
                                                      const std::vector<std::string>& ipc_handles);

// Copies src into dest (same size) in 64 KiB chunks, hashing each chunk right after copying it
// (still in cache), then compares with `checksum`. DataLoss on mismatch. Used by every copy out of
// the arena; exposed for tests and benchmarks.
absl::Status CopyAndVerify(std::span<const std::byte> src, std::span<std::byte> dest,
                           uint64_t checksum);

}  // namespace strata::clients
