#include "clients/router_client.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <utility>

#include "common/namespace_id.h"
#include "common/status_macros.h"
#include "common/string_view_interop.h"

namespace strata::clients {
namespace {

namespace v1 = ::strata::v1;

TierCounts FromProto(const v1::TierBlocks& t) {
  return {.hbm = t.hbm(), .dram = t.dram(), .ssd = t.ssd()};
}

NodeLoad FromProto(const v1::NodeLoad& l) {
  return {.queued_requests = l.queued_requests(),
          .running_requests = l.running_requests(),
          .prefill_tokens_in_flight = l.prefill_tokens_in_flight(),
          .free_hbm_blocks = l.free_hbm_blocks(),
          .draining = l.draining()};
}

// InvalidArgument for a bad namespace name or neither or both of hashes and tokens; `what` names
// the query in the message.
absl::Status CheckChain(const ChainQuery& chain, std::string_view what) {
  STRATA_RETURN_IF_ERROR(common::ValidateNamespaceName(chain.namespace_name));
  if (chain.chain_hashes.empty() == chain.token_ids.empty()) {
    return absl::InvalidArgumentError(common::Concat(
        what, chain.chain_hashes.empty() ? " needs chain hashes or token ids"
                                         : " takes chain hashes or token ids, not both"));
  }
  return absl::OkStatus();
}

// Fills the chain fields RouteRequest and LocateRequest share (same names in both).
template <typename Request>
void SetChain(const ChainQuery& chain, Request& request) {
  request.set_namespace_(chain.namespace_name);
  request.mutable_chain_hashes()->Reserve(static_cast<int>(chain.chain_hashes.size()));
  for (const common::ChainHash& hash : chain.chain_hashes) {
    request.add_chain_hashes(std::string(hash.view()));
  }
  request.mutable_token_ids()->Add(chain.token_ids.begin(), chain.token_ids.end());
  request.set_block_tokens(chain.block_tokens);
  request.set_cache_salt(chain.cache_salt);
}

v1::RouteRequest ToProto(const RouteQuery& query) {
  v1::RouteRequest request;
  SetChain(query, request);
  request.set_prompt_tokens(query.prompt_tokens);
  request.set_session_key(query.session_key);
  request.set_request_id(query.request_id);
  request.set_policy(query.policy);
  return request;
}

RouteResult FromProto(const v1::RouteResponse& r) {
  RouteResult result;
  result.node_id = r.node_id();
  result.endpoint = r.endpoint();
  result.matched = FromProto(r.matched());
  result.matched_blocks = r.matched_blocks();
  result.total_blocks = r.total_blocks();
  result.predicted_ttft_ms = r.predicted_ttft_ms();
  result.policy = r.policy();
  result.decision_id = r.decision_id();
  for (const v1::PeerSource& p : r.peers()) {
    result.peers.push_back({.node_id = p.node_id(),
                            .endpoint = p.endpoint(),
                            .from_block = p.from_block(),
                            .blocks = p.blocks(),
                            .tier = p.tier()});
  }
  for (const v1::ShadowChoice& s : r.shadow()) {
    result.shadow.push_back({.policy = s.policy(),
                             .node_id = s.node_id(),
                             .matched_blocks = s.matched_blocks(),
                             .predicted_ttft_ms = s.predicted_ttft_ms()});
  }
  return result;
}

LocateResult FromProto(const v1::LocateResponse& r) {
  LocateResult result;
  result.total_blocks = r.total_blocks();
  for (const v1::NodeHolding& n : r.nodes()) {
    result.nodes.push_back({.node_id = n.node_id(),
                            .endpoint = n.endpoint(),
                            .matched_blocks = n.matched_blocks(),
                            .tiers = FromProto(n.tiers())});
  }
  return result;
}

NodeStatus FromProto(const v1::NodeInfo& n) {
  return {.node_id = n.node_id(),
          .endpoint = n.endpoint(),
          .epoch = n.epoch(),
          .load = FromProto(n.load()),
          .heartbeat_age_ms = n.last_heartbeat_age_ms(),
          .indexed_blocks = n.indexed_blocks(),
          .source = n.source(),
          .synced = n.synced()};
}

ExperimentReport FromProto(const v1::ExperimentReport& r) {
  ExperimentReport report;
  report.spec = r.spec();
  report.requests = r.requests();
  for (const v1::PolicyFigures& p : r.policies()) {
    report.policies.push_back({.policy = p.policy(),
                               .weight = p.weight(),
                               .decisions = p.decisions(),
                               .matched = FromProto(p.matched()),
                               .requested_blocks = p.requested_blocks(),
                               .mean_predicted_ttft_ms = p.mean_predicted_ttft_ms(),
                               .outcomes = p.outcomes(),
                               .mean_reported_ttft_ms = p.mean_reported_ttft_ms(),
                               .p50_reported_ttft_ms = p.p50_reported_ttft_ms(),
                               .p99_reported_ttft_ms = p.p99_reported_ttft_ms(),
                               .shadow_requests = p.shadow_requests(),
                               .mean_shadow_hit_blocks = p.mean_shadow_hit_blocks(),
                               .mean_shadow_predicted_ttft_ms = p.mean_shadow_predicted_ttft_ms(),
                               .shadow_agreements = p.shadow_agreements()});
  }
  return report;
}

}  // namespace

absl::Status RouterClientOptions::Validate() const {
  const RetryBudget budget{deadline, max_attempts};
  STRATA_RETURN_IF_ERROR(budget.Validate("router client"));
  return security.Validate();
}

absl::StatusOr<std::unique_ptr<RouterClient>> RouterClient::Connect(
    std::string_view target, const RouterClientOptions& options) {
  if (target.empty()) return absl::InvalidArgumentError("router target is empty");
  STRATA_RETURN_IF_ERROR(options.Validate());
  // Router messages are small (a request's hashes, a few nodes), so gRPC's default limits hold.
  STRATA_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> credentials,
                          common::MakeChannelCredentials(options.security));
  std::shared_ptr<grpc::Channel> channel = grpc::CreateChannel(std::string(target), credentials);
  return std::unique_ptr<RouterClient>(
      new RouterClient(std::string(target), options, v1::Router::NewStub(channel)));
}

RouterClient::RouterClient(std::string target, RouterClientOptions options,
                           std::unique_ptr<v1::Router::StubInterface> stub)
    : target_(std::move(target)), options_(std::move(options)), stub_(std::move(stub)) {}

RouterClient::~RouterClient() = default;

absl::StatusOr<RouteResult> RouterClient::Route(const RouteQuery& query) {
  STRATA_RETURN_IF_ERROR(CheckChain(query, "a route query"));
  const v1::RouteRequest request = ToProto(query);
  v1::RouteResponse response;
  STRATA_RETURN_IF_ERROR(
      CallUnary(budget(), *stub_, &v1::Router::StubInterface::Route, request, &response));
  return FromProto(response);
}

absl::StatusOr<LocateResult> RouterClient::Locate(const ChainQuery& chain) {
  STRATA_RETURN_IF_ERROR(CheckChain(chain, "a locate query"));
  v1::LocateRequest request;
  SetChain(chain, request);
  v1::LocateResponse response;
  STRATA_RETURN_IF_ERROR(
      CallUnary(budget(), *stub_, &v1::Router::StubInterface::Locate, request, &response));
  return FromProto(response);
}

absl::Status RouterClient::ReportOutcome(const RouteOutcome& outcome) {
  v1::ReportOutcomeRequest request;
  request.set_decision_id(outcome.decision_id);
  request.set_ttft_ms(outcome.ttft_ms);
  request.set_prompt_tokens(outcome.prompt_tokens);
  request.set_cached_tokens(outcome.cached_tokens);
  v1::ReportOutcomeResponse response;
  return CallUnary(budget(), *stub_, &v1::Router::StubInterface::ReportOutcome, request, &response);
}

absl::StatusOr<std::vector<NodeStatus>> RouterClient::ListNodes() {
  v1::ListNodesResponse response;
  STRATA_RETURN_IF_ERROR(CallUnary(budget(), *stub_, &v1::Router::StubInterface::ListNodes,
                                   v1::ListNodesRequest(), &response));
  std::vector<NodeStatus> nodes;
  nodes.reserve(response.nodes_size());
  for (const v1::NodeInfo& n : response.nodes()) nodes.push_back(FromProto(n));
  return nodes;
}

absl::StatusOr<ExperimentReport> RouterClient::SetExperiment(std::string_view spec) {
  if (spec.empty()) return absl::InvalidArgumentError("experiment spec is empty");
  v1::SetExperimentRequest request;
  request.set_spec(std::string(spec));
  v1::ExperimentReport response;
  STRATA_RETURN_IF_ERROR(
      CallUnary(budget(), *stub_, &v1::Router::StubInterface::SetExperiment, request, &response));
  return FromProto(response);
}

absl::StatusOr<ExperimentReport> RouterClient::GetExperimentReport() {
  v1::ExperimentReport response;
  STRATA_RETURN_IF_ERROR(CallUnary(budget(), *stub_,
                                   &v1::Router::StubInterface::GetExperimentReport,
                                   v1::GetExperimentReportRequest(), &response));
  return FromProto(response);
}

}  // namespace strata::clients
