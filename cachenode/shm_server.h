// ShmServer: the same-node shared-memory data plane of a cache node. Engines on the node connect to
// a Unix domain socket (SOCK_SEQPACKET, protocol strata/v1/local.proto), receive the DRAM tier's
// memfd once, map it, and from then on exchange only offsets: payload bytes never cross the socket.
//
// Reads. Get pins every block it returns under a lease (the store's BlockHandles, so the slot is
// never reused while the lease lives, even if the block is evicted or replaced meanwhile) until
// Release, lease expiry (ExpireLeases) or the client's disconnect. A block whose chosen copy is in
// DRAM is handed out as its offset in the arena; a block only in SSD or HBM is copied by the node
// into a temporary DRAM slot held by the lease (placement is left to the store's promotion policy,
// so a one-off shm read does not displace hot DRAM blocks), so the client always reads the arena.
//
// Integrity. Clients map the arena writable (they fill put slots), so a buggy client can scribble
// on any block. The client library therefore verifies every block it copies out (fused copy +
// xxh3, after the copy, which also catches a reader copying after its lease expired) and reports
// mismatches in Release; the node then re-checks its copy and drops it when bad. With that, the
// node skips its own pass over DRAM copies for shm reads by default (verify_dram_reads): the
// client's check is needed anyway (only it can catch bytes that change after the node looked), so
// a node check is a second pass. Measured with bench/shm_bench.h MeasureShm (2 MiB x 32 blocks, one
// run on a loaded 2-core box): get 3.00 GB/s client-verified vs 2.04 GB/s with the node verifying
// too, memcpy 5.04 GB/s. Copies from SSD/HBM are always verified by the store.
//
// Writes. Reserve allocates arena slots (evicting like a put; a reserved slot is never reused
// until committed or freed), the client writes them through its mapping, Commit verifies each
// block's xxh3 against the slot and adopts the slot as the block's DRAM copy without copying.
// Uncommitted reservations are freed on Abort, at expiry and on disconnect.
//
// KV hand-over. RegisterKv, Offload, Onload and UnregisterKv go to a KvHandover (kv_handover.h):
// the connection that registered a cache owns it, and its disconnect unregisters it.
//
// Threads: one accept thread and one thread per connection (each blocks in recv on its socket;
// a periodic loop does not fit). Every method is thread-safe. Payload-sized work (checksums of
// commits, copies of non-DRAM blocks) runs outside the server's mutex.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cachenode/kv_handover.h"
#include "cachenode/namespace_registry.h"
#include "cachenode/tiered_store.h"
#include "common/clock.h"
#include "strata/v1/local.pb.h"

namespace strata::cachenode {

// Largest control message either side sends: well within the default Unix socket buffer.
inline constexpr size_t kMaxLocalMessageBytes = 128 << 10;

struct ShmServerOptions {
  // Path of the Unix socket (at most 107 bytes). A stale socket file there is replaced; one a live
  // server still answers on is not (FailedPrecondition).
  std::string socket_path;
  // How long a lease or reservation lives without Release/Commit. Longer tolerates slower clients;
  // shorter returns the slots of a hung client sooner (a crashed one loses them at once).
  absl::Duration lease_ttl = absl::Seconds(30);
  // Connected clients at once; one thread each.
  uint32_t max_clients = 64;
  // Leases + reservations one client may hold at once.
  uint32_t max_leases_per_client = 256;
  // Pinned + reserved bytes one client may hold at once: bounds how much of the arena one engine
  // can keep from eviction.
  uint64_t max_client_bytes = 4ull << 30;
  // Blocks one request may name; 1024 keeps a response within kMaxLocalMessageBytes.
  uint32_t max_blocks_per_request = 1024;
  // true: the node also verifies DRAM copies before handing them out (one more pass over the
  // bytes). false: the client library verifies what it copies (it always does) and reports.
  bool verify_dram_reads = false;
  // Engines' KV caches handed over through this socket (RegisterKv/Offload/Onload).
  KvHandoverOptions kv_handover;

  // InvalidArgument naming the bad field.
  absl::Status Validate() const;
};

// Counters of the data plane (a plain struct: it leaves through Stats and the local Stats call).
struct ShmStats {
  uint32_t clients = 0;
  uint64_t live_leases = 0;
  uint64_t pinned_bytes = 0;  // bytes held by live leases (DRAM pins and temporary slots)
  uint64_t live_reservations = 0;
  uint64_t reserved_bytes = 0;
  uint64_t expired_leases = 0;
  uint64_t released_leases = 0;
  uint64_t disconnect_released = 0;  // leases + reservations freed when their client went away
  uint64_t expired_reservations = 0;
  uint64_t reservations = 0;  // reservations ever made
  uint64_t committed_blocks = 0;
  uint64_t checksum_reports = 0;  // client-reported bad copies the node confirmed and dropped
  KvHandoverStats kv;             // the KV hand-over's counters
};

class ShmServer {
 public:
  // Binds the socket and starts serving. `store` (whose DRAM tier must be a memfd-backed
  // MemoryTier: FailedPrecondition otherwise), `namespaces` (null: any namespace id is accepted)
  // and `clock` must outlive the server. Unavailable when the socket cannot be bound.
  static absl::StatusOr<std::unique_ptr<ShmServer>> Start(const ShmServerOptions& options,
                                                          TieredStore* store,
                                                          const NamespaceRegistry* namespaces,
                                                          common::Clock* clock);
  ~ShmServer();  // Stop()

  // Closes every connection, frees every lease and reservation, unlinks the socket. Idempotent.
  void Stop();

  // Frees leases and reservations whose expiry has passed on the clock; returns how many. The
  // binary calls it from a loop; tests call it after stepping a ManualClock.
  size_t ExpireLeases();

  ShmStats Stats() const;
  const std::string& socket_path() const { return options_.socket_path; }

 private:
  struct Lease;
  struct Reservation;
  struct Client;

  ShmServer(const ShmServerOptions& options, TieredStore* store,
            const NamespaceRegistry* namespaces, common::Clock* clock);
  void AcceptLoop();
  void Serve(uint64_t client_id, int fd);
  // Handles one request; sets *send_fd when the response carries the memfd. `received_fd` is a
  // descriptor that came with the request (-1: none): Handle owns it and closes it.
  void Handle(uint64_t client_id, const strata::v1::LocalRequest& request, int received_fd,
              strata::v1::LocalResponse& response, int* send_fd);
  absl::Status DoGet(uint64_t client_id, const strata::v1::LocalRequest& request,
                     strata::v1::LocalResponse& response);
  absl::Status DoRelease(uint64_t client_id, const strata::v1::LocalRequest& request,
                         strata::v1::LocalResponse& response);
  absl::Status DoReserve(uint64_t client_id, const strata::v1::LocalRequest& request,
                         strata::v1::LocalResponse& response);
  absl::Status DoCommit(uint64_t client_id, const strata::v1::LocalRequest& request,
                        strata::v1::LocalResponse& response);
  absl::Status DoStats(const strata::v1::LocalRequest& request,
                       strata::v1::LocalResponse& response);
  absl::StatusOr<std::vector<common::ChainHash>> ParseChain(
      common::NamespaceId ns,
      const google::protobuf::RepeatedPtrField<std::string>& hashes) const;
  // Takes a client's charge for a new lease/reservation of `bytes`. ResourceExhausted over limits.
  absl::Status ChargeLocked(Client& client, uint64_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UnchargeLocked(uint64_t client_id, uint64_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes everything a client holds (disconnect or Stop); the caller destroys it unlocked.
  void TakeAllLocked(uint64_t client_id, std::vector<std::unique_ptr<Lease>>& leases,
                     std::vector<std::unique_ptr<Reservation>>& reservations)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  ShmStats StatsLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const ShmServerOptions options_;
  TieredStore* const store_;
  MemoryTier* const dram_;
  const NamespaceRegistry* const namespaces_;
  common::Clock* const clock_;
  const uint64_t segment_id_;
  const uint64_t generation_;
  int listen_fd_ = -1;
  int wake_read_ = -1;  // readable once Stop begins: wakes every poll()
  int wake_write_ = -1;
  std::thread accept_thread_;
  std::unique_ptr<KvHandover> handover_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Client>> clients_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, std::unique_ptr<Lease>> leases_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, std::unique_ptr<Reservation>> reservations_ ABSL_GUARDED_BY(mu_);
  // Connection threads by client id; finished ones are joined when the next client connects.
  absl::flat_hash_map<uint64_t, std::thread> threads_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> finished_threads_ ABSL_GUARDED_BY(mu_);
  ShmStats counters_ ABSL_GUARDED_BY(mu_);  // the cumulative fields only
};

}  // namespace strata::cachenode
