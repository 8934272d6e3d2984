#include "bench/report.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/byte_size.h"
#include "common/json_text.h"

namespace strata::bench {
namespace {

std::string Fixed(double v, int digits) { return absl::StrFormat("%.*f", digits, v); }

std::string JsonNumber(double v) {
  // JSON has no NaN/Inf; a row never should either, but do not emit invalid JSON if one does.
  if (!std::isfinite(v)) return "null";
  return absl::StrFormat("%.4f", v);
}

}  // namespace

std::optional<double> RatioOf(const Row& row) {
  if (row.ratio_override.has_value()) return row.ratio_override;
  if (row.baseline.empty() || row.baseline_gbps <= 0) return std::nullopt;
  return row.gbps / row.baseline_gbps;
}

std::optional<bool> TargetMet(const Row& row) {
  if (!row.target.has_value()) return std::nullopt;
  const Target& t = *row.target;
  const std::optional<double> ratio = RatioOf(row);
  bool met = true;
  if (t.min_ratio.has_value()) met = met && ratio.has_value() && *ratio >= *t.min_ratio;
  if (t.max_ratio.has_value()) met = met && ratio.has_value() && *ratio <= *t.max_ratio;
  if (t.max_amplification.has_value()) {
    met = met && row.amplification.has_value() && *row.amplification <= *t.max_amplification;
  }
  return met;
}

std::string DescribeTarget(const Target& target) {
  std::vector<std::string> parts;
  if (target.min_ratio.has_value())
    parts.push_back(absl::StrCat("ratio>=", Fixed(*target.min_ratio, 2)));
  if (target.max_ratio.has_value())
    parts.push_back(absl::StrCat("ratio<=", Fixed(*target.max_ratio, 2)));
  if (target.max_amplification.has_value()) {
    parts.push_back(absl::StrCat("amp<=", Fixed(*target.max_amplification, 2)));
  }
  return absl::StrJoin(parts, " ");
}

std::string FormatTable(const std::vector<Row>& rows) {
  const std::vector<std::string> header = {"path", "op",    "block", "GB/s",   "cpu", "baseline",
                                           "GB/s", "ratio", "amp",   "target", "met", "note"};
  std::vector<std::vector<std::string>> cells;
  cells.push_back(header);
  for (const Row& r : rows) {
    const std::optional<double> ratio = RatioOf(r);
    const std::optional<bool> met = TargetMet(r);
    std::string gbps = r.gbps > 0 ? Fixed(r.gbps, 2) : "-";
    if (r.rss_bytes.has_value()) gbps = absl::StrCat("rss ", common::FormatByteSize(*r.rss_bytes));
    cells.push_back({
        r.path,
        r.op,
        r.block_bytes > 0 ? common::FormatByteSize(r.block_bytes) : "-",
        gbps,
        r.cpu_cores.has_value() ? Fixed(*r.cpu_cores, 2) : "-",
        r.baseline.empty() ? "-" : r.baseline,
        r.baseline.empty() || r.baseline_gbps <= 0 ? "-" : Fixed(r.baseline_gbps, 2),
        ratio.has_value() ? absl::StrCat(Fixed(*ratio, 2), "x") : "-",
        r.amplification.has_value() ? Fixed(*r.amplification, 3) : "-",
        r.target.has_value() ? DescribeTarget(*r.target) : "-",
        met.has_value() ? (*met ? "yes" : "NO") : "-",
        r.note.empty() ? "" : r.note,
    });
  }
  std::vector<size_t> width(header.size(), 0);
  for (const auto& line : cells) {
    for (size_t i = 0; i < line.size(); ++i) width[i] = std::max(width[i], line[i].size());
  }
  std::string out;
  for (const auto& line : cells) {
    std::string text;
    for (size_t i = 0; i < line.size(); ++i) {
      if (i > 0) text += "  ";
      text += line[i];
      if (i + 1 < line.size()) text.append(width[i] - line[i].size(), ' ');
    }
    // The last column is ragged; do not leave trailing blanks when it is empty.
    while (!text.empty() && text.back() == ' ') text.pop_back();
    absl::StrAppend(&out, text, "\n");
  }
  return out;
}

std::string FormatJsonLines(const std::vector<Row>& rows) {
  std::string out;
  for (const Row& r : rows) {
    const std::optional<double> ratio = RatioOf(r);
    std::vector<std::string> fields = {
        absl::StrCat("\"path\":", common::JsonQuote(r.path)),
        absl::StrCat("\"op\":", common::JsonQuote(r.op)),
        absl::StrCat("\"block_bytes\":", r.block_bytes),
        // A resident-memory row moves no bytes: its gbps fields are null, not 0.
        absl::StrCat("\"gbps\":", r.rss_bytes.has_value() ? "null" : JsonNumber(r.gbps)),
        absl::StrCat("\"baseline\":", r.baseline.empty() ? "null" : common::JsonQuote(r.baseline)),
        absl::StrCat("\"baseline_gbps\":", r.baseline.empty() || r.baseline_gbps <= 0
                                               ? "null"
                                               : JsonNumber(r.baseline_gbps)),
        absl::StrCat("\"ratio\":", ratio.has_value() ? JsonNumber(*ratio) : "null"),
    };
    if (r.cpu_cores.has_value()) {
      fields.push_back(absl::StrCat("\"cpu_cores\":", JsonNumber(*r.cpu_cores)));
    }
    if (r.amplification.has_value()) {
      fields.push_back(absl::StrCat("\"amplification\":", JsonNumber(*r.amplification)));
    }
    if (r.rss_bytes.has_value()) fields.push_back(absl::StrCat("\"rss_bytes\":", *r.rss_bytes));
    if (r.target.has_value()) {
      fields.push_back(absl::StrCat("\"target\":", common::JsonQuote(DescribeTarget(*r.target))));
      fields.push_back(absl::StrCat("\"target_met\":", *TargetMet(r) ? "true" : "false"));
    }
    if (!r.note.empty()) fields.push_back(absl::StrCat("\"note\":", common::JsonQuote(r.note)));
    absl::StrAppend(&out, "{", absl::StrJoin(fields, ","), "}\n");
  }
  return out;
}

}  // namespace strata::bench
