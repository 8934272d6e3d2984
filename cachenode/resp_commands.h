// The command core of the RESP endpoint (resp_server.h): runs one parsed request against the
// TieredStore and appends its RESP2 reply to a RespReplyQueue. No I/O; the server owns sockets.
//
// RespReplyQueue holds a connection's unsent replies as pieces for writev: protocol text, and pinned
// block payloads (a GET reply is "$N\r\n" + the block's own bytes + "\r\n", never copied). A
// payload's BlockHandle stays alive in the queue until its last byte is consumed.
//
// RespCommands is thread-safe (the store is; counters are atomics); a RespReplyQueue and a
// RespSession belong to one connection and one thread at a time.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "cachenode/resp_parser.h"
#include "cachenode/tiered_store.h"
#include "common/block_key.h"

namespace strata::cachenode {

// The store key of a RESP key: (namespace, SHA-256("strata.resp-key.v1" NUL key)), a hash that no
// token chain can produce (block_hash.h uses other tags). Pure.
common::BlockKey RespKey(common::NamespaceId namespace_id, std::string_view key);

// Counters since Start. Plain values.
struct RespServerStats {
  uint64_t connections_accepted = 0;
  uint64_t connections_open = 0;
  uint64_t connections_rejected = 0;  // over max_clients
  uint64_t commands = 0;              // requests run (errors included)
  uint64_t protocol_errors = 0;       // connections closed for malformed input
  uint64_t data_loss_reads = 0;       // GET/MGET keys whose every copy failed its checksum
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
};

// The live counters behind RespServerStats.
struct RespCounters {
  std::atomic<uint64_t> connections_accepted{0};
  std::atomic<uint64_t> connections_open{0};
  std::atomic<uint64_t> connections_rejected{0};
  std::atomic<uint64_t> commands{0};
  std::atomic<uint64_t> protocol_errors{0};
  std::atomic<uint64_t> data_loss_reads{0};
  std::atomic<uint64_t> bytes_in{0};
  std::atomic<uint64_t> bytes_out{0};

  RespServerStats Snapshot() const;
};

class RespReplyQueue {
 public:
  void Text(std::string_view bytes);  // raw protocol bytes
  void Simple(std::string_view s) { Line('+', s); }
  void Error(std::string_view message) { Line('-', message); }  // message without "-", CR, LF
  void Integer(int64_t v);
  void Bulk(std::string_view bytes);
  void Nil() { Text("$-1\r\n"); }
  void ArrayHeader(size_t n);
  // "$N\r\n", the handle's bytes (not copied; the handle is kept until they are sent), "\r\n".
  void Block(BlockHandle handle);

  bool empty() const { return pieces_.empty(); }
  uint64_t pending_bytes() const { return pending_; }
  // Fills up to `max` iovecs with the unsent bytes, front first. Returns how many.
  size_t Gather(iovec* iov, size_t max) const;
  // Drops the first `n` unsent bytes (they were written), releasing finished handles.
  void Consume(size_t n);

 private:
  struct Piece {
    std::string text;    // protocol bytes, when handle is not valid
    BlockHandle handle;  // a pinned payload
    size_t offset = 0;   // bytes of this piece already sent
    size_t size() const { return handle.valid() ? handle.data().size() : text.size(); }
  };
  void Line(char type, std::string_view s);

  std::deque<Piece> pieces_;
  uint64_t pending_ = 0;
};

// Per-connection state commands may change.
struct RespSession {
  std::string name;   // CLIENT SETNAME
  bool quit = false;  // QUIT: close once the reply is sent
};

struct RespCommandsOptions {
  std::string namespace_name;  // shown by INFO
  common::NamespaceId namespace_id = 0;
  uint64_t max_bulk_bytes = 0;  // quoted by "value too large"
  uint32_t io_threads = 0;      // shown by INFO
  uint32_t max_clients = 0;     // shown by INFO
};

class RespCommands {
 public:
  // `store` and `counters` must outlive this object.
  RespCommands(const RespCommandsOptions& options, TieredStore* store, RespCounters* counters);

  // The listening port INFO reports; set once bound, before serving.
  void set_port(int port) { port_ = port; }

  // Runs one request and appends exactly one reply.
  void Execute(const RespRequest& request, RespSession& session, RespReplyQueue& out);

  // INFO's text for `section` (empty, "all", "default", "everything": every section).
  std::string Info(std::string_view section) const;

 private:
  void Get(const RespRequest& r, RespReplyQueue& out);
  void Set(const RespRequest& r, RespReplyQueue& out);
  void Exists(const RespRequest& r, RespReplyQueue& out);
  void Del(const RespRequest& r, RespReplyQueue& out);
  void MGet(const RespRequest& r, RespReplyQueue& out);
  void Config(const RespRequest& r, RespReplyQueue& out);
  void Client(const RespRequest& r, RespSession& session, RespReplyQueue& out);
  std::vector<common::ChainHash> HashesOf(const RespRequest& r, size_t first) const;

  const RespCommandsOptions options_;
  TieredStore* const store_;
  RespCounters* const counters_;
  const absl::Time start_;
  int port_ = 0;
};

}  // namespace strata::cachenode
