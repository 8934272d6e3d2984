#include "clients/cli_output.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace strata::clients {
namespace {

namespace v1 = ::strata::v1;

common::ChainHash Hash(uint8_t fill) {
  common::ChainHash h;
  h.bytes.fill(fill);
  return h;
}

v1::StatsResponse SampleStats() {
  v1::StatsResponse stats;
  v1::TierStats* hbm = stats.add_tiers();
  hbm->set_tier(v1::TIER_HBM);
  hbm->set_name("hbm(emulated)");
  hbm->set_emulated(true);
  hbm->set_capacity_bytes(24 << 20);
  hbm->set_used_bytes(16 << 20);
  hbm->set_blocks(2);
  hbm->set_hits(5);
  v1::TierStats* ssd = stats.add_tiers();
  ssd->set_tier(v1::TIER_SSD);
  ssd->set_name("ssd");
  ssd->set_capacity_bytes(1ull << 30);
  ssd->set_evictions(3);
  ssd->set_checksum_failures(1);
  stats.set_misses(42);
  stats.set_max_block_bytes(64 << 20);
  v1::NamespaceInfo* ns = stats.add_namespaces();
  ns->set_name("default");
  ns->set_namespace_id(0xabcdef);
  return stats;
}

TEST(FormatStatsTest, TextIsATableOfTiersPlusMisses) {
  const std::string text = FormatStats(SampleStats(), OutputFormat::kText);
  EXPECT_NE(text.find("TIER"), std::string::npos) << text;
  EXPECT_NE(text.find("hbm(emulated)"), std::string::npos) << text;
  EXPECT_NE(text.find("16.0 MiB / 24.0 MiB"), std::string::npos) << text;
  EXPECT_NE(text.find("0 B / 1.00 GiB"), std::string::npos) << text;
  EXPECT_NE(text.find("misses: 42"), std::string::npos) << text;
  EXPECT_NE(text.find("namespaces: default"), std::string::npos) << text;
}

TEST(FormatStatsTest, JsonCarriesEveryTierField) {
  const std::string json = FormatStats(SampleStats(), OutputFormat::kJson);
  EXPECT_EQ(json.back(), '\n');
  EXPECT_EQ(json.find('\n'), json.size() - 1);  // one line
  EXPECT_NE(json.find(R"j({"tiers":[{"tier":"hbm","name":"hbm(emulated)","emulated":true,)j"
                      R"j("capacity_bytes":25165824,"used_bytes":16777216,"blocks":2,"hits":5,)j"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find(R"("evictions":3,"checksum_failures":1)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("misses":42)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("namespaces":[{"name":"default","namespace_id":"0000000000abcdef"}])"),
            std::string::npos)
      << json;
}

TEST(FormatLookupTest, TextNamesEachBlockAndJsonHasTheFields) {
  v1::LookupResponse r;
  r.set_matched_blocks(1);
  r.set_dram_blocks(1);
  r.add_tiers(v1::TIER_DRAM);
  const common::ChainHash chain[] = {Hash(1), Hash(2), Hash(3)};
  const std::string text = FormatLookup(chain, r, OutputFormat::kText);
  EXPECT_NE(text.find("matched 1 of 3 blocks (hbm 0, dram 1, ssd 0)"), std::string::npos) << text;
  EXPECT_NE(text.find(Hash(1).Hex() + "  dram"), std::string::npos) << text;
  EXPECT_NE(text.find(Hash(2).Hex() + "  absent"), std::string::npos) << text;
  EXPECT_EQ(FormatLookup(chain, r, OutputFormat::kJson),
            R"({"requested_blocks":3,"matched_blocks":1,"hbm_blocks":0,"dram_blocks":1,)"
            R"("ssd_blocks":0,"tiers":["dram"]})"
            "\n");
}

TEST(FormatGetTest, JsonHasHashTierSizeChecksumAndPath) {
  const BlockSummary block{Hash(0xab), v1::TIER_SSD, 8 << 20, 0x1234, "/tmp/out"};
  EXPECT_EQ(FormatGet(block, OutputFormat::kJson),
            absl::StrCat(R"({"hash":")", Hash(0xab).Hex(),
                         R"(","tier":"ssd","size":8388608,"checksum":"0000000000001234",)"
                         R"("out":"/tmp/out"})",
                         "\n"));
  EXPECT_NE(FormatGet(block, OutputFormat::kText).find("from ssd: 8388608 bytes"),
            std::string::npos);
}

TEST(FormatNamespacesTest, TextAndJson) {
  v1::ListNamespacesResponse r;
  v1::NamespaceInfo* ns = r.add_namespaces();
  ns->set_name("llama/b16");
  ns->set_namespace_id(1);
  EXPECT_NE(FormatNamespaces(r, OutputFormat::kText).find("llama/b16  0000000000000001"),
            std::string::npos);
  EXPECT_EQ(FormatNamespaces(r, OutputFormat::kJson),
            R"({"namespaces":[{"name":"llama/b16","namespace_id":"0000000000000001"}]})"
            "\n");
}

TEST(FormatSyncTest, TextAndJsonCarryBothCounts) {
  v1::SyncResponse r;
  r.set_persisted_blocks(3);
  r.set_durable_blocks(40);
  EXPECT_EQ(FormatSync(r, OutputFormat::kText),
            "synced: 40 blocks durable on SSD (3 of them were waiting for write-behind)\n");
  EXPECT_EQ(FormatSync(r, OutputFormat::kJson),
            R"({"persisted_blocks":3,"durable_blocks":40})"
            "\n");
}

TEST(FormatRegisterNamespaceTest, SaysWhetherItWasCreated) {
  v1::RegisterNamespaceResponse r;
  r.set_namespace_id(2);
  r.set_created(true);
  EXPECT_EQ(FormatRegisterNamespace("a", r, OutputFormat::kJson),
            R"({"name":"a","namespace_id":"0000000000000002","created":true})"
            "\n");
  r.set_created(false);
  EXPECT_NE(FormatRegisterNamespace("a", r, OutputFormat::kText).find("already registered"),
            std::string::npos);
}

RouteResult SampleRoute() {
  RouteResult r;
  r.node_id = "node-a";
  r.endpoint = "10.0.0.1:7070";
  r.matched = {.hbm = 1, .dram = 2, .ssd = 3};
  r.matched_blocks = 6;
  r.total_blocks = 8;
  r.predicted_ttft_ms = 12.25;
  r.policy = "locality";
  r.decision_id = (1ull << 60) + 7;
  r.peers.push_back({.node_id = "node-b",
                     .endpoint = "10.0.0.2:7070",
                     .from_block = 6,
                     .blocks = 2,
                     .tier = v1::TIER_SSD});
  r.shadow.push_back({.policy = "round_robin",
                      .node_id = "node-c",
                      .matched_blocks = 0,
                      .predicted_ttft_ms = 40.5});
  return r;
}

TEST(FormatRouteTest, JsonHasTheChoiceTiersDecisionPeersAndShadow) {
  EXPECT_EQ(FormatRoute(SampleRoute(), OutputFormat::kJson),
            R"({"node":"node-a","endpoint":"10.0.0.1:7070","matched":{"hbm":1,"dram":2,"ssd":3},)"
            R"("matched_blocks":6,"total_blocks":8,"predicted_ttft_ms":12.25,"policy":"locality",)"
            R"("decision_id":"1152921504606846983",)"
            R"("peers":[{"node":"node-b","endpoint":"10.0.0.2:7070","from_block":6,"blocks":2,)"
            R"("tier":"ssd"}],)"
            R"("shadow":[{"policy":"round_robin","node":"node-c","matched_blocks":0,)"
            R"("predicted_ttft_ms":40.5}]})"
            "\n");
}

TEST(FormatRouteTest, JsonOfAColdRouteHasEmptyListsAndNoNaN) {
  RouteResult r;
  r.node_id = "n";
  r.predicted_ttft_ms = std::numeric_limits<double>::quiet_NaN();
  const std::string json = FormatRoute(r, OutputFormat::kJson);
  EXPECT_NE(json.find(R"("matched":{"hbm":0,"dram":0,"ssd":0})"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("predicted_ttft_ms":null)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("decision_id":"0","peers":[],"shadow":[]})"), std::string::npos) << json;
}

TEST(FormatRouteTest, TextNamesTheNodeMatchPeersAndShadow) {
  const std::string text = FormatRoute(SampleRoute(), OutputFormat::kText);
  EXPECT_NE(
      text.find("route to node-a (10.0.0.1:7070) by locality, decision 1152921504606846983\n"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("matched 6 of 8 blocks (hbm 1, dram 2, ssd 3); predicted ttft 12.25 ms\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("peer node-b (10.0.0.2:7070) holds 2 more blocks from block 6"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("shadow round_robin would pick node-c"), std::string::npos) << text;
}

NodeStatus SampleNode() {
  NodeStatus n;
  n.node_id = "node-b";
  n.endpoint = "10.0.0.2:7070";
  n.epoch = 1700000000123456789ull;
  n.load = {.queued_requests = 3,
            .running_requests = 4,
            .prefill_tokens_in_flight = 5000,
            .free_hbm_blocks = 60,
            .draining = true};
  n.heartbeat_age_ms = 250;
  n.indexed_blocks = 777;
  n.source = "vllm";
  n.synced = false;
  return n;
}

TEST(FormatNodesTest, JsonListsEachNodeWithItsLoad) {
  const NodeStatus nodes[] = {SampleNode()};
  EXPECT_EQ(FormatNodes(nodes, OutputFormat::kJson),
            R"({"nodes":[{"node":"node-b","endpoint":"10.0.0.2:7070",)"
            R"("epoch":"1700000000123456789","load":{"queued":3,"running":4,)"
            R"("prefill_tokens":5000,"free_hbm_blocks":60,"draining":true},)"
            R"("indexed_blocks":777,"heartbeat_age_ms":250,"source":"vllm","synced":false}]})"
            "\n");
  EXPECT_EQ(FormatNodes({}, OutputFormat::kJson), "{\"nodes\":[]}\n");
}

TEST(FormatNodesTest, TextIsATableWithTheNodesState) {
  const NodeStatus nodes[] = {SampleNode()};
  const std::string text = FormatNodes(nodes, OutputFormat::kText);
  EXPECT_NE(text.find("NODE"), std::string::npos) << text;
  EXPECT_NE(text.find("FREE HBM BLOCKS"), std::string::npos) << text;
  EXPECT_NE(text.find("node-b"), std::string::npos) << text;
  EXPECT_NE(text.find("250 ms"), std::string::npos) << text;
  EXPECT_NE(text.find("draining, awaiting snapshot"), std::string::npos) << text;
  EXPECT_EQ(FormatNodes({}, OutputFormat::kText), "no live nodes\n");
}

TEST(FormatExperimentReportTest, JsonMirrorsPolicyFigures) {
  ExperimentReport report;
  report.spec = "locality=50,round_robin=50";
  report.requests = 10;
  PolicyFigures p;
  p.policy = "locality";
  p.weight = 50;
  p.decisions = 6;
  p.matched = {.hbm = 0, .dram = 9, .ssd = 1};
  p.requested_blocks = 20;
  p.mean_predicted_ttft_ms = 11.5;
  p.outcomes = 5;
  p.mean_reported_ttft_ms = 12;
  p.p50_reported_ttft_ms = 10.25;
  p.p99_reported_ttft_ms = 80.5;
  p.shadow_requests = 10;
  p.mean_shadow_hit_blocks = 1.5;
  p.mean_shadow_predicted_ttft_ms = 13;
  p.shadow_agreements = 4;
  report.policies.push_back(p);
  EXPECT_EQ(FormatExperimentReport(report, OutputFormat::kJson),
            R"({"spec":"locality=50,round_robin=50","requests":10,"policies":[)"
            R"({"policy":"locality","weight":50,"decisions":6,)"
            R"("matched":{"hbm":0,"dram":9,"ssd":1},"requested_blocks":20,)"
            R"("mean_predicted_ttft_ms":11.5,"outcomes":5,"mean_reported_ttft_ms":12,)"
            R"("p50_reported_ttft_ms":10.25,"p99_reported_ttft_ms":80.5,"shadow_requests":10,)"
            R"("mean_shadow_hit_blocks":1.5,"mean_shadow_predicted_ttft_ms":13,)"
            R"("shadow_agreements":4}]})"
            "\n");
  const std::string text = FormatExperimentReport(report, OutputFormat::kText);
  EXPECT_EQ(text.rfind("experiment locality=50,round_robin=50: 10 requests\nPOLICY", 0), 0u)
      << text;
  EXPECT_NE(text.find("0/9/1"), std::string::npos) << text;
  EXPECT_NE(text.find("12.00/10.25/80.50 ms"), std::string::npos) << text;
  EXPECT_NE(text.find("4/10"), std::string::npos) << text;
}

TEST(FormatReportOutcomeTest, EchoesWhatWasReported) {
  const RouteOutcome outcome{
      .decision_id = 42, .ttft_ms = 12.75, .prompt_tokens = 512, .cached_tokens = 384};
  EXPECT_EQ(FormatReportOutcome(outcome, OutputFormat::kJson),
            R"({"decision_id":"42","ttft_ms":12.75,"prompt_tokens":512,"cached_tokens":384})"
            "\n");
  EXPECT_EQ(FormatReportOutcome(outcome, OutputFormat::kText),
            "reported decision 42: ttft 12.75 ms, 512 prompt tokens, 384 cached\n");
}

TEST(FormatLocateTest, JsonListsHoldersWithTheirTiers) {
  LocateResult r;
  r.total_blocks = 8;
  r.nodes.push_back({.node_id = "node-b",
                     .endpoint = "10.0.0.2:7070",
                     .matched_blocks = 6,
                     .tiers = {.hbm = 2, .dram = 4, .ssd = 0}});
  r.nodes.push_back({.node_id = "node-c",
                     .endpoint = "10.0.0.3:7070",
                     .matched_blocks = 3,
                     .tiers = {.hbm = 0, .dram = 0, .ssd = 3}});
  EXPECT_EQ(FormatLocate(r, OutputFormat::kJson),
            R"({"total_blocks":8,"nodes":[)"
            R"({"node":"node-b","endpoint":"10.0.0.2:7070","matched_blocks":6,)"
            R"("matched":{"hbm":2,"dram":4,"ssd":0}},)"
            R"({"node":"node-c","endpoint":"10.0.0.3:7070","matched_blocks":3,)"
            R"("matched":{"hbm":0,"dram":0,"ssd":3}}]})"
            "\n");
  const std::string text = FormatLocate(r, OutputFormat::kText);
  EXPECT_EQ(text.rfind("2 nodes hold a prefix of the 8-block chain\n", 0), 0u) << text;
  EXPECT_NE(text.find("node-b  10.0.0.2:7070"), std::string::npos) << text;
  EXPECT_NE(text.find("6/8"), std::string::npos) << text;
}

TEST(FormatLocateTest, NoHolderIsAnEmptyListNotAnError) {
  LocateResult r;
  r.total_blocks = 3;
  EXPECT_EQ(FormatLocate(r, OutputFormat::kJson), "{\"total_blocks\":3,\"nodes\":[]}\n");
  EXPECT_EQ(FormatLocate(r, OutputFormat::kText), "no node holds block 0 of the 3-block chain\n");
}

}  // namespace
}  // namespace strata::clients
