// Fuzzes the chained block hash (common/block_hash.h): token ids -> chained block hashes, the path
// every key in Strata comes from (clients, the router's token routes, vLLM event mapping).
//
// Input: 8 bytes namespace id, 1 byte block_tokens (1..64), 1 byte salt length, 1 byte extra
// length, then the salt and extra bytes, then token ids (4 bytes each, little-endian). Checks:
//   - determinism: the same input gives the same hashes;
//   - one hash per full block, a trailing partial block is not hashed;
//   - prefix property: the hashes of any block-aligned or unaligned prefix of the tokens are a
//     prefix of the hashes of all of them;
//   - HashChain is HashBlock applied along the chain;
//   - the namespace, the salt and the extra all reach the first hash (a different one changes it)
//     and the extra reaches later hashes too.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/block_hash.h"
#include "fuzz/fuzz_check.h"

namespace {

using strata::common::ChainHash;
using strata::common::HashBlock;
using strata::common::HashChain;
using strata::common::NamespaceId;

bool IsPrefix(const std::vector<ChainHash>& head, const std::vector<ChainHash>& all) {
  return head.size() <= all.size() && std::equal(head.begin(), head.end(), all.begin());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 11) return 0;
  NamespaceId ns = 0;
  for (int i = 0; i < 8; ++i) ns |= NamespaceId{data[i]} << (8 * i);
  const size_t block_tokens = 1 + data[8] % 64;
  size_t salt_len = data[9];
  size_t extra_len = data[10];
  size_t pos = 11;
  salt_len = std::min(salt_len, size - pos);
  const std::string salt(reinterpret_cast<const char*>(data) + pos, salt_len);
  pos += salt_len;
  extra_len = std::min(extra_len, size - pos);
  const std::string extra(reinterpret_cast<const char*>(data) + pos, extra_len);
  pos += extra_len;
  std::vector<uint32_t> tokens((size - pos) / 4);
  for (size_t i = 0; i < tokens.size(); ++i) {
    const uint8_t* p = data + pos + 4 * i;
    tokens[i] = uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
  }

  const std::vector<ChainHash> chain = HashChain(ns, salt, tokens, block_tokens, extra);
  FUZZ_CHECK(chain.size() == tokens.size() / block_tokens);
  FUZZ_CHECK(chain == HashChain(ns, salt, tokens, block_tokens, extra));

  // Prefixes: empty, a third, two thirds and all but the last token (aligned or not, by input).
  for (size_t n : {size_t{0}, tokens.size() / 3, 2 * tokens.size() / 3,
                   tokens.empty() ? size_t{0} : tokens.size() - 1}) {
    const std::vector<ChainHash> head =
        HashChain(ns, salt, std::span(tokens).first(n), block_tokens, extra);
    FUZZ_CHECK(head.size() == n / block_tokens);
    FUZZ_CHECK(IsPrefix(head, chain));
  }

  std::optional<ChainHash> parent;
  for (size_t i = 0; i < chain.size(); ++i) {
    parent = HashBlock(parent, ns, salt, std::span(tokens).subspan(i * block_tokens, block_tokens),
                       extra);
    FUZZ_CHECK(*parent == chain[i]);
  }

  if (!chain.empty()) {
    const std::span<const uint32_t> first = std::span(tokens).first(block_tokens);
    FUZZ_CHECK(HashBlock(std::nullopt, ns ^ 1, salt, first, extra) != chain[0]);
    FUZZ_CHECK(HashBlock(std::nullopt, ns, salt + "x", first, extra) != chain[0]);
    FUZZ_CHECK(HashBlock(std::nullopt, ns, salt, first, extra + "x") != chain[0]);
    // A first block never equals a later block over the same tokens (the parent is tagged).
    FUZZ_CHECK(HashBlock(chain[0], ns, salt, first, extra) != chain[0]);
    // The extra is mixed into every block, not only the first (checked on the first two).
    const size_t two = std::min<size_t>(tokens.size(), 2 * block_tokens);
    const std::vector<ChainHash> other =
        HashChain(ns, salt, std::span(tokens).first(two), block_tokens, extra + "x");
    for (size_t i = 0; i < other.size(); ++i) FUZZ_CHECK(other[i] != chain[i]);
  }
  return 0;
}
