// strata-router: the central router. flags -> options -> wiring -> signals.

#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "common/command_line.h"
#include "common/fail_point.h"
#include "common/grpc_server.h"
#include "common/periodic_loop.h"
#include "common/server_flags.h"
#include "common/status_macros.h"
#include "common/stop_signals.h"
#include "router/metrics_exporter.h"
#include "router/router_core.h"
#include "router/router_service.h"
#include "router/vllm_source.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7080",
          "gRPC address HOST:PORT (port 0 picks a free one)");
ABSL_FLAG(std::string, metrics_listen, "", "Prometheus /metrics address HOST:PORT; empty: off");
ABSL_FLAG(std::string, policy, "locality",
          "Routing policy when no experiment is set: locality, round_robin, random, least_loaded "
          "or consistent_hash");
ABSL_FLAG(std::string, experiment, "",
          "A/B split across policies, e.g. 'locality=50,round_robin=50' (deterministic by session "
          "key, else request id); overrides --policy");
ABSL_FLAG(
    std::string, cost_model, "",
    "Cost model JSON (see router/cost_model_h100_llama3_8b.json); empty: that file's figures, "
    "compiled in");
ABSL_FLAG(std::string, node_ttl, "3s",
          "Heartbeat silence after which a node and its index entries are removed (e.g. 3s, "
          "500ms); nodes are asked to heartbeat every third of it");
ABSL_FLAG(std::string, route_memory, "30s",
          "How long a chain routed to a node counts as held there before its events confirm it "
          "(keeps bursts that share a new prefix together); 0 disables");
ABSL_FLAG(std::vector<std::string>, vllm_events, {},
          "Subscribe to a vLLM engine's KV event stream: tcp://HOST:PORT=NODE_ID (repeatable); the "
          "engine's GPU blocks are indexed as NODE_ID's HBM tier (CPU-offloaded ones as DRAM)");
ABSL_FLAG(uint32_t, vllm_block_size, 0,
          "Tokens per block of that namespace; engine events with another block size are skipped "
          "and counted (their keys would never match a request). 0: accept any");
ABSL_FLAG(std::string, vllm_namespace, "default",
          "Namespace the vLLM engines' token ids are hashed under (must match the frontends')");

namespace strata::router {
namespace {

absl::StatusOr<RouterOptions> OptionsFromFlags() {
  RouterOptions o;
  o.experiment = absl::GetFlag(FLAGS_experiment).empty() ? absl::GetFlag(FLAGS_policy)
                                                         : absl::GetFlag(FLAGS_experiment);
  absl::Duration ttl;
  if (!absl::ParseDuration(absl::GetFlag(FLAGS_node_ttl), &ttl) || ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--node-ttl: '", absl::GetFlag(FLAGS_node_ttl), "' is not a duration > 0"));
  }
  o.membership.ttl = ttl;
  o.membership.heartbeat_interval = ttl / 3;
  absl::Duration memory;
  if (!absl::ParseDuration(absl::GetFlag(FLAGS_route_memory), &memory) ||
      memory < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--route-memory: '", absl::GetFlag(FLAGS_route_memory), "' is not a duration >= 0"));
  }
  o.route_memory.horizon = memory;
  if (absl::Status s = o.Validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        absl::GetFlag(FLAGS_experiment).empty() ? "--policy: " : "--experiment: ", s.message()));
  }
  return o;
}

absl::StatusOr<CostModel> CostModelFromFlags() {
  const std::string path = absl::GetFlag(FLAGS_cost_model);
  if (path.empty()) return CostModel::Default();
  auto m = CostModel::FromJsonFile(path);
  if (!m.ok())
    return absl::InvalidArgumentError(absl::StrCat("--cost-model: ", m.status().message()));
  return m;
}

int Run() {
  // Debian's Abseil checks every mutex acquisition for lock-order cycles (measured: 7% of the
  // router's ingest CPU). Strata's locks are tested for order in the unit tests instead.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  auto options = OptionsFromFlags();
  if (!options.ok()) {
    std::cerr << "strata-router: " << options.status().message() << "\n";
    return 2;
  }
  auto model = CostModelFromFlags();
  if (!model.ok()) {
    std::cerr << "strata-router: " << model.status().message() << "\n";
    return 2;
  }
  auto vllm_specs =
      ParseVllmSourceSpecs(absl::GetFlag(FLAGS_vllm_events), absl::GetFlag(FLAGS_vllm_namespace),
                           absl::GetFlag(FLAGS_vllm_block_size));
  if (!vllm_specs.ok()) {
    std::cerr << "strata-router: --vllm-events: " << vllm_specs.status().message() << "\n";
    return 2;
  }
  // Blocked in every thread (started after this); the main thread takes them below.
  const sigset_t stop_signals = common::BlockStopSignals();

  auto core = RouterCore::Create(*options, *model, common::Clock::Real());
  if (!core.ok()) {
    std::cerr << "strata-router: " << core.status().message() << "\n";
    return 2;
  }
  const std::string metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  std::unique_ptr<MetricsExporter> metrics;
  if (!metrics_listen.empty()) {
    auto m = MetricsExporter::Start(metrics_listen, core->get());
    if (!m.ok()) {
      std::cerr << "strata-router: " << m.status().message() << "\n";
      return 2;
    }
    metrics = std::move(*m);
  }

  std::vector<std::unique_ptr<VllmSource>> vllm;
  for (const VllmSourceSpec& spec : *vllm_specs) {
    auto source = VllmSource::Start(spec, core->get());
    if (!source.ok()) {
      std::cerr << "strata-router: --vllm-events: " << source.status().message() << "\n";
      return 2;
    }
    std::cerr << "strata-router: indexing vLLM KV events from " << spec.endpoint << " as node "
              << spec.node_id << "\n";
    vllm.push_back(std::move(*source));
  }
  if (metrics && !vllm.empty()) {
    metrics->AddExtraCounters([&vllm] {
      std::vector<ExtraCounter> out;
      for (const auto& v : vllm) v->AppendCounters(&out);
      return out;
    });
  }

  absl::StatusOr<common::ServerSecurity> security =
      common::MakeServerSecurity(common::ServerSecurityOptionsFromFlags(), RouterMethodRoles());
  if (!security.ok()) {
    std::cerr << "strata-router: " << security.status().message() << "\n";
    return 2;
  }
  if (metrics && security->authenticator != nullptr) {
    metrics->AddExtraCounters([auth = security->authenticator] {
      std::vector<ExtraCounter> out;
      for (const auto& [key, count] : auth->Denials().counts) {
        out.push_back({"strata_auth_denied_total",
                       "Calls refused by token auth, by method and code.",
                       {{"code", key.second}, {"method", key.first}},
                       static_cast<double>(count)});
      }
      return out;
    });
  }
  RouterService service(core->get());
  auto server = common::StartGrpcServer(absl::GetFlag(FLAGS_listen), {&service},
                                        kRouterMaxMessageBytes, security->credentials);
  if (!server.ok()) {
    std::cerr << "strata-router: " << server.status().message() << "\n";
    return 2;
  }
  std::cerr << "strata-router: gRPC on port " << server->port << ": " << security->description
            << "\n";
  common::GrpcServer health;
  if (const std::string h = common::HealthListenFromFlags(); !h.empty()) {
    auto started = common::StartHealthServer(h);
    if (!started.ok()) {
      std::cerr << "strata-router: --health-listen: " << started.status().message() << "\n";
      return 2;
    }
    health = std::move(*started);
  }
  // Expiry runs several times per TTL so a dead node leaves within about 1.1 TTL.
  RouterCore* router = core->get();
  common::PeriodicLoop expiry(
      [router] {
        for (const std::string& id : router->ExpireNodes()) {
          std::cerr << "strata-router: node " << id
                    << " missed heartbeats for the ttl: removed with its index entries\n";
        }
        return false;
      },
      options->membership.ttl / 10);
  expiry.Start();

  if (metrics) {
    std::cerr << "strata-router: metrics on http://"
              << metrics_listen.substr(0, metrics_listen.rfind(':')) << ":" << metrics->port()
              << "/metrics\n";
  }
  const std::string listen = absl::GetFlag(FLAGS_listen);
  std::cout << "strata-router serving on " << listen.substr(0, listen.rfind(':')) << ":"
            << server->port << " (policy: " << options->experiment << ")" << std::endl;

  std::cerr << "strata-router: " << common::WaitForStopSignal(stop_signals)
            << ": draining (NOT_SERVING, finishing in-flight calls)\n";
  server->server->GetHealthCheckService()->SetServingStatus(false);
  if (health.server != nullptr) health.server->GetHealthCheckService()->SetServingStatus(false);
  server->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (health.server != nullptr) health.server->Shutdown(std::chrono::system_clock::now());
  expiry.Stop();
  for (auto& v : vllm) v->Stop();
  std::cerr << "strata-router: stopped\n";
  return 0;
}

}  // namespace
}  // namespace strata::router

int main(int argc, char** argv) {
  strata::common::CommandLineSpec spec;
  spec.program = "strata-router";
  spec.usage =
      "strata-router: the Strata router. Keeps a global index of which node holds which prefix\n"
      "block in which tier (fed by cache nodes' event streams and optionally vLLM KV events) and\n"
      "answers Route with the node where a request's prefix is cheapest to serve\n"
      "(service strata.v1.Router, grpc.health.v1, reflection).\n\n"
      "  strata-router --listen 0.0.0.0:7080 [--metrics-listen 0.0.0.0:9180]\n"
      "      [--experiment 'locality=50,round_robin=50'] [--vllm-events "
      "tcp://engine:5557=node-a]\n\n"
      "Prints 'strata-router serving on HOST:PORT' on stdout once serving; logs go to stderr.\n"
      "SIGTERM or SIGINT drains (health NOT_SERVING, in-flight calls finish) and exits 0. Exit 2:\n"
      "bad flags or a startup failure (one line on stderr). A restarted router rebuilds its index\n"
      "from the snapshots nodes send when they re-register. Transport security is required or\n"
      "explicitly waived: --tls-cert/--tls-key (plus --tls-client-ca for mutual TLS,\n"
      "--auth-tokens-file for bearer tokens with roles route, node, admin), or --plaintext.";
  spec.flags = {"listen",   "metrics_listen", "policy",         "experiment",     "cost_model",
                "node_ttl", "route_memory", "vllm_events",    "vllm_namespace", "vllm_block_size"};
  for (const std::string& f : strata::common::ServerSecurityFlagNames()) spec.flags.push_back(f);
  spec.repeatable = {"vllm_events"};
  const std::vector<std::string> rest = strata::common::ParseCommandLineOrExit(spec, argc, argv);
  if (!rest.empty()) {
    std::cerr << "strata-router: unexpected argument '" << rest[0] << "' (see --help)\n";
    return 2;
  }
  // Test builds only: faults a test asked for through STRATA_FAIL_POINTS (common/fail_point.h).
  if (absl::Status armed = strata::common::FailPoints::Global().ArmFromEnvironment(); !armed.ok()) {
    std::cerr << "strata-router: " << armed.message() << "\n";
    return 2;
  }
  return strata::router::Run();
}
