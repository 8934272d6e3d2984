#include "common/grpc_security.h"

#include <cstdio>
#include <fstream>

#include "gtest/gtest.h"

namespace strata::common {
namespace {

TEST(ServerSecurityOptionsTest, PlaintextMustBeAskedForAndExcludesTlsAndTokens) {
  ServerSecurityOptions o;
  const absl::Status none = o.Validate();
  EXPECT_EQ(none.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(none.message().find("--plaintext"), std::string::npos) << none;
  o.plaintext = true;
  EXPECT_TRUE(o.Validate().ok());
  o.tokens_text = "route 0123456789abcdef0123";
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);  // tokens in the clear
  o.tokens_text.clear();
  o.tls_cert_file = "cert.pem";
  o.tls_key_file = "key.pem";
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);  // plaintext + TLS
}

TEST(ServerSecurityOptionsTest, CertificateAndKeyGoTogetherAndClientCaNeedsThem) {
  ServerSecurityOptions o;
  o.tls_cert_file = "cert.pem";
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);
  o.tls_key_file = "key.pem";
  EXPECT_TRUE(o.Validate().ok());
  ServerSecurityOptions ca_only;
  ca_only.tls_client_ca_file = "ca.pem";
  EXPECT_EQ(ca_only.Validate().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ServerSecurityTest, MissingOrNonPemFilesFailAtStartNotLater) {
  ServerSecurityOptions o;
  o.tls_cert_file = "/nonexistent/cert.pem";
  o.tls_key_file = "/nonexistent/key.pem";
  EXPECT_EQ(MakeServerSecurity(o, {}).status().code(), absl::StatusCode::kNotFound);
  char path[] = "/tmp/strata-notpem-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  {
    std::ofstream(path) << "not a certificate\n";
  }
  o.tls_cert_file = path;
  o.tls_key_file = path;
  EXPECT_EQ(MakeServerSecurity(o, {}).status().code(), absl::StatusCode::kInvalidArgument);
  std::remove(path);
}

TEST(ServerSecurityTest, PlaintextHasNoAuthenticator) {
  ServerSecurityOptions o;
  o.plaintext = true;
  auto s = MakeServerSecurity(o, {});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_NE(s->credentials, nullptr);
  EXPECT_EQ(s->authenticator, nullptr);
  EXPECT_EQ(s->description, "plaintext");
}

TEST(ChannelSecurityOptionsTest, TokensAndClientCertificatesNeedTls) {
  ChannelSecurityOptions o;
  EXPECT_TRUE(o.Validate().ok());
  o.token = "route-token-0123456789";
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);
  o.tls = true;
  EXPECT_TRUE(o.Validate().ok());
  ChannelSecurityOptions cert;
  cert.cert_file = "c.pem";
  cert.key_file = "k.pem";
  EXPECT_EQ(cert.Validate().code(), absl::StatusCode::kInvalidArgument);
  cert.ca_file = "ca.pem";  // a CA file implies TLS
  EXPECT_TRUE(cert.Validate().ok());
  cert.key_file.clear();
  EXPECT_EQ(cert.Validate().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ChannelSecurityTest, UnreadableCaFileIsNotFound) {
  ChannelSecurityOptions o;
  o.ca_file = "/nonexistent/ca.pem";
  EXPECT_EQ(MakeChannelCredentials(o).status().code(), absl::StatusCode::kNotFound);
}

TEST(ReadTokenFileTest, FirstLineTrimmedAndEmptyRejected) {
  char path[] = "/tmp/strata-token-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  {
    std::ofstream(path) << "  secret-token-0123456789 \nignored\n";
  }
  auto t = ReadTokenFile(path);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, "secret-token-0123456789");
  {
    std::ofstream(path) << "\n";
  }
  EXPECT_EQ(ReadTokenFile(path).status().code(), absl::StatusCode::kInvalidArgument);
  std::remove(path);
  EXPECT_EQ(ReadTokenFile(path).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace strata::common
