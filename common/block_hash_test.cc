#include "common/block_hash.h"

#include <numeric>
#include <vector>

#include "common/namespace_id.h"
#include "gtest/gtest.h"

namespace strata::common {
namespace {

std::vector<uint32_t> Range(uint32_t from, uint32_t to) {
  std::vector<uint32_t> v(to - from);
  std::iota(v.begin(), v.end(), from);
  return v;
}

// Vectors computed independently of this code (Python hashlib over the documented field encoding);
// they pin the hash so persisted keys stay readable across releases.
TEST(BlockHashTest, MatchesFixedVectors) {
  const NamespaceId ns = NamespaceIdOf("llama3-8b/bf16/b16");
  ASSERT_EQ(ns, 0x66c8964c8f3c98d7ull);
  const ChainHash h0 = HashBlock(std::nullopt, ns, "", Range(0, 16));
  EXPECT_EQ(h0.Hex(), "0023b13da0cfd8651facb5e55121fd5b3bd8a9a8ad1f39866ed4d80552cdd455");
  const ChainHash h1 = HashBlock(h0, ns, "", Range(16, 32));
  EXPECT_EQ(h1.Hex(), "215cbf9c10166712c43847df92dd2ca2bdd7bb8ccdbb5d8cd6c782736e77feed");
  EXPECT_EQ(HashBlock(std::nullopt, ns, "tenant-a", Range(0, 16)).Hex(),
            "e7452098af3c286c388caeeff9b7739e6456bd33641be0b4a9318de455c63dd5");
  EXPECT_EQ(HashBlock(std::nullopt, ns, "", Range(0, 16), "lora:7").Hex(),
            "18cd9f732ed51315170d40d49540fa74aba6a37ad8e35a2e2e825284307e464b");
}

TEST(BlockHashTest, HashChainEqualsBlockByBlockAndDropsPartialTail) {
  const NamespaceId ns = NamespaceIdOf("llama3-8b/bf16/b16");
  const auto tokens = Range(0, 40);  // two full blocks of 16, 8 left over
  const auto chain = HashChain(ns, "", tokens, 16);
  ASSERT_EQ(chain.size(), 2u);
  EXPECT_EQ(chain[0].Hex(), "0023b13da0cfd8651facb5e55121fd5b3bd8a9a8ad1f39866ed4d80552cdd455");
  EXPECT_EQ(chain[1].Hex(), "215cbf9c10166712c43847df92dd2ca2bdd7bb8ccdbb5d8cd6c782736e77feed");
}

TEST(BlockHashTest, SaltAndNamespaceSeparateTenantsAndModels) {
  const auto tokens = Range(0, 16);
  const ChainHash a = HashBlock(std::nullopt, 1, "tenant-a", tokens);
  const ChainHash b = HashBlock(std::nullopt, 1, "tenant-b", tokens);
  const ChainHash c = HashBlock(std::nullopt, 2, "tenant-a", tokens);
  EXPECT_NE(a, b);
  EXPECT_NE(a, c);
}

TEST(BlockHashTest, LengthPrefixesPreventFieldShifting) {
  // Moving a token from one block's tokens into the salt must not give the same hash.
  const ChainHash a = HashBlock(std::nullopt, 1, "", std::vector<uint32_t>{0x41414141u});
  const ChainHash b = HashBlock(std::nullopt, 1, "AAAA", std::vector<uint32_t>{});
  EXPECT_NE(a, b);
}

TEST(ChainHashTest, HexRoundTripsAndRejectsBadInput) {
  const ChainHash h = HashBlock(std::nullopt, 7, "", Range(0, 4));
  auto parsed = ChainHash::FromHex(h.Hex());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, h);
  EXPECT_EQ(ChainHash::FromHex("abcd").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ChainHash::FromHex(std::string(64, 'g')).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ChainHash::FromBytes(std::string(31, 'x')).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(BlockKeyTest, EncodeDecodeRoundTripsAndSortsByNamespace) {
  BlockKey k{0x0102030405060708ull, HashBlock(std::nullopt, 1, "", Range(0, 4))};
  auto d = BlockKey::Decode(k.Encode());
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, k);
  BlockKey later{0x0102030405060709ull, ChainHash{}};
  EXPECT_LT(k.Encode(), later.Encode());
  EXPECT_FALSE(BlockKey::Decode("short").ok());
}

}  // namespace
}  // namespace strata::common
