// Node: one whole cache node wired together (tiers -> TieredStore -> CacheNodeService -> gRPC
// server, plus the write-behind loop), so the binary and in-process users (benchmarks, tests) run
// the very same wiring.
//
// Start-up is two steps: Create() prepares the data dir and builds the tiers and store (an HBM tier
// without a usable GPU becomes hbm(emulated), logged on stderr); Serve() starts the RPC server, the
// write-behind loop and, when a router is configured, the router link (router_link.h). Between
// them the caller can attach things that need the store (the metrics exporter). Serve() also
// starts, after the gRPC server, the RESP endpoint (resp_server.h) when resp_listen is set, and the
// same-node shared-memory data plane (shm_server.h) with its lease-expiry loop when local_socket is
// set. Shutdown() stops those two first, then tells the router the node is draining, stops the
// link, and drains. Not thread-safe itself; the store and service are.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cachenode/cache_node_service.h"
#include "cachenode/engine_load.h"
#include "cachenode/namespace_registry.h"
#include "cachenode/resp_server.h"
#include "cachenode/router_link.h"
#include "cachenode/shm_server.h"
#include "cachenode/ssd_tier.h"
#include "cachenode/tiered_store.h"
#include "common/grpc_security.h"
#include "common/periodic_loop.h"

namespace strata::cachenode {

struct NodeOptions {
  std::string listen = "127.0.0.1:7070";  // HOST:PORT; port 0 picks a free one
  // Transport security of the gRPC port (TLS, mTLS, bearer tokens). The library's default is
  // plaintext, for in-process nodes in tests and benchmarks; the binary asks for it explicitly
  // (--plaintext) or for TLS.
  common::ServerSecurityOptions security = common::ServerSecurityOptions::Plaintext();
  // Extra plaintext port with only grpc.health.v1, for Kubernetes probes; empty: none.
  std::string health_listen;
  // Holds the SSD tier (DIR/ssd) and the namespace list. Empty: no SSD tier, nothing persisted.
  std::string data_dir;
  uint64_t hbm_bytes = 0;            // 0: no HBM tier
  uint64_t dram_bytes = 1ull << 30;  // 0: no DRAM tier
  SsdTierOptions ssd;                // capacity_bytes 0: no SSD tier; path defaults to DIR/ssd
  TieredStoreOptions store;
  CacheNodeServiceOptions service;
  std::vector<std::string> namespaces = {"default"};
  // Write-behind runs again at once while it finds work, else after this idle period: bounds how
  // long a fresh block waits for its SSD copy.
  absl::Duration write_behind_idle = absl::Milliseconds(20);
  // The router link; router empty: off (no events are even recorded). advertise empty: the bound
  // listen address, which must then not be a wildcard. epoch 0: the time Serve() runs.
  // router.router may list several router replicas, comma-separated ("r0:7080,r1:7080"): the node
  // registers with each through its own link (same id, endpoint and epoch), so every replica
  // builds the same index on its own and losing one loses no routing.
  RouterLinkOptions router;
  // Load reports of the engines on this node, added to the router heartbeats. ttl 0: three
  // router.heartbeat_interval.
  EngineLoadOptions engines;
  // RESP (Redis protocol) endpoint address HOST:PORT (port 0 picks a free one); empty: off. It
  // overrides resp.listen. resp.namespace_name must be one of the node's namespaces.
  std::string resp_listen;
  RespServerOptions resp;
  // Unix socket of the same-node shared-memory data plane; empty: off. Needs the DRAM tier (its
  // memfd arena is what engines map). It overrides local.socket_path.
  std::string local_socket;
  ShmServerOptions local;
  // How often expired shm leases and reservations are freed: how late past its TTL a hung
  // client's pin can linger.
  absl::Duration local_expiry_interval = absl::Seconds(1);

  // InvalidArgument naming the bad field.
  absl::Status Validate() const;
};

class Node {
 public:
  // Validates options, prepares the data dir (FailedPrecondition when it cannot be written), builds
  // the tiers and the store (rebuilding the index from SSD) and the namespace registry.
  static absl::StatusOr<std::unique_ptr<Node>> Create(const NodeOptions& options);
  ~Node();  // Shutdown() when still serving.

  // Starts the gRPC server, write-behind and the router link (when configured; it registers in the
  // background, so an unreachable router does not fail Serve). `observer` (may be null) must
  // outlive the node. Unavailable when the address cannot be bound.
  absl::Status Serve(RpcObserver* observer = nullptr);

  // Drains: the router hears draining=true and the link stops, health turns NOT_SERVING, in-flight
  // RPCs get up to `grace` to finish, the server stops, pending blocks are written to SSD and
  // flushed. Safe to call more than once.
  absl::Status Shutdown(absl::Duration grace = absl::Seconds(10));

  int port() const { return server_.port; }
  // The RESP endpoint's bound port while serving with resp_listen set, else 0.
  int resp_port() const { return resp_ != nullptr ? resp_->port() : 0; }
  std::string address() const;  // "HOST:PORT" with the bound port
  // The shared-memory data plane while serving with local_socket set, else null.
  ShmServer* local_server() const { return local_.get(); }
  TieredStore* store() const { return store_.get(); }
  // Where the engines' load reports land (from Create on, so metrics can read it before Serve).
  const EngineLoadTable* engine_loads() const { return engine_loads_.get(); }
  // The token checker while serving with bearer tokens configured, else null (for metrics).
  const common::TokenAuthenticator* authenticator() const { return security_.authenticator.get(); }
  // The health-only port while serving with health_listen set, else 0.
  int health_port() const { return health_.port; }
  // The (first) router link while serving with a router configured, else null.
  RouterLink* router_link() const {
    return router_links_.empty() ? nullptr : router_links_[0].get();
  }
  // One link per router replica, in the order router.router lists them (empty: no router).
  const std::vector<std::unique_ptr<RouterLink>>& router_links() const { return router_links_; }
  const NodeOptions& options() const { return options_; }

 private:
  explicit Node(NodeOptions options) : options_(std::move(options)) {}

  NodeOptions options_;
  std::unique_ptr<TieredStore> store_;
  std::unique_ptr<NamespaceRegistry> namespaces_;
  std::unique_ptr<EngineLoadTable> engine_loads_;
  std::unique_ptr<CacheNodeService> service_;
  common::ServerSecurity security_;
  NodeServer server_;
  common::GrpcServer health_;
  std::unique_ptr<common::PeriodicLoop> write_behind_;
  std::unique_ptr<RespServer> resp_;
  std::unique_ptr<ShmServer> local_;
  std::unique_ptr<common::PeriodicLoop> local_expiry_;
  // The store's event sink when there are several router links; declared before them because
  // they leave it when destroyed.
  std::unique_ptr<BlockEventFanout> router_fanout_;
  std::vector<std::unique_ptr<RouterLink>> router_links_;  // last: they read the service and store
};

}  // namespace strata::cachenode
