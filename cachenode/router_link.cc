#include "cachenode/router_link.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <iostream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cachenode/cache_node_service.h"
#include "common/fail_point.h"
#include "common/grpc_status.h"
#include "common/status_macros.h"

namespace strata::cachenode {
namespace {

using strata::v1::BlockEvent;
using strata::v1::PublishReply;
using strata::v1::PublishRequest;

// Heartbeats that fail this many times in a row (other than NOT_FOUND / FAILED_PRECONDITION, which
// act at once) make the link reconnect: a half-open connection can keep a stream looking alive.
constexpr int kHeartbeatFailuresBeforeReconnect = 3;

constexpr TierKind kTiers[kNumTiers] = {TierKind::kHbm, TierKind::kDram, TierKind::kSsd};

absl::Status CheckHostPort(const std::string& field, const std::string& value) {
  const size_t colon = value.rfind(':');
  if (colon == std::string::npos || colon + 1 == value.size()) {
    return absl::InvalidArgumentError(absl::StrCat(field, " '", value, "' is not HOST:PORT"));
  }
  return absl::OkStatus();
}

void FillEvent(BlockEvent* event, BlockEventKind kind, TierKind tier, common::NamespaceId ns) {
  event->set_kind(kind == BlockEventKind::kStored ? BlockEvent::STORED : BlockEvent::REMOVED);
  event->set_tier(ToProtoTier(tier));
  event->set_namespace_id(ns);
}

std::string CodeAndMessage(const grpc::Status& s) { return common::FromGrpcStatus(s).ToString(); }

}  // namespace

// One PublishEvents stream. The session loop writes; the reply loop reads. The flags are guarded
// by the link's mu_.
struct RouterLink::Session {
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReaderWriter<PublishRequest, PublishReply>> stream;
  bool snapshot_sent = false;  // session thread only
  bool reading = false;        // a Read is in progress (EndSession waits for it to return)
  bool reads_done = false;     // Read returned false: the stream is over
  bool got_reply = false;      // the router answered at least once
  bool broken = false;         // a read or write failed
};

void BlockEventFanout::Add(BlockEventSink* sink) {
  absl::MutexLock lock(&mu_);
  sinks_.push_back(sink);
}

void BlockEventFanout::Remove(BlockEventSink* sink) {
  absl::MutexLock lock(&mu_);
  sinks_.erase(std::remove(sinks_.begin(), sinks_.end(), sink), sinks_.end());
}

void BlockEventFanout::OnBlockEvent(BlockEventKind kind, TierKind tier, const BlockKey& key) {
  absl::ReaderMutexLock lock(&mu_);
  for (BlockEventSink* sink : sinks_) sink->OnBlockEvent(kind, tier, key);
}

absl::Status RouterLinkOptions::Validate() const {
  if (!enabled()) return absl::OkStatus();
  STRATA_RETURN_IF_ERROR(CheckHostPort("router", router));
  STRATA_RETURN_IF_ERROR(CheckHostPort("advertise", advertise));
  if (node_id.empty()) return absl::InvalidArgumentError("node_id is empty");
  if (heartbeat_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("heartbeat_interval must be > 0");
  }
  if (batch_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("batch_interval must be > 0");
  }
  if (max_events_per_batch == 0) return absl::InvalidArgumentError("max_events_per_batch is 0");
  if (snapshot_chunk_hashes == 0) return absl::InvalidArgumentError("snapshot_chunk_hashes is 0");
  if (max_buffered_events == 0) return absl::InvalidArgumentError("max_buffered_events is 0");
  if (retry_initial <= absl::ZeroDuration() || retry_max < retry_initial) {
    return absl::InvalidArgumentError("need 0 < retry_initial <= retry_max");
  }
  if (rpc_timeout <= absl::ZeroDuration()) return absl::InvalidArgumentError("rpc_timeout <= 0");
  return security.Validate();
}

absl::StatusOr<std::unique_ptr<RouterLink>> RouterLink::Create(
    const RouterLinkOptions& options, TieredStore* store,
    std::function<uint32_t()> running_requests, const EngineLoadTable* engines,
    common::Clock* clock, BlockEventFanout* fanout) {
  if (!options.enabled()) return absl::InvalidArgumentError("no router address given");
  STRATA_RETURN_IF_ERROR(options.Validate());
  RouterLinkOptions o = options;
  if (o.epoch == 0) {
    o.epoch = static_cast<uint64_t>(std::max<int64_t>(1, absl::ToUnixNanos(clock->Now())));
  }
  STRATA_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> credentials,
                          common::MakeChannelCredentials(o.security));
  return std::unique_ptr<RouterLink>(new RouterLink(o, store, std::move(running_requests), engines,
                                                    clock, fanout, std::move(credentials)));
}

RouterLink::RouterLink(const RouterLinkOptions& options, TieredStore* store,
                       std::function<uint32_t()> running_requests, const EngineLoadTable* engines,
                       common::Clock* clock, BlockEventFanout* fanout,
                       std::shared_ptr<grpc::ChannelCredentials> credentials)
    : options_(options),
      store_(store),
      running_requests_(std::move(running_requests)),
      engines_(engines),
      clock_(clock),
      fanout_(fanout),
      buffer_(options.max_buffered_events),
      backoff_(options.retry_initial) {
  grpc::ChannelArguments args;
  // gRPC's own reconnect backoff grows to 120 s by default; a router back after an outage would
  // then stay unreachable to us long after our registration retries resumed.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(options.retry_initial)));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(options.retry_max)));
  stub_ = strata::v1::Router::NewStub(
      grpc::CreateCustomChannel(options.router, std::move(credentials), args));
  if (fanout_ != nullptr) {
    fanout_->Add(&buffer_);
  } else {
    store_->SetEventSink(&buffer_);
  }
}

RouterLink::~RouterLink() {
  Stop();
  if (fanout_ != nullptr) {
    fanout_->Remove(&buffer_);
  } else {
    store_->SetEventSink(nullptr);
  }
}

void RouterLink::Start() {
  absl::MutexLock lock(&mu_);
  if (stopping_ || session_loop_ != nullptr) return;
  session_loop_ = std::make_unique<common::PeriodicLoop>([this] { return SessionStep(); },
                                                         options_.batch_interval);
  reply_loop_ = std::make_unique<common::PeriodicLoop>([this] { return ReplyStep(); },
                                                       options_.batch_interval);
  heartbeat_loop_ = std::make_unique<common::PeriodicLoop>([this] { return HeartbeatStep(); },
                                                           options_.heartbeat_interval);
  session_loop_->Start();
  reply_loop_->Start();
  heartbeat_loop_->Start();
}

void RouterLink::Shutdown() {
  common::PeriodicLoop* heartbeats;
  {
    absl::MutexLock lock(&mu_);
    draining_ = true;
    heartbeats = heartbeat_loop_.get();
  }
  // A heartbeat already in flight says draining=false; it must not reach the router after ours.
  if (heartbeats != nullptr) heartbeats->Stop();
  bool registered;
  {
    absl::MutexLock lock(&mu_);
    registered = stats_.registered && !stopping_;
  }
  if (registered) {
    if (SendHeartbeat(/*draining=*/true).ok()) {
      Log(absl::StrCat("told router ", options_.router, " that ", options_.node_id,
                       " is draining"));
    }
  }
  Stop();
}

void RouterLink::Stop() {
  std::vector<common::PeriodicLoop*> loops;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    for (grpc::ClientContext* ctx : unary_calls_) ctx->TryCancel();
    if (session_ != nullptr) session_->ctx.TryCancel();
    for (auto* loop : {heartbeat_loop_.get(), session_loop_.get(), reply_loop_.get()}) {
      if (loop != nullptr) loops.push_back(loop);
    }
  }
  // Every blocking call a step makes is cancelled now (and no new one starts), so the joins are
  // short.
  for (common::PeriodicLoop* loop : loops) loop->Stop();
  EndSession();
}

bool RouterLink::SessionStep() {
  bool end_session = false;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return false;
    end_session = session_ != nullptr && (session_->broken || need_register_);
  }
  if (end_session) EndSession();
  std::shared_ptr<Session> session;
  {
    absl::MutexLock lock(&mu_);
    session = session_;
  }
  if (session == nullptr) {
    if (!Register() || !OpenSession()) return false;
    absl::MutexLock lock(&mu_);
    session = session_;
    if (session == nullptr) return false;
  }
  bool snapshot_due;
  {
    absl::MutexLock lock(&mu_);
    snapshot_due = snapshot_requested_;
  }
  if (snapshot_due || !session->snapshot_sent || buffer_.snapshot_needed()) {
    return SendSnapshot(*session);
  }
  return SendBatch(*session);
}

bool RouterLink::Register() {
  {
    absl::MutexLock lock(&mu_);
    if (clock_->Now() < next_register_) return false;
  }
  bool draining;
  {
    absl::MutexLock lock(&mu_);
    draining = draining_;
  }
  strata::v1::RegisterNodeRequest req;
  req.set_node_id(options_.node_id);
  req.set_endpoint(options_.advertise);
  req.set_epoch(options_.epoch);
  *req.mutable_load() = CurrentLoad(draining);
  strata::v1::RegisterNodeResponse resp;
  const grpc::Status s =
      CallUnary([&](grpc::ClientContext* ctx) { return stub_->RegisterNode(ctx, req, &resp); });
  absl::MutexLock lock(&mu_);
  if (!s.ok()) {
    ++stats_.register_failures;
    if (!reported_unreachable_ && !stopping_) {
      reported_unreachable_ = true;
      const bool unreachable = s.error_code() == grpc::StatusCode::UNAVAILABLE ||
                               s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
      Log(absl::StrCat("router ", options_.router,
                       unreachable ? " unreachable: " : " refused registration: ",
                       CodeAndMessage(s), "; retrying"));
    }
    next_register_ = clock_->Now() + backoff_;
    backoff_ = std::min(backoff_ * 2, options_.retry_max);
    return false;
  }
  ++stats_.registrations;
  stats_.registered = true;
  need_register_ = false;
  reported_unreachable_ = false;
  next_register_ = absl::InfinitePast();
  Log(absl::StrCat("registered with router ", options_.router, " as ", options_.node_id, " epoch ",
                   options_.epoch));
  if (resp.ttl_ms() > 0 && options_.heartbeat_interval * 2 > absl::Milliseconds(resp.ttl_ms())) {
    Log(absl::StrCat("heartbeat interval ", absl::FormatDuration(options_.heartbeat_interval),
                     " is more than half the router's TTL of ", resp.ttl_ms(),
                     " ms; one late heartbeat can expire this node"));
  }
  return true;
}

bool RouterLink::OpenSession() {
  auto session = std::make_shared<Session>();
  // Corked: the stream's headers go out with the first write (the snapshot), so opening it never
  // blocks on the network.
  session->ctx.set_initial_metadata_corked(true);
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return false;
    session->stream = stub_->PublishEvents(&session->ctx);
    session_ = session;
    ++stats_.streams_opened;
    if (reply_loop_ != nullptr) reply_loop_->Wake();
  }
  return true;
}

void RouterLink::EndSession() {
  std::shared_ptr<Session> session;
  bool ended_by_router = false, broken = false, stopping = false;
  {
    absl::MutexLock lock(&mu_);
    session = std::move(session_);
    session_ = nullptr;
    if (session == nullptr) return;
    ended_by_router = session->reads_done;
    broken = session->broken;
    stopping = stopping_;
    if ((broken || ended_by_router) && !session->got_reply) {
      // The router took the registration but not the stream: back off rather than spin on a
      // register/stream loop until whatever it objects to is fixed.
      next_register_ = clock_->Now() + backoff_;
      backoff_ = std::min(backoff_ * 2, options_.retry_max);
    }
    if (!session->reads_done) session->ctx.TryCancel();
    mu_.Await(absl::Condition(
        +[](Session* s) { return !s->reading; }, session.get()));
  }
  // No read or write can run on it any more, so Finish may: it yields the router's reason.
  const grpc::Status s = session->stream->Finish();
  if (stopping) return;
  if (ended_by_router) {
    Log(absl::StrCat("event stream to router ", options_.router, " ended: ", CodeAndMessage(s),
                     "; reconnecting"));
  } else if (broken) {
    Log(absl::StrCat("event stream to router ", options_.router, " broke; reconnecting"));
  }
}

bool RouterLink::SendSnapshot(Session& session) {
  // (tier, namespace) groups; a node has a handful of namespaces, so a linear scan with a cache of
  // the last hit per tier beats hashing every block under the store mutex.
  std::vector<BlockEventRun> groups;
  std::array<size_t, kNumTiers> last_group{};
  last_group.fill(SIZE_MAX);
  uint64_t sequence = 0;
  store_->VisitBlocks(
      [&] {
        buffer_.DiscardAll();
        absl::MutexLock lock(&mu_);
        sequence = stats_.last_sequence;
        snapshot_sequence_ = sequence;
        snapshot_requested_ = false;
      },
      [&](const BlockKey& key, uint8_t tiers) {
        for (TierKind t : kTiers) {
          if ((tiers & (1u << static_cast<int>(t))) == 0) continue;
          size_t& g = last_group[static_cast<int>(t)];
          if (g == SIZE_MAX || groups[g].namespace_id != key.namespace_id) {
            g = SIZE_MAX;
            for (size_t i = 0; i < groups.size(); ++i) {
              if (groups[i].tier == t && groups[i].namespace_id == key.namespace_id) g = i;
            }
            if (g == SIZE_MAX) {
              groups.push_back(BlockEventRun{BlockEventKind::kStored, t, key.namespace_id, {}});
              g = groups.size() - 1;
            }
          }
          groups[g].hashes.append(key.hash.view());
        }
      });

  const size_t per_chunk = options_.snapshot_chunk_hashes;
  size_t total = 0;
  for (const BlockEventRun& g : groups) total += g.events();
  const size_t chunks = std::max<size_t>(1, (total + per_chunk - 1) / per_chunk);
  size_t group = 0, offset = 0;  // next hash to send: groups[group], byte offset
  for (size_t index = 0; index < chunks; ++index) {
    PublishRequest req;
    strata::v1::SnapshotChunk* chunk = req.mutable_snapshot();
    chunk->set_node_id(options_.node_id);
    chunk->set_epoch(options_.epoch);
    chunk->set_sequence(sequence);
    chunk->set_chunk_index(static_cast<uint32_t>(index));
    chunk->set_last(index + 1 == chunks);
    size_t room = per_chunk;
    while (room > 0 && group < groups.size()) {
      const BlockEventRun& g = groups[group];
      const size_t n = std::min(room, (g.hashes.size() - offset) / common::kChainHashBytes);
      BlockEvent* event = chunk->add_blocks();
      FillEvent(event, BlockEventKind::kStored, g.tier, g.namespace_id);
      event->set_chain_hashes(g.hashes.substr(offset, n * common::kChainHashBytes));
      offset += n * common::kChainHashBytes;
      room -= n;
      if (offset == g.hashes.size()) {
        ++group;
        offset = 0;
      }
    }
    if (!session.stream->Write(req)) {
      MarkBroken(session);
      return false;
    }
  }
  session.snapshot_sent = true;
  absl::MutexLock lock(&mu_);
  ++stats_.snapshots_sent;
  stats_.events_dropped = buffer_.dropped();
  return true;
}

bool RouterLink::SendBatch(Session& session) {
  std::vector<BlockEventRun> runs = buffer_.Take(options_.max_events_per_batch);
  if (runs.empty()) return false;
  PublishRequest req;
  strata::v1::EventBatch* batch = req.mutable_batch();
  batch->set_node_id(options_.node_id);
  batch->set_epoch(options_.epoch);
  {
    // Numbered before the write: if it fails, the reconnect snapshot covers this sequence, so
    // sequences never repeat within the epoch.
    absl::MutexLock lock(&mu_);
    batch->set_sequence(++stats_.last_sequence);
  }
  for (BlockEventRun& run : runs) {
    BlockEvent* event = batch->add_events();
    FillEvent(event, run.kind, run.tier, run.namespace_id);
    event->set_chain_hashes(std::move(run.hashes));
  }
  // Test builds: lose the batch in transit. Its sequence is spent, so the router sees a gap at the
  // next batch and must ask for a snapshot; that repair path is what the fail point exercises.
  if (STRATA_FAIL_POINT_FIRES("router_link.drop_batch")) {
    Log(absl::StrCat("fail point router_link.drop_batch dropped batch ", batch->sequence(), " (",
                     runs.size(), " runs) to router ", options_.router));
    absl::MutexLock lock(&mu_);
    ++stats_.batches_dropped;
    return true;
  }
  if (!session.stream->Write(req)) {
    MarkBroken(session);
    return false;
  }
  absl::MutexLock lock(&mu_);
  ++stats_.batches_sent;
  return true;
}

void RouterLink::MarkBroken(Session& session) {
  absl::MutexLock lock(&mu_);
  session.broken = true;
  need_register_ = true;
  stats_.registered = false;
  if (session_loop_ != nullptr) session_loop_->Wake();
}

bool RouterLink::ReplyStep() {
  std::shared_ptr<Session> session;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || session_ == nullptr || session_->reads_done) return false;
    session = session_;
    session->reading = true;
  }
  PublishReply reply;
  const bool ok = session->stream->Read(&reply);
  absl::MutexLock lock(&mu_);
  session->reading = false;
  if (!ok) {
    session->reads_done = true;
    if (session == session_ && !stopping_) {
      session->broken = true;
      need_register_ = true;
      stats_.registered = false;
      if (session_loop_ != nullptr) session_loop_->Wake();
    }
    return false;
  }
  if (!session->got_reply) {
    session->got_reply = true;
    backoff_ = options_.retry_initial;  // the whole path works again: later retries start fast
  }
  if (reply.result() == PublishReply::APPLIED) return true;
  if (reply.result() == PublishReply::REJECTED) {
    Log(absl::StrCat("router ", options_.router, " rejected ", options_.node_id, "'s sequence ",
                     reply.sequence(), ": ", reply.message(), "; sending a snapshot"));
  }
  // SNAPSHOT_REQUIRED or REJECTED. Replies to what was sent before the latest snapshot (a
  // router answers each batch after a gap this way) are already answered by that snapshot.
  if (reply.sequence() > snapshot_sequence_) {
    snapshot_requested_ = true;
    if (session_loop_ != nullptr) session_loop_->Wake();
  }
  return true;
}

grpc::Status RouterLink::SendHeartbeat(bool draining) {
  strata::v1::HeartbeatRequest req;
  req.set_node_id(options_.node_id);
  req.set_epoch(options_.epoch);
  *req.mutable_load() = CurrentLoad(draining);
  strata::v1::HeartbeatResponse resp;
  return CallUnary([&](grpc::ClientContext* ctx) { return stub_->Heartbeat(ctx, req, &resp); });
}

bool RouterLink::HeartbeatStep() {
  bool draining;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || !stats_.registered || need_register_) return false;
    draining = draining_;
  }
  const grpc::Status s = SendHeartbeat(draining);
  absl::MutexLock lock(&mu_);
  if (stopping_) return false;
  if (s.ok()) {
    ++stats_.heartbeats_sent;
    heartbeat_failures_ = 0;
    if (reported_heartbeat_error_) {
      reported_heartbeat_error_ = false;
      Log(absl::StrCat("heartbeats to router ", options_.router, " succeed again"));
    }
    return false;
  }
  const bool forgotten = s.error_code() == grpc::StatusCode::NOT_FOUND ||
                         s.error_code() == grpc::StatusCode::FAILED_PRECONDITION;
  if (forgotten || ++heartbeat_failures_ >= kHeartbeatFailuresBeforeReconnect) {
    Log(absl::StrCat("heartbeat to router ", options_.router, " failed: ", CodeAndMessage(s),
                     "; registering again"));
    heartbeat_failures_ = 0;
    reported_heartbeat_error_ = false;
    need_register_ = true;
    stats_.registered = false;
    if (session_loop_ != nullptr) session_loop_->Wake();
  } else if (!reported_heartbeat_error_) {
    reported_heartbeat_error_ = true;
    Log(absl::StrCat("heartbeat to router ", options_.router, " failed: ", CodeAndMessage(s)));
  }
  return false;
}

strata::v1::NodeLoad RouterLink::CurrentLoad(bool draining) const {
  // The node's own queued_requests and prefill_tokens_in_flight are 0: it has no request queue
  // (every RPC runs at once on a gRPC thread), and only an engine knows its prefill work.
  LoadFigures own;
  own.running_requests = running_requests_ ? running_requests_() : 0;
  const StoreStats stats = store_->Stats();
  uint64_t used = 0, blocks = 0, free_hbm = 0;
  for (const StoreStats::PerTier& t : stats.tiers) {
    used += t.usage.used_bytes;
    blocks += t.usage.blocks;
    if (t.kind == TierKind::kHbm && t.usage.capacity_bytes > t.usage.used_bytes) {
      free_hbm = t.usage.capacity_bytes - t.usage.used_bytes;
    }
  }
  // Free bytes over the average stored block; with nothing stored yet, over the largest block a
  // put accepts, which never overstates the room (bytes over 1 would claim billions of blocks).
  const uint64_t per_block = blocks > 0 ? std::max<uint64_t>(1, used / blocks)
                                        : std::max<uint64_t>(1, store_->LargestBlockBytes());
  own.free_hbm_blocks = free_hbm / per_block;
  const LoadFigures merged = engines_ != nullptr ? engines_->Merge(own) : own;
  strata::v1::NodeLoad load;
  load.set_queued_requests(merged.queued_requests);
  load.set_running_requests(merged.running_requests);
  load.set_prefill_tokens_in_flight(merged.prefill_tokens_in_flight);
  load.set_free_hbm_blocks(merged.free_hbm_blocks);
  load.set_draining(draining);
  return load;
}

grpc::Status RouterLink::CallUnary(const std::function<grpc::Status(grpc::ClientContext*)>& call) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.rpc_timeout));
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return grpc::Status(grpc::StatusCode::CANCELLED, "router link stopping");
    unary_calls_.insert(&ctx);
  }
  const grpc::Status s = call(&ctx);
  absl::MutexLock lock(&mu_);
  unary_calls_.erase(&ctx);
  return s;
}

RouterLinkStats RouterLink::Stats() const {
  absl::MutexLock lock(&mu_);
  RouterLinkStats s = stats_;
  s.events_dropped = buffer_.dropped();
  return s;
}

void RouterLink::Log(const std::string& line) const {
  std::cerr << ("strata-cachenode: " + line + "\n") << std::flush;
}

}  // namespace strata::cachenode
