// CacheNodeService: the gRPC face of a cache node (service strata.v1.CacheNode), plus the server
// wiring every node uses (health, reflection, message-size limits).
//
// The service validates input at the boundary (namespace known, 32-byte hashes, sizes, request
// limits) and maps results to gRPC codes through common/grpc_status.h; the store does the rest.
// Put commits a block only once all its bytes have arrived and the checksum matches; an invalid
// block ends the stream with its status, and the blocks committed before it stay.
// ReportEngineLoad only records an engine's load in the node's EngineLoadTable.
// Sync is the durability point (cachenode.proto, SyncRequest): it waits until every block committed
// before the call has an SSD copy, writing write-behind batches itself, then flushes the SSD tier.
//
// Payload bytes are never serialized. Put and Get are served by raw handlers (installed by the
// constructor in place of the generated ones) that read and write grpc::ByteBuffers, with the same
// protobuf wire format, so generated clients work unchanged (common/grpc_byte_buffer.h):
// - Get sends each chunk as framing bytes plus a slice that references the pinned block in its
//   tier; the slice holds the pin until gRPC has written it. No user-space copy on the node.
// - Put copies each received chunk's slices once: into a DRAM slot reserved for the block
//   (TieredStore::ReserveDram), which CommitDram verifies and adopts; or, for blocks bound for HBM
//   or when DRAM cannot make room, into a buffer that TieredStore::Put copies into its tier.
//
// Handlers run on gRPC's sync-server threads and are thread-safe; deadlines and cancellation are
// checked between blocks and chunks.
#pragma once

#include <grpcpp/server.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/sync_stream.h>

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cachenode/engine_load.h"
#include "cachenode/namespace_registry.h"
#include "cachenode/tiered_store.h"
#include "common/clock.h"
#include "common/grpc_auth.h"
#include "common/grpc_server.h"
#include "strata/v1/cachenode.grpc.pb.h"

namespace strata::cachenode {

// Told about every finished RPC (the binary turns this into Prometheus histograms). Thread-safe.
class RpcObserver {
 public:
  virtual ~RpcObserver() = default;
  virtual void OnRpcDone(std::string_view method, absl::Duration elapsed, int grpc_code) = 0;
};

struct CacheNodeServiceOptions {
  // Payload chunk size when the client does not ask for one. 1 MiB measured best on loopback (see
  // bench/RESULTS.md); with zero-copy chunks 256 KiB-4 MiB measure within noise of it (see
  // clients::ClientOptions::chunk_bytes). Clients may ask for 64 KiB-4 MiB.
  uint64_t default_chunk_bytes = 1ull << 20;
  uint32_t max_blocks_per_request = 4096;
  // Payload bytes one Get stream reads (and pins) per step; SSD reads of a window are one
  // MultiGet. Chunks already handed to gRPC keep their block pinned until written, so a stream
  // pins up to this plus what its HTTP/2 flow-control window holds.
  uint64_t get_window_bytes = 64ull << 20;
  // Sync gives up with ResourceExhausted when none of the blocks it waits for reaches the SSD tier
  // for this long (a full or failing disk). Longer than one write-behind batch takes on a slow
  // disk (32 MiB, well under a second), since a batch the background loop is writing can hold
  // blocks Sync waits for; measured on the injected clock.
  absl::Duration sync_stall_timeout = absl::Seconds(5);
};

inline constexpr uint64_t kMaxChunkBytes = 4ull << 20;
// gRPC message limit: the largest chunk plus framing.
inline constexpr int kMaxMessageBytes = static_cast<int>(kMaxChunkBytes + (64 << 10));

strata::v1::Tier ToProtoTier(TierKind kind);

// Checks one Put block header at the boundary and returns the block's BlockInfo: the namespace is
// registered (`namespaces` null: any id but 0), the chain hash is exactly 32 bytes and
// 1 <= size_bytes <= largest_block_bytes, the only bound on the buffer the handler then allocates.
// InvalidArgument (namespace 0, bad hash, empty block), FailedPrecondition (unknown namespace),
// ResourceExhausted (larger than largest_block_bytes). Pure; the Put handler's first step.
absl::StatusOr<BlockInfo> ValidatePutHeader(const strata::v1::PutBlockHeader& header,
                                            const NamespaceRegistry* namespaces,
                                            uint64_t largest_block_bytes);

// A Get request as the handler serves it.
struct ValidGet {
  std::vector<common::ChainHash> chain;  // 1 to options.max_blocks_per_request hashes
  uint64_t chunk_bytes = 0;              // in [64 KiB, kMaxChunkBytes]
};
// Checks a Get request (ParseRequestChain with options.max_blocks_per_request) and picks its chunk
// size: max_chunk_bytes (0: options.default_chunk_bytes) clamped to [64 KiB, kMaxChunkBytes].
// Errors as ParseRequestChain. Pure; the Get handler's first step.
absl::StatusOr<ValidGet> ValidateGetRequest(const strata::v1::GetRequest& request,
                                            const NamespaceRegistry* namespaces,
                                            const CacheNodeServiceOptions& options);

class CacheNodeService final : public strata::v1::CacheNode::Service {
 public:
  // Does not take ownership; store, namespaces and engines (where ReportEngineLoad lands) must
  // outlive the service. observer may be null.
  CacheNodeService(TieredStore* store, NamespaceRegistry* namespaces, EngineLoadTable* engines,
                   const CacheNodeServiceOptions& options, RpcObserver* observer = nullptr,
                   common::Clock* clock = common::Clock::Real());

  // Put and Get are not overridden here: see StreamPut and StreamGet.
  grpc::Status Lookup(grpc::ServerContext* context, const strata::v1::LookupRequest* request,
                      strata::v1::LookupResponse* response) override;
  grpc::Status Delete(grpc::ServerContext* context, const strata::v1::DeleteRequest* request,
                      strata::v1::DeleteResponse* response) override;
  grpc::Status Stats(grpc::ServerContext* context, const strata::v1::StatsRequest* request,
                     strata::v1::StatsResponse* response) override;
  grpc::Status RegisterNamespace(grpc::ServerContext* context,
                                 const strata::v1::RegisterNamespaceRequest* request,
                                 strata::v1::RegisterNamespaceResponse* response) override;
  grpc::Status ListNamespaces(grpc::ServerContext* context,
                              const strata::v1::ListNamespacesRequest* request,
                              strata::v1::ListNamespacesResponse* response) override;
  grpc::Status ReportEngineLoad(grpc::ServerContext* context,
                                const strata::v1::ReportEngineLoadRequest* request,
                                strata::v1::ReportEngineLoadResponse* response) override;
  // Blocks until the blocks committed before the call are durable (see SyncRequest in
  // cachenode.proto); FailedPrecondition without an SSD tier, ResourceExhausted when the SSD tier
  // cannot take them, Cancelled/DeadlineExceeded when the caller gives up first.
  grpc::Status Sync(grpc::ServerContext* context, const strata::v1::SyncRequest* request,
                    strata::v1::SyncResponse* response) override;

  // Waits until no RPC is running or `timeout` passes; true when idle. Used on shutdown, so that a
  // drain waits for in-flight RPCs only and not for idle client connections to go away.
  bool WaitUntilIdle(absl::Duration timeout);

  // RPCs running now (the load a node reports to the router).
  int InflightRpcs() const;

 private:
  class RpcTimer;
  absl::StatusOr<std::vector<common::ChainHash>> ParseChain(
      common::NamespaceId ns, const google::protobuf::RepeatedPtrField<std::string>& hashes) const;
  // The raw streams: Put reads PutRequest messages as ByteBuffers and answers one PutResponse;
  // Get reads one GetRequest and writes GetResponse messages as ByteBuffers.
  using PutStream = grpc::ServerReaderWriter<strata::v1::PutResponse, grpc::ByteBuffer>;
  using GetStream = grpc::ServerSplitStreamer<strata::v1::GetRequest, grpc::ByteBuffer>;
  grpc::Status StreamPut(grpc::ServerContext* context, PutStream* stream);
  grpc::Status StreamGet(grpc::ServerContext* context, GetStream* stream);
  absl::Status DoPut(grpc::ServerContext* context, PutStream* stream,
                     strata::v1::PutResponse* response);
  absl::Status DoGet(grpc::ServerContext* context, const strata::v1::GetRequest& request,
                     GetStream* stream);

  TieredStore* const store_;
  NamespaceRegistry* const namespaces_;
  EngineLoadTable* const engines_;
  const CacheNodeServiceOptions options_;
  RpcObserver* const observer_;
  common::Clock* const clock_;
  mutable absl::Mutex inflight_mu_;
  int inflight_ ABSL_GUARDED_BY(inflight_mu_) = 0;
};

using NodeServer = common::GrpcServer;

// Which token roles may call which CacheNode method (common/grpc_auth.h; admin may call all):
// frontends and engines (route) read, write, ask and sync (a frontend that writes blocks decides
// when they must be durable); cache agents and peers (node) also delete and register namespaces.
common::MethodRoles NodeMethodRoles();

// Starts a server on `listen` ("HOST:PORT"; port 0 picks one) with the service, the standard
// grpc.health.v1 health service (SERVING), server reflection and the node's message-size limit
// (common::StartGrpcServer), secured by `credentials` (null: plaintext). Unavailable when the
// address cannot be bound.
absl::StatusOr<NodeServer> StartNodeServer(
    const std::string& listen, CacheNodeService* service,
    std::shared_ptr<grpc::ServerCredentials> credentials = nullptr);

}  // namespace strata::cachenode
