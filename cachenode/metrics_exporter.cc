#include "cachenode/metrics_exporter.h"

#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <atomic>
#include <exception>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "cachenode/ssd_tier.h"
#include "common/metric_family.h"

namespace strata::cachenode {
namespace {

using common::metrics::Add;
using common::metrics::Family;

// Reads the store's plain stats struct at scrape time.
class StoreCollector final : public prometheus::Collectable {
 public:
  StoreCollector(const TieredStore* store, const EngineLoadTable* engines)
      : store_(store), engines_(engines) {}
  void set_local(const ShmServer* local) { local_.store(local); }
  void set_auth(const common::TokenAuthenticator* auth) { auth_.store(auth); }

  std::vector<prometheus::MetricFamily> Collect() const override {
    using prometheus::MetricType;
    const StoreStats s = store_->Stats();
    auto used = Family("strata_tier_used_bytes", "Bytes charged against the tier's capacity.",
                       MetricType::Gauge);
    auto cap =
        Family("strata_tier_capacity_bytes", "Configured capacity of the tier.", MetricType::Gauge);
    auto blocks = Family("strata_tier_blocks", "Blocks held by the tier.", MetricType::Gauge);
    auto hits =
        Family("strata_hits_total", "Block reads served from the tier.", MetricType::Counter);
    auto evictions = Family("strata_evictions_total", "Blocks removed from the tier to make room.",
                            MetricType::Counter);
    auto failures = Family("strata_checksum_failures_total",
                           "Reads whose bytes failed the block checksum (served as misses).",
                           MetricType::Counter);
    auto written = Family("strata_tier_written_bytes_total", "Payload bytes written into the tier.",
                          MetricType::Counter);
    auto read = Family("strata_tier_read_bytes_total", "Payload bytes read out of the tier.",
                       MetricType::Counter);
    auto emulated = Family("strata_tier_emulated",
                           "1 when the tier stands in for hardware that is absent (hbm(emulated)).",
                           MetricType::Gauge);
    for (const StoreStats::PerTier& t : s.tiers) {
      const std::vector<prometheus::ClientMetric::Label> l = {{"tier", t.name}};
      Add(used, t.usage.used_bytes, l);
      Add(cap, t.usage.capacity_bytes, l);
      Add(blocks, t.usage.blocks, l);
      Add(hits, t.counters.hits, l);
      Add(evictions, t.counters.evictions, l);
      Add(failures, t.counters.checksum_failures, l);
      Add(written, t.counters.bytes_written, l);
      Add(read, t.counters.bytes_read, l);
      Add(emulated, t.emulated ? 1 : 0, l);
    }
    auto misses =
        Family("strata_misses_total", "Block reads that found no valid copy.", MetricType::Counter);
    Add(misses, s.misses, {});
    auto moved = Family("strata_moved_bytes_total", "Payload bytes moved between tiers.",
                        MetricType::Counter);
    Add(moved, s.demoted_bytes, {{"direction", "demote"}});
    Add(moved, s.promoted_bytes, {{"direction", "promote"}});
    Add(moved, s.write_behind_bytes, {{"direction", "write_behind"}});
    auto pending = Family("strata_write_behind_pending_blocks",
                          "Blocks not yet copied to the SSD tier.", MetricType::Gauge);
    Add(pending, s.write_behind_pending, {});
    std::vector<prometheus::MetricFamily> families = {used,      cap,      blocks,  hits,
                                                      evictions, failures, written, read,
                                                      emulated,  misses,   moved,   pending};
    if (const auto* ssd = dynamic_cast<const SsdTier*>(store_->tier(TierKind::kSsd));
        ssd != nullptr) {
      auto errors = Family("strata_ssd_write_errors_total",
                           "Writes and flushes the SSD tier's RocksDB refused (disk full, I/O "
                           "errors).",
                           MetricType::Counter);
      Add(errors, ssd->write_errors(), {});
      auto stopped = Family("strata_ssd_writes_stopped",
                            "1 while the SSD tier takes no writes: its last write or flush failed.",
                            MetricType::Gauge);
      Add(stopped, ssd->writes_stopped() ? 1 : 0, {});
      families.push_back(std::move(errors));
      families.push_back(std::move(stopped));
    }
    if (engines_ != nullptr) {
      auto reporting =
          Family("strata_engines_reporting",
                 "Engines whose latest load report is younger than the TTL.", MetricType::Gauge);
      Add(reporting, engines_->Sum().engines, {});
      families.push_back(std::move(reporting));
    }
    if (const ShmServer* local = local_.load(); local != nullptr) AddLocal(*local, families);
    if (const common::TokenAuthenticator* auth = auth_.load(); auth != nullptr) {
      auto denied = Family("strata_auth_denied_total",
                           "Calls refused by token auth, by method and code.",
                           prometheus::MetricType::Counter);
      for (const auto& [key, count] : auth->Denials().counts) {
        Add(denied, count, {{"code", key.second}, {"method", key.first}});
      }
      families.push_back(std::move(denied));
    }
    return families;
  }

 private:
  static void AddLocal(const ShmServer& local, std::vector<prometheus::MetricFamily>& families) {
    using prometheus::MetricType;
    const ShmStats s = local.Stats();
    auto clients = Family("strata_local_clients",
                          "Engine processes connected to the same-node shared-memory plane.",
                          MetricType::Gauge);
    Add(clients, s.clients, {});
    auto pinned = Family("strata_local_pinned_bytes",
                         "Arena bytes pinned by shared-memory leases.", MetricType::Gauge);
    Add(pinned, s.pinned_bytes, {});
    auto registrations = Family("strata_kv_registrations",
                                "Engine KV caches registered for hand-over, by path.",
                                MetricType::Gauge);
    auto blocks = Family("strata_kv_handover_blocks_total",
                         "Blocks moved between engines' KV caches and the tiers.",
                         MetricType::Counter);
    auto bytes = Family("strata_kv_handover_bytes_total",
                        "Payload bytes moved between engines' KV caches and the tiers.",
                        MetricType::Counter);
    for (int p = 0; p < kNumKvPaths; ++p) {
      const std::string path = p == static_cast<int>(KvPath::kGpu) ? "gpu" : "emulated";
      Add(registrations, s.kv.registrations[p], {{"path", path}});
      Add(blocks, s.kv.offloaded[p].blocks, {{"direction", "offload"}, {"path", path}});
      Add(blocks, s.kv.onloaded[p].blocks, {{"direction", "onload"}, {"path", path}});
      Add(bytes, s.kv.offloaded[p].bytes, {{"direction", "offload"}, {"path", path}});
      Add(bytes, s.kv.onloaded[p].bytes, {{"direction", "onload"}, {"path", path}});
    }
    for (auto* f : {&clients, &pinned, &registrations, &blocks, &bytes}) {
      families.push_back(std::move(*f));
    }
  }

  const TieredStore* store_;
  const EngineLoadTable* engines_;
  std::atomic<const ShmServer*> local_{nullptr};
  std::atomic<const common::TokenAuthenticator*> auth_{nullptr};
};

}  // namespace

struct MetricsExporter::Impl {
  std::unique_ptr<prometheus::Exposer> exposer;
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::shared_ptr<StoreCollector> store_collector;
  prometheus::Family<prometheus::Histogram>* rpc_duration = nullptr;
  absl::Mutex mu;
  std::map<std::pair<std::string, int>, prometheus::Histogram*> histograms ABSL_GUARDED_BY(mu);
};

MetricsExporter::MetricsExporter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MetricsExporter::~MetricsExporter() = default;

absl::StatusOr<std::unique_ptr<MetricsExporter>> MetricsExporter::Start(
    const std::string& listen, const TieredStore* store, const EngineLoadTable* engines) {
  auto impl = std::make_unique<Impl>();
  try {
    impl->exposer = std::make_unique<prometheus::Exposer>(listen);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("metrics: cannot listen on ", listen, ": ", e.what()));
  }
  impl->store_collector = std::make_shared<StoreCollector>(store, engines);
  impl->rpc_duration = &prometheus::BuildHistogram()
                            .Name("strata_rpc_duration_seconds")
                            .Help("Duration of CacheNode RPCs by method and gRPC code.")
                            .Register(*impl->registry);
  impl->exposer->RegisterCollectable(impl->registry);
  impl->exposer->RegisterCollectable(impl->store_collector);
  return std::unique_ptr<MetricsExporter>(new MetricsExporter(std::move(impl)));
}

void MetricsExporter::WatchLocalPlane(const ShmServer* local) {
  impl_->store_collector->set_local(local);
}

void MetricsExporter::WatchAuth(const common::TokenAuthenticator* auth) {
  impl_->store_collector->set_auth(auth);
}

int MetricsExporter::port() const {
  const std::vector<int> ports = impl_->exposer->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

void MetricsExporter::OnRpcDone(std::string_view method, absl::Duration elapsed, int grpc_code) {
  prometheus::Histogram* h;
  {
    absl::MutexLock lock(&impl_->mu);
    auto key = std::make_pair(std::string(method), grpc_code);
    auto it = impl_->histograms.find(key);
    if (it == impl_->histograms.end()) {
      // 100 us to ~100 s: chain gets of many MB take seconds on a loaded node.
      static const prometheus::Histogram::BucketBoundaries kBuckets = {
          1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1, 3, 10, 30, 100};
      h = &impl_->rpc_duration->Add({{"method", key.first}, {"code", absl::StrCat(grpc_code)}},
                                    kBuckets);
      impl_->histograms.emplace(key, h);
    } else {
      h = it->second;
    }
  }
  h->Observe(absl::ToDoubleSeconds(elapsed));
}

}  // namespace strata::cachenode
