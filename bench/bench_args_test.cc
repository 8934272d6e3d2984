#include "bench/bench_args.h"

#include <gtest/gtest.h>

namespace strata::bench {
namespace {

TEST(BenchArgsTest, TiersTakesSpaceAndEqualsForms) {
  absl::StatusOr<BenchCommand> cmd =
      ParseBenchArgs({"tiers", "--block-bytes", "1MiB", "--blocks=64", "--dir", "/var/tmp",
                      "--output=json", "--seconds-per-case", "0.5"});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(cmd->kind, BenchCommand::Kind::kTiers);
  EXPECT_EQ(cmd->tiers.block_bytes, 1u << 20);
  EXPECT_EQ(cmd->tiers.blocks, 64u);
  EXPECT_EQ(cmd->tiers.dir, "/var/tmp");
  EXPECT_EQ(cmd->output, OutputFormat::kJson);
  EXPECT_EQ(cmd->tiers.seconds_per_case, absl::Milliseconds(500));
}

TEST(BenchArgsTest, TiersDefaultsAreTheDocumentedOnes) {
  absl::StatusOr<BenchCommand> cmd = ParseBenchArgs({"tiers"});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(cmd->tiers.block_bytes, 2u << 20);
  EXPECT_EQ(cmd->output, OutputFormat::kText);
}

TEST(BenchArgsTest, WorkloadNeedsANode) {
  EXPECT_FALSE(ParseBenchArgs({"workload"}).ok());
  absl::StatusOr<BenchCommand> cmd =
      ParseBenchArgs({"workload", "--node", "127.0.0.1:7070", "--chains", "4", "--seed", "9"});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(cmd->workload.node, "127.0.0.1:7070");
  EXPECT_EQ(cmd->workload.plan.chains, 4u);
  EXPECT_EQ(cmd->workload.plan.seed, 9u);
  EXPECT_EQ(cmd->workload.namespace_name, "default");
}

TEST(BenchArgsTest, RejectsUnknownFlagsCommandsAndBadValues) {
  EXPECT_FALSE(ParseBenchArgs({"tiers", "--bogus", "1"}).ok());
  EXPECT_FALSE(ParseBenchArgs({"frobnicate"}).ok());
  EXPECT_FALSE(ParseBenchArgs({"tiers", "--blocks"}).ok());
  EXPECT_FALSE(ParseBenchArgs({"tiers", "--blocks", "-3"}).ok());
  EXPECT_FALSE(ParseBenchArgs({"tiers", "--block-bytes", "2 parsecs"}).ok());
  EXPECT_FALSE(ParseBenchArgs({"tiers", "--output", "xml"}).ok());
  EXPECT_FALSE(ParseBenchArgs({"tiers", "--seconds-per-case", "0"}).ok());
  EXPECT_FALSE(ParseBenchArgs({"tiers", "stray"}).ok());
  EXPECT_FALSE(
      ParseBenchArgs({"workload", "--node", "h:1", "--chains", "2", "--gpu-chains", "3"}).ok());
}

TEST(BenchArgsTest, HelpAnywhere) {
  EXPECT_EQ(ParseBenchArgs({})->kind, BenchCommand::Kind::kHelp);
  EXPECT_EQ(ParseBenchArgs({"tiers", "--help"})->kind, BenchCommand::Kind::kHelp);
}

}  // namespace
}  // namespace strata::bench
