#include "cachenode/tier.h"

namespace strata::cachenode {

std::string_view TierKindName(TierKind kind) {
  switch (kind) {
    case TierKind::kHbm:
      return "hbm";
    case TierKind::kDram:
      return "dram";
    case TierKind::kSsd:
      return "ssd";
  }
  return "unknown";
}

std::vector<absl::Status> Tier::PutBatch(std::span<const BlockInfo> infos,
                                         std::span<const std::span<const std::byte>> payloads) {
  std::vector<absl::Status> out;
  out.reserve(infos.size());
  for (size_t i = 0; i < infos.size(); ++i) out.push_back(Put(infos[i], payloads[i]));
  return out;
}

std::vector<absl::StatusOr<BlockHandle>> Tier::ReadBatch(std::span<const BlockKey> keys) {
  std::vector<absl::StatusOr<BlockHandle>> out;
  out.reserve(keys.size());
  for (const BlockKey& k : keys) out.push_back(Read(k));
  return out;
}

}  // namespace strata::cachenode
