// MetricsExporter: the router's Prometheus endpoint (/metrics on --metrics-listen), and the one
// place in the router that includes prometheus-cpp.
//
// Per-policy figures arrive as they happen through RouteObserver:
// strata_router_decisions_total{policy}, strata_router_matched_blocks_total{policy,tier},
// strata_router_requested_blocks_total{policy}, strata_router_predicted_ttft_ms{policy} and
// strata_router_reported_ttft_ms{policy} (histograms), strata_router_reported_prompt_tokens_total
// and strata_router_reported_cached_tokens_total{policy} (the hit ratio frontends measured),
// strata_router_shadow_hit_blocks{policy}
// (histogram: the hit depth each policy of the experiment would have got). Index, ingest and
// membership figures are read from the core at scrape time: strata_router_nodes{state},
// strata_router_index_blocks, strata_router_index_entries, strata_router_index_memory_bytes,
// strata_router_ingest_*_total. Extra collectors (the vLLM adapter's counters) can be attached.
// Thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "router/router_core.h"

namespace strata::router {

// A named counter reported at scrape time, e.g. {"strata_router_vllm_gaps_total", {"node", "n1"}}.
struct ExtraCounter {
  std::string name;
  std::string help;
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

class MetricsExporter final : public RouteObserver {
 public:
  // Serves /metrics on `listen` ("HOST:PORT"). Unavailable when it cannot bind. The core must
  // outlive the exporter.
  static absl::StatusOr<std::unique_ptr<MetricsExporter>> Start(const std::string& listen,
                                                                RouterCore* core);
  ~MetricsExporter() override;

  // Called at every scrape; its counters are exported as they are.
  void AddExtraCounters(std::function<std::vector<ExtraCounter>()> source);

  void OnDecision(const RouteDecision& d) override;
  void OnShadow(const std::string& policy, uint32_t matched_blocks,
                double predicted_ttft_ms) override;
  void OnOutcome(const std::string& policy, double ttft_ms, uint32_t prompt_tokens,
                 uint32_t cached_tokens) override;

  int port() const;

 private:
  struct Impl;
  explicit MetricsExporter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::router
