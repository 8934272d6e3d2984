// Makes ThreadSanitizer see Abseil's synchronization in a build against Debian's Abseil.
//
// Debian builds libabsl_synchronization without TSan, so the atomics inside absl::Mutex,
// absl::CondVar, absl::Notification and absl::BlockingCounter are invisible to TSan: every access
// guarded by an absl::Mutex would be reported as a race. The TSan build links every Strata binary
// with `-Wl,--wrap=SYMBOL` for the entry points below; the linker then sends Strata's calls to the
// __wrap_ functions here, which call the real function (__real_) and tell TSan about the
// happens-before edge the real function provides (__tsan_acquire / __tsan_release on the object's
// address). Only calls from Strata's own code are wrapped; calls made inside other uninstrumented
// libraries (gRPC, RocksDB) are not, which is why the TSan lane runs the tests of Strata's own
// concurrency (see scripts/test.sh) rather than those that cross gRPC's threads.
//
// Mutexes use TSan's mutex annotations (reader/writer aware, with lock-order checking); the
// one-shot primitives (Notification, BlockingCounter) use plain acquire/release on their address.
#include <sanitizer/tsan_interface.h>

#include <atomic>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace {

// Brackets a real absl call with TSan's mutex annotations. Between pre_ and post_ TSan ignores
// memory accesses, which matters because absl evaluates waiters' Conditions (Strata's lambdas,
// instrumented) inside Unlock and Await on whichever thread releases the lock.
constexpr unsigned kRead = __tsan_mutex_read_lock;
constexpr unsigned kTry = __tsan_mutex_try_lock;
constexpr unsigned kTryFailed = __tsan_mutex_try_lock_failed;

template <typename F>
auto Locking(void* mu, unsigned flags, F real) {
  __tsan_mutex_pre_lock(mu, flags);
  auto r = real();
  __tsan_mutex_post_lock(mu, flags, 0);
  return r;
}
template <typename F>
bool TryLocking(void* mu, unsigned flags, F real) {
  __tsan_mutex_pre_lock(mu, flags | kTry);
  const bool r = real();
  __tsan_mutex_post_lock(mu, flags | kTry | (r ? 0 : kTryFailed), 0);
  return r;
}
template <typename F>
void Unlocking(void* mu, unsigned flags, F real) {
  __tsan_mutex_pre_unlock(mu, flags);
  real();
  __tsan_mutex_post_unlock(mu, flags);
}
// Await and CondVar::Wait release the (writer-held) lock and take it again inside one call.
template <typename F>
auto Waiting(void* mu, F real) {
  __tsan_mutex_pre_unlock(mu, 0);
  __tsan_mutex_post_unlock(mu, 0);
  __tsan_mutex_pre_lock(mu, 0);
  auto r = real();
  __tsan_mutex_post_lock(mu, 0, 0);
  return r;
}
struct Void {};
template <typename F>
auto V(F f) {
  return [f] {
    f();
    return Void{};
  };
}

}  // namespace

using absl::Condition;
using absl::CondVar;
using absl::Duration;
using absl::Mutex;
using absl::Time;

#define STRATA_WRAP(ret, sym, params) \
  ret __real_##sym params;            \
  ret __wrap_##sym params

extern "C" {

// ---- Mutex: exclusive -------------------------------------------------------------------------
STRATA_WRAP(void, _ZN4absl7debian35Mutex4LockEv, (Mutex * mu)) {
  Locking(mu, 0, V([=] { __real__ZN4absl7debian35Mutex4LockEv(mu); }));
}
STRATA_WRAP(void, _ZN4absl7debian35Mutex6UnlockEv, (Mutex * mu)) {
  Unlocking(mu, 0, [=] { __real__ZN4absl7debian35Mutex6UnlockEv(mu); });
}
STRATA_WRAP(bool, _ZN4absl7debian35Mutex7TryLockEv, (Mutex * mu)) {
  return TryLocking(mu, 0, [=] { return __real__ZN4absl7debian35Mutex7TryLockEv(mu); });
}
STRATA_WRAP(void, _ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE, (Mutex * mu, const Condition& c)) {
  Locking(mu, 0, V([&] { __real__ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE(mu, c); }));
}
// The *WithTimeout/*WithDeadline forms hold the lock on return whatever they return.
STRATA_WRAP(bool, _ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE,
            (Mutex * mu, const Condition& c, Duration d)) {
  return Locking(mu, 0, [&] {
    return __real__ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE(mu, c, d);
  });
}
STRATA_WRAP(bool, _ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE,
            (Mutex * mu, const Condition& c, Time t)) {
  return Locking(mu, 0, [&] {
    return __real__ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE(mu, c, t);
  });
}
STRATA_WRAP(void, _ZN4absl7debian35MutexD1Ev, (Mutex * mu)) {
  __tsan_mutex_destroy(mu, 0);
  __real__ZN4absl7debian35MutexD1Ev(mu);
}
STRATA_WRAP(void, _ZN4absl7debian35MutexD2Ev, (Mutex * mu)) {
  __tsan_mutex_destroy(mu, 0);
  __real__ZN4absl7debian35MutexD2Ev(mu);
}

// ---- Mutex: shared ----------------------------------------------------------------------------
STRATA_WRAP(void, _ZN4absl7debian35Mutex10ReaderLockEv, (Mutex * mu)) {
  Locking(mu, kRead, V([=] { __real__ZN4absl7debian35Mutex10ReaderLockEv(mu); }));
}
STRATA_WRAP(void, _ZN4absl7debian35Mutex12ReaderUnlockEv, (Mutex * mu)) {
  Unlocking(mu, kRead, [=] { __real__ZN4absl7debian35Mutex12ReaderUnlockEv(mu); });
}
STRATA_WRAP(bool, _ZN4absl7debian35Mutex13ReaderTryLockEv, (Mutex * mu)) {
  return TryLocking(mu, kRead, [=] { return __real__ZN4absl7debian35Mutex13ReaderTryLockEv(mu); });
}
STRATA_WRAP(void, _ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE,
            (Mutex * mu, const Condition& c)) {
  Locking(mu, kRead,
          V([&] { __real__ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE(mu, c); }));
}
STRATA_WRAP(bool, _ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE,
            (Mutex * mu, const Condition& c, Duration d)) {
  return Locking(mu, kRead, [&] {
    return __real__ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE(
        mu, c, d);
  });
}
STRATA_WRAP(bool, _ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE,
            (Mutex * mu, const Condition& c, Time t)) {
  return Locking(mu, kRead, [&] {
    return __real__ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE(
        mu, c, t);
  });
}

// ---- Waiting with the lock held (released and re-taken inside; Strata awaits in writer mode) --
STRATA_WRAP(void, _ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE, (Mutex * mu, const Condition& c)) {
  Waiting(mu, V([&] { __real__ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE(mu, c); }));
}
STRATA_WRAP(bool, _ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE,
            (Mutex * mu, const Condition& c, Duration d)) {
  return Waiting(mu, [&] {
    return __real__ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE(mu, c, d);
  });
}
STRATA_WRAP(bool, _ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE,
            (Mutex * mu, const Condition& c, Time t)) {
  return Waiting(mu, [&] {
    return __real__ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE(mu, c, t);
  });
}
STRATA_WRAP(void, _ZN4absl7debian37CondVar4WaitEPNS0_5MutexE, (CondVar * cv, Mutex* mu)) {
  Waiting(mu, V([=] { __real__ZN4absl7debian37CondVar4WaitEPNS0_5MutexE(cv, mu); }));
}
STRATA_WRAP(bool, _ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE,
            (CondVar * cv, Mutex* mu, Duration d)) {
  return Waiting(mu, [=] {
    return __real__ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE(cv, mu, d);
  });
}
STRATA_WRAP(bool, _ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE,
            (CondVar * cv, Mutex* mu, Time t)) {
  return Waiting(mu, [=] {
    return __real__ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE(cv, mu, t);
  });
}

// ---- Notification and BlockingCounter ---------------------------------------------------------
void __real__ZN4absl7debian312Notification6NotifyEv(absl::Notification* n);
void __wrap__ZN4absl7debian312Notification6NotifyEv(absl::Notification* n) {
  __tsan_release(n);
  __real__ZN4absl7debian312Notification6NotifyEv(n);
}
bool __real__ZN4absl7debian312Notification23HasBeenNotifiedInternalEPKSt6atomicIbE(
    const std::atomic<bool>* flag);
bool __wrap__ZN4absl7debian312Notification23HasBeenNotifiedInternalEPKSt6atomicIbE(
    const std::atomic<bool>* flag) {
  // The flag is Notification's only member, so its address is the object's.
  const bool r = __real__ZN4absl7debian312Notification23HasBeenNotifiedInternalEPKSt6atomicIbE(flag);
  if (r) __tsan_acquire(const_cast<std::atomic<bool>*>(flag));
  return r;
}
void __real__ZNK4absl7debian312Notification19WaitForNotificationEv(const absl::Notification* n);
void __wrap__ZNK4absl7debian312Notification19WaitForNotificationEv(const absl::Notification* n) {
  __real__ZNK4absl7debian312Notification19WaitForNotificationEv(n);
  __tsan_acquire(const_cast<absl::Notification*>(n));
}
bool __real__ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE(
    const absl::Notification* n, Duration d);
bool __wrap__ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE(
    const absl::Notification* n, Duration d) {
  const bool r =
      __real__ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE(n, d);
  if (r) __tsan_acquire(const_cast<absl::Notification*>(n));
  return r;
}
bool __real__ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE(
    const absl::Notification* n, Time t);
bool __wrap__ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE(
    const absl::Notification* n, Time t) {
  const bool r =
      __real__ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE(n, t);
  if (r) __tsan_acquire(const_cast<absl::Notification*>(n));
  return r;
}
bool __real__ZN4absl7debian315BlockingCounter14DecrementCountEv(absl::BlockingCounter* c);
bool __wrap__ZN4absl7debian315BlockingCounter14DecrementCountEv(absl::BlockingCounter* c) {
  __tsan_release(c);
  return __real__ZN4absl7debian315BlockingCounter14DecrementCountEv(c);
}
void __real__ZN4absl7debian315BlockingCounter4WaitEv(absl::BlockingCounter* c);
void __wrap__ZN4absl7debian315BlockingCounter4WaitEv(absl::BlockingCounter* c) {
  __real__ZN4absl7debian315BlockingCounter4WaitEv(c);
  __tsan_acquire(c);
}

}  // extern "C"
