// Test-only msgpack builders for vLLM KV event payloads, shared by the vLLM decoder, mapper and
// subscriber tests: they write exactly what vLLM (or a broken producer) would send.
#pragma once

#include <cstdint>
#include <functional>
#include <msgpack.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "common/block_hash.h"
#include "common/namespace_id.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "router/vllm_events.h"

namespace strata::router::vllm_testing {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAreArray;

constexpr char kNamespace[] = "llama3-8b/bf16/vllm-flash/tp0/b4";
constexpr uint32_t kBlock = 4;

// ---- msgpack payload builders -------------------------------------------------------------

// Packs test payloads field by field, so a test can write exactly what vLLM (or a broken
// producer) would send.
class Pack {
 public:
  Pack() : pk_(buf_) {}
  Pack& Array(uint32_t n) { return pk_.pack_array(n), *this; }
  Pack& Map(uint32_t n) { return pk_.pack_map(n), *this; }
  Pack& Str(std::string_view s) {
    pk_.pack_str(static_cast<uint32_t>(s.size()));
    pk_.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
    return *this;
  }
  Pack& Bin(std::string_view s) {
    pk_.pack_bin(static_cast<uint32_t>(s.size()));
    pk_.pack_bin_body(s.data(), static_cast<uint32_t>(s.size()));
    return *this;
  }
  Pack& Uint(uint64_t v) { return pk_.pack_uint64(v), *this; }
  Pack& Int(int64_t v) { return pk_.pack_int64(v), *this; }
  Pack& Double(double v) { return pk_.pack_double(v), *this; }
  Pack& Nil() { return pk_.pack_nil(), *this; }
  Pack& Uints(const std::vector<uint64_t>& v) {
    Array(static_cast<uint32_t>(v.size()));
    for (uint64_t x : v) Uint(x);
    return *this;
  }
  Pack& OptUint(std::optional<uint64_t> v) { return v ? Uint(*v) : Nil(); }
  Pack& OptStr(std::optional<std::string_view> v) { return v ? Str(*v) : Nil(); }
  std::string Take() const { return std::string(buf_.data(), buf_.size()); }

 private:
  msgpack::sbuffer buf_;
  msgpack::packer<msgpack::sbuffer> pk_;
};

using EventWriter = std::function<void(Pack&)>;

// vLLM's KVEventBatch: [ts, events, data_parallel_rank].
inline std::string Batch(const std::vector<EventWriter>& events) {
  Pack p;
  p.Array(3).Double(1.5).Array(static_cast<uint32_t>(events.size()));
  for (const EventWriter& e : events) e(p);
  p.Uint(0);
  return p.Take();
}

struct StoredSpec {
  std::vector<uint64_t> hashes = {};
  std::optional<uint64_t> parent = std::nullopt;
  std::vector<uint64_t> tokens = {};
  uint32_t block_size = kBlock;
  std::optional<uint64_t> lora_id = std::nullopt;
  std::optional<std::string> medium = "GPU";
};

// BlockStored as an array-like tagged struct, fields in vLLM's declaration order.
inline EventWriter Stored(StoredSpec s) {
  return [s](Pack& p) {
    p.Array(7).Str("BlockStored").Uints(s.hashes).OptUint(s.parent).Uints(s.tokens);
    p.Uint(s.block_size).OptUint(s.lora_id).OptStr(s.medium);
  };
}

inline EventWriter Removed(std::vector<uint64_t> hashes,
                           std::optional<std::string> medium = "GPU") {
  return [hashes, medium](Pack& p) { p.Array(3).Str("BlockRemoved").Uints(hashes).OptStr(medium); };
}

inline EventWriter Cleared() {
  return [](Pack& p) { p.Array(1).Str("AllBlocksCleared"); };
}

inline std::vector<uint64_t> Tokens(uint64_t first, size_t n) {
  std::vector<uint64_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = first + i;
  return out;
}

inline std::vector<uint32_t> As32(const std::vector<uint64_t>& v) { return {v.begin(), v.end()}; }

inline common::NamespaceId Ns() { return common::NamespaceIdOf(kNamespace); }

// The index keys Strata's own clients compute for these tokens.
inline std::vector<IndexKey> StrataKeys(const std::vector<uint64_t>& tokens,
                                        std::string_view extra = {}) {
  std::vector<IndexKey> out;
  for (const common::ChainHash& h : common::HashChain(Ns(), "", As32(tokens), kBlock, extra)) {
    out.push_back(IndexKeyOf(Ns(), h));
  }
  return out;
}

inline std::vector<IndexKey> Slice(const std::vector<IndexKey>& v, size_t from, size_t to) {
  return {v.begin() + from, v.begin() + to};
}

inline std::string Be8(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) out[i] = static_cast<char>(v & 0xff);
  return out;
}

inline VllmBatch DecodeOrDie(const std::string& payload) {
  absl::StatusOr<VllmBatch> b = DecodeVllmBatch(payload);
  EXPECT_TRUE(b.ok()) << b.status();
  return b.ok() ? *std::move(b) : VllmBatch{};
}
// An index event of `kind` in `tier` with exactly `keys` (in any order).
MATCHER_P3(IndexEventIs, kind, tier, keys, "") {
  return arg.kind == kind && arg.tier == tier &&
         std::multiset<IndexKey>(arg.keys.begin(), arg.keys.end()) ==
             std::multiset<IndexKey>(keys.begin(), keys.end());
}

}  // namespace strata::router::vllm_testing
