// Test-only: the call counter and failure injection the in-process fake servers share. Every RPC
// of a fake calls Enter() first; FailNextCalls makes the next calls fail before doing anything.
// Thread-safe.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/synchronization/mutex.h"

namespace strata::clients {

class FakeFailures {
 public:
  // The next `times` calls fail with `status`.
  void FailNextCalls(int times, grpc::Status status) {
    absl::MutexLock lock(&mu_);
    fail_times_ = times;
    fail_status_ = std::move(status);
  }
  // Counts the call; returns the injected failure, if one is pending, else OK.
  grpc::Status Enter() {
    absl::MutexLock lock(&mu_);
    ++calls_;
    if (fail_times_ > 0) {
      --fail_times_;
      return fail_status_;
    }
    return grpc::Status::OK;
  }
  // Calls entered so far, failed ones included.
  int calls() const {
    absl::MutexLock lock(&mu_);
    return calls_;
  }

 private:
  mutable absl::Mutex mu_;
  int fail_times_ ABSL_GUARDED_BY(mu_) = 0;
  grpc::Status fail_status_ ABSL_GUARDED_BY(mu_);
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace strata::clients
