// CacheNodeClient: the C++ client of one Strata cache node (strata-cachenode) over gRPC.
//
// It wraps the CacheNode service of proto/strata/v1/cachenode.proto with absl::Status results, a
// deadline on every call and retries on UNAVAILABLE only (every CacheNode RPC is idempotent: a put
// of the same key stores the same bytes again). Payloads are opaque bytes: Put computes each
// block's xxh3 checksum and streams it in chunks; Get and GetInto verify that every block's chunks
// add up to its size and match its checksum, so a caller never sees bytes the node did not vouch
// for.
//
// Payloads are not serialized (common/grpc_byte_buffer.h); the wire format is cachenode.proto's, so
// any node implementation works. Put sends chunks as slices that reference the caller's blocks (no
// user-space copy). GetInto hands the caller views of the received slices (no copy), hashing each
// 64 KiB piece as it goes so the bytes are verified while in cache; Get copies them once, into its
// result strings.
//
// Thread-safety: a CacheNodeClient is thread-safe; concurrent calls share one gRPC channel. Results
// are owned by the caller.
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/impl/rpc_method.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clients/rpc_retry.h"
#include "common/block_key.h"
#include "common/grpc_security.h"
#include "strata/v1/cachenode.grpc.pb.h"

namespace strata::clients {

struct ClientOptions {
  // gRPC target of the node, e.g. "127.0.0.1:7070" or "dns:///node-3:7070".
  std::string target;
  // Bound on each call, retries and backoff included. Long enough for a chain of large blocks from
  // SSD; a shorter one fails fast when a node hangs.
  absl::Duration deadline = absl::Seconds(30);
  // Attempts per call; only UNAVAILABLE is retried (with 50 ms, 100 ms, ... backoff), because every
  // other code says retrying the same node will not help.
  int max_attempts = 3;
  // Payload bytes per Put chunk message and the largest Get chunk asked for. Larger chunks mean
  // fewer messages; at most 4 MiB (the node's per-message limit). 1 MiB: with zero-copy chunks,
  // `strata-bench tiers --block-bytes 2MiB --paths grpc` on the 2-core box measured 256 KiB /
  // 1 MiB / 4 MiB chunks at 0.50-0.69 / 0.49-0.90 / 0.56-0.93 GB/s over several runs, within
  // run-to-run noise of each other, so the earlier choice (bench/RESULTS.md) stands.
  size_t chunk_bytes = 1 << 20;
  // gRPC max send/receive message size: a 4 MiB chunk plus framing, matching the node.
  size_t max_message_bytes = (4 << 20) + (64 << 10);
  // TLS (a CA file, or the system roots), a client certificate for mTLS, and a bearer token.
  // Default: plaintext.
  common::ChannelSecurityOptions security;

  // InvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// One block to store. `payload` is borrowed: it must stay valid for the duration of Put.
struct PutBlock {
  common::ChainHash hash;
  std::span<const std::byte> payload;
  uint32_t chain_position = 0;  // 0 for the first block of a chain
  bool from_gpu = false;        // lands in HBM when the node has it
};

// The node's verdict on one block: OK and the tier it landed in, or why it was refused.
struct PutResult {
  absl::Status status;
  strata::v1::Tier tier = strata::v1::TIER_UNSPECIFIED;
};

// One block of a Get. On a miss `miss` is NotFound (absent) or DataLoss (the node's copy failed its
// checksum) and `payload` is empty.
struct GetResult {
  uint32_t index = 0;  // position of the block in the requested chain
  bool found = false;
  strata::v1::Tier tier = strata::v1::TIER_UNSPECIFIED;
  absl::Status miss;
  std::string payload;
};

// One inference engine's load, as it reports it to the cache node on its host (which adds it to
// the load it heartbeats to the router).
struct EngineLoadReport {
  std::string engine_id;  // stable per engine process; one node may host several
  uint32_t queued_requests = 0;
  uint32_t running_requests = 0;
  uint64_t prefill_tokens_in_flight = 0;
  uint64_t free_hbm_blocks = 0;
};

class CacheNodeClient {
 public:
  // Creates a client with an insecure channel to options.target. Does not contact the node (the
  // first call does). InvalidArgument if the options do not validate.
  static absl::StatusOr<std::unique_ptr<CacheNodeClient>> Connect(const ClientOptions& options);

  CacheNodeClient(const CacheNodeClient&) = delete;
  CacheNodeClient& operator=(const CacheNodeClient&) = delete;
  ~CacheNodeClient();

  // Stores `blocks` in namespace `ns` with one client-streaming call. Returns one PutResult per
  // block, in order. Returns only once gRPC holds no reference to the payloads any more (see
  // common::LentMemory). A node refuses a block (ResourceExhausted, FailedPrecondition, DataLoss...)
  // either in its PutResult or by failing the whole call with that status; strata-cachenode does
  // the latter, keeping the blocks committed before it. Blocks are never half-stored.
  absl::StatusOr<std::vector<PutResult>> Put(common::NamespaceId ns,
                                             std::span<const PutBlock> blocks);

  // Reads a chain. Returns one GetResult per block the node reported, in chain order; with
  // `stop_at_first_miss` the node stops after the first miss, so the vector may be shorter than
  // `chain`. DataLoss if a received block does not add up to its size or checksum.
  absl::StatusOr<std::vector<GetResult>> Get(common::NamespaceId ns,
                                             std::span<const common::ChainHash> chain,
                                             bool stop_at_first_miss);

  // Streaming form of Get that buffers nothing: `on_header` is called for every block (hit or
  // miss), then `on_chunk` for each payload piece of a hit (at most 64 KiB; the view points into
  // gRPC's receive buffers and is valid only during the call). A block is verified after its last chunk was delivered: on a size or checksum mismatch
  // the call returns DataLoss and the caller must discard what it received for that block. Retries
  // only before the first callback. Either callback may be empty.
  absl::Status GetInto(common::NamespaceId ns, std::span<const common::ChainHash> chain,
                       bool stop_at_first_miss,
                       const std::function<void(const strata::v1::GetBlockHeader&)>& on_header,
                       const std::function<void(uint32_t index, std::string_view chunk)>& on_chunk);

  // Which prefix of `chain` the node holds, and in which tiers; no payloads move.
  absl::StatusOr<strata::v1::LookupResponse> Lookup(common::NamespaceId ns,
                                                    std::span<const common::ChainHash> chain);

  // Removes the blocks from every tier. Returns how many were present.
  absl::StatusOr<uint32_t> Delete(common::NamespaceId ns, std::span<const common::ChainHash> chain);

  // The node's tier usage and counters.
  absl::StatusOr<strata::v1::StatsResponse> Stats();

  // Makes every block whose Put returned before this call durable against a crash of the node
  // (cachenode.proto, SyncRequest): once it returns OK they survive a SIGKILL. A Put alone is
  // acknowledged into memory only. FailedPrecondition when the node has no SSD tier;
  // ResourceExhausted when its SSD tier cannot take the blocks. Never retried: after UNAVAILABLE
  // the node may have restarted and lost unsynced puts, so put them again before the next Sync.
  // Can take as long as writing what write-behind has not written yet plus one memtable flush: a
  // checkpoint, not a per-put call.
  absl::StatusOr<strata::v1::SyncResponse> Sync();

  // Makes `name` known to the node (created=false when it already was). InvalidArgument for a bad
  // name, checked here before any RPC.
  absl::StatusOr<strata::v1::RegisterNamespaceResponse> RegisterNamespace(std::string_view name);

  // The namespaces the node accepts.
  absl::StatusOr<strata::v1::ListNamespacesResponse> ListNamespaces();

  // Reports an engine's load to the node. Returns how long the report counts there: report again
  // well within it. InvalidArgument for an empty engine id (checked before any RPC);
  // ResourceExhausted when the node already tracks as many engines as it takes.
  absl::StatusOr<absl::Duration> ReportEngineLoad(const EngineLoadReport& report);

  const ClientOptions& options() const { return options_; }

 private:
  CacheNodeClient(ClientOptions options, std::shared_ptr<grpc::Channel> channel);

  // The deadline and attempts of one call (rpc_retry.h), from options_.
  RetryBudget budget() const { return {options_.deadline, options_.max_attempts}; }

  // One Get stream; see GetInto. *delivered becomes true once a callback ran.
  absl::Status GetOnce(absl::Time deadline, const strata::v1::GetRequest& request,
                       const std::function<void(const strata::v1::GetBlockHeader&)>& on_header,
                       const std::function<void(uint32_t, std::string_view)>& on_chunk,
                       bool* delivered);

  const ClientOptions options_;
  const std::shared_ptr<grpc::Channel> channel_;
  // The generated stub serves every call but Put and Get, which stream raw ByteBuffers over these.
  const std::unique_ptr<strata::v1::CacheNode::StubInterface> stub_;
  const grpc::internal::RpcMethod put_method_;
  const grpc::internal::RpcMethod get_method_;
};

}  // namespace strata::clients
