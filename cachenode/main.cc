// strata-cachenode: the per-node cache agent. flags -> options -> wiring -> signals.
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cachenode/metrics_exporter.h"
#include "cachenode/node.h"
#include "common/byte_size.h"
#include "common/command_line.h"
#include "common/fail_point.h"
#include "common/server_flags.h"
#include "common/status_macros.h"
#include "common/stop_signals.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7070",
          "gRPC address HOST:PORT (port 0 picks a free one)");
ABSL_FLAG(std::string, data_dir, "./strata-data",
          "Directory for the SSD tier (RocksDB) and the namespace list; created when missing");
ABSL_FLAG(
    std::string, hbm_bytes, "0",
    "HBM tier size (e.g. 8GiB); 0 disables it. Without a usable GPU it runs as hbm(emulated)");
ABSL_FLAG(std::string, dram_bytes, "1GiB", "DRAM tier size: one arena mapped at start");
ABSL_FLAG(std::string, ssd_bytes, "16GiB", "SSD tier capacity (payload bytes); 0 disables it");
ABSL_FLAG(std::string, max_block_bytes, "64MiB", "Largest block accepted");
ABSL_FLAG(std::string, metrics_listen, "", "Prometheus /metrics address HOST:PORT; empty: off");
ABSL_FLAG(std::vector<std::string>, namespaces, {"default"},
          "Comma-separated namespace names accepted from the start (more via RegisterNamespace)");
ABSL_FLAG(uint32_t, promote_after_hits, 2,
          "Hits in a lower tier before a block is copied up; 0: never");
ABSL_FLAG(bool, ssd_direct_io, true, "Direct I/O for the SSD tier (falls back where unsupported)");
ABSL_FLAG(
    std::string, router, "",
    "strata-router address HOST:PORT, or several router replicas HOST:PORT,HOST:PORT,...: "
    "register, heartbeat and stream tier events to each; empty: off");
ABSL_FLAG(std::string, node_id, "", "Node name given to the router; empty: this host's name");
ABSL_FLAG(std::string, advertise, "",
          "HOST:PORT the router gives clients for this node; empty: the bound listen address "
          "(required when --listen is a wildcard such as 0.0.0.0)");
ABSL_FLAG(absl::Duration, heartbeat_interval, absl::Seconds(1),
          "How often the node heartbeats its load to the router (e.g. 100ms, 500ms, 1s)");
ABSL_FLAG(std::string, resp_listen, "",
          "RESP (Redis protocol) address HOST:PORT for redis-cli, redis-benchmark and LMCache's "
          "redis:// backend (GET/SET/MGET/EXISTS/DEL/PING/INFO); port 0 picks a free one; empty: off");
ABSL_FLAG(std::string, resp_namespace, "default",
          "Namespace RESP keys are stored in; must be one of --namespaces");
ABSL_FLAG(std::string, local_socket, "",
          "Unix socket PATH of the same-node shared-memory data plane: engines on this machine "
          "map the DRAM tier's memfd arena and get/put blocks by offset (needs --dram-bytes > 0); "
          "empty: off");
ABSL_FLAG(uint32_t, resp_max_clients, 1024,
          "RESP connections at once; further ones get '-ERR max number of clients reached' and "
          "are closed (each costs a descriptor and buffers)");
ABSL_FLAG(uint32_t, local_max_clients, 64,
          "Shared-memory (--local-socket) clients at once, one node thread each; further ones "
          "are refused with RESOURCE_EXHAUSTED");
ABSL_FLAG(absl::Duration, local_lease_ttl, absl::Seconds(30),
          "How long a shared-memory read lease or put reservation lives unless released; a "
          "client that disconnects loses its leases at once");
ABSL_FLAG(absl::Duration, engine_load_ttl, absl::ZeroDuration(),
          "How long an engine's ReportEngineLoad counts in the node's heartbeats; engines must "
          "report more often. Shorter drops a dead engine's load sooner, but makes a late report "
          "vanish from the node's load. 0: three heartbeat intervals");

ABSL_FLAG(std::string, router_cacert, "",
          "PEM CA that signed the router's certificate: turns on TLS to --router");
ABSL_FLAG(std::string, router_cert, "",
          "PEM client certificate for mutual TLS to the router (with --router-key)");
ABSL_FLAG(std::string, router_key, "", "PEM private key of --router-cert");
ABSL_FLAG(std::string, router_token_file, "",
          "File holding the bearer token (role node) sent to the router; the environment variable "
          "STRATA_ROUTER_TOKEN may hold it instead");

namespace strata::cachenode {
namespace {

absl::StatusOr<uint64_t> SizeFlag(const char* flag, const std::string& value) {
  auto v = common::ParseByteSize(value);
  if (!v.ok())
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", v.status().message()));
  return *v;
}

absl::StatusOr<NodeOptions> OptionsFromFlags(uint64_t start_ns) {
  NodeOptions o;
  o.listen = absl::GetFlag(FLAGS_listen);
  o.data_dir = absl::GetFlag(FLAGS_data_dir);
  STRATA_ASSIGN_OR_RETURN(o.hbm_bytes, SizeFlag("hbm-bytes", absl::GetFlag(FLAGS_hbm_bytes)));
  STRATA_ASSIGN_OR_RETURN(o.dram_bytes, SizeFlag("dram-bytes", absl::GetFlag(FLAGS_dram_bytes)));
  STRATA_ASSIGN_OR_RETURN(o.ssd.capacity_bytes,
                          SizeFlag("ssd-bytes", absl::GetFlag(FLAGS_ssd_bytes)));
  STRATA_ASSIGN_OR_RETURN(o.store.max_block_bytes,
                          SizeFlag("max-block-bytes", absl::GetFlag(FLAGS_max_block_bytes)));
  o.store.promote_after_hits = absl::GetFlag(FLAGS_promote_after_hits);
  o.ssd.use_direct_io = absl::GetFlag(FLAGS_ssd_direct_io);
  o.namespaces = absl::GetFlag(FLAGS_namespaces);
  if (o.data_dir.empty()) return absl::InvalidArgumentError("--data-dir is empty");
  o.router.router = absl::GetFlag(FLAGS_router);
  if (o.router.enabled()) {
    o.router.node_id = absl::GetFlag(FLAGS_node_id);
    if (o.router.node_id.empty()) {
      char host[256] = {};
      if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
        return absl::InvalidArgumentError("--node-id not given and the hostname is unknown");
      }
      o.router.node_id = host;
    }
    o.router.advertise = absl::GetFlag(FLAGS_advertise);
    if (o.router.advertise.empty()) {
      const std::string host = o.listen.substr(0, o.listen.rfind(':'));
      if (host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]") {
        return absl::InvalidArgumentError(absl::StrCat(
            "--listen ", o.listen, " is a wildcard address: give --advertise HOST:PORT"));
      }
    }
    o.router.heartbeat_interval = absl::GetFlag(FLAGS_heartbeat_interval);
    o.router.security.ca_file = absl::GetFlag(FLAGS_router_cacert);
    o.router.security.cert_file = absl::GetFlag(FLAGS_router_cert);
    o.router.security.key_file = absl::GetFlag(FLAGS_router_key);
    if (const std::string file = absl::GetFlag(FLAGS_router_token_file); !file.empty()) {
      STRATA_ASSIGN_OR_RETURN(o.router.security.token, common::ReadTokenFile(file));
    } else if (const char* env = std::getenv("STRATA_ROUTER_TOKEN"); env != nullptr) {
      o.router.security.token = env;
    }
    o.router.epoch = start_ns;  // a restart gets a larger epoch, so the router drops the old life
  }
  o.engines.ttl = absl::GetFlag(FLAGS_engine_load_ttl);
  o.local_socket = absl::GetFlag(FLAGS_local_socket);
  o.local.lease_ttl = absl::GetFlag(FLAGS_local_lease_ttl);
  o.local.max_clients = absl::GetFlag(FLAGS_local_max_clients);
  o.resp.max_clients = absl::GetFlag(FLAGS_resp_max_clients);
  o.resp_listen = absl::GetFlag(FLAGS_resp_listen);
  o.resp.namespace_name = absl::GetFlag(FLAGS_resp_namespace);
  o.security = common::ServerSecurityOptionsFromFlags();
  o.health_listen = common::HealthListenFromFlags();
  STRATA_RETURN_IF_ERROR(o.Validate());
  return o;
}

int Run() {
  // Debian's Abseil checks every mutex acquisition for lock-order cycles, a measurable CPU cost on
  // hot paths; lock order is exercised by the unit tests instead.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const uint64_t start_ns = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  auto options = OptionsFromFlags(start_ns);
  if (!options.ok()) {
    std::cerr << "strata-cachenode: " << options.status().message() << "\n";
    return 2;
  }
  // Blocked in every thread (started after this); the main thread takes them below.
  const sigset_t stop_signals = common::BlockStopSignals();

  auto node = Node::Create(*options);
  if (!node.ok()) {
    std::cerr << "strata-cachenode: " << node.status().message() << "\n";
    return 2;
  }
  const std::string metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  std::unique_ptr<MetricsExporter> metrics;
  if (!metrics_listen.empty()) {
    auto m = MetricsExporter::Start(metrics_listen, (*node)->store(), (*node)->engine_loads());
    if (!m.ok()) {
      std::cerr << "strata-cachenode: " << m.status().message() << "\n";
      return 2;
    }
    metrics = std::move(*m);
  }
  if (absl::Status s = (*node)->Serve(metrics.get()); !s.ok()) {
    std::cerr << "strata-cachenode: " << s.message() << "\n";
    return 2;
  }
  if (metrics && (*node)->local_server() != nullptr) {
    metrics->WatchLocalPlane((*node)->local_server());
  }
  if (metrics && (*node)->authenticator() != nullptr) metrics->WatchAuth((*node)->authenticator());
  if (metrics) {
    std::cerr << "strata-cachenode: metrics on http://"
              << metrics_listen.substr(0, metrics_listen.rfind(':')) << ":" << metrics->port()
              << "/metrics\n";
  }
  std::cout << "strata-cachenode serving on " << (*node)->address() << std::endl;
  if ((*node)->local_server() != nullptr) {
    std::cout << "strata-cachenode local socket " << (*node)->local_server()->socket_path()
              << std::endl;
  }
  if ((*node)->resp_port() != 0) {
    const std::string& resp = options->resp_listen;
    std::cout << "strata-cachenode RESP serving on " << resp.substr(0, resp.rfind(':')) << ":"
              << (*node)->resp_port() << std::endl;
  }

  std::cerr << "strata-cachenode: " << common::WaitForStopSignal(stop_signals)
            << ": draining (no new RPCs, flushing write-behind)\n";
  if (absl::Status d = (*node)->Shutdown(absl::Seconds(10)); !d.ok()) {
    std::cerr << "strata-cachenode: drain failed: " << d.message() << "\n";
    return 1;
  }
  const StoreStats end = (*node)->store()->Stats();
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
      "      --dram-bytes 8GiB --ssd-bytes 200GiB [--hbm-bytes 4GiB] [--metrics-listen "
      "0.0.0.0:9100]\n"
      "      [--router ROUTER:PORT[,ROUTER:PORT...] --node-id NAME --advertise HOST:PORT]\n\n"
      "Sizes take B, KiB, MiB, GiB, TiB (or kB, MB, GB, TB). Prints 'strata-cachenode serving on\n"
      "HOST:PORT' on stdout once serving; logs go to stderr. SIGTERM or SIGINT drains: stops\n"
      "accepting RPCs, persists pending blocks to SSD, exits 0. Exit 2: bad flags or a startup\n"
      "failure (one line on stderr). With --router the node registers with strata-router,\n"
      "heartbeats its load (plus what engines on the node report through ReportEngineLoad)\n"
      "and streams its tier events; an unreachable router is retried. With --resp-listen it\n"
      "also speaks the Redis protocol (RESP2) and prints 'strata-cachenode RESP serving on\n"
      "HOST:PORT' after the serving line; keys map into --resp-namespace. With --local-socket PATH\n"
      "engines on this machine reach the DRAM tier through shared memory (the socket carries\n"
      "only offsets) and it prints 'strata-cachenode local socket PATH' after the serving line.\n"
      "Transport security is required or explicitly waived: --tls-cert/--tls-key (plus\n"
      "--tls-client-ca for mutual TLS, --auth-tokens-file for bearer tokens), or --plaintext.";
  spec.flags = {
      "listen",          "data_dir",       "hbm_bytes",  "dram_bytes",         "ssd_bytes",
      "max_block_bytes", "metrics_listen", "namespaces", "promote_after_hits", "ssd_direct_io",
      "router",          "node_id",        "advertise",  "heartbeat_interval", "engine_load_ttl",
      "resp_listen",     "resp_namespace", "local_socket", "local_lease_ttl",
      "resp_max_clients", "local_max_clients"};
  for (const std::string& f : strata::common::ServerSecurityFlagNames()) spec.flags.push_back(f);
  for (const char* f : {"router_cacert", "router_cert", "router_key", "router_token_file"}) {
    spec.flags.push_back(f);
  }
  const std::vector<std::string> rest = strata::common::ParseCommandLineOrExit(spec, argc, argv);
  if (!rest.empty()) {
    std::cerr << "strata-cachenode: unexpected argument '" << rest[0] << "' (see --help)\n";
    return 2;
  }
  // Test builds only: faults a test asked for through STRATA_FAIL_POINTS (common/fail_point.h).
  if (absl::Status armed = strata::common::FailPoints::Global().ArmFromEnvironment(); !armed.ok()) {
    std::cerr << "strata-cachenode: " << armed.message() << "\n";
    return 2;
  }
  return strata::cachenode::Run();
}
