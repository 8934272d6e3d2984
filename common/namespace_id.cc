#include "common/namespace_id.h"

#include <openssl/sha.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/string_view_interop.h"

namespace strata::common {

absl::Status ValidateNamespaceName(std::string_view name_in) {
  const absl::string_view name = ToAbsl(name_in);
  if (name.empty()) return absl::InvalidArgumentError("namespace is empty");
  if (name.size() > kMaxNamespaceNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("namespace is longer than ", kMaxNamespaceNameBytes, " characters"));
  }
  for (char c : name) {
    const bool ok = absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' ||
                    c == ':' || c == '/' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("namespace '", name, "' has a character outside [A-Za-z0-9._:/-]"));
    }
  }
  return absl::OkStatus();
}

NamespaceId NamespaceIdOf(std::string_view name) {
  constexpr std::string_view kTag = "strata.namespace.v1";
  std::string input;
  input.reserve(kTag.size() + 1 + name.size());
  input.append(kTag);
  input.push_back('\0');
  input.append(name);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  NamespaceId id = 0;
  for (int i = 0; i < 8; ++i) id = (id << 8) | digest[i];
  return id;
}

}  // namespace strata::common
