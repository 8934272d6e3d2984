#include "clients/fake_router.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace strata::clients {
namespace {

namespace v1 = ::strata::v1;

// The chain checks router.proto promises for Route and Locate, so a client that sends a malformed
// request is caught.
template <typename Request>
grpc::Status CheckChain(const Request& request) {
  if (request.chain_hashes().empty() && request.token_ids().empty()) {
    return grpc::Status(grpc::INVALID_ARGUMENT, "no chain hashes and no token ids");
  }
  for (const std::string& hash : request.chain_hashes()) {
    if (hash.size() != 32) {
      return grpc::Status(grpc::INVALID_ARGUMENT,
                          absl::StrCat("a hash of ", hash.size(), " bytes"));
    }
  }
  return grpc::Status::OK;
}

}  // namespace

FakeRouter::FakeRouter() {
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(this);
  server_ = builder.BuildAndStart();
  address_ = absl::StrCat("127.0.0.1:", port);
}

FakeRouter::~FakeRouter() { server_->Shutdown(); }

void FakeRouter::SetRouteResponse(v1::RouteResponse response) {
  absl::MutexLock lock(&mu_);
  decisions_.insert(response.decision_id());
  route_response_ = std::move(response);
}

void FakeRouter::SetLocateResponse(v1::LocateResponse response) {
  absl::MutexLock lock(&mu_);
  locate_response_ = std::move(response);
}

void FakeRouter::SetNodes(std::vector<v1::NodeInfo> nodes) {
  absl::MutexLock lock(&mu_);
  nodes_ = std::move(nodes);
}

void FakeRouter::SetExperimentReport(v1::ExperimentReport report) {
  absl::MutexLock lock(&mu_);
  report_ = std::move(report);
}

void FakeRouter::FailNextCalls(int times, grpc::Status status) {
  failures_.FailNextCalls(times, std::move(status));
}

int FakeRouter::calls() const { return failures_.calls(); }

v1::RouteRequest FakeRouter::last_route() const {
  absl::MutexLock lock(&mu_);
  return last_route_;
}

v1::LocateRequest FakeRouter::last_locate() const {
  absl::MutexLock lock(&mu_);
  return last_locate_;
}

v1::ReportOutcomeRequest FakeRouter::last_outcome() const {
  absl::MutexLock lock(&mu_);
  return last_outcome_;
}

std::string FakeRouter::last_spec() const {
  absl::MutexLock lock(&mu_);
  return last_spec_;
}

grpc::Status FakeRouter::Route(grpc::ServerContext*, const v1::RouteRequest* request,
                               v1::RouteResponse* response) {
  if (grpc::Status s = Enter(); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  last_route_ = *request;
  if (grpc::Status s = CheckChain(*request); !s.ok()) return s;
  if (request->policy() == "bogus") {
    return grpc::Status(grpc::INVALID_ARGUMENT, "unknown policy 'bogus'");
  }
  if (nodes_.empty()) return grpc::Status(grpc::UNAVAILABLE, "no live node");
  *response = route_response_;
  return grpc::Status::OK;
}

grpc::Status FakeRouter::Locate(grpc::ServerContext*, const v1::LocateRequest* request,
                                v1::LocateResponse* response) {
  if (grpc::Status s = Enter(); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  last_locate_ = *request;
  if (grpc::Status s = CheckChain(*request); !s.ok()) return s;
  *response = locate_response_;
  return grpc::Status::OK;
}

grpc::Status FakeRouter::ReportOutcome(grpc::ServerContext*,
                                       const v1::ReportOutcomeRequest* request,
                                       v1::ReportOutcomeResponse*) {
  if (grpc::Status s = Enter(); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  last_outcome_ = *request;
  if (!decisions_.contains(request->decision_id())) {
    return grpc::Status(grpc::NOT_FOUND,
                        absl::StrCat("unknown decision id ", request->decision_id()));
  }
  return grpc::Status::OK;
}

grpc::Status FakeRouter::ListNodes(grpc::ServerContext*, const v1::ListNodesRequest*,
                                   v1::ListNodesResponse* response) {
  if (grpc::Status s = Enter(); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  for (const v1::NodeInfo& node : nodes_) *response->add_nodes() = node;
  return grpc::Status::OK;
}

grpc::Status FakeRouter::SetExperiment(grpc::ServerContext*,
                                       const v1::SetExperimentRequest* request,
                                       v1::ExperimentReport* response) {
  if (grpc::Status s = Enter(); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  last_spec_ = request->spec();
  report_.set_spec(request->spec());
  *response = report_;
  return grpc::Status::OK;
}

grpc::Status FakeRouter::GetExperimentReport(grpc::ServerContext*,
                                             const v1::GetExperimentReportRequest*,
                                             v1::ExperimentReport* response) {
  if (grpc::Status s = Enter(); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  *response = report_;
  return grpc::Status::OK;
}

}  // namespace strata::clients
