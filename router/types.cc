#include "router/types.h"

namespace strata::router {

const char* TierName(Tier t) {
  switch (t) {
    case Tier::kHbm:
      return "hbm";
    case Tier::kDram:
      return "dram";
    case Tier::kSsd:
      return "ssd";
  }
  return "?";
}

}  // namespace strata::router
