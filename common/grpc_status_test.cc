#include "common/grpc_status.h"

#include "gtest/gtest.h"

namespace strata::common {
namespace {

TEST(GrpcStatusTest, CodesAndMessagesRoundTrip) {
  for (auto s : {absl::InvalidArgumentError("bad hash"), absl::ResourceExhaustedError("full"),
                 absl::DataLossError("checksum"), absl::NotFoundError("miss"),
                 absl::FailedPreconditionError("unknown ns"), absl::UnavailableError("retry")}) {
    grpc::Status g = ToGrpcStatus(s);
    EXPECT_EQ(static_cast<int>(g.error_code()), static_cast<int>(s.code()));
    EXPECT_EQ(g.error_message(), s.message());
    EXPECT_EQ(FromGrpcStatus(g), s);
  }
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
}

TEST(GrpcStatusTest, OutOfRangeCodeBecomesUnknown) {
  EXPECT_EQ(StatusFromCode(99, "x").code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(StatusFromCode(8, "full").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(StatusFromCode(0, "").ok());
}

}  // namespace
}  // namespace strata::common
