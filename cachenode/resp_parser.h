// RespParser: an incremental, bounded parser of RESP2 requests, as Redis clients send them: arrays
// of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) and inline commands (`PING\r\n`, what telnet
// and nc send).
//
// The parser owns the bytes: the caller asks where the next socket read should land (ReadSpans),
// reads there (readv), reports the count (Advance) and takes complete requests (Next). Memory is
// bounded by construction: one fixed header area (max(64 KiB, max_inline_bytes + 2)) plus the
// arguments of the one request being assembled. A bulk's buffer is sized exactly by its (bounded)
// header, and once the header area holds no more of it, reads land straight in that buffer: a 2 MiB
// value arrives in one readv chain with no intermediate copy.
//
// Hardening (the rules Redis applies, kept strict):
//   - a bulk length above max_bulk_bytes but at most max_discard_bytes is consumed and discarded
//     without buffering; the request comes back with `too_large` set, so the server answers an
//     error and the connection stays usable;
//   - a bulk length above max_discard_bytes (Redis's proto-max-bulk-len, 512 MiB), a negative,
//     non-numeric or overflowing length or count, a count above max_args, a header or inline line
//     longer than max_inline_bytes, a missing CRLF, or control bytes in an inline command are
//     protocol errors: Next returns kError with a message and the parser stays in that state.
//   - `*0` is an empty request and is skipped, as in Redis; empty inline lines too.
//
// Large bulk buffers come from an optional BulkBufferPool, so a stream of large SETs reuses memory
// instead of mapping and faulting in fresh pages for every value. A large SET value is read into a
// slot reserved in the DRAM tier when a SlotSource is given: the bytes go from the socket straight
// into the tier, and the request carries the slot (RespRequest::value_slot) for the SET to commit.
//
// Not thread-safe: one parser per connection, used by one thread at a time.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "cachenode/memory_tier.h"

namespace strata::cachenode {

struct RespParserOptions {
  // Largest bulk string (key or value) buffered. The server sets the store's largest block: a
  // larger value could never be stored anyway.
  uint64_t max_bulk_bytes = 64ull << 20;
  // Largest bulk consumed and discarded (answered "value too large") rather than closing the
  // connection. Above it the length is a protocol error. Redis's proto-max-bulk-len is 512 MiB.
  uint64_t max_discard_bytes = 512ull << 20;
  // Most arguments in one request (MGET/DEL/EXISTS key counts). Each costs a small descriptor.
  uint32_t max_args = 1u << 16;
  // Longest inline command and longest header line. Redis allows 64 KiB.
  uint32_t max_inline_bytes = 64u << 10;
  // Size of the header area that reads land in (request headers, inline commands, small bulks;
  // at least max_inline_bytes + 2 is used). Large, so that one read takes many pipelined small
  // requests; tests and the fuzzer make it small, so that filling it, compacting it and reading
  // past it are reached with short inputs. At least 64.
  uint32_t min_header_bytes = 64u << 10;
  // Bulks at least this large get a buffer of their own (for a SET's value, a store slot when the
  // server offers one) and are read straight into it; smaller ones are copied out of the header
  // area, where a direct read would only add syscalls. At least 1; tests and the fuzzer make it
  // small, so that direct reads are reached with short inputs.
  uint32_t big_bulk_bytes = 16u << 10;

  // InvalidArgument naming the bad field.
  absl::Status Validate() const;
};

// A buffer of uninitialised bytes (no zero-filling of multi-MiB values).
struct BulkBuffer {
  std::unique_ptr<char[]> data;
  size_t capacity = 0;
};

// A small cache of large bulk buffers shared by the parsers of one IO thread. Keeps at most
// `max_cached_bytes` of free buffers. Not thread-safe.
class BulkBufferPool {
 public:
  explicit BulkBufferPool(uint64_t max_cached_bytes) : max_cached_bytes_(max_cached_bytes) {}
  // A buffer of at least `bytes` (a cached one when one fits without wasting more than half).
  BulkBuffer Take(size_t bytes);
  // Returns a buffer; freed when the cache is full.
  void Give(BulkBuffer buffer);
  uint64_t cached_bytes() const { return cached_bytes_; }

 private:
  const uint64_t max_cached_bytes_;
  uint64_t cached_bytes_ = 0;
  std::vector<BulkBuffer> free_;
};

// One parsed request. The views stay valid until the next call of Next() or Advance().
struct RespRequest {
  std::vector<std::string_view> args;  // args[0] is the command name; empty when too_large
  bool too_large = false;              // some bulk exceeded max_bulk_bytes and was discarded
  bool inline_command = false;         // came as an inline line, not a RESP array
  // For a plain `SET key value` whose value was read into a reserved DRAM slot: that slot (args[2]
  // views its bytes). The SET takes it (TieredStore::CommitDramComputingChecksum); when nobody
  // does, the slot is freed with the request.
  mutable ReservedSlot value_slot;
};

// Where the value of a large `SET key value` is read to: a reserved DRAM slot of exactly `size`
// bytes, or an error (the parser then uses an ordinary buffer).
class SlotSource {
 public:
  virtual ~SlotSource() = default;
  virtual absl::StatusOr<ReservedSlot> Reserve(uint64_t size) = 0;
};

class RespParser {
 public:
  enum class Result { kNeedMore, kRequest, kError };

  // `pool` and `slots` may be null (plain allocations; no slots) and must outlive the parser.
  explicit RespParser(const RespParserOptions& options, BulkBufferPool* pool = nullptr,
                      SlotSource* slots = nullptr);
  ~RespParser();
  RespParser(const RespParser&) = delete;
  RespParser& operator=(const RespParser&) = delete;

  // Where the next read should land, in order (for readv): 1 or 2 spans, never empty once the
  // previous request was taken. With a large bulk in progress the first span is the rest of the
  // bulk's own buffer and the second the header area, so one readv takes the bulk's tail and what
  // follows it. Returns the number of spans filled.
  size_t ReadSpans(std::array<std::span<char>, 2>& spans);
  // `n` bytes were read into the spans of the last ReadSpans call, filling them in order.
  void Advance(size_t n);

  // Parses what was read. kRequest fills `request`; kNeedMore wants another read; kError is a
  // protocol error (error() says what; sticky: the connection must be closed).
  Result Next(RespRequest& request);

  // The protocol error's message, e.g. "invalid bulk length" (no "ERR Protocol error:" prefix).
  const std::string& error() const { return error_; }
  // Bytes read but not yet parsed (pipelined requests waiting).
  size_t buffered_bytes() const { return end_ - pos_; }
  // The effective options (for replies that quote a limit).
  const RespParserOptions& options() const { return options_; }

 private:
  enum class State { kStart, kBulkHeader, kBulkBody, kBulkCrlf, kDiscardBody, kError };
  struct Arg {
    size_t size = 0;
    size_t filled = 0;
    int big = -1;  // index into big_ when the bytes live in a pool buffer, else small_[index]
    bool in_slot = false;  // the bytes live in value_slot_
  };
  // True when the bulk about to start is the value of a plain `SET key value`.
  bool StartingSetValue() const;

  Result Fail(std::string message);
  // An inline line; sets *skipped for an empty one.
  Result ParseInline(RespRequest& request, bool* skipped);
  // Finds the CRLF-terminated line at pos_. Returns false (needs more) or sets *line; on an over
  // long or malformed line sets the error and returns false with error state.
  bool TakeLine(std::string_view* line);
  char* ArgData(size_t index);
  void StartBulk(size_t size);
  void FinishRequest(RespRequest& request);
  void ReleaseRequest();

  const RespParserOptions options_;
  BulkBufferPool* const pool_;
  SlotSource* const slots_;
  const size_t header_capacity_;
  std::unique_ptr<char[]> header_;  // the header area
  size_t pos_ = 0;                  // first unparsed byte in header_
  size_t end_ = 0;                  // one past the last byte read into header_
  State state_ = State::kStart;
  std::string error_;

  // The request being assembled.
  int64_t args_expected_ = 0;
  bool too_large_ = false;
  uint64_t discard_left_ = 0;
  uint64_t held_ = 0;  // bulk bytes buffered for this request
  std::vector<Arg> args_;
  std::vector<std::string> small_;  // per-argument storage for small bulks, reused
  std::vector<BulkBuffer> big_;     // pool buffers of this request's large bulks
  ReservedSlot value_slot_;         // the DRAM slot a SET value is read into
  bool request_out_ = false;        // a request was handed out; release it on the next call
  bool direct_read_ = false;        // the last ReadSpans' first span was the bulk's buffer
};

}  // namespace strata::cachenode
