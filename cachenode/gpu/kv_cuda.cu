// The gather/scatter kernels and their launches; CUDA errors become gpu::Status in CudaCheck().
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>

#include "cachenode/gpu/cuda_check.h"
#include "cachenode/gpu/kv_cuda.h"
#include "cachenode/gpu/kv_plan.h"

namespace strata::gpu {
namespace {

// A persistent grid: each CUDA block walks the segments of all blocks of the launch.
template <uint32_t V>
__global__ void __launch_bounds__(kCopyThreads) CopyKernel(KvCopyArgs args) {
  const uint64_t total = args.total_segments();
  for (uint64_t seg = blockIdx.x; seg < total; seg += gridDim.x) {
    CopySegment<V>(args, seg, threadIdx.x);
  }
}

using KernelFn = void (*)(KvCopyArgs);

KernelFn KernelFor(uint32_t vec) {
  switch (vec) {
    case 16:
      return CopyKernel<16>;
    case 8:
      return CopyKernel<8>;
    case 4:
      return CopyKernel<4>;
    case 2:
      return CopyKernel<2>;
    default:
      return CopyKernel<1>;
  }
}

}  // namespace

bool CudaUsable(std::string* why) {
  int count = 0;
  const Status s = CudaCheck(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
  std::string reason = !s.ok() ? s.message() : count == 0 ? "no CUDA device" : "";
  if (why != nullptr) *why = reason;
  return reason.empty();
}

Status CurrentDevice(GpuDevice* out) {
  std::string why;
  if (!CudaUsable(&why)) return Unavailable(why);
  int device = 0;
  STRATA_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
  cudaDeviceProp prop{};
  STRATA_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, device));
  out->ordinal = device;
  out->name = prop.name;
  out->multiprocessors = prop.multiProcessorCount;
  out->max_threads_per_multiprocessor = prop.maxThreadsPerMultiProcessor;
  out->total_memory_bytes = prop.totalGlobalMem;
  out->compute_major = prop.major;
  out->compute_minor = prop.minor;
  return Status::Ok();
}

struct KvTransferStream::Impl {
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr;   // timing: before the kernel
  cudaEvent_t stop = nullptr;    // timing: after the kernel
  cudaEvent_t staged = nullptr;  // the upload of the staging buffer finished
  cudaEvent_t done = nullptr;    // blocking-sync event for Synchronize()
  bool staged_pending = false;
  bool timed = false;
  uint32_t max_blocks = 0;
  uint32_t max_layers = 0;
  size_t scratch_bytes = 0;
  uint8_t* host_staging = nullptr;  // pinned
  uint8_t* device_scratch = nullptr;
  uint32_t resident_blocks[5] = {};  // CUDA blocks per multiprocessor, per vector width
  int multiprocessors = 0;

  ~Impl() {
    if (stream != nullptr) cudaStreamSynchronize(stream);
    if (device_scratch != nullptr) cudaFree(device_scratch);
    if (host_staging != nullptr) cudaFreeHost(host_staging);
    for (cudaEvent_t e : {start, stop, staged, done}) {
      if (e != nullptr) cudaEventDestroy(e);
    }
    if (stream != nullptr) cudaStreamDestroy(stream);
  }
};

KvTransferStream::KvTransferStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KvTransferStream::~KvTransferStream() = default;
void* KvTransferStream::native_stream() const { return impl_->stream; }

Status KvTransferStream::Create(uint32_t max_blocks, uint32_t max_layers,
                                std::unique_ptr<KvTransferStream>* out) {
  if (max_blocks == 0 || max_layers == 0 || max_layers > kMaxLayers) {
    return InvalidArgument("KvTransferStream needs 1 <= max_blocks and 1 <= max_layers <= " +
                           std::to_string(kMaxLayers));
  }
  GpuDevice device;
  if (Status s = CurrentDevice(&device); !s.ok()) return s;
  auto impl = std::make_unique<Impl>();
  impl->max_blocks = max_blocks;
  impl->max_layers = max_layers;
  impl->multiprocessors = device.multiprocessors;
  STRATA_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&impl->stream, cudaStreamNonBlocking));
  STRATA_CUDA_RETURN_IF_ERROR(cudaEventCreate(&impl->start));
  STRATA_CUDA_RETURN_IF_ERROR(cudaEventCreate(&impl->stop));
  STRATA_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&impl->staged, cudaEventDisableTiming));
  STRATA_CUDA_RETURN_IF_ERROR(
      cudaEventCreateWithFlags(&impl->done, cudaEventDisableTiming | cudaEventBlockingSync));
  // Scratch: layer bases, payload addresses (8 bytes each), then block ids (4 bytes each).
  impl->scratch_bytes = 8ull * max_layers + 8ull * max_blocks + 4ull * max_blocks;
  STRATA_CUDA_RETURN_IF_ERROR(cudaMallocHost(&impl->host_staging, impl->scratch_bytes));
  STRATA_CUDA_RETURN_IF_ERROR(cudaMalloc(&impl->device_scratch, impl->scratch_bytes));
  const uint32_t widths[5] = {16, 8, 4, 2, 1};
  for (int i = 0; i < 5; ++i) {
    int blocks = 0;
    STRATA_CUDA_RETURN_IF_ERROR(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
        &blocks, KernelFor(widths[i]), kCopyThreads, 0));
    impl->resident_blocks[i] = static_cast<uint32_t>(std::max(blocks, 1));
  }
  out->reset(new KvTransferStream(std::move(impl)));
  return Status::Ok();
}

Status KvTransferStream::Gather(const KvLayout& layout, const uint32_t* ids,
                                const uint64_t* payloads, uint32_t count) {
  return Launch(layout, ids, payloads, count, /*gather=*/true);
}

Status KvTransferStream::Scatter(const KvLayout& layout, const uint32_t* ids,
                                 const uint64_t* payloads, uint32_t count) {
  return Launch(layout, ids, payloads, count, /*gather=*/false);
}

Status KvTransferStream::Launch(const KvLayout& layout, const uint32_t* ids,
                                const uint64_t* payloads, uint32_t count, bool gather) {
  Impl& im = *impl_;
  if (count > im.max_blocks) {
    return InvalidArgument(std::to_string(count) + " blocks in one launch, over this stream's " +
                           std::to_string(im.max_blocks));
  }
  if (layout.shape.num_layers > im.max_layers) {
    return InvalidArgument(std::to_string(layout.shape.num_layers) +
                           " layers, over this stream's " + std::to_string(im.max_layers));
  }
  KvCopyPlan plan;
  if (Status s = MakeCopyPlan(layout, AddressAlignment(payloads, count), &plan); !s.ok()) return s;
  if (Status s = ValidateBlockIds(layout, ids, count, /*allow_repeats=*/gather); !s.ok()) return s;
  if (count == 0) return Status::Ok();

  // The staging buffer is reused: the previous launch's upload must have left it.
  if (im.staged_pending) {
    STRATA_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(im.staged));
    im.staged_pending = false;
  }
  const uint32_t layers = layout.shape.num_layers;
  uint8_t* h = im.host_staging;
  std::memcpy(h, layout.layer_bases.data(), 8ull * layers);
  std::memcpy(h + 8ull * layers, payloads, 8ull * count);
  std::memcpy(h + 8ull * layers + 8ull * count, ids, 4ull * count);
  const size_t bytes = 8ull * layers + 12ull * count;
  STRATA_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(im.device_scratch, h, bytes, cudaMemcpyHostToDevice, im.stream));
  STRATA_CUDA_RETURN_IF_ERROR(cudaEventRecord(im.staged, im.stream));
  im.staged_pending = true;

  KvCopyArgs args;
  args.plan = plan;
  args.layer_bases = reinterpret_cast<const uint64_t*>(im.device_scratch);
  args.payloads = reinterpret_cast<const uint64_t*>(im.device_scratch + 8ull * layers);
  args.block_ids = reinterpret_cast<const uint32_t*>(im.device_scratch + 8ull * layers + 8ull * count);
  args.count = count;
  args.gather = gather;

  const int width_index = plan.vec_bytes == 16 ? 0 : plan.vec_bytes == 8 ? 1 : plan.vec_bytes == 4 ? 2 : plan.vec_bytes == 2 ? 3 : 4;
  // Half of what fits on the chip: a copy bound by PCIe needs far fewer bytes in flight than a
  // full grid holds (2 x 256 threads x 64 bytes per multiprocessor is about 4 MiB over 132), and
  // an offload and an onload on two streams must both find room to run at the same time.
  const uint64_t per_sm = std::max<uint32_t>(1, im.resident_blocks[width_index] / 2);
  const uint64_t resident = per_sm * im.multiprocessors;
  const unsigned grid = static_cast<unsigned>(std::max<uint64_t>(1, std::min(resident, args.total_segments())));
  STRATA_CUDA_RETURN_IF_ERROR(cudaEventRecord(im.start, im.stream));
  KernelFor(plan.vec_bytes)<<<grid, kCopyThreads, 0, im.stream>>>(args);
  STRATA_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  STRATA_CUDA_RETURN_IF_ERROR(cudaEventRecord(im.stop, im.stream));
  im.timed = true;
  return Status::Ok();
}

Status KvTransferStream::Synchronize() {
  Impl& im = *impl_;
  STRATA_CUDA_RETURN_IF_ERROR(cudaEventRecord(im.done, im.stream));
  STRATA_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(im.done));
  im.staged_pending = false;
  if (im.timed) {
    STRATA_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&last_kernel_ms_, im.start, im.stop));
    im.timed = false;
  }
  return Status::Ok();
}

Status RegisterHostMapped(void* base, uint64_t bytes, uint64_t* device_address) {
  std::string why;
  if (!CudaUsable(&why)) return Unavailable(why);
  STRATA_CUDA_RETURN_IF_ERROR(
      cudaHostRegister(base, bytes, cudaHostRegisterPortable | cudaHostRegisterMapped));
  void* device = nullptr;
  if (Status s = CudaCheck(cudaHostGetDevicePointer(&device, base, 0), "cudaHostGetDevicePointer");
      !s.ok()) {
    cudaHostUnregister(base);
    return s;
  }
  *device_address = reinterpret_cast<uintptr_t>(device);
  return Status::Ok();
}

void UnregisterHost(void* base) { cudaHostUnregister(base); }

Status ExportIpcHandle(uint64_t device_address, std::string* handle) {
  cudaIpcMemHandle_t h;
  STRATA_CUDA_RETURN_IF_ERROR(
      cudaIpcGetMemHandle(&h, reinterpret_cast<void*>(static_cast<uintptr_t>(device_address))));
  static_assert(sizeof(h) == kIpcHandleBytes);
  handle->assign(reinterpret_cast<const char*>(&h), sizeof(h));
  return Status::Ok();
}

Status OpenIpcHandle(const std::string& handle, uint64_t* device_address) {
  if (handle.size() != kIpcHandleBytes) {
    return InvalidArgument("a CUDA IPC handle is " + std::to_string(kIpcHandleBytes) +
                           " bytes, got " + std::to_string(handle.size()));
  }
  std::string why;
  if (!CudaUsable(&why)) return Unavailable(why);
  cudaIpcMemHandle_t h;
  std::memcpy(&h, handle.data(), sizeof(h));
  void* device = nullptr;
  STRATA_CUDA_RETURN_IF_ERROR(cudaIpcOpenMemHandle(&device, h, cudaIpcMemLazyEnablePeerAccess));
  *device_address = reinterpret_cast<uintptr_t>(device);
  return Status::Ok();
}

void CloseIpcHandle(uint64_t device_address) {
  cudaIpcCloseMemHandle(reinterpret_cast<void*>(static_cast<uintptr_t>(device_address)));
}

}  // namespace strata::gpu
