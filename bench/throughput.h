// Timing helpers shared by every measured case: a time-bounded loop and the resulting rate, plus
// page-aligned buffers (O_DIRECT needs 4 KiB alignment; DRAM cases want memory faulted in before
// the clock starts). Thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace strata::bench {

struct Throughput {
  uint64_t bytes = 0;
  double seconds = 0;
  // CPU time of the whole process (every thread, user + system) over the same interval. On a small
  // box it tells a CPU-bound case (cores all busy) from one that waits (on I/O or a pipeline).
  double cpu_seconds = 0;
  // Payload GB/s (1e9 bytes per second, as disks and NICs are quoted).
  double gbps() const { return seconds > 0 ? static_cast<double>(bytes) / seconds / 1e9 : 0; }
  // Average number of cores the process kept busy.
  double cpu_cores() const { return seconds > 0 ? cpu_seconds / seconds : 0; }
};

// Calls `step` until `duration` has passed, at least once. `step` returns the payload bytes it
// moved; its first error ends the loop and is returned.
absl::StatusOr<Throughput> RunFor(absl::Duration duration,
                                  absl::FunctionRef<absl::StatusOr<uint64_t>()> step);

// Seconds since `start` on a monotonic clock.
double SecondsSince(absl::Time start);

// CPU seconds this process has used so far (all threads, user + system).
double ProcessCpuSeconds();

// Measures an interval: wall time and process CPU time from construction to Finish().
class Stopwatch {
 public:
  Stopwatch() : start_(absl::Now()), cpu_start_(ProcessCpuSeconds()) {}
  Throughput Finish(uint64_t bytes) const {
    return {bytes, SecondsSince(start_), ProcessCpuSeconds() - cpu_start_};
  }

 private:
  absl::Time start_;
  double cpu_start_;
};

// A zero-filled-then-written, 4 KiB-aligned heap buffer. Every page is touched at construction, so
// page faults never land inside a timed loop.
class AlignedBuffer {
 public:
  static constexpr size_t kAlignment = 4096;
  explicit AlignedBuffer(size_t bytes);
  std::byte* data() { return data_.get(); }
  const std::byte* data() const { return data_.get(); }
  size_t size() const { return size_; }
  std::span<std::byte> span() { return {data_.get(), size_}; }
  std::span<const std::byte> span() const { return {data_.get(), size_}; }

 private:
  struct Free {
    void operator()(std::byte* p) const;
  };
  std::unique_ptr<std::byte, Free> data_;
  size_t size_ = 0;
};

// Fills `out` with pseudo-random bytes from `seed` (xorshift: several GB/s, incompressible enough
// that no layer could cheat by compressing).
void FillRandom(std::span<std::byte> out, uint64_t seed);

// Rounds up to a multiple of AlignedBuffer::kAlignment.
uint64_t RoundUpToPage(uint64_t bytes);

}  // namespace strata::bench
