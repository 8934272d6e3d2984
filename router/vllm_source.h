// VllmSource: one vLLM engine's KV event stream wired into the router as a node.
//
// `--vllm-events tcp://HOST:PORT=NODE_ID` names the engine's ZMQ publisher and the node id its
// blocks are indexed under. Start registers NODE_ID as a static member (source "vllm": no
// heartbeats, no expiry), installs an empty snapshot, and runs a VllmSubscriber whose decoded,
// rehashed events are applied to the index as that node's batches. The engine's blocks count as
// the node's HBM tier. Thread-safe; Stop is idempotent.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "router/metrics_exporter.h"
#include "router/router_core.h"

namespace strata::router {

struct VllmSourceSpec {
  std::string endpoint;  // "tcp://HOST:PORT"
  std::string node_id;
  std::string namespace_name;  // the token ids are hashed under this namespace
  // The namespace's tokens per block; an engine event with another block_size is skipped (and
  // counted), since its keys would never match a request. 0: accept any.
  uint32_t block_size = 0;
};

// Parses "tcp://HOST:PORT=NODE_ID" entries. InvalidArgument naming the bad entry (missing '=',
// empty id, not tcp://, duplicate node id).
absl::StatusOr<std::vector<VllmSourceSpec>> ParseVllmSourceSpecs(
    const std::vector<std::string>& entries, const std::string& namespace_name,
    uint32_t block_size = 0);

class VllmSource {
 public:
  // Registers the node and starts subscribing. InvalidArgument for a bad namespace; the error of
  // registration otherwise. The core must outlive the source.
  static absl::StatusOr<std::unique_ptr<VllmSource>> Start(const VllmSourceSpec& spec,
                                                           RouterCore* core);
  ~VllmSource();

  void Stop();
  // The subscriber's counters (batches, gaps, malformed messages, unresolved parents) as metrics.
  void AppendCounters(std::vector<ExtraCounter>* out) const;

 private:
  struct Impl;
  explicit VllmSource(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::router
