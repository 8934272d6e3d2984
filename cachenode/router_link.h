// RouterLink: the cache node's side of the router protocol (strata.v1.Router, router.proto).
//
// The link registers the node (id, advertised endpoint, epoch, load), heartbeats its load, and
// streams its tier events on one PublishEvents stream. Each stream starts with a snapshot: the
// store's full listing taken under the store mutex at a cut, tagged with the sequence S of the
// last batch sent before it, in chunks; batches S+1, S+2, ... carry the events after the cut. A
// snapshot is sent again when the router asks (SNAPSHOT_REQUIRED, or REJECTED of a later batch)
// and when the event buffer overflowed. Sequences only grow within an epoch, across reconnects.
//
// Failures: an unreachable router is retried with exponential backoff (one stderr line per state
// change); a broken stream, or a heartbeat answered NOT_FOUND / FAILED_PRECONDITION (the router
// restarted, expired the node, or holds another epoch), makes the link re-register under the same
// epoch and resend a snapshot on a fresh stream. A restarted node gets a new epoch, and its first
// snapshot announces what the SSD tier recovered.
//
// Load: the node's own figures are running_requests = its RPCs in flight and free_hbm_blocks =
// free HBM bytes over the average stored block (over the largest accepted block while nothing is
// stored; 0 without HBM); a node queues nothing and only an engine knows its prefill work. The
// engines on the node add theirs through an EngineLoadTable (engine_load.h), merged at each
// heartbeat. Heartbeats stay periodic: an engine report never sends one early (the router books
// its own routes as pending load until the next heartbeat replaces it).
//
// Router replicas: one link talks to one router. A node registered with several replicas runs one
// link per replica, each with its own event buffer, sequence numbers and snapshots; the store's one
// event stream reaches all of them through a BlockEventFanout (below), so a slow or dead replica
// never holds back or skips events for another.
//
// Threads: three small loops (session: register/snapshot/batches; replies: reads the stream;
// heartbeat), each a common::PeriodicLoop around a public step that tests call directly instead
// of starting the loops. Stop cancels every outstanding call, so it never waits on the network.
// Thread-safe.
//
// Fail point (test builds): "router_link.drop_batch" drops an event batch after its sequence was
// assigned, so the router sees a gap and must ask for a snapshot; each drop is one stderr line.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cachenode/block_events.h"
#include "cachenode/engine_load.h"
#include "cachenode/tiered_store.h"
#include "common/clock.h"
#include "common/grpc_security.h"
#include "common/periodic_loop.h"
#include "strata/v1/router.grpc.pb.h"

namespace strata::cachenode {

struct RouterLinkOptions {
  std::string router;     // HOST:PORT of strata-router; empty: no link at all
  std::string node_id;    // stable name of the node (the binary defaults it to the hostname)
  std::string advertise;  // HOST:PORT the router hands to clients for this node
  // Changes on every restart so the router drops the previous life's entries. 0: the time the link
  // is created, in ns since the Unix epoch (the binary passes its own start time).
  uint64_t epoch = 0;
  // Liveness versus chatter: the router removes a node after its TTL without heartbeats.
  absl::Duration heartbeat_interval = absl::Seconds(1);
  // How long events wait to be batched: bounds index staleness at the router (a route made in
  // this window may miss a fresh block, which costs a recompute, never wrong data).
  absl::Duration batch_interval = absl::Milliseconds(20);
  // 8192 events of 32-byte hashes is 256 KiB per batch, far below the 4 MiB message limit.
  uint32_t max_events_per_batch = 8192;
  // 64k hashes (2 MiB) per snapshot chunk keeps each message well under the 4 MiB gRPC limit.
  uint32_t snapshot_chunk_hashes = 64 * 1024;
  // Events held while the stream is slow or down (~32 MiB at 1M); past it the link resnapshots.
  size_t max_buffered_events = 1 << 20;
  // Registration retry backoff, doubling from initial to max while the router is unreachable.
  absl::Duration retry_initial = absl::Milliseconds(100);
  absl::Duration retry_max = absl::Seconds(5);
  // Deadline of each unary call (RegisterNode, Heartbeat).
  absl::Duration rpc_timeout = absl::Seconds(3);
  // TLS to the router, client certificate, and the `node` role's bearer token (plaintext when
  // unset).
  common::ChannelSecurityOptions security;

  bool enabled() const { return !router.empty(); }
  // InvalidArgument naming the bad field (checked only when enabled()).
  absl::Status Validate() const;
};

// Counters for logs and tests. A plain copy.
struct RouterLinkStats {
  uint64_t registrations = 0;      // successful RegisterNode calls
  uint64_t register_failures = 0;  // failed RegisterNode calls
  uint64_t streams_opened = 0;
  uint64_t snapshots_sent = 0;  // complete snapshots (all chunks written)
  uint64_t batches_sent = 0;
  uint64_t heartbeats_sent = 0;  // heartbeats the router answered OK
  uint64_t last_sequence = 0;    // of the last batch sent (or covered by a snapshot)
  uint64_t events_dropped = 0;   // by buffer overflows (each followed by a snapshot)
  uint64_t batches_dropped = 0;  // by the "router_link.drop_batch" fail point (test builds)
  bool registered = false;
};

// Forwards the store's block events to several sinks (one RouterLink buffer per router replica).
// The store has one sink; this is it when a node talks to more than one router. Called under the
// store mutex like any sink, so forwarding only appends to each buffer. Thread-safe; the sinks
// must outlive their membership (Remove before destroying one).
class BlockEventFanout final : public BlockEventSink {
 public:
  void Add(BlockEventSink* sink);
  void Remove(BlockEventSink* sink);
  void OnBlockEvent(BlockEventKind kind, TierKind tier, const BlockKey& key) override;

 private:
  mutable absl::Mutex mu_;
  std::vector<BlockEventSink*> sinks_ ABSL_GUARDED_BY(mu_);
};

class RouterLink {
 public:
  // Validates options, opens a channel (connects lazily) and attaches the event buffer to `store`
  // (which must outlive the link). `running_requests` (may be empty: 0) is called once per
  // heartbeat; `engines` (may be null: none) is merged into each heartbeat's load and must outlive
  // the link. With `fanout` (may be null) the event buffer joins it instead of becoming the
  // store's sink: the caller has made `fanout` the store's sink, and it must outlive the link.
  // InvalidArgument for bad options.
  static absl::StatusOr<std::unique_ptr<RouterLink>> Create(
      const RouterLinkOptions& options, TieredStore* store,
      std::function<uint32_t()> running_requests, const EngineLoadTable* engines = nullptr,
      common::Clock* clock = common::Clock::Real(), BlockEventFanout* fanout = nullptr);
  ~RouterLink();  // Stop(), then detaches the event buffer from the store (or the fanout).
  RouterLink(const RouterLink&) = delete;
  RouterLink& operator=(const RouterLink&) = delete;

  // Starts the session, reply and heartbeat loops. Idempotent.
  void Start();
  // Sends one heartbeat with draining=true (when registered; errors ignored: the node is going
  // away either way), then Stop(). Every later heartbeat would say draining too.
  void Shutdown();
  // Stops the loops and cancels the stream and any call in flight. Safe to call more than once;
  // the link cannot be started again.
  void Stop();

  // One session step: tear down a broken stream; register when needed (respecting the backoff)
  // and open a stream; send a snapshot when one is due, else one batch. True when it sent
  // something and more may be waiting.
  bool SessionStep();
  // Blocks until the next reply on the current stream, handles it. False when there is no stream
  // or it ended (which marks it broken for the session step).
  bool ReplyStep();
  // Sends one heartbeat when registered and handles its status. Always false (periodic).
  bool HeartbeatStep();

  uint64_t epoch() const { return options_.epoch; }
  RouterLinkStats Stats() const;

 private:
  struct Session;
  RouterLink(const RouterLinkOptions& options, TieredStore* store,
             std::function<uint32_t()> running_requests, const EngineLoadTable* engines,
             common::Clock* clock, BlockEventFanout* fanout,
             std::shared_ptr<grpc::ChannelCredentials> credentials);

  bool Register();
  bool OpenSession();
  void EndSession();
  bool SendSnapshot(Session& session);
  bool SendBatch(Session& session);
  void MarkBroken(Session& session);
  strata::v1::NodeLoad CurrentLoad(bool draining) const;
  // One Heartbeat call with the current load.
  grpc::Status SendHeartbeat(bool draining);
  // Runs one unary call with the rpc timeout, cancellable by Stop.
  grpc::Status CallUnary(const std::function<grpc::Status(grpc::ClientContext*)>& call);
  void Log(const std::string& line) const;

  const RouterLinkOptions options_;
  TieredStore* const store_;
  const std::function<uint32_t()> running_requests_;
  const EngineLoadTable* const engines_;
  common::Clock* const clock_;
  BlockEventFanout* const fanout_;  // null: buffer_ is the store's sink
  std::unique_ptr<strata::v1::Router::Stub> stub_;
  BlockEventBuffer buffer_;

  mutable absl::Mutex mu_;
  std::shared_ptr<Session> session_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<grpc::ClientContext*> unary_calls_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool need_register_ ABSL_GUARDED_BY(mu_) = true;
  bool snapshot_requested_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t snapshot_sequence_ ABSL_GUARDED_BY(mu_) = 0;  // S of the last snapshot cut
  absl::Time next_register_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Duration backoff_ ABSL_GUARDED_BY(mu_);
  bool reported_unreachable_ ABSL_GUARDED_BY(mu_) = false;
  bool reported_heartbeat_error_ ABSL_GUARDED_BY(mu_) = false;
  int heartbeat_failures_ ABSL_GUARDED_BY(mu_) = 0;  // in a row
  RouterLinkStats stats_ ABSL_GUARDED_BY(mu_);

  // Last: stopped (in Stop) before the members their steps use go away.
  std::unique_ptr<common::PeriodicLoop> session_loop_;
  std::unique_ptr<common::PeriodicLoop> reply_loop_;
  std::unique_ptr<common::PeriodicLoop> heartbeat_loop_;
};

}  // namespace strata::cachenode
