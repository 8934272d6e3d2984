#include "cachenode/memory_backend.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "cachenode/gpu/device_memory.h"
#include "cachenode/gpu/kv_cuda.h"
#include "cachenode/gpu_bridge.h"
#include "common/byte_size.h"
#include "common/status_macros.h"

namespace strata::cachenode {
namespace {

class HostMemory final : public MemoryBackend {
 public:
  HostMemory(std::byte* base, uint64_t bytes, int fd, uint64_t device_address)
      : base_(base), bytes_(bytes), fd_(fd), pinned_(device_address != 0),
        device_address_(device_address) {}
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
  uint64_t device_address() const override { return device_address_; }
  std::string Describe() const override {
    return absl::StrCat(fd_ >= 0 ? "memfd " : "anonymous ", common::FormatByteSize(bytes_),
                        pinned_ ? ", pinned for GPU DMA" : ", not pinned");
  }

 private:
  std::byte* base_;
  uint64_t bytes_;
  int fd_;
  bool pinned_;
  uint64_t device_address_;
};

// The HBM pool: device memory, copied in and out on the calling thread's CUDA stream.
class GpuMemory final : public MemoryBackend {
 public:
  explicit GpuMemory(std::unique_ptr<gpu::DeviceBuffer> buffer) : buffer_(std::move(buffer)) {}
  uint64_t size() const override { return buffer_->size(); }
  std::byte* host_base() override { return nullptr; }
  uint64_t device_address() const override { return buffer_->address(); }
  absl::Status Write(uint64_t offset, std::span<const std::byte> data) override {
    if (offset + data.size() > size()) return absl::OutOfRangeError("write past pool end");
    return FromGpu(gpu::CopyToDevice(buffer_->address() + offset, data.data(), data.size()));
  }
  absl::Status ReadInto(uint64_t offset, std::span<std::byte> out) override {
    if (offset + out.size() > size()) return absl::OutOfRangeError("read past pool end");
    return FromGpu(gpu::CopyToHost(out.data(), buffer_->address() + offset, out.size()));
  }
  std::string Describe() const override {
    return absl::StrCat("cuda ", buffer_->device(), ", ", common::FormatByteSize(size()));
  }

 private:
  std::unique_ptr<gpu::DeviceBuffer> buffer_;
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
  uint64_t device_address = 0;
  if (options.pin_for_gpu && GpuUsable(nullptr)) {
    absl::StatusOr<uint64_t> pinned = PinHostMemory(base, options.bytes);
    if (pinned.ok()) device_address = *pinned;
  }
  return std::unique_ptr<MemoryBackend>(
      new HostMemory(static_cast<std::byte*>(base), options.bytes, fd, device_address));
}

bool GpuUsable(std::string* why) { return gpu::CudaUsable(why); }

absl::StatusOr<std::unique_ptr<MemoryBackend>> CreateGpuMemory(uint64_t bytes) {
  std::unique_ptr<gpu::DeviceBuffer> buffer;
  STRATA_RETURN_IF_ERROR(FromGpu(gpu::DeviceBuffer::Allocate(bytes, &buffer)));
  return std::unique_ptr<MemoryBackend>(new GpuMemory(std::move(buffer)));
}

absl::StatusOr<uint64_t> PinHostMemory(void* base, uint64_t bytes) {
  uint64_t device_address = 0;
  STRATA_RETURN_IF_ERROR(FromGpu(gpu::RegisterHostMapped(base, bytes, &device_address)));
  return device_address;
}

void UnpinHostMemory(void* base) { gpu::UnregisterHost(base); }

}  // namespace strata::cachenode
