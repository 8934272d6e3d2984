// Built instead of the .cu files when the CUDA toolkit is absent: every GPU function says so, and
// callers use the CPU reference (kv_reference.h) and report the path as emulated.
#include "cachenode/gpu/device_memory.h"
#include "cachenode/gpu/kv_cuda.h"

namespace strata::gpu {
namespace {
constexpr char kNoCuda[] = "built without the CUDA toolkit";
}  // namespace

struct KvTransferStream::Impl {};

bool CudaUsable(std::string* why) {
  if (why != nullptr) *why = kNoCuda;
  return false;
}
Status CurrentDevice(GpuDevice*) { return Unavailable(kNoCuda); }
KvTransferStream::KvTransferStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KvTransferStream::~KvTransferStream() = default;
Status KvTransferStream::Create(uint32_t, uint32_t, std::unique_ptr<KvTransferStream>*) {
  return Unavailable(kNoCuda);
}
Status KvTransferStream::Gather(const KvLayout&, const uint32_t*, const uint64_t*, uint32_t) {
  return Unavailable(kNoCuda);
}
Status KvTransferStream::Scatter(const KvLayout&, const uint32_t*, const uint64_t*, uint32_t) {
  return Unavailable(kNoCuda);
}
Status KvTransferStream::Launch(const KvLayout&, const uint32_t*, const uint64_t*, uint32_t, bool) {
  return Unavailable(kNoCuda);
}
Status KvTransferStream::Synchronize() { return Unavailable(kNoCuda); }
void* KvTransferStream::native_stream() const { return nullptr; }
Status RegisterHostMapped(void*, uint64_t, uint64_t*) { return Unavailable(kNoCuda); }
void UnregisterHost(void*) {}
Status ExportIpcHandle(uint64_t, std::string*) { return Unavailable(kNoCuda); }
Status OpenIpcHandle(const std::string&, uint64_t*) { return Unavailable(kNoCuda); }
void CloseIpcHandle(uint64_t) {}
Status DeviceBuffer::Allocate(uint64_t, std::unique_ptr<DeviceBuffer>*) { return Unavailable(kNoCuda); }
DeviceBuffer::~DeviceBuffer() = default;
Status CopyToDevice(uint64_t, const void*, uint64_t) { return Unavailable(kNoCuda); }
Status CopyToHost(void*, uint64_t, uint64_t) { return Unavailable(kNoCuda); }

}  // namespace strata::gpu
