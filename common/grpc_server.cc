#include "common/grpc_server.h"

#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/resource_quota.h"

namespace strata::common {

absl::StatusOr<GrpcServer> StartGrpcServer(const std::string& listen,
                                           const std::vector<grpc::Service*>& services,
                                           int max_message_bytes,
                                           std::shared_ptr<grpc::ServerCredentials> credentials) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  GrpcServer out;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, credentials ? credentials : grpc::InsecureServerCredentials(),
                           &out.port);
  for (grpc::Service* s : services) builder.RegisterService(s);
  builder.SetMaxReceiveMessageSize(max_message_bytes);
  builder.SetMaxSendMessageSize(max_message_bytes);
  grpc::ResourceQuota quota(absl::StrCat("strata-server-", listen));
  quota.SetMaxThreads(kMaxServerThreads);
  builder.SetResourceQuota(quota);
  out.server = builder.BuildAndStart();
  if (out.server == nullptr || out.port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", listen));
  }
  out.server->GetHealthCheckService()->SetServingStatus(true);
  return out;
}

absl::StatusOr<GrpcServer> StartHealthServer(const std::string& listen) {
  return StartGrpcServer(listen, {}, 64 << 10, grpc::InsecureServerCredentials());
}

}  // namespace strata::common
