// VllmSubscriber: follows one vLLM engine's KV event stream (ZMQ PUB, see vllm_events.h) and turns
// it into index changes for the engine's node (DESIGN section 5).
//
// A background loop owns a SUB socket connected to the engine's endpoint (ZMQ reconnects by
// itself). Each message is `[topic, 8-byte big-endian sequence, msgpack KVEventBatch]`. The first
// message sets the sequence; each next one must be the previous + 1. A jump forward is a gap
// (batches lost: counted and logged; the stream goes on, since the engine cannot resend without
// vLLM's optional replay socket). A jump back means the engine's publisher restarted, and with it
// its cache: the source's live keys are reported cleared and the mapping starts over. A malformed
// message is counted and logged (rate-limited), never fatal. Messages published before the
// subscription reaches the engine are lost (ZMQ's slow joiner): blocks stored then are never
// indexed and later chains built on them count as unresolved.
//
// Start/Stop belong to the owner's thread; stats() may be called from any thread. The sink runs on
// the loop thread, one update at a time, in stream order, with no lock held; it must not call
// Stop().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "router/vllm_events.h"

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace strata::common {
class PeriodicLoop;
}  // namespace strata::common

namespace strata::router {

struct VllmSubscriberOptions {
  // The engine's PUB endpoint, "tcp://HOST:PORT" (vLLM's --kv-events-config endpoint, with the
  // port offset by the data-parallel rank).
  std::string endpoint;
  // The node the engine's blocks are indexed under.
  std::string node_id;
  // The namespace the engine's blocks belong to (model, dtype, layout, TP rank, block size).
  std::string namespace_name;
  // ZMQ prefix filter on the topic frame; "" takes every topic.
  std::string topic;
  // The engine's page size when known (0: accept any). A mismatch means keys that no Strata
  // request would produce, so such blocks are skipped and counted.
  uint32_t block_size = 0;
  // How long one receive waits. Shorter: Stop() returns sooner; longer: fewer idle wakeups.
  absl::Duration receive_timeout = absl::Milliseconds(100);

  // InvalidArgument naming the bad field.
  absl::Status Validate() const;
};

// One batch's index changes for one node.
struct VllmSubscriberUpdate {
  std::string node_id;
  uint64_t sequence = 0;
  std::vector<VllmIndexEvent> events;  // may be empty (a batch that changed nothing)
};

struct VllmSubscriberStats {
  uint64_t messages = 0;                  // multipart messages received
  uint64_t malformed = 0;                 // messages dropped: bad framing, sequence or payload
  uint64_t sequence_gaps = 0;             // forward jumps in the sequence
  uint64_t batches_lost = 0;              // sum of the jumps' sizes
  uint64_t restarts = 0;                  // backward jumps (publisher restarted)
  std::optional<uint64_t> last_sequence;  // of the last message with a valid sequence frame
  VllmMapperStats mapper;
};

class VllmSubscriber {
 public:
  using Sink = std::function<void(const VllmSubscriberUpdate&)>;

  explicit VllmSubscriber(VllmSubscriberOptions options);
  ~VllmSubscriber();  // Stop()s
  VllmSubscriber(const VllmSubscriber&) = delete;
  VllmSubscriber& operator=(const VllmSubscriber&) = delete;

  // Validates the options, connects the socket and starts the loop delivering to `sink`.
  // InvalidArgument for bad options or an endpoint ZMQ rejects; FailedPrecondition when running.
  absl::Status Start(Sink sink);
  // Stops the loop (within about one receive_timeout) and closes the socket; no sink call
  // happens after it returns. Idempotent. Mapping and sequence state survive a restart.
  void Stop();

  // The loop's work for one received message, without the socket: checks the sequence, decodes,
  // maps. nullopt when the message is malformed (counted and logged). Not concurrently with a
  // running loop; tests call it directly.
  std::optional<VllmSubscriberUpdate> HandleMessage(std::span<const std::string_view> frames);

  VllmSubscriberStats stats() const;

 private:
  // Receives and handles one message; false when none came within receive_timeout.
  bool Step();
  void LogMalformed(std::string_view what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const VllmSubscriberOptions options_;
  Sink sink_;  // set by Start, read by the loop thread only while it runs
  std::unique_ptr<zmq::context_t> context_;
  std::unique_ptr<zmq::socket_t> socket_;  // used by the loop thread only while it runs
  std::unique_ptr<common::PeriodicLoop> loop_;

  mutable absl::Mutex mu_;
  VllmKeyMapper mapper_ ABSL_GUARDED_BY(mu_);
  VllmSubscriberStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace strata::router
