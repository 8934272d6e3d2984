#include "common/block_key.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/string_view_interop.h"

namespace strata::common {

std::string ChainHash::Hex() const { return absl::BytesToHexString(ToAbsl(view())); }

absl::StatusOr<ChainHash> ChainHash::FromBytes(std::string_view raw) {
  if (raw.size() != kChainHashBytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("chain hash must be %d bytes, got %d", kChainHashBytes, raw.size()));
  }
  ChainHash h;
  std::copy(raw.begin(), raw.end(), reinterpret_cast<char*>(h.bytes.data()));
  return h;
}

absl::StatusOr<ChainHash> ChainHash::FromHex(std::string_view hex) {
  if (hex.size() != 2 * kChainHashBytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "chain hash must be %d hex characters, got %d", 2 * kChainHashBytes, hex.size()));
  }
  for (char c : hex) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(
          absl::StrCat("chain hash has a non-hex character '", std::string(1, c), "'"));
    }
  }
  return FromBytes(absl::HexStringToBytes(ToAbsl(hex)));
}

std::string BlockKey::Encode() const {
  std::string out(kEncodedBlockKeyBytes, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((namespace_id >> (56 - 8 * i)) & 0xff);
  std::copy(hash.bytes.begin(), hash.bytes.end(), out.begin() + 8);
  return out;
}

absl::StatusOr<BlockKey> BlockKey::Decode(std::string_view encoded) {
  if (encoded.size() != kEncodedBlockKeyBytes) {
    return absl::InvalidArgumentError(absl::StrFormat("encoded block key must be %d bytes, got %d",
                                                      kEncodedBlockKeyBytes, encoded.size()));
  }
  BlockKey k;
  for (int i = 0; i < 8; ++i) {
    k.namespace_id = (k.namespace_id << 8) | static_cast<uint8_t>(encoded[i]);
  }
  std::copy(encoded.begin() + 8, encoded.end(), reinterpret_cast<char*>(k.hash.bytes.data()));
  return k;
}

std::string BlockKey::DebugString() const {
  return absl::StrFormat("ns:%016x/%s", namespace_id, hash.Hex().substr(0, 16));
}

}  // namespace strata::common
