#include "bench/throughput.h"

#include <time.h>

#include <cstdlib>
#include <cstring>
#include <new>

namespace strata::bench {

absl::StatusOr<Throughput> RunFor(absl::Duration duration,
                                  absl::FunctionRef<absl::StatusOr<uint64_t>()> step) {
  const Stopwatch watch;
  const absl::Time end = absl::Now() + duration;
  uint64_t bytes = 0;
  do {
    absl::StatusOr<uint64_t> moved = step();
    if (!moved.ok()) return moved.status();
    bytes += *moved;
  } while (absl::Now() < end);
  return watch.Finish(bytes);
}

double SecondsSince(absl::Time start) { return absl::ToDoubleSeconds(absl::Now() - start); }

double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

void AlignedBuffer::Free::operator()(std::byte* p) const { std::free(p); }

AlignedBuffer::AlignedBuffer(size_t bytes) : size_(bytes) {
  const size_t rounded = RoundUpToPage(bytes == 0 ? 1 : bytes);
  void* p = std::aligned_alloc(kAlignment, rounded);
  if (p == nullptr) throw std::bad_alloc();  // bench-local; main() runs with enough memory or dies
  std::memset(p, 0, rounded);
  data_.reset(static_cast<std::byte*>(p));
}

void FillRandom(std::span<std::byte> out, uint64_t seed) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
  size_t i = 0;
  for (; i + 8 <= out.size(); i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(out.data() + i, &x, 8);
  }
  for (; i < out.size(); ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<std::byte>(x);
  }
}

uint64_t RoundUpToPage(uint64_t bytes) {
  return (bytes + AlignedBuffer::kAlignment - 1) / AlignedBuffer::kAlignment *
         AlignedBuffer::kAlignment;
}

}  // namespace strata::bench
