#include "bench/bench_args.h"

#include <cmath>
#include <functional>
#include <limits>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
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

// A comma-separated list of sizes ("256KiB,2MiB,32MiB").
Setter ByteList(const std::string& flag, std::vector<uint64_t>* out) {
  return [flag, out](const std::string& v) {
    std::vector<uint64_t> sizes;
    for (absl::string_view part : absl::StrSplit(common::ToAbsl(v), ',')) {
      absl::StatusOr<uint64_t> n = common::ParseByteSize(std::string(part));
      if (!n.ok()) return Bad(flag, v, std::string(n.status().message()));
      sizes.push_back(*n);
    }
    *out = std::move(sizes);
    return absl::OkStatus();
  };
}

Setter Paths(std::vector<TiersPath>* out) {
  return [out](const std::string& v) {
    absl::StatusOr<std::vector<TiersPath>> paths = ParseTiersPaths(v);
    if (!paths.ok()) return Bad("paths", v, std::string(paths.status().message()));
    *out = std::move(*paths);
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

Setter Real(const std::string& flag, double* out) {
  return [flag, out](const std::string& v) {
    double d = 0;
    if (!absl::SimpleAtod(common::ToAbsl(v), &d) || !std::isfinite(d) || d < 0) {
      return Bad(flag, v, "not a non-negative number");
    }
    *out = d;
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
                   {{"block-bytes", ByteList("block-bytes", &t.block_sizes)},
                    {"working-set", Bytes("working-set", &t.working_set_bytes)},
                    {"dir", Text(&t.dir)},
                    {"output", Output(&cmd.output)},
                    {"seconds-per-case", Seconds("seconds-per-case", &t.seconds_per_case)},
                    {"chain-bytes", Bytes("chain-bytes", &t.chain_bytes)},
                    {"rss-dram-bytes", Bytes("rss-dram-bytes", &t.rss_dram_bytes)},
                    {"paths", Paths(&t.paths)},
                    {"resp-clients", Integer("resp-clients", &t.resp_clients)},
                    {"ssd-read-threads", Integer("ssd-read-threads", &t.ssd.read_threads)},
                    {"ssd-flush-threads", Integer("ssd-flush-threads", &t.ssd.flush_threads)},
                    {"ssd-write-buffers", Integer("ssd-write-buffers", &t.ssd.max_write_buffers)},
                    {"ssd-write-io-bytes", Bytes("ssd-write-io-bytes", &t.ssd.write_io_bytes)}}));
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
  if (args[0] == "replay") {
    cmd.kind = BenchCommand::Kind::kReplay;
    ReplayOptions& r = cmd.replay;
    std::string mode = "sim", tiers = TierSetName(r.tiers), load = "when-faster";
    STRATA_RETURN_IF_ERROR(ApplyFlags(
        args, 1,
        {{"trace", Text(&r.trace_path)},
         {"requests", Integer("requests", &r.trace.max_requests)},
         {"time-scale", Real("time-scale", &r.trace.time_scale)},
         {"nodes", Integer("nodes", &r.nodes)},
         {"policy", Text(&r.experiment)},
         {"experiment", Text(&r.experiment)},
         {"tiers", Text(&tiers)},
         {"hbm-capacity", Bytes("hbm-capacity", &r.hbm_bytes)},
         {"dram-capacity", Bytes("dram-capacity", &r.dram_bytes)},
         {"ssd-capacity", Bytes("ssd-capacity", &r.ssd_bytes)},
         {"ssd-gbps", Real("ssd-gbps", &r.ssd_gbps)},
         {"peer-gbps", Real("peer-gbps", &r.peer_gbps)},
         {"load-policy", Text(&load)},
         {"mode", Text(&mode)},
         {"seed", Integer("seed", &r.seed)},
         {"route-memory", Real("route-memory", &r.route_memory_s)},
         {"engine-model", Text(&r.engine_file)},
         {"cost-model", Text(&r.cost_model_file)},
         {"speedup", Real("speedup", &r.live.speedup)},
         {"live-block-bytes", Bytes("live-block-bytes", &r.live.block_bytes)},
         {"bin-dir", Text(&r.live.bin_dir)},
         {"output", Output(&cmd.output)},
         {"plot", Text(&cmd.plot)}}));
    if (r.trace_path.empty()) return absl::InvalidArgumentError("replay needs --trace FILE");
    STRATA_ASSIGN_OR_RETURN(r.tiers, ParseTierSet(tiers));
    if (mode == "sim") {
      r.mode = ReplayMode::kSim;
    } else if (mode == "live") {
      r.mode = ReplayMode::kLive;
    } else {
      return Bad("mode", mode, "expected sim or live");
    }
    if (load == "when-faster") {
      r.load_policy = LoadPolicy::kWhenFaster;
    } else if (load == "always") {
      r.load_policy = LoadPolicy::kAlways;
    } else {
      return Bad("load-policy", load, "expected when-faster or always");
    }
    STRATA_RETURN_IF_ERROR(r.Validate());
    return cmd;
  }
  if (args[0] == "experiments") {
    cmd.kind = BenchCommand::Kind::kExperiments;
    ExperimentsOptions& x = cmd.experiments;
    STRATA_RETURN_IF_ERROR(ApplyFlags(
        args, 1,
        {{"trace", Text(&x.trace_path)},
         {"requests", Integer("requests", &x.max_requests)},
         {"saturated-time-scale", Real("saturated-time-scale", &x.saturated_time_scale)},
         {"results", Text(&x.results_path)},
         {"plot-dir", Text(&x.plot_dir)},
         {"only", Text(&x.only)}}));
    STRATA_RETURN_IF_ERROR(x.Validate());
    return cmd;
  }
  if (args[0] == "gen") {
    cmd.kind = BenchCommand::Kind::kGen;
    GenOptions& g = cmd.gen;
    STRATA_RETURN_IF_ERROR(ApplyFlags(
        args, 1,
        {{"out", Text(&cmd.gen_out)},
         {"seed", Integer("seed", &g.seed)},
         {"requests", Integer("requests", &g.requests)},
         {"rate", Real("rate", &g.rate_per_s)},
         {"chat-share", Real("chat-share", &g.chat_share)},
         {"document-share", Real("document-share", &g.document_share)},
         {"agent-share", Real("agent-share", &g.agent_share)},
         {"zipf", Real("zipf", &g.zipf_exponent)},
         {"system-prompts", Integer("system-prompts", &g.system_prompts)},
         {"system-prompt-tokens", Integer("system-prompt-tokens", &g.system_prompt_tokens)},
         {"mean-turns", Real("mean-turns", &g.mean_turns)},
         {"think-time", Real("think-time", &g.think_time_s)},
         {"documents", Integer("documents", &g.documents)},
         {"document-tokens", Integer("document-tokens", &g.document_tokens)},
         {"agents", Integer("agents", &g.agents)},
         {"agent-prompt-tokens", Integer("agent-prompt-tokens", &g.agent_prompt_tokens)},
         {"max-input-tokens", Integer("max-input-tokens", &g.max_input_tokens)}}));
    STRATA_RETURN_IF_ERROR(g.Validate());
    return cmd;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown command '", args[0], "' (expected tiers, workload, router, replay, gen or experiments)"));
}

std::string BenchUsage() {
  return R"(strata-bench: Strata benchmarks, each judged against limits measured in the same run.

  strata-bench tiers [--block-bytes 256KiB,2MiB,32MiB] [--working-set 512MiB] [--dir /tmp]
                     [--paths memory,shm,handover,grpc,resp,ssd,rss] [--seconds-per-case 2]
                     [--chain-bytes 64MiB] [--resp-clients 4] [--rss-dram-bytes 1GiB]
                     [--ssd-read-threads 4] [--ssd-flush-threads N] [--ssd-write-buffers N]
                     [--ssd-write-io-bytes BYTES] [--output text|json]
      Put/get throughput of every data plane and tier, once per block size, each next to the
      limit it is bounded by, measured in the same run: the DRAM tier and the shared-memory path
      against memcpy; gRPC against one loopback TCP stream; RESP (redis-benchmark) against the
      same benchmark on a redis-server it starts; the SSD tier against O_DIRECT sequential writes
      and random reads of the same sizes and concurrency on the same disk, and against db_bench
      with RocksDB's defaults. SSD read/write amplification from /proc/self/io; resident memory of
      a node whose DRAM tier is full. Peers not installed (redis-server, redis-benchmark,
      db_bench) are skipped with a note. Disk cases run in a fresh directory under --dir,
      removed at the end. --ssd-* override the SSD tier's settings (defaults: the node's).

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

  strata-bench replay --trace FILE [--requests N] [--time-scale 1] [--nodes 4]
                      [--policy locality | --experiment 'locality=50,round_robin=50']
                      [--tiers hbm|hbm+dram|hbm+dram+ssd|hbm+ssd] [--hbm-capacity BYTES]
                      [--dram-capacity 1TiB] [--ssd-capacity 8TiB] [--ssd-gbps 6.8]
                      [--peer-gbps 12.5] [--load-policy when-faster|always] [--mode sim|live]
                      [--seed 1] [--route-memory 30] [--engine-model FILE] [--cost-model FILE] [--speedup 10]
                      [--live-block-bytes 64KiB] [--bin-dir DIR] [--output text|json]
                      [--plot FILE.png]
      Replays a Mooncake-format trace (JSONL: timestamp ms, input_length, output_length,
      hash_ids of 512-token blocks) through --nodes simulated H100 engines (continuous batching,
      chunked prefill, HBM prefix cache; costs from bench/engine_h100_llama3_8b.json and
      router/cost_model_h100_llama3_8b.json) routed by Strata's router and backed by Strata's
      tiers. Capacities are per node; --hbm-capacity defaults to the GPU model's KV room.
      --mode sim (default) is a deterministic simulation in process (real router core, real
      cache-node stores with 64-byte stand-in payloads); --mode live starts a strata-router and
      --nodes strata-cachenode processes on loopback and replays with real RPCs and scaled
      payloads, --speedup times faster than the trace's clock. Prints throughput, TTFT and
      end-to-end percentiles, hit ratio per tier, the ideal hit ratio and load imbalance, per
      policy for an experiment; --route-memory is the router's horizon (seconds) for routed
      chains not yet reported by their node (strata-router --route-memory); --plot draws TTFT and hit ratio per policy (gnuplot).

  strata-bench gen [--out FILE] [--seed 1] [--requests 2000] [--rate 4] [--chat-share 0.4]
                   [--document-share 0.45] [--agent-share 0.15] [--zipf 1]
                   [--system-prompts 16] [--system-prompt-tokens 2048] [--mean-turns 4]
                   [--think-time 20] [--documents 10000] [--document-tokens 8192] [--agents 8]
                   [--agent-prompt-tokens 6144] [--max-input-tokens 131072]
      Writes a synthetic Mooncake-format trace (stdout without --out): Poisson arrivals of chat
      sessions (shared system prompts, growing conversations), document QA (shared documents)
      and agents (long shared tool prompts, growing scratchpads), with Zipf popularity. Same
      seed and flags, same bytes. A summary (requests, tokens, ideal hit ratio) goes to stderr.

  strata-bench experiments --trace FILE [--requests N] [--saturated-time-scale 0.05]
                           [--results bench/RESULTS.md] [--plot-dir bench/plots] [--only abcd]
      Runs the four replay experiments in sim mode: (a) HBM only vs +DRAM vs +DRAM+SSD on 1
      and 4 nodes; (b) 1, 2, 4, 8 nodes under locality; (c) the five routing policies at 2, 4,
      8 nodes, plus an A/B run with shadow evaluation; (d) SSD-backed vs DRAM-backed reuse as
      SSD bandwidth varies. Throughput runs compress arrivals by --saturated-time-scale;
      latency runs keep the trace's pace. Rewrites the marked section of --results with
      tables, targets met or missed, the command of every row, and PNG plots (gnuplot) in
      --plot-dir. Takes a few minutes on the 3,993-request Mooncake trace.

Exit status: 0 success; 1 a measurement or RPC failed, or bytes read back differed; 2 bad usage.
Progress goes to stderr; results to stdout.
)";
}

}  // namespace strata::bench
