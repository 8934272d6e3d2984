#include "router/router_service.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "common/block_hash.h"
#include "common/checksum.h"
#include "common/grpc_status.h"
#include "common/namespace_id.h"
#include "common/status_macros.h"
#include "common/string_view_interop.h"
#include "router/event_decode.h"

namespace strata::router {

common::MethodRoles RouterMethodRoles() {
  using common::Role;
  const auto route = static_cast<common::RoleSet>(Role::kRoute);
  const auto node = static_cast<common::RoleSet>(Role::kNode);
  return {
      {"/strata.v1.Router/Route", route},
      {"/strata.v1.Router/ReportOutcome", route},
      {"/strata.v1.Router/Locate", route | node},
      {"/strata.v1.Router/ListNodes", route | node},
      {"/strata.v1.Router/RegisterNode", node},
      {"/strata.v1.Router/Heartbeat", node},
      {"/strata.v1.Router/PublishEvents", node},
  };
}
namespace {

using common::ToGrpcStatus;

strata::v1::Tier ToProtoTier(Tier t) {
  switch (t) {
    case Tier::kHbm:
      return strata::v1::TIER_HBM;
    case Tier::kDram:
      return strata::v1::TIER_DRAM;
    case Tier::kSsd:
      return strata::v1::TIER_SSD;
  }
  return strata::v1::TIER_UNSPECIFIED;
}

NodeLoad FromProto(const strata::v1::NodeLoad& p) {
  NodeLoad l;
  l.queued_requests = p.queued_requests();
  l.running_requests = p.running_requests();
  l.prefill_tokens_in_flight = p.prefill_tokens_in_flight();
  l.free_hbm_blocks = p.free_hbm_blocks();
  l.draining = p.draining();
  return l;
}

void ToProto(const NodeLoad& l, strata::v1::NodeLoad* p) {
  p->set_queued_requests(l.queued_requests);
  p->set_running_requests(l.running_requests);
  p->set_prefill_tokens_in_flight(l.prefill_tokens_in_flight);
  p->set_free_hbm_blocks(l.free_hbm_blocks);
  p->set_draining(l.draining);
}

void ToProto(const std::array<uint32_t, kNumTiers>& per_tier, strata::v1::TierBlocks* p) {
  p->set_hbm(per_tier[static_cast<int>(Tier::kHbm)]);
  p->set_dram(per_tier[static_cast<int>(Tier::kDram)]);
  p->set_ssd(per_tier[static_cast<int>(Tier::kSsd)]);
}

void ToProto(const ExperimentReportData& r, strata::v1::ExperimentReport* p) {
  p->set_spec(r.spec);
  p->set_requests(r.requests);
  for (const PolicyReport& f : r.policies) {
    strata::v1::PolicyFigures* out = p->add_policies();
    out->set_policy(f.policy);
    out->set_weight(f.weight);
    out->set_decisions(f.decisions);
    out->mutable_matched()->set_hbm(f.matched_per_tier[static_cast<int>(Tier::kHbm)]);
    out->mutable_matched()->set_dram(f.matched_per_tier[static_cast<int>(Tier::kDram)]);
    out->mutable_matched()->set_ssd(f.matched_per_tier[static_cast<int>(Tier::kSsd)]);
    out->set_requested_blocks(f.requested_blocks);
    out->set_mean_predicted_ttft_ms(f.mean_predicted_ttft_ms);
    out->set_outcomes(f.outcomes);
    out->set_mean_reported_ttft_ms(f.mean_reported_ttft_ms);
    out->set_p50_reported_ttft_ms(f.p50_reported_ttft_ms);
    out->set_p99_reported_ttft_ms(f.p99_reported_ttft_ms);
    out->set_shadow_requests(f.shadow_requests);
    out->set_mean_shadow_hit_blocks(f.mean_shadow_hit_blocks);
    out->set_mean_shadow_predicted_ttft_ms(f.mean_shadow_predicted_ttft_ms);
    out->set_shadow_agreements(f.shadow_agreements);
  }
}

strata::v1::PublishReply Reply(const IngestReply& r, uint64_t sequence) {
  strata::v1::PublishReply reply;
  switch (r.result) {
    case IngestReply::Result::kApplied:
      reply.set_result(strata::v1::PublishReply::APPLIED);
      break;
    case IngestReply::Result::kSnapshotRequired:
      reply.set_result(strata::v1::PublishReply::SNAPSHOT_REQUIRED);
      break;
    case IngestReply::Result::kRejected:
      reply.set_result(strata::v1::PublishReply::REJECTED);
      break;
  }
  reply.set_sequence(sequence);
  reply.set_message(r.message);
  return reply;
}

strata::v1::PublishReply Rejected(uint64_t sequence, std::string message) {
  strata::v1::PublishReply reply;
  reply.set_result(strata::v1::PublishReply::REJECTED);
  reply.set_sequence(sequence);
  reply.set_message(std::move(message));
  return reply;
}

// ValidateRouteRequest for both request types (the same field names).
template <typename Request>
absl::StatusOr<std::vector<IndexKey>> ChainKeys(const Request& req,
                                                const RouteRequestLimits& limits,
                                                std::string_view what) {
  STRATA_RETURN_IF_ERROR(common::ValidateNamespaceName(req.namespace_()));
  const common::NamespaceId ns = common::NamespaceIdOf(req.namespace_());
  if (req.chain_hashes_size() > 0 && req.token_ids_size() > 0) {
    return absl::InvalidArgumentError("give chain_hashes or token_ids, not both");
  }
  std::vector<IndexKey> keys;
  if (req.chain_hashes_size() > 0) {
    if (static_cast<uint32_t>(req.chain_hashes_size()) > limits.max_blocks) {
      return absl::InvalidArgumentError(common::Concat(
          what, " has ", req.chain_hashes_size(), " hashes; at most ", limits.max_blocks,
          " allowed"));
    }
    keys.reserve(req.chain_hashes_size());
    for (int i = 0; i < req.chain_hashes_size(); ++i) {
      auto h = common::ChainHash::FromBytes(req.chain_hashes(i));
      if (!h.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("chain_hashes[", i, "]: ", h.status().message()));
      }
      keys.push_back(IndexKeyOf(ns, *h));
    }
  } else if (req.token_ids_size() > 0) {
    const uint32_t tokens = static_cast<uint32_t>(req.token_ids_size());
    if (tokens > limits.max_tokens) {
      return absl::InvalidArgumentError(common::Concat(what, " has ", tokens, " tokens; at most ",
                                                       limits.max_tokens, " allowed"));
    }
    const uint32_t block_tokens =
        req.block_tokens() != 0 ? req.block_tokens() : limits.default_block_tokens;
    if (block_tokens == 0) return absl::InvalidArgumentError("block_tokens must be > 0");
    // Counted before hashing: 1M one-token blocks would cost a second of SHA-256 only to be
    // rejected by the core's block limit afterwards.
    const uint32_t blocks = tokens / block_tokens;
    if (blocks == 0) {
      return absl::InvalidArgumentError(common::Concat(
          what, " has ", tokens, " tokens: less than one block of ", block_tokens));
    }
    if (blocks > limits.max_blocks) {
      return absl::InvalidArgumentError(
          common::Concat(what, " has ", tokens, " tokens: ", blocks, " blocks of ", block_tokens,
                         "; at most ", limits.max_blocks, " blocks allowed"));
    }
    const std::vector<common::ChainHash> chain = common::HashChain(
        ns, req.cache_salt(), std::span(req.token_ids().data(), req.token_ids_size()),
        block_tokens);
    keys.reserve(chain.size());
    for (const common::ChainHash& h : chain) keys.push_back(IndexKeyOf(ns, h));
  } else {
    return absl::InvalidArgumentError(
        common::Concat(what, " has neither chain_hashes nor token_ids"));
  }
  return keys;
}

}  // namespace

absl::StatusOr<std::vector<IndexKey>> ValidateRouteRequest(const strata::v1::RouteRequest& req,
                                                           const RouteRequestLimits& limits) {
  return ChainKeys(req, limits, "route request");
}

absl::StatusOr<std::vector<IndexKey>> ValidateLocateRequest(const strata::v1::LocateRequest& req,
                                                            const RouteRequestLimits& limits) {
  return ChainKeys(req, limits, "locate request");
}

RouterService::RouterService(RouterCore* core, const RouterServiceOptions& options)
    : core_(core), options_(options) {}

RouteRequestLimits RouterService::Limits() const {
  RouteRequestLimits limits;
  limits.max_blocks = core_->options().max_request_blocks;
  limits.max_tokens = options_.max_route_tokens;
  limits.default_block_tokens = core_->cost_model().params().block_tokens;
  return limits;
}

absl::StatusOr<RouteQuery> RouterService::QueryFromRequest(
    const strata::v1::RouteRequest& req) const {
  RouteQuery q;
  STRATA_ASSIGN_OR_RETURN(q.keys, ValidateRouteRequest(req, Limits()));
  q.block_tokens = req.block_tokens();
  q.prompt_tokens = req.prompt_tokens() != 0   ? req.prompt_tokens()
                    : req.token_ids_size() > 0 ? static_cast<uint32_t>(req.token_ids_size())
                                               : 0;
  q.split_key = !req.session_key().empty() ? req.session_key() : req.request_id();
  q.request_hash =
      !req.request_id().empty()
          ? common::Checksum(req.request_id())
          : common::Checksum(std::string_view(reinterpret_cast<const char*>(q.keys.data()),
                                              q.keys.size() * sizeof(IndexKey)));
  q.policy = req.policy();
  return q;
}

grpc::Status RouterService::Route(grpc::ServerContext*, const strata::v1::RouteRequest* req,
                                  strata::v1::RouteResponse* resp) {
  auto q = QueryFromRequest(*req);
  if (!q.ok()) return ToGrpcStatus(q.status());
  auto d = core_->Route(*q);
  if (!d.ok()) return ToGrpcStatus(d.status());
  resp->set_node_id(d->chosen->node_id);
  resp->set_endpoint(d->chosen->endpoint);
  ToProto(d->match.per_tier, resp->mutable_matched());
  resp->set_matched_blocks(d->match.matched);
  resp->set_total_blocks(d->total_blocks);
  resp->set_predicted_ttft_ms(d->cost.total_ms);
  resp->set_policy(d->policy);
  resp->set_decision_id(d->decision_id);
  for (const PeerChoice& p : d->peers) {
    strata::v1::PeerSource* out = resp->add_peers();
    out->set_node_id(p.member->node_id);
    out->set_endpoint(p.member->endpoint);
    out->set_from_block(p.from_block);
    out->set_blocks(p.blocks);
    out->set_tier(ToProtoTier(p.slowest));
  }
  for (const ShadowEntry& s : d->shadow) {
    strata::v1::ShadowChoice* out = resp->add_shadow();
    out->set_policy(s.policy);
    out->set_node_id(s.member->node_id);
    out->set_matched_blocks(s.matched_blocks);
    out->set_predicted_ttft_ms(s.predicted_ttft_ms);
  }
  return grpc::Status::OK;
}

grpc::Status RouterService::Locate(grpc::ServerContext*, const strata::v1::LocateRequest* req,
                                   strata::v1::LocateResponse* resp) {
  auto keys = ValidateLocateRequest(*req, Limits());
  if (!keys.ok()) return ToGrpcStatus(keys.status());
  auto r = core_->Locate(*keys);
  if (!r.ok()) return ToGrpcStatus(r.status());
  resp->set_total_blocks(r->total_blocks);
  for (const NodeHolding& h : r->nodes) {
    strata::v1::NodeHolding* out = resp->add_nodes();
    out->set_node_id(h.member->node_id);
    out->set_endpoint(h.member->endpoint);
    out->set_matched_blocks(h.match.matched);
    ToProto(h.match.per_tier, out->mutable_tiers());
  }
  return grpc::Status::OK;
}

grpc::Status RouterService::ReportOutcome(grpc::ServerContext*,
                                          const strata::v1::ReportOutcomeRequest* req,
                                          strata::v1::ReportOutcomeResponse*) {
  return ToGrpcStatus(core_->ReportOutcome(req->decision_id(), req->ttft_ms(), req->prompt_tokens(),
                                           req->cached_tokens()));
}

grpc::Status RouterService::RegisterNode(grpc::ServerContext*,
                                         const strata::v1::RegisterNodeRequest* req,
                                         strata::v1::RegisterNodeResponse* resp) {
  auto r =
      core_->RegisterNode(req->node_id(), req->endpoint(), req->epoch(), FromProto(req->load()));
  if (!r.ok()) return ToGrpcStatus(r.status());
  const MembershipOptions& m = core_->membership().options();
  resp->set_heartbeat_interval_ms(
      static_cast<uint32_t>(absl::ToInt64Milliseconds(m.heartbeat_interval)));
  resp->set_ttl_ms(static_cast<uint32_t>(absl::ToInt64Milliseconds(m.ttl)));
  resp->set_snapshot_required(true);
  return grpc::Status::OK;
}

grpc::Status RouterService::Heartbeat(grpc::ServerContext*, const strata::v1::HeartbeatRequest* req,
                                      strata::v1::HeartbeatResponse*) {
  return ToGrpcStatus(core_->Heartbeat(req->node_id(), req->epoch(), FromProto(req->load())));
}

grpc::Status RouterService::ListNodes(grpc::ServerContext*, const strata::v1::ListNodesRequest*,
                                      strata::v1::ListNodesResponse* resp) {
  std::shared_ptr<const MemberView> view = core_->membership().View();
  const absl::Time now = core_->clock()->Now();
  for (const Member& m : view->members) {
    strata::v1::NodeInfo* out = resp->add_nodes();
    out->set_node_id(m.node_id);
    out->set_endpoint(m.endpoint);
    out->set_epoch(m.epoch);
    ToProto(core_->membership().EffectiveLoad(m), out->mutable_load());
    out->set_last_heartbeat_age_ms(static_cast<uint64_t>(
        std::max<int64_t>(0, absl::ToInt64Milliseconds(now - m.last_heartbeat))));
    out->set_indexed_blocks(core_->index().NodeEntries(m.slot));
    out->set_source(NodeSourceName(m.source));
    out->set_synced(core_->ingest().Synced(m.slot));
  }
  return grpc::Status::OK;
}

grpc::Status RouterService::PublishEvents(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<strata::v1::PublishReply, strata::v1::PublishRequest>* stream) {
  DecodeLimits limits;
  limits.max_events = options_.max_events_per_message;
  limits.max_keys = options_.max_blocks_per_message;
  std::string stream_node;  // the first message fixes the node this stream speaks for
  strata::v1::PublishRequest msg;
  while (stream->Read(&msg)) {
    const bool is_batch = msg.has_batch();
    if (!is_batch && !msg.has_snapshot()) {
      stream->Write(Rejected(0, "empty publish message"));
      continue;
    }
    const std::string& node_id = is_batch ? msg.batch().node_id() : msg.snapshot().node_id();
    const uint64_t epoch = is_batch ? msg.batch().epoch() : msg.snapshot().epoch();
    const uint64_t sequence = is_batch ? msg.batch().sequence() : msg.snapshot().sequence();
    if (stream_node.empty()) stream_node = node_id;
    if (node_id != stream_node) {
      stream->Write(Rejected(
          sequence, absl::StrCat("this stream belongs to node ", stream_node, ", not ", node_id)));
      continue;
    }
    auto slot = core_->membership().SlotOf(node_id, epoch);
    if (absl::IsNotFound(slot.status())) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          absl::StrCat("node ", node_id, " is not registered: register first"));
    }
    if (!slot.ok()) {
      stream->Write(Rejected(sequence, std::string(slot.status().message())));
      continue;
    }
    auto events = DecodeEvents(is_batch ? msg.batch().events() : msg.snapshot().blocks(), limits);
    if (!events.ok()) {
      stream->Write(Rejected(sequence, std::string(events.status().message())));
      continue;
    }
    if (is_batch) {
      stream->Write(Reply(core_->ingest().ApplyBatch(*slot, epoch, sequence, *events), sequence));
    } else {
      const strata::v1::SnapshotChunk& chunk = msg.snapshot();
      IngestReply r = core_->ingest().ApplySnapshotChunk(
          *slot, epoch, sequence, chunk.chunk_index(), chunk.last(), *events);
      // Intermediate chunks are answered only when something went wrong.
      if (chunk.last() || r.result != IngestReply::Result::kApplied) {
        stream->Write(Reply(r, sequence));
      }
    }
    if (ctx->IsCancelled()) break;
  }
  return grpc::Status::OK;
}

grpc::Status RouterService::SetExperiment(grpc::ServerContext*,
                                          const strata::v1::SetExperimentRequest* req,
                                          strata::v1::ExperimentReport* resp) {
  if (absl::Status s = core_->SetExperiment(req->spec()); !s.ok()) return ToGrpcStatus(s);
  ToProto(core_->ExperimentReport(), resp);
  return grpc::Status::OK;
}

grpc::Status RouterService::GetExperimentReport(grpc::ServerContext*,
                                                const strata::v1::GetExperimentReportRequest*,
                                                strata::v1::ExperimentReport* resp) {
  ToProto(core_->ExperimentReport(), resp);
  return grpc::Status::OK;
}

}  // namespace strata::router
