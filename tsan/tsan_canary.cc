// Checks the TSan lane itself, built only with STRATA_SANITIZE=thread.
//   tsan_canary guarded   two threads bump a counter under an absl::Mutex (and hand a value over
//                         through an absl::Notification and a CondVar): must report nothing, which
//                         shows absl_tsan_shim.cc makes Abseil's happens-before visible;
//   tsan_canary race      the same counter without the lock: must be reported, which shows the
//                         shim does not hide real races.
#include <cstring>
#include <iostream>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

namespace {

int Guarded() {
  absl::Mutex mu;
  long counter = 0;
  auto bump = [&] {
    for (int i = 0; i < 10000; ++i) {
      absl::MutexLock lock(&mu);
      ++counter;
    }
  };
  std::thread a(bump), b(bump);
  a.join();
  b.join();

  int handed = 0;  // written before Notify, read after WaitForNotification: no lock
  absl::Notification ready;
  std::thread producer([&] {
    handed = 42;
    ready.Notify();
  });
  ready.WaitForNotification();
  const int got = handed;
  producer.join();

  bool flag = false;
  int payload = 0;
  absl::CondVar cv;
  std::thread signaller([&] {
    absl::MutexLock lock(&mu);
    payload = 7;
    flag = true;
    cv.Signal();
  });
  {
    absl::MutexLock lock(&mu);
    while (!flag) cv.Wait(&mu);
  }
  signaller.join();
  std::cout << "counter " << counter << " handed " << got << " payload " << payload << "\n";
  return counter == 20000 && got == 42 && payload == 7 ? 0 : 1;
}

int Race() {
  long counter = 0;
  auto bump = [&] {
    for (int i = 0; i < 10000; ++i) ++counter;
  };
  std::thread a(bump), b(bump);
  a.join();
  b.join();
  std::cout << "counter " << counter << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "guarded") == 0) return Guarded();
  if (argc == 2 && std::strcmp(argv[1], "race") == 0) return Race();
  std::cerr << "usage: tsan_canary guarded|race\n";
  return 2;
}
