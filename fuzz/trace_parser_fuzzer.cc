// Fuzzes bench::ParseTrace (Mooncake JSONL traces, the input of `strata-bench replay`).
//
// Input: byte 0 picks block_tokens (1..16), byte 1 time_scale and max_requests; the rest is the
// trace text. Checks, beyond ASan/UBSan:
//   - an accepted trace obeys the documented rules: requests numbered from 0 on increasing lines,
//     the first arriving at 0, finite non-decreasing arrivals, input_tokens >= 1, one hash id per
//     started block, at most max_requests requests;
//   - FormatTrace of the requests parses back to the same requests (time_scale 1);
//   - ChainOf gives one key per id, and the chain of a request's first k ids is the first k keys;
//   - a rejection is InvalidArgument naming the source.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "bench/trace.h"
#include "fuzz/fuzz_check.h"

namespace {

using namespace strata::bench;  // NOLINT: fuzz target

bool SameRequests(const std::vector<TraceRequest>& a, const std::vector<TraceRequest>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].index != b[i].index || a[i].arrival_ms != b[i].arrival_ms ||
        a[i].input_tokens != b[i].input_tokens || a[i].output_tokens != b[i].output_tokens ||
        a[i].hash_ids != b[i].hash_ids) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  TraceOptions options;
  options.block_tokens = 1 + data[0] % 16;
  static constexpr double kScales[] = {1.0, 0.5, 2.0, 1e300};
  options.time_scale = kScales[data[1] % 4];
  options.max_requests = (data[1] >> 2) % 4;  // 0: all
  const std::string_view text(reinterpret_cast<const char*>(data) + 2, size - 2);

  absl::StatusOr<Trace> trace = ParseTrace(text, "fuzz.jsonl", options);
  if (!trace.ok()) {
    FUZZ_CHECK(absl::IsInvalidArgument(trace.status()));
    FUZZ_CHECK(trace.status().message().substr(0, 10) == "fuzz.jsonl");
    return 0;
  }
  const std::vector<TraceRequest>& requests = trace->requests;
  FUZZ_CHECK(!requests.empty());
  FUZZ_CHECK(options.max_requests == 0 || requests.size() <= options.max_requests);
  FUZZ_CHECK(trace->block_tokens == options.block_tokens);
  for (size_t i = 0; i < requests.size(); ++i) {
    const TraceRequest& r = requests[i];
    FUZZ_CHECK(r.index == i);
    FUZZ_CHECK(std::isfinite(r.arrival_ms) && r.arrival_ms >= 0);
    if (i == 0) {
      FUZZ_CHECK(r.arrival_ms == 0);
    } else {
      FUZZ_CHECK(r.line > requests[i - 1].line);
      FUZZ_CHECK(r.arrival_ms >= requests[i - 1].arrival_ms);
    }
    FUZZ_CHECK(r.input_tokens >= 1);
    FUZZ_CHECK(r.hash_ids.size() ==
               (uint64_t{r.input_tokens} + options.block_tokens - 1) / options.block_tokens);
    for (uint64_t id : r.hash_ids) FUZZ_CHECK(id <= uint64_t{INT64_MAX});
  }

  TraceOptions plain;
  plain.block_tokens = options.block_tokens;
  absl::StatusOr<Trace> again = ParseTrace(FormatTrace(requests), "again.jsonl", plain);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(SameRequests(requests, again->requests));

  const TraceRequest& first = requests.front();
  const std::vector<strata::common::ChainHash> chain = ChainOf(first, /*ns=*/data[0]);
  FUZZ_CHECK(chain.size() == first.hash_ids.size());
  TraceRequest prefix = first;
  prefix.hash_ids.resize(first.hash_ids.size() / 2);
  const std::vector<strata::common::ChainHash> head = ChainOf(prefix, /*ns=*/data[0]);
  FUZZ_CHECK(std::equal(head.begin(), head.end(), chain.begin()));
  return 0;
}
