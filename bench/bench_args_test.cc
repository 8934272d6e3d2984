#include "bench/bench_args.h"

#include <gtest/gtest.h>

namespace strata::bench {
namespace {

TEST(BenchArgsTest, TiersTakesSpaceAndEqualsForms) {
  absl::StatusOr<BenchCommand> cmd = ParseBenchArgs(
      {"tiers", "--block-bytes", "1MiB,32MiB", "--working-set=64MiB", "--dir", "/var/tmp",
       "--output=json", "--seconds-per-case", "0.5", "--paths", "ssd,grpc",
       "--ssd-read-threads", "8", "--ssd-write-io-bytes", "2MiB"});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(cmd->kind, BenchCommand::Kind::kTiers);
  EXPECT_EQ(cmd->tiers.block_sizes, (std::vector<uint64_t>{1u << 20, 32u << 20}));
  EXPECT_EQ(cmd->tiers.working_set_bytes, 64u << 20);
  EXPECT_EQ(cmd->tiers.BlocksFor(1u << 20), 64u);
  EXPECT_EQ(cmd->tiers.BlocksFor(32u << 20), 8u);  // never fewer than 8 blocks
  EXPECT_EQ(cmd->tiers.dir, "/var/tmp");
  EXPECT_EQ(cmd->output, OutputFormat::kJson);
  EXPECT_EQ(cmd->tiers.seconds_per_case, absl::Milliseconds(500));
  EXPECT_EQ(cmd->tiers.paths, (std::vector<TiersPath>{TiersPath::kSsd, TiersPath::kGrpc}));
  EXPECT_TRUE(cmd->tiers.Has(TiersPath::kSsd));
  EXPECT_FALSE(cmd->tiers.Has(TiersPath::kShm));
  EXPECT_EQ(cmd->tiers.ssd.read_threads, 8);
  EXPECT_EQ(cmd->tiers.ssd.write_io_bytes, 2u << 20);
}

TEST(BenchArgsTest, TiersDefaultsAreTheDocumentedOnes) {
  absl::StatusOr<BenchCommand> cmd = ParseBenchArgs({"tiers"});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(cmd->tiers.block_sizes, (std::vector<uint64_t>{256u << 10, 2u << 20, 32u << 20}));
  EXPECT_EQ(cmd->tiers.paths.size(), 7u);  // every path, the KV hand-over included
  EXPECT_TRUE(cmd->tiers.Has(TiersPath::kHandover));
  EXPECT_EQ(cmd->tiers.ssd.read_threads, cachenode::SsdTierOptions{}.read_threads);
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
  EXPECT_FALSE(ParseBenchArgs({"tiers", "--working-set"}).ok());
  EXPECT_FALSE(ParseBenchArgs({"tiers", "--resp-clients", "-3"}).ok());
  EXPECT_FALSE(ParseBenchArgs({"tiers", "--paths", "memory,floppy"}).ok());
  EXPECT_FALSE(ParseBenchArgs({"tiers", "--block-bytes", "2MiB,"}).ok());
  EXPECT_FALSE(ParseBenchArgs({"tiers", "--ssd-read-threads", "0"}).ok());
  EXPECT_FALSE(ParseBenchArgs({"tiers", "--block-bytes", "2 parsecs"}).ok());
  EXPECT_FALSE(ParseBenchArgs({"tiers", "--output", "xml"}).ok());
  EXPECT_FALSE(ParseBenchArgs({"tiers", "--seconds-per-case", "0"}).ok());
  EXPECT_FALSE(ParseBenchArgs({"tiers", "stray"}).ok());
  EXPECT_FALSE(
      ParseBenchArgs({"workload", "--node", "h:1", "--chains", "2", "--gpu-chains", "3"}).ok());
}

TEST(BenchArgsTest, ReplayTakesEveryDocumentedOption) {
  absl::StatusOr<BenchCommand> cmd = ParseBenchArgs(
      {"replay", "--trace", "t.jsonl", "--requests", "100", "--time-scale", "0.5", "--nodes",
       "8", "--experiment", "locality=50,round_robin=50", "--tiers", "hbm+dram",
       "--hbm-capacity", "8GiB", "--dram-capacity", "2TiB", "--ssd-capacity", "4TiB",
       "--ssd-gbps", "2.5", "--peer-gbps", "25", "--load-policy", "always", "--mode", "live",
       "--seed", "3", "--speedup", "5", "--live-block-bytes", "16KiB", "--output", "json",
       "--plot", "p.png", "--route-memory", "10"});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  const ReplayOptions& r = cmd->replay;
  EXPECT_EQ(cmd->kind, BenchCommand::Kind::kReplay);
  EXPECT_EQ(r.trace_path, "t.jsonl");
  EXPECT_EQ(r.trace.max_requests, 100u);
  EXPECT_EQ(r.trace.time_scale, 0.5);
  EXPECT_EQ(r.nodes, 8);
  EXPECT_EQ(r.experiment, "locality=50,round_robin=50");
  EXPECT_EQ(r.tiers, TierSet::kHbmDram);
  EXPECT_EQ(r.hbm_bytes, 8ull << 30);
  EXPECT_EQ(r.dram_bytes, 2ull << 40);
  EXPECT_EQ(r.ssd_bytes, 4ull << 40);
  EXPECT_EQ(r.ssd_gbps, 2.5);
  EXPECT_EQ(r.peer_gbps, 25);
  EXPECT_EQ(r.load_policy, LoadPolicy::kAlways);
  EXPECT_EQ(r.mode, ReplayMode::kLive);
  EXPECT_EQ(r.live.speedup, 5);
  EXPECT_EQ(r.live.block_bytes, 16u << 10);
  EXPECT_EQ(r.route_memory_s, 10);
  EXPECT_EQ(cmd->plot, "p.png");
  EXPECT_EQ(cmd->output, OutputFormat::kJson);
}

TEST(BenchArgsTest, ReplayDefaultsAndRejections) {
  absl::StatusOr<BenchCommand> cmd = ParseBenchArgs({"replay", "--trace", "t"});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(cmd->replay.mode, ReplayMode::kSim);
  EXPECT_EQ(cmd->replay.tiers, TierSet::kHbmDramSsd);
  EXPECT_EQ(cmd->replay.dram_bytes, 1ull << 40);
  EXPECT_EQ(cmd->replay.ssd_bytes, 8ull << 40);
  EXPECT_EQ(cmd->replay.experiment, "locality");
  EXPECT_FALSE(ParseBenchArgs({"replay"}).ok());  // no trace
  EXPECT_FALSE(ParseBenchArgs({"replay", "--trace", "t", "--tiers", "ssd"}).ok());
  EXPECT_FALSE(ParseBenchArgs({"replay", "--trace", "t", "--mode", "fast"}).ok());
  EXPECT_FALSE(ParseBenchArgs({"replay", "--trace", "t", "--policy", "nearest"}).ok());
  EXPECT_FALSE(ParseBenchArgs({"replay", "--trace", "t", "--nodes", "0"}).ok());
  EXPECT_FALSE(ParseBenchArgs({"replay", "--trace", "t", "--time-scale", "0"}).ok());
  EXPECT_FALSE(ParseBenchArgs({"replay", "--trace", "t", "--load-policy", "never"}).ok());
}

TEST(BenchArgsTest, GenAndExperimentsParse) {
  absl::StatusOr<BenchCommand> gen =
      ParseBenchArgs({"gen", "--out", "g.jsonl", "--requests", "50", "--rate", "2", "--seed", "4"});
  ASSERT_TRUE(gen.ok()) << gen.status();
  EXPECT_EQ(gen->kind, BenchCommand::Kind::kGen);
  EXPECT_EQ(gen->gen_out, "g.jsonl");
  EXPECT_EQ(gen->gen.requests, 50u);
  EXPECT_EQ(gen->gen.rate_per_s, 2);
  EXPECT_EQ(gen->gen.seed, 4u);
  EXPECT_FALSE(ParseBenchArgs({"gen", "--rate", "0"}).ok());
  absl::StatusOr<BenchCommand> x =
      ParseBenchArgs({"experiments", "--trace", "t", "--only", "bd", "--results", "r.md"});
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->kind, BenchCommand::Kind::kExperiments);
  EXPECT_EQ(x->experiments.only, "bd");
  EXPECT_EQ(x->experiments.results_path, "r.md");
  EXPECT_FALSE(ParseBenchArgs({"experiments"}).ok());
  EXPECT_FALSE(ParseBenchArgs({"experiments", "--trace", "t", "--only", "e"}).ok());
}

TEST(BenchArgsTest, HelpAnywhere) {
  EXPECT_EQ(ParseBenchArgs({})->kind, BenchCommand::Kind::kHelp);
  EXPECT_EQ(ParseBenchArgs({"tiers", "--help"})->kind, BenchCommand::Kind::kHelp);
}

}  // namespace
}  // namespace strata::bench
