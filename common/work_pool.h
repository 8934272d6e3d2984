// WorkPool: a fixed set of worker threads for blocking work that pays off in parallel (the SSD
// tier's random reads: one thread per read in flight is how a disk's queue gets deep without
// io_uring, which Debian's RocksDB is built without).
//
// ParallelFor(n, fn) runs fn(0..n-1) spread over the workers and the calling thread, and returns
// once every call has returned. Calls from several threads at once share the workers. Workers are
// started by the constructor and joined by the destructor; fn must not throw. Thread-safe.
#pragma once

#include <cstddef>
#include <functional>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace strata::common {

class WorkPool {
 public:
  // `threads` workers (0: none; ParallelFor then runs everything on the caller).
  explicit WorkPool(size_t threads) {
    workers_.reserve(threads);
    for (size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { Work(); });
  }
  ~WorkPool() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    for (std::thread& t : workers_) t.join();
  }
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  size_t threads() const { return workers_.size(); }

  // Runs fn(i) for every i in [0, n) and waits for all of them. The caller takes items too, so a
  // pool whose workers are busy with other callers never leaves this call waiting idle.
  void ParallelFor(size_t n, const std::function<void(size_t)>& fn) {
    if (n == 0) return;
    if (n == 1 || workers_.empty()) {
      for (size_t i = 0; i < n; ++i) fn(i);
      return;
    }
    Job job{&fn, n};
    {
      absl::MutexLock lock(&mu_);
      jobs_.push_back(&job);
    }
    RunItems(job);
    absl::MutexLock lock(&mu_);
    // Unlisted once every item is taken; wait for the items still running on workers.
    mu_.Await(absl::Condition(
        +[](Job* j) { return j->done == j->n; }, &job));
  }

 private:
  struct Job {
    const std::function<void(size_t)>* fn;
    size_t n;
    size_t next = 0;  // next item to hand out (guarded by mu_)
    size_t done = 0;  // items finished (guarded by mu_)
  };

  // Takes items of `job` until none is left.
  void RunItems(Job& job) {
    while (true) {
      size_t i;
      {
        absl::MutexLock lock(&mu_);
        if (job.next == job.n) return;
        i = job.next++;
        if (job.next == job.n) Unlist(&job);
      }
      (*job.fn)(i);
      absl::MutexLock lock(&mu_);
      ++job.done;
    }
  }

  void Unlist(Job* job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (size_t k = 0; k < jobs_.size(); ++k) {
      if (jobs_[k] == job) {
        jobs_.erase(jobs_.begin() + static_cast<std::ptrdiff_t>(k));
        return;
      }
    }
  }

  void Work() {
    while (true) {
      Job* job;
      size_t i;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](WorkPool* p) ABSL_NO_THREAD_SAFETY_ANALYSIS { return p->stop_ || !p->jobs_.empty(); },
            this));
        if (jobs_.empty()) return;  // stopping, nothing left
        job = jobs_.front();
        i = job->next++;
        if (job->next == job->n) Unlist(job);
      }
      (*job->fn)(i);
      absl::MutexLock lock(&mu_);
      ++job->done;
    }
  }

  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Job*> jobs_ ABSL_GUARDED_BY(mu_);  // jobs with items not yet handed out
  std::vector<std::thread> workers_;
};

}  // namespace strata::common
