// Parsing and printing byte sizes for flags and logs: "1048576", "64MiB", "2GiB", "1.5GB", "512k".
// Binary suffixes (KiB, MiB, GiB, TiB; also K/M/G/T and k/m/g/t) are powers of 1024; decimal ones
// (kB, MB, GB, TB) are powers of 1000. Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace strata::common {

// InvalidArgument for empty text, an unknown suffix, a negative or fractional byte count, or
// overflow.
absl::StatusOr<uint64_t> ParseByteSize(std::string_view text);

// "64.0 MiB", "2.00 GiB", "512 B".
std::string FormatByteSize(uint64_t bytes);

}  // namespace strata::common
