#include "bench/gpu/gpu_bench_report.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <system_error>

namespace strata::bench {
namespace {

// A minimal JSON builder: values separated by commas as they come; no pretty printing beyond one
// row or case per line.
class Json {
 public:
  void BeginObject() {
    Value("{");
    first_ = true;
  }
  void EndObject() {
    out_ += "}";
    first_ = false;
  }
  void BeginArray() {
    Value("[");
    first_ = true;
  }
  void EndArray() {
    out_ += "]";
    first_ = false;
  }
  void Key(const std::string& key) {
    Separate();
    String(key);
    out_ += ":";
    after_key_ = true;
  }
  void Str(const std::string& key, const std::string& v) {
    Key(key);
    Value(Quote(v));
  }
  void Int(const std::string& key, int64_t v) {
    Key(key);
    Value(std::to_string(v));
  }
  void UInt(const std::string& key, uint64_t v) {
    Key(key);
    Value(std::to_string(v));
  }
  void Bool(const std::string& key, bool v) {
    Key(key);
    Value(v ? "true" : "false");
  }
  void Null(const std::string& key) {
    Key(key);
    Value("null");
  }
  void Num(const std::string& key, double v) {
    Key(key);
    if (!std::isfinite(v)) {
      Value("null");
      return;
    }
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.6g", v);
    Value(buf);
  }
  void StrElem(const std::string& v) { Value(Quote(v)); }
  // The next value starts a new line (after its comma).
  void Newline() { newline_ = true; }
  std::string Take() { return std::move(out_); }

 private:
  static std::string Quote(const std::string& s) {
    std::string q = "\"";
    for (unsigned char c : s) {
      switch (c) {
        case '"':
          q += "\\\"";
          break;
        case '\\':
          q += "\\\\";
          break;
        case '\n':
          q += "\\n";
          break;
        case '\t':
          q += "\\t";
          break;
        default:
          if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof(buf), "\\u%04x", c);
            q += buf;
          } else {
            q += static_cast<char>(c);
          }
      }
    }
    return q + "\"";
  }
  void String(const std::string& s) { out_ += Quote(s); }
  void Separate() {
    if (!first_) out_ += ",";
    if (newline_) out_ += "\n";
    first_ = false;
    newline_ = false;
  }
  void Value(const std::string& v) {
    if (after_key_) {
      after_key_ = false;
    } else {
      Separate();
    }
    out_ += v;
    first_ = false;
  }

  std::string out_;
  bool first_ = true;
  bool after_key_ = false;
  bool newline_ = false;
};

std::string TargetText(const ThroughputRow& r) {
  if (!r.has_target()) return "";
  char buf[48];
  if (r.kernel_ms >= 0) {  // an overhead row: a fraction, not a ratio
    std::snprintf(buf, sizeof(buf), "%s %.0f%%", r.target_kind == TargetKind::kAtLeast ? ">=" : "<",
                  r.target * 100);
  } else {
    std::snprintf(buf, sizeof(buf), "%s %.2fx",
                  r.target_kind == TargetKind::kAtLeast ? ">=" : "<=", r.target);
  }
  return buf;
}

}  // namespace

bool ThroughputRow::met() const {
  switch (target_kind) {
    case TargetKind::kAtLeast:
      return ratio >= target;
    case TargetKind::kAtMost:
      return ratio < target;
    case TargetKind::kNone:
      return false;
  }
  return false;
}

uint64_t GpuBenchReport::MismatchedBytes() const {
  uint64_t n = 0;
  for (const CorrectnessCase& c : cases) n += c.mismatched_bytes;
  return n;
}

int GpuBenchReport::FailedCases() const {
  int n = 0;
  for (const CorrectnessCase& c : cases) n += c.passed() ? 0 : 1;
  return n;
}

void SetRatio(ThroughputRow* row) {
  row->ratio = row->baseline_gbps > 0 ? row->gbps / row->baseline_gbps : 0;
}

std::string FormatBytes(uint64_t bytes) {
  if (bytes >= (1ULL << 20) && bytes % (1ULL << 20) == 0)
    return std::to_string(bytes >> 20) + "MiB";
  if (bytes >= (1ULL << 10) && bytes % (1ULL << 10) == 0)
    return std::to_string(bytes >> 10) + "KiB";
  return std::to_string(bytes) + "B";
}

std::string ReportJson(const GpuBenchReport& report) {
  Json j;
  j.BeginObject();
  j.Key("device");
  j.BeginObject();
  const GpuDeviceInfo& d = report.device;
  j.Bool("usable", d.usable);
  if (!d.usable) j.Str("why_unusable", d.why_unusable);
  j.Int("ordinal", d.ordinal);
  j.Str("name", d.name);
  j.Str("pci_bus_id", d.pci_bus_id);
  j.Int("multiprocessors", d.multiprocessors);
  j.UInt("total_memory_bytes", d.total_memory_bytes);
  j.Str("compute_capability",
        std::to_string(d.compute_major) + "." + std::to_string(d.compute_minor));
  j.Int("cuda_driver_version", d.driver_version);
  j.Int("cuda_runtime_version", d.runtime_version);
  j.EndObject();
  j.UInt("seed", report.seed);
  j.Bool("quick", report.quick);
  j.Bool("check_only", report.check_only);
  j.Int("reps", report.reps);
  j.Key("correctness");
  j.BeginObject();
  j.Int("cases", static_cast<int64_t>(report.cases.size()));
  j.Int("failed", report.FailedCases());
  j.UInt("mismatched_bytes", report.MismatchedBytes());
  j.Key("results");
  j.BeginArray();
  for (const CorrectnessCase& c : report.cases) {
    j.Newline();
    j.BeginObject();
    j.Str("layout_case", c.layout_case);
    j.Str("shape", c.shape);
    j.Str("check", c.check);
    j.Bool("pass", c.passed());
    j.Int("vec_bytes", c.vec_bytes);
    j.Int("blocks", c.blocks);
    j.UInt("bytes_compared", c.bytes_compared);
    j.UInt("mismatched_bytes", c.mismatched_bytes);
    if (!c.error.empty()) j.Str("error", c.error);
    if (!c.detail.empty()) j.Str("detail", c.detail);
    j.EndObject();
  }
  j.EndArray();
  j.EndObject();
  j.Key("throughput");
  j.BeginArray();
  for (const ThroughputRow& r : report.rows) {
    j.Newline();
    j.BeginObject();
    j.Str("name", r.name);
    j.Str("layout", r.layout);
    j.UInt("piece_bytes", r.piece_bytes);
    j.UInt("bytes", r.bytes);
    j.Num("ms", r.ms);
    j.Num("gbps", r.gbps);
    if (r.baseline.empty()) {
      j.Null("baseline");
      j.Null("baseline_gbps");
      j.Null("ratio");
    } else {
      j.Str("baseline", r.baseline);
      j.Num("baseline_gbps", r.baseline_gbps);
      j.Num("ratio", r.ratio);
    }
    if (r.has_target()) {
      j.Str("target", TargetText(r));
      j.Bool("met", r.met());
    } else {
      j.Null("target");
      j.Null("met");
    }
    if (r.kernel_ms >= 0) j.Num("kernel_ms", r.kernel_ms);
    if (!r.note.empty()) j.Str("note", r.note);
    j.EndObject();
  }
  j.EndArray();
  j.Key("errors");
  j.BeginArray();
  for (const std::string& e : report.errors) j.StrElem(e);
  j.EndArray();
  j.EndObject();
  return j.Take() + "\n";
}

std::string ShortTable(const GpuBenchReport& report) {
  constexpr int kMaxLines = 25;
  char line[256];
  // The tail (correctness, errors) always shows; rows fill what is left of kMaxLines.
  std::string tail;
  int tail_lines = 0;
  const int failed = report.FailedCases();
  if (failed == 0) {
    std::snprintf(line, sizeof(line), "correctness: %zu cases, 0 mismatched bytes\n",
                  report.cases.size());
    tail += line;
    ++tail_lines;
  } else {
    std::snprintf(line, sizeof(line), "correctness: %zu cases, %d FAILED, %llu mismatched bytes:\n",
                  report.cases.size(), failed,
                  static_cast<unsigned long long>(report.MismatchedBytes()));
    tail += line;
    ++tail_lines;
    int shown = 0;
    for (const CorrectnessCase& c : report.cases) {
      if (c.passed()) continue;
      if (++shown > 3) {
        tail += "  ... every failure is in gpu-bench.json\n";
        ++tail_lines;
        break;
      }
      std::snprintf(line, sizeof(line), "  %s / %s: %llu bad bytes; %s\n", c.layout_case.c_str(),
                    c.check.c_str(), static_cast<unsigned long long>(c.mismatched_bytes),
                    (c.error.empty() ? c.detail : c.error).substr(0, 120).c_str());
      tail += line;
      ++tail_lines;
    }
  }
  if (!report.errors.empty()) {
    std::snprintf(line, sizeof(line), "errors: %zu, first: %s\n", report.errors.size(),
                  report.errors.front().substr(0, 160).c_str());
    tail += line;
    ++tail_lines;
  }

  std::string t;
  const GpuDeviceInfo& d = report.device;
  const std::string where =
      d.usable ? d.name + " (" + std::to_string(d.multiprocessors) + " SMs)" : "no usable GPU";
  std::snprintf(line, sizeof(line), "== strata-gpu-bench on %s, seed %llu%s ==\n", where.c_str(),
                static_cast<unsigned long long>(report.seed),
                report.quick ? ", QUICK: figures meaningless" : "");
  t += line;
  int table_rows = 0;
  for (const ThroughputRow& r : report.rows) table_rows += r.in_table ? 1 : 0;
  if (table_rows > 0) {
    t += "row            layout                piece       GB/s   ratio  vs              GB/s     "
         "target\n";
  }
  int budget = kMaxLines - (table_rows > 0 ? 2 : 1) - tail_lines;
  const bool truncated = table_rows > budget;
  if (truncated) --budget;  // room for the "more rows" line
  for (const ThroughputRow& r : report.rows) {
    if (!r.in_table) continue;
    if (budget-- <= 0) break;
    const std::string target =
        r.has_target() ? TargetText(r) + (r.met() ? " met" : " MISSED") : "-";
    if (r.kernel_ms >= 0) {
      std::snprintf(line, sizeof(line),
                    "%-14s %-21s %-6s %9.2f%%  kernel %.2f of %.2f ms wall    %s\n", r.name.c_str(),
                    r.layout.c_str(), FormatBytes(r.piece_bytes).c_str(), r.ratio * 100,
                    r.kernel_ms, r.ms, target.c_str());
    } else {
      std::snprintf(line, sizeof(line), "%-14s %-21s %-6s %9.2f %6.2fx  %-14s %7.2f  %s\n",
                    r.name.c_str(), r.layout.c_str(), FormatBytes(r.piece_bytes).c_str(), r.gbps,
                    r.ratio, r.baseline.c_str(), r.baseline_gbps, target.c_str());
    }
    t += line;
  }
  if (truncated) t += "... more rows in gpu-bench.json\n";
  return t + tail;
}

gpu::Status WriteFileIn(const std::string& dir, const std::string& name,
                        const std::string& content) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return gpu::Internal("cannot create " + dir + ": " + ec.message());
  const std::string path = (std::filesystem::path(dir) / name).string();
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << content;
  f.close();
  if (!f) return gpu::Internal("cannot write " + path);
  return gpu::Status::Ok();
}

}  // namespace strata::bench
