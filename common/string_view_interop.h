// Bridges std::string_view and absl::string_view.
//
// Debian 12's Abseil is built with ABSL_OPTION_USE_STD_STRING_VIEW 0, so absl::string_view is a
// type of its own with no conversion to or from std::string_view. Strata's interfaces use
// std::string_view; these helpers convert at the calls into Abseil. Header-only, pure.
#pragma once

#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace strata::common {

inline absl::string_view ToAbsl(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}
inline std::string_view ToStd(absl::string_view s) { return std::string_view(s.data(), s.size()); }

namespace internal {
inline absl::string_view CatArg(std::string_view s) { return ToAbsl(s); }
template <typename T>
const T& CatArg(const T& v) {
  return v;
}
}  // namespace internal

// absl::StrCat that also takes std::string_view arguments.
template <typename... Args>
std::string Concat(const Args&... args) {
  return absl::StrCat(internal::CatArg(args)...);
}

}  // namespace strata::common
