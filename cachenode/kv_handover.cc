#include "cachenode/kv_handover.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cachenode/cache_node_service.h"
#include "cachenode/gpu/kv_cuda.h"
#include "cachenode/gpu/kv_reference.h"
#include "cachenode/gpu_bridge.h"
#include "common/byte_size.h"
#include "common/status_macros.h"

namespace strata::cachenode {

namespace v1 = strata::v1;

absl::Status KvHandoverOptions::Validate() const {
  if (max_registrations == 0) return absl::InvalidArgumentError("max_registrations must be > 0");
  if (max_blocks_per_call == 0) return absl::InvalidArgumentError("max_blocks_per_call must be > 0");
  if (batch_bytes == 0) return absl::InvalidArgumentError("batch_bytes must be > 0");
  return absl::OkStatus();
}

KvHandoverStats::Moved KvHandoverStats::total_offloaded() const {
  return {offloaded[0].blocks + offloaded[1].blocks, offloaded[0].bytes + offloaded[1].bytes};
}

KvHandoverStats::Moved KvHandoverStats::total_onloaded() const {
  return {onloaded[0].blocks + onloaded[1].blocks, onloaded[0].bytes + onloaded[1].bytes};
}

gpu::KvLayout LayoutFromSpec(const v1::KvLayoutSpec& spec, std::vector<uint64_t> bases) {
  gpu::KvLayout l;
  l.shape.num_layers = spec.num_layers();
  l.shape.num_blocks = spec.num_blocks();
  l.shape.block_tokens = spec.block_tokens();
  l.shape.kv_heads = spec.kv_heads();
  l.shape.head_dim = spec.head_dim();
  l.shape.dtype_bytes = spec.dtype_bytes();
  l.block_stride = spec.block_stride();
  l.kv_stride = spec.kv_stride();
  l.token_stride = spec.token_stride();
  l.head_stride = spec.head_stride();
  l.layer_bytes = spec.layer_bytes();
  l.layer_bases = std::move(bases);
  return l;
}

struct KvHandover::Registration {
  uint64_t owner = 0;
  std::string engine_id;
  gpu::KvLayout layout;  // layer bases in this process: host addresses, or device addresses
  bool emulated = true;
  std::string mover;
  void* map = nullptr;  // the engine's memfd, mapped (emulated)
  uint64_t map_bytes = 0;
  std::vector<uint64_t> ipc_bases;  // opened CUDA IPC allocations
  std::unique_ptr<gpu::KvTransferStream> stream;
  absl::Mutex move_mu;  // one transfer at a time

  ~Registration() {
    stream.reset();  // waits for its work before the memory goes
    for (uint64_t base : ipc_bases) gpu::CloseIpcHandle(base);
    if (map != nullptr) munmap(map, map_bytes);
  }
};

namespace {
KvPath PathOf(const KvHandover::Registration& reg) {
  return reg.emulated ? KvPath::kEmulated : KvPath::kGpu;
}
}  // namespace

// A validated Offload/Onload request.
struct KvHandover::Call {
  std::shared_ptr<Registration> reg;
  common::NamespaceId ns = 0;
  std::vector<common::ChainHash> chain;
  std::vector<uint32_t> ids;
  uint64_t payload = 0;  // bytes of one block under the registration's layout
  size_t per_batch = 1;  // blocks per launch
  absl::Time start;
};

KvHandover::KvHandover(const KvHandoverOptions& options, TieredStore* store,
                       const NamespaceRegistry* namespaces)
    : options_(options), store_(store), namespaces_(namespaces), dram_(store->dram_memory()) {}

KvHandover::~KvHandover() = default;

absl::StatusOr<v1::LocalRegisterKvResponse> KvHandover::Register(
    uint64_t owner, const v1::LocalRegisterKvRequest& request, int memfd) {
  auto reg = std::make_shared<Registration>();
  // Owns the memfd until mapped: closed on every return (the mapping keeps the memory).
  struct FdCloser {
    int fd;
    ~FdCloser() {
      if (fd >= 0) close(fd);
    }
  } closer{memfd};
  const v1::KvLayoutSpec& spec = request.layout();
  if (request.layers_size() != static_cast<int>(spec.num_layers())) {
    return absl::InvalidArgumentError(absl::StrCat("layout has ", spec.num_layers(),
                                                   " layers but ", request.layers_size(),
                                                   " layer regions came"));
  }
  if (dram_ == nullptr) {
    return absl::FailedPreconditionError("the node has no host-addressable DRAM tier");
  }
  reg->owner = owner;
  reg->engine_id = request.engine_id();
  std::vector<uint64_t> bases;
  switch (request.memory()) {
    case v1::KV_MEMORY_HOST_MEMFD: {
      if (memfd < 0) {
        return absl::InvalidArgumentError("KV_MEMORY_HOST_MEMFD needs the memfd with the request");
      }
      struct stat st {};
      if (fstat(memfd, &st) != 0 || st.st_size <= 0) {
        return absl::InvalidArgumentError("the memfd that came is empty or unreadable");
      }
      const uint64_t size = static_cast<uint64_t>(st.st_size);
      for (const v1::KvLayerRegion& layer : request.layers()) {
        if (layer.offset() > size || spec.layer_bytes() > size - layer.offset()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "a layer at offset ", layer.offset(), " with ", spec.layer_bytes(),
              " bytes passes the end of the ", size, "-byte memfd"));
        }
      }
      void* map = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
      if (map == MAP_FAILED) {
        return absl::InvalidArgumentError(absl::StrCat("mmap of the engine's memfd: ",
                                                       std::strerror(errno)));
      }
      reg->map = map;
      reg->map_bytes = size;
      for (const v1::KvLayerRegion& layer : request.layers()) {
        bases.push_back(reinterpret_cast<uintptr_t>(map) + layer.offset());
      }
      reg->emulated = true;
      reg->mover = "cpu reference on host memory (emulated: no GPU involved)";
      break;
    }
    case v1::KV_MEMORY_CUDA_IPC: {
      std::string why;
      if (!gpu::CudaUsable(&why)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "CUDA IPC needs a usable GPU on the node (", why,
            "); register host memory (KV_MEMORY_HOST_MEMFD) instead"));
      }
      if (dram_->device_address() == 0) {
        return absl::FailedPreconditionError("the DRAM arena is not pinned and mapped for the GPU");
      }
      absl::flat_hash_map<std::string, uint64_t> opened;  // layers often share one allocation
      for (const v1::KvLayerRegion& layer : request.layers()) {
        auto it = opened.find(layer.cuda_ipc_handle());
        if (it == opened.end()) {
          uint64_t base = 0;
          STRATA_RETURN_IF_ERROR(FromGpu(gpu::OpenIpcHandle(layer.cuda_ipc_handle(), &base)));
          reg->ipc_bases.push_back(base);
          it = opened.emplace(layer.cuda_ipc_handle(), base).first;
        }
        bases.push_back(it->second + layer.offset());
      }
      STRATA_RETURN_IF_ERROR(FromGpu(gpu::KvTransferStream::Create(
          options_.max_blocks_per_call, std::max<uint32_t>(1, spec.num_layers()), &reg->stream)));
      gpu::GpuDevice device;
      STRATA_RETURN_IF_ERROR(FromGpu(gpu::CurrentDevice(&device)));
      reg->emulated = false;
      reg->mover = absl::StrCat("cuda kernels on device ", device.ordinal, " (", device.name, ")");
      break;
    }
    default:
      return absl::InvalidArgumentError("memory must be KV_MEMORY_HOST_MEMFD or KV_MEMORY_CUDA_IPC");
  }
  reg->layout = LayoutFromSpec(spec, std::move(bases));
  STRATA_RETURN_IF_ERROR(FromGpu(gpu::ValidateKvLayout(reg->layout)));
  const uint64_t payload = reg->layout.PayloadBytes();
  if (payload > store_->LargestBlockBytes()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a block of this layout is ", common::FormatByteSize(payload),
        ", over the largest block the node accepts (",
        common::FormatByteSize(store_->LargestBlockBytes()), ")"));
  }

  v1::LocalRegisterKvResponse response;
  {
    absl::MutexLock lock(&mu_);
    if (registrations_.size() >= options_.max_registrations) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the node holds ", registrations_.size(), " KV registrations, its limit"));
    }
    const uint64_t id = next_id_++;
    response.set_registration_id(id);
    registrations_[id] = reg;
  }
  response.set_emulated(reg->emulated);
  response.set_mover(reg->mover);
  response.set_payload_bytes(payload);
  std::cerr << "strata-cachenode: kv hand-over: engine '" << reg->engine_id << "' registered "
            << reg->layout.shape.num_layers << " layers x " << reg->layout.shape.num_blocks
            << " blocks (" << common::FormatByteSize(payload) << " per block), moved by "
            << reg->mover << "\n";
  return response;
}

absl::StatusOr<std::shared_ptr<KvHandover::Registration>> KvHandover::Find(uint64_t owner,
                                                                            uint64_t id) const {
  absl::MutexLock lock(&mu_);
  auto it = registrations_.find(id);
  if (it == registrations_.end() || it->second->owner != owner) {
    return absl::NotFoundError(absl::StrCat("no KV registration ", id, " on this connection"));
  }
  return it->second;
}

absl::StatusOr<KvHandover::Call> KvHandover::Prepare(uint64_t owner,
                                                     const v1::LocalKvTransferRequest& request,
                                                     bool allow_repeated_ids) const {
  Call call;
  call.start = absl::Now();
  STRATA_ASSIGN_OR_RETURN(call.reg, Find(owner, request.registration_id()));
  call.ns = request.namespace_id();
  STRATA_ASSIGN_OR_RETURN(call.chain, ParseRequestChain(namespaces_, call.ns, request.chain_hashes(),
                                                        options_.max_blocks_per_call));
  if (request.block_ids_size() != static_cast<int>(call.chain.size())) {
    return absl::InvalidArgumentError(absl::StrCat(call.chain.size(), " hashes but ",
                                                   request.block_ids_size(), " block ids"));
  }
  call.ids.assign(request.block_ids().begin(), request.block_ids().end());
  STRATA_RETURN_IF_ERROR(FromGpu(gpu::ValidateBlockIds(call.reg->layout, call.ids.data(),
                                                       call.ids.size(), allow_repeated_ids)));
  call.payload = call.reg->layout.PayloadBytes();
  call.per_batch = std::max<uint64_t>(1, options_.batch_bytes / call.payload);
  return call;
}

void KvHandover::Finish(const Call& call, uint64_t moved_blocks, bool offload,
                        v1::LocalKvTransferResponse& response) {
  response.set_emulated(call.reg->emulated);
  response.set_blocks_moved(static_cast<uint32_t>(moved_blocks));
  response.set_bytes_moved(moved_blocks * call.payload);
  response.set_elapsed_us(
      static_cast<uint64_t>(absl::ToInt64Microseconds(absl::Now() - call.start)));
  absl::MutexLock lock(&mu_);
  const int path = static_cast<int>(PathOf(*call.reg));
  KvHandoverStats::Moved& m = offload ? counters_.offloaded[path] : counters_.onloaded[path];
  m.blocks += moved_blocks;
  m.bytes += moved_blocks * call.payload;
}

absl::Status KvHandover::Move(Registration& reg, const std::vector<uint32_t>& ids,
                              const std::vector<uint64_t>& host, const std::vector<uint64_t>& device,
                              bool gather) {
  if (ids.empty()) return absl::OkStatus();
  if (reg.emulated) {
    return FromGpu(gather ? gpu::GatherReference(reg.layout, ids.data(), host.data(), ids.size())
                          : gpu::ScatterReference(reg.layout, ids.data(), host.data(), ids.size()));
  }
  const auto n = static_cast<uint32_t>(ids.size());
  STRATA_RETURN_IF_ERROR(
      FromGpu(gather ? reg.stream->Gather(reg.layout, ids.data(), device.data(), n)
                     : reg.stream->Scatter(reg.layout, ids.data(), device.data(), n)));
  return FromGpu(reg.stream->Synchronize());
}

namespace {

void SetResult(v1::LocalKvBlockResult* r, const absl::Status& s) {
  r->set_code(static_cast<int>(s.code()));
  r->set_message(std::string(s.message()));
}

}  // namespace

absl::StatusOr<v1::LocalKvTransferResponse> KvHandover::Offload(
    uint64_t owner, const v1::LocalKvTransferRequest& request) {
  STRATA_ASSIGN_OR_RETURN(Call call, Prepare(owner, request, /*allow_repeated_ids=*/true));
  Registration& reg = *call.reg;
  absl::MutexLock move_lock(&reg.move_mu);
  const uint64_t payload = call.payload;
  const size_t per_batch = call.per_batch;
  const uint64_t arena_host = reinterpret_cast<uintptr_t>(dram_->host_base());
  v1::LocalKvTransferResponse response;
  for (size_t i = 0; i < call.chain.size(); ++i) response.add_results();
  uint64_t moved_blocks = 0;

  for (size_t begin = 0; begin < call.chain.size(); begin += per_batch) {
    const size_t end = std::min(call.chain.size(), begin + per_batch);
    std::vector<ReservedSlot> slots;
    std::vector<size_t> index;  // chain index of each reserved slot
    std::vector<uint32_t> ids;
    std::vector<uint64_t> host, device;
    for (size_t i = begin; i < end; ++i) {
      absl::StatusOr<ReservedSlot> slot = store_->ReserveDram(payload);
      if (!slot.ok()) {
        SetResult(response.mutable_results(static_cast<int>(i)), slot.status());
        continue;
      }
      host.push_back(reinterpret_cast<uintptr_t>(slot->data().data()));
      device.push_back(dram_->device_address() + (host.back() - arena_host));
      ids.push_back(call.ids[i]);
      index.push_back(i);
      slots.push_back(std::move(*slot));
    }
    STRATA_RETURN_IF_ERROR(Move(reg, ids, host, device, /*gather=*/true));
    for (size_t k = 0; k < slots.size(); ++k) {
      const size_t i = index[k];
      BlockInfo info;
      info.key = BlockKey{call.ns, call.chain[i]};
      info.size = payload;
      info.chain_position = request.first_chain_position() + static_cast<uint32_t>(i);
      // The checksum is computed here, from the arena, right after the bytes arrived.
      absl::StatusOr<TierKind> tier = store_->CommitDramComputingChecksum(info, std::move(slots[k]));
      v1::LocalKvBlockResult* r = response.mutable_results(static_cast<int>(i));
      SetResult(r, tier.status());
      if (tier.ok()) {
        r->set_tier(ToProtoTier(*tier));
        ++moved_blocks;
      }
    }
  }
  Finish(call, moved_blocks, /*offload=*/true, response);
  return response;
}

absl::StatusOr<v1::LocalKvTransferResponse> KvHandover::Onload(
    uint64_t owner, const v1::LocalKvTransferRequest& request) {
  STRATA_ASSIGN_OR_RETURN(Call call, Prepare(owner, request, /*allow_repeated_ids=*/false));
  Registration& reg = *call.reg;
  absl::MutexLock move_lock(&reg.move_mu);
  const uint64_t payload = call.payload;
  const size_t per_batch = call.per_batch;
  const uint64_t arena_host = reinterpret_cast<uintptr_t>(dram_->host_base());
  const uint64_t arena_end = arena_host + dram_->region_bytes();
  v1::LocalKvTransferResponse response;
  uint64_t moved_blocks = 0;
  ReadOptions read_options;
  read_options.prefer_dram = true;  // the arena copy needs no staging

  for (size_t begin = 0; begin < call.chain.size(); begin += per_batch) {
    const size_t end = std::min(call.chain.size(), begin + per_batch);
    const std::span<const common::ChainHash> part(call.chain.data() + begin, end - begin);
    std::vector<BlockRead> reads =
        store_->GetChain(call.ns, part, /*stop_at_first_miss=*/false, read_options);
    std::vector<ReservedSlot> staging;  // copies of blocks that are not in the arena
    std::vector<uint32_t> ids;
    std::vector<uint64_t> host, device;
    for (size_t k = 0; k < reads.size(); ++k) {
      v1::LocalKvBlockResult* r = response.add_results();
      BlockRead& read = reads[k];
      if (!read.status.ok()) {
        SetResult(r, read.status);
        continue;
      }
      const std::span<const std::byte> data = read.handle.data();
      if (data.size() != payload) {
        SetResult(r, absl::InvalidArgumentError(absl::StrCat(
                         "stored block has ", data.size(), " bytes; a block of this layout has ",
                         payload)));
        continue;
      }
      r->set_tier(ToProtoTier(read.tier));
      uint64_t address = reinterpret_cast<uintptr_t>(data.data());
      if (!reg.emulated && (address < arena_host || address + payload > arena_end)) {
        // Only the pinned arena is reachable by the kernel: stage SSD/HBM copies through it.
        absl::StatusOr<ReservedSlot> slot = store_->ReserveDram(payload);
        if (!slot.ok()) {
          SetResult(r, slot.status());
          continue;
        }
        std::memcpy(slot->data().data(), data.data(), payload);
        address = reinterpret_cast<uintptr_t>(slot->data().data());
        staging.push_back(std::move(*slot));
      }
      host.push_back(address);
      device.push_back(reg.emulated ? 0 : dram_->device_address() + (address - arena_host));
      ids.push_back(call.ids[begin + k]);
    }
    STRATA_RETURN_IF_ERROR(Move(reg, ids, host, device, /*gather=*/false));
    moved_blocks += ids.size();
  }  // reads (pins) and staging slots go here, after the scatter finished
  Finish(call, moved_blocks, /*offload=*/false, response);
  return response;
}

absl::Status KvHandover::Unregister(uint64_t owner, uint64_t registration_id) {
  std::shared_ptr<Registration> reg;
  {
    absl::MutexLock lock(&mu_);
    auto it = registrations_.find(registration_id);
    if (it == registrations_.end() || it->second->owner != owner) {
      return absl::NotFoundError(absl::StrCat("no KV registration ", registration_id,
                                              " on this connection"));
    }
    reg = std::move(it->second);
    registrations_.erase(it);
  }
  absl::MutexLock wait(&reg->move_mu);  // a transfer in flight finishes first
  return absl::OkStatus();
}

void KvHandover::DropOwner(uint64_t owner) {
  std::vector<std::shared_ptr<Registration>> dropped;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = registrations_.begin(); it != registrations_.end();) {
      if (it->second->owner == owner) {
        dropped.push_back(std::move(it->second));
        registrations_.erase(it++);
      } else {
        ++it;
      }
    }
  }
  // Unmapped and closed here, outside the lock, once any transfer in flight has finished.
  for (auto& reg : dropped) absl::MutexLock wait(&reg->move_mu);
}

KvHandoverStats KvHandover::Stats() const {
  absl::MutexLock lock(&mu_);
  KvHandoverStats s = counters_;
  for (const auto& [id, reg] : registrations_) ++s.registrations[static_cast<int>(PathOf(*reg))];
  return s;
}

}  // namespace strata::cachenode
