// PeriodicLoop: a background loop for one small job (write-behind, expiry). It calls `step` again
// at once while step reports it did work, otherwise after `idle_period` or when woken. Start/Stop
// are explicit; Stop waits for the current step. Components expose their step as a plain method so
// tests call it directly instead of running a loop. Thread-safe.
#pragma once

#include <functional>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace strata::common {

class PeriodicLoop {
 public:
  // `step` returns true when it did work (so the loop runs it again right away).
  PeriodicLoop(std::function<bool()> step, absl::Duration idle_period)
      : step_(std::move(step)), idle_period_(idle_period) {}
  ~PeriodicLoop() { Stop(); }
  PeriodicLoop(const PeriodicLoop&) = delete;
  PeriodicLoop& operator=(const PeriodicLoop&) = delete;

  void Start() {
    absl::MutexLock lock(&mu_);
    if (thread_.joinable()) return;
    stop_ = false;
    thread_ = std::thread([this] { Run(); });
  }

  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
      woken_ = true;
    }
    if (thread_.joinable()) thread_.join();
  }

  // Runs the next step now instead of after the idle period.
  void Wake() {
    absl::MutexLock lock(&mu_);
    woken_ = true;
  }

 private:
  void Run() {
    for (;;) {
      {
        absl::MutexLock lock(&mu_);
        if (stop_) return;
      }
      if (step_()) continue;
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&woken_), idle_period_);
      woken_ = false;
    }
  }

  std::function<bool()> step_;
  const absl::Duration idle_period_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace strata::common
