// StartGrpcServer: the one place Strata's binaries build a gRPC server, so every service gets the
// same extras: the standard grpc.health.v1 service (SERVING once started), server reflection,
// explicit message size limits, and a bound on the threads the synchronous server may run.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace strata::common {

// Threads one server may run. The synchronous server adds a thread per RPC in progress, so without
// a bound a flood of clients grows threads and memory (each RPC may hold a 4 MiB message) without
// limit; past it, new RPCs fail with RESOURCE_EXHAUSTED (gRPC's ResourceQuota) and the server stays
// up. Far above what the soak test's 512 clients need.
inline constexpr int kMaxServerThreads = 1024;

struct GrpcServer {
  std::unique_ptr<grpc::Server> server;
  int port = 0;  // the bound port (useful with ":0")
};

// Binds `listen` (HOST:PORT, port 0 picks one) with `credentials` (grpc_security.h; null means
// plaintext, which only tests should pass), registers `services` (not owned; they must outlive the
// server) and starts serving. Unavailable when the address cannot be bound.
absl::StatusOr<GrpcServer> StartGrpcServer(
    const std::string& listen, const std::vector<grpc::Service*>& services, int max_message_bytes,
    std::shared_ptr<grpc::ServerCredentials> credentials = nullptr);

// A plaintext server with nothing but grpc.health.v1 (SERVING): for Kubernetes' native gRPC probes,
// which speak neither TLS nor tokens. It carries no data. Unavailable when it cannot bind.
absl::StatusOr<GrpcServer> StartHealthServer(const std::string& listen);

}  // namespace strata::common
