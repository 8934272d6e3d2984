// The one conversion from cachenode/gpu/'s own status type (which builds without Abseil) to
// absl::Status. Both use the google.rpc.Code numbering, so the code carries over unchanged.
#pragma once

#include "absl/status/status.h"
#include "cachenode/gpu/gpu_status.h"
#include "common/string_view_interop.h"

namespace strata::cachenode {

inline absl::Status FromGpu(const gpu::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(static_cast<int>(s.code())),
                      common::ToAbsl(s.message()));
}

}  // namespace strata::cachenode
