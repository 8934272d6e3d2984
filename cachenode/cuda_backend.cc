// The cache node's only file compiled against the CUDA runtime: every CUDA call is checked here and
// converted to absl::Status by CudaStatus().
#include <cuda_runtime_api.h>

#include <mutex>

#include "absl/strings/str_cat.h"
#include "cachenode/memory_backend.h"
#include "common/byte_size.h"

namespace strata::cachenode {
namespace {

absl::Status CudaStatus(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return absl::OkStatus();
  const std::string msg =
      absl::StrCat(what, ": ", cudaGetErrorName(err), ": ", cudaGetErrorString(err));
  switch (err) {
    case cudaErrorMemoryAllocation:
      return absl::ResourceExhaustedError(msg);
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorDevicesUnavailable:
      return absl::UnavailableError(msg);
    case cudaErrorInvalidValue:
      return absl::InvalidArgumentError(msg);
    default:
      return absl::InternalError(msg);
  }
}

class GpuMemory final : public MemoryBackend {
 public:
  GpuMemory(void* base, uint64_t bytes, std::string device)
      : base_(static_cast<std::byte*>(base)), bytes_(bytes), device_(std::move(device)) {}
  ~GpuMemory() override { cudaFree(base_); }
  uint64_t size() const override { return bytes_; }
  std::byte* host_base() override { return nullptr; }
  absl::Status Write(uint64_t offset, std::span<const std::byte> data) override {
    if (offset + data.size() > bytes_) return absl::OutOfRangeError("write past pool end");
    return CudaStatus(cudaMemcpy(base_ + offset, data.data(), data.size(), cudaMemcpyHostToDevice),
                      "cudaMemcpy H2D");
  }
  absl::Status ReadInto(uint64_t offset, std::span<std::byte> out) override {
    if (offset + out.size() > bytes_) return absl::OutOfRangeError("read past pool end");
    return CudaStatus(cudaMemcpy(out.data(), base_ + offset, out.size(), cudaMemcpyDeviceToHost),
                      "cudaMemcpy D2H");
  }
  std::string Describe() const override {
    return absl::StrCat("cuda ", device_, ", ", common::FormatByteSize(bytes_));
  }

 private:
  std::byte* base_;
  uint64_t bytes_;
  std::string device_;
};

}  // namespace

bool GpuUsable(std::string* why) {
  static std::once_flag once;
  static bool usable = false;
  static std::string reason;
  std::call_once(once, [] {
    int count = 0;
    absl::Status s = CudaStatus(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
    if (!s.ok()) {
      reason = std::string(s.message());
    } else if (count == 0) {
      reason = "no CUDA device";
    } else {
      usable = true;
    }
  });
  if (why) *why = reason;
  return usable;
}

absl::StatusOr<std::unique_ptr<MemoryBackend>> CreateGpuMemory(uint64_t bytes) {
  std::string why;
  if (!GpuUsable(&why)) return absl::UnavailableError(why);
  int device = 0;
  if (auto s = CudaStatus(cudaGetDevice(&device), "cudaGetDevice"); !s.ok()) return s;
  cudaDeviceProp prop{};
  if (auto s = CudaStatus(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
      !s.ok()) {
    return s;
  }
  void* base = nullptr;
  if (auto s = CudaStatus(cudaMalloc(&base, bytes), "cudaMalloc"); !s.ok()) return s;
  return std::unique_ptr<MemoryBackend>(
      new GpuMemory(base, bytes, absl::StrCat("device ", device, " (", prop.name, ")")));
}

absl::Status PinHostMemory(void* base, uint64_t bytes) {
  std::string why;
  if (!GpuUsable(&why)) return absl::UnavailableError(why);
  return CudaStatus(cudaHostRegister(base, bytes, cudaHostRegisterDefault), "cudaHostRegister");
}

void UnpinHostMemory(void* base) { cudaHostUnregister(base); }

}  // namespace strata::cachenode
