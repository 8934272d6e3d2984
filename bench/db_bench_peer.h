// RocksDB with its defaults as a peer of the SSD tier: Debian's `db_bench` (package rocksdb-tools)
// run on the same disk with the same value size, so "get >= 3x RocksDB defaults" is measured in
// the same run as the tier.
//
// Flags are db_bench's defaults except three, each so that both sides measure the same thing:
// --use_direct_reads (otherwise readrandom measures the page cache, which holds the whole working
// set on these machines), --compression_type=none (KV payloads do not compress; db_bench's values
// would, and Snappy would halve the bytes read), and the value size / key count / duration of the
// case. fillseq then readrandom, one thread. Thread-compatible.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "bench/throughput.h"

namespace strata::bench {

struct DbBenchOptions {
  uint64_t value_bytes = 0;
  uint64_t values = 0;
  std::string db_dir;  // created by db_bench; removed afterwards
  absl::Duration read_duration = absl::Seconds(2);
};

struct DbBenchResult {
  Throughput fill;  // fillseq: payload bytes per second as db_bench reports ops/sec
  Throughput read;  // readrandom
  std::string note;  // the flags that differ from db_bench's defaults
};

// Runs db_bench from PATH. NotFound when it is not installed; Internal when it fails or its output
// cannot be parsed.
absl::StatusOr<DbBenchResult> MeasureDbBench(const DbBenchOptions& options);

// Parses one result line of db_bench ("readrandom   :  3105.964 micros/op 321 ops/sec 3.103
// seconds 999 operations; ..."): operations and seconds. NotFound when `benchmark` has no line.
absl::StatusOr<Throughput> ParseDbBenchLine(absl::string_view output, absl::string_view benchmark,
                                            uint64_t value_bytes);

}  // namespace strata::bench
