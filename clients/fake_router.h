// Test-only: an in-process Router gRPC server with canned answers, for clients_test.
//
// It records the last request of each query RPC so tests can check what went on the wire, answers
// Route and Locate with the responses set by the test (INVALID_ARGUMENT for a request router.proto
// calls malformed; Route UNAVAILABLE while no node is set), accepts ReportOutcome only for decision
// ids it handed out, and can fail the next calls with a given status. Membership and event ingest
// are left UNIMPLEMENTED. Thread-safe. Linked only into tests.
#pragma once

#include <grpcpp/server.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "clients/fake_failures.h"
#include "strata/v1/router.grpc.pb.h"

namespace strata::clients {

class FakeRouter final : public strata::v1::Router::Service {
 public:
  FakeRouter();
  ~FakeRouter() override;

  // "127.0.0.1:PORT" of the running server.
  const std::string& address() const { return address_; }

  // What Route answers; its decision id becomes valid for ReportOutcome.
  void SetRouteResponse(strata::v1::RouteResponse response);
  // What Locate answers (to any well-formed request, with or without live nodes).
  void SetLocateResponse(strata::v1::LocateResponse response);
  // What ListNodes answers; Route answers UNAVAILABLE while this is empty.
  void SetNodes(std::vector<strata::v1::NodeInfo> nodes);
  // What both experiment calls answer (SetExperiment replaces its spec with the one sent).
  void SetExperimentReport(strata::v1::ExperimentReport report);
  // The next `times` calls of any RPC fail with `status` before doing anything.
  void FailNextCalls(int times, grpc::Status status);

  int calls() const;
  strata::v1::RouteRequest last_route() const;
  strata::v1::LocateRequest last_locate() const;
  strata::v1::ReportOutcomeRequest last_outcome() const;
  std::string last_spec() const;

  grpc::Status Route(grpc::ServerContext* context, const strata::v1::RouteRequest* request,
                     strata::v1::RouteResponse* response) override;
  grpc::Status Locate(grpc::ServerContext* context, const strata::v1::LocateRequest* request,
                      strata::v1::LocateResponse* response) override;
  grpc::Status ReportOutcome(grpc::ServerContext* context,
                             const strata::v1::ReportOutcomeRequest* request,
                             strata::v1::ReportOutcomeResponse* response) override;
  grpc::Status ListNodes(grpc::ServerContext* context, const strata::v1::ListNodesRequest* request,
                         strata::v1::ListNodesResponse* response) override;
  grpc::Status SetExperiment(grpc::ServerContext* context,
                             const strata::v1::SetExperimentRequest* request,
                             strata::v1::ExperimentReport* response) override;
  grpc::Status GetExperimentReport(grpc::ServerContext* context,
                                   const strata::v1::GetExperimentReportRequest* request,
                                   strata::v1::ExperimentReport* response) override;

 private:
  // Counts the call; returns the injected failure, if one is pending.
  grpc::Status Enter() { return failures_.Enter(); }

  mutable absl::Mutex mu_;
  strata::v1::RouteResponse route_response_ ABSL_GUARDED_BY(mu_);
  strata::v1::LocateResponse locate_response_ ABSL_GUARDED_BY(mu_);
  std::vector<strata::v1::NodeInfo> nodes_ ABSL_GUARDED_BY(mu_);
  strata::v1::ExperimentReport report_ ABSL_GUARDED_BY(mu_);
  std::set<uint64_t> decisions_ ABSL_GUARDED_BY(mu_);
  FakeFailures failures_;
  strata::v1::RouteRequest last_route_ ABSL_GUARDED_BY(mu_);
  strata::v1::LocateRequest last_locate_ ABSL_GUARDED_BY(mu_);
  strata::v1::ReportOutcomeRequest last_outcome_ ABSL_GUARDED_BY(mu_);
  std::string last_spec_ ABSL_GUARDED_BY(mu_);

  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

}  // namespace strata::clients
