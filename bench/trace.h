// Mooncake-format request traces: the input of `strata-bench replay`.
//
// A trace is JSONL, one request per line: {"timestamp": ms, "input_length": tokens,
// "output_length": tokens, "hash_ids": [...]} (strata.v1.MooncakeRecord; other fields are ignored).
// Each hash id names one prompt block of `block_tokens` tokens (512 in Mooncake's traces; the last
// block may be partial); equal ids at the same chain position mean a shared prefix. Replay turns
// each request's ids into chained Strata keys (ChainOf), so keys are unique per prefix exactly as
// an engine's chained block hashes are.
//
// Validation (errors name the line, 1-based): a line is at most kMaxTraceLineBytes and must parse
// as the record; timestamps are finite, >= 0 and never go backwards, and stay finite once scaled;
// input_length >= 1 and output_length >= 0; hash_ids is not empty, ids are >= 0, and there is one
// id per started block: ceil(input_length / block_tokens). Blank lines are skipped. A trace has at
// most 2^32 - 1 lines (requests and lines are numbered with uint32).
//
// Pure functions, thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/block_key.h"

namespace strata::bench {

// Longest trace line accepted. A Mooncake line is ~2 KB (a 128k-token prompt is 250 ids); 1 MiB
// leaves room for 16-token blocks at 128k tokens and keeps one bad line from making the JSON
// parser build a huge message. It also bounds hash_ids per request (each id takes >= 2 bytes).
inline constexpr size_t kMaxTraceLineBytes = 1 << 20;

struct TraceRequest {
  uint32_t index = 0;       // 0-based position in the replayed trace
  uint32_t line = 0;        // 1-based line in the file
  double arrival_ms = 0;    // timestamp x time_scale, relative to the first request's
  uint32_t input_tokens = 0;
  uint32_t output_tokens = 0;
  std::vector<uint64_t> hash_ids;
};

struct TraceOptions {
  uint32_t block_tokens = 512;  // tokens per hash id (Mooncake: 512)
  uint64_t max_requests = 0;    // first N requests; 0: all
  // Multiplies every timestamp: 0.5 replays twice as fast, 2 half as fast. > 0.
  double time_scale = 1.0;

  absl::Status Validate() const;
};

struct Trace {
  std::string source;  // file name, for reports
  uint32_t block_tokens = 512;
  std::vector<TraceRequest> requests;  // in arrival order
};

// Parses JSONL text. InvalidArgument "SOURCE:LINE: what is wrong" for the first bad line; an
// empty trace (no requests) is InvalidArgument too.
absl::StatusOr<Trace> ParseTrace(std::string_view text, std::string_view source,
                                 const TraceOptions& options);

// Reads and parses a file. NotFound when it cannot be opened.
absl::StatusOr<Trace> LoadTrace(const std::string& path, const TraceOptions& options);

// The request's chained keys in `ns`: key i = HashBlock(key i-1, ns, "", {id_i as two u32
// words}). Equal id sequences give equal keys; a different earlier id changes every later key.
std::vector<common::ChainHash> ChainOf(const TraceRequest& request, common::NamespaceId ns);

// Share of all prompt blocks whose key occurred earlier in the trace: the hit ratio of one
// infinite cache that sees every request (the replay's `ideal_hit_ratio`).
double IdealHitRatio(const Trace& trace);

// Writes requests back as JSONL (timestamps are arrival_ms in shortest round-trip form), one line
// per request, in order; ParseTrace of the result with time_scale 1 yields the same requests when
// they are numbered from 0 and the first arrives at 0 (ParseTrace re-bases on the first
// timestamp). Used by `strata-bench gen`.
std::string FormatTrace(const std::vector<TraceRequest>& requests);

}  // namespace strata::bench
