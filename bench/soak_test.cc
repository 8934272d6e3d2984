#include <gtest/gtest.h>

#include "bench/soak.h"

namespace strata::bench {
namespace {

TEST(SoakPercentileTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 50; ++v) h.Record(v);
  EXPECT_EQ(h.count(), 50u);
  EXPECT_EQ(h.Percentile(0.5), 25u);
  EXPECT_EQ(h.Percentile(1.0), 50u);
  EXPECT_EQ(h.Percentile(0.02), 1u);
}

TEST(SoakPercentileTest, LargeValuesAreWithinThreePercentAndNeverBeyondTheExtremes) {
  LatencyHistogram h;
  for (uint64_t us = 1; us <= 10000; ++us) h.Record(us * 1000);  // 1 us .. 10 ms
  const struct {
    double p;
    double want;
  } cases[] = {{0.5, 5000e3}, {0.99, 9900e3}, {0.999, 9990e3}, {0.0001, 1e3}};
  for (const auto& c : cases) {
    const double got = static_cast<double>(h.Percentile(c.p));
    EXPECT_NEAR(got, c.want, c.want * 0.032) << "p=" << c.p;
  }
  EXPECT_LE(h.Percentile(1.0), 10000u * 1000);
  EXPECT_GE(h.Percentile(0.000001), 1000u);
}

TEST(SoakPercentileTest, TailPercentilesSeeTheRareSlowCalls) {
  LatencyHistogram h;
  for (int i = 0; i < 9980; ++i) h.Record(100'000);  // 100 us
  for (int i = 0; i < 20; ++i) h.Record(50'000'000);  // 50 ms: 0.2%
  EXPECT_NEAR(static_cast<double>(h.Percentile(0.99)), 100e3, 100e3 * 0.032);
  EXPECT_NEAR(static_cast<double>(h.Percentile(0.999)), 50e6, 50e6 * 0.032);
}

TEST(SoakPercentileTest, MergeEqualsRecordingEverythingInOne) {
  LatencyHistogram a, b, all;
  for (uint64_t v = 1; v < 5000; v += 7) {
    (v % 2 ? a : b).Record(v * 313);
    all.Record(v * 313);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), all.count());
  for (double p : {0.1, 0.5, 0.9, 0.99, 0.999}) EXPECT_EQ(a.Percentile(p), all.Percentile(p));
  LatencyHistogram empty;
  EXPECT_EQ(empty.Percentile(0.5), 0u);
  empty.Merge(all);
  EXPECT_EQ(empty.Percentile(0.5), all.Percentile(0.5));
}

std::vector<ProcessSample> Ramp(uint64_t start, int64_t step_per_s, int seconds) {
  std::vector<ProcessSample> out;
  for (int t = 0; t <= seconds; ++t) {
    out.push_back({static_cast<double>(t), static_cast<uint64_t>(start + step_per_s * t),
                   static_cast<uint32_t>(40 + t % 3), 20});
  }
  return out;
}

TEST(SoakMemoryTest, GrowthDuringWarmUpOnlyIsFlat) {
  SoakOptions o;  // warm-up 25%, max(5%, 32 MiB)
  std::vector<ProcessSample> s = Ramp(100 << 20, 20 << 20, 5);  // 100 -> 200 MiB by t=5
  for (int t = 6; t <= 20; ++t) s.push_back({static_cast<double>(t), 200u << 20, 41, 20});
  const MemoryVerdict v = JudgeMemory(s, 20, o);
  EXPECT_TRUE(v.flat) << v.why;
  EXPECT_EQ(v.warmup_rss, 200u << 20);  // the sample at t=5, the warm-up's end
  EXPECT_EQ(v.growth, 0);
  EXPECT_EQ(v.peak_rss, 200u << 20);
  EXPECT_EQ(v.peak_fds, 42u);
  EXPECT_EQ(v.peak_threads, 20u);
}

TEST(SoakMemoryTest, SteadyGrowthAfterWarmUpFailsAndSaysWhy) {
  SoakOptions o;
  const MemoryVerdict v = JudgeMemory(Ramp(100 << 20, 4 << 20, 20), 20, o);  // 4 MiB/s
  EXPECT_FALSE(v.flat);
  EXPECT_EQ(v.growth, 60 << 20);  // t=5 -> t=20
  EXPECT_EQ(v.allowed_growth, 32u << 20);
  EXPECT_NE(v.why.find("RSS grew 60.0 MiB"), std::string::npos) << v.why;
}

TEST(SoakMemoryTest, AllowanceIsFivePercentOfALargeProcessOrTheFloor) {
  SoakOptions o;
  // 2 GiB process: 5% is over 100 MiB, above the 32 MiB floor; 80 MiB growth (t=2 -> t=10) passes.
  MemoryVerdict v = JudgeMemory(Ramp(2ull << 30, 10 << 20, 10), 10, o);
  EXPECT_EQ(v.growth, 80 << 20);
  EXPECT_EQ(v.allowed_growth,
            static_cast<uint64_t>(0.05 * static_cast<double>((2ull << 30) + (20 << 20))));
  EXPECT_TRUE(v.flat) << v.why;
  o.max_growth_fraction = 0;
  o.max_growth_bytes = 64 << 20;
  v = JudgeMemory(Ramp(2ull << 30, 10 << 20, 10), 10, o);
  EXPECT_FALSE(v.flat);  // 80 MiB over a 64 MiB floor
}

TEST(SoakMemoryTest, ShrinkingIsFlatAndNoSamplesIsNot) {
  SoakOptions o;
  EXPECT_TRUE(JudgeMemory(Ramp(500 << 20, -(8 << 20), 20), 20, o).flat);
  const MemoryVerdict none = JudgeMemory({}, 20, o);
  EXPECT_FALSE(none.flat);
  EXPECT_EQ(none.why, "no samples");
  // Samples that stop during warm-up (the process died) cannot show flatness.
  EXPECT_FALSE(JudgeMemory(Ramp(100 << 20, 0, 3), 20, o).flat);
}

TEST(SoakMemoryTest, ThreadCountIsReadFromProcStatus) {
  EXPECT_EQ(ParseThreadCount("Name:\tx\nVmRSS:\t 12 kB\nThreads:\t37\nSigQ:\t0/1\n"), 37u);
  EXPECT_EQ(ParseThreadCount("Name:\tx\n"), 0u);
}

TEST(SoakArgsTest, DefaultsRunEveryPlaneOnAStartedCluster) {
  absl::StatusOr<SoakCommand> cmd = ParseSoakArgs({});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_FALSE(cmd->options.attach());
  EXPECT_EQ(cmd->options.ActivePlanes().size(), 4u);
  EXPECT_EQ(cmd->options.duration, absl::Seconds(60));
  EXPECT_EQ(cmd->options.clients, 256u);
}

TEST(SoakArgsTest, FlagsAreApplied) {
  absl::StatusOr<SoakCommand> cmd =
      ParseSoakArgs({"--duration", "10m", "--clients=512", "--planes", "grpc,shm", "--block-bytes",
                     "64KiB", "--max-growth", "48MiB", "--max-growth-percent", "2.5", "--output",
                     "json", "--think-time", "1ms"});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  const SoakOptions& o = cmd->options;
  EXPECT_EQ(o.duration, absl::Minutes(10));
  EXPECT_EQ(o.clients, 512u);
  EXPECT_EQ(o.planes, (std::vector<SoakPlane>{SoakPlane::kGrpc, SoakPlane::kShm}));
  EXPECT_EQ(o.block_bytes, 64u << 10);
  EXPECT_EQ(o.max_growth_bytes, 48u << 20);
  EXPECT_DOUBLE_EQ(o.max_growth_fraction, 0.025);
  EXPECT_EQ(o.think_time, absl::Milliseconds(1));
  EXPECT_EQ(cmd->output, SoakOutput::kJson);
}

TEST(SoakArgsTest, AttachedClusterRunsOnlyThePlanesItHasAddressesFor) {
  absl::StatusOr<SoakCommand> cmd =
      ParseSoakArgs({"--node", "127.0.0.1:7070", "--resp", "127.0.0.1:6379", "--pids", "12,13"});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_TRUE(cmd->options.attach());
  EXPECT_EQ(cmd->options.ActivePlanes(),
            (std::vector<SoakPlane>{SoakPlane::kGrpc, SoakPlane::kResp}));
  EXPECT_EQ(cmd->options.pids, (std::vector<int>{12, 13}));
}

TEST(SoakArgsTest, BadInputIsRefusedWithTheFlagNamed) {
  const std::vector<std::vector<std::string>> bad = {
      {"--duration", "0s"},         {"--duration", "soon"},     {"--clients", "2", "--planes", "grpc,resp,shm"},
      {"--planes", "grpc,carrier"}, {"--block-bytes", "8B"},    {"--chain-blocks", "0"},
      {"--output", "xml"},          {"--pids", "1"},            {"--frobnicate", "1"},
      {"--clients"},                {"stray"},                  {"--resp", "h:1", "--planes", "shm"},
      {"--dram-bytes", "64KiB"},    {"--keys", "0"},
  };
  for (const auto& args : bad) {
    absl::StatusOr<SoakCommand> cmd = ParseSoakArgs(args);
    EXPECT_EQ(cmd.status().code(), absl::StatusCode::kInvalidArgument) << args[0];
  }
  EXPECT_NE(ParseSoakArgs({"--clients", "x"}).status().message().find("--clients"),
            std::string::npos);
  EXPECT_TRUE(ParseSoakArgs({"--help"})->help);
}

TEST(SoakArgsTest, OnlyMissesAndExhaustedBoundsAreDeclared) {
  EXPECT_TRUE(IsDeclaredSoakError(absl::StatusCode::kNotFound));
  EXPECT_TRUE(IsDeclaredSoakError(absl::StatusCode::kResourceExhausted));
  for (absl::StatusCode c : {absl::StatusCode::kUnavailable, absl::StatusCode::kDataLoss,
                             absl::StatusCode::kInternal, absl::StatusCode::kDeadlineExceeded,
                             absl::StatusCode::kInvalidArgument}) {
    EXPECT_FALSE(IsDeclaredSoakError(c)) << absl::StatusCodeToString(c);
  }
}

TEST(SoakReportTest, FailedRunSaysWhyInTextAndJson) {
  SoakResult r;
  r.clients = 8;
  r.duration_s = 2;
  SoakOpFigures f;
  f.op = "get_chain";
  f.count = 10;
  f.errors["NOT_FOUND"] = 2;
  r.ops.push_back(f);
  SoakProcessFigures p;
  p.name = "node-0";
  p.pid = 42;
  p.memory.flat = false;
  r.processes.push_back(p);
  r.failures.push_back("node-0: memory not flat: \"x\"");
  EXPECT_FALSE(r.ok());
  const std::string text = FormatSoakText(r);
  EXPECT_NE(text.find("verdict: FAIL"), std::string::npos) << text;
  EXPECT_NE(text.find("NOT_FOUND=2"), std::string::npos) << text;
  const std::string json = FormatSoakJson(r);
  EXPECT_NE(json.find("{\"kind\":\"op\",\"plane\":\"grpc\",\"op\":\"get_chain\",\"count\":10,"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"errors\":{\"NOT_FOUND\":2}"), std::string::npos) << json;
  EXPECT_NE(json.find("\"ok\":false,\"failures\":[\"node-0: memory not flat: \\\"x\\\"\"]"),
            std::string::npos)
      << json;
}

}  // namespace
}  // namespace strata::bench
