// The RESP case of `strata-bench tiers`: Redis's own load generator (redis-benchmark -t set,get)
// against the node's RESP endpoint, and the very same command against a stock redis-server, in one
// run, same value size, clients and request count.
//
// The node is an in-process cachenode::Node (bench/node_bench.h InProcessNode) with only a DRAM
// tier: the same wiring as the binary, and no SSD write-behind competing for the two cores, so the
// figure is the RESP data path over DRAM. redis-server runs on 127.0.0.1 on a free port with
// persistence off (--save "" --appendonly no), bulk and query-buffer limits raised for the largest
// value, and is killed at the end. A missing redis-benchmark or redis-server yields rows whose note
// says so (gbps 0) instead of an error.
//
// Not thread-safe: one measurement at a time (it spawns processes and binds ports).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/report.h"

namespace strata::bench {

// Same type as tiers_bench.h's ProgressFn (a repeated alias of one type is allowed).
using ProgressFn = std::function<void(const std::string& line)>;

struct RespBenchOptions {
  // Value sizes (-d), each one SET and one GET test per server. 256 KiB is an LMCache chunk of a
  // small model, 2 MiB a 16-token page of a Llama-3-8B-shaped model, 32 MiB a 256-token chunk.
  std::vector<uint64_t> value_bytes = {256ull << 10, 2ull << 20, 32ull << 20};
  // redis-benchmark clients (-c), the same for both servers.
  int clients = 4;
  // Requests per test (-n); 0 picks bytes_per_test / value size (at least 4 per client), about
  // 1-3 s per test at the 1-2 GB/s these paths run at on the development boxes.
  uint64_t requests = 0;
  uint64_t bytes_per_test = 2ull << 30;
  // Where redis-server runs (its --dir; nothing is written with persistence off).
  std::string scratch_dir = "/tmp";

  // InvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// Rows, per value size: path "resp", op "set" then "get", gbps = requests/s * size / 1e9 of the
// node, baseline "redis_server" with the same figure against redis-server, note with clients and
// requests. An error only when the node itself cannot start.
absl::StatusOr<std::vector<Row>> MeasureResp(const RespBenchOptions& options,
                                             const ProgressFn& progress);

// Parses redis-benchmark --csv output: requests per second of test `name` ("SET", "GET"); NotFound
// when absent. Exposed for tests.
absl::StatusOr<double> ParseRedisBenchmarkCsv(const std::string& csv, const std::string& name);

}  // namespace strata::bench
