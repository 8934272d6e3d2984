#include "common/grpc_auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <sys/stat.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/string_view_interop.h"

namespace strata::common {
namespace {

constexpr size_t kMinTokenChars = 16;
constexpr std::string_view kBearer = "Bearer ";

std::array<uint8_t, 32> Digest(std::string_view token) {
  std::array<uint8_t, 32> d{};
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), d.data());
  return d;
}

bool ParseRole(std::string_view name, Role* role) {
  if (name == "route") *role = Role::kRoute;
  else if (name == "node") *role = Role::kNode;
  else if (name == "admin") *role = Role::kAdmin;
  else return false;
  return true;
}

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kRoute: return "route";
    case Role::kNode: return "node";
    case Role::kAdmin: return "admin";
  }
  return "?";
}

absl::StatusOr<std::vector<TokenEntry>> ParseTokens(std::string_view text) {
  std::vector<TokenEntry> out;
  int line_no = 0;
  for (absl::string_view raw : absl::StrSplit(ToAbsl(text), absl::ByAnyChar("\n,"))) {
    ++line_no;
    absl::string_view line = raw;
    if (size_t hash = line.find('#'); hash != absl::string_view::npos) line = line.substr(0, hash);
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    size_t cut = line.find_first_of(" \t:");
    if (cut == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("token entry ", line_no, ": expected 'ROLE TOKEN'"));
    }
    const absl::string_view role_name = line.substr(0, cut);
    const absl::string_view token = absl::StripAsciiWhitespace(line.substr(cut + 1));
    Role role;
    if (!ParseRole(std::string_view(role_name.data(), role_name.size()), &role)) {
      return absl::InvalidArgumentError(absl::StrCat("token entry ", line_no, ": unknown role '",
                                                     role_name, "' (route, node or admin)"));
    }
    if (token.size() < kMinTokenChars || token.find_first_of(" \t") != absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "token entry ", line_no, ": a token is one word of at least ", kMinTokenChars,
          " characters"));
    }
    out.push_back({role, Digest(std::string_view(token.data(), token.size()))});
  }
  return out;
}

absl::Status TokenAuthOptions::Validate() const {
  if (tokens_file.empty() && tokens_text.empty()) {
    return absl::InvalidArgumentError("token auth needs a tokens file or token lines");
  }
  if (reload_interval < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("reload_interval must be >= 0");
  }
  if (clock == nullptr) return absl::InvalidArgumentError("clock is null");
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<TokenAuthenticator>> TokenAuthenticator::Create(
    const TokenAuthOptions& options, MethodRoles method_roles) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  std::shared_ptr<TokenAuthenticator> auth(
      new TokenAuthenticator(options, std::move(method_roles)));
  absl::MutexLock lock(&auth->mu_);
  if (absl::Status s = auth->Load(); !s.ok()) return s;
  if (auth->tokens_.empty()) return absl::InvalidArgumentError("no token configured");
  auth->next_check_ = options.clock->Now() + options.reload_interval;
  return auth;
}

absl::Status TokenAuthenticator::Load() {
  std::vector<TokenEntry> tokens;
  if (!options_.tokens_text.empty()) {
    absl::StatusOr<std::vector<TokenEntry>> env = ParseTokens(options_.tokens_text);
    if (!env.ok()) return absl::InvalidArgumentError(absl::StrCat("tokens from the environment: ",
                                                                  env.status().message()));
    tokens = std::move(*env);
  }
  if (!options_.tokens_file.empty()) {
    struct stat st {};
    if (stat(options_.tokens_file.c_str(), &st) != 0) {
      return absl::NotFoundError(absl::StrCat("tokens file ", options_.tokens_file, " not found"));
    }
    std::ifstream in(options_.tokens_file);
    std::stringstream text;
    text << in.rdbuf();
    absl::StatusOr<std::vector<TokenEntry>> file = ParseTokens(text.str());
    if (!file.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("tokens file ", options_.tokens_file, ": ", file.status().message()));
    }
    tokens.insert(tokens.end(), file->begin(), file->end());
    file_mtime_ns_ = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    file_size_ = st.st_size;
  }
  tokens_ = std::move(tokens);
  return absl::OkStatus();
}

void TokenAuthenticator::MaybeReloadLocked() {
  if (options_.tokens_file.empty()) return;
  const absl::Time now = options_.clock->Now();
  if (now < next_check_) return;
  next_check_ = now + options_.reload_interval;
  struct stat st {};
  if (stat(options_.tokens_file.c_str(), &st) != 0) return;  // keep the table we have
  const int64_t mtime =
      static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  if (mtime == file_mtime_ns_ && st.st_size == file_size_) return;
  std::vector<TokenEntry> previous = tokens_;
  if (absl::Status s = Load(); !s.ok() || tokens_.empty()) {
    std::cerr << "strata: keeping the previous tokens: "
              << (s.ok() ? std::string("the new file has no token") : std::string(s.message()))
              << "\n";
    tokens_ = std::move(previous);
    file_mtime_ns_ = mtime;  // do not retry the same bad file every interval
    file_size_ = st.st_size;
  }
}

grpc::Status TokenAuthenticator::Authorize(std::string_view method,
                                           std::string_view authorization_header) {
  if (method.rfind("/grpc.health.v1.Health/", 0) == 0) return grpc::Status::OK;
  std::string_view token;
  if (authorization_header.size() > kBearer.size() &&
      authorization_header.substr(0, kBearer.size()) == kBearer) {
    token = authorization_header.substr(kBearer.size());
  }
  const std::array<uint8_t, 32> digest = Digest(token);
  absl::MutexLock lock(&mu_);
  MaybeReloadLocked();
  RoleSet held = 0;
  for (const TokenEntry& e : tokens_) {  // every entry, no early exit
    const bool match = CRYPTO_memcmp(e.digest.data(), digest.data(), digest.size()) == 0;
    held |= match ? static_cast<RoleSet>(e.role) : 0;
  }
  if (token.empty() || held == 0) {
    ++denials_.counts[{std::string(method), "unauthenticated"}];
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        token.empty() ? "no bearer token (authorization: Bearer TOKEN)"
                                      : "unknown bearer token");
  }
  RoleSet allowed = static_cast<RoleSet>(Role::kAdmin);
  if (auto it = method_roles_.find(std::string(method)); it != method_roles_.end()) {
    allowed |= it->second;
  }
  if ((held & allowed) == 0) {
    ++denials_.counts[{std::string(method), "permission_denied"}];
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        std::string("this token's role may not call ") + std::string(method));
  }
  return grpc::Status::OK;
}

grpc::Status TokenAuthenticator::Process(const InputMetadata& auth_metadata,
                                         grpc::AuthContext* context,
                                         OutputMetadata* consumed_auth_metadata,
                                         OutputMetadata* response_metadata) {
  std::string_view method;
  std::string_view authorization;
  for (const auto& [key, value] : auth_metadata) {
    const std::string_view k(key.data(), key.size());
    if (k == ":path") method = std::string_view(value.data(), value.size());
    if (k == "authorization") authorization = std::string_view(value.data(), value.size());
  }
  grpc::Status s = Authorize(method, authorization);
  if (s.ok() && !authorization.empty()) {
    // The token goes no further than this check: handlers never see it.
    consumed_auth_metadata->insert({"authorization", std::string(authorization)});
  }
  return s;
}

AuthDenials TokenAuthenticator::Denials() const {
  absl::MutexLock lock(&mu_);
  return denials_;
}

size_t TokenAuthenticator::tokens() const {
  absl::MutexLock lock(&mu_);
  return tokens_.size();
}

}  // namespace strata::common
