#include "router/vllm_source.h"

#include <iostream>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/namespace_id.h"
#include "router/vllm_subscriber.h"

namespace strata::router {

absl::StatusOr<std::vector<VllmSourceSpec>> ParseVllmSourceSpecs(
    const std::vector<std::string>& entries, const std::string& namespace_name,
    uint32_t block_size) {
  std::vector<VllmSourceSpec> specs;
  std::set<std::string> ids;
  for (const std::string& entry : entries) {
    if (entry.empty()) continue;
    const size_t eq = entry.rfind('=');
    if (eq == std::string::npos || eq + 1 == entry.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", entry, "': expected tcp://HOST:PORT=NODE_ID"));
    }
    VllmSourceSpec spec{entry.substr(0, eq), entry.substr(eq + 1), namespace_name, block_size};
    if (spec.endpoint.rfind("tcp://", 0) != 0 || spec.endpoint.size() <= 6 ||
        spec.endpoint.find(':', 6) == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", entry, "': the endpoint must be tcp://HOST:PORT"));
    }
    if (!ids.insert(spec.node_id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("node id '", spec.node_id, "' is named by two sources"));
    }
    specs.push_back(std::move(spec));
  }
  return specs;
}

struct VllmSource::Impl {
  VllmSourceSpec spec;
  RouterCore* core = nullptr;
  NodeSlot slot = kNoSlot;
  uint64_t epoch = 0;
  uint64_t next_sequence = 1;  // the loop thread is the only writer
  std::unique_ptr<VllmSubscriber> subscriber;

  // Runs on the subscriber's loop thread, in stream order: one ingest batch per engine batch.
  void Apply(const VllmSubscriberUpdate& update) {
    std::vector<IngestEvent> events;
    events.reserve(update.events.size());
    for (const VllmIndexEvent& e : update.events) {
      // A clear arrives as the keys that were live in a tier: removing exactly those is precise.
      const IngestEvent::Kind kind = e.kind == VllmIndexEvent::kStored
                                         ? IngestEvent::Kind::kStored
                                         : IngestEvent::Kind::kRemoved;
      events.push_back(IngestEvent{kind, e.tier, e.keys});
    }
    if (events.empty()) return;
    IngestReply r = core->ingest().ApplyBatch(slot, epoch, next_sequence, events);
    if (r.result == IngestReply::Result::kApplied) {
      ++next_sequence;
    } else {
      std::cerr << "strata-router: vllm " << spec.node_id << ": batch not applied: " << r.message
                << "\n";
    }
  }
};

absl::StatusOr<std::unique_ptr<VllmSource>> VllmSource::Start(const VllmSourceSpec& spec,
                                                              RouterCore* core) {
  if (absl::Status s = common::ValidateNamespaceName(spec.namespace_name); !s.ok()) return s;
  auto impl = std::make_unique<Impl>();
  impl->spec = spec;
  impl->core = core;
  impl->epoch = static_cast<uint64_t>(absl::ToUnixNanos(core->clock()->Now()));
  auto reg =
      core->RegisterNode(spec.node_id, spec.endpoint.substr(6), impl->epoch, {}, NodeSource::kVllm);
  if (!reg.ok()) return reg.status();
  impl->slot = reg->slot;
  // The engine cannot send a snapshot: the router starts from empty and follows the stream.
  IngestReply r = core->ingest().ApplySnapshotChunk(impl->slot, impl->epoch, 0, 0, true, {});
  if (r.result != IngestReply::Result::kApplied) return absl::InternalError(r.message);

  VllmSubscriberOptions options;
  options.endpoint = spec.endpoint;
  options.node_id = spec.node_id;
  options.namespace_name = spec.namespace_name;
  options.block_size = spec.block_size;
  impl->subscriber = std::make_unique<VllmSubscriber>(options);
  Impl* raw = impl.get();
  if (absl::Status s =
          impl->subscriber->Start([raw](const VllmSubscriberUpdate& u) { raw->Apply(u); });
      !s.ok()) {
    return s;
  }
  return std::unique_ptr<VllmSource>(new VllmSource(std::move(impl)));
}

VllmSource::VllmSource(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
VllmSource::~VllmSource() { Stop(); }

void VllmSource::Stop() {
  if (impl_->subscriber) impl_->subscriber->Stop();
}

void VllmSource::AppendCounters(std::vector<ExtraCounter>* out) const {
  const VllmSubscriberStats s = impl_->subscriber->stats();
  const std::vector<std::pair<std::string, std::string>> labels = {{"node", impl_->spec.node_id}};
  auto add = [&](const char* name, const char* help, uint64_t v) {
    out->push_back(ExtraCounter{name, help, labels, static_cast<double>(v)});
  };
  add("strata_router_vllm_messages_total", "vLLM KV event messages received.", s.messages);
  add("strata_router_vllm_malformed_total", "vLLM KV event messages dropped as malformed.",
      s.malformed);
  add("strata_router_vllm_sequence_gaps_total", "Forward jumps in a vLLM event sequence.",
      s.sequence_gaps);
  add("strata_router_vllm_batches_lost_total", "vLLM event batches lost to sequence gaps.",
      s.batches_lost);
  add("strata_router_vllm_blocks_stored_total", "vLLM stored blocks indexed.",
      s.mapper.blocks_stored);
  add("strata_router_vllm_blocks_removed_total", "vLLM removed blocks applied.",
      s.mapper.blocks_removed);
  for (const auto& [reason, v] :
       {std::pair<const char*, uint64_t>{"block_size", s.mapper.block_size_mismatches},
        {"malformed", s.mapper.malformed_blocks}}) {
    std::vector<std::pair<std::string, std::string>> l = labels;
    l.push_back({"reason", reason});
    out->push_back(ExtraCounter{"strata_router_vllm_skipped_blocks_total",
                                "vLLM stored blocks skipped: another block size, or token ids "
                                "that do not fill the blocks.",
                                std::move(l), static_cast<double>(v)});
  }
  add("strata_router_vllm_unresolved_blocks_total",
      "vLLM stored blocks skipped because their parent was unknown.",
      s.mapper.unresolved_parent_blocks);
}

}  // namespace strata::router
