#include "bench/shm_bench.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

#include <atomic>
#include <cstring>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "cachenode/gpu/kv_layout.h"
#include "cachenode/gpu_bridge.h"
#include "bench/baselines.h"
#include "bench/node_bench.h"
#include "clients/local_client.h"
#include "common/status_macros.h"

namespace strata::bench {
namespace {

using cachenode::FromGpu;

// A chain of distinct hashes; `salt` makes every put's chain fresh.
std::vector<common::ChainHash> ChainOf(uint32_t n, uint64_t salt) {
  std::vector<common::ChainHash> chain(n);
  for (uint32_t i = 0; i < n; ++i) {
    std::memcpy(chain[i].bytes.data(), &salt, sizeof(salt));
    std::memcpy(chain[i].bytes.data() + 8, &i, sizeof(i));
    chain[i].bytes[31] = 0x5e;
  }
  return chain;
}

std::string SocketPath() {
  static std::atomic<int> counter{0};
  return absl::StrCat("/tmp/strata-shm-bench-", getpid(), "-", counter++, ".sock");
}

// A node with its local socket and a connected client; the node goes with it.
struct ShmNode {
  std::unique_ptr<InProcessNode> node;
  std::unique_ptr<clients::LocalClient> client;
};

absl::StatusOr<ShmNode> StartShmNode(uint64_t dram_bytes, bool node_verifies) {
  InProcessNodeOptions options;
  options.dram_bytes = dram_bytes;
  options.local_socket = SocketPath();
  options.local_verify_dram_reads = node_verifies;
  ShmNode n;
  STRATA_ASSIGN_OR_RETURN(n.node, InProcessNode::Start(options));
  STRATA_ASSIGN_OR_RETURN(n.client, clients::LocalClient::Connect(options.local_socket));
  return n;
}

absl::Status PutChain(clients::LocalClient& client, common::NamespaceId ns,
                      const std::vector<common::ChainHash>& chain, const AlignedBuffer& source,
                      uint64_t block_bytes) {
  std::vector<clients::LocalPutBlock> blocks;
  for (uint32_t i = 0; i < chain.size(); ++i) {
    blocks.push_back({chain[i], source.span().subspan(i * block_bytes, block_bytes), i});
  }
  STRATA_ASSIGN_OR_RETURN(std::vector<clients::LocalPutResult> results, client.Put(ns, blocks));
  for (const clients::LocalPutResult& r : results) STRATA_RETURN_IF_ERROR(r.status);
  return absl::OkStatus();
}

absl::StatusOr<Throughput> MeasureGet(clients::LocalClient& client, common::NamespaceId ns,
                                      const std::vector<common::ChainHash>& chain,
                                      AlignedBuffer& dest, uint64_t block_bytes,
                                      absl::Duration duration) {
  std::vector<std::span<std::byte>> buffers;
  for (uint32_t i = 0; i < chain.size(); ++i) {
    buffers.push_back(dest.span().subspan(i * block_bytes, block_bytes));
  }
  return RunFor(duration, [&]() -> absl::StatusOr<uint64_t> {
    STRATA_ASSIGN_OR_RETURN(std::vector<clients::LocalCopyResult> results,
                            client.GetInto(ns, chain, buffers));
    for (const clients::LocalCopyResult& r : results) STRATA_RETURN_IF_ERROR(r.status);
    return block_bytes * chain.size();
  });
}

}  // namespace

absl::StatusOr<ShmResult> MeasureShm(uint64_t block_bytes, uint32_t chain_blocks,
                                     absl::Duration duration) {
  if (block_bytes == 0 || chain_blocks == 0) {
    return absl::InvalidArgumentError("block_bytes and chain_blocks must be > 0");
  }
  const uint64_t chain_bytes = block_bytes * chain_blocks;
  const uint64_t dram_bytes = 2 * chain_bytes + (64ull << 20);
  AlignedBuffer source(chain_bytes);
  FillRandom(source.span(), 17);
  AlignedBuffer dest(chain_bytes);
  const std::vector<common::ChainHash> chain = ChainOf(chain_blocks, 0);
  ShmResult result;
  {
    STRATA_ASSIGN_OR_RETURN(ShmNode n, StartShmNode(dram_bytes, /*node_verifies=*/false));
    const common::NamespaceId ns = n.node->namespace_id();
    STRATA_RETURN_IF_ERROR(PutChain(*n.client, ns, chain, source, block_bytes));
    STRATA_ASSIGN_OR_RETURN(result.get,
                            MeasureGet(*n.client, ns, chain, dest, block_bytes, duration));
    uint64_t salt = 1;
    STRATA_ASSIGN_OR_RETURN(
        result.put, RunFor(duration, [&]() -> absl::StatusOr<uint64_t> {
          STRATA_RETURN_IF_ERROR(
              PutChain(*n.client, ns, ChainOf(chain_blocks, salt++), source, block_bytes));
          return chain_bytes;
        }));
  }
  {
    STRATA_ASSIGN_OR_RETURN(ShmNode n, StartShmNode(dram_bytes, /*node_verifies=*/true));
    const common::NamespaceId ns = n.node->namespace_id();
    STRATA_RETURN_IF_ERROR(PutChain(*n.client, ns, chain, source, block_bytes));
    STRATA_ASSIGN_OR_RETURN(result.get_node_verified,
                            MeasureGet(*n.client, ns, chain, dest, block_bytes, duration));
  }
  STRATA_ASSIGN_OR_RETURN(result.memcpy, MeasureMemcpy(block_bytes, chain_bytes, duration));
  return result;
}

absl::StatusOr<HandoverResult> MeasureHandover(uint64_t block_bytes, uint32_t chain_blocks,
                                               absl::Duration duration) {
  constexpr uint64_t kTokenBytes = 8 * 128 * 2;  // per layer, K or V
  gpu::KvShape shape{.num_layers = 0, .num_blocks = 2 * chain_blocks, .block_tokens = 16,
                     .kv_heads = 8, .head_dim = 128, .dtype_bytes = 2};
  shape.num_layers = static_cast<uint32_t>(
      std::clamp<uint64_t>(block_bytes / (2 * 16 * kTokenBytes), 1, 32));
  shape.block_tokens = static_cast<uint32_t>(
      std::max<uint64_t>(1, block_bytes / (2 * shape.num_layers * kTokenBytes)));
  if (chain_blocks == 0) return absl::InvalidArgumentError("chain_blocks must be > 0");
  const uint64_t payload = shape.PayloadBytes();
  const uint64_t region = gpu::DenseRegionBytes(gpu::EngineLayoutKind::kVllmFlashAttention, shape);
  const int fd = memfd_create("strata-bench-engine-kv", MFD_CLOEXEC);
  if (fd < 0 || ftruncate(fd, static_cast<off_t>(region * shape.num_layers)) != 0) {
    if (fd >= 0) close(fd);
    return absl::ResourceExhaustedError("engine memfd");
  }
  absl::Cleanup close_fd = [fd] { close(fd); };
  {
    void* map = mmap(nullptr, region * shape.num_layers, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) return absl::ResourceExhaustedError("engine mmap");
    FillRandom(std::span(static_cast<std::byte*>(map), region * shape.num_layers), 23);
    munmap(map, region * shape.num_layers);
  }
  std::vector<uint64_t> offsets;
  for (uint32_t l = 0; l < shape.num_layers; ++l) offsets.push_back(l * region);
  gpu::KvLayout layout;
  STRATA_RETURN_IF_ERROR(FromGpu(gpu::MakeDenseLayout(gpu::EngineLayoutKind::kVllmFlashAttention,
                                                      shape, offsets, &layout)));
  std::vector<uint32_t> out_ids, in_ids;
  for (uint32_t i = 0; i < chain_blocks; ++i) {
    out_ids.push_back((i * 2 + 1) % shape.num_blocks);  // odd blocks out, even blocks in
    in_ids.push_back(i * 2);
  }
  STRATA_ASSIGN_OR_RETURN(ShmNode n,
                          StartShmNode(2 * payload * chain_blocks + (64ull << 20), false));
  const common::NamespaceId ns = n.node->namespace_id();
  STRATA_ASSIGN_OR_RETURN(strata::v1::LocalRegisterKvResponse reg,
                          n.client->RegisterKv(clients::HostKvRegistration("bench", layout), fd));
  HandoverResult result;
  result.emulated = reg.emulated();
  result.layout = absl::StrCat(shape.num_layers, " layers x ", shape.block_tokens,
                               " tokens x 8 heads x 128 x bf16");
  auto check = [&](const strata::v1::LocalKvTransferResponse& r) -> absl::StatusOr<uint64_t> {
    if (r.blocks_moved() != chain_blocks) {
      return absl::InternalError(absl::StrCat("moved ", r.blocks_moved(), " of ", chain_blocks,
                                              " blocks: ", r.DebugString()));
    }
    return r.bytes_moved();
  };
  const std::vector<common::ChainHash> chain = ChainOf(chain_blocks, 0);
  uint64_t salt = 1;
  STRATA_ASSIGN_OR_RETURN(
      result.offload, RunFor(duration, [&]() -> absl::StatusOr<uint64_t> {
        STRATA_ASSIGN_OR_RETURN(auto r, n.client->Offload(reg.registration_id(), ns,
                                                          ChainOf(chain_blocks, salt++), out_ids));
        return check(r);
      }));
  STRATA_ASSIGN_OR_RETURN(auto first, n.client->Offload(reg.registration_id(), ns, chain, out_ids));
  STRATA_RETURN_IF_ERROR(check(first).status());
  STRATA_ASSIGN_OR_RETURN(
      result.onload, RunFor(duration, [&]() -> absl::StatusOr<uint64_t> {
        STRATA_ASSIGN_OR_RETURN(auto r, n.client->Onload(reg.registration_id(), ns, chain, in_ids));
        return check(r);
      }));
  return result;
}

}  // namespace strata::bench
