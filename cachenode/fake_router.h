// FakeRouter: a test-only strata.v1.Router service for the router link's tests. It records every
// registration, heartbeat and published message, answers as router.proto says (APPLIED for each
// batch and each completed snapshot; NOT_FOUND for a heartbeat of a node it does not know), and can
// be told to forget the node, to ask for a snapshot, or to refuse event streams. Compiled into
// cachenode_test only, never into strata_cachenode. Thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "strata/v1/router.grpc.pb.h"

namespace strata::cachenode {

// An event's blocks as "+dram 3" / "-ssd 3": kind, tier and the first byte of each hash (tests name
// blocks by that byte).
std::vector<std::string> DescribeBlocks(const strata::v1::BlockEvent& event);

// What the fake router received, in arrival order.
struct Received {
  std::vector<strata::v1::RegisterNodeRequest> registrations;
  std::vector<strata::v1::HeartbeatRequest> heartbeats;
  std::vector<strata::v1::PublishRequest> published;

  // Snapshots whose last chunk arrived.
  int complete_snapshots() const;
  // The blocks of every batch, in order, as DescribeBlocks spells them.
  std::vector<std::string> batch_events() const;
};

class FakeRouter final : public strata::v1::Router::Service {
 public:
  grpc::Status RegisterNode(grpc::ServerContext*, const strata::v1::RegisterNodeRequest* req,
                            strata::v1::RegisterNodeResponse* resp) override;
  grpc::Status Heartbeat(grpc::ServerContext*, const strata::v1::HeartbeatRequest* req,
                         strata::v1::HeartbeatResponse*) override;
  grpc::Status PublishEvents(grpc::ServerContext*,
                             grpc::ServerReaderWriter<strata::v1::PublishReply,
                                                      strata::v1::PublishRequest>* stream) override;

  // Answers heartbeats NOT_FOUND until the node registers again (an expiry, or a router restart
  // that kept the connection).
  void Forget();
  // Answers the next batch SNAPSHOT_REQUIRED.
  void RequireSnapshotOnNextBatch();
  // Ends every later event stream at once with FAILED_PRECONDITION.
  void RefuseStreams();

  // Waits until `pred` holds for what was received; false after `timeout`.
  bool WaitUntil(const std::function<bool(const Received&)>& pred, absl::Duration timeout);
  Received received() const;

 private:
  mutable absl::Mutex mu_;
  Received received_ ABSL_GUARDED_BY(mu_);
  bool known_ ABSL_GUARDED_BY(mu_) = false;
  bool snapshot_required_next_ ABSL_GUARDED_BY(mu_) = false;
  bool refuse_streams_ ABSL_GUARDED_BY(mu_) = false;
};

// A FakeRouter served on 127.0.0.1, on a free port or the given one. Destruction shuts the server
// down, cancelling open streams after one second.
class FakeRouterServer {
 public:
  explicit FakeRouterServer(int port = 0);
  ~FakeRouterServer();

  bool ok() const { return server_ != nullptr && port_ > 0; }
  int port() const { return port_; }
  std::string address() const;
  FakeRouter& router() { return router_; }

 private:
  FakeRouter router_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace strata::cachenode
