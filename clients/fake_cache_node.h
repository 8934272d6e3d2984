// Test-only: an in-process CacheNode gRPC server over a plain map, for clients_test.
//
// It follows cachenode.proto closely enough to exercise the client (chunking, verification, miss
// codes, retries), and can be told to misbehave: corrupt or shorten payloads it sends, fail calls
// with a status a given number of times. Thread-safe. Linked only into tests.
#pragma once

#include <grpcpp/server.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "clients/fake_failures.h"
#include "strata/v1/cachenode.grpc.pb.h"

namespace strata::clients {

class FakeCacheNode final : public strata::v1::CacheNode::Service {
 public:
  FakeCacheNode();
  ~FakeCacheNode() override;

  // "127.0.0.1:PORT" of the running server.
  const std::string& address() const { return address_; }

  // Every namespace id accepted by the data calls; others fail with FAILED_PRECONDITION.
  void AddNamespace(const std::string& name);
  void SetMaxBlockBytes(uint64_t bytes);
  // Get sends payloads with one byte flipped / missing its last byte.
  void CorruptPayloads(bool corrupt);
  void TruncatePayloads(bool truncate);
  // The next `times` calls of any RPC fail with `status` before doing anything.
  void FailNextCalls(int times, grpc::Status status);

  int calls() const;
  int put_chunk_messages() const;
  int max_get_chunk_seen() const;
  bool Contains(uint64_t ns, const std::string& hash) const;
  strata::v1::ReportEngineLoadRequest last_engine_load() const;

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
  // Records the report; answers a TTL of 3 s, INVALID_ARGUMENT for an empty engine id.
  grpc::Status ReportEngineLoad(grpc::ServerContext* context,
                                const strata::v1::ReportEngineLoadRequest* request,
                                strata::v1::ReportEngineLoadResponse* response) override;

 private:
  // Counts the call; returns the injected failure, if one is pending.
  grpc::Status Enter() { return failures_.Enter(); }
  grpc::Status CheckNamespace(uint64_t ns) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::pair<uint64_t, std::string>, std::string> blocks_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, std::string> namespaces_ ABSL_GUARDED_BY(mu_);
  uint64_t max_block_bytes_ ABSL_GUARDED_BY(mu_) = 64 << 20;
  bool corrupt_ ABSL_GUARDED_BY(mu_) = false;
  bool truncate_ ABSL_GUARDED_BY(mu_) = false;
  FakeFailures failures_;
  int put_chunk_messages_ ABSL_GUARDED_BY(mu_) = 0;
  int max_get_chunk_seen_ ABSL_GUARDED_BY(mu_) = 0;
  strata::v1::ReportEngineLoadRequest last_engine_load_ ABSL_GUARDED_BY(mu_);

  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

}  // namespace strata::clients
