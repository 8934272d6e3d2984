#include "bench/baselines.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace strata::bench {
namespace {

// Closes a file descriptor on scope exit.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void Reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

absl::Status Errno(const std::string& what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

std::optional<double> AmplificationSince(const absl::StatusOr<IoCounters>& before, bool reads,
                                         uint64_t payload_bytes) {
  return MeasuredAmplification(before, ReadIoCounters(), reads, payload_bytes);
}

}  // namespace

absl::StatusOr<Throughput> MeasureMemcpy(uint64_t block_bytes, uint64_t working_set_bytes,
                                         absl::Duration duration) {
  const uint64_t blocks = std::max<uint64_t>(1, working_set_bytes / block_bytes);
  AlignedBuffer src(blocks * block_bytes);
  AlignedBuffer dst(blocks * block_bytes);
  FillRandom(src.span(), 1);
  uint64_t next = 0;
  // One pass over the whole working set per step, so every block comes from DRAM, not cache.
  return RunFor(duration, [&]() -> absl::StatusOr<uint64_t> {
    for (uint64_t i = 0; i < blocks; ++i) {
      const uint64_t b = (next + i) % blocks;
      std::memcpy(dst.data() + b * block_bytes, src.data() + b * block_bytes, block_bytes);
    }
    next += 7;  // rotate the start so no block stays warm in cache across passes
    return blocks * block_bytes;
  });
}

absl::StatusOr<Throughput> MeasureLoopbackTcp(uint64_t write_bytes, absl::Duration duration) {
  Fd listener(socket(AF_INET, SOCK_STREAM, 0));
  if (listener.get() < 0) return Errno("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Errno("bind 127.0.0.1:0");
  }
  if (listen(listener.get(), 1) != 0) return Errno("listen");
  socklen_t len = sizeof(addr);
  if (getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return Errno("getsockname");
  }
  Fd writer_fd(socket(AF_INET, SOCK_STREAM, 0));
  if (writer_fd.get() < 0) return Errno("socket");
  if (connect(writer_fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Errno("connect");
  }
  Fd reader_fd(accept(listener.get(), nullptr, nullptr));
  if (reader_fd.get() < 0) return Errno("accept");

  std::atomic<bool> stop{false};
  std::thread writer([&] {
    AlignedBuffer buf(write_bytes);
    FillRandom(buf.span(), 2);
    while (!stop.load(std::memory_order_relaxed)) {
      size_t off = 0;
      while (off < buf.size()) {
        // MSG_NOSIGNAL: the reader closing its end must end this loop, not the process.
        const ssize_t n = send(writer_fd.get(), buf.data() + off, buf.size() - off, MSG_NOSIGNAL);
        if (n <= 0) {
          if (n < 0 && errno == EINTR) continue;
          return;
        }
        off += static_cast<size_t>(n);
      }
    }
  });

  AlignedBuffer in(write_bytes);
  absl::Status error;
  absl::StatusOr<Throughput> result = RunFor(duration, [&]() -> absl::StatusOr<uint64_t> {
    uint64_t got = 0;
    while (got < in.size()) {
      const ssize_t n = recv(reader_fd.get(), in.data() + got, in.size() - got, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Errno("recv");
      got += static_cast<uint64_t>(n);
    }
    return got;
  });
  stop = true;
  // Unblock a writer stuck in send(): the reader end goes away.
  shutdown(reader_fd.get(), SHUT_RDWR);
  reader_fd.Reset();
  writer.join();
  return result;
}

absl::StatusOr<DiskResult> MeasureDirectSequentialWrite(const std::string& path,
                                                        uint64_t block_bytes, uint64_t blocks) {
  const uint64_t io_bytes = RoundUpToPage(block_bytes);
  Fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT | O_CLOEXEC, 0644));
  if (fd.get() < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("open ", path, " with O_DIRECT: ", std::strerror(errno)));
  }
  AlignedBuffer buf(io_bytes);
  FillRandom(buf.span(), 3);
  const absl::StatusOr<IoCounters> before = ReadIoCounters();
  const Stopwatch watch;
  for (uint64_t i = 0; i < blocks; ++i) {
    uint64_t off = 0;
    while (off < io_bytes) {
      const ssize_t n = pwrite(fd.get(), buf.data() + off, io_bytes - off,
                               static_cast<off_t>(i * io_bytes + off));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Errno(absl::StrCat("pwrite ", path));
      off += static_cast<uint64_t>(n);
    }
  }
  if (fdatasync(fd.get()) != 0) return Errno(absl::StrCat("fdatasync ", path));
  DiskResult r;
  r.throughput = watch.Finish(blocks * io_bytes);
  r.amplification = AmplificationSince(before, /*reads=*/false, blocks * io_bytes);
  return r;
}

absl::StatusOr<DiskResult> MeasureDirectRandomReads(const std::string& path, uint64_t block_bytes,
                                                    uint64_t blocks, int queue_depth,
                                                    absl::Duration duration, uint64_t seed) {
  const uint64_t io_bytes = RoundUpToPage(block_bytes);
  Fd fd(open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC));
  if (fd.get() < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("open ", path, " with O_DIRECT: ", std::strerror(errno)));
  }
  std::atomic<uint64_t> total{0};
  absl::Mutex mu;
  absl::Status first_error;
  const absl::StatusOr<IoCounters> before = ReadIoCounters();
  const Stopwatch watch;
  const absl::Time end = absl::Now() + duration;
  std::vector<std::thread> threads;
  for (int t = 0; t < queue_depth; ++t) {
    threads.emplace_back([&, t] {
      AlignedBuffer buf(io_bytes);
      std::mt19937_64 rng(seed * 1000 + static_cast<uint64_t>(t));
      std::uniform_int_distribution<uint64_t> pick(0, blocks - 1);
      do {
        const uint64_t b = pick(rng);
        uint64_t off = 0;
        while (off < io_bytes) {
          const ssize_t n = pread(fd.get(), buf.data() + off, io_bytes - off,
                                  static_cast<off_t>(b * io_bytes + off));
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) {
            absl::MutexLock lock(&mu);
            if (first_error.ok()) first_error = Errno(absl::StrCat("pread ", path));
            return;
          }
          off += static_cast<uint64_t>(n);
        }
        total.fetch_add(io_bytes, std::memory_order_relaxed);
      } while (absl::Now() < end);
    });
  }
  for (std::thread& t : threads) t.join();
  if (!first_error.ok()) return first_error;
  DiskResult r;
  r.throughput = watch.Finish(total.load());
  r.amplification = AmplificationSince(before, /*reads=*/true, r.throughput.bytes);
  return r;
}

}  // namespace strata::bench
