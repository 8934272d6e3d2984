// What the `strata` CLI prints on success, as text for people or one-line JSON for scripts.
//
// Every function returns the complete output including the trailing newline. In JSON, 64-bit ids
// and checksums are 16-digit hex strings (JSON numbers lose precision past 2^53); byte counts are
// numbers. Tiers print as "hbm", "dram", "ssd" ("none" for a miss). Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "clients/cli_args.h"
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

std::string FormatRegisterNamespace(std::string_view name,
                                    const strata::v1::RegisterNamespaceResponse& response,
                                    OutputFormat format);

}  // namespace strata::clients
