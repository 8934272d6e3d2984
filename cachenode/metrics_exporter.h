// MetricsExporter: the node's Prometheus endpoint (/metrics on --metrics-listen). The one place in
// the cache node that includes prometheus-cpp: store figures are read from TieredStore::Stats() at
// scrape time (no counters duplicated), RPC durations arrive through RpcObserver.
//
// Names follow Prometheus conventions: strata_tier_used_bytes{tier},
// strata_tier_capacity_bytes{tier}, strata_hits_total{tier}, strata_misses_total,
// strata_evictions_total{tier}, strata_checksum_failures_total{tier},
// strata_rpc_duration_seconds{method,code} (histogram), bytes moved between tiers, and
// strata_engines_reporting (engines whose load report still counts), and for the same-node plane
// strata_local_clients, strata_local_pinned_bytes, strata_kv_registrations{path} and
// strata_kv_handover_{blocks,bytes}_total{direction,path}. The tier label is the tier's name, so an
// emulated HBM tier reads tier="hbm(emulated)"; the KV hand-over's path label is "gpu" or
// "emulated" (host memory moved by the CPU). Thread-safe.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cachenode/cache_node_service.h"
#include "cachenode/engine_load.h"
#include "cachenode/shm_server.h"
#include "cachenode/tiered_store.h"
#include "common/grpc_auth.h"

namespace strata::cachenode {

class MetricsExporter final : public RpcObserver {
 public:
  // Serves /metrics on `listen` ("HOST:PORT"). Unavailable when it cannot bind. The store and
  // `engines` (may be null: no engine gauge) must outlive the exporter.
  static absl::StatusOr<std::unique_ptr<MetricsExporter>> Start(
      const std::string& listen, const TieredStore* store,
      const EngineLoadTable* engines = nullptr);

  // Adds the same-node plane's figures from now on (it starts after the exporter, which the RPC
  // server needs first). `local` must outlive the exporter.
  void WatchLocalPlane(const ShmServer* local);
  // Adds strata_auth_denied_total{code,method} from the node's token checker. `auth` must outlive
  // the exporter.
  void WatchAuth(const common::TokenAuthenticator* auth);
  ~MetricsExporter() override;

  void OnRpcDone(std::string_view method, absl::Duration elapsed, int grpc_code) override;

  // The port /metrics is served on (the bound one when the listen address asked for port 0).
  int port() const;

 private:
  struct Impl;
  explicit MetricsExporter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::cachenode
