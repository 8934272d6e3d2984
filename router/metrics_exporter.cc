#include "router/metrics_exporter.h"

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <exception>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/metric_family.h"

namespace strata::router {
namespace {

using common::metrics::Add;
using common::metrics::Family;

// Reads the core's plain stats at scrape time (nothing duplicated).
class CoreCollector final : public prometheus::Collectable {
 public:
  explicit CoreCollector(RouterCore* core) : core_(core) {}

  void AddExtra(std::function<std::vector<ExtraCounter>()> source) {
    absl::MutexLock lock(&mu_);
    extra_.push_back(std::move(source));
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    using prometheus::MetricType;
    std::vector<prometheus::MetricFamily> out;
    std::shared_ptr<const MemberView> view = core_->membership().View();
    uint64_t draining = 0, unsynced = 0;
    for (const Member& m : view->members) {
      if (m.load.draining) ++draining;
      if (!core_->ingest().Synced(m.slot)) ++unsynced;
    }
    auto nodes = Family("strata_router_nodes", "Registered nodes by state.", MetricType::Gauge);
    Add(nodes, static_cast<double>(view->members.size()), {{"state", "registered"}});
    Add(nodes, static_cast<double>(draining), {{"state", "draining"}});
    Add(nodes, static_cast<double>(unsynced), {{"state", "awaiting_snapshot"}});
    out.push_back(std::move(nodes));

    const GlobalIndexStats s = core_->index().Stats();
    auto blocks = Family("strata_router_index_blocks", "Distinct blocks in the global index.",
                         MetricType::Gauge);
    Add(blocks, static_cast<double>(s.blocks));
    out.push_back(std::move(blocks));
    auto entries = Family("strata_router_index_entries", "(block, node) entries in the index.",
                          MetricType::Gauge);
    Add(entries, static_cast<double>(s.entries));
    out.push_back(std::move(entries));
    auto memory =
        Family("strata_router_index_memory_bytes", "Memory held by the index.", MetricType::Gauge);
    Add(memory, static_cast<double>(s.memory_bytes));
    out.push_back(std::move(memory));

    const IngestCounters c = core_->ingest().Counters();
    auto counter = [&](const char* name, const char* help, uint64_t v) {
      auto f = Family(name, help, MetricType::Counter);
      Add(f, static_cast<double>(v));
      out.push_back(std::move(f));
    };
    counter("strata_router_ingest_batches_total", "Event batches applied.", c.batches_applied);
    counter("strata_router_ingest_block_events_total", "Block events applied.", c.events_applied);
    counter("strata_router_ingest_gaps_total", "Sequence gaps detected (each forces a snapshot).",
            c.gaps_detected);
    counter("strata_router_ingest_snapshots_total", "Snapshots applied.", c.snapshots_applied);
    counter("strata_router_ingest_rejected_total", "Batches and snapshot chunks rejected.",
            c.rejected_batches + c.rejected_chunks);
    counter("strata_router_ingest_snapshot_requests_total",
            "Batches answered with a snapshot request (gaps, new epochs, lost state).",
            c.snapshot_required);

    // One family per name, however many sources report it (one TYPE line per metric name).
    std::map<std::string, prometheus::MetricFamily> extra;
    absl::MutexLock lock(&mu_);
    for (const auto& source : extra_) {
      for (const ExtraCounter& e : source()) {
        auto [it, inserted] = extra.try_emplace(e.name);
        if (inserted) it->second = Family(e.name, e.help, MetricType::Counter);
        std::vector<prometheus::ClientMetric::Label> labels;
        for (const auto& [k, v] : e.labels) labels.push_back({k, v});
        Add(it->second, e.value, std::move(labels));
      }
    }
    for (auto& [name, family] : extra) out.push_back(std::move(family));
    return out;
  }

 private:
  RouterCore* const core_;
  mutable absl::Mutex mu_;
  std::vector<std::function<std::vector<ExtraCounter>()>> extra_ ABSL_GUARDED_BY(mu_);
};

prometheus::Histogram::BucketBoundaries TtftBuckets() {
  // Milliseconds: from a cached short prompt (a few ms) to a cold 32k-token prefill (seconds).
  return {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000};
}

prometheus::Histogram::BucketBoundaries DepthBuckets() {
  return {0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
}

}  // namespace

struct MetricsExporter::Impl {
  std::unique_ptr<prometheus::Exposer> exposer;
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::shared_ptr<CoreCollector> collector;
  prometheus::Family<prometheus::Counter>* decisions = nullptr;
  prometheus::Family<prometheus::Counter>* matched = nullptr;
  prometheus::Family<prometheus::Counter>* requested = nullptr;
  prometheus::Family<prometheus::Histogram>* predicted = nullptr;
  prometheus::Family<prometheus::Histogram>* reported = nullptr;
  prometheus::Family<prometheus::Histogram>* shadow = nullptr;
  prometheus::Family<prometheus::Counter>* prompt_tokens = nullptr;
  prometheus::Family<prometheus::Counter>* cached_tokens = nullptr;
};

absl::StatusOr<std::unique_ptr<MetricsExporter>> MetricsExporter::Start(const std::string& listen,
                                                                        RouterCore* core) {
  auto impl = std::make_unique<Impl>();
  try {
    impl->exposer = std::make_unique<prometheus::Exposer>(listen);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("metrics: cannot listen on ", listen, ": ", e.what()));
  }
  impl->decisions = &prometheus::BuildCounter()
                         .Name("strata_router_decisions_total")
                         .Help("Live routing decisions by the policy that made them.")
                         .Register(*impl->registry);
  impl->matched = &prometheus::BuildCounter()
                       .Name("strata_router_matched_blocks_total")
                       .Help("Prefix blocks matched on the chosen node, by policy and tier.")
                       .Register(*impl->registry);
  impl->requested = &prometheus::BuildCounter()
                         .Name("strata_router_requested_blocks_total")
                         .Help("Blocks in routed requests, by policy.")
                         .Register(*impl->registry);
  impl->predicted = &prometheus::BuildHistogram()
                         .Name("strata_router_predicted_ttft_ms")
                         .Help("TTFT the cost model predicted for the chosen node (ms).")
                         .Register(*impl->registry);
  impl->reported = &prometheus::BuildHistogram()
                        .Name("strata_router_reported_ttft_ms")
                        .Help("TTFT frontends reported through ReportOutcome (ms).")
                        .Register(*impl->registry);
  impl->shadow = &prometheus::BuildHistogram()
                      .Name("strata_router_shadow_hit_blocks")
                      .Help("Hit depth (blocks) each experiment policy would have got (shadow).")
                      .Register(*impl->registry);
  impl->prompt_tokens = &prometheus::BuildCounter()
                             .Name("strata_router_reported_prompt_tokens_total")
                             .Help("Prompt tokens of reported outcomes, by policy.")
                             .Register(*impl->registry);
  impl->cached_tokens =
      &prometheus::BuildCounter()
           .Name("strata_router_reported_cached_tokens_total")
           .Help("Tokens the engine found cached, of reported outcomes, by policy.")
           .Register(*impl->registry);
  impl->collector = std::make_shared<CoreCollector>(core);
  impl->exposer->RegisterCollectable(impl->registry);
  impl->exposer->RegisterCollectable(impl->collector);
  std::unique_ptr<MetricsExporter> exporter(new MetricsExporter(std::move(impl)));
  core->set_observer(exporter.get());
  return exporter;
}

MetricsExporter::MetricsExporter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MetricsExporter::~MetricsExporter() = default;

void MetricsExporter::AddExtraCounters(std::function<std::vector<ExtraCounter>()> source) {
  impl_->collector->AddExtra(std::move(source));
}

void MetricsExporter::OnDecision(const RouteDecision& d) {
  impl_->decisions->Add({{"policy", d.policy}}).Increment();
  for (Tier t : kAllTiers) {
    const uint32_t n = d.match.per_tier[static_cast<int>(t)];
    if (n > 0) impl_->matched->Add({{"policy", d.policy}, {"tier", TierName(t)}}).Increment(n);
  }
  impl_->requested->Add({{"policy", d.policy}}).Increment(d.total_blocks);
  impl_->predicted->Add({{"policy", d.policy}}, TtftBuckets()).Observe(d.cost.total_ms);
}

void MetricsExporter::OnShadow(const std::string& policy, uint32_t matched_blocks, double) {
  impl_->shadow->Add({{"policy", policy}}, DepthBuckets()).Observe(matched_blocks);
}

void MetricsExporter::OnOutcome(const std::string& policy, double ttft_ms, uint32_t prompt_tokens,
                                uint32_t cached_tokens) {
  impl_->reported->Add({{"policy", policy}}, TtftBuckets()).Observe(ttft_ms);
  impl_->prompt_tokens->Add({{"policy", policy}}).Increment(prompt_tokens);
  impl_->cached_tokens->Add({{"policy", policy}}).Increment(cached_tokens);
}

int MetricsExporter::port() const {
  const auto ports = impl_->exposer->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

}  // namespace strata::router
