#include "bench/engine_params.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "bench/embedded_models.h"
#include "common/status_macros.h"
#include "google/protobuf/util/json_util.h"
#include "strata/v1/bench.pb.h"

namespace strata::bench {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

uint64_t EngineParams::HbmKvBytes() const {
  const double usable = static_cast<double>(gpu_memory_bytes) * memory_utilization;
  return usable > static_cast<double>(weights_bytes)
             ? static_cast<uint64_t>(usable - static_cast<double>(weights_bytes))
             : 0;
}

double EngineParams::DecodeMs(uint32_t sequences, uint64_t context_tokens,
                              bool with_prefill) const {
  if (sequences == 0) return 0;
  return (with_prefill ? 0.0 : decode_d0_ms) + decode_seq_ms * sequences +
         decode_ctx_ms * static_cast<double>(context_tokens);
}

absl::Status EngineParams::Validate() const {
  STRATA_RETURN_IF_ERROR(cost.params().Validate());
  if (gpu_memory_bytes == 0) return absl::InvalidArgumentError("gpu_memory_bytes must be > 0");
  if (!(memory_utilization > 0 && memory_utilization <= 1)) {
    return absl::InvalidArgumentError("memory_utilization must be in (0, 1]");
  }
  if (HbmKvBytes() < cost.params().kv_bytes_per_token * 1024) {
    return absl::InvalidArgumentError("the weights leave less than 1024 tokens of KV cache");
  }
  if (max_batched_tokens == 0) return absl::InvalidArgumentError("max_batched_tokens must be > 0");
  if (max_running_requests == 0) {
    return absl::InvalidArgumentError("max_running_requests must be > 0");
  }
  if (!(default_ssd_gbps > 0)) return absl::InvalidArgumentError("ssd_read_gbps must be > 0");
  if (decode_d0_ms < 0 || decode_seq_ms < 0 || decode_ctx_ms < 0) {
    return absl::InvalidArgumentError("decode coefficients must be >= 0");
  }
  return absl::OkStatus();
}

absl::StatusOr<EngineParams> ParseEngineParams(std::string_view engine_json,
                                               std::string_view cost_model_json) {
  strata::v1::EngineModelConfig config;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto parsed = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(engine_json.data(), engine_json.size()), &config, options);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("engine model: bad JSON: ", std::string(parsed.message())));
  }
  STRATA_ASSIGN_OR_RETURN(router::CostModel cost, router::CostModel::FromJson(cost_model_json));
  EngineParams p;
  p.source = absl::StrCat(config.source(), "; ", cost.params().source);
  p.cost = std::move(cost);
  p.gpu_memory_bytes = static_cast<uint64_t>(config.gpu_memory_bytes().value());
  p.weights_bytes = static_cast<uint64_t>(config.weights_bytes().value());
  p.memory_utilization = config.memory_utilization().value();
  p.max_batched_tokens = static_cast<uint32_t>(config.max_batched_tokens().value());
  p.max_running_requests = static_cast<uint32_t>(config.max_running_requests().value());
  p.default_ssd_gbps = config.ssd_read_gbps().value();
  p.decode_d0_ms = config.decode().d0_ms().value();
  p.decode_seq_ms = config.decode().d_seq_ms().value();
  p.decode_ctx_ms = config.decode().d_ctx_ms().value();
  STRATA_RETURN_IF_ERROR(p.Validate());
  return p;
}

absl::StatusOr<EngineParams> LoadEngineParams(const std::string& engine_file,
                                              const std::string& cost_model_file) {
  std::string engine(kEmbeddedEngineModelJson);
  std::string cost(kEmbeddedCostModelJson);
  if (!engine_file.empty()) {
    absl::StatusOr<std::string> text = ReadFile(engine_file);
    if (!text.ok()) return text.status();
    engine = *std::move(text);
  }
  if (!cost_model_file.empty()) {
    absl::StatusOr<std::string> text = ReadFile(cost_model_file);
    if (!text.ok()) return text.status();
    cost = *std::move(text);
  }
  return ParseEngineParams(engine, cost);
}

}  // namespace strata::bench
