#include "cachenode/gpu/kv_layout.h"

#include <gtest/gtest.h>

namespace strata::gpu {
namespace {

KvShape SmallShape() {
  return KvShape{.num_layers = 3, .num_blocks = 5, .block_tokens = 4, .kv_heads = 2,
                 .head_dim = 8, .dtype_bytes = 2};
}

TEST(KvShapeTest, SizesFollowTheShape) {
  const KvShape s{.num_layers = 32, .num_blocks = 1000, .block_tokens = 16, .kv_heads = 8,
                  .head_dim = 128, .dtype_bytes = 2};
  EXPECT_EQ(s.PieceBytes(), 32u * 1024);          // 16 tokens x 8 heads x 128 x bf16
  EXPECT_EQ(s.PayloadBytes(), 2u * 1024 * 1024);  // 32 layers x K,V
  EXPECT_EQ(s.CacheBytes(), 1000ull * 2 * 1024 * 1024);
}

TEST(KvLayoutTest, VllmFlashAttentionStridesAreKvOutermost) {
  const KvShape s = SmallShape();
  const uint64_t piece = 4 * 2 * 8 * 2;  // 128
  KvLayout l;
  ASSERT_TRUE(MakeDenseLayout(EngineLayoutKind::kVllmFlashAttention, s, {0x10000, 0x20000, 0x30000}, &l).ok());
  EXPECT_EQ(l.head_stride, 16u);
  EXPECT_EQ(l.token_stride, 32u);
  EXPECT_EQ(l.block_stride, piece);
  EXPECT_EQ(l.kv_stride, piece * 5);
  EXPECT_EQ(l.layer_bytes, 2 * piece * 5);
  EXPECT_EQ(l.layer_bases[2], 0x30000u);
}

TEST(KvLayoutTest, FlashInferKeepsKAndVOfABlockAdjacent) {
  KvLayout l;
  ASSERT_TRUE(MakeDenseLayout(EngineLayoutKind::kFlashInfer, SmallShape(), {0, 4096, 8192}, &l).ok());
  EXPECT_EQ(l.kv_stride, 128u);
  EXPECT_EQ(l.block_stride, 256u);
}

TEST(KvLayoutTest, CrossLayerMakesABlocksPayloadContiguous) {
  KvLayout l;
  ASSERT_TRUE(MakeDenseLayout(EngineLayoutKind::kCrossLayer, SmallShape(), {0x1000}, &l).ok());
  EXPECT_EQ(l.block_stride, SmallShape().PayloadBytes());
  ASSERT_EQ(l.layer_bases.size(), 3u);
  EXPECT_EQ(l.layer_bases[1], 0x1000u + 256);
  EXPECT_EQ(l.layer_bases[2], 0x1000u + 512);
}

TEST(KvLayoutTest, DenseLayoutNeedsOneBasePerLayerOrOneForCrossLayer) {
  KvLayout l;
  EXPECT_EQ(MakeDenseLayout(EngineLayoutKind::kVllmFlashAttention, SmallShape(), {0}, &l).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(MakeDenseLayout(EngineLayoutKind::kCrossLayer, SmallShape(), {0, 1, 2}, &l).code(),
            Code::kInvalidArgument);
}

KvLayout Valid() {
  KvLayout l;
  EXPECT_TRUE(MakeDenseLayout(EngineLayoutKind::kVllmFlashAttention, SmallShape(), {0, 4096, 8192}, &l).ok());
  return l;
}

TEST(KvLayoutValidationTest, RejectsZeroSizesAndOddDtypes) {
  KvLayout l = Valid();
  l.shape.head_dim = 0;
  EXPECT_EQ(ValidateKvLayout(l).code(), Code::kInvalidArgument);
  l = Valid();
  l.shape.dtype_bytes = 3;
  EXPECT_EQ(ValidateKvLayout(l).code(), Code::kInvalidArgument);
  l = Valid();
  l.layer_bases.pop_back();
  EXPECT_EQ(ValidateKvLayout(l).code(), Code::kInvalidArgument);
}

TEST(KvLayoutValidationTest, RejectsStridesUnderWhichElementsOverlap) {
  KvLayout l = Valid();
  l.head_stride = 8;  // a head row is 16 bytes: heads would share bytes
  const Status s = ValidateKvLayout(l);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("head"), std::string::npos) << s.message();

  l = Valid();
  l.block_stride = 64;  // half a piece: blocks overlap each other
  EXPECT_EQ(ValidateKvLayout(l).code(), Code::kInvalidArgument);

  l = Valid();
  l.kv_stride = l.block_stride * 2;  // V of block b is K of block b + 2
  EXPECT_EQ(ValidateKvLayout(l).code(), Code::kInvalidArgument);
}

TEST(KvLayoutValidationTest, AcceptsPaddedStrides) {
  KvLayout l = Valid();
  l.head_stride = 32;  // 16 bytes of data, 16 of padding
  l.token_stride = 64;
  l.block_stride = 2 * 4 * 64;
  l.kv_stride = l.block_stride * 5 + 512;
  l.layer_bytes = l.kv_stride * 2;
  l.layer_bases = {0, 1 << 20, 2 << 20};
  EXPECT_TRUE(ValidateKvLayout(l).ok()) << ValidateKvLayout(l).ToString();
}

TEST(KvLayoutValidationTest, RejectsAnExtentPastTheLayersRegion) {
  KvLayout l = Valid();
  l.layer_bytes -= 1;
  EXPECT_EQ(ValidateKvLayout(l).code(), Code::kInvalidArgument);
}

TEST(KvLayoutValidationTest, RejectsStridesThatOverflow) {
  KvLayout l = Valid();
  l.block_stride = 1ull << 62;
  l.layer_bytes = ~0ull;
  EXPECT_EQ(ValidateKvLayout(l).code(), Code::kInvalidArgument);

  l = Valid();
  l.layer_bases[2] = ~0ull - 100;  // base + extent wraps around
  EXPECT_EQ(ValidateKvLayout(l).code(), Code::kInvalidArgument);
}

TEST(KvLayoutValidationTest, RejectsLayersWhoseRegionsIntersect) {
  KvLayout l = Valid();
  l.layer_bases = {0, 4096, 4096 + 100};  // uneven steps: ranges must be disjoint
  EXPECT_EQ(ValidateKvLayout(l).code(), Code::kInvalidArgument);
  l.layer_bases = {0, 100, 200};  // even steps: checked as a dimension, and it overlaps
  EXPECT_EQ(ValidateKvLayout(l).code(), Code::kInvalidArgument);
}

TEST(KvLayoutValidationTest, BlockIdsMustBeInRangeAndDistinctForScatter) {
  const KvLayout l = Valid();
  const uint32_t ok[] = {0, 4, 2};
  const uint32_t out_of_range[] = {0, 5};
  const uint32_t repeated[] = {1, 3, 1};
  EXPECT_TRUE(ValidateBlockIds(l, ok, 3, false).ok());
  EXPECT_EQ(ValidateBlockIds(l, out_of_range, 2, true).code(), Code::kInvalidArgument);
  EXPECT_TRUE(ValidateBlockIds(l, repeated, 3, true).ok());
  EXPECT_EQ(ValidateBlockIds(l, repeated, 3, false).code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace strata::gpu
