// The calibration documents compiled into strata-bench (generated at build time from
// bench/engine_h100_llama3_8b.json and router/cost_model_h100_llama3_8b.json; see
// bench/CMakeLists.txt), so a replay runs from any directory.
#pragma once

#include <string_view>

namespace strata::bench {
extern const std::string_view kEmbeddedEngineModelJson;
extern const std::string_view kEmbeddedCostModelJson;
}  // namespace strata::bench
