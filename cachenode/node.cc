#include "cachenode/node.h"

#include <malloc.h>

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "cachenode/memory_backend.h"
#include "cachenode/memory_tier.h"
#include "common/byte_size.h"
#include "common/namespace_id.h"
#include "common/status_macros.h"
#include "common/string_view_interop.h"

namespace strata::cachenode {
namespace {

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

// Opens the SSD tier. A store RocksDB calls corrupt (DataLoss) is moved aside to
// DIR/ssd.corrupt-<unix-seconds> and the tier starts empty: it is a cache, so losing its blocks
// beats refusing to serve. Only the newest such directory is kept, so repeated corruption cannot
// fill the disk with them. Any other open error is returned (fatal, as before).
absl::StatusOr<std::unique_ptr<SsdTier>> OpenSsdTier(const SsdTierOptions& options) {
  absl::StatusOr<std::unique_ptr<SsdTier>> ssd = SsdTier::Open(options);
  if (ssd.ok() || !absl::IsDataLoss(ssd.status())) return ssd;
  const std::filesystem::path path(options.path);
  const std::filesystem::path dir = path.parent_path();
  const std::string prefix = path.filename().string() + ".corrupt-";
  const std::filesystem::path aside =
      dir / absl::StrCat(prefix, absl::ToUnixSeconds(absl::Now()));
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().filename().string().rfind(prefix, 0) == 0) {
      std::filesystem::remove_all(entry.path(), ec);  // only the newest is kept: this one
    }
  }
  std::filesystem::rename(path, aside, ec);
  if (ec) {
    return absl::DataLossError(absl::StrCat(ssd.status().message(), "; moving it aside to ",
                                            aside.string(), " failed: ", ec.message()));
  }
  std::cerr << "strata-cachenode: ssd: store at " << options.path
            << " is corrupt; moved it to " << aside.string()
            << " and starting with an empty SSD tier (" << ssd.status().message() << ")\n";
  return SsdTier::Open(options);
}

absl::Status Annotate(const absl::Status& s, std::string_view what) {
  return absl::Status(s.code(), absl::StrCat(common::ToAbsl(what), ": ", s.message()));
}

// The engine load options with the TTL resolved: 0 means three heartbeat intervals.
EngineLoadOptions ResolvedEngineLoadOptions(const NodeOptions& o) {
  EngineLoadOptions e = o.engines;
  if (e.ttl == absl::ZeroDuration()) e.ttl = 3 * o.router.heartbeat_interval;
  return e;
}

// The router replicas of a "HOST:PORT[,HOST:PORT...]" list, blanks dropped.
std::vector<std::string> RouterReplicas(const std::string& list) {
  std::vector<std::string> out;
  for (absl::string_view r : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
    out.push_back(std::string(absl::StripAsciiWhitespace(r)));
  }
  return out;
}

// A listen host that names no reachable address: the router cannot hand it to clients.
bool IsWildcardHost(const std::string& listen) {
  const std::string host = listen.substr(0, listen.rfind(':'));
  return host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]";
}

}  // namespace

absl::Status NodeOptions::Validate() const {
  if (listen.empty()) return absl::InvalidArgumentError("listen address is empty");
  STRATA_RETURN_IF_ERROR(security.Validate());
  if (hbm_bytes + dram_bytes + ssd.capacity_bytes == 0) {
    return absl::InvalidArgumentError("every tier is 0 bytes: give DRAM or SSD bytes");
  }
  if (ssd.capacity_bytes > 0 && data_dir.empty() && ssd.path.empty()) {
    return absl::InvalidArgumentError("an SSD tier needs a data dir");
  }
  if (router.enabled()) {
    RouterLinkOptions link = router;
    if (link.advertise.empty()) {
      if (IsWildcardHost(listen)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "listen address ", listen,
            " is a wildcard: give the router an advertise address (HOST:PORT clients can reach)"));
      }
      link.advertise = listen;
    }
    const std::vector<std::string> replicas = RouterReplicas(router.router);
    if (replicas.empty()) return absl::InvalidArgumentError("router list has no address");
    for (const std::string& replica : replicas) {
      if (std::count(replicas.begin(), replicas.end(), replica) > 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("router ", replica, " is listed twice: one link per router replica"));
      }
      link.router = replica;
      if (absl::Status s = link.Validate(); !s.ok()) return Annotate(s, "router link");
    }
  }
  if (absl::Status s = ResolvedEngineLoadOptions(*this).Validate(); !s.ok()) {
    return Annotate(s, "engine load");
  }
  if (!resp_listen.empty()) {
    RespServerOptions r = resp;
    r.listen = resp_listen;
    STRATA_RETURN_IF_ERROR(r.Validate());
    if (absl::Status s = common::ValidateNamespaceName(resp.namespace_name); !s.ok()) {
      return Annotate(s, "RESP namespace");
    }
  }
  if (!local_socket.empty()) {
    if (dram_bytes == 0) {
      return absl::InvalidArgumentError(
          "the local socket needs a DRAM tier (DRAM bytes > 0): engines map its memfd arena");
    }
    ShmServerOptions l = local;
    l.socket_path = local_socket;
    if (absl::Status s = l.Validate(); !s.ok()) return Annotate(s, "local socket");
    if (local_expiry_interval <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError("local_expiry_interval must be > 0");
    }
  }
  return store.Validate();
}

absl::StatusOr<std::unique_ptr<Node>> Node::Create(const NodeOptions& options) {
  STRATA_RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<Node> node(new Node(options));
  NodeOptions& o = node->options_;
  if (!o.data_dir.empty()) {
    STRATA_RETURN_IF_ERROR(PrepareDataDir(o.data_dir));
    if (o.ssd.path.empty()) o.ssd.path = (std::filesystem::path(o.data_dir) / "ssd").string();
  }
  StoreTiers tiers;
  if (o.hbm_bytes > 0) {
    auto hbm = MakeHbmTier(o.hbm_bytes);
    if (!hbm.ok()) return Annotate(hbm.status(), "hbm");
    tiers.hbm = std::move(*hbm);
  }
  if (o.dram_bytes > 0) {
    // A memfd so co-located engines can map the arena; pinned for DMA when a GPU is usable.
    auto dram = CreateHostMemory({o.dram_bytes, true, true, "strata-dram"});
    if (!dram.ok()) return Annotate(dram.status(), "dram");
    auto tier = std::make_unique<MemoryTier>(MemoryTierOptions{}, std::move(*dram));
    std::cerr << "strata-cachenode: dram: " << tier->DescribeMemory() << "\n";
    tiers.dram = std::move(tier);
  }
  if (o.ssd.capacity_bytes > 0) {
    auto ssd = OpenSsdTier(o.ssd);
    if (!ssd.ok()) return ssd.status();
    std::cerr << "strata-cachenode: ssd: " << o.ssd.path << ", "
              << common::FormatByteSize(o.ssd.capacity_bytes)
              << ((*ssd)->direct_io() ? ", direct I/O" : ", buffered I/O") << "\n";
    tiers.ssd = std::move(*ssd);
  }
  STRATA_ASSIGN_OR_RETURN(node->store_, TieredStore::Open(o.store, std::move(tiers)));
  const std::string ns_file =
      o.data_dir.empty() ? "" : (std::filesystem::path(o.data_dir) / "namespaces").string();
  auto namespaces = NamespaceRegistry::Open(ns_file, o.namespaces);
  if (!namespaces.ok()) return Annotate(namespaces.status(), "namespaces");
  node->namespaces_ = std::move(*namespaces);
  node->engine_loads_ = std::make_unique<EngineLoadTable>(ResolvedEngineLoadOptions(o));
  std::cerr << "strata-cachenode: recovered " << node->store_->Stats().blocks
            << " blocks from the SSD tier\n";
  return node;
}

absl::Status Node::Serve(RpcObserver* observer) {
  if (service_ != nullptr) return absl::FailedPreconditionError("node already serving");
  service_ = std::make_unique<CacheNodeService>(store_.get(), namespaces_.get(),
                                                engine_loads_.get(), options_.service, observer);
  STRATA_ASSIGN_OR_RETURN(security_, common::MakeServerSecurity(options_.security, NodeMethodRoles()));
  STRATA_ASSIGN_OR_RETURN(server_,
                          StartNodeServer(options_.listen, service_.get(), security_.credentials));
  std::cerr << "strata-cachenode: gRPC on port " << server_.port << ": " << security_.description
            << "\n";
  if (!options_.health_listen.empty()) {
    absl::StatusOr<common::GrpcServer> health = common::StartHealthServer(options_.health_listen);
    if (!health.ok()) return Annotate(health.status(), "health port");
    health_ = std::move(*health);
  }
  TieredStore* store = store_.get();
  // After a burst of write-behind, glibc keeps the freed batch buffers (RocksDB write batches and
  // memtables, tens of MiB each) as heap it may reuse; handing them back once the burst is over
  // keeps the node's resident memory near its tiers' sizes (bench/RESULTS.md, resident memory).
  write_behind_ = std::make_unique<common::PeriodicLoop>(
      [store, busy = false]() mutable {
        if (store->FlushWriteBehind() > 0) {
          busy = true;
          return true;
        }
        if (busy) malloc_trim(0);
        busy = false;
        return false;
      },
      options_.write_behind_idle);
  write_behind_->Start();
  if (!options_.local_socket.empty()) {
    ShmServerOptions local = options_.local;
    local.socket_path = options_.local_socket;
    auto started = ShmServer::Start(local, store_.get(), namespaces_.get(), common::Clock::Real());
    if (!started.ok()) return Annotate(started.status(), "local socket");
    local_ = std::move(*started);
    ShmServer* server = local_.get();
    local_expiry_ = std::make_unique<common::PeriodicLoop>(
        [server] {
          server->ExpireLeases();
          return false;  // once per interval: expiry is not a backlog to work off
        },
        options_.local_expiry_interval);
    local_expiry_->Start();
  }
  if (!options_.resp_listen.empty()) {
    RespServerOptions resp = options_.resp;
    resp.listen = options_.resp_listen;
    const common::NamespaceId ns = common::NamespaceIdOf(resp.namespace_name);
    if (!namespaces_->Check(ns).ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("RESP namespace '", resp.namespace_name,
                       "' is not one of the node's namespaces (add it to --namespaces)"));
    }
    STRATA_ASSIGN_OR_RETURN(resp_, RespServer::Start(resp, store_.get(), ns));
  }
  if (options_.router.enabled()) {
    RouterLinkOptions link = options_.router;
    if (link.advertise.empty()) link.advertise = address();
    CacheNodeService* service = service_.get();
    auto running_requests = [service]() -> uint32_t {
      return static_cast<uint32_t>(std::max(0, service->InflightRpcs()));
    };
    // Every replica must hear the same epoch, or they would disagree on which life is current.
    if (link.epoch == 0) {
      link.epoch = static_cast<uint64_t>(std::max<int64_t>(1, absl::ToUnixNanos(absl::Now())));
    }
    const std::vector<std::string> replicas = RouterReplicas(options_.router.router);
    // One router keeps the link's buffer as the store's sink (no forwarding on the put path).
    if (replicas.size() > 1) {
      router_fanout_ = std::make_unique<BlockEventFanout>();
      store->SetEventSink(router_fanout_.get());
    }
    for (const std::string& replica : replicas) {
      link.router = replica;
      STRATA_ASSIGN_OR_RETURN(std::unique_ptr<RouterLink> created,
                              RouterLink::Create(link, store, running_requests, engine_loads_.get(),
                                                 common::Clock::Real(), router_fanout_.get()));
      router_links_.push_back(std::move(created));
    }
    for (auto& l : router_links_) l->Start();
  }
  return absl::OkStatus();
}

std::string Node::address() const {
  const std::string host = options_.listen.substr(0, options_.listen.rfind(':'));
  return absl::StrCat(host, ":", server_.port);
}

absl::Status Node::Shutdown(absl::Duration grace) {
  if (local_ != nullptr) {
    // First: engines' leases pin the store's memory; they all go (engines see the socket close).
    local_expiry_->Stop();
    local_expiry_.reset();
    local_->Stop();
    local_.reset();
  }
  if (resp_ != nullptr) {
    // First: RESP clients have no drain protocol; their connections simply close.
    resp_->Stop();
    resp_.reset();
  }
  if (!router_links_.empty()) {
    // First, so the routers stop sending work here while in-flight RPCs finish.
    for (auto& l : router_links_) l->Shutdown();
    router_links_.clear();
    if (router_fanout_ != nullptr) {
      store_->SetEventSink(nullptr);
      router_fanout_.reset();
    }
  }
  if (health_.server != nullptr) {
    health_.server->GetHealthCheckService()->SetServingStatus(false);
    health_.server->Shutdown(std::chrono::system_clock::now());
    health_.server.reset();
  }
  if (server_.server != nullptr) {
    server_.server->GetHealthCheckService()->SetServingStatus(false);
    // In-flight RPCs get `grace` to finish. Shutdown is then immediate: gRPC's graceful shutdown
    // would otherwise also wait (seconds) for idle client connections to go away.
    if (!service_->WaitUntilIdle(grace)) {
      std::cerr << "strata-cachenode: RPCs still running after " << absl::FormatDuration(grace)
                << "; cancelling them\n";
    }
    server_.server->Shutdown(std::chrono::system_clock::now());
    server_.server.reset();
  }
  if (write_behind_ != nullptr) {
    write_behind_->Stop();
    write_behind_.reset();
  }
  return store_ != nullptr ? store_->Drain() : absl::OkStatus();
}

Node::~Node() {
  if (absl::Status s = Shutdown(); !s.ok()) {
    std::cerr << "strata-cachenode: drain failed: " << s.message() << "\n";
  }
}

}  // namespace strata::cachenode
