// Fail points: named places in the code where a test can inject an error, a delay or a dropped
// action, in the style of RocksDB's sync points.
//
// Compiled in only when the build sets STRATA_FAIL_POINTS (CMake option of the same name; the test
// builds turn it on, release images leave it off). Without it both macros are constant "nothing
// happens" expressions and the registry is never consulted. With it, an unarmed point costs one
// relaxed atomic load.
//
//   STRATA_RETURN_IF_ERROR(STRATA_FAIL_POINT("ssd.put"));     // may return the injected error
//   if (STRATA_FAIL_POINT_FIRES("router_link.drop_event")) return;  // may skip an action
//
// Points are armed by name, in a test (`FailPoints::Global().Arm(...)`) or for a whole process by the
// environment variable STRATA_FAIL_POINTS, read by binaries at start (ArmFromEnvironment):
//
//   STRATA_FAIL_POINTS="ssd.put=error(RESOURCE_EXHAUSTED),p=0.1;ssd.read=delay(20ms);seed=7"
//
// Spec of one point: ACTION[,p=PROBABILITY][,times=N][,skip=N]
//   ACTION   error            fire: Evaluate returns Unavailable("fail point NAME")
//            error(CODE)      fire with that absl status code (INTERNAL, DATA_LOSS, ...)
//            delay(DURATION)  sleep that long (absl duration: 20ms, 1s), then return OK
//            off              disarm
//   p        chance each evaluation fires (default 1); draws come from one seeded generator, so a
//            run with the same seed and the same order of evaluations fires at the same places
//   times    fire at most N times, then stay armed but inert (default unlimited)
//   skip     let the first N evaluations pass before any may fire (default 0)
// `seed=N` as an entry of its own reseeds the generator.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace strata::common {

// True when this build has fail points compiled in.
constexpr bool kFailPointsCompiled =
#ifdef STRATA_FAIL_POINTS
    true;
#else
    false;
#endif

struct FailPointSpec {
  enum class Action { kError, kDelay };
  Action action = Action::kError;
  absl::StatusCode code = absl::StatusCode::kUnavailable;  // for kError
  absl::Duration delay;                                    // for kDelay
  double probability = 1.0;
  std::optional<uint64_t> times;  // fire at most this often
  uint64_t skip = 0;              // evaluations that pass before any may fire

  // Parses "ACTION[,p=..][,times=..][,skip=..]" (see above). InvalidArgument naming the bad part.
  // "off" is not a spec: callers handle it before (Arm refuses nothing, ArmFromString disarms).
  static absl::Status Parse(std::string_view text, FailPointSpec* out);
};

class FailPoints {
 public:
  // The process-wide registry the macros consult; never destroyed.
  static FailPoints& Global();

  // Arms (or re-arms, resetting its counters) the point `name`.
  void Arm(std::string_view name, const FailPointSpec& spec);
  void Disarm(std::string_view name);
  void DisarmAll();
  void Seed(uint64_t seed);

  // Arms points from "NAME=SPEC;NAME=SPEC;seed=N" ("NAME=off" disarms). InvalidArgument on a bad
  // entry; then nothing of the text is applied.
  absl::Status ArmFromString(std::string_view text);
  // ArmFromString(getenv("STRATA_FAIL_POINTS")) when set. In a build without fail points a set
  // variable is FailedPrecondition: a test that asks for faults must not pass without them.
  absl::Status ArmFromEnvironment();

  // Calls `fn` each time `name` fires (after its delay, before its error is returned); for tests
  // that need to act at that exact moment. Empty fn removes it.
  void SetCallback(std::string_view name, std::function<void()> fn);

  // Evaluations of `name` since it was armed, and how many fired.
  uint64_t evaluations(std::string_view name) const;
  uint64_t fired(std::string_view name) const;
  // Fires summed over every point since the process started (survives re-arming).
  uint64_t total_fired() const { return total_fired_.load(std::memory_order_relaxed); }

  // The macros' entry: OK when `name` is not armed or does not fire this time; otherwise sleeps
  // (delay) and returns OK, or returns the armed error.
  absl::Status Evaluate(std::string_view name) {
    if (armed_.load(std::memory_order_relaxed) == 0) return absl::OkStatus();
    return EvaluateSlow(name);
  }

 private:
  struct Point {
    FailPointSpec spec;
    uint64_t evaluations = 0;
    uint64_t fired = 0;
    std::function<void()> callback;
  };
  absl::Status EvaluateSlow(std::string_view name);

  std::atomic<int> armed_{0};
  std::atomic<uint64_t> total_fired_{0};
  mutable absl::Mutex mu_;
  std::map<std::string, Point, std::less<>> points_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::function<void()>, std::less<>> callbacks_ ABSL_GUARDED_BY(mu_);
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_){0x5EED};
};

}  // namespace strata::common

#ifdef STRATA_FAIL_POINTS
#define STRATA_FAIL_POINT(name) (::strata::common::FailPoints::Global().Evaluate(name))
#define STRATA_FAIL_POINT_FIRES(name) (!::strata::common::FailPoints::Global().Evaluate(name).ok())
#else
#define STRATA_FAIL_POINT(name) (::absl::OkStatus())
#define STRATA_FAIL_POINT_FIRES(name) (false)
#endif
