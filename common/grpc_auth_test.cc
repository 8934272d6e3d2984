#include "common/grpc_auth.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace strata::common {
namespace {

constexpr char kRouteToken[] = "route-token-0123456789";
constexpr char kNodeToken[] = "node-token-0123456789ab";
constexpr char kAdminToken[] = "admin-token-0123456789";

MethodRoles Roles() {
  return {{"/strata.v1.Router/Route", static_cast<RoleSet>(Role::kRoute)},
          {"/strata.v1.Router/Heartbeat", static_cast<RoleSet>(Role::kNode)}};
}

std::string Lines() {
  return std::string("# frontends\nroute ") + kRouteToken + "\nnode:" + kNodeToken + "\n\nadmin " +
         kAdminToken + "  # operators\n";
}

std::shared_ptr<TokenAuthenticator> FromText(const std::string& text, ManualClock* clock = nullptr) {
  TokenAuthOptions o;
  o.tokens_text = text;
  if (clock != nullptr) o.clock = clock;
  auto a = TokenAuthenticator::Create(o, Roles());
  EXPECT_TRUE(a.ok()) << a.status();
  return a.ok() ? *a : nullptr;
}

std::string Bearer(const std::string& token) { return "Bearer " + token; }

TEST(ParseTokensTest, ReadsRolesTokensCommentsAndBothSeparators) {
  auto tokens = ParseTokens(Lines() + ",route another-route-token-xyz");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  ASSERT_EQ(tokens->size(), 4u);
  EXPECT_EQ((*tokens)[0].role, Role::kRoute);
  EXPECT_EQ((*tokens)[1].role, Role::kNode);
  EXPECT_EQ((*tokens)[2].role, Role::kAdmin);
}

TEST(ParseTokensTest, RejectsUnknownRolesMissingAndShortTokens) {
  EXPECT_EQ(ParseTokens("root 0123456789abcdef0").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseTokens("route").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseTokens("route short").status().code(), absl::StatusCode::kInvalidArgument);
  const auto s = ParseTokens("route ok-token-0123456789\nadmin x").status();
  EXPECT_NE(s.message().find("entry 2"), std::string::npos) << s;
}

TEST(TokenAuthenticatorTest, KnownTokenOfAnAllowedRolePasses) {
  auto auth = FromText(Lines());
  EXPECT_TRUE(auth->Authorize("/strata.v1.Router/Route", Bearer(kRouteToken)).ok());
  EXPECT_TRUE(auth->Authorize("/strata.v1.Router/Heartbeat", Bearer(kNodeToken)).ok());
  // Admin may call everything, listed or not.
  EXPECT_TRUE(auth->Authorize("/strata.v1.Router/Route", Bearer(kAdminToken)).ok());
  EXPECT_TRUE(auth->Authorize("/strata.v1.Router/SetExperiment", Bearer(kAdminToken)).ok());
}

TEST(TokenAuthenticatorTest, MissingOrUnknownTokenIsUnauthenticatedAndCounted) {
  auto auth = FromText(Lines());
  EXPECT_EQ(auth->Authorize("/strata.v1.Router/Route", "").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(auth->Authorize("/strata.v1.Router/Route", Bearer("route-token-0123456788"))
                .error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(auth->Authorize("/strata.v1.Router/Route", kRouteToken).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);  // no "Bearer " scheme
  const AuthDenials d = auth->Denials();
  EXPECT_EQ((d.counts.at({"/strata.v1.Router/Route", "unauthenticated"})), 3u);
}

TEST(TokenAuthenticatorTest, WrongRoleIsPermissionDeniedAndCounted) {
  auto auth = FromText(Lines());
  EXPECT_EQ(auth->Authorize("/strata.v1.Router/Heartbeat", Bearer(kRouteToken)).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(auth->Authorize("/strata.v1.Router/SetExperiment", Bearer(kNodeToken)).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);  // unlisted: admin only
  EXPECT_EQ((auth->Denials().counts.at({"/strata.v1.Router/Heartbeat", "permission_denied"})), 1u);
}

TEST(TokenAuthenticatorTest, HealthChecksNeedNoToken) {
  auto auth = FromText(Lines());
  EXPECT_TRUE(auth->Authorize("/grpc.health.v1.Health/Check", "").ok());
  EXPECT_TRUE(auth->Denials().counts.empty());
}

TEST(TokenAuthenticatorTest, ProcessReadsPathAndAuthorizationAndHidesTheToken) {
  auto auth = FromText(Lines());
  const std::string path = "/strata.v1.Router/Route";
  const std::string header = Bearer(kRouteToken);
  grpc::AuthMetadataProcessor::InputMetadata md;
  md.insert({grpc::string_ref(":path"), grpc::string_ref(path)});
  md.insert({grpc::string_ref("authorization"), grpc::string_ref(header)});
  grpc::AuthMetadataProcessor::OutputMetadata consumed, response;
  EXPECT_TRUE(auth->Process(md, nullptr, &consumed, &response).ok());
  EXPECT_EQ(consumed.count("authorization"), 1u);
  grpc::AuthMetadataProcessor::InputMetadata no_token;
  no_token.insert({grpc::string_ref(":path"), grpc::string_ref(path)});
  EXPECT_EQ(auth->Process(no_token, nullptr, &consumed, &response).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST(TokenAuthenticatorTest, ReloadsTheFileWhenItChangesAndKeepsTheOldTableOnABadOne) {
  char path[] = "/tmp/strata-tokens-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  {
    std::ofstream(path) << "route " << kRouteToken << "\n";
  }
  ManualClock clock;
  TokenAuthOptions o;
  o.tokens_file = path;
  o.clock = &clock;
  o.reload_interval = absl::Seconds(5);
  auto auth = TokenAuthenticator::Create(o, Roles());
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_TRUE((*auth)->Authorize("/strata.v1.Router/Route", Bearer(kRouteToken)).ok());

  {
    std::ofstream(path) << "route rotated-route-token-000111\n";
  }
  // Not yet: the file is looked at once per interval.
  EXPECT_TRUE((*auth)->Authorize("/strata.v1.Router/Route", Bearer(kRouteToken)).ok());
  clock.Advance(absl::Seconds(6));
  EXPECT_FALSE((*auth)->Authorize("/strata.v1.Router/Route", Bearer(kRouteToken)).ok());
  EXPECT_TRUE(
      (*auth)->Authorize("/strata.v1.Router/Route", Bearer("rotated-route-token-000111")).ok());

  {
    std::ofstream(path) << "nobody knows this role 0123456789abcdef\n";
  }
  clock.Advance(absl::Seconds(6));
  EXPECT_TRUE(
      (*auth)->Authorize("/strata.v1.Router/Route", Bearer("rotated-route-token-000111")).ok());
  std::remove(path);
}

TEST(TokenAuthOptionsTest, NeedsASource) {
  TokenAuthOptions o;
  EXPECT_EQ(TokenAuthenticator::Create(o, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  o.tokens_file = "/nonexistent/strata-tokens";
  EXPECT_EQ(TokenAuthenticator::Create(o, {}).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace strata::common
