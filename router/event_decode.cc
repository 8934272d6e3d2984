#include "router/event_decode.h"

#include <bit>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/block_key.h"

namespace strata::router {
namespace {

// IndexKeyOf reads the first 8 hash bytes with memcpy; so does the decoder, so on this host both
// give the same key (types.h defines it as little-endian, which is what memcpy gives here).
static_assert(std::endian::native == std::endian::little, "IndexKeyOf assumes little-endian");

absl::StatusOr<Tier> TierOf(strata::v1::Tier t, int index) {
  switch (t) {
    case strata::v1::TIER_HBM:
      return Tier::kHbm;
    case strata::v1::TIER_DRAM:
      return Tier::kDram;
    case strata::v1::TIER_SSD:
      return Tier::kSsd;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("event ", index, ": STORED/REMOVED needs tier HBM, DRAM or SSD, got ",
                       static_cast<int>(t)));
  }
}

}  // namespace

absl::StatusOr<std::vector<IngestEvent>> DecodeEvents(
    const google::protobuf::RepeatedPtrField<strata::v1::BlockEvent>& events,
    const DecodeLimits& limits) {
  if (static_cast<size_t>(events.size()) > limits.max_events) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "batch has ", events.size(), " events; at most ", limits.max_events, " are accepted"));
  }
  constexpr size_t kHash = common::kChainHashBytes;
  // Sizes first: a batch that fails allocates nothing per key.
  size_t total_keys = 0;
  for (int i = 0; i < events.size(); ++i) {
    const strata::v1::BlockEvent& e = events[i];
    if (e.kind() == strata::v1::BlockEvent::CLEARED) continue;
    const size_t bytes = e.chain_hashes().size();
    if (bytes % kHash != 0) {
      return absl::InvalidArgumentError(absl::StrCat("event ", i, ": chain_hashes is ", bytes,
                                                     " bytes, not a multiple of ", kHash));
    }
    total_keys += bytes / kHash;
  }
  if (total_keys > limits.max_keys) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "batch has ", total_keys, " block hashes; at most ", limits.max_keys, " are accepted"));
  }

  std::vector<IngestEvent> out(events.size());
  for (int i = 0; i < events.size(); ++i) {
    const strata::v1::BlockEvent& e = events[i];
    IngestEvent& d = out[i];
    switch (e.kind()) {
      case strata::v1::BlockEvent::STORED:
        d.kind = IngestEvent::Kind::kStored;
        break;
      case strata::v1::BlockEvent::REMOVED:
        d.kind = IngestEvent::Kind::kRemoved;
        break;
      case strata::v1::BlockEvent::CLEARED:
        d.kind = IngestEvent::Kind::kCleared;
        continue;
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("event ", i, ": unknown kind ", static_cast<int>(e.kind())));
    }
    absl::StatusOr<Tier> tier = TierOf(e.tier(), i);
    if (!tier.ok()) return tier.status();
    d.tier = *tier;
    const std::string& raw = e.chain_hashes();
    const size_t n = raw.size() / kHash;
    d.keys.resize(n);
    const common::NamespaceId ns = e.namespace_id();
    for (size_t k = 0; k < n; ++k) {
      uint64_t head;
      std::memcpy(&head, raw.data() + k * kHash, sizeof(head));
      d.keys[k] = head ^ ns;  // IndexKeyOf without a ChainHash copy
    }
  }
  return out;
}

}  // namespace strata::router
