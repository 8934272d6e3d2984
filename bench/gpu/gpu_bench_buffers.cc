#include "bench/gpu/gpu_bench_buffers.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "cachenode/gpu/kv_cuda.h"

namespace strata::bench {

gpu::Status CudaStatus(cudaError_t error, const char* what, const char* file, int line) {
  if (error == cudaSuccess) return gpu::Status::Ok();
  return gpu::Internal(std::string(what) + " failed at " + file + ":" + std::to_string(line) +
                       ": " + cudaGetErrorName(error) + ": " + cudaGetErrorString(error));
}

gpu::Status LastLaunchError(const char* what, const char* file, int line) {
  return CudaStatus(cudaGetLastError(), (std::string("launch of ") + what).c_str(), file, line);
}

uint64_t Rng::Next() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

void Rng::Fill(void* data, uint64_t bytes) {
  uint8_t* p = static_cast<uint8_t*>(data);
  uint64_t i = 0;
  for (; i + 8 <= bytes; i += 8) {
    const uint64_t v = Next();
    std::memcpy(p + i, &v, 8);
  }
  if (i < bytes) {
    const uint64_t v = Next();
    std::memcpy(p + i, &v, bytes - i);
  }
}

std::vector<uint32_t> Rng::Permutation(uint32_t n) {
  std::vector<uint32_t> ids(n);
  for (uint32_t i = 0; i < n; ++i) ids[i] = i;
  for (uint32_t i = n; i > 1; --i) std::swap(ids[i - 1], ids[Below(i)]);
  return ids;
}

// ---- HostBuffer

gpu::Status HostBuffer::Allocate(uint64_t bytes, HostBuffer* out) {
  constexpr uint64_t kPage = 4096;
  const uint64_t rounded = std::max<uint64_t>(kPage, (bytes + kPage - 1) / kPage * kPage);
  void* p = std::aligned_alloc(kPage, rounded);
  if (p == nullptr) {
    return gpu::Internal("aligned_alloc of " + std::to_string(bytes) + " bytes failed");
  }
  HostBuffer b;
  b.data_ = static_cast<uint8_t*>(p);
  b.size_ = bytes;
  *out = std::move(b);
  return gpu::Status::Ok();
}

HostBuffer::~HostBuffer() { std::free(data_); }

HostBuffer::HostBuffer(HostBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

HostBuffer& HostBuffer::operator=(HostBuffer&& other) noexcept {
  if (this != &other) {
    std::free(data_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

// ---- DeviceBuffer

gpu::Status DeviceBuffer::Allocate(uint64_t bytes, DeviceBuffer* out) {
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, std::max<uint64_t>(bytes, 1));
  if (e != cudaSuccess) {
    return CudaStatus(e, ("cudaMalloc(" + std::to_string(bytes) + " bytes)").c_str(), __FILE__,
                      __LINE__);
  }
  DeviceBuffer b;
  b.data_ = static_cast<uint8_t*>(p);
  b.size_ = bytes;
  *out = std::move(b);
  return gpu::Status::Ok();
}

void DeviceBuffer::Release() {
  if (data_ == nullptr) return;
  const cudaError_t e = cudaFree(data_);
  if (e != cudaSuccess) {
    std::fprintf(stderr, "strata-gpu-bench: cudaFree failed: %s: %s\n", cudaGetErrorName(e),
                 cudaGetErrorString(e));
  }
  data_ = nullptr;
  size_ = 0;
}

DeviceBuffer::~DeviceBuffer() { Release(); }

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    Release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

// ---- MappedHostBuffer

gpu::Status MappedHostBuffer::Allocate(uint64_t bytes, MappedHostBuffer* out) {
  const uint64_t length = std::max<uint64_t>(bytes, 1);
  void* p = mmap(nullptr, length, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) {
    return gpu::Internal("mmap of " + std::to_string(bytes) +
                         " bytes failed: " + std::strerror(errno));
  }
  MappedHostBuffer b;
  b.host_ = static_cast<uint8_t*>(p);
  b.size_ = length;
  gpu::Status s = gpu::RegisterHostMapped(p, length, &b.device_address_);
  if (!s.ok()) {
    return gpu::Status(s.code(),
                       "RegisterHostMapped(" + std::to_string(bytes) + " bytes): " + s.message());
  }
  b.registered_ = true;
  *out = std::move(b);
  return gpu::Status::Ok();
}

void MappedHostBuffer::Release() {
  if (host_ == nullptr) return;
  if (registered_) gpu::UnregisterHost(host_);
  munmap(host_, size_);
  host_ = nullptr;
  device_address_ = 0;
  size_ = 0;
  registered_ = false;
}

MappedHostBuffer::~MappedHostBuffer() { Release(); }

MappedHostBuffer::MappedHostBuffer(MappedHostBuffer&& other) noexcept
    : host_(std::exchange(other.host_, nullptr)),
      device_address_(std::exchange(other.device_address_, 0)),
      size_(std::exchange(other.size_, 0)),
      registered_(std::exchange(other.registered_, false)) {}

MappedHostBuffer& MappedHostBuffer::operator=(MappedHostBuffer&& other) noexcept {
  if (this != &other) {
    Release();
    host_ = std::exchange(other.host_, nullptr);
    device_address_ = std::exchange(other.device_address_, 0);
    size_ = std::exchange(other.size_, 0);
    registered_ = std::exchange(other.registered_, false);
  }
  return *this;
}

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

}  // namespace strata::bench
