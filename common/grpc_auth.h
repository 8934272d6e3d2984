// Bearer-token authentication and role-based authorization for Strata's gRPC servers.
//
// Tokens. A token table comes from a file and/or the environment, one token per line as
// `ROLE TOKEN` (or `ROLE:TOKEN`; commas also separate entries in the environment form; `#` starts a
// comment). Roles: `route` (frontends), `node` (cache agents and peers), `admin` (operators: every
// method). Only SHA-256 digests of tokens are kept, and a presented token is compared with every
// known digest by CRYPTO_memcmp, without early exit, so neither timing nor memory gives a token
// away.
//
// TokenAuthenticator is a grpc::AuthMetadataProcessor: gRPC calls it for every call on a secure
// port (TLS) before the handler runs, with the call's metadata (`authorization: Bearer TOKEN` and the
// method's `:path`). A call without a known token fails UNAUTHENTICATED; a known token whose role
// the method does not allow fails PERMISSION_DENIED; both are counted per method. The health
// service (grpc.health.v1) needs no token, so probes and load balancers can ask. The token file is
// re-read when its modification time or size changes (checked at most once per reload interval on
// the injected clock), so tokens rotate without a restart; a file that no longer parses keeps the
// previous table (and says so on stderr).
//
// Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "grpcpp/security/auth_metadata_processor.h"

namespace strata::common {

enum class Role : uint8_t { kRoute = 1, kNode = 2, kAdmin = 4 };
using RoleSet = uint8_t;  // bitwise OR of Roles

// "route", "node", "admin".
std::string_view RoleName(Role role);

struct TokenEntry {
  Role role;
  std::array<uint8_t, 32> digest;  // SHA-256 of the token
};

// Parses token lines. InvalidArgument naming the line for an unknown role, a missing token, or a
// token shorter than 16 characters (too easy to guess).
absl::StatusOr<std::vector<TokenEntry>> ParseTokens(std::string_view text);

// Which roles may call which method ("/strata.v1.Router/Route"). Methods not listed are admin-only.
using MethodRoles = absl::flat_hash_map<std::string, RoleSet>;

struct TokenAuthOptions {
  std::string tokens_file;  // may be empty when tokens_text is not
  std::string tokens_text;  // the environment's token lines (STRATA_AUTH_TOKENS); read once
  absl::Duration reload_interval = absl::Seconds(5);
  Clock* clock = Clock::Real();

  // InvalidArgument when neither source is given.
  absl::Status Validate() const;
};

// Denials per method and code, for metrics.
struct AuthDenials {
  // (method, "unauthenticated" | "permission_denied") -> count
  std::map<std::pair<std::string, std::string>, uint64_t> counts;
};

class TokenAuthenticator final : public grpc::AuthMetadataProcessor {
 public:
  // Loads the tokens (InvalidArgument when they do not parse, NotFound for a missing file).
  static absl::StatusOr<std::shared_ptr<TokenAuthenticator>> Create(const TokenAuthOptions& options,
                                                                    MethodRoles method_roles);

  // Runs inline on gRPC's thread: a table lookup and, rarely, a small file read.
  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata,
                       OutputMetadata* response_metadata) override;

  // The decision for one call, without gRPC: OK, UNAUTHENTICATED or PERMISSION_DENIED (counted).
  grpc::Status Authorize(std::string_view method, std::string_view authorization_header);

  AuthDenials Denials() const;
  size_t tokens() const;

 private:
  TokenAuthenticator(const TokenAuthOptions& options, MethodRoles method_roles)
      : options_(options), method_roles_(std::move(method_roles)) {}
  absl::Status Load() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeReloadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const TokenAuthOptions options_;
  const MethodRoles method_roles_;
  mutable absl::Mutex mu_;
  std::vector<TokenEntry> tokens_ ABSL_GUARDED_BY(mu_);
  absl::Time next_check_ ABSL_GUARDED_BY(mu_);
  int64_t file_mtime_ns_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t file_size_ ABSL_GUARDED_BY(mu_) = -1;
  AuthDenials denials_ ABSL_GUARDED_BY(mu_);
};

}  // namespace strata::common
