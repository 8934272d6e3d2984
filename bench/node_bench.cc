#include "bench/node_bench.h"

#include <grpcpp/grpcpp.h>

#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/process_stats.h"
#include "cachenode/memory_backend.h"
#include "cachenode/memory_tier.h"
#include "cachenode/ssd_tier.h"
#include "clients/cache_node_client.h"
#include "common/block_hash.h"
#include "common/namespace_id.h"
#include "common/status_macros.h"
#include "tests/node_process.h"

namespace strata::bench {
namespace {

using cachenode::TierKind;

// A real chain of `n` hashes: each block's hash covers its parent, as an engine's would.
std::vector<common::ChainHash> MakeChain(common::NamespaceId ns, uint32_t n, uint32_t salt) {
  std::vector<common::ChainHash> chain;
  std::optional<common::ChainHash> parent;
  std::vector<uint32_t> tokens(16);
  for (uint32_t i = 0; i < n; ++i) {
    for (size_t t = 0; t < tokens.size(); ++t) tokens[t] = salt * 1000003u + i * 16 + t;
    chain.push_back(common::HashBlock(parent, ns, "", tokens));
    parent = chain.back();
  }
  return chain;
}

absl::StatusOr<std::unique_ptr<clients::CacheNodeClient>> ConnectTo(const InProcessNode& node,
                                                                    uint64_t chunk_bytes = 0) {
  clients::ClientOptions options;
  options.target = node.target();
  if (chunk_bytes > 0) options.chunk_bytes = chunk_bytes;
  return clients::CacheNodeClient::Connect(options);
}

absl::Status CheckPut(const absl::StatusOr<std::vector<clients::PutResult>>& results) {
  if (!results.ok()) return results.status();
  for (const clients::PutResult& r : *results) {
    if (!r.status.ok()) return r.status;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<InProcessNode>> InProcessNode::Start(
    const InProcessNodeOptions& options) {
  // The binary's own wiring (cachenode::Node), on an ephemeral loopback port.
  cachenode::NodeOptions node_options;
  node_options.listen = "127.0.0.1:0";
  node_options.dram_bytes = options.dram_bytes;
  node_options.ssd.capacity_bytes = options.ssd_bytes;
  node_options.ssd.path = options.ssd_path;
  node_options.namespaces = {options.namespace_name};
  node_options.resp_listen = options.resp_listen;
  node_options.resp.namespace_name = options.namespace_name;
  node_options.local_socket = options.local_socket;
  node_options.local.verify_dram_reads = options.local_verify_dram_reads;
  std::unique_ptr<InProcessNode> node(new InProcessNode());
  STRATA_ASSIGN_OR_RETURN(node->node_, cachenode::Node::Create(node_options));
  STRATA_RETURN_IF_ERROR(node->node_->Serve());
  node->namespace_id_ = common::NamespaceIdOf(options.namespace_name);
  return node;
}

absl::StatusOr<GrpcChainResult> MeasureGrpcChain(uint64_t block_bytes, uint32_t chain_blocks,
                                                 absl::Duration duration,
                                                 const std::vector<uint64_t>& other_get_chunks) {
  const uint64_t chain_bytes = block_bytes * chain_blocks;
  // Twice the chain plus slack: a put replaces a block by writing the new copy before freeing the
  // old, and nothing here should ever evict.
  InProcessNodeOptions node_options;
  node_options.dram_bytes = 2 * chain_bytes + (64ull << 20);
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<InProcessNode> node, InProcessNode::Start(node_options));
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<clients::CacheNodeClient> client, ConnectTo(*node));

  const std::vector<common::ChainHash> chain = MakeChain(node->namespace_id(), chain_blocks, 1);
  AlignedBuffer source(chain_bytes);
  FillRandom(source.span(), 11);
  std::vector<clients::PutBlock> blocks(chain_blocks);
  for (uint32_t i = 0; i < chain_blocks; ++i) {
    blocks[i].hash = chain[i];
    blocks[i].payload = source.span().subspan(i * block_bytes, block_bytes);
    blocks[i].chain_position = i;
  }
  STRATA_RETURN_IF_ERROR(CheckPut(client->Put(node->namespace_id(), blocks)));

  GrpcChainResult result;
  // The sink copies every chunk to where the caller wants the block, as an engine's KV buffer
  // would receive it: the same end point as recv() into the TCP baseline's buffer.
  AlignedBuffer sink(chain_bytes);
  std::vector<uint64_t> filled(chain_blocks, 0);
  uint32_t found = 0;
  const auto on_header = [&](const strata::v1::GetBlockHeader& h) {
    if (h.found() && h.index() < chain_blocks) {
      ++found;
      filled[h.index()] = 0;
    }
  };
  const auto on_chunk = [&](uint32_t index, std::string_view chunk) {
    if (index >= chain_blocks || filled[index] + chunk.size() > block_bytes) return;
    std::memcpy(sink.data() + index * block_bytes + filled[index], chunk.data(), chunk.size());
    filled[index] += chunk.size();
  };
  const auto measure_get = [&](clients::CacheNodeClient* reader) -> absl::StatusOr<Throughput> {
    std::memset(sink.data(), 0, chain_bytes);
    STRATA_ASSIGN_OR_RETURN(Throughput t, RunFor(duration, [&]() -> absl::StatusOr<uint64_t> {
                              found = 0;
                              STRATA_RETURN_IF_ERROR(reader->GetInto(node->namespace_id(), chain,
                                                                     true, on_header, on_chunk));
                              if (found != chain_blocks) {
                                return absl::InternalError(absl::StrCat(
                                    "grpc get: ", found, " of ", chain_blocks, " blocks found"));
                              }
                              return chain_bytes;
                            }));
    if (std::memcmp(sink.data(), source.data(), chain_bytes) != 0) {
      return absl::DataLossError("grpc get: bytes read back differ from bytes written");
    }
    return t;
  };
  STRATA_ASSIGN_OR_RETURN(result.get, measure_get(client.get()));
  for (uint64_t chunk : other_get_chunks) {
    STRATA_ASSIGN_OR_RETURN(std::unique_ptr<clients::CacheNodeClient> reader,
                            ConnectTo(*node, chunk));
    STRATA_ASSIGN_OR_RETURN(Throughput t, measure_get(reader.get()));
    result.get_by_chunk.emplace_back(chunk, t);
  }
  STRATA_ASSIGN_OR_RETURN(
      result.put, RunFor(duration, [&]() -> absl::StatusOr<uint64_t> {
        STRATA_RETURN_IF_ERROR(CheckPut(client->Put(node->namespace_id(), blocks)));
        return chain_bytes;
      }));
  return result;
}

absl::StatusOr<ResidentResult> MeasureResidentNode(uint64_t dram_bytes, uint64_t block_bytes,
                                                   const std::string& data_dir) {
  // A real strata-cachenode process (the binary beside this one), so the figure is a node's own
  // resident memory: no client, no benchmark buffers.
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  const std::string binary = (self.parent_path() / "strata-cachenode").string();
  if (ec || !std::filesystem::exists(binary)) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot find strata-cachenode beside strata-bench (", binary, ")"));
  }
  tests::NodeProcess node(binary);
  STRATA_ASSIGN_OR_RETURN(
      std::string address,
      node.Start({"--data-dir", data_dir, "--dram-bytes", absl::StrCat(dram_bytes), "--ssd-bytes",
                  absl::StrCat(4 * dram_bytes), "--namespaces", "bench"}));
  clients::ClientOptions options;
  options.target = address;
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<clients::CacheNodeClient> client,
                          clients::CacheNodeClient::Connect(options));
  const common::NamespaceId ns = common::NamespaceIdOf("bench");

  // One payload for every block: distinct keys are what fill the tier.
  AlignedBuffer payload(block_bytes);
  FillRandom(payload.span(), 21);
  constexpr uint32_t kBlocksPerPut = 32;  // one chain per call, as engines offload
  // Overrun the DRAM tier by 1/8 so it is full and has evicted.
  const uint64_t goal = dram_bytes + dram_bytes / 8;
  ResidentResult r;
  r.dram_bytes = dram_bytes;
  for (uint32_t chain_index = 0; r.put_bytes < goal; ++chain_index) {
    const std::vector<common::ChainHash> chain = MakeChain(ns, kBlocksPerPut, 100 + chain_index);
    std::vector<clients::PutBlock> blocks(kBlocksPerPut);
    for (uint32_t i = 0; i < kBlocksPerPut; ++i) {
      blocks[i].hash = chain[i];
      blocks[i].payload = payload.span();
      blocks[i].chain_position = i;
    }
    STRATA_RETURN_IF_ERROR(CheckPut(client->Put(ns, blocks)));
    r.put_bytes += kBlocksPerPut * block_bytes;
  }
  // Let write-behind finish, so its batch buffers are counted at their steady state.
  for (int i = 0; i < 600; ++i) {
    STRATA_ASSIGN_OR_RETURN(strata::v1::StatsResponse stats, client->Stats());
    for (const auto& t : stats.tiers()) {
      if (t.tier() == strata::v1::TIER_DRAM) r.dram_blocks = t.blocks();
    }
    if (stats.write_behind_pending() == 0) break;
    absl::SleepFor(absl::Milliseconds(50));  // a benchmark waiting on a background job, not a test
  }
  STRATA_ASSIGN_OR_RETURN(MemoryCounters memory, ReadMemoryCounters(node.pid()));
  r.rss_bytes = memory.rss_bytes;
  r.peak_rss_bytes = memory.peak_rss_bytes;
  r.rss_anon_bytes = memory.rss_anon_bytes;
  r.rss_shmem_bytes = memory.rss_shmem_bytes;
  STRATA_ASSIGN_OR_RETURN(int exit_code, node.Terminate());
  if (exit_code != 0) {
    return absl::InternalError(absl::StrCat("strata-cachenode exited ", exit_code));
  }
  return r;
}

}  // namespace strata::bench
