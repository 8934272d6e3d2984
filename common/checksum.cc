#include "common/checksum.h"

#include <xxhash.h>

namespace strata::common {

uint64_t Checksum(std::span<const std::byte> data) { return XXH3_64bits(data.data(), data.size()); }

uint64_t Checksum(std::string_view data) { return XXH3_64bits(data.data(), data.size()); }

StreamingChecksum::StreamingChecksum() : state_(XXH3_createState()) { Reset(); }

StreamingChecksum::~StreamingChecksum() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }

void StreamingChecksum::Reset() { XXH3_64bits_reset(static_cast<XXH3_state_t*>(state_)); }

void StreamingChecksum::Update(std::span<const std::byte> data) {
  XXH3_64bits_update(static_cast<XXH3_state_t*>(state_), data.data(), data.size());
}

uint64_t StreamingChecksum::Digest() const {
  return XXH3_64bits_digest(static_cast<XXH3_state_t*>(state_));
}

}  // namespace strata::common
