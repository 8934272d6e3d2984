// strata-cachenode: the per-node cache agent. flags -> options -> wiring -> signals.
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cachenode/cache_node_service.h"
#include "cachenode/memory_backend.h"
#include "cachenode/memory_tier.h"
#include "cachenode/metrics_exporter.h"
#include "cachenode/namespace_registry.h"
#include "cachenode/ssd_tier.h"
#include "cachenode/tiered_store.h"
#include "common/byte_size.h"
#include "common/command_line.h"
#include "common/periodic_loop.h"
#include "common/status_macros.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7070", "gRPC address HOST:PORT (port 0 picks a free one)");
ABSL_FLAG(std::string, data_dir, "./strata-data",
          "Directory for the SSD tier (RocksDB) and the namespace list; created when missing");
ABSL_FLAG(std::string, hbm_bytes, "0",
          "HBM tier size (e.g. 8GiB); 0 disables it. Without a usable GPU it runs as hbm(emulated)");
ABSL_FLAG(std::string, dram_bytes, "1GiB", "DRAM tier size: one arena mapped at start");
ABSL_FLAG(std::string, ssd_bytes, "16GiB", "SSD tier capacity (payload bytes); 0 disables it");
ABSL_FLAG(std::string, max_block_bytes, "64MiB", "Largest block accepted");
ABSL_FLAG(std::string, metrics_listen, "", "Prometheus /metrics address HOST:PORT; empty: off");
ABSL_FLAG(std::vector<std::string>, namespaces, {"default"},
          "Comma-separated namespace names accepted from the start (more via RegisterNamespace)");
ABSL_FLAG(uint32_t, promote_after_hits, 2, "Hits in a lower tier before a block is copied up; 0: never");
ABSL_FLAG(bool, ssd_direct_io, true, "Direct I/O for the SSD tier (falls back where unsupported)");

namespace strata::cachenode {
namespace {

// Everything the binary configures, validated once.
struct NodeOptions {
  std::string listen;
  std::string data_dir;
  std::string metrics_listen;
  uint64_t hbm_bytes = 0;
  uint64_t dram_bytes = 0;
  SsdTierOptions ssd;
  TieredStoreOptions store;
  CacheNodeServiceOptions service;
  std::vector<std::string> namespaces;
};

absl::StatusOr<uint64_t> SizeFlag(const char* flag, const std::string& value) {
  auto v = common::ParseByteSize(value);
  if (!v.ok()) return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", v.status().message()));
  return *v;
}

absl::StatusOr<NodeOptions> OptionsFromFlags() {
  NodeOptions o;
  o.listen = absl::GetFlag(FLAGS_listen);
  o.data_dir = absl::GetFlag(FLAGS_data_dir);
  o.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  STRATA_ASSIGN_OR_RETURN(o.hbm_bytes, SizeFlag("hbm-bytes", absl::GetFlag(FLAGS_hbm_bytes)));
  STRATA_ASSIGN_OR_RETURN(o.dram_bytes, SizeFlag("dram-bytes", absl::GetFlag(FLAGS_dram_bytes)));
  STRATA_ASSIGN_OR_RETURN(o.ssd.capacity_bytes, SizeFlag("ssd-bytes", absl::GetFlag(FLAGS_ssd_bytes)));
  STRATA_ASSIGN_OR_RETURN(o.store.max_block_bytes,
                          SizeFlag("max-block-bytes", absl::GetFlag(FLAGS_max_block_bytes)));
  o.store.promote_after_hits = absl::GetFlag(FLAGS_promote_after_hits);
  o.ssd.use_direct_io = absl::GetFlag(FLAGS_ssd_direct_io);
  o.ssd.path = (std::filesystem::path(o.data_dir) / "ssd").string();
  o.namespaces = absl::GetFlag(FLAGS_namespaces);
  if (o.listen.empty()) return absl::InvalidArgumentError("--listen is empty");
  if (o.data_dir.empty()) return absl::InvalidArgumentError("--data-dir is empty");
  if (o.hbm_bytes + o.dram_bytes + o.ssd.capacity_bytes == 0) {
    return absl::InvalidArgumentError("every tier is 0 bytes: give --dram-bytes or --ssd-bytes");
  }
  STRATA_RETURN_IF_ERROR(o.store.Validate());
  return o;
}

// The data dir must exist and take writes before anything else starts.
absl::Status PrepareDataDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("data dir ", dir, " cannot be created: ", ec.message()));
  }
  const std::string probe = (std::filesystem::path(dir) / ".write-probe").string();
  {
    std::ofstream out(probe);
    out << "ok";
    if (!out.good()) {
      return absl::FailedPreconditionError(absl::StrCat("data dir ", dir, " is not writable"));
    }
  }
  std::filesystem::remove(probe, ec);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Tier>> MakeHbmTier(uint64_t bytes) {
  auto gpu = CreateGpuMemory(bytes);
  if (gpu.ok()) {
    auto tier = std::make_unique<MemoryTier>(MemoryTierOptions{TierKind::kHbm, "hbm", false},
                                             std::move(*gpu));
    std::cerr << "strata-cachenode: hbm: " << tier->DescribeMemory() << "\n";
    return std::unique_ptr<Tier>(std::move(tier));
  }
  std::cerr << "strata-cachenode: hbm(emulated): no usable GPU (" << gpu.status().message()
            << "); the HBM tier runs on host memory and is reported as hbm(emulated)\n";
  STRATA_ASSIGN_OR_RETURN(auto host, CreateHostMemory({bytes, /*shared_memfd=*/false,
                                                       /*pin_for_gpu=*/false, "strata-hbm"}));
  return std::unique_ptr<Tier>(std::make_unique<MemoryTier>(
      MemoryTierOptions{TierKind::kHbm, "hbm(emulated)", true}, std::move(host)));
}

int Run() {
  auto options = OptionsFromFlags();
  if (!options.ok()) {
    std::cerr << "strata-cachenode: " << options.status().message() << "\n";
    return 2;
  }
  const NodeOptions& o = *options;
  if (absl::Status s = PrepareDataDir(o.data_dir); !s.ok()) {
    std::cerr << "strata-cachenode: " << s.message() << "\n";
    return 2;
  }

  // Block the stop signals in every thread; the main thread takes them with sigwait below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  StoreTiers tiers;
  if (o.hbm_bytes > 0) {
    auto hbm = MakeHbmTier(o.hbm_bytes);
    if (!hbm.ok()) {
      std::cerr << "strata-cachenode: hbm: " << hbm.status().message() << "\n";
      return 2;
    }
    tiers.hbm = std::move(*hbm);
  }
  if (o.dram_bytes > 0) {
    auto dram = CreateHostMemory({o.dram_bytes, true, true, "strata-dram"});
    if (!dram.ok()) {
      std::cerr << "strata-cachenode: dram: " << dram.status().message() << "\n";
      return 2;
    }
    auto tier = std::make_unique<MemoryTier>(MemoryTierOptions{}, std::move(*dram));
    std::cerr << "strata-cachenode: dram: " << tier->DescribeMemory() << "\n";
    tiers.dram = std::move(tier);
  }
  if (o.ssd.capacity_bytes > 0) {
    auto ssd = SsdTier::Open(o.ssd);
    if (!ssd.ok()) {
      std::cerr << "strata-cachenode: ssd: " << ssd.status().message() << "\n";
      return 2;
    }
    std::cerr << "strata-cachenode: ssd: " << o.ssd.path << ", "
              << common::FormatByteSize(o.ssd.capacity_bytes)
              << ((*ssd)->direct_io() ? ", direct I/O" : ", buffered I/O") << "\n";
    tiers.ssd = std::move(*ssd);
  }
  auto store = TieredStore::Open(o.store, std::move(tiers));
  if (!store.ok()) {
    std::cerr << "strata-cachenode: " << store.status().message() << "\n";
    return 2;
  }
  auto namespaces = NamespaceRegistry::Open(
      (std::filesystem::path(o.data_dir) / "namespaces").string(), o.namespaces);
  if (!namespaces.ok()) {
    std::cerr << "strata-cachenode: --namespaces: " << namespaces.status().message() << "\n";
    return 2;
  }
  const StoreStats recovered = (*store)->Stats();
  std::cerr << "strata-cachenode: recovered " << recovered.blocks << " blocks from the SSD tier\n";

  std::unique_ptr<MetricsExporter> metrics;
  if (!o.metrics_listen.empty()) {
    auto m = MetricsExporter::Start(o.metrics_listen, store->get());
    if (!m.ok()) {
      std::cerr << "strata-cachenode: " << m.status().message() << "\n";
      return 2;
    }
    metrics = std::move(*m);
  }
  CacheNodeService service(store->get(), namespaces->get(), o.service, metrics.get());
  auto server = StartNodeServer(o.listen, &service);
  if (!server.ok()) {
    std::cerr << "strata-cachenode: " << server.status().message() << "\n";
    return 2;
  }
  TieredStore* s = store->get();
  common::PeriodicLoop write_behind([s] { return s->FlushWriteBehind() > 0; },
                                    absl::Milliseconds(20));
  write_behind.Start();

  const std::string host = o.listen.substr(0, o.listen.rfind(':'));
  std::cout << "strata-cachenode serving on " << host << ":" << server->port << std::endl;
  if (metrics) std::cerr << "strata-cachenode: metrics on http://" << o.metrics_listen << "/metrics\n";

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::cerr << "strata-cachenode: " << (sig == SIGTERM ? "SIGTERM" : "SIGINT")
            << ": draining (no new RPCs, flushing write-behind)\n";
  server->server->GetHealthCheckService()->SetServingStatus(false);
  // In-flight RPCs get up to 10 s to finish. Shutdown is then immediate: gRPC's graceful shutdown
  // would otherwise also wait (seconds) for idle client connections to go away.
  if (!service.WaitUntilIdle(absl::Seconds(10))) {
    std::cerr << "strata-cachenode: RPCs still running after 10 s; cancelling them\n";
  }
  server->server->Shutdown(std::chrono::system_clock::now());
  write_behind.Stop();
  if (absl::Status d = s->Drain(); !d.ok()) {
    std::cerr << "strata-cachenode: drain failed: " << d.message() << "\n";
    return 1;
  }
  const StoreStats end = s->Stats();
  std::cerr << "strata-cachenode: drained: " << end.persisted_blocks << " blocks on SSD, "
            << end.write_behind_pending << " not persisted\n";
  return 0;
}

}  // namespace
}  // namespace strata::cachenode

int main(int argc, char** argv) {
  strata::common::CommandLineSpec spec;
  spec.program = "strata-cachenode";
  spec.usage =
      "strata-cachenode: the Strata cache agent. Serves KV-cache blocks from HBM, DRAM and SSD\n"
      "tiers over gRPC (service strata.v1.CacheNode, grpc.health.v1, reflection).\n\n"
      "  strata-cachenode --listen 127.0.0.1:7070 --data-dir /var/lib/strata \\\n"
      "      --dram-bytes 8GiB --ssd-bytes 200GiB [--hbm-bytes 4GiB] [--metrics-listen 0.0.0.0:9100]\n\n"
      "Sizes take B, KiB, MiB, GiB, TiB (or kB, MB, GB, TB). Prints 'strata-cachenode serving on\n"
      "HOST:PORT' on stdout once serving; logs go to stderr. SIGTERM or SIGINT drains: stops\n"
      "accepting RPCs, persists pending blocks to SSD, exits 0. Exit 2: bad flags or a startup\n"
      "failure (one line on stderr).";
  spec.flags = {"listen",        "data_dir",        "hbm_bytes",          "dram_bytes",
                "ssd_bytes",     "max_block_bytes", "metrics_listen",     "namespaces",
                "promote_after_hits", "ssd_direct_io"};
  const std::vector<std::string> rest = strata::common::ParseCommandLineOrExit(spec, argc, argv);
  if (!rest.empty()) {
    std::cerr << "strata-cachenode: unexpected argument '" << rest[0] << "' (see --help)\n";
    return 2;
  }
  return strata::cachenode::Run();
}
