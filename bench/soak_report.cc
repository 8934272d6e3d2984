// The pure parts of bench/soak.h: options and their command line, percentiles, the memory verdict
// and the report. The run itself is in soak.cc.
#include <algorithm>
#include <bit>
#include <cmath>
#include <functional>
#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "bench/soak.h"
#include "common/byte_size.h"
#include "common/status_macros.h"
#include "common/string_view_interop.h"

namespace strata::bench {

const char* SoakPlaneName(SoakPlane plane) {
  switch (plane) {
    case SoakPlane::kGrpc:
      return "grpc";
    case SoakPlane::kResp:
      return "resp";
    case SoakPlane::kShm:
      return "shm";
    case SoakPlane::kRouter:
      return "router";
  }
  return "?";
}

std::vector<SoakPlane> SoakOptions::ActivePlanes() const {
  std::vector<SoakPlane> out;
  for (SoakPlane p : planes) {
    if (attach()) {
      if (p == SoakPlane::kGrpc && node_targets.empty()) continue;
      if (p == SoakPlane::kResp && resp_targets.empty()) continue;
      if (p == SoakPlane::kShm && local_sockets.empty()) continue;
      // Route needs chains the router knows of: the gRPC plane's nodes write them.
      if (p == SoakPlane::kRouter && (router_target.empty() || node_targets.empty())) continue;
    }
    out.push_back(p);
  }
  return out;
}

absl::Status SoakOptions::Validate() const {
  if (duration <= absl::ZeroDuration() || duration > absl::Hours(24)) {
    return absl::InvalidArgumentError("soak --duration must be in (0, 24h]");
  }
  if (think_time < absl::ZeroDuration() || think_time > absl::Seconds(10)) {
    return absl::InvalidArgumentError("soak --think-time must be in [0, 10s]");
  }
  const std::vector<SoakPlane> active = ActivePlanes();
  if (active.empty()) {
    return absl::InvalidArgumentError(
        "soak: no plane to run (--planes, or no address given for the chosen planes)");
  }
  if (clients < active.size() || clients > 4096) {
    return absl::InvalidArgumentError(absl::StrCat(
        "soak --clients must be in [", active.size(), " (one per plane), 4096]"));
  }
  if (block_bytes < 16 || block_bytes > (4ull << 20)) {
    return absl::InvalidArgumentError("soak --block-bytes must be in [16B, 4MiB]");
  }
  if (chain_blocks == 0 || chain_blocks > 64) {
    return absl::InvalidArgumentError("soak --chain-blocks must be in [1, 64]");
  }
  if (keys == 0 || keys > (1u << 20)) {
    return absl::InvalidArgumentError("soak --keys must be in [1, 1048576]");
  }
  if (!attach()) {
    if (nodes == 0 || nodes > 16) return absl::InvalidArgumentError("soak --nodes must be in [1, 16]");
    if (dram_bytes < block_bytes * chain_blocks * 4) {
      return absl::InvalidArgumentError(
          "soak --dram-bytes must hold at least four chains (--block-bytes x --chain-blocks x 4)");
    }
  } else if (!pids.empty() && std::any_of(pids.begin(), pids.end(), [](int p) { return p <= 0; })) {
    return absl::InvalidArgumentError("soak --pids must be positive process ids");
  }
  if (!(warmup_fraction > 0 && warmup_fraction < 1)) {
    return absl::InvalidArgumentError("soak warm-up fraction must be in (0, 1)");
  }
  if (!(max_growth_fraction >= 0 && max_growth_fraction <= 10)) {
    return absl::InvalidArgumentError("soak --max-growth-percent must be in [0, 1000]");
  }
  if (sample_interval <= absl::ZeroDuration() || progress_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("soak sample and progress intervals must be positive");
  }
  if (namespace_name.empty()) return absl::InvalidArgumentError("soak --namespace is empty");
  return absl::OkStatus();
}

namespace {

using Setter = std::function<absl::Status(const std::string&)>;

absl::Status Bad(const std::string& flag, const std::string& value, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat("soak --", flag, " '", value, "': ", why));
}

Setter DurationFlag(const std::string& flag, absl::Duration* out) {
  return [flag, out](const std::string& v) {
    if (!absl::ParseDuration(common::ToAbsl(v), out)) return Bad(flag, v, "not a duration (15s, 10m)");
    return absl::OkStatus();
  };
}

Setter BytesFlag(const std::string& flag, uint64_t* out) {
  return [flag, out](const std::string& v) {
    absl::StatusOr<uint64_t> n = common::ParseByteSize(v);
    if (!n.ok()) return Bad(flag, v, std::string(n.status().message()));
    *out = *n;
    return absl::OkStatus();
  };
}

template <typename T>
Setter IntegerFlag(const std::string& flag, T* out) {
  return [flag, out](const std::string& v) {
    uint64_t n = 0;
    if (!absl::SimpleAtoi(common::ToAbsl(v), &n) ||
        n > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
      return Bad(flag, v, "not a non-negative integer in range");
    }
    *out = static_cast<T>(n);
    return absl::OkStatus();
  };
}

Setter ListFlag(std::vector<std::string>* out) {
  return [out](const std::string& v) {
    for (absl::string_view part : absl::StrSplit(common::ToAbsl(v), ',', absl::SkipEmpty())) {
      out->emplace_back(part);
    }
    return absl::OkStatus();
  };
}

}  // namespace

absl::StatusOr<SoakCommand> ParseSoakArgs(const std::vector<std::string>& args) {
  SoakCommand cmd;
  SoakOptions& o = cmd.options;
  std::string planes, output = "text", pids;
  double growth_percent = o.max_growth_fraction * 100;
  const std::map<std::string, Setter> setters = {
      {"duration", DurationFlag("duration", &o.duration)},
      {"clients", IntegerFlag("clients", &o.clients)},
      {"planes", [&planes](const std::string& v) { planes = v; return absl::OkStatus(); }},
      {"think-time", DurationFlag("think-time", &o.think_time)},
      {"block-bytes", BytesFlag("block-bytes", &o.block_bytes)},
      {"chain-blocks", IntegerFlag("chain-blocks", &o.chain_blocks)},
      {"keys", IntegerFlag("keys", &o.keys)},
      {"seed", IntegerFlag("seed", &o.seed)},
      {"nodes", IntegerFlag("nodes", &o.nodes)},
      {"dram-bytes", BytesFlag("dram-bytes", &o.dram_bytes)},
      {"ssd-bytes", BytesFlag("ssd-bytes", &o.ssd_bytes)},
      {"bin-dir", [&o](const std::string& v) { o.bin_dir = v; return absl::OkStatus(); }},
      {"node", ListFlag(&o.node_targets)},
      {"resp", ListFlag(&o.resp_targets)},
      {"local-socket", ListFlag(&o.local_sockets)},
      {"router", [&o](const std::string& v) { o.router_target = v; return absl::OkStatus(); }},
      {"pids", [&pids](const std::string& v) { pids = v; return absl::OkStatus(); }},
      {"namespace", [&o](const std::string& v) { o.namespace_name = v; return absl::OkStatus(); }},
      {"max-growth", BytesFlag("max-growth", &o.max_growth_bytes)},
      {"max-growth-percent",
       [&growth_percent](const std::string& v) {
         if (!absl::SimpleAtod(common::ToAbsl(v), &growth_percent)) {
           return Bad("max-growth-percent", v, "not a number");
         }
         return absl::OkStatus();
       }},
      {"output", [&output](const std::string& v) { output = v; return absl::OkStatus(); }},
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      cmd.help = true;
      return cmd;
    }
    if (arg.rfind("--", 0) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("soak: unexpected argument '", arg, "'"));
    }
    std::string name = arg.substr(2), value;
    if (const size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("soak --", name, " needs a value"));
    }
    auto it = setters.find(name);
    if (it == setters.end()) return absl::InvalidArgumentError("soak: unknown flag --" + name);
    STRATA_RETURN_IF_ERROR(it->second(value));
  }
  if (!planes.empty()) {
    o.planes.clear();
    for (absl::string_view p : absl::StrSplit(common::ToAbsl(planes), ',', absl::SkipEmpty())) {
      bool known = false;
      for (SoakPlane plane : kAllSoakPlanes) {
        if (p == SoakPlaneName(plane)) {
          if (std::find(o.planes.begin(), o.planes.end(), plane) == o.planes.end()) {
            o.planes.push_back(plane);
          }
          known = true;
        }
      }
      if (!known) return Bad("planes", planes, "expected grpc, resp, shm, router");
    }
  }
  for (absl::string_view p : absl::StrSplit(common::ToAbsl(pids), ',', absl::SkipEmpty())) {
    int pid = 0;
    if (!absl::SimpleAtoi(p, &pid)) return Bad("pids", pids, "not a list of process ids");
    o.pids.push_back(pid);
  }
  o.max_growth_fraction = growth_percent / 100;
  if (output == "json") {
    cmd.output = SoakOutput::kJson;
  } else if (output != "text") {
    return Bad("output", output, "expected text or json");
  }
  if (!o.attach() && !o.pids.empty()) {
    return absl::InvalidArgumentError("soak --pids needs an attached cluster (--node, --resp, ...)");
  }
  STRATA_RETURN_IF_ERROR(o.Validate());
  return cmd;
}

std::string SoakUsage() {
  return R"(  strata-bench soak [--duration 60s] [--clients 256] [--planes grpc,resp,shm,router]
                    [--think-time 0] [--block-bytes 32KiB] [--chain-blocks 4] [--keys 512]
                    [--seed 1] [--nodes 2] [--dram-bytes 64MiB] [--ssd-bytes 0] [--bin-dir DIR]
                    [--node HOST:PORT,... --resp HOST:PORT,... --local-socket PATH,...
                     --router HOST:PORT --pids PID,... --namespace soak]
                    [--max-growth 32MiB] [--max-growth-percent 5] [--output text|json]
      Reliability soak: starts a strata-router and --nodes strata-cachenode processes on
      loopback (or attaches to the given addresses; planes without one are left out) and runs
      --clients concurrent clients, spread evenly over the planes, for --duration after one
      prefill pass over every key: gRPC Put/Get/Lookup of chains, RESP SET/GET/MGET, the
      shared-memory plane (lease, copy, release; reserve, copy, commit) and the router's
      Route + ReportOutcome. Every key has fixed contents and every byte read back is
      compared. Every second it samples each server process's RSS, open fds and threads
      (attached: the --pids). Reports per plane and op: count, errors by code, p50/p99/p99.9
      latency, ops/s; per process: RSS at the end of warm-up (first 25% of the run), peak and
      end RSS, growth after warm-up, peak fds and threads.
      Declared (allowed) errors: NOT_FOUND (a miss: evicted or not yet written) and
      RESOURCE_EXHAUSTED (a bound was hit: DRAM pinned, client or connection limits).
      Exit 1 on any other error (UNAVAILABLE included: nothing restarts during a soak),
      any wrong byte, or RSS growth after warm-up of at least
      max(--max-growth-percent of the warm-up RSS, --max-growth) in any sampled process.
)";
}

bool IsDeclaredSoakError(absl::StatusCode code) {
  return code == absl::StatusCode::kNotFound || code == absl::StatusCode::kResourceExhausted;
}

// ---- LatencyHistogram ---------------------------------------------------------------------------

namespace {
constexpr int kSubBits = 5;  // 32 buckets per power of two
constexpr uint64_t kLinear = 1u << (kSubBits + 1);  // values below are their own bucket
}  // namespace

size_t LatencyHistogram::BucketOf(uint64_t ns) {
  if (ns < kLinear) return static_cast<size_t>(ns);
  const int e = 63 - std::countl_zero(ns);  // >= kSubBits + 1
  const uint64_t sub = (ns >> (e - kSubBits)) & ((1u << kSubBits) - 1);
  return kLinear + static_cast<size_t>(e - kSubBits - 1) * (1u << kSubBits) + sub;
}

uint64_t LatencyHistogram::BucketMiddle(size_t bucket) {
  if (bucket < kLinear) return bucket;
  const size_t k = bucket - kLinear;
  const int e = static_cast<int>(k >> kSubBits) + kSubBits + 1;
  const uint64_t sub = k & ((1u << kSubBits) - 1);
  const uint64_t width = uint64_t{1} << (e - kSubBits);
  const uint64_t low = (uint64_t{1} << e) + sub * width;
  return low + width / 2;
}

void LatencyHistogram::Record(uint64_t ns) {
  const size_t b = BucketOf(ns);
  if (buckets_.size() <= b) buckets_.resize(b + 1, 0);
  ++buckets_[b];
  min_ = count_ == 0 ? ns : std::min(min_, ns);
  max_ = count_ == 0 ? ns : std::max(max_, ns);
  ++count_;
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  if (buckets_.size() < other.buckets_.size()) buckets_.resize(other.buckets_.size(), 0);
  for (size_t i = 0; i < other.buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  min_ = count_ == 0 ? other.min_ : std::min(min_, other.min_);
  max_ = count_ == 0 ? other.max_ : std::max(max_, other.max_);
  count_ += other.count_;
}

uint64_t LatencyHistogram::Percentile(double p) const {
  if (count_ == 0) return 0;
  const uint64_t rank = std::clamp<uint64_t>(
      static_cast<uint64_t>(std::ceil(p * static_cast<double>(count_))), 1, count_);
  uint64_t seen = 0;
  for (size_t b = 0; b < buckets_.size(); ++b) {
    seen += buckets_[b];
    if (seen >= rank) return std::clamp(BucketMiddle(b), min_, max_);
  }
  return max_;
}

// ---- Memory verdict -----------------------------------------------------------------------------

uint32_t ParseThreadCount(std::string_view status_text) {
  for (absl::string_view line : absl::StrSplit(common::ToAbsl(status_text), '\n')) {
    if (!absl::ConsumePrefix(&line, "Threads:")) continue;
    uint32_t n = 0;
    return absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &n) ? n : 0;
  }
  return 0;
}

MemoryVerdict JudgeMemory(const std::vector<ProcessSample>& samples, double run_s,
                          const SoakOptions& options) {
  MemoryVerdict v;
  if (samples.empty()) {
    v.why = "no samples";
    return v;
  }
  const double warmup_end = run_s * options.warmup_fraction;
  v.warmup_rss = samples.front().rss_bytes;
  for (const ProcessSample& s : samples) {
    if (s.t_s <= warmup_end) v.warmup_rss = s.rss_bytes;
    v.peak_rss = std::max(v.peak_rss, s.rss_bytes);
    v.peak_fds = std::max(v.peak_fds, s.fds);
    v.peak_threads = std::max(v.peak_threads, s.threads);
  }
  v.end_rss = samples.back().rss_bytes;
  v.growth = static_cast<int64_t>(v.end_rss) - static_cast<int64_t>(v.warmup_rss);
  v.allowed_growth = std::max<uint64_t>(
      static_cast<uint64_t>(options.max_growth_fraction * static_cast<double>(v.warmup_rss)),
      options.max_growth_bytes);
  if (samples.back().t_s <= warmup_end) {
    v.why = absl::StrFormat("no sample after warm-up (%.1f s)", warmup_end);
    return v;
  }
  v.flat = v.growth < static_cast<int64_t>(v.allowed_growth);
  if (!v.flat) {
    v.why = absl::StrFormat(
        "RSS grew %.1f MiB after warm-up (%.1f -> %.1f MiB), allowed under %.1f MiB",
        static_cast<double>(v.growth) / (1 << 20), static_cast<double>(v.warmup_rss) / (1 << 20),
        static_cast<double>(v.end_rss) / (1 << 20),
        static_cast<double>(v.allowed_growth) / (1 << 20));
  }
  return v;
}

// ---- Report -------------------------------------------------------------------------------------

namespace {

double MiB(uint64_t b) { return static_cast<double>(b) / (1 << 20); }

std::string ErrorsText(const std::map<std::string, uint64_t>& errors) {
  if (errors.empty()) return "-";
  std::vector<std::string> parts;
  for (const auto& [code, n] : errors) parts.push_back(absl::StrCat(code, "=", n));
  return absl::StrJoin(parts, ",");
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace

std::string FormatSoakText(const SoakResult& r) {
  std::string out = absl::StrFormat("soak: %u clients, %.1f s\n\n", r.clients, r.duration_s);
  absl::StrAppendFormat(&out, "%-7s %-14s %10s %10s %9s %9s %9s %6s  %s\n", "plane", "op", "count",
                        "ops/s", "p50_us", "p99_us", "p999_us", "wrong", "errors");
  for (const SoakOpFigures& f : r.ops) {
    absl::StrAppendFormat(&out, "%-7s %-14s %10u %10.0f %9.0f %9.0f %9.0f %6u  %s\n",
                          SoakPlaneName(f.plane), f.op, f.count, f.ops_per_s, f.p50_us, f.p99_us,
                          f.p999_us, f.wrong_bytes, ErrorsText(f.errors));
  }
  if (!r.processes.empty()) {
    absl::StrAppendFormat(&out, "\n%-8s %8s %12s %10s %9s %10s %9s %8s %5s\n", "process", "pid",
                          "warmup_MiB", "peak_MiB", "end_MiB", "growth_MiB", "peak_fds",
                          "threads", "flat");
    for (const SoakProcessFigures& p : r.processes) {
      const MemoryVerdict& m = p.memory;
      absl::StrAppendFormat(&out, "%-8s %8d %12.1f %10.1f %9.1f %10.1f %9u %8u %5s\n", p.name,
                            p.pid, MiB(m.warmup_rss), MiB(m.peak_rss), MiB(m.end_rss),
                            static_cast<double>(m.growth) / (1 << 20), m.peak_fds, m.peak_threads,
                            m.flat ? "yes" : "NO");
    }
  }
  out += r.ok() ? "\nverdict: PASS (no undeclared errors, no wrong bytes, memory flat)\n"
                : "\nverdict: FAIL\n";
  for (const std::string& f : r.failures) absl::StrAppend(&out, "  ", f, "\n");
  return out;
}

std::string FormatSoakJson(const SoakResult& r) {
  std::string out;
  for (const SoakOpFigures& f : r.ops) {
    std::vector<std::string> errors;
    for (const auto& [code, n] : f.errors) errors.push_back(absl::StrCat(JsonString(code), ":", n));
    absl::StrAppendFormat(
        &out,
        "{\"kind\":\"op\",\"plane\":\"%s\",\"op\":\"%s\",\"count\":%u,\"bytes\":%u,"
        "\"ops_per_s\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"wrong_bytes\":%u,"
        "\"errors\":{%s}}\n",
        SoakPlaneName(f.plane), f.op, f.count, f.bytes, f.ops_per_s, f.p50_us, f.p99_us, f.p999_us,
        f.wrong_bytes, absl::StrJoin(errors, ","));
  }
  for (const SoakProcessFigures& p : r.processes) {
    const MemoryVerdict& m = p.memory;
    absl::StrAppendFormat(
        &out,
        "{\"kind\":\"process\",\"name\":%s,\"pid\":%d,\"warmup_rss_bytes\":%u,"
        "\"peak_rss_bytes\":%u,\"end_rss_bytes\":%u,\"growth_bytes\":%d,"
        "\"allowed_growth_bytes\":%u,\"peak_fds\":%u,\"peak_threads\":%u,\"flat\":%s}\n",
        JsonString(p.name), p.pid, m.warmup_rss, m.peak_rss, m.end_rss, m.growth,
        m.allowed_growth, m.peak_fds, m.peak_threads, m.flat ? "true" : "false");
  }
  std::vector<std::string> failures;
  for (const std::string& f : r.failures) failures.push_back(JsonString(f));
  absl::StrAppendFormat(&out,
                        "{\"kind\":\"summary\",\"clients\":%u,\"duration_s\":%.2f,"
                        "\"undeclared_errors\":%u,\"wrong_bytes\":%u,\"ok\":%s,\"failures\":[%s]}\n",
                        r.clients, r.duration_s, r.undeclared_errors, r.wrong_bytes,
                        r.ok() ? "true" : "false", absl::StrJoin(failures, ","));
  return out;
}

}  // namespace strata::bench
