// JSON text helpers for the binaries' `--output json` (the CLI and strata-bench): output is built
// by hand from a few fields, so only string quoting needs care. Pure functions, thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace strata::common {

// `text` as a JSON string literal, quotes included: escapes ", \ and control characters.
std::string JsonQuote(std::string_view text);

}  // namespace strata::common
