#include "bench/workload.h"

#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "bench/report.h"
#include "bench/throughput.h"
#include "clients/cache_node_client.h"
#include "common/byte_size.h"
#include "common/json_text.h"
#include "common/status_macros.h"

namespace strata::bench {
namespace {

using strata::v1::Tier;

size_t TierIndex(Tier t) {
  const int i = static_cast<int>(t);
  return i >= 0 && i < 4 ? static_cast<size_t>(i) : 0;
}

// Reads one chain with a single Get call and compares every byte with the planned payloads.
class ChainReader {
 public:
  ChainReader(clients::CacheNodeClient* client, common::NamespaceId ns, const WorkloadPlan& plan,
              const std::vector<AlignedBuffer>& payloads)
      : client_(client), ns_(ns), plan_(plan), payloads_(payloads) {}

  absl::Status Read(const PlannedChain& chain, PhaseStats* phase, WorkloadSummary* summary) {
    std::vector<common::ChainHash> hashes;
    for (uint32_t b : chain.blocks) hashes.push_back(plan_.blocks[b].hash);
    std::vector<uint64_t> received(hashes.size(), 0);
    std::vector<bool> found(hashes.size(), false);
    std::vector<bool> mismatch(hashes.size(), false);
    const auto on_header = [&](const strata::v1::GetBlockHeader& h) {
      if (h.index() >= hashes.size()) return;
      if (h.found()) {
        found[h.index()] = true;
        ++phase->by_tier[TierIndex(h.tier())];
      } else {
        ++phase->misses;
      }
    };
    const auto on_chunk = [&](uint32_t index, std::string_view chunk) {
      if (index >= hashes.size()) return;
      const AlignedBuffer& expected = payloads_[chain.blocks[index]];
      const uint64_t at = received[index];
      if (at + chunk.size() > expected.size() ||
          std::memcmp(expected.data() + at, chunk.data(), chunk.size()) != 0) {
        mismatch[index] = true;
      }
      received[index] += chunk.size();
    };
    const absl::Time start = absl::Now();
    STRATA_RETURN_IF_ERROR(
        client_->GetInto(ns_, hashes, /*stop_at_first_miss=*/false, on_header, on_chunk));
    phase->seconds += SecondsSince(start);
    ++phase->calls;
    for (size_t i = 0; i < hashes.size(); ++i) {
      if (!found[i]) continue;
      ++phase->blocks;
      phase->bytes += received[i];
      if (mismatch[i] || received[i] != plan_.block_bytes) {
        ++summary->mismatched_blocks;
      } else {
        summary->bytes_verified += received[i];
      }
    }
    return absl::OkStatus();
  }

 private:
  clients::CacheNodeClient* client_;
  common::NamespaceId ns_;
  const WorkloadPlan& plan_;
  const std::vector<AlignedBuffer>& payloads_;
};

std::string TierCounts(const PhaseStats& p) {
  return absl::StrFormat("hbm %d, dram %d, ssd %d, misses %d", p.by_tier[1], p.by_tier[2],
                         p.by_tier[3], p.misses);
}

std::string PhaseJson(const PhaseStats& p) {
  return absl::StrFormat(
      "{\"calls\":%d,\"blocks\":%d,\"bytes\":%d,\"seconds\":%.4f,\"gbps\":%.4f,\"hbm\":%d,"
      "\"dram\":%d,\"ssd\":%d,\"misses\":%d}",
      p.calls, p.blocks, p.bytes, p.seconds, p.gbps(), p.by_tier[1], p.by_tier[2], p.by_tier[3],
      p.misses);
}

}  // namespace

absl::Status WorkloadOptions::Validate() const {
  if (node.empty()) return absl::InvalidArgumentError("--node HOST:PORT is required");
  if (namespace_name.empty()) return absl::InvalidArgumentError("--namespace is empty");
  if (hot_chains > plan.chains) {
    return absl::InvalidArgumentError("--hot-chains exceeds --chains");
  }
  return plan.Validate();
}

absl::StatusOr<WorkloadSummary> RunWorkload(
    const WorkloadOptions& options, const std::function<void(const std::string&)>& progress) {
  STRATA_RETURN_IF_ERROR(options.Validate());
  clients::ClientOptions client_options;
  client_options.target = options.node;
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<clients::CacheNodeClient> client,
                          clients::CacheNodeClient::Connect(client_options));
  // Registering is idempotent and tells us the node knows the namespace before any put.
  STRATA_ASSIGN_OR_RETURN(strata::v1::RegisterNamespaceResponse registered,
                          client->RegisterNamespace(options.namespace_name));
  const common::NamespaceId ns = registered.namespace_id();

  const WorkloadPlan plan = PlanWorkload(ns, options.plan);
  WorkloadSummary summary;
  summary.distinct_blocks = plan.blocks.size();
  summary.block_bytes = plan.block_bytes;
  progress(absl::StrCat("generating ", plan.blocks.size(), " distinct blocks of ",
                        common::FormatByteSize(plan.block_bytes), " (seed ", options.plan.seed,
                        ")..."));
  std::vector<AlignedBuffer> payloads;
  payloads.reserve(plan.blocks.size());
  for (const PlannedBlock& b : plan.blocks) {
    FillPayload(b, payloads.emplace_back(plan.block_bytes).span());
  }

  progress(absl::StrCat("putting ", plan.chains.size(), " chains of ",
                        options.plan.blocks_per_chain, " blocks (", options.plan.gpu_chains,
                        " from_gpu)..."));
  for (const PlannedChain& chain : plan.chains) {
    std::vector<clients::PutBlock> blocks;
    for (uint32_t b : chain.blocks) {
      blocks.push_back(clients::PutBlock{plan.blocks[b].hash, payloads[b].span(),
                                         plan.blocks[b].chain_position, chain.from_gpu});
    }
    const absl::Time start = absl::Now();
    STRATA_ASSIGN_OR_RETURN(std::vector<clients::PutResult> results, client->Put(ns, blocks));
    summary.put.seconds += SecondsSince(start);
    ++summary.put.calls;
    for (size_t i = 0; i < results.size(); ++i) {
      if (!results[i].status.ok()) {
        ++summary.refused_puts;
        progress(absl::StrCat("put refused: block ", plan.blocks[chain.blocks[i]].hash.Hex(), ": ",
                              results[i].status.ToString()));
        continue;
      }
      ++summary.put.blocks;
      summary.put.bytes += blocks[i].payload.size();
      ++summary.put.by_tier[TierIndex(results[i].tier)];
    }
  }

  ChainReader reader(client.get(), ns, plan, payloads);
  progress("reading every chain back (one Get per chain), verifying every byte...");
  for (const PlannedChain& chain : plan.chains) {
    STRATA_RETURN_IF_ERROR(reader.Read(chain, &summary.read, &summary));
  }
  progress(absl::StrCat("re-reading ", options.hot_chains, " hot chains ", options.hot_rereads,
                        " times (promotion)..."));
  for (uint32_t round = 0; round < options.hot_rereads; ++round) {
    for (uint32_t c = 0; c < options.hot_chains; ++c) {
      STRATA_RETURN_IF_ERROR(reader.Read(plan.chains[c], &summary.hot, &summary));
    }
  }
  STRATA_ASSIGN_OR_RETURN(summary.node_stats, client->Stats());
  return summary;
}

std::string FormatWorkloadText(const WorkloadSummary& s) {
  std::string out;
  absl::StrAppendFormat(&out, "workload: %d distinct blocks of %s\n", s.distinct_blocks,
                        common::FormatByteSize(s.block_bytes));
  absl::StrAppendFormat(&out, "  put   %4d calls %5d blocks %10s  %6.2f GB/s  landed: %s\n",
                        s.put.calls, s.put.blocks, common::FormatByteSize(s.put.bytes),
                        s.put.gbps(),
                        absl::StrFormat("hbm %d, dram %d, ssd %d", s.put.by_tier[1],
                                        s.put.by_tier[2], s.put.by_tier[3]));
  absl::StrAppendFormat(&out, "  read  %4d calls %5d blocks %10s  %6.2f GB/s  hits: %s\n",
                        s.read.calls, s.read.blocks, common::FormatByteSize(s.read.bytes),
                        s.read.gbps(), TierCounts(s.read));
  absl::StrAppendFormat(&out, "  hot   %4d calls %5d blocks %10s  %6.2f GB/s  hits: %s\n",
                        s.hot.calls, s.hot.blocks, common::FormatByteSize(s.hot.bytes),
                        s.hot.gbps(), TierCounts(s.hot));
  absl::StrAppendFormat(&out, "  verified %s; mismatched blocks %d; refused puts %d: %s\n",
                        common::FormatByteSize(s.bytes_verified), s.mismatched_blocks,
                        s.refused_puts, s.ok() ? "OK" : "FAILED");
  const strata::v1::StatsResponse& st = s.node_stats;
  absl::StrAppendFormat(&out,
                        "node: %d blocks, misses %d, demotions %d, promotions %d, "
                        "write-behind pending %d, persisted %d\n",
                        st.blocks(), st.misses(), st.demotions(), st.promotions(),
                        st.write_behind_pending(), st.persisted_blocks());
  absl::StrAppendFormat(&out, "  %-14s %21s %7s %7s %9s %9s\n", "tier", "used / capacity", "blocks",
                        "hits", "evictions", "checksum");
  for (const strata::v1::TierStats& t : st.tiers()) {
    absl::StrAppendFormat(&out, "  %-14s %21s %7d %7d %9d %9d\n", t.name(),
                          absl::StrCat(common::FormatByteSize(t.used_bytes()), " / ",
                                       common::FormatByteSize(t.capacity_bytes())),
                          t.blocks(), t.hits(), t.evictions(), t.checksum_failures());
  }
  return out;
}

std::string FormatWorkloadJson(const WorkloadSummary& s) {
  const strata::v1::StatsResponse& st = s.node_stats;
  std::vector<std::string> tiers;
  for (const strata::v1::TierStats& t : st.tiers()) {
    tiers.push_back(absl::StrFormat(
        "{\"name\":%s,\"emulated\":%s,\"used_bytes\":%d,\"capacity_bytes\":%d,\"blocks\":%d,"
        "\"hits\":%d,\"evictions\":%d,\"checksum_failures\":%d}",
        common::JsonQuote(t.name()), t.emulated() ? "true" : "false", t.used_bytes(),
        t.capacity_bytes(), t.blocks(), t.hits(), t.evictions(), t.checksum_failures()));
  }
  return absl::StrFormat(
      "{\"ok\":%s,\"distinct_blocks\":%d,\"block_bytes\":%d,\"put\":%s,\"read\":%s,\"hot\":%s,"
      "\"bytes_verified\":%d,\"mismatched_blocks\":%d,\"refused_puts\":%d,"
      "\"node\":{\"blocks\":%d,\"misses\":%d,\"demotions\":%d,\"promotions\":%d,"
      "\"write_behind_pending\":%d,\"persisted_blocks\":%d,\"tiers\":[%s]}}\n",
      s.ok() ? "true" : "false", s.distinct_blocks, s.block_bytes, PhaseJson(s.put),
      PhaseJson(s.read), PhaseJson(s.hot), s.bytes_verified, s.mismatched_blocks, s.refused_puts,
      st.blocks(), st.misses(), st.demotions(), st.promotions(), st.write_behind_pending(),
      st.persisted_blocks(), absl::StrJoin(tiers, ","));
}

}  // namespace strata::bench
