#include "cachenode/gpu/kv_reference.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace strata::gpu {
namespace {

uint64_t Addr(const void* p) { return reinterpret_cast<uintptr_t>(p); }

// 2 layers, 3 blocks, 2 tokens, 1 head, head_dim 2, 1-byte elements: small enough to write the
// expected payload out by hand.
KvShape Tiny() {
  return KvShape{.num_layers = 2, .num_blocks = 3, .block_tokens = 2, .kv_heads = 1,
                 .head_dim = 2, .dtype_bytes = 1};
}

TEST(KvReferenceTest, GathersVllmFlashAttentionBlockInPayloadOrder) {
  // Layer l's tensor [2, 3, 2, 1, 2]: byte at offset o holds l * 100 + o.
  std::vector<uint8_t> layer0(12 * 2), layer1(12 * 2);
  for (int o = 0; o < 24; ++o) {
    layer0[o] = static_cast<uint8_t>(o);
    layer1[o] = static_cast<uint8_t>(100 + o);
  }
  KvLayout l;
  ASSERT_TRUE(MakeDenseLayout(EngineLayoutKind::kVllmFlashAttention, Tiny(),
                              {Addr(layer0.data()), Addr(layer1.data())}, &l).ok());
  std::vector<uint8_t> payload(l.PayloadBytes(), 0xEE);
  const uint32_t ids[] = {1};
  const uint64_t payloads[] = {Addr(payload.data())};
  ASSERT_TRUE(GatherReference(l, ids, payloads, 1).ok());
  // Block 1: K at kv*12 + 1*4 = 4..7, V at 16..19; layer 0 then layer 1.
  const std::vector<uint8_t> want = {4,   5,   6,   7,   16,  17,  18,  19,
                                     104, 105, 106, 107, 116, 117, 118, 119};
  EXPECT_EQ(payload, want);
}

TEST(KvReferenceTest, GathersFlashInferBlockInPayloadOrder) {
  // [3, 2, 2, 1, 2]: offset = block * 8 + kv * 4 + token * 2 + dim.
  std::vector<uint8_t> layer0(24), layer1(24);
  for (int o = 0; o < 24; ++o) {
    layer0[o] = static_cast<uint8_t>(o);
    layer1[o] = static_cast<uint8_t>(100 + o);
  }
  KvLayout l;
  ASSERT_TRUE(MakeDenseLayout(EngineLayoutKind::kFlashInfer, Tiny(),
                              {Addr(layer0.data()), Addr(layer1.data())}, &l).ok());
  std::vector<uint8_t> payload(16);
  const uint32_t ids[] = {2};
  const uint64_t payloads[] = {Addr(payload.data())};
  ASSERT_TRUE(GatherReference(l, ids, payloads, 1).ok());
  const std::vector<uint8_t> want = {16,  17,  18,  19,  20,  21,  22,  23,
                                     116, 117, 118, 119, 120, 121, 122, 123};
  EXPECT_EQ(payload, want);
}

TEST(KvReferenceTest, ScatterWritesOnlyTheNamedBlocks) {
  std::vector<uint8_t> cache(3 * 16, 0xAA);  // cross-layer: block b at b * 16, contiguous
  KvLayout l;
  ASSERT_TRUE(MakeDenseLayout(EngineLayoutKind::kCrossLayer, Tiny(), {Addr(cache.data())}, &l).ok());
  std::vector<uint8_t> payload(16);
  for (int i = 0; i < 16; ++i) payload[i] = static_cast<uint8_t>(i + 1);
  const uint32_t ids[] = {1};
  const uint64_t payloads[] = {Addr(payload.data())};
  ASSERT_TRUE(ScatterReference(l, ids, payloads, 1).ok());
  for (int o = 0; o < 48; ++o) {
    if (o >= 16 && o < 32) {
      EXPECT_EQ(cache[o], o - 16 + 1) << o;  // cross-layer payload order == engine order
    } else {
      EXPECT_EQ(cache[o], 0xAA) << o;
    }
  }
}

TEST(KvReferenceTest, GatherThenScatterRoundTripsAcrossLayouts) {
  // Offloaded from a FlashAttention engine, onloaded into a FlashInfer one: same tokens.
  std::vector<uint8_t> fa0(24), fa1(24), fi0(24, 0), fi1(24, 0);
  for (int o = 0; o < 24; ++o) {
    fa0[o] = static_cast<uint8_t>(o * 7 + 1);
    fa1[o] = static_cast<uint8_t>(o * 13 + 5);
  }
  KvLayout fa, fi;
  ASSERT_TRUE(MakeDenseLayout(EngineLayoutKind::kVllmFlashAttention, Tiny(),
                              {Addr(fa0.data()), Addr(fa1.data())}, &fa).ok());
  ASSERT_TRUE(MakeDenseLayout(EngineLayoutKind::kFlashInfer, Tiny(),
                              {Addr(fi0.data()), Addr(fi1.data())}, &fi).ok());
  std::vector<uint8_t> p0(16), p1(16), back0(16), back1(16);
  const uint32_t ids[] = {0, 2};
  const uint64_t payloads[] = {Addr(p0.data()), Addr(p1.data())};
  ASSERT_TRUE(GatherReference(fa, ids, payloads, 2).ok());
  ASSERT_TRUE(ScatterReference(fi, ids, payloads, 2).ok());
  const uint64_t backs[] = {Addr(back0.data()), Addr(back1.data())};
  ASSERT_TRUE(GatherReference(fi, ids, backs, 2).ok());
  EXPECT_EQ(back0, p0);
  EXPECT_EQ(back1, p1);
  // The FlashInfer token 1 of K in layer 0, block 2 is FlashAttention's: offset 0*12 + 2*4 + 1*2.
  EXPECT_EQ(fi0[2 * 8 + 0 * 4 + 1 * 2], fa0[0 * 12 + 2 * 4 + 1 * 2]);
}

TEST(KvReferenceTest, RejectsBadBlockIds) {
  std::vector<uint8_t> cache(48), payload(16);
  KvLayout l;
  ASSERT_TRUE(MakeDenseLayout(EngineLayoutKind::kCrossLayer, Tiny(), {Addr(cache.data())}, &l).ok());
  const uint32_t out_of_range[] = {3};
  const uint32_t twice[] = {1, 1};
  const uint64_t payloads[] = {Addr(payload.data()), Addr(payload.data())};
  EXPECT_EQ(GatherReference(l, out_of_range, payloads, 1).code(), Code::kInvalidArgument);
  EXPECT_EQ(ScatterReference(l, twice, payloads, 2).code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace strata::gpu
