#include "bench/bench_args.h"

#include <functional>
#include <limits>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/byte_size.h"
#include "common/status_macros.h"
#include "common/string_view_interop.h"

namespace strata::bench {
namespace {

using Setter = std::function<absl::Status(const std::string& value)>;

absl::Status Bad(const std::string& flag, const std::string& value, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, " '", value, "': ", why));
}

Setter Bytes(const std::string& flag, uint64_t* out) {
  return [flag, out](const std::string& v) {
    absl::StatusOr<uint64_t> n = common::ParseByteSize(v);
    if (!n.ok()) return Bad(flag, v, std::string(n.status().message()));
    *out = *n;
    return absl::OkStatus();
  };
}

template <typename T>
Setter Integer(const std::string& flag, T* out) {
  return [flag, out](const std::string& v) {
    uint64_t n = 0;
    if (!absl::SimpleAtoi(common::ToAbsl(v), &n) ||
        n > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
      return Bad(flag, v, "not a non-negative integer in range");
    }
    *out = static_cast<T>(n);
    return absl::OkStatus();
  };
}

Setter Text(std::string* out) {
  return [out](const std::string& v) {
    *out = v;
    return absl::OkStatus();
  };
}

Setter Seconds(const std::string& flag, absl::Duration* out) {
  return [flag, out](const std::string& v) {
    double s = 0;
    if (!absl::SimpleAtod(common::ToAbsl(v), &s) || !(s > 0) || s > 3600) {
      return Bad(flag, v, "not a number of seconds in (0, 3600]");
    }
    *out = absl::Seconds(s);
    return absl::OkStatus();
  };
}

Setter Output(OutputFormat* out) {
  return [out](const std::string& v) {
    if (v == "text") {
      *out = OutputFormat::kText;
    } else if (v == "json") {
      *out = OutputFormat::kJson;
    } else {
      return Bad("output", v, "expected text or json");
    }
    return absl::OkStatus();
  };
}

// Applies `--name value` / `--name=value` pairs to the command's setters.
absl::Status ApplyFlags(const std::vector<std::string>& args, size_t first,
                        const std::map<std::string, Setter>& setters) {
  for (size_t i = first; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.rfind("--", 0) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", arg, "'"));
    }
    std::string name = arg.substr(2);
    std::string value;
    if (const size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    } else {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
      }
      value = args[++i];
    }
    auto it = setters.find(name);
    if (it == setters.end())
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    STRATA_RETURN_IF_ERROR(it->second(value));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<BenchCommand> ParseBenchArgs(const std::vector<std::string>& args) {
  BenchCommand cmd;
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") return cmd;
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h") return cmd;
  }
  if (args[0] == "tiers") {
    cmd.kind = BenchCommand::Kind::kTiers;
    TiersOptions& t = cmd.tiers;
    STRATA_RETURN_IF_ERROR(
        ApplyFlags(args, 1,
                   {{"block-bytes", Bytes("block-bytes", &t.block_bytes)},
                    {"blocks", Integer("blocks", &t.blocks)},
                    {"dir", Text(&t.dir)},
                    {"output", Output(&cmd.output)},
                    {"seconds-per-case", Seconds("seconds-per-case", &t.seconds_per_case)},
                    {"chain-blocks", Integer("chain-blocks", &t.chain_blocks)},
                    {"rss-dram-bytes", Bytes("rss-dram-bytes", &t.rss_dram_bytes)}}));
    STRATA_RETURN_IF_ERROR(t.Validate());
    return cmd;
  }
  if (args[0] == "workload") {
    cmd.kind = BenchCommand::Kind::kWorkload;
    WorkloadOptions& w = cmd.workload;
    STRATA_RETURN_IF_ERROR(ApplyFlags(
        args, 1,
        {{"node", Text(&w.node)},
         {"namespace", Text(&w.namespace_name)},
         {"chains", Integer("chains", &w.plan.chains)},
         {"blocks-per-chain", Integer("blocks-per-chain", &w.plan.blocks_per_chain)},
         {"block-bytes", Bytes("block-bytes", &w.plan.block_bytes)},
         {"seed", Integer("seed", &w.plan.seed)},
         {"shared-prefix-blocks", Integer("shared-prefix-blocks", &w.plan.shared_prefix_blocks)},
         {"gpu-chains", Integer("gpu-chains", &w.plan.gpu_chains)},
         {"hot-chains", Integer("hot-chains", &w.hot_chains)},
         {"hot-rereads", Integer("hot-rereads", &w.hot_rereads)},
         {"output", Output(&cmd.output)}}));
    STRATA_RETURN_IF_ERROR(w.Validate());
    return cmd;
  }
  if (args[0] == "router") {
    cmd.kind = BenchCommand::Kind::kRouter;
    RouterBenchOptions& r = cmd.router;
    STRATA_RETURN_IF_ERROR(
        ApplyFlags(args, 1,
                   {{"nodes", Integer("nodes", &r.nodes)},
                    {"blocks", Integer("blocks", &r.entries)},
                    {"chain", Integer("chain", &r.chain_blocks)},
                    {"shared-prefixes", Integer("shared-prefixes", &r.shared_prefixes)},
                    {"shared-blocks", Integer("shared-blocks", &r.shared_blocks)},
                    {"batch-keys", Integer("batch-keys", &r.batch_keys)},
                    {"routes", Integer("routes", &r.routes)},
                    {"churn-events", Integer("churn-events", &r.churn_events)},
                    {"shards", Integer("shards", &r.shards)},
                    {"seed", Integer("seed", &r.seed)},
                    {"output", Output(&cmd.output)}}));
    STRATA_RETURN_IF_ERROR(r.Validate());
    return cmd;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown command '", args[0], "' (expected tiers, workload or router)"));
}

std::string BenchUsage() {
  return R"(strata-bench: Strata benchmarks, each judged against limits measured in the same run.

  strata-bench tiers [--block-bytes 2MiB] [--blocks 256] [--dir /tmp] [--output text|json]
                     [--seconds-per-case 2] [--chain-blocks 32] [--rss-dram-bytes 1GiB]
      Put/get throughput of the DRAM tier, the SSD tier and the gRPC data plane next to memcpy,
      O_DIRECT sequential writes / random reads on the same disk, and one loopback TCP stream;
      SSD read/write amplification from /proc/self/io; resident memory of a node whose DRAM
      tier is full. Disk cases run in a fresh directory under --dir, removed at the end.

  strata-bench workload --node HOST:PORT [--namespace default] [--chains 8]
                        [--blocks-per-chain 8] [--block-bytes 2MiB] [--seed 1]
                        [--shared-prefix-blocks 2] [--gpu-chains 2] [--hot-chains 2]
                        [--hot-rereads 3] [--output text|json]
      Writes deterministic prefix chains to a running node, reads each chain back with one Get,
      verifies every byte, re-reads a hot subset (promotion), prints hits per tier and the node's
      Stats.

  strata-bench router [--nodes 64] [--blocks 10000000] [--chain 64] [--shared-prefixes 16]
                      [--shared-blocks 16] [--batch-keys 1024] [--routes 300000]
                      [--churn-events 10000000] [--shards 64] [--seed 1] [--output text|json]
      The router's index in process: fills it through EventIngest with --blocks (block, node)
      entries over --nodes nodes (chains of --chain blocks whose first --shared-blocks are one
      of --shared-prefixes system prompts held by every node), then reports ingest block
      events/s (fill, churn, parse+decode+apply), route (Match) latency p50/p99/p99.9 alone and
      during ingest, and bytes per (block, node) entry.

Exit status: 0 success; 1 a measurement or RPC failed, or bytes read back differed; 2 bad usage.
Progress goes to stderr; results to stdout.
)";
}

}  // namespace strata::bench
