#include "cachenode/memory_backend.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/byte_size.h"

namespace strata::cachenode {
namespace {

class HostMemory final : public MemoryBackend {
 public:
  HostMemory(std::byte* base, uint64_t bytes, int fd, bool pinned)
      : base_(base), bytes_(bytes), fd_(fd), pinned_(pinned) {}
  ~HostMemory() override {
    if (pinned_) UnpinHostMemory(base_);
    munmap(base_, bytes_);
    if (fd_ >= 0) close(fd_);
  }
  uint64_t size() const override { return bytes_; }
  std::byte* host_base() override { return base_; }
  absl::Status Write(uint64_t offset, std::span<const std::byte> data) override {
    if (offset + data.size() > bytes_) return absl::OutOfRangeError("write past arena end");
    std::memcpy(base_ + offset, data.data(), data.size());
    return absl::OkStatus();
  }
  absl::Status ReadInto(uint64_t offset, std::span<std::byte> out) override {
    if (offset + out.size() > bytes_) return absl::OutOfRangeError("read past arena end");
    std::memcpy(out.data(), base_ + offset, out.size());
    return absl::OkStatus();
  }
  int shared_fd() const override { return fd_; }
  std::string Describe() const override {
    return absl::StrCat(fd_ >= 0 ? "memfd " : "anonymous ", common::FormatByteSize(bytes_),
                        pinned_ ? ", pinned for GPU DMA" : ", not pinned");
  }

 private:
  std::byte* base_;
  uint64_t bytes_;
  int fd_;
  bool pinned_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<MemoryBackend>> CreateHostMemory(const HostMemoryOptions& options) {
  if (options.bytes == 0) return absl::InvalidArgumentError("host memory of 0 bytes");
  int fd = -1;
  void* base = MAP_FAILED;
  if (options.shared_memfd) {
    fd = memfd_create(options.name.c_str(), MFD_CLOEXEC);
    if (fd < 0) {
      return absl::ResourceExhaustedError(absl::StrCat("memfd_create: ", std::strerror(errno)));
    }
    if (ftruncate(fd, static_cast<off_t>(options.bytes)) != 0) {
      const int err = errno;
      close(fd);
      return absl::ResourceExhaustedError(absl::StrCat("ftruncate memfd: ", std::strerror(err)));
    }
    base = mmap(nullptr, options.bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  } else {
    base = mmap(nullptr, options.bytes, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  }
  if (base == MAP_FAILED) {
    const int err = errno;
    if (fd >= 0) close(fd);
    return absl::ResourceExhaustedError(
        absl::StrCat("mmap ", common::FormatByteSize(options.bytes), ": ", std::strerror(err)));
  }
  bool pinned = false;
  if (options.pin_for_gpu) {
    std::string why;
    if (GpuUsable(&why)) pinned = PinHostMemory(base, options.bytes).ok();
  }
  return std::unique_ptr<MemoryBackend>(
      new HostMemory(static_cast<std::byte*>(base), options.bytes, fd, pinned));
}

#ifndef STRATA_HAVE_CUDA
// Built without CUDA: the GPU entry points report why they cannot work.
bool GpuUsable(std::string* why) {
  if (why) *why = "built without CUDA";
  return false;
}
absl::StatusOr<std::unique_ptr<MemoryBackend>> CreateGpuMemory(uint64_t) {
  return absl::UnavailableError("built without CUDA");
}
absl::Status PinHostMemory(void*, uint64_t) { return absl::UnavailableError("built without CUDA"); }
void UnpinHostMemory(void*) {}
#endif

}  // namespace strata::cachenode
