#include "cachenode/gpu/kv_plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "cachenode/gpu/kv_reference.h"

namespace strata::gpu {
namespace {

uint64_t Addr(const void* p) { return reinterpret_cast<uintptr_t>(p); }

TEST(KvCopyPlanTest, MergesWhatTheEngineKeepsContiguous) {
  const KvShape s{.num_layers = 4, .num_blocks = 8, .block_tokens = 16, .kv_heads = 8,
                  .head_dim = 128, .dtype_bytes = 2};
  const std::vector<uint64_t> bases = {1 << 24, 2 << 24, 3 << 24, 4 << 24};
  KvLayout fa, fi, cross;
  ASSERT_TRUE(MakeDenseLayout(EngineLayoutKind::kVllmFlashAttention, s, bases, &fa).ok());
  ASSERT_TRUE(MakeDenseLayout(EngineLayoutKind::kFlashInfer, s, bases, &fi).ok());
  ASSERT_TRUE(MakeDenseLayout(EngineLayoutKind::kCrossLayer, s, {1 << 24}, &cross).ok());
  KvCopyPlan p;
  ASSERT_TRUE(MakeCopyPlan(fa, 16, &p).ok());
  EXPECT_EQ(p.run_bytes, 32u * 1024);  // one (layer, K/V) piece
  EXPECT_EQ(p.vec_bytes, 16u);
  EXPECT_EQ(p.units_per_block, s.PayloadBytes() / 16);
  ASSERT_TRUE(MakeCopyPlan(fi, 16, &p).ok());
  EXPECT_EQ(p.run_bytes, 64u * 1024);  // K and V of a layer
  ASSERT_TRUE(MakeCopyPlan(cross, 16, &p).ok());
  EXPECT_EQ(p.run_bytes, 64u * 1024);  // layers are separate bases, so never merged
  ASSERT_TRUE(MakeCopyPlan(fa, 2, &p).ok());
  EXPECT_EQ(p.vec_bytes, 2u);  // payload addresses only 2-byte aligned
}

TEST(KvCopyPlanTest, AddressAlignmentIsTheLowestCommonPowerOfTwo) {
  const uint64_t a[] = {0x1000, 0x2010, 0x3008};
  EXPECT_EQ(AddressAlignment(a, 3), 8u);
  EXPECT_EQ(AddressAlignment(a, 1), 16u);  // capped at 16
  const uint64_t odd[] = {0x1001};
  EXPECT_EQ(AddressAlignment(odd, 1), 1u);
}

// A random layout over `memory`: one of the dense kinds or a padded one, random dtype.
struct RandomCase {
  KvLayout layout;
  std::vector<std::vector<uint8_t>> regions;
};

RandomCase MakeCase(std::mt19937_64& rng, int kind) {
  RandomCase c;
  KvShape s;
  s.num_layers = 1 + rng() % 4;
  s.num_blocks = 2 + rng() % 6;
  s.block_tokens = 1 + rng() % 5;
  s.kv_heads = 1 + rng() % 3;
  const uint32_t dtypes[] = {1, 2, 4};
  s.dtype_bytes = dtypes[rng() % 3];
  s.head_dim = (1 + rng() % 4) * (16 / s.dtype_bytes) / (1 + rng() % 2);
  if (s.head_dim == 0) s.head_dim = 3;
  if (kind < 3) {
    const auto k = static_cast<EngineLayoutKind>(kind);
    const uint64_t bytes = DenseRegionBytes(k, s);
    const size_t n = k == EngineLayoutKind::kCrossLayer ? 1 : s.num_layers;
    std::vector<uint64_t> bases;
    for (size_t i = 0; i < n; ++i) {
      c.regions.emplace_back(bytes + 16);
      bases.push_back((Addr(c.regions.back().data()) + 15) & ~uint64_t{15});
    }
    EXPECT_TRUE(MakeDenseLayout(k, s, bases, &c.layout).ok());
    return c;
  }
  // Padded: every stride with a gap, K/V outermost with an odd pad.
  KvLayout& l = c.layout;
  l.shape = s;
  l.head_stride = s.head_dim * s.dtype_bytes + 16 * (rng() % 2) + 4;
  l.token_stride = l.head_stride * s.kv_heads + 8;
  l.block_stride = l.token_stride * s.block_tokens + 32;
  l.kv_stride = l.block_stride * s.num_blocks + 12;
  l.layer_bytes = l.kv_stride * 2;
  for (uint32_t i = 0; i < s.num_layers; ++i) {
    c.regions.emplace_back(l.layer_bytes);
    l.layer_bases.push_back(Addr(c.regions.back().data()));
  }
  EXPECT_TRUE(ValidateKvLayout(l).ok()) << ValidateKvLayout(l).ToString();
  return c;
}

// The kernels' code (CopySegment, run for every segment and thread) against the reference.
TEST(KvCopyPlanTest, KernelAddressingMatchesTheReferenceOnRandomLayouts) {
  std::mt19937_64 rng(20261127);
  for (int round = 0; round < 60; ++round) {
    RandomCase c = MakeCase(rng, round % 4);
    for (auto& r : c.regions) {
      for (auto& b : r) b = static_cast<uint8_t>(rng());
    }
    const KvLayout& l = c.layout;
    const uint32_t count = 1 + rng() % 4;
    std::vector<uint32_t> ids(l.shape.num_blocks);
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng);
    ids.resize(std::min<uint32_t>(count, l.shape.num_blocks));
    const uint64_t bytes = l.PayloadBytes();
    const uint64_t skew = rng() % 3 == 0 ? 1 + rng() % 7 : 0;  // forces narrower accesses
    std::vector<uint8_t> got(ids.size() * bytes + 16 + skew, 0xA5), want(ids.size() * bytes, 0x5A);
    const uint64_t base = ((Addr(got.data()) + 15) & ~uint64_t{15}) + skew;
    std::vector<uint64_t> got_ptrs, want_ptrs;
    for (size_t i = 0; i < ids.size(); ++i) {
      got_ptrs.push_back(base + i * bytes);
      want_ptrs.push_back(Addr(want.data()) + i * bytes);
    }
    ASSERT_TRUE(GatherReference(l, ids.data(), want_ptrs.data(), ids.size()).ok());
    KvCopyArgs args;
    ASSERT_TRUE(MakeCopyPlan(l, AddressAlignment(got_ptrs.data(), got_ptrs.size()), &args.plan).ok());
    args.layer_bases = l.layer_bases.data();
    args.block_ids = ids.data();
    args.payloads = got_ptrs.data();
    args.count = static_cast<uint32_t>(ids.size());
    args.gather = true;
    RunCopyOnCpu(args);
    ASSERT_EQ(std::memcmp(reinterpret_cast<void*>(base), want.data(), want.size()), 0)
        << "round " << round << " vec " << args.plan.vec_bytes << " run " << args.plan.run_bytes;

    // Scatter fresh payloads back with the kernel code and with the reference into a copy.
    for (auto& b : want) b = static_cast<uint8_t>(rng());
    std::memcpy(reinterpret_cast<void*>(base), want.data(), want.size());
    std::vector<std::vector<uint8_t>> expected = c.regions;
    KvLayout expected_layout = l;
    for (size_t r = 0; r < c.regions.size(); ++r) {
      const int64_t shift = static_cast<int64_t>(Addr(expected[r].data())) -
                            static_cast<int64_t>(Addr(c.regions[r].data()));
      if (c.regions.size() == l.layer_bases.size()) {
        expected_layout.layer_bases[r] += shift;
      } else {
        for (auto& b : expected_layout.layer_bases) b += shift;
      }
    }
    ASSERT_TRUE(ScatterReference(expected_layout, ids.data(), want_ptrs.data(), ids.size()).ok());
    args.gather = false;
    RunCopyOnCpu(args);
    for (size_t r = 0; r < c.regions.size(); ++r) {
      ASSERT_EQ(c.regions[r], expected[r]) << "round " << round << " region " << r;
    }
  }
}

TEST(KvCopyPlanTest, RejectsPayloadsOfFourGibOrMore) {
  KvLayout l;
  const KvShape s{.num_layers = 1024, .num_blocks = 1, .block_tokens = 1024, .kv_heads = 8,
                  .head_dim = 128, .dtype_bytes = 2};  // 4 GiB per block
  ASSERT_TRUE(MakeDenseLayout(EngineLayoutKind::kCrossLayer, s, {1 << 20}, &l).ok());
  KvCopyPlan p;
  EXPECT_EQ(MakeCopyPlan(l, 16, &p).code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace strata::gpu
