#include "common/grpc_security.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"

namespace strata::common {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(what, " ", path, " cannot be read"));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

absl::Status ServerSecurityOptions::Validate() const {
  if (plaintext && (tls() || !tls_key_file.empty() || !tls_client_ca_file.empty())) {
    return absl::InvalidArgumentError("--plaintext contradicts the TLS files given");
  }
  if (plaintext && tokens()) {
    return absl::InvalidArgumentError(
        "bearer tokens need TLS (they would travel in the clear): give --tls-cert and --tls-key");
  }
  if (!plaintext && !tls()) {
    return absl::InvalidArgumentError(
        "no transport security: give --tls-cert and --tls-key (and --tls-client-ca for mutual TLS), "
        "or --plaintext to serve without TLS");
  }
  if (tls_cert_file.empty() != tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  if (!tls_client_ca_file.empty() && !tls()) {
    return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key");
  }
  if (reload_interval < absl::Seconds(1)) {
    return absl::InvalidArgumentError("the reload interval must be at least 1 s");
  }
  return absl::OkStatus();
}

absl::StatusOr<ServerSecurity> MakeServerSecurity(const ServerSecurityOptions& options,
                                                  MethodRoles method_roles) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  ServerSecurity out;
  if (options.plaintext) {
    out.credentials = grpc::InsecureServerCredentials();
    out.description = "plaintext";
    return out;
  }
  // Fail early on unreadable files: the watcher would only log and serve no certificate.
  for (const auto& [path, what] : {std::pair{options.tls_cert_file, "certificate"},
                                   std::pair{options.tls_key_file, "key"},
                                   std::pair{options.tls_client_ca_file, "client CA"}}) {
    if (path.empty()) continue;
    absl::StatusOr<std::string> text = ReadFile(path, what);
    if (!text.ok()) return text.status();
    if (text->find("-----BEGIN") == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(what, " ", path, " is not PEM"));
    }
  }
  const bool mtls = !options.tls_client_ca_file.empty();
  const auto interval =
      static_cast<unsigned int>(absl::ToInt64Seconds(options.reload_interval));
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      options.tls_key_file, options.tls_cert_file, options.tls_client_ca_file, interval);
  grpc::experimental::TlsServerCredentialsOptions tls(provider);
  tls.watch_identity_key_cert_pairs();
  if (mtls) {
    tls.watch_root_certs();
    tls.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    tls.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  out.credentials = grpc::experimental::TlsServerCredentials(tls);
  out.description = mtls ? "mutual TLS" : "TLS";
  if (options.tokens()) {
    TokenAuthOptions auth;
    auth.tokens_file = options.tokens_file;
    auth.tokens_text = options.tokens_text;
    auth.reload_interval = options.reload_interval;
    absl::StatusOr<std::shared_ptr<TokenAuthenticator>> a =
        TokenAuthenticator::Create(auth, std::move(method_roles));
    if (!a.ok()) return a.status();
    out.authenticator = *a;
    out.credentials->SetAuthMetadataProcessor(out.authenticator);
    absl::StrAppend(&out.description, " + bearer tokens (", out.authenticator->tokens(), ")");
  }
  return out;
}

absl::Status ChannelSecurityOptions::Validate() const {
  if (!token.empty() && !uses_tls()) {
    return absl::InvalidArgumentError("a bearer token needs TLS (--tls or --cacert)");
  }
  if (cert_file.empty() != key_file.empty()) {
    return absl::InvalidArgumentError("a client certificate and its key go together");
  }
  if (!cert_file.empty() && !uses_tls()) {
    return absl::InvalidArgumentError("a client certificate needs TLS (--tls or --cacert)");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const ChannelSecurityOptions& options) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  if (!options.uses_tls()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  if (!options.ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadFile(options.ca_file, "CA file");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
  }
  if (!options.cert_file.empty()) {
    absl::StatusOr<std::string> cert = ReadFile(options.cert_file, "certificate");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadFile(options.key_file, "key");
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *cert;
    ssl.pem_private_key = *key;
  }
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::SslCredentials(ssl);
  if (!options.token.empty()) {
    creds = grpc::CompositeChannelCredentials(creds, grpc::AccessTokenCredentials(options.token));
  }
  return creds;
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path, "token file");
  if (!text.ok()) return text.status();
  std::string first = text->substr(0, text->find('\n'));
  absl::StripAsciiWhitespace(&first);
  if (first.empty()) return absl::InvalidArgumentError(absl::StrCat("token file ", path, " is empty"));
  return first;
}

}  // namespace strata::common
