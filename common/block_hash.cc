#include "common/block_hash.h"

#include <openssl/evp.h>

#include <cstring>
#include <memory>

namespace strata::common {
namespace {

// Field tags. Never renumber: hashes are persisted and compared across processes.
enum : uint8_t {
  kTagDomain = 0x01,
  kTagNamespace = 0x02,
  kTagSalt = 0x03,
  kTagParent = 0x04,
  kTagTokens = 0x05,
  kTagExtra = 0x06,
};
constexpr std::string_view kDomain = "strata.block.v1";

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

// SHA-256, fetched from the provider once: an implicit fetch (EVP_sha256() at every init) and a
// fresh context per block cost more than hashing a block of a few hundred tokens.
const EVP_MD* Sha256Md() {
  static const EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

// One digest at a time per thread: a Sha256 lives inside one HashBlock call.
class Sha256 {
 public:
  Sha256() : ctx_(ThreadContext()) { EVP_DigestInit_ex2(ctx_, Sha256Md(), nullptr); }

  void Field(uint8_t tag, const void* data, uint64_t len) {
    uint8_t header[9];
    header[0] = tag;
    for (int i = 0; i < 8; ++i) header[1 + i] = static_cast<uint8_t>(len >> (8 * i));
    EVP_DigestUpdate(ctx_, header, sizeof(header));
    if (len > 0) EVP_DigestUpdate(ctx_, data, len);
  }

  void Tokens(std::span<const uint32_t> tokens) {
    uint8_t header[9];
    header[0] = kTagTokens;
    const uint64_t len = tokens.size() * 4;
    for (int i = 0; i < 8; ++i) header[1 + i] = static_cast<uint8_t>(len >> (8 * i));
    EVP_DigestUpdate(ctx_, header, sizeof(header));
    // Little-endian u32 per token, written explicitly so the result is host-independent.
    uint8_t buf[4 * 256];
    size_t n = 0;
    for (uint32_t t : tokens) {
      for (int i = 0; i < 4; ++i) buf[n++] = static_cast<uint8_t>(t >> (8 * i));
      if (n == sizeof(buf)) {
        EVP_DigestUpdate(ctx_, buf, n);
        n = 0;
      }
    }
    if (n > 0) EVP_DigestUpdate(ctx_, buf, n);
  }

  ChainHash Final() {
    ChainHash out;
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, out.bytes.data(), &len);
    return out;
  }

 private:
  static EVP_MD_CTX* ThreadContext() {
    thread_local const std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
    return ctx.get();
  }

  EVP_MD_CTX* const ctx_;
};

}  // namespace

ChainHash HashBlock(const std::optional<ChainHash>& parent, NamespaceId namespace_id,
                    std::string_view cache_salt, std::span<const uint32_t> tokens,
                    std::string_view extra) {
  Sha256 sha;
  sha.Field(kTagDomain, kDomain.data(), kDomain.size());
  if (parent.has_value()) {
    sha.Field(kTagParent, parent->bytes.data(), parent->bytes.size());
  } else {
    uint8_t ns[8];
    for (int i = 0; i < 8; ++i) ns[i] = static_cast<uint8_t>(namespace_id >> (8 * i));
    sha.Field(kTagNamespace, ns, sizeof(ns));
    sha.Field(kTagSalt, cache_salt.data(), cache_salt.size());
  }
  sha.Tokens(tokens);
  sha.Field(kTagExtra, extra.data(), extra.size());
  return sha.Final();
}

std::vector<ChainHash> HashChain(NamespaceId namespace_id, std::string_view cache_salt,
                                 std::span<const uint32_t> tokens, size_t block_tokens,
                                 std::string_view extra) {
  std::vector<ChainHash> out;
  if (block_tokens == 0) return out;
  std::optional<ChainHash> parent;
  for (size_t start = 0; start + block_tokens <= tokens.size(); start += block_tokens) {
    parent =
        HashBlock(parent, namespace_id, cache_salt, tokens.subspan(start, block_tokens), extra);
    out.push_back(*parent);
  }
  return out;
}

}  // namespace strata::common
