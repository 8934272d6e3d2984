#include "bench/db_bench_peer.h"

#include <filesystem>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "tests/node_process.h"

namespace strata::bench {

absl::StatusOr<Throughput> ParseDbBenchLine(absl::string_view output, absl::string_view benchmark,
                                            uint64_t value_bytes) {
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    if (!absl::ConsumePrefix(&line, benchmark)) continue;
    line = absl::StripLeadingAsciiWhitespace(line);
    if (!absl::ConsumePrefix(&line, ":")) continue;
    // "<micros> micros/op <ops> ops/sec <seconds> seconds <n> operations; ..."
    std::vector<absl::string_view> words =
        absl::StrSplit(line, absl::ByAnyChar(" \t;"), absl::SkipEmpty());
    double seconds = 0;
    uint64_t operations = 0;
    for (size_t i = 1; i < words.size(); ++i) {
      if (words[i] == "seconds" && !absl::SimpleAtod(words[i - 1], &seconds)) seconds = 0;
      if (words[i] == "operations" && !absl::SimpleAtoi(words[i - 1], &operations)) operations = 0;
    }
    if (seconds <= 0 || operations == 0) {
      return absl::InternalError(absl::StrCat("db_bench: cannot parse '", line, "'"));
    }
    Throughput t;
    t.bytes = operations * value_bytes;
    t.seconds = seconds;
    return t;
  }
  return absl::NotFoundError(absl::StrCat("db_bench printed no ", benchmark, " line"));
}

absl::StatusOr<DbBenchResult> MeasureDbBench(const DbBenchOptions& o) {
  std::string binary;
  for (const char* dir : {"/usr/bin", "/usr/local/bin"}) {
    const std::string candidate = std::string(dir) + "/db_bench";
    if (std::filesystem::exists(candidate)) binary = candidate;
  }
  if (binary.empty()) {
    return absl::NotFoundError("db_bench is not installed (Debian package rocksdb-tools)");
  }
  const int seconds = std::max(1, static_cast<int>(absl::ToDoubleSeconds(o.read_duration) + 0.5));
  const std::vector<std::string> argv = {
      binary,
      "--benchmarks=fillseq,readrandom",
      absl::StrCat("--db=", o.db_dir),
      absl::StrCat("--num=", o.values),
      absl::StrCat("--value_size=", o.value_bytes),
      absl::StrCat("--duration=", seconds),
      "--use_direct_reads=true",
      "--compression_type=none",
      "--threads=1"};
  absl::StatusOr<tests::ProcessResult> run = tests::RunProcess(argv, absl::Minutes(5));
  std::error_code ec;
  std::filesystem::remove_all(o.db_dir, ec);
  if (!run.ok()) return run.status();
  if (run->exit_code != 0) {
    return absl::InternalError(absl::StrCat("db_bench exited ", run->exit_code, ": ",
                                            run->stderr_text.substr(0, 300)));
  }
  DbBenchResult r;
  STRATA_ASSIGN_OR_RETURN(r.fill, ParseDbBenchLine(run->stdout_text, "fillseq", o.value_bytes));
  STRATA_ASSIGN_OR_RETURN(r.read, ParseDbBenchLine(run->stdout_text, "readrandom", o.value_bytes));
  r.note = "db_bench defaults + direct reads, no compression, 1 thread";
  return r;
}

}  // namespace strata::bench
