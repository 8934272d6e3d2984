#include "clients/cli_output.h"

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

}  // namespace
}  // namespace strata::clients
