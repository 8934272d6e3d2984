#include "clients/cli_output.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/byte_size.h"
#include "common/json_text.h"
#include "common/string_view_interop.h"

namespace strata::clients {

using common::ToAbsl;

namespace {

namespace v1 = ::strata::v1;
using common::JsonQuote;

std::string Hex64(uint64_t v) { return absl::StrFormat("%016x", v); }

// Builds one JSON object; values passed to Raw must already be JSON.
class JsonObject {
 public:
  JsonObject& Raw(std::string_view key, std::string_view json) {
    absl::StrAppend(&out_, out_.size() > 1 ? "," : "", JsonQuote(key), ":", ToAbsl(json));
    return *this;
  }
  JsonObject& Str(std::string_view key, std::string_view value) {
    return Raw(key, JsonQuote(value));
  }
  JsonObject& Num(std::string_view key, uint64_t value) { return Raw(key, absl::StrCat(value)); }
  JsonObject& Bool(std::string_view key, bool value) { return Raw(key, value ? "true" : "false"); }
  std::string Done() { return absl::StrCat(out_, "}"); }

 private:
  std::string out_ = "{";
};

std::string JsonArray(const std::vector<std::string>& elements) {
  return absl::StrCat("[", absl::StrJoin(elements, ","), "]");
}

std::string NamespacesJson(
    const google::protobuf::RepeatedPtrField<v1::NamespaceInfo>& namespaces) {
  std::vector<std::string> items;
  for (const v1::NamespaceInfo& ns : namespaces) {
    items.push_back(
        JsonObject().Str("name", ns.name()).Str("namespace_id", Hex64(ns.namespace_id())).Done());
  }
  return JsonArray(items);
}

// Left-aligns the first column and right-aligns the rest, two spaces apart.
std::string Table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()), 0);
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      const std::string pad(widths[c] - row[c].size(), ' ');
      absl::StrAppend(&line, c == 0 ? "" : "  ", c == 0 ? row[c] + pad : pad + row[c]);
    }
    line.erase(line.find_last_not_of(' ') + 1);
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

// The fields put and get report about a block.
JsonObject BlockJson(const BlockSummary& block) {
  JsonObject json;
  json.Str("hash", block.hash.Hex())
      .Str("tier", TierName(block.tier))
      .Num("size", block.size_bytes)
      .Str("checksum", Hex64(block.checksum));
  return json;
}

}  // namespace

std::string_view TierName(v1::Tier tier) {
  switch (tier) {
    case v1::TIER_HBM:
      return "hbm";
    case v1::TIER_DRAM:
      return "dram";
    case v1::TIER_SSD:
      return "ssd";
    default:
      return "none";
  }
}

std::string FormatPut(const BlockSummary& block, OutputFormat format) {
  if (format == OutputFormat::kJson) return BlockJson(block).Done() + "\n";
  return absl::StrFormat("stored %s in %s: %d bytes, checksum %s\n", block.hash.Hex(),
                         TierName(block.tier), block.size_bytes, Hex64(block.checksum));
}

std::string FormatGet(const BlockSummary& block, OutputFormat format) {
  if (format == OutputFormat::kJson) return BlockJson(block).Str("out", block.path).Done() + "\n";
  return absl::StrFormat("got %s from %s: %d bytes, checksum %s, written to %s\n", block.hash.Hex(),
                         TierName(block.tier), block.size_bytes, Hex64(block.checksum),
                         block.path == "-" ? "stdout" : block.path);
}

std::string FormatLookup(std::span<const common::ChainHash> requested,
                         const v1::LookupResponse& response, OutputFormat format) {
  if (format == OutputFormat::kJson) {
    std::vector<std::string> tiers;
    for (int tier : response.tiers()) {
      tiers.push_back(JsonQuote(TierName(static_cast<v1::Tier>(tier))));
    }
    return JsonObject()
               .Num("requested_blocks", requested.size())
               .Num("matched_blocks", response.matched_blocks())
               .Num("hbm_blocks", response.hbm_blocks())
               .Num("dram_blocks", response.dram_blocks())
               .Num("ssd_blocks", response.ssd_blocks())
               .Raw("tiers", JsonArray(tiers))
               .Done() +
           "\n";
  }
  std::string out = absl::StrFormat(
      "matched %d of %d blocks (hbm %d, dram %d, ssd %d)\n", response.matched_blocks(),
      requested.size(), response.hbm_blocks(), response.dram_blocks(), response.ssd_blocks());
  for (size_t i = 0; i < requested.size(); ++i) {
    const bool matched = i < response.matched_blocks();
    std::string_view where = "absent";
    if (matched) {
      where = static_cast<int>(i) < response.tiers_size()
                  ? TierName(static_cast<v1::Tier>(response.tiers(static_cast<int>(i))))
                  : "present";
    } else if (i > response.matched_blocks()) {
      where = "-  (after the first miss)";
    }
    absl::StrAppendFormat(&out, "%4d  %s  %s\n", i, requested[i].Hex(), where);
  }
  return out;
}

std::string FormatDelete(size_t requested, uint32_t deleted, OutputFormat format) {
  if (format == OutputFormat::kJson) {
    return JsonObject().Num("requested_blocks", requested).Num("deleted_blocks", deleted).Done() +
           "\n";
  }
  return absl::StrFormat("deleted %d of %d blocks\n", deleted, requested);
}

std::string FormatStats(const v1::StatsResponse& stats, OutputFormat format) {
  if (format == OutputFormat::kJson) {
    std::vector<std::string> tiers;
    for (const v1::TierStats& t : stats.tiers()) {
      tiers.push_back(JsonObject()
                          .Str("tier", TierName(t.tier()))
                          .Str("name", t.name())
                          .Bool("emulated", t.emulated())
                          .Num("capacity_bytes", t.capacity_bytes())
                          .Num("used_bytes", t.used_bytes())
                          .Num("blocks", t.blocks())
                          .Num("hits", t.hits())
                          .Num("evictions", t.evictions())
                          .Num("checksum_failures", t.checksum_failures())
                          .Num("bytes_written", t.bytes_written())
                          .Num("bytes_read", t.bytes_read())
                          .Done());
    }
    return JsonObject()
               .Raw("tiers", JsonArray(tiers))
               .Num("misses", stats.misses())
               .Num("blocks", stats.blocks())
               .Num("max_block_bytes", stats.max_block_bytes())
               .Num("demotions", stats.demotions())
               .Num("promotions", stats.promotions())
               .Num("write_behind_pending", stats.write_behind_pending())
               .Num("persisted_blocks", stats.persisted_blocks())
               .Raw("namespaces", NamespacesJson(stats.namespaces()))
               .Done() +
           "\n";
  }
  std::vector<std::vector<std::string>> rows = {
      {"TIER", "USED / CAPACITY", "BLOCKS", "HITS", "EVICTIONS", "CHECKSUM FAILURES"}};
  for (const v1::TierStats& t : stats.tiers()) {
    rows.push_back({t.name().empty() ? std::string(TierName(t.tier())) : t.name(),
                    absl::StrCat(common::FormatByteSize(t.used_bytes()), " / ",
                                 common::FormatByteSize(t.capacity_bytes())),
                    absl::StrCat(t.blocks()), absl::StrCat(t.hits()), absl::StrCat(t.evictions()),
                    absl::StrCat(t.checksum_failures())});
  }
  std::string out = Table(rows);
  absl::StrAppendFormat(&out, "misses: %d\n", stats.misses());
  absl::StrAppendFormat(&out,
                        "blocks: %d (persisted %d, write-behind pending %d); demotions %d, "
                        "promotions %d; max block %s\n",
                        stats.blocks(), stats.persisted_blocks(), stats.write_behind_pending(),
                        stats.demotions(), stats.promotions(),
                        common::FormatByteSize(stats.max_block_bytes()));
  std::vector<std::string> names;
  for (const v1::NamespaceInfo& ns : stats.namespaces()) names.push_back(ns.name());
  absl::StrAppend(&out, "namespaces: ", names.empty() ? "(none)" : absl::StrJoin(names, ", "),
                  "\n");
  return out;
}

std::string FormatNamespaces(const v1::ListNamespacesResponse& response, OutputFormat format) {
  if (format == OutputFormat::kJson) {
    return JsonObject().Raw("namespaces", NamespacesJson(response.namespaces())).Done() + "\n";
  }
  std::vector<std::vector<std::string>> rows = {{"NAMESPACE", "ID"}};
  for (const v1::NamespaceInfo& ns : response.namespaces()) {
    rows.push_back({ns.name(), Hex64(ns.namespace_id())});
  }
  return Table(rows);
}

std::string FormatRegisterNamespace(std::string_view name,
                                    const v1::RegisterNamespaceResponse& response,
                                    OutputFormat format) {
  if (format == OutputFormat::kJson) {
    return JsonObject()
               .Str("name", name)
               .Str("namespace_id", Hex64(response.namespace_id()))
               .Bool("created", response.created())
               .Done() +
           "\n";
  }
  return absl::StrFormat("%s namespace %s (id %s)\n",
                         response.created() ? "registered" : "already registered:", name,
                         Hex64(response.namespace_id()));
}

}  // namespace strata::clients
