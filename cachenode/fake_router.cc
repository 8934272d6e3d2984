#include "cachenode/fake_router.h"

#include <chrono>

#include "absl/strings/str_cat.h"

namespace strata::cachenode {

using strata::v1::BlockEvent;
using strata::v1::PublishReply;
using strata::v1::PublishRequest;

std::vector<std::string> DescribeBlocks(const BlockEvent& event) {
  const char* tier = event.tier() == strata::v1::TIER_HBM    ? "hbm"
                     : event.tier() == strata::v1::TIER_DRAM ? "dram"
                                                             : "ssd";
  std::vector<std::string> out;
  for (size_t i = 0; i + 32 <= event.chain_hashes().size(); i += 32) {
    out.push_back(absl::StrCat(event.kind() == BlockEvent::STORED ? "+" : "-", tier, " ",
                               static_cast<int>(static_cast<uint8_t>(event.chain_hashes()[i]))));
  }
  return out;
}

int Received::complete_snapshots() const {
  int n = 0;
  for (const PublishRequest& r : published) n += r.has_snapshot() && r.snapshot().last();
  return n;
}

std::vector<std::string> Received::batch_events() const {
  std::vector<std::string> out;
  for (const PublishRequest& r : published) {
    if (!r.has_batch()) continue;
    for (const BlockEvent& e : r.batch().events()) {
      for (std::string& d : DescribeBlocks(e)) out.push_back(std::move(d));
    }
  }
  return out;
}

grpc::Status FakeRouter::RegisterNode(grpc::ServerContext*,
                                      const strata::v1::RegisterNodeRequest* req,
                                      strata::v1::RegisterNodeResponse* resp) {
  absl::MutexLock lock(&mu_);
  received_.registrations.push_back(*req);
  known_ = true;
  resp->set_heartbeat_interval_ms(1000);
  resp->set_ttl_ms(10000);
  resp->set_snapshot_required(true);
  return grpc::Status::OK;
}

grpc::Status FakeRouter::Heartbeat(grpc::ServerContext*, const strata::v1::HeartbeatRequest* req,
                                   strata::v1::HeartbeatResponse*) {
  absl::MutexLock lock(&mu_);
  received_.heartbeats.push_back(*req);
  if (!known_) return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown node");
  return grpc::Status::OK;
}

grpc::Status FakeRouter::PublishEvents(
    grpc::ServerContext*, grpc::ServerReaderWriter<PublishReply, PublishRequest>* stream) {
  {
    absl::MutexLock lock(&mu_);
    if (refuse_streams_) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "unregistered node");
    }
  }
  PublishRequest req;
  while (stream->Read(&req)) {
    PublishReply reply;
    {
      absl::MutexLock lock(&mu_);
      received_.published.push_back(req);
      if (req.has_batch()) {
        reply.set_sequence(req.batch().sequence());
        reply.set_result(snapshot_required_next_ ? PublishReply::SNAPSHOT_REQUIRED
                                                 : PublishReply::APPLIED);
        snapshot_required_next_ = false;
      } else if (req.snapshot().last()) {
        reply.set_sequence(req.snapshot().sequence());
        reply.set_result(PublishReply::APPLIED);
      } else {
        continue;  // a snapshot chunk before the last one is not answered
      }
    }
    if (!stream->Write(reply)) break;
  }
  return grpc::Status::OK;
}

void FakeRouter::Forget() {
  absl::MutexLock lock(&mu_);
  known_ = false;
}

void FakeRouter::RequireSnapshotOnNextBatch() {
  absl::MutexLock lock(&mu_);
  snapshot_required_next_ = true;
}

void FakeRouter::RefuseStreams() {
  absl::MutexLock lock(&mu_);
  refuse_streams_ = true;
}

bool FakeRouter::WaitUntil(const std::function<bool(const Received&)>& pred,
                           absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto holds = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pred(received_); };
  return mu_.AwaitWithTimeout(absl::Condition(&holds), timeout);
}

Received FakeRouter::received() const {
  absl::MutexLock lock(&mu_);
  return received_;
}

FakeRouterServer::FakeRouterServer(int port) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat("127.0.0.1:", port), grpc::InsecureServerCredentials(),
                           &port_);
  builder.RegisterService(&router_);
  server_ = builder.BuildAndStart();
}

FakeRouterServer::~FakeRouterServer() {
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  }
}

std::string FakeRouterServer::address() const { return absl::StrCat("127.0.0.1:", port_); }

}  // namespace strata::cachenode
