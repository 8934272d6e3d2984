#include "bench/shm_bench.h"

#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/baselines.h"
#include "bench/node_bench.h"
#include "clients/local_client.h"
#include "common/status_macros.h"

namespace strata::bench {
namespace {

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

}  // namespace strata::bench
