// CacheNodeService: the gRPC face of a cache node (service strata.v1.CacheNode), plus the server
// wiring every node uses (health, reflection, message-size limits).
//
// The service validates input at the boundary (namespace known, 32-byte hashes, sizes, request
// limits) and maps results to gRPC codes through common/grpc_status.h; the store does the rest.
// Payload bytes are copied, never parsed or re-encoded: chunks go straight between the wire and the
// tiers. Put commits a block only once all its bytes have arrived and the checksum matches; an
// invalid block ends the stream with its status, and the blocks committed before it stay.
// ReportEngineLoad only records an engine's load in the node's EngineLoadTable.
//
// Handlers run on gRPC's sync-server threads and are thread-safe; deadlines and cancellation are
// checked between blocks and chunks.
#pragma once

#include <grpcpp/server.h>

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
  // bench/RESULTS.md); clients may ask for 64 KiB-4 MiB.
  uint64_t default_chunk_bytes = 1ull << 20;
  uint32_t max_blocks_per_request = 4096;
  // Payload bytes one Get stream pins at a time (SSD reads of a window are one MultiGet).
  uint64_t get_window_bytes = 64ull << 20;
};

inline constexpr uint64_t kMaxChunkBytes = 4ull << 20;
// gRPC message limit: the largest chunk plus framing.
inline constexpr int kMaxMessageBytes = static_cast<int>(kMaxChunkBytes + (64 << 10));

strata::v1::Tier ToProtoTier(TierKind kind);

class CacheNodeService final : public strata::v1::CacheNode::Service {
 public:
  // Does not take ownership; store, namespaces and engines (where ReportEngineLoad lands) must
  // outlive the service. observer may be null.
  CacheNodeService(TieredStore* store, NamespaceRegistry* namespaces, EngineLoadTable* engines,
                   const CacheNodeServiceOptions& options, RpcObserver* observer = nullptr,
                   common::Clock* clock = common::Clock::Real());

  grpc::Status Put(grpc::ServerContext* context, grpc::ServerReader<strata::v1::PutRequest>* reader,
                   strata::v1::PutResponse* response) override;
  grpc::Status Get(grpc::ServerContext* context, const strata::v1::GetRequest* request,
                   grpc::ServerWriter<strata::v1::GetResponse>* writer) override;
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

  // Waits until no RPC is running or `timeout` passes; true when idle. Used on shutdown, so that a
  // drain waits for in-flight RPCs only and not for idle client connections to go away.
  bool WaitUntilIdle(absl::Duration timeout);

  // RPCs running now (the load a node reports to the router).
  int InflightRpcs() const;

 private:
  class RpcTimer;
  absl::StatusOr<std::vector<common::ChainHash>> ParseChain(
      common::NamespaceId ns, const google::protobuf::RepeatedPtrField<std::string>& hashes) const;
  absl::Status DoPut(grpc::ServerContext* context,
                     grpc::ServerReader<strata::v1::PutRequest>* reader,
                     strata::v1::PutResponse* response);
  absl::Status DoGet(grpc::ServerContext* context, const strata::v1::GetRequest& request,
                     grpc::ServerWriter<strata::v1::GetResponse>* writer);

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

// Starts a server on `listen` ("HOST:PORT"; port 0 picks one) with the service, the standard
// grpc.health.v1 health service (SERVING), server reflection and the node's message-size limit
// (common::StartGrpcServer). Unavailable when the address cannot be bound.
absl::StatusOr<NodeServer> StartNodeServer(const std::string& listen, CacheNodeService* service);

}  // namespace strata::cachenode
