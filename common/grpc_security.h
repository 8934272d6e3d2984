// Transport security for Strata's gRPC servers and clients: TLS and mutual TLS from PEM files, and
// bearer tokens (grpc_auth.h). Plaintext only when asked for: a server options struct with neither
// TLS files nor `plaintext` does not validate, so a binary cannot come up unprotected by accident.
//
// Servers. Certificate, key and client CA are watched by gRPC's FileWatcherCertificateProvider and
// re-read when they change (every `reload_interval`), so certificates rotate without a restart;
// new connections get the new ones. With a client CA, a client must present a certificate it
// signed (mTLS), or the handshake fails. Tokens need TLS (they would travel in the clear).
//
// Clients. TLS with the given CA (or the system roots), an optional client certificate, and a token
// sent as `authorization: Bearer TOKEN` call credentials.
//
// Plain structs plus two factory functions; thread-safe.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/grpc_auth.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"

namespace strata::common {

struct ServerSecurityOptions {
  // Serve without TLS. Required when no certificate is given; refused together with tokens.
  bool plaintext = false;
  std::string tls_cert_file;       // PEM certificate chain
  std::string tls_key_file;        // PEM private key
  std::string tls_client_ca_file;  // PEM CA bundle: set, clients must present a certificate (mTLS)
  // Bearer tokens: a file of `ROLE TOKEN` lines and/or the same lines from the environment.
  std::string tokens_file;
  std::string tokens_text;
  // How often the certificate files and the tokens file are checked for changes.
  absl::Duration reload_interval = absl::Seconds(10);

  // Plaintext on purpose (tests, in-process benchmarks, loopback development).
  static ServerSecurityOptions Plaintext() {
    ServerSecurityOptions o;
    o.plaintext = true;
    return o;
  }

  bool tls() const { return !tls_cert_file.empty(); }
  bool tokens() const { return !tokens_file.empty() || !tokens_text.empty(); }
  // InvalidArgument: neither TLS nor plaintext; plaintext with TLS files or tokens; a certificate
  // without its key (or the reverse); a client CA without a certificate; a reload interval under 1 s.
  absl::Status Validate() const;
};

struct ServerSecurity {
  std::shared_ptr<grpc::ServerCredentials> credentials;
  std::shared_ptr<TokenAuthenticator> authenticator;  // null without tokens
  std::string description;  // "plaintext", "TLS", "mutual TLS + tokens (3)", for the start-up log
};

// Builds the credentials for a server whose methods allow the roles in `method_roles`. NotFound for
// a missing file, InvalidArgument for bad options or tokens.
absl::StatusOr<ServerSecurity> MakeServerSecurity(const ServerSecurityOptions& options,
                                                  MethodRoles method_roles);

struct ChannelSecurityOptions {
  bool tls = false;       // TLS, verifying the server with ca_file or, when empty, the system roots
  std::string ca_file;    // PEM roots; set implies tls
  std::string cert_file;  // PEM client certificate for mTLS (with key_file)
  std::string key_file;
  std::string token;  // bearer token; needs TLS. Read it from a file or the environment, never argv.

  bool uses_tls() const { return tls || !ca_file.empty(); }
  // InvalidArgument: a token or client certificate without TLS; a certificate without its key.
  absl::Status Validate() const;
};

// Channel credentials for the options. NotFound for a file that cannot be read.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const ChannelSecurityOptions& options);

// The first line of a file, trimmed: how tokens are read from --token-file and friends.
// NotFound when it cannot be read, InvalidArgument when it is empty.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

}  // namespace strata::common
