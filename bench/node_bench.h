// The cases of `strata-bench tiers` that run a whole cache node in this process: the real
// TieredStore, CacheNodeService and gRPC server on 127.0.0.1 (an ephemeral port), driven by the
// real CacheNodeClient over loopback TCP. Only the process boundary is missing; every byte still
// crosses a socket, gRPC framing and protobuf, as between a remote client and a node.
//
// Not thread-safe: one measurement at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/throughput.h"
#include "cachenode/node.h"

namespace strata::bench {

struct InProcessNodeOptions {
  uint64_t dram_bytes = 0;  // DRAM tier (memfd arena, as the binary maps it); 0: none
  uint64_t ssd_bytes = 0;   // SSD tier capacity; 0: none
  std::string ssd_path;     // RocksDB directory when ssd_bytes > 0
  std::string namespace_name = "bench";
  // RESP endpoint HOST:PORT (port 0 picks one); empty: off. Its keys map into namespace_name.
  std::string resp_listen;
  // Unix socket of the shared-memory data plane (needs dram_bytes > 0); empty: off.
  std::string local_socket;
  // With local_socket: the node verifies DRAM copies before handing them to shm readers too.
  bool local_verify_dram_reads = false;
};

// A node wired exactly like strata-cachenode (cachenode::Node), serving on 127.0.0.1 (an ephemeral
// port); destroying it drains it like SIGTERM does.
class InProcessNode {
 public:
  static absl::StatusOr<std::unique_ptr<InProcessNode>> Start(const InProcessNodeOptions& options);

  std::string target() const { return node_->address(); }
  common::NamespaceId namespace_id() const { return namespace_id_; }
  // The RESP endpoint's port; 0 when resp_listen was empty.
  int resp_port() const { return node_->resp_port(); }
  cachenode::TieredStore* store() { return node_->store(); }

 private:
  InProcessNode() = default;

  common::NamespaceId namespace_id_ = 0;
  std::unique_ptr<cachenode::Node> node_;
};

struct GrpcChainResult {
  Throughput get;  // GetInto of the whole chain per call, bytes copied into the caller's buffers
  Throughput put;  // Put of the whole chain per call (client-streamed chunks)
  // The same Get with other payload chunk sizes (ClientOptions::chunk_bytes), in the order asked.
  std::vector<std::pair<uint64_t, Throughput>> get_by_chunk;
};

// Stores one chain of `chain_blocks` blocks in a DRAM-only node large enough for it, then measures
// chain reads and chain writes for `duration` each with the client's default chunk size, then chain
// reads once per size in `other_get_chunks`.
absl::StatusOr<GrpcChainResult> MeasureGrpcChain(uint64_t block_bytes, uint32_t chain_blocks,
                                                 absl::Duration duration,
                                                 const std::vector<uint64_t>& other_get_chunks);

struct ResidentResult {
  uint64_t dram_bytes = 0;
  uint64_t rss_bytes = 0;        // VmRSS of the node with its DRAM tier full, write-behind drained
  uint64_t peak_rss_bytes = 0;   // VmHWM of the node process
  uint64_t rss_anon_bytes = 0;   // private part (heaps: RocksDB memtables, gRPC buffers, ...)
  uint64_t rss_shmem_bytes = 0;  // shared part (the memfd DRAM arena)
  uint64_t dram_blocks = 0;
  uint64_t put_bytes = 0;
};

// Starts a real strata-cachenode process (the binary beside strata-bench) with a `dram_bytes` DRAM
// tier and an SSD tier under `data_dir`, fills it over gRPC until the DRAM tier has been overrun by
// 1/8, waits for write-behind to drain, and reads the node process's resident memory.
absl::StatusOr<ResidentResult> MeasureResidentNode(uint64_t dram_bytes, uint64_t block_bytes,
                                                   const std::string& data_dir);

}  // namespace strata::bench
