#include "bench/trace.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <system_error>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/block_hash.h"
#include "common/string_view_interop.h"
#include "google/protobuf/util/json_util.h"
#include "strata/v1/bench.pb.h"

namespace strata::bench {
namespace {

constexpr int64_t kMaxTokens = std::numeric_limits<uint32_t>::max();

bool IsBlank(std::string_view line) {
  for (char c : line) {
    if (c != ' ' && c != '\t' && c != '\r') return false;
  }
  return true;
}

// Shortest text that parses back to exactly `v` ("1500", "0.1", "1e+21"); JSON accepts all forms.
std::string ShortestDouble(double v) {
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  if (ec != std::errc()) return absl::StrCat(v);  // cannot happen: 64 bytes fit any double
  return std::string(buf, end);
}

// One parsed line, or the reason it is bad (without the "SOURCE:LINE: " prefix).
absl::StatusOr<strata::v1::MooncakeRecord> ParseRecord(std::string_view line,
                                                       uint32_t block_tokens) {
  strata::v1::MooncakeRecord record;
  google::protobuf::util::JsonParseOptions json_options;
  json_options.ignore_unknown_fields = true;
  const auto parsed = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(line.data(), line.size()), &record, json_options);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a Mooncake record: ", std::string(parsed.message())));
  }
  if (!std::isfinite(record.timestamp()) || record.timestamp() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("timestamp ", record.timestamp(), " is not a finite number >= 0"));
  }
  if (record.input_length() < 1 || record.input_length() > kMaxTokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("input_length ", record.input_length(), " is not in [1, ", kMaxTokens, "]"));
  }
  if (record.output_length() < 0 || record.output_length() > kMaxTokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("output_length ", record.output_length(), " is not in [0, ", kMaxTokens, "]"));
  }
  if (record.hash_ids_size() == 0) {
    return absl::InvalidArgumentError("hash_ids is missing or empty");
  }
  for (int i = 0; i < record.hash_ids_size(); ++i) {
    if (record.hash_ids(i) < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("hash_ids[", i, "] is ", record.hash_ids(i), "; ids are >= 0"));
    }
  }
  const uint64_t blocks =
      (static_cast<uint64_t>(record.input_length()) + block_tokens - 1) / block_tokens;
  if (static_cast<uint64_t>(record.hash_ids_size()) != blocks) {
    return absl::InvalidArgumentError(absl::StrCat(
        "hash_ids has ", record.hash_ids_size(), " ids but input_length ", record.input_length(),
        " needs ", blocks, " (", block_tokens, "-token blocks)"));
  }
  return record;
}

}  // namespace

absl::Status TraceOptions::Validate() const {
  if (block_tokens < 1) {
    return absl::InvalidArgumentError("trace options: block_tokens must be >= 1");
  }
  if (!std::isfinite(time_scale) || time_scale <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("trace options: time_scale must be a finite number > 0, got ", time_scale));
  }
  return absl::OkStatus();
}

absl::StatusOr<Trace> ParseTrace(std::string_view text, std::string_view source,
                                 const TraceOptions& options) {
  if (absl::Status valid = options.Validate(); !valid.ok()) return valid;
  Trace trace;
  trace.source = std::string(source);
  trace.block_tokens = options.block_tokens;
  std::optional<double> first_timestamp;
  double previous_timestamp = 0;
  uint32_t line_number = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    if (options.max_requests != 0 && trace.requests.size() >= options.max_requests) break;
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line_number == std::numeric_limits<uint32_t>::max()) {
      return absl::InvalidArgumentError(
          common::Concat(source, ": the trace has more than ", line_number, " lines"));
    }
    ++line_number;
    if (line.size() > kMaxTraceLineBytes) {
      return absl::InvalidArgumentError(common::Concat(source, ":", line_number, ": line of ",
                                                       line.size(), " bytes; at most ",
                                                       kMaxTraceLineBytes, " accepted"));
    }
    if (IsBlank(line)) continue;

    auto record = ParseRecord(line, options.block_tokens);
    if (!record.ok()) {
      return absl::InvalidArgumentError(
          common::Concat(source, ":", line_number, ": ", record.status().message()));
    }
    const double timestamp = record->timestamp();
    if (first_timestamp.has_value() && timestamp < previous_timestamp) {
      return absl::InvalidArgumentError(
          common::Concat(source, ":", line_number, ": timestamp ", timestamp,
                         " goes backwards (the previous request's is ", previous_timestamp, ")"));
    }
    if (!first_timestamp.has_value()) first_timestamp = timestamp;
    previous_timestamp = timestamp;

    TraceRequest request;
    request.index = static_cast<uint32_t>(trace.requests.size());
    request.line = line_number;
    request.arrival_ms = (timestamp - *first_timestamp) * options.time_scale;
    // A time_scale > 1 can push a finite timestamp past the largest double; replay and FormatTrace
    // need finite arrivals.
    if (!std::isfinite(request.arrival_ms)) {
      return absl::InvalidArgumentError(
          common::Concat(source, ":", line_number, ": timestamp ", timestamp, " x time_scale ",
                         options.time_scale, " is not a finite number of ms"));
    }
    request.input_tokens = static_cast<uint32_t>(record->input_length());
    request.output_tokens = static_cast<uint32_t>(record->output_length());
    request.hash_ids.assign(record->hash_ids().begin(), record->hash_ids().end());
    trace.requests.push_back(std::move(request));
  }
  if (trace.requests.empty()) {
    return absl::InvalidArgumentError(common::Concat(source, ": the trace has no requests"));
  }
  return trace;
}

absl::StatusOr<Trace> LoadTrace(const std::string& path, const TraceOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("trace ", path, " cannot be opened: ", std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return absl::DataLossError(absl::StrCat("trace ", path, " cannot be read"));
  }
  return ParseTrace(text.str(), std::filesystem::path(path).filename().string(), options);
}

std::vector<common::ChainHash> ChainOf(const TraceRequest& request, common::NamespaceId ns) {
  std::vector<common::ChainHash> chain;
  chain.reserve(request.hash_ids.size());
  std::optional<common::ChainHash> parent;
  for (uint64_t id : request.hash_ids) {
    const uint32_t words[2] = {static_cast<uint32_t>(id), static_cast<uint32_t>(id >> 32)};
    parent = common::HashBlock(parent, ns, "", words);
    chain.push_back(*parent);
  }
  return chain;
}

double IdealHitRatio(const Trace& trace) {
  absl::flat_hash_set<common::ChainHash> seen;
  uint64_t blocks = 0;
  uint64_t hits = 0;
  for (const TraceRequest& request : trace.requests) {
    for (const common::ChainHash& key : ChainOf(request, /*ns=*/0)) {
      ++blocks;
      if (!seen.insert(key).second) ++hits;
    }
  }
  return blocks == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(blocks);
}

std::string FormatTrace(const std::vector<TraceRequest>& requests) {
  std::string out;
  for (const TraceRequest& request : requests) {
    absl::StrAppend(&out, "{\"timestamp\": ", ShortestDouble(request.arrival_ms),
                    ", \"input_length\": ", request.input_tokens,
                    ", \"output_length\": ", request.output_tokens, ", \"hash_ids\": [");
    for (size_t i = 0; i < request.hash_ids.size(); ++i) {
      absl::StrAppend(&out, i == 0 ? "" : ", ", request.hash_ids[i]);
    }
    out += "]}\n";
  }
  return out;
}

}  // namespace strata::bench
