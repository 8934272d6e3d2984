#include "router/cost_model.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/string_view_interop.h"
#include "google/protobuf/util/json_util.h"
#include "strata/v1/cost_model.pb.h"

namespace strata::router {
namespace {

// Milliseconds to move `bytes` at `gbps` (1e9 bytes/s).
double TransferMs(double bytes, double gbps) { return bytes / (gbps * 1e6); }

// An SSD block is read into host memory and then takes the DRAM path into HBM. The two stages are
// added (no overlap assumed): conservative by at most the faster stage's share, about 2% here.
double SerialGbps(double first_gbps, double second_gbps) {
  return 1.0 / (1.0 / first_gbps + 1.0 / second_gbps);
}

bool PositiveFinite(double v) { return std::isfinite(v) && v > 0; }
bool NonNegativeFinite(double v) { return std::isfinite(v) && v >= 0; }

absl::Status Bad(std::string_view field, std::string_view what, double value) {
  return absl::InvalidArgumentError(
      common::Concat("cost model: ", field, " must be ", what, ", got ", value));
}

// The figures of router/cost_model_h100_llama3_8b.json, compiled in for CostModel::Default(). The
// JSON file says where each comes from; cost_model_test checks the two agree exactly.
constexpr char kDefaultSource[] =
    "calibration/h100-llama3-8b.json (shared calibration set; DESIGN section 9)";
constexpr uint64_t kDefaultKvBytesPerToken = 131072;  // Llama-3-8B: 32 x 8 x 128 x 2 x 2 bytes
constexpr uint32_t kDefaultBlockTokens = 16;          // vLLM page size
constexpr double kDefaultDramGbps = 50.83;            // H100 scatter-kernel onload, 32 KiB pieces
constexpr double kDefaultSsdReadGbps = 1.089;         // dev VM fio 2 MiB direct random read
constexpr double kDefaultPeerGbps = 12.5;             // assumption: 100 Gb/s RDMA-class NIC
constexpr double kDefaultPeerRttMs = 0.05;            // assumption
constexpr double kDefaultPerRequestQueueMs = 0.457;   // H100 mixed_step decode share per request
// Least-squares fit to the 8 prefill rows (router/fit_cost_model.py).
constexpr double kDefaultPrefillT0Ms = 10.501245193519534;
constexpr double kDefaultPrefillAMs = 0.016975873768700658;
constexpr double kDefaultPrefillBMs = 2.987531880369537e-06;
constexpr double kDefaultPrefillGMs = 5.966824534505559e-07;

// A figure that must be a whole number in [1, max].
absl::StatusOr<uint64_t> WholeFigure(const strata::v1::CalibratedFigure& f, std::string_view field,
                                     double max) {
  const double v = f.value();
  if (!(v >= 1 && v <= max) || std::floor(v) != v) {
    return Bad(field, absl::StrCat("a whole number in [1, ", max, "]"), v);
  }
  return static_cast<uint64_t>(v);
}

absl::StatusOr<CostModelParams> ParamsFromConfig(const strata::v1::CostModelConfig& c) {
  struct Required {
    bool present;
    const char* field;
  };
  const Required required[] = {
      {c.has_kv_bytes_per_token(), "kv_bytes_per_token"},
      {c.has_block_tokens(), "block_tokens"},
      {c.has_dram_gbps(), "dram_gbps"},
      {c.has_ssd_read_gbps(), "ssd_read_gbps"},
      {c.has_peer_gbps(), "peer_gbps"},
      {c.has_peer_rtt_ms(), "peer_rtt_ms"},
      {c.has_per_request_queue_ms(), "per_request_queue_ms"},
      {c.has_prefill(), "prefill"},
      {c.prefill().has_t0_ms(), "prefill.t0_ms"},
      {c.prefill().has_a_ms(), "prefill.a_ms"},
      {c.prefill().has_b_ms(), "prefill.b_ms"},
      {c.prefill().has_g_ms(), "prefill.g_ms"},
  };
  for (const Required& r : required) {
    if (!r.present) {
      return absl::InvalidArgumentError(absl::StrCat("cost model: missing ", r.field));
    }
  }
  CostModelParams p;
  p.source = c.source();
  STRATA_ASSIGN_OR_RETURN(p.kv_bytes_per_token,
                          WholeFigure(c.kv_bytes_per_token(), "kv_bytes_per_token", 1e12));
  STRATA_ASSIGN_OR_RETURN(const uint64_t block_tokens,
                          WholeFigure(c.block_tokens(), "block_tokens", 1 << 20));
  p.block_tokens = static_cast<uint32_t>(block_tokens);
  p.dram_gbps = c.dram_gbps().value();
  if (!PositiveFinite(c.ssd_read_gbps().value())) {
    return Bad("ssd_read_gbps", "a finite number > 0", c.ssd_read_gbps().value());
  }
  if (!PositiveFinite(p.dram_gbps)) return Bad("dram_gbps", "a finite number > 0", p.dram_gbps);
  p.ssd_gbps = SerialGbps(c.ssd_read_gbps().value(), p.dram_gbps);
  p.peer_gbps = c.peer_gbps().value();
  p.peer_rtt_ms = c.peer_rtt_ms().value();
  p.per_request_queue_ms = c.per_request_queue_ms().value();
  p.prefill_t0_ms = c.prefill().t0_ms().value();
  p.prefill_a_ms = c.prefill().a_ms().value();
  p.prefill_b_ms = c.prefill().b_ms().value();
  p.prefill_g_ms = c.prefill().g_ms().value();
  STRATA_RETURN_IF_ERROR(p.Validate());
  return p;
}

}  // namespace

absl::Status CostModelParams::Validate() const {
  if (kv_bytes_per_token == 0) return Bad("kv_bytes_per_token", "> 0", 0);
  if (block_tokens == 0) return Bad("block_tokens", "> 0", 0);
  if (!PositiveFinite(dram_gbps)) return Bad("dram_gbps", "a finite number > 0", dram_gbps);
  if (!PositiveFinite(ssd_gbps)) return Bad("ssd_gbps", "a finite number > 0", ssd_gbps);
  if (!PositiveFinite(peer_gbps)) return Bad("peer_gbps", "a finite number > 0", peer_gbps);
  if (!NonNegativeFinite(peer_rtt_ms))
    return Bad("peer_rtt_ms", "a finite number >= 0", peer_rtt_ms);
  if (!NonNegativeFinite(prefill_t0_ms)) {
    return Bad("prefill_t0_ms", "a finite number >= 0", prefill_t0_ms);
  }
  // a prices the prefill tokens already in flight, so it must be positive.
  if (!PositiveFinite(prefill_a_ms))
    return Bad("prefill_a_ms", "a finite number > 0", prefill_a_ms);
  if (!NonNegativeFinite(prefill_b_ms)) {
    return Bad("prefill_b_ms", "a finite number >= 0", prefill_b_ms);
  }
  if (!NonNegativeFinite(prefill_g_ms)) {
    return Bad("prefill_g_ms", "a finite number >= 0", prefill_g_ms);
  }
  if (!NonNegativeFinite(per_request_queue_ms)) {
    return Bad("per_request_queue_ms", "a finite number >= 0", per_request_queue_ms);
  }
  return absl::OkStatus();
}

absl::StatusOr<CostModel> CostModel::FromJson(std::string_view json) {
  strata::v1::CostModelConfig config;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto parsed = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &config, options);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cost model: bad JSON: ", std::string(parsed.message())));
  }
  STRATA_ASSIGN_OR_RETURN(CostModelParams params, ParamsFromConfig(config));
  return CostModel(std::move(params));
}

absl::StatusOr<CostModel> CostModel::FromJsonFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    if (err == ENOENT)
      return absl::NotFoundError(absl::StrCat("cost model file not found: ", path));
    return absl::FailedPreconditionError(
        absl::StrCat("cost model file ", path, " cannot be read: ", std::strerror(err)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  auto model = FromJson(text.str());
  if (!model.ok()) {
    return absl::Status(model.status().code(), absl::StrCat(path, ": ", model.status().message()));
  }
  return model;
}

CostModel CostModel::Default() {
  CostModelParams p;
  p.source = kDefaultSource;
  p.kv_bytes_per_token = kDefaultKvBytesPerToken;
  p.block_tokens = kDefaultBlockTokens;
  p.dram_gbps = kDefaultDramGbps;
  p.ssd_gbps = SerialGbps(kDefaultSsdReadGbps, kDefaultDramGbps);
  p.peer_gbps = kDefaultPeerGbps;
  p.peer_rtt_ms = kDefaultPeerRttMs;
  p.prefill_t0_ms = kDefaultPrefillT0Ms;
  p.prefill_a_ms = kDefaultPrefillAMs;
  p.prefill_b_ms = kDefaultPrefillBMs;
  p.prefill_g_ms = kDefaultPrefillGMs;
  p.per_request_queue_ms = kDefaultPerRequestQueueMs;
  return CostModel(std::move(p));
}

double CostModel::PrefillMs(uint64_t cached_tokens, uint64_t new_tokens) const {
  if (new_tokens == 0) return 0;
  const double c = static_cast<double>(cached_tokens);
  const double n = static_cast<double>(new_tokens);
  const double with_cache = params_.prefill_t0_ms + params_.prefill_a_ms * n +
                            params_.prefill_b_ms * n * c + params_.prefill_g_ms * n * n;
  // Computing the cached prefix as well is always possible, so its cost bounds the surface from
  // above. The bound is the minimum over every usable prefix length: t(c', c + n - c') is concave
  // in c' when b > g and decreasing otherwise, so its minimum on [0, c] lies at an end.
  const double all = c + n;
  const double from_scratch =
      params_.prefill_t0_ms + params_.prefill_a_ms * all + params_.prefill_g_ms * all * all;
  return std::min(with_cache, from_scratch);
}

double CostModel::QueueMs(const NodeLoad& load) const {
  return params_.per_request_queue_ms *
             static_cast<double>(uint64_t{load.queued_requests} + load.running_requests) +
         params_.prefill_a_ms * static_cast<double>(load.prefill_tokens_in_flight);
}

CostBreakdown CostModel::Predict(const CostInput& in) const {
  const uint64_t block_tokens = in.block_tokens != 0 ? in.block_tokens : params_.block_tokens;
  const double block_bytes = static_cast<double>(block_tokens * params_.kv_bytes_per_token);
  const uint64_t prompt_tokens =
      in.prompt_tokens != 0 ? in.prompt_tokens : uint64_t{in.total_blocks} * block_tokens;
  // Engines compute at least the last prompt token themselves (vLLM caps a hit at prompt - 1).
  const uint64_t max_cached = prompt_tokens > 0 ? prompt_tokens - 1 : 0;
  const auto clamp_blocks = [&](uint32_t matched) {
    return in.total_blocks != 0 ? std::min(matched, in.total_blocks) : matched;
  };
  const auto cached_tokens = [&](uint32_t blocks) {
    return std::min<uint64_t>(uint64_t{blocks} * block_tokens, max_cached);
  };
  const double ms_per_block[kNumTiers] = {0, TransferMs(block_bytes, params_.dram_gbps),
                                          TransferMs(block_bytes, params_.ssd_gbps)};

  CostBreakdown out;
  out.queue_ms = QueueMs(in.load);
  for (Tier t : kAllTiers) {
    const int i = static_cast<int>(t);
    out.load_ms += in.match.per_tier[i] * ms_per_block[i];
  }
  const uint32_t own = clamp_blocks(in.match.matched);
  out.cached_blocks = own;
  const uint64_t own_cached = cached_tokens(own);
  out.recompute_ms = PrefillMs(own_cached, prompt_tokens - own_cached);

  // Peer fetch: the blocks a longer holder has beyond this node's match, over the network, plus the
  // source's read of them. Which of a holder's tiers those tail blocks sit in is not known;
  // eviction demotes a chain's tail first (DESIGN section 4), so they are charged to its slowest
  // tiers first.
  for (const NodeMatch& h : in.holders) {
    if (h.node == in.match.node) continue;
    const uint32_t theirs = clamp_blocks(h.matched);
    if (theirs <= own) {
      if (in.holders_longest_first) break;
      continue;
    }
    const uint32_t fetched = theirs - own;
    double source_ms = 0;
    uint32_t left = fetched;
    for (int i = kNumTiers - 1; i >= 0 && left > 0; --i) {
      const uint32_t take = std::min(left, h.per_tier[i]);
      source_ms += take * ms_per_block[i];
      left -= take;
    }
    source_ms += left * ms_per_block[static_cast<int>(h.slowest)];  // per_tier short of matched
    const double peer_ms =
        params_.peer_rtt_ms + TransferMs(fetched * block_bytes, params_.peer_gbps) + source_ms;
    const uint64_t cached = cached_tokens(theirs);
    const double recompute_ms = PrefillMs(cached, prompt_tokens - cached);
    if (peer_ms + recompute_ms < out.peer_ms + out.recompute_ms) {
      out.peer_ms = peer_ms;
      out.recompute_ms = recompute_ms;
      out.peer_blocks = fetched;
      out.peer = h.node;
    }
  }
  // Using a hit is a choice: when loading it is slower than recomputing (a shallow prefix on SSD),
  // the node is better off ignoring it, so a hit never predicts worse than a cold start.
  const double cold_ms = PrefillMs(0, prompt_tokens);
  if (cold_ms < out.load_ms + out.peer_ms + out.recompute_ms) {
    out.load_ms = 0;
    out.peer_ms = 0;
    out.recompute_ms = cold_ms;
    out.cached_blocks = 0;
    out.peer_blocks = 0;
    out.peer = kNoSlot;
  }
  out.total_ms = out.queue_ms + out.load_ms + out.peer_ms + out.recompute_ms;
  return out;
}

}  // namespace strata::router
