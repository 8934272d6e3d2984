#include "common/byte_size.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/string_view_interop.h"

namespace strata::common {

absl::StatusOr<uint64_t> ParseByteSize(std::string_view text_in) {
  // Debian's Abseil has its own string_view type; work in it throughout.
  const absl::string_view text = ToAbsl(text_in);
  absl::string_view s = absl::StripAsciiWhitespace(text);
  if (s.empty()) return absl::InvalidArgumentError("size is empty");
  size_t split = 0;
  while (split < s.size() &&
         (absl::ascii_isdigit(static_cast<unsigned char>(s[split])) || s[split] == '.')) {
    ++split;
  }
  const absl::string_view number = s.substr(0, split);
  const absl::string_view suffix = absl::StripAsciiWhitespace(s.substr(split));
  if (number.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("size '", text, "' does not start with a number"));
  }
  double multiplier = 0;
  if (suffix.empty() || suffix == "B") {
    multiplier = 1;
  } else if (suffix == "KiB" || suffix == "K" || suffix == "k" || suffix == "Ki") {
    multiplier = 1024.0;
  } else if (suffix == "MiB" || suffix == "M" || suffix == "m" || suffix == "Mi") {
    multiplier = 1024.0 * 1024;
  } else if (suffix == "GiB" || suffix == "G" || suffix == "g" || suffix == "Gi") {
    multiplier = 1024.0 * 1024 * 1024;
  } else if (suffix == "TiB" || suffix == "T" || suffix == "t" || suffix == "Ti") {
    multiplier = 1024.0 * 1024 * 1024 * 1024;
  } else if (suffix == "kB" || suffix == "KB") {
    multiplier = 1e3;
  } else if (suffix == "MB") {
    multiplier = 1e6;
  } else if (suffix == "GB") {
    multiplier = 1e9;
  } else if (suffix == "TB") {
    multiplier = 1e12;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("size '", text, "' has unknown suffix '", suffix,
                     "' (use B, KiB, MiB, GiB, TiB, kB, MB, GB, TB)"));
  }
  double value = 0;
  if (!absl::SimpleAtod(number, &value) || !std::isfinite(value)) {
    return absl::InvalidArgumentError(absl::StrCat("size '", text, "' is not a number"));
  }
  const double bytes = value * multiplier;
  if (bytes >= 18446744073709551615.0) {
    return absl::InvalidArgumentError(absl::StrCat("size '", text, "' is too large"));
  }
  if (bytes != std::floor(bytes)) {
    return absl::InvalidArgumentError(
        absl::StrCat("size '", text, "' is not a whole number of bytes"));
  }
  return static_cast<uint64_t>(bytes);
}

std::string FormatByteSize(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int unit = 0;
  while (v >= 1024.0 && unit < 4) {
    v /= 1024.0;
    ++unit;
  }
  if (unit == 0) return absl::StrCat(bytes, " B");
  return absl::StrFormat("%.*f %s", v < 10 ? 2 : 1, v, kUnits[unit]);
}

}  // namespace strata::common
