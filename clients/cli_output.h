// What the `strata` CLI prints on success, as text for people or one-line JSON for scripts.
//
// Every function returns the complete output including the trailing newline. In JSON, values that
// may pass 2^53 (where JSON numbers lose precision) are strings: hash-derived namespace ids and
// checksums as 16-digit hex, router decision ids and node epochs as decimal (as proto3's JSON
// mapping writes a uint64, and as `report-outcome --decision-id` takes it back). Counts are
// numbers; milliseconds are numbers with their fraction. Tiers print as "hbm", "dram", "ssd"
// ("none" for a miss). Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "clients/cli_args.h"
#include "clients/router_client.h"
#include "common/block_key.h"
#include "strata/v1/cachenode.pb.h"

namespace strata::clients {

std::string_view TierName(strata::v1::Tier tier);

// What put and get report about one block. `path` is the get destination ("-" for stdout) and is
// empty for put.
struct BlockSummary {
  common::ChainHash hash;
  strata::v1::Tier tier = strata::v1::TIER_UNSPECIFIED;
  uint64_t size_bytes = 0;
  uint64_t checksum = 0;
  std::string path;
};

std::string FormatPut(const BlockSummary& block, OutputFormat format);
std::string FormatGet(const BlockSummary& block, OutputFormat format);

// `requested` is the chain that was asked about, so text output can name the blocks.
std::string FormatLookup(std::span<const common::ChainHash> requested,
                         const strata::v1::LookupResponse& response, OutputFormat format);

std::string FormatDelete(size_t requested, uint32_t deleted, OutputFormat format);

// Text: a table of tiers (used/capacity human-readable, blocks, hits, evictions, checksum
// failures), then misses and the node-wide counters. JSON: every field of the response.
std::string FormatStats(const strata::v1::StatsResponse& stats, OutputFormat format);

std::string FormatNamespaces(const strata::v1::ListNamespacesResponse& response,
                             OutputFormat format);

// JSON: {"persisted_blocks", "durable_blocks"}. Text: one line saying both.
std::string FormatSync(const strata::v1::SyncResponse& response, OutputFormat format);

std::string FormatRegisterNamespace(std::string_view name,
                                    const strata::v1::RegisterNamespaceResponse& response,
                                    OutputFormat format);

// Router commands. JSON of route: {"node", "endpoint", "matched": {"hbm", "dram", "ssd"},
// "matched_blocks", "total_blocks", "predicted_ttft_ms", "policy", "decision_id", "peers":
// [{"node", "endpoint", "from_block", "blocks", "tier"}], "shadow": [{"policy", "node",
// "matched_blocks", "predicted_ttft_ms"}]}. Text: the choice, its match and prediction, then one
// line per peer and shadow choice.
std::string FormatRoute(const RouteResult& result, OutputFormat format);

// JSON: {"total_blocks", "nodes": [{"node", "endpoint", "matched_blocks", "matched": {"hbm",
// "dram", "ssd"}}]}, nodes longest match first. Text: the chain's length, then a table, one holder
// per row.
std::string FormatLocate(const LocateResult& result, OutputFormat format);

// JSON: {"nodes": [{"node", "endpoint", "epoch", "load": {"queued", "running", "prefill_tokens",
// "free_hbm_blocks", "draining"}, "indexed_blocks", "heartbeat_age_ms", "source", "synced"}]}.
// Text: a table, one node per row.
std::string FormatNodes(std::span<const NodeStatus> nodes, OutputFormat format);

// JSON: {"spec", "requests", "policies": [...]} with each policy's fields named as in
// router.proto's PolicyFigures ("matched" as {"hbm", "dram", "ssd"}). Text: a table per policy.
std::string FormatExperimentReport(const ExperimentReport& report, OutputFormat format);

// JSON: {"decision_id", "ttft_ms", "prompt_tokens", "cached_tokens"}: what was reported.
std::string FormatReportOutcome(const RouteOutcome& outcome, OutputFormat format);

}  // namespace strata::clients
