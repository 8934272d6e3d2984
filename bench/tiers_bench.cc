#include "bench/tiers_bench.h"

#include <linux/magic.h>
#include <stdlib.h>
#include <sys/vfs.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "bench/baselines.h"
#include "bench/node_bench.h"
#include "bench/process_stats.h"
#include "bench/throughput.h"
#include "cachenode/cache_node_service.h"
#include "cachenode/memory_backend.h"
#include "cachenode/memory_tier.h"
#include "cachenode/slab_arena.h"
#include "cachenode/ssd_tier.h"
#include "cachenode/tiered_store.h"
#include "clients/cache_node_client.h"
#include "common/byte_size.h"
#include "common/checksum.h"
#include "common/status_macros.h"

namespace strata::bench {
namespace {

using cachenode::BlockInfo;
using common::BlockKey;

// Targets the project set for 2 MiB blocks; bench/RESULTS.md reports each against them.
constexpr double kGrpcGetMinRatio = 0.8;  // batched chain Get vs one loopback TCP stream
constexpr double kSsdGetMinRatio = 0.7;   // SSD tier random get vs raw direct reads, same QD
constexpr double kSsdPutMinRatio = 0.6;   // SSD put vs raw direct sequential writes
constexpr double kSsdReadMaxAmp = 1.1;    // disk bytes read per payload byte served
constexpr double kNodeRssMaxRatio = 1.3;  // resident bytes per DRAM-tier byte
// A deeper queue than the SSD read path uses, to show what parallel reads would reach.
constexpr int kParallelReadQueueDepth = 4;

// A fresh directory removed with everything in it when this goes out of scope.
class TempDir {
 public:
  static absl::StatusOr<TempDir> Create(const std::string& parent) {
    std::string pattern = (std::filesystem::path(parent) / "strata-bench-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot create a directory under ", parent, ": ", std::strerror(errno)));
    }
    return TempDir(pattern);
  }
  TempDir(TempDir&& other) noexcept : path_(std::exchange(other.path_, "")) {}
  ~TempDir() {
    if (path_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const {
    return (std::filesystem::path(path_) / name).string();
  }

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

struct Run {
  const TiersOptions& options;
  const ProgressFn& progress;
  std::vector<Row> rows;

  uint64_t working_set() const { return options.blocks * options.block_bytes; }

  Row& Add(std::string path, std::string op, const Throughput& t, std::string baseline = "",
           double baseline_gbps = 0) {
    Row& r = rows.emplace_back();
    r.path = std::move(path);
    r.op = std::move(op);
    r.block_bytes = options.block_bytes;
    r.gbps = t.gbps();
    r.cpu_cores = t.cpu_cores();
    r.baseline = std::move(baseline);
    r.baseline_gbps = baseline_gbps;
    return r;
  }
};

BlockKey KeyOf(uint64_t i) {
  BlockKey key;
  key.namespace_id = 1;
  std::memcpy(key.hash.bytes.data(), &i, sizeof(i));
  return key;
}

// The blocks of a working set: key i holds bytes [i * block, (i + 1) * block) of `source`.
struct WorkingSet {
  AlignedBuffer source;
  std::vector<BlockInfo> infos;
  std::vector<std::span<const std::byte>> payloads;

  WorkingSet(uint64_t blocks, uint64_t block_bytes, uint64_t seed) : source(blocks * block_bytes) {
    FillRandom(source.span(), seed);
    for (uint64_t i = 0; i < blocks; ++i) {
      payloads.push_back(source.span().subspan(i * block_bytes, block_bytes));
      infos.push_back(BlockInfo{KeyOf(i), block_bytes, common::Checksum(payloads.back()),
                                static_cast<uint32_t>(i % 32)});
    }
  }
};

std::vector<uint64_t> Shuffled(uint64_t n, uint64_t seed) {
  std::vector<uint64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(seed));
  return order;
}

absl::StatusOr<std::unique_ptr<cachenode::MemoryTier>> MakeDramTier(uint64_t block_bytes,
                                                                    uint64_t blocks) {
  const uint64_t slab = cachenode::SlabArenaOptions{}.slab_bytes;
  cachenode::SlabArena probe({blocks * block_bytes * 2 + slab, slab});
  // Two spare slabs: a put that replaces a block allocates the new slot before freeing the old.
  const uint64_t capacity = blocks * probe.ChargeFor(block_bytes) + 2 * slab;
  STRATA_ASSIGN_OR_RETURN(auto memory,
                          cachenode::CreateHostMemory({capacity, true, true, "strata-bench-dram"}));
  return std::make_unique<cachenode::MemoryTier>(cachenode::MemoryTierOptions{}, std::move(memory));
}

absl::Status RunDram(Run& run, double memcpy_gbps) {
  const TiersOptions& o = run.options;
  WorkingSet ws(o.blocks, o.block_bytes, 31);
  const std::vector<uint64_t> order = Shuffled(o.blocks, 32);
  AlignedBuffer sink(run.working_set());
  {
    run.progress("measuring dram tier put/get (MemoryTier over the memfd arena)...");
    STRATA_ASSIGN_OR_RETURN(auto tier, MakeDramTier(o.block_bytes, o.blocks));
    // First pass faults the arena's pages in; the timed passes replace blocks in place.
    for (uint64_t i = 0; i < o.blocks; ++i)
      STRATA_RETURN_IF_ERROR(tier->Put(ws.infos[i], ws.payloads[i]));
    STRATA_ASSIGN_OR_RETURN(Throughput put,
                            RunFor(o.seconds_per_case, [&]() -> absl::StatusOr<uint64_t> {
                              for (uint64_t i : order)
                                STRATA_RETURN_IF_ERROR(tier->Put(ws.infos[i], ws.payloads[i]));
                              return run.working_set();
                            }));
    run.Add("dram", "put", put, "memcpy", memcpy_gbps).note = "tier copy into arena slot";
    // A get hands out a pinned view; the reader copies it to where it needs it.
    STRATA_ASSIGN_OR_RETURN(
        Throughput get, RunFor(o.seconds_per_case, [&]() -> absl::StatusOr<uint64_t> {
          for (uint64_t i : order) {
            STRATA_ASSIGN_OR_RETURN(cachenode::BlockHandle h, tier->Read(ws.infos[i].key));
            std::memcpy(sink.data() + i * o.block_bytes, h.data().data(), h.data().size());
          }
          return run.working_set();
        }));
    run.Add("dram", "get", get, "memcpy", memcpy_gbps).note = "pinned view + copy out";
  }
  {
    run.progress("measuring store(dram) put/get_chain (checksums verified)...");
    cachenode::StoreTiers tiers;
    STRATA_ASSIGN_OR_RETURN(tiers.dram, MakeDramTier(o.block_bytes, o.blocks));
    STRATA_ASSIGN_OR_RETURN(auto store, cachenode::TieredStore::Open({}, std::move(tiers)));
    for (uint64_t i = 0; i < o.blocks; ++i) {
      STRATA_RETURN_IF_ERROR(store->Put(ws.infos[i], ws.payloads[i], false).status());
    }
    STRATA_ASSIGN_OR_RETURN(
        Throughput put, RunFor(o.seconds_per_case, [&]() -> absl::StatusOr<uint64_t> {
          for (uint64_t i : order)
            STRATA_RETURN_IF_ERROR(store->Put(ws.infos[i], ws.payloads[i], false).status());
          return run.working_set();
        }));
    run.Add("store(dram)", "put", put, "memcpy", memcpy_gbps).note = "verify xxh3 + copy";
    std::vector<common::ChainHash> hashes;
    for (const BlockInfo& info : ws.infos) hashes.push_back(info.key.hash);
    const size_t window = std::min<size_t>(o.chain_blocks, hashes.size());
    STRATA_ASSIGN_OR_RETURN(
        Throughput get, RunFor(o.seconds_per_case, [&]() -> absl::StatusOr<uint64_t> {
          for (size_t begin = 0; begin < hashes.size(); begin += window) {
            const size_t n = std::min(window, hashes.size() - begin);
            std::vector<cachenode::BlockRead> reads =
                store->GetChain(1, std::span(hashes).subspan(begin, n), true);
            if (reads.size() != n)
              return absl::InternalError("store get_chain: a block went missing");
            for (size_t j = 0; j < n; ++j) {
              STRATA_RETURN_IF_ERROR(reads[j].status);
              const auto data = reads[j].handle.data();
              std::memcpy(sink.data() + (begin + j) * o.block_bytes, data.data(), data.size());
            }
          }
          return run.working_set();
        }));
    run.Add("store(dram)", "get_chain", get, "memcpy", memcpy_gbps).note =
        absl::StrCat("chains of ", window, ", verify xxh3 + copy out");
  }
  if (std::memcmp(sink.data(), ws.source.data(), run.working_set()) != 0) {
    return absl::DataLossError("dram: bytes read back differ from bytes written");
  }
  return absl::OkStatus();
}

absl::Status RunSsd(Run& run, const TempDir& dir) {
  const TiersOptions& o = run.options;
  const std::string raw_file = dir.Sub("direct.dat");
  run.progress("measuring direct sequential writes (O_DIRECT, fdatasync)...");
  absl::StatusOr<DiskResult> seq = MeasureDirectSequentialWrite(raw_file, o.block_bytes, o.blocks);
  if (absl::IsFailedPrecondition(seq.status())) {
    run.progress(absl::StrCat("skipping ssd cases: ", seq.status().message()));
    return absl::OkStatus();
  }
  if (!seq.ok()) return seq.status();
  const double seq_gbps = seq->throughput.gbps();
  run.Add("limit", "direct_seq_write", seq->throughput).amplification = seq->amplification;

  run.progress("measuring ssd tier put (PutBatch of write-behind batches + Flush)...");
  cachenode::SsdTierOptions ssd_options;
  ssd_options.path = dir.Sub("ssd");
  ssd_options.capacity_bytes = 2 * run.working_set();
  STRATA_ASSIGN_OR_RETURN(std::unique_ptr<cachenode::SsdTier> ssd,
                          cachenode::SsdTier::Open(ssd_options));
  std::string io_mode = ssd->direct_io() ? "" : " (buffered: O_DIRECT refused)";
  if (struct statfs fs; statfs(dir.path().c_str(), &fs) == 0 && fs.f_type == TMPFS_MAGIC) {
    run.progress(absl::StrCat("warning: ", dir.path(),
                              " is on tmpfs: the ssd rows measure memory, "
                              "not a disk; pass --dir on the SSD"));
    io_mode += " (tmpfs: not a disk)";
  }
  WorkingSet ws(o.blocks, o.block_bytes, 41);
  // The store's write-behind hands the SSD tier batches of write_behind_batch_bytes.
  const uint64_t batch = std::clamp<uint64_t>(
      cachenode::TieredStoreOptions{}.write_behind_batch_bytes / o.block_bytes, 1, o.blocks);
  const absl::StatusOr<IoCounters> io_before_put = ReadIoCounters();
  const absl::Time put_start = absl::Now();
  const Stopwatch put_watch;
  for (uint64_t begin = 0; begin < o.blocks; begin += batch) {
    const uint64_t n = std::min(batch, o.blocks - begin);
    for (const absl::Status& s : ssd->PutBatch(std::span(ws.infos).subspan(begin, n),
                                               std::span(ws.payloads).subspan(begin, n))) {
      STRATA_RETURN_IF_ERROR(s);
    }
  }
  const double write_seconds = SecondsSince(put_start);
  STRATA_RETURN_IF_ERROR(ssd->Flush());
  const Throughput put = put_watch.Finish(run.working_set());
  Row& put_row = run.Add("ssd", "put", put, "direct_seq_write", seq_gbps);
  put_row.target = Target{kSsdPutMinRatio, std::nullopt, std::nullopt};
  put_row.note = absl::StrCat("batches of ", batch, ", final Flush ",
                              static_cast<int>(100 * (1 - write_seconds / put.seconds)),
                              "% of time, amp=write", io_mode);
  put_row.amplification =
      MeasuredAmplification(io_before_put, ReadIoCounters(), /*reads=*/false, run.working_set());

  run.progress("measuring direct random reads (O_DIRECT, qd1)...");
  STRATA_ASSIGN_OR_RETURN(
      DiskResult qd1,
      MeasureDirectRandomReads(raw_file, o.block_bytes, o.blocks, 1, o.seconds_per_case, 51));
  run.Add("limit", "direct_rand_read_qd1", qd1.throughput).amplification = qd1.amplification;

  // Every block read back once and compared with what was written, outside the timed loops.
  for (uint64_t begin = 0; begin < o.blocks; begin += batch) {
    std::vector<BlockKey> keys;
    for (uint64_t i = begin; i < std::min(o.blocks, begin + batch); ++i)
      keys.push_back(ws.infos[i].key);
    std::vector<absl::StatusOr<cachenode::BlockHandle>> read = ssd->ReadBatch(keys);
    for (uint64_t j = 0; j < read.size(); ++j) {
      STRATA_RETURN_IF_ERROR(read[j].status());
      if (read[j]->data().size() != o.block_bytes ||
          std::memcmp(read[j]->data().data(), ws.payloads[begin + j].data(), o.block_bytes) != 0) {
        return absl::DataLossError(absl::StrCat("ssd: block ", begin + j, " read back differs"));
      }
    }
  }
  // Random distinct keys per call, as a chain names distinct blocks. (Repeated keys in one
  // MultiGet would be merged into one direct read and flatter the amplification.)
  std::mt19937_64 rng(61);
  std::vector<uint64_t> order = Shuffled(o.blocks, 62);
  const auto measure_reads = [&](const std::string& path, const std::string& op,
                                 uint64_t keys_per_call, const std::string& note) -> absl::Status {
    const absl::StatusOr<IoCounters> before = ReadIoCounters();
    std::vector<BlockKey> keys(keys_per_call);
    STRATA_ASSIGN_OR_RETURN(
        Throughput t, RunFor(o.seconds_per_case, [&]() -> absl::StatusOr<uint64_t> {
          // A partial Fisher-Yates shuffle picks keys_per_call distinct blocks.
          for (uint64_t k = 0; k < keys_per_call; ++k) {
            std::swap(order[k], order[k + rng() % (o.blocks - k)]);
            keys[k] = ws.infos[order[k]].key;
          }
          uint64_t bytes = 0;
          if (keys_per_call == 1) {
            STRATA_ASSIGN_OR_RETURN(cachenode::BlockHandle h, ssd->Read(keys[0]));
            bytes += h.data().size();
          } else {
            for (auto& h : ssd->ReadBatch(keys)) {
              STRATA_RETURN_IF_ERROR(h.status());
              bytes += h->data().size();
            }
          }
          if (bytes != keys_per_call * o.block_bytes) return absl::InternalError("ssd: short read");
          return bytes;
        }));
    Row& row = run.Add(path, op, t, "direct_rand_read_qd1", qd1.throughput.gbps());
    if (path == "ssd") row.target = Target{kSsdGetMinRatio, std::nullopt, kSsdReadMaxAmp};
    row.note = note + io_mode;
    row.amplification = MeasuredAmplification(before, ReadIoCounters(), /*reads=*/true, t.bytes);
    return absl::OkStatus();
  };
  run.progress("measuring ssd random get (Read, one key per call)...");
  STRATA_RETURN_IF_ERROR(measure_reads("ssd", "get", 1, "Read, 1 thread, amp=read"));
  // The node reads a Get window (get_window_bytes) of SSD blocks with one ReadBatch (MultiGet).
  const uint64_t window = std::clamp<uint64_t>(
      cachenode::CacheNodeServiceOptions{}.get_window_bytes / o.block_bytes, 1, o.blocks);
  run.progress("measuring ssd random get (ReadBatch / MultiGet)...");
  STRATA_RETURN_IF_ERROR(
      measure_reads("ssd", "get_batch", window,
                    absl::StrCat("ReadBatch of ", window,
                                 " random keys, 1 thread; MultiGet reads blobs serially")));

  run.progress(
      absl::StrCat("measuring direct random reads (O_DIRECT, qd", kParallelReadQueueDepth, ")..."));
  STRATA_ASSIGN_OR_RETURN(
      DiskResult qdn, MeasureDirectRandomReads(raw_file, o.block_bytes, o.blocks,
                                               kParallelReadQueueDepth, o.seconds_per_case, 71));
  Row& qdn_row = run.Add("limit", absl::StrCat("direct_rand_read_qd", kParallelReadQueueDepth),
                         qdn.throughput);
  qdn_row.amplification = qdn.amplification;
  qdn_row.note = "what parallel reads would reach; not a target";
  return absl::OkStatus();
}

}  // namespace

absl::Status TiersOptions::Validate() const {
  if (block_bytes == 0) return absl::InvalidArgumentError("--block-bytes must be > 0");
  if (block_bytes > (64ull << 20)) {
    return absl::InvalidArgumentError(
        "--block-bytes must be at most 64MiB (the node's largest block)");
  }
  if (blocks < 2) return absl::InvalidArgumentError("--blocks must be at least 2");
  if (dir.empty()) return absl::InvalidArgumentError("--dir is empty");
  if (seconds_per_case <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--seconds-per-case must be > 0");
  }
  if (chain_blocks == 0) return absl::InvalidArgumentError("chain_blocks must be > 0");
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Row>> RunTiers(const TiersOptions& options, const ProgressFn& progress) {
  STRATA_RETURN_IF_ERROR(options.Validate());
  STRATA_ASSIGN_OR_RETURN(TempDir dir, TempDir::Create(options.dir));
  progress(absl::StrCat("working directory ", dir.path(), "; ", options.blocks, " blocks of ",
                        common::FormatByteSize(options.block_bytes), ", ",
                        absl::FormatDuration(options.seconds_per_case), " per case"));
  Run run{options, progress, {}};

  progress(absl::StrCat("measuring a strata-cachenode process's resident memory (",
                        common::FormatByteSize(options.rss_dram_bytes),
                        " DRAM tier filled over gRPC)..."));
  STRATA_ASSIGN_OR_RETURN(
      ResidentResult rss,
      MeasureResidentNode(options.rss_dram_bytes, options.block_bytes, dir.Sub("rss-ssd")));
  Row rss_row;
  rss_row.path = "node";
  rss_row.op = absl::StrCat("rss_", options.rss_dram_bytes == (1ull << 30) ? "1gib" : "custom",
                            "_dram_full");
  rss_row.block_bytes = options.block_bytes;
  rss_row.rss_bytes = rss.rss_bytes;
  rss_row.baseline = "dram_tier_bytes";
  rss_row.ratio_override = static_cast<double>(rss.rss_bytes) / static_cast<double>(rss.dram_bytes);
  rss_row.target = Target{std::nullopt, kNodeRssMaxRatio, std::nullopt};
  rss_row.note = absl::StrCat("ratio=rss/dram; shmem ", common::FormatByteSize(rss.rss_shmem_bytes),
                              " + anon ", common::FormatByteSize(rss.rss_anon_bytes), "; peak ",
                              common::FormatByteSize(rss.peak_rss_bytes), "; ", rss.dram_blocks,
                              " blocks in dram; node process only");

  progress("measuring memcpy...");
  STRATA_ASSIGN_OR_RETURN(
      Throughput memcpy_limit,
      MeasureMemcpy(options.block_bytes, run.working_set(), options.seconds_per_case));
  run.Add("limit", "memcpy", memcpy_limit).note = "1 thread";
  progress("measuring one loopback TCP stream...");
  STRATA_ASSIGN_OR_RETURN(Throughput tcp,
                          MeasureLoopbackTcp(options.block_bytes, options.seconds_per_case));
  run.Add("limit", "tcp_loopback_1stream", tcp).note = "writer thread + reader";

  STRATA_RETURN_IF_ERROR(RunDram(run, memcpy_limit.gbps()));

  progress(absl::StrCat("measuring grpc chain get/put (in-process node, chains of ",
                        options.chain_blocks, ")..."));
  // The node's default chunk (1 MiB) against a smaller and the largest allowed one.
  const std::vector<uint64_t> other_chunks = {256ull << 10, cachenode::kMaxChunkBytes};
  STRATA_ASSIGN_OR_RETURN(GrpcChainResult grpc,
                          MeasureGrpcChain(options.block_bytes, options.chain_blocks,
                                           options.seconds_per_case, other_chunks));
  const std::string default_chunk = common::FormatByteSize(clients::ClientOptions{}.chunk_bytes);
  Row& get_row = run.Add("grpc", "get_chain", grpc.get, "tcp_loopback_1stream", tcp.gbps());
  get_row.target = Target{kGrpcGetMinRatio, std::nullopt, std::nullopt};
  get_row.note = absl::StrCat("GetInto, ", options.chain_blocks, " blocks/call, chunk ",
                              default_chunk, ", copy to caller");
  run.Add("grpc", "put_chain", grpc.put, "tcp_loopback_1stream", tcp.gbps()).note =
      absl::StrCat("Put, ", options.chain_blocks, " blocks/call, chunk ", default_chunk);
  for (const auto& [chunk, t] : grpc.get_by_chunk) {
    run.Add("grpc", "get_chain", t, "tcp_loopback_1stream", tcp.gbps()).note =
        absl::StrCat("as above, chunk ", common::FormatByteSize(chunk), "; not a target");
  }

  STRATA_RETURN_IF_ERROR(RunSsd(run, dir));
  run.rows.push_back(std::move(rss_row));
  return std::move(run.rows);
}

}  // namespace strata::bench
