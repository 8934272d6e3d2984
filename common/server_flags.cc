#include "common/server_flags.h"

#include <cstdlib>

#include "absl/flags/flag.h"

ABSL_FLAG(bool, plaintext, false,
          "Serve gRPC without TLS. Required when no --tls-cert is given: the binary does not come "
          "up unprotected by accident");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain for TLS (re-read when it changes, every 10 s)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert (re-read when it changes)");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA bundle: clients must present a certificate it signed (mutual TLS)");
ABSL_FLAG(std::string, auth_tokens_file, "",
          "Bearer tokens, one 'ROLE TOKEN' per line (roles: route, node, admin; re-read when it "
          "changes); the environment variable STRATA_AUTH_TOKENS may hold the same lines. Needs TLS");
ABSL_FLAG(std::string, health_listen, "",
          "Extra plaintext HOST:PORT serving only grpc.health.v1 (no data, no auth), for "
          "Kubernetes gRPC probes; empty: none");

namespace strata::common {

const std::vector<std::string>& ServerSecurityFlagNames() {
  static const std::vector<std::string> names = {"plaintext",        "tls_cert",     "tls_key",
                                                 "tls_client_ca",    "auth_tokens_file",
                                                 "health_listen"};
  return names;
}

ServerSecurityOptions ServerSecurityOptionsFromFlags() {
  ServerSecurityOptions o;
  o.plaintext = absl::GetFlag(FLAGS_plaintext);
  o.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  o.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  o.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  o.tokens_file = absl::GetFlag(FLAGS_auth_tokens_file);
  if (const char* env = std::getenv("STRATA_AUTH_TOKENS"); env != nullptr) o.tokens_text = env;
  return o;
}

std::string HealthListenFromFlags() { return absl::GetFlag(FLAGS_health_listen); }

}  // namespace strata::common
