// RespServer: a RESP2 (Redis protocol) endpoint over a TieredStore, so LMCache's `redis://` remote
// backend, KVRocks clients, redis-cli and redis-benchmark work against a node unchanged.
//
// Commands: GET, SET (plain `SET key value`; options such as EX/NX are answered with an error, not
// ignored), EXISTS, DEL, MGET, PING, INFO, and what the stock tools send: COMMAND [DOCS] (an empty
// array), CONFIG GET (save -> "", appendonly -> "no", anything else absent), SELECT 0, QUIT,
// CLIENT SETNAME/GETNAME/SETINFO, HELLO (an error, so clients fall back to RESP2). Anything else is
// `-ERR unknown command '...'`.
//
// Keys. A key (any binary string) names the block (namespace, SHA-256("strata.resp-key.v1", key)),
// chain position 0. The key itself is not stored, so KEYS and SCAN cannot be supported; INFO's
// keyspace counts the store's blocks in every namespace. An empty value cannot be stored (the store
// rejects empty payloads): SET answers an error.
//
// Values. SET computes the payload's xxh3 and stores it with TieredStore::Put; GET and MGET read
// with TieredStore::GetChain (verified on every read). A DATA_LOSS read answers a nil bulk and
// counts in Stats().data_loss_reads. A value longer than max_bulk_bytes (default: the store's
// largest block) is read and discarded without buffering and answered `-ERR value too large (max N
// bytes)`; the connection stays usable. A bulk header above max_discard_bytes (512 MiB, Redis's
// proto-max-bulk-len) is a protocol error, like any other malformed input: the client gets
// `-ERR Protocol error: ...` and the connection is closed (after its earlier replies).
//
// I/O. A small fixed set of IO threads, each with its own epoll; accepted connections are spread
// round-robin; sockets are non-blocking, TCP_NODELAY. Requests run on their connection's IO thread
// (store calls are memory copies, except reads served by the SSD tier, which hold that thread for
// the read: an executor hop would cost every DRAM hit a thread switch). GET replies are written with
// writev straight from the pinned BlockHandle (no copy into a reply buffer); the handle lives until
// its bytes are sent. Pipelined requests are answered in order. Back-pressure: a client whose
// unsent replies exceed max_pending_reply_bytes is not read until they drain.
//
// Thread-safe: Start, port, Stats and Stop may be called from any thread; Stop is idempotent.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "cachenode/resp_commands.h"
#include "cachenode/tiered_store.h"
#include "common/block_key.h"

namespace strata::cachenode {

struct RespServerOptions {
  // HOST:PORT to listen on (an IPv4 address or a name resolving to one); port 0 picks a free one.
  std::string listen = "127.0.0.1:6379";
  // The node namespace keys map into (the node checks it is one of its namespaces).
  std::string namespace_name = "default";
  // IO threads, each with its own epoll. Two keep a 2-core box busy without oversubscribing it.
  uint32_t io_threads = 2;
  // Largest key or value buffered; 0: the store's LargestBlockBytes() (a larger value could never be
  // stored). Larger bulks up to max_discard_bytes are discarded and answered "value too large".
  uint64_t max_bulk_bytes = 0;
  // Largest bulk discarded rather than treated as a protocol error (closing the connection).
  uint64_t max_discard_bytes = 512ull << 20;
  // Most arguments in one request (MGET/DEL/EXISTS key counts).
  uint32_t max_args = 1u << 16;
  // Longest inline command (telnet, redis-cli's inline mode) and header line.
  uint32_t max_inline_bytes = 64u << 10;
  // Connections at once; further ones get "-ERR max number of clients reached" and are closed.
  uint32_t max_clients = 1024;
  // Unsent reply bytes above which a client is no longer read (pipelined GETs pin one block each
  // until sent). One reply may exceed it; the bound applies before each request is run.
  uint64_t max_pending_reply_bytes = 64ull << 20;
  // Free large bulk buffers each IO thread keeps for reuse (see BulkBufferPool).
  uint64_t buffer_cache_bytes = 128ull << 20;

  // InvalidArgument naming the bad field.
  absl::Status Validate() const;
};

class RespServer {
 public:
  // Binds, listens and starts the IO threads. InvalidArgument for bad options; Unavailable when the
  // address cannot be bound. `store` must outlive the server.
  static absl::StatusOr<std::unique_ptr<RespServer>> Start(const RespServerOptions& options,
                                                           TieredStore* store,
                                                           common::NamespaceId namespace_id);
  ~RespServer();  // Stop()
  RespServer(const RespServer&) = delete;
  RespServer& operator=(const RespServer&) = delete;

  // The bound port.
  int port() const { return port_; }
  // Stops accepting, closes every client (unsent replies are dropped) and joins the IO threads.
  void Stop();
  RespServerStats Stats() const;

  struct Shared;  // what the IO threads share (defined in the .cc)
  class IoLoop;

 private:
  RespServer() = default;

  int port_ = 0;
  std::unique_ptr<Shared> shared_;
  std::vector<std::unique_ptr<IoLoop>> loops_;
  absl::Mutex stop_mu_;
  bool stopped_ ABSL_GUARDED_BY(stop_mu_) = false;
};

}  // namespace strata::cachenode
