#include "router/vllm_subscriber.h"

#include <iostream>
#include <iterator>
#include <utility>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "absl/strings/str_cat.h"
#include "common/namespace_id.h"
#include "common/periodic_loop.h"
#include "common/string_view_interop.h"

namespace strata::router {
namespace {

// Messages the SUB socket queues while the sink is busy. vLLM publishes about one batch per
// scheduler step (tens to hundreds a second); this absorbs seconds of a stalled sink, and an
// overflow shows up as a counted sequence gap rather than unbounded memory.
constexpr int kReceiveHighWaterMark = 10000;

bool IsPowerOfTwo(uint64_t n) { return n != 0 && (n & (n - 1)) == 0; }

}  // namespace

absl::Status VllmSubscriberOptions::Validate() const {
  if (endpoint.find("://") == std::string::npos) {
    return absl::InvalidArgumentError(
        common::Concat("vllm endpoint '", endpoint, "' is not of the form tcp://HOST:PORT"));
  }
  if (node_id.empty()) return absl::InvalidArgumentError("vllm node id is empty");
  if (absl::Status s = common::ValidateNamespaceName(namespace_name); !s.ok()) {
    return absl::InvalidArgumentError(common::Concat("vllm namespace: ", s.message()));
  }
  if (receive_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("vllm receive_timeout must be > 0");
  }
  return absl::OkStatus();
}

VllmSubscriber::VllmSubscriber(VllmSubscriberOptions options)
    : options_(std::move(options)),
      mapper_(common::NamespaceIdOf(options_.namespace_name), options_.block_size) {}

VllmSubscriber::~VllmSubscriber() { Stop(); }

absl::Status VllmSubscriber::Start(Sink sink) {
  if (loop_ != nullptr) return absl::FailedPreconditionError("vllm subscriber already running");
  if (absl::Status s = options_.Validate(); !s.ok()) return s;
  try {
    auto context = std::make_unique<zmq::context_t>(1);
    auto socket = std::make_unique<zmq::socket_t>(*context, zmq::socket_type::sub);
    socket->set(zmq::sockopt::linger, 0);
    socket->set(zmq::sockopt::rcvhwm, kReceiveHighWaterMark);
    // A frame larger than the decoder would accept is refused by ZeroMQ itself (it disconnects the
    // publisher) rather than received whole and then dropped.
    socket->set(zmq::sockopt::maxmsgsize,
                static_cast<int64_t>(VllmDecodeLimits{}.max_payload_bytes));
    socket->set(zmq::sockopt::rcvtimeo,
                static_cast<int>(absl::ToInt64Milliseconds(options_.receive_timeout)));
    socket->set(zmq::sockopt::subscribe, options_.topic);
    socket->connect(options_.endpoint);
    context_ = std::move(context);
    socket_ = std::move(socket);
  } catch (const zmq::error_t& e) {
    return absl::InvalidArgumentError(
        common::Concat("vllm endpoint '", options_.endpoint, "': ", e.what()));
  }
  sink_ = std::move(sink);
  // The receive itself waits (receive_timeout), so the loop needs no idle period of its own.
  loop_ = std::make_unique<common::PeriodicLoop>([this] { return Step(); }, absl::ZeroDuration());
  loop_->Start();
  return absl::OkStatus();
}

void VllmSubscriber::Stop() {
  if (loop_ == nullptr) return;
  loop_->Stop();
  loop_.reset();
  socket_.reset();
  context_.reset();
  sink_ = nullptr;
}

bool VllmSubscriber::Step() {
  std::vector<zmq::message_t> parts;
  try {
    if (!zmq::recv_multipart(*socket_, std::back_inserter(parts))) return false;
  } catch (const zmq::error_t& e) {
    // EINTR and the like: try again on the next step rather than end the stream.
    std::cerr << "strata-router: vllm " << options_.node_id << ": receive failed: " << e.what()
              << "\n";
    return false;
  }
  std::vector<std::string_view> frames;
  frames.reserve(parts.size());
  for (const zmq::message_t& p : parts) frames.emplace_back(p.data<char>(), p.size());
  std::optional<VllmSubscriberUpdate> update = HandleMessage(frames);
  if (update.has_value()) sink_(*update);
  return true;
}

std::optional<VllmSubscriberUpdate> VllmSubscriber::HandleMessage(
    std::span<const std::string_view> frames) {
  absl::MutexLock lock(&mu_);
  ++stats_.messages;
  if (frames.size() != 3) {
    LogMalformed(absl::StrCat(frames.size(), " frames, want 3 (topic, sequence, payload)"));
    return std::nullopt;
  }
  absl::StatusOr<uint64_t> seq = DecodeVllmSequence(frames[1]);
  if (!seq.ok()) {
    LogMalformed(common::ToStd(seq.status().message()));
    return std::nullopt;
  }
  VllmSubscriberUpdate update;
  update.node_id = options_.node_id;
  update.sequence = *seq;
  if (stats_.last_sequence.has_value()) {
    const uint64_t expected = *stats_.last_sequence + 1;
    if (*seq > expected) {
      ++stats_.sequence_gaps;
      stats_.batches_lost += *seq - expected;
      std::cerr << "strata-router: vllm " << options_.node_id << ": sequence gap: expected "
                << expected << ", got " << *seq << " (" << (*seq - expected) << " batches lost)\n";
    } else if (*seq < expected) {
      // vLLM numbers batches from 0 per publisher process: going back means the engine restarted
      // and its prefix cache is empty, so everything it reported before is gone.
      ++stats_.restarts;
      update.events = mapper_.Reset();
      std::cerr << "strata-router: vllm " << options_.node_id << ": sequence went back from "
                << expected - 1 << " to " << *seq
                << ": engine restarted; its previously indexed blocks are dropped\n";
    }
  }
  // A malformed payload still advances the sequence, so it is not also reported as a gap.
  stats_.last_sequence = *seq;
  absl::StatusOr<VllmBatch> batch = DecodeVllmBatch(frames[2]);
  if (!batch.ok()) {
    LogMalformed(common::Concat("sequence ", absl::StrCat(*seq), ": ", batch.status().message()));
    // A restart's clear must still reach the index even though this batch is lost.
    if (!update.events.empty()) return update;
    return std::nullopt;
  }
  for (VllmIndexEvent& e : mapper_.Apply(*batch)) update.events.push_back(std::move(e));
  return update;
}

void VllmSubscriber::LogMalformed(std::string_view what) {
  ++stats_.malformed;
  // A publisher speaking another format would otherwise log once per batch.
  if (!IsPowerOfTwo(stats_.malformed)) return;
  std::cerr << "strata-router: vllm " << options_.node_id << ": malformed message dropped ("
            << stats_.malformed << " so far): " << what << "\n";
}

VllmSubscriberStats VllmSubscriber::stats() const {
  absl::MutexLock lock(&mu_);
  VllmSubscriberStats out = stats_;
  out.mapper = mapper_.stats();
  return out;
}

}  // namespace strata::router
