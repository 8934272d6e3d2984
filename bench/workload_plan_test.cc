#include "bench/workload_plan.h"

#include <gtest/gtest.h>

#include <vector>

namespace strata::bench {
namespace {

constexpr common::NamespaceId kNs = 0x1234;

WorkloadPlanOptions Small() {
  WorkloadPlanOptions o;
  o.chains = 4;
  o.blocks_per_chain = 3;
  o.block_bytes = 4096;
  o.shared_prefix_blocks = 1;
  o.gpu_chains = 1;
  return o;
}

TEST(WorkloadPlanTest, EvenChainsShareTheirPrefixBlocksOnce) {
  const WorkloadPlan plan = PlanWorkload(kNs, Small());
  ASSERT_EQ(plan.chains.size(), 4u);
  // Chains 0 and 2 share block 0; everything else is distinct: 4 * 3 - 1 blocks.
  EXPECT_EQ(plan.blocks.size(), 11u);
  EXPECT_EQ(plan.chains[0].blocks[0], plan.chains[2].blocks[0]);
  EXPECT_NE(plan.chains[0].blocks[1], plan.chains[2].blocks[1]);
  EXPECT_NE(plan.chains[0].blocks[0], plan.chains[1].blocks[0]);
}

TEST(WorkloadPlanTest, RecordsChainPositions) {
  const WorkloadPlan plan = PlanWorkload(kNs, Small());
  for (const PlannedChain& c : plan.chains) {
    for (size_t p = 0; p < c.blocks.size(); ++p)
      EXPECT_EQ(plan.blocks[c.blocks[p]].chain_position, p);
  }
}

TEST(WorkloadPlanTest, SameSeedSamePlanAndBytes) {
  const WorkloadPlan a = PlanWorkload(kNs, Small());
  const WorkloadPlan b = PlanWorkload(kNs, Small());
  ASSERT_EQ(a.blocks.size(), b.blocks.size());
  for (size_t i = 0; i < a.blocks.size(); ++i) {
    EXPECT_EQ(a.blocks[i].hash, b.blocks[i].hash);
    std::vector<std::byte> x(4096), y(4096);
    FillPayload(a.blocks[i], x);
    FillPayload(b.blocks[i], y);
    EXPECT_EQ(x, y);
  }
  WorkloadPlanOptions other = Small();
  other.seed = 2;
  EXPECT_NE(PlanWorkload(kNs, other).blocks[0].hash, a.blocks[0].hash);
}

TEST(WorkloadPlanTest, NamespaceChangesEveryHash) {
  EXPECT_NE(PlanWorkload(kNs, Small()).blocks[0].hash,
            PlanWorkload(kNs + 1, Small()).blocks[0].hash);
}

TEST(WorkloadPlanTest, LastChainsComeFromTheGpu) {
  const WorkloadPlan plan = PlanWorkload(kNs, Small());
  EXPECT_FALSE(plan.chains[0].from_gpu);
  EXPECT_FALSE(plan.chains[2].from_gpu);
  EXPECT_TRUE(plan.chains[3].from_gpu);
}

TEST(WorkloadPlanTest, DistinctBlocksGetDistinctPayloads) {
  const WorkloadPlan plan = PlanWorkload(kNs, Small());
  std::vector<std::byte> x(4096), y(4096);
  FillPayload(plan.blocks[0], x);
  FillPayload(plan.blocks[1], y);
  EXPECT_NE(x, y);
}

TEST(WorkloadPlanTest, ValidateRejectsImpossibleShapes) {
  WorkloadPlanOptions o = Small();
  o.shared_prefix_blocks = 4;
  EXPECT_FALSE(o.Validate().ok());
  o = Small();
  o.chains = 0;
  EXPECT_FALSE(o.Validate().ok());
  EXPECT_TRUE(Small().Validate().ok());
}

}  // namespace
}  // namespace strata::bench
