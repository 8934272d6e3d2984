#include "clients/cli_output.h"

#include <algorithm>
#include <charconv>
#include <cmath>
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

// The shortest text that reads back as `v`; JSON has no NaN or infinity, so those become null.
std::string JsonDouble(double v) {
  if (!std::isfinite(v)) return "null";
  char buffer[32];
  const std::to_chars_result r = std::to_chars(buffer, buffer + sizeof(buffer), v);
  return std::string(buffer, r.ptr);
}

std::string Ms(double v) { return absl::StrFormat("%.2f ms", v); }

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
  JsonObject& Double(std::string_view key, double value) { return Raw(key, JsonDouble(value)); }
  // A 64-bit id as a decimal string, exact past 2^53.
  JsonObject& Id(std::string_view key, uint64_t value) { return Str(key, absl::StrCat(value)); }
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

std::string TierCountsJson(const TierCounts& t) {
  return JsonObject().Num("hbm", t.hbm).Num("dram", t.dram).Num("ssd", t.ssd).Done();
}

std::string TierCountsText(const TierCounts& t) {
  return absl::StrFormat("hbm %d, dram %d, ssd %d", t.hbm, t.dram, t.ssd);
}

std::string NodeJson(const NodeStatus& n) {
  const std::string load = JsonObject()
                               .Num("queued", n.load.queued_requests)
                               .Num("running", n.load.running_requests)
                               .Num("prefill_tokens", n.load.prefill_tokens_in_flight)
                               .Num("free_hbm_blocks", n.load.free_hbm_blocks)
                               .Bool("draining", n.load.draining)
                               .Done();
  return JsonObject()
      .Str("node", n.node_id)
      .Str("endpoint", n.endpoint)
      .Id("epoch", n.epoch)
      .Raw("load", load)
      .Num("indexed_blocks", n.indexed_blocks)
      .Num("heartbeat_age_ms", n.heartbeat_age_ms)
      .Str("source", n.source)
      .Bool("synced", n.synced)
      .Done();
}

std::string PolicyJson(const PolicyFigures& p) {
  return JsonObject()
      .Str("policy", p.policy)
      .Num("weight", p.weight)
      .Num("decisions", p.decisions)
      .Raw("matched", TierCountsJson(p.matched))
      .Num("requested_blocks", p.requested_blocks)
      .Double("mean_predicted_ttft_ms", p.mean_predicted_ttft_ms)
      .Num("outcomes", p.outcomes)
      .Double("mean_reported_ttft_ms", p.mean_reported_ttft_ms)
      .Double("p50_reported_ttft_ms", p.p50_reported_ttft_ms)
      .Double("p99_reported_ttft_ms", p.p99_reported_ttft_ms)
      .Num("shadow_requests", p.shadow_requests)
      .Double("mean_shadow_hit_blocks", p.mean_shadow_hit_blocks)
      .Double("mean_shadow_predicted_ttft_ms", p.mean_shadow_predicted_ttft_ms)
      .Num("shadow_agreements", p.shadow_agreements)
      .Done();
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

std::string FormatSync(const v1::SyncResponse& response, OutputFormat format) {
  if (format == OutputFormat::kJson) {
    return JsonObject()
               .Num("persisted_blocks", response.persisted_blocks())
               .Num("durable_blocks", response.durable_blocks())
               .Done() +
           "\n";
  }
  return absl::StrFormat("synced: %d blocks durable on SSD (%d of them were waiting for write-behind)\n",
                         response.durable_blocks(), response.persisted_blocks());
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

std::string FormatRoute(const RouteResult& r, OutputFormat format) {
  if (format == OutputFormat::kJson) {
    std::vector<std::string> peers;
    for (const PeerSource& p : r.peers) {
      peers.push_back(JsonObject()
                          .Str("node", p.node_id)
                          .Str("endpoint", p.endpoint)
                          .Num("from_block", p.from_block)
                          .Num("blocks", p.blocks)
                          .Str("tier", TierName(p.tier))
                          .Done());
    }
    std::vector<std::string> shadow;
    for (const ShadowChoice& c : r.shadow) {
      shadow.push_back(JsonObject()
                           .Str("policy", c.policy)
                           .Str("node", c.node_id)
                           .Num("matched_blocks", c.matched_blocks)
                           .Double("predicted_ttft_ms", c.predicted_ttft_ms)
                           .Done());
    }
    return JsonObject()
               .Str("node", r.node_id)
               .Str("endpoint", r.endpoint)
               .Raw("matched", TierCountsJson(r.matched))
               .Num("matched_blocks", r.matched_blocks)
               .Num("total_blocks", r.total_blocks)
               .Double("predicted_ttft_ms", r.predicted_ttft_ms)
               .Str("policy", r.policy)
               .Id("decision_id", r.decision_id)
               .Raw("peers", JsonArray(peers))
               .Raw("shadow", JsonArray(shadow))
               .Done() +
           "\n";
  }
  std::string out = absl::StrFormat(
      "route to %s (%s) by %s, decision %d\nmatched %d of %d blocks (%s); predicted ttft %s\n",
      r.node_id, r.endpoint, r.policy, r.decision_id, r.matched_blocks, r.total_blocks,
      TierCountsText(r.matched), Ms(r.predicted_ttft_ms));
  for (const PeerSource& p : r.peers) {
    absl::StrAppendFormat(&out, "peer %s (%s) holds %d more blocks from block %d, slowest in %s\n",
                          p.node_id, p.endpoint, p.blocks, p.from_block, TierName(p.tier));
  }
  for (const ShadowChoice& c : r.shadow) {
    absl::StrAppendFormat(&out, "shadow %s would pick %s: %d blocks matched, predicted ttft %s\n",
                          c.policy, c.node_id, c.matched_blocks, Ms(c.predicted_ttft_ms));
  }
  return out;
}

std::string FormatLocate(const LocateResult& r, OutputFormat format) {
  if (format == OutputFormat::kJson) {
    std::vector<std::string> nodes;
    for (const NodeHolding& n : r.nodes) {
      nodes.push_back(JsonObject()
                          .Str("node", n.node_id)
                          .Str("endpoint", n.endpoint)
                          .Num("matched_blocks", n.matched_blocks)
                          .Raw("matched", TierCountsJson(n.tiers))
                          .Done());
    }
    return JsonObject().Num("total_blocks", r.total_blocks).Raw("nodes", JsonArray(nodes)).Done() +
           "\n";
  }
  if (r.nodes.empty()) {
    return absl::StrFormat("no node holds block 0 of the %d-block chain\n", r.total_blocks);
  }
  std::vector<std::vector<std::string>> rows = {
      {"NODE", "ENDPOINT", "MATCHED BLOCKS", "HBM", "DRAM", "SSD"}};
  for (const NodeHolding& n : r.nodes) {
    rows.push_back({n.node_id, n.endpoint, absl::StrCat(n.matched_blocks, "/", r.total_blocks),
                    absl::StrCat(n.tiers.hbm), absl::StrCat(n.tiers.dram),
                    absl::StrCat(n.tiers.ssd)});
  }
  return absl::StrCat(r.nodes.size(), r.nodes.size() == 1 ? " node holds" : " nodes hold",
                      " a prefix of the ", r.total_blocks, "-block chain\n", Table(rows));
}

std::string FormatNodes(std::span<const NodeStatus> nodes, OutputFormat format) {
  if (format == OutputFormat::kJson) {
    std::vector<std::string> items;
    for (const NodeStatus& n : nodes) items.push_back(NodeJson(n));
    return JsonObject().Raw("nodes", JsonArray(items)).Done() + "\n";
  }
  if (nodes.empty()) return "no live nodes\n";
  std::vector<std::vector<std::string>> rows = {{"NODE", "ENDPOINT", "SOURCE", "EPOCH", "QUEUED",
                                                 "RUNNING", "PREFILL TOKENS", "FREE HBM BLOCKS",
                                                 "INDEXED BLOCKS", "HEARTBEAT AGE", "STATE"}};
  for (const NodeStatus& n : nodes) {
    std::vector<std::string> state;
    if (n.load.draining) state.push_back("draining");
    if (!n.synced) state.push_back("awaiting snapshot");
    rows.push_back({n.node_id, n.endpoint, n.source, absl::StrCat(n.epoch),
                    absl::StrCat(n.load.queued_requests), absl::StrCat(n.load.running_requests),
                    absl::StrCat(n.load.prefill_tokens_in_flight),
                    absl::StrCat(n.load.free_hbm_blocks), absl::StrCat(n.indexed_blocks),
                    absl::StrCat(n.heartbeat_age_ms, " ms"),
                    state.empty() ? "ok" : absl::StrJoin(state, ", ")});
  }
  return Table(rows);
}

std::string FormatExperimentReport(const ExperimentReport& report, OutputFormat format) {
  if (format == OutputFormat::kJson) {
    std::vector<std::string> policies;
    for (const PolicyFigures& p : report.policies) policies.push_back(PolicyJson(p));
    return JsonObject()
               .Str("spec", report.spec)
               .Num("requests", report.requests)
               .Raw("policies", JsonArray(policies))
               .Done() +
           "\n";
  }
  std::vector<std::vector<std::string>> rows = {
      {"POLICY", "WEIGHT", "DECISIONS", "MATCHED HBM/DRAM/SSD", "OF BLOCKS", "PREDICTED TTFT",
       "OUTCOMES", "REPORTED TTFT MEAN/P50/P99", "SHADOW HIT BLOCKS", "SHADOW TTFT", "AGREES"}};
  for (const PolicyFigures& p : report.policies) {
    rows.push_back(
        {p.policy, absl::StrCat(p.weight), absl::StrCat(p.decisions),
         absl::StrFormat("%d/%d/%d", p.matched.hbm, p.matched.dram, p.matched.ssd),
         absl::StrCat(p.requested_blocks), Ms(p.mean_predicted_ttft_ms), absl::StrCat(p.outcomes),
         absl::StrFormat("%.2f/%.2f/%.2f ms", p.mean_reported_ttft_ms, p.p50_reported_ttft_ms,
                         p.p99_reported_ttft_ms),
         absl::StrFormat("%.2f", p.mean_shadow_hit_blocks), Ms(p.mean_shadow_predicted_ttft_ms),
         absl::StrCat(p.shadow_agreements, "/", p.shadow_requests)});
  }
  return absl::StrCat("experiment ", report.spec.empty() ? "(none)" : report.spec, ": ",
                      report.requests, " requests\n", Table(rows));
}

std::string FormatReportOutcome(const RouteOutcome& outcome, OutputFormat format) {
  if (format == OutputFormat::kJson) {
    return JsonObject()
               .Id("decision_id", outcome.decision_id)
               .Double("ttft_ms", outcome.ttft_ms)
               .Num("prompt_tokens", outcome.prompt_tokens)
               .Num("cached_tokens", outcome.cached_tokens)
               .Done() +
           "\n";
  }
  return absl::StrFormat("reported decision %d: ttft %s, %d prompt tokens, %d cached\n",
                         outcome.decision_id, Ms(outcome.ttft_ms), outcome.prompt_tokens,
                         outcome.cached_tokens);
}

}  // namespace strata::clients
