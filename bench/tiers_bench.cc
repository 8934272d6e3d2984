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
#include "absl/strings/str_split.h"
#include "bench/baselines.h"
#include "bench/db_bench_peer.h"
#include "bench/node_bench.h"
#include "bench/process_stats.h"
#include "bench/resp_bench.h"
#include "bench/shm_bench.h"
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
#include "common/string_view_interop.h"

namespace strata::bench {
namespace {

using cachenode::BlockInfo;
using common::BlockKey;

// Targets the project set for 2 MiB blocks (issue "data path at the physical limit"); rows of
// other sizes carry no target. bench/RESULTS.md reports each against them.
constexpr uint64_t kTargetBlockBytes = 2ull << 20;
constexpr double kShmGetMinRatio = 0.8;   // shared-memory get vs memcpy
constexpr double kGrpcGetMinRatio = 0.9;  // batched chain Get vs one loopback TCP stream
constexpr double kSsdGetMinRatio = 0.9;   // SSD tier random get vs raw direct reads, same QD
constexpr double kSsdPutMinRatio = 0.8;   // SSD put vs raw direct sequential writes
constexpr double kSsdVsRocksDefaultsMinRatio = 3.0;  // SSD get vs db_bench, RocksDB defaults
constexpr double kSsdReadMaxAmp = 1.05;   // disk bytes read per payload byte served
constexpr double kNodeRssMaxRatio = 1.3;  // resident bytes per DRAM-tier byte
// Working sets never shrink below this many blocks, so large blocks still get random reads.
constexpr uint64_t kMinBlocks = 8;

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
  uint64_t block_bytes = 0;
  uint64_t blocks = 0;
  std::vector<Row> rows;

  uint64_t working_set() const { return blocks * block_bytes; }
  // Blocks per chain call: the chain window in bytes, at least one block, at most the set.
  uint32_t chain_blocks() const {
    return static_cast<uint32_t>(
        std::clamp<uint64_t>(options.chain_bytes / block_bytes, 1, std::max<uint64_t>(blocks, 1)));
  }
  std::optional<Target> TargetIf(Target t) const {
    if (block_bytes != kTargetBlockBytes) return std::nullopt;
    return t;
  }

  Row& Add(std::string path, std::string op, const Throughput& t, std::string baseline = "",
           double baseline_gbps = 0) {
    Row& r = rows.emplace_back();
    r.path = std::move(path);
    r.op = std::move(op);
    r.block_bytes = block_bytes;
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
  // Room for two more blocks: a put that replaces a block allocates the new slot before freeing
  // the old (a block larger than a slab needs a free run of whole slabs).
  const uint64_t charge = probe.ChargeFor(block_bytes);
  const uint64_t capacity = blocks * charge + 2 * std::max(slab, charge);
  STRATA_ASSIGN_OR_RETURN(auto memory,
                          cachenode::CreateHostMemory({capacity, true, true, "strata-bench-dram"}));
  return std::make_unique<cachenode::MemoryTier>(cachenode::MemoryTierOptions{}, std::move(memory));
}

absl::Status RunMemory(Run& run, double memcpy_gbps) {
  const TiersOptions& o = run.options;
  const uint64_t block_bytes = run.block_bytes;
  WorkingSet ws(run.blocks, block_bytes, 31);
  const std::vector<uint64_t> order = Shuffled(run.blocks, 32);
  AlignedBuffer sink(run.working_set());
  {
    run.progress("measuring dram tier put/get (MemoryTier over the memfd arena)...");
    STRATA_ASSIGN_OR_RETURN(auto tier, MakeDramTier(run.block_bytes, run.blocks));
    // First pass faults the arena's pages in; the timed passes replace blocks in place.
    for (uint64_t i = 0; i < run.blocks; ++i)
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
            std::memcpy(sink.data() + i * run.block_bytes, h.data().data(), h.data().size());
          }
          return run.working_set();
        }));
    run.Add("dram", "get", get, "memcpy", memcpy_gbps).note = "pinned view + copy out";
  }
  {
    run.progress("measuring store(dram) put/get_chain (checksums verified)...");
    cachenode::StoreTiers tiers;
    STRATA_ASSIGN_OR_RETURN(tiers.dram, MakeDramTier(run.block_bytes, run.blocks));
    STRATA_ASSIGN_OR_RETURN(auto store, cachenode::TieredStore::Open({}, std::move(tiers)));
    for (uint64_t i = 0; i < run.blocks; ++i) {
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
    const size_t window = std::min<size_t>(run.chain_blocks(), hashes.size());
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
              std::memcpy(sink.data() + (begin + j) * run.block_bytes, data.data(), data.size());
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

absl::Status RunGrpc(Run& run, double tcp_gbps) {
  const TiersOptions& o = run.options;
  run.progress(absl::StrCat("measuring grpc chain get/put (in-process node, chains of ",
                            run.chain_blocks(), ")..."));
  // The node's default chunk against a smaller and the largest allowed one, at the target size.
  std::vector<uint64_t> other_chunks;
  if (run.block_bytes == kTargetBlockBytes) other_chunks = {256ull << 10, cachenode::kMaxChunkBytes};
  STRATA_ASSIGN_OR_RETURN(GrpcChainResult grpc,
                          MeasureGrpcChain(run.block_bytes, run.chain_blocks(),
                                           o.seconds_per_case, other_chunks));
  const std::string default_chunk = common::FormatByteSize(clients::ClientOptions{}.chunk_bytes);
  Row& get_row = run.Add("grpc", "get_chain", grpc.get, "tcp_loopback_1stream", tcp_gbps);
  get_row.target = run.TargetIf(Target{kGrpcGetMinRatio, std::nullopt, std::nullopt});
  get_row.note = absl::StrCat("GetInto, ", run.chain_blocks(), " blocks/call, chunk ",
                              default_chunk, ", copy to caller");
  run.Add("grpc", "put_chain", grpc.put, "tcp_loopback_1stream", tcp_gbps).note =
      absl::StrCat("Put, ", run.chain_blocks(), " blocks/call, chunk ", default_chunk);
  for (const auto& [chunk, t] : grpc.get_by_chunk) {
    run.Add("grpc", "get_chain", t, "tcp_loopback_1stream", tcp_gbps).note =
        absl::StrCat("as above, chunk ", common::FormatByteSize(chunk), "; not a target");
  }
  return absl::OkStatus();
}

absl::Status RunShm(Run& run, double memcpy_gbps) {
  run.progress(absl::StrCat("measuring shared-memory get/put (in-process node, local socket, "
                            "chains of ", run.chain_blocks(), ")..."));
  STRATA_ASSIGN_OR_RETURN(
      ShmResult shm, MeasureShm(run.block_bytes, run.chain_blocks(), run.options.seconds_per_case));
  Row& get = run.Add("shm", "get", shm.get, "memcpy", memcpy_gbps);
  get.target = run.TargetIf(Target{kShmGetMinRatio, std::nullopt, std::nullopt});
  get.note = absl::StrCat("GetInto, ", run.chain_blocks(),
                          " blocks/call: offsets under a lease, client copy + xxh3");
  run.Add("shm", "get_node_verified", shm.get_node_verified, "memcpy", memcpy_gbps).note =
      "as above, the node also verifies each DRAM copy first; not a target";
  run.Add("shm", "put", shm.put, "memcpy", memcpy_gbps).note =
      "Reserve, client copy + xxh3 into the slots, Commit (node verifies, adopts)";
  return absl::OkStatus();
}

absl::Status RunHandover(Run& run, double memcpy_gbps) {
  run.progress(absl::StrCat("measuring the KV hand-over (in-process node, local socket, ",
                            run.chain_blocks(), " engine blocks per call)..."));
  STRATA_ASSIGN_OR_RETURN(HandoverResult h, MeasureHandover(run.block_bytes, run.chain_blocks(),
                                                            run.options.seconds_per_case));
  const std::string path = h.emulated ? "kv(emulated)" : "kv";
  const std::string how = h.emulated ? "CPU reference on host memory" : "CUDA kernels";
  run.Add(path, "offload", h.offload, "memcpy", memcpy_gbps).note =
      absl::StrCat("vLLM layout, ", h.layout, "; ", how, " gather + xxh3 into DRAM slots");
  run.Add(path, "onload", h.onload, "memcpy", memcpy_gbps).note =
      absl::StrCat("verified DRAM reads, ", how, " scatter");
  return absl::OkStatus();
}

absl::Status RunResp(Run& run, const TempDir& dir) {
  const TiersOptions& o = run.options;
  RespBenchOptions resp;
  resp.value_bytes = {run.block_bytes};
  resp.clients = o.resp_clients;
  // About one case length per test at the 1 GB/s these paths run at here.
  resp.bytes_per_test = static_cast<uint64_t>(absl::ToDoubleSeconds(o.seconds_per_case) * 1e9);
  resp.scratch_dir = dir.path();
  STRATA_ASSIGN_OR_RETURN(std::vector<Row> rows, MeasureResp(resp, run.progress));
  for (Row& r : rows) run.rows.push_back(std::move(r));
  return absl::OkStatus();
}

absl::Status RunSsd(Run& run, const TempDir& dir) {
  const TiersOptions& o = run.options;
  const std::string raw_file = dir.Sub(absl::StrCat("direct-", run.block_bytes, ".dat"));
  run.progress("measuring direct sequential writes (O_DIRECT, fdatasync)...");
  absl::StatusOr<DiskResult> seq = MeasureDirectSequentialWrite(raw_file, run.block_bytes, run.blocks);
  if (absl::IsFailedPrecondition(seq.status())) {
    run.progress(absl::StrCat("skipping ssd cases: ", seq.status().message()));
    return absl::OkStatus();
  }
  if (!seq.ok()) return seq.status();
  const double seq_gbps = seq->throughput.gbps();
  run.Add("limit", "direct_seq_write", seq->throughput).amplification = seq->amplification;

  run.progress("measuring ssd tier put (PutBatch of write-behind batches + Flush)...");
  cachenode::SsdTierOptions ssd_options = o.ssd;
  ssd_options.path = dir.Sub(absl::StrCat("ssd-", run.block_bytes));
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
  WorkingSet ws(run.blocks, run.block_bytes, 41);
  // The store's write-behind hands the SSD tier batches of write_behind_batch_bytes.
  const uint64_t batch = std::clamp<uint64_t>(
      cachenode::TieredStoreOptions{}.write_behind_batch_bytes / run.block_bytes, 1, run.blocks);
  const absl::StatusOr<IoCounters> io_before_put = ReadIoCounters();
  const absl::Time put_start = absl::Now();
  const Stopwatch put_watch;
  for (uint64_t begin = 0; begin < run.blocks; begin += batch) {
    const uint64_t n = std::min(batch, run.blocks - begin);
    for (const absl::Status& s : ssd->PutBatch(std::span(ws.infos).subspan(begin, n),
                                               std::span(ws.payloads).subspan(begin, n))) {
      STRATA_RETURN_IF_ERROR(s);
    }
  }
  const double write_seconds = SecondsSince(put_start);
  STRATA_RETURN_IF_ERROR(ssd->Flush());
  const Throughput put = put_watch.Finish(run.working_set());
  Row& put_row = run.Add("ssd", "put", put, "direct_seq_write", seq_gbps);
  put_row.target = run.TargetIf(Target{kSsdPutMinRatio, std::nullopt, std::nullopt});
  put_row.note = absl::StrCat("batches of ", batch, ", final Flush ",
                              static_cast<int>(100 * (1 - write_seconds / put.seconds)),
                              "% of time, amp=write", io_mode);
  put_row.amplification =
      MeasuredAmplification(io_before_put, ReadIoCounters(), /*reads=*/false, run.working_set());

  run.progress("measuring direct random reads (O_DIRECT, qd1)...");
  STRATA_ASSIGN_OR_RETURN(
      DiskResult qd1,
      MeasureDirectRandomReads(raw_file, run.block_bytes, run.blocks, 1, o.seconds_per_case, 51));
  run.Add("limit", "direct_rand_read_qd1", qd1.throughput).amplification = qd1.amplification;

  // Every block read back once and compared with what was written, outside the timed loops.
  for (uint64_t begin = 0; begin < run.blocks; begin += batch) {
    std::vector<BlockKey> keys;
    for (uint64_t i = begin; i < std::min(run.blocks, begin + batch); ++i)
      keys.push_back(ws.infos[i].key);
    std::vector<absl::StatusOr<cachenode::BlockHandle>> read = ssd->ReadBatch(keys);
    for (uint64_t j = 0; j < read.size(); ++j) {
      STRATA_RETURN_IF_ERROR(read[j].status());
      if (read[j]->data().size() != run.block_bytes ||
          std::memcmp(read[j]->data().data(), ws.payloads[begin + j].data(), run.block_bytes) != 0) {
        return absl::DataLossError(absl::StrCat("ssd: block ", begin + j, " read back differs"));
      }
    }
  }
  // Random distinct keys per call, as a chain names distinct blocks. (Repeated keys in one
  // MultiGet would be merged into one direct read and flatter the amplification.)
  std::mt19937_64 rng(61);
  std::vector<uint64_t> order = Shuffled(run.blocks, 62);
  const auto measure_reads = [&](const std::string& op, uint64_t keys_per_call,
                                 const std::string& baseline,
                                 const Throughput& limit) -> absl::StatusOr<Row*> {
    const absl::StatusOr<IoCounters> before = ReadIoCounters();
    std::vector<BlockKey> keys(keys_per_call);
    STRATA_ASSIGN_OR_RETURN(
        Throughput t, RunFor(o.seconds_per_case, [&]() -> absl::StatusOr<uint64_t> {
          // A partial Fisher-Yates shuffle picks keys_per_call distinct blocks.
          for (uint64_t k = 0; k < keys_per_call; ++k) {
            std::swap(order[k], order[k + rng() % (run.blocks - k)]);
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
          if (bytes != keys_per_call * run.block_bytes) {
            return absl::InternalError("ssd: short read");
          }
          return bytes;
        }));
    Row& row = run.Add("ssd", op, t, baseline, limit.gbps());
    row.target = run.TargetIf(Target{kSsdGetMinRatio, std::nullopt, kSsdReadMaxAmp});
    row.amplification = MeasuredAmplification(before, ReadIoCounters(), /*reads=*/true, t.bytes);
    return &row;
  };
  run.progress("measuring ssd random get (Read, one key per call)...");
  STRATA_ASSIGN_OR_RETURN(Row * get_row,
                          measure_reads("get", 1, "direct_rand_read_qd1", qd1.throughput));
  get_row->note = "Read, 1 thread, amp=read" + io_mode;
  const double get_gbps = get_row->gbps;

  // The node reads a Get window (get_window_bytes) of SSD blocks with one ReadBatch, which keeps
  // up to read_threads reads in flight (fewer when the window has fewer blocks): judged against raw
  // reads at the same queue depth.
  const uint64_t window = std::clamp<uint64_t>(
      cachenode::CacheNodeServiceOptions{}.get_window_bytes / run.block_bytes, 1, run.blocks);
  const int qd = static_cast<int>(std::min<uint64_t>(o.ssd.read_threads, window));
  run.progress(absl::StrCat("measuring direct random reads (O_DIRECT, qd", qd, ")..."));
  STRATA_ASSIGN_OR_RETURN(DiskResult qdn,
                          MeasureDirectRandomReads(raw_file, run.block_bytes, run.blocks, qd,
                                                   o.seconds_per_case, 71));
  const std::string qdn_name = absl::StrCat("direct_rand_read_qd", qd);
  run.Add("limit", qdn_name, qdn.throughput).amplification = qdn.amplification;
  run.progress("measuring ssd random get (ReadBatch: MultiGet groups in parallel)...");
  STRATA_ASSIGN_OR_RETURN(Row * batch_row,
                          measure_reads("get_batch", window, qdn_name, qdn.throughput));
  batch_row->note = absl::StrCat("ReadBatch of ", window, " random keys, ", qd,
                                 " MultiGet groups in parallel, amp=read", io_mode);
  const double batch_gbps = batch_row->gbps;
  ssd.reset();

  // RocksDB with its defaults, driven by its own db_bench, on the same disk and sizes.
  DbBenchOptions db{run.block_bytes, run.blocks, dir.Sub(absl::StrCat("dbbench-", run.block_bytes)),
                    o.seconds_per_case};
  run.progress("measuring RocksDB with its defaults (db_bench fillseq, readrandom)...");
  absl::StatusOr<DbBenchResult> defaults = MeasureDbBench(db);
  if (!defaults.ok()) {
    run.progress(absl::StrCat("skipping the RocksDB-defaults rows: ", defaults.status().message()));
    return absl::OkStatus();
  }
  run.Add("limit", "rocksdb_defaults_fillseq", defaults->fill).note = defaults->note;
  run.Add("limit", "rocksdb_defaults_readrandom", defaults->read).note = defaults->note;
  for (const auto& [op, gbps] : {std::pair<std::string, double>{"get", get_gbps},
                                 std::pair<std::string, double>{"get_batch", batch_gbps}}) {
    Row& r = run.rows.emplace_back();
    r.path = "ssd";
    r.op = op;
    r.block_bytes = run.block_bytes;
    r.gbps = gbps;
    r.baseline = "rocksdb_defaults_readrandom";
    r.baseline_gbps = defaults->read.gbps();
    r.target = run.TargetIf(Target{kSsdVsRocksDefaultsMinRatio, std::nullopt, std::nullopt});
    r.note = "the rows above, against db_bench readrandom (1 thread)";
  }
  return absl::OkStatus();
}

// The cases of one block size: the limits they are judged against, then each selected path.
absl::Status RunBlockSize(Run& run, const TempDir& dir) {
  const TiersOptions& o = run.options;
  run.progress(absl::StrCat("== block size ", common::FormatByteSize(run.block_bytes), ": ",
                            run.blocks, " blocks, chains of ", run.chain_blocks()));
  const bool need_memcpy =
      o.Has(TiersPath::kMemory) || o.Has(TiersPath::kShm) || o.Has(TiersPath::kHandover);
  const bool need_tcp = o.Has(TiersPath::kGrpc) || o.Has(TiersPath::kResp);
  double memcpy_gbps = 0, tcp_gbps = 0;
  if (need_memcpy) {
    run.progress("measuring memcpy...");
    STRATA_ASSIGN_OR_RETURN(
        Throughput m, MeasureMemcpy(run.block_bytes, run.working_set(), o.seconds_per_case));
    run.Add("limit", "memcpy", m).note = "1 thread";
    memcpy_gbps = m.gbps();
  }
  if (need_tcp) {
    run.progress("measuring one loopback TCP stream...");
    STRATA_ASSIGN_OR_RETURN(Throughput tcp,
                            MeasureLoopbackTcp(run.block_bytes, o.seconds_per_case));
    run.Add("limit", "tcp_loopback_1stream", tcp).note = "writer thread + reader";
    tcp_gbps = tcp.gbps();
  }
  if (o.Has(TiersPath::kMemory)) STRATA_RETURN_IF_ERROR(RunMemory(run, memcpy_gbps));
  if (o.Has(TiersPath::kShm)) STRATA_RETURN_IF_ERROR(RunShm(run, memcpy_gbps));
  if (o.Has(TiersPath::kHandover)) STRATA_RETURN_IF_ERROR(RunHandover(run, memcpy_gbps));
  if (o.Has(TiersPath::kGrpc)) STRATA_RETURN_IF_ERROR(RunGrpc(run, tcp_gbps));
  if (o.Has(TiersPath::kResp)) STRATA_RETURN_IF_ERROR(RunResp(run, dir));
  if (o.Has(TiersPath::kSsd)) STRATA_RETURN_IF_ERROR(RunSsd(run, dir));
  return absl::OkStatus();
}

}  // namespace

std::string TiersPathName(TiersPath path) {
  switch (path) {
    case TiersPath::kMemory: return "memory";
    case TiersPath::kShm: return "shm";
    case TiersPath::kHandover: return "handover";
    case TiersPath::kGrpc: return "grpc";
    case TiersPath::kResp: return "resp";
    case TiersPath::kSsd: return "ssd";
    case TiersPath::kRss: return "rss";
  }
  return "?";
}

absl::StatusOr<std::vector<TiersPath>> ParseTiersPaths(const std::string& list) {
  std::vector<TiersPath> out;
  for (absl::string_view part : absl::StrSplit(common::ToAbsl(list), ',')) {
    bool known = false;
    for (TiersPath p : kAllTiersPaths) {
      if (part == common::ToAbsl(TiersPathName(p))) {
        if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
        known = true;
      }
    }
    if (!known) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown path '", part, "' (expected memory, shm, handover, grpc, resp, ssd, rss)"));
    }
  }
  return out;
}

bool TiersOptions::Has(TiersPath path) const {
  return std::find(paths.begin(), paths.end(), path) != paths.end();
}

uint64_t TiersOptions::BlocksFor(uint64_t block_bytes) const {
  return std::max<uint64_t>(kMinBlocks, working_set_bytes / block_bytes);
}

absl::Status TiersOptions::Validate() const {
  if (block_sizes.empty()) return absl::InvalidArgumentError("--block-bytes: no size given");
  for (uint64_t b : block_sizes) {
    if (b == 0) return absl::InvalidArgumentError("--block-bytes must be > 0");
    if (b > (64ull << 20)) {
      return absl::InvalidArgumentError(
          "--block-bytes must be at most 64MiB (the node's largest block)");
    }
  }
  if (working_set_bytes == 0) return absl::InvalidArgumentError("--working-set must be > 0");
  if (dir.empty()) return absl::InvalidArgumentError("--dir is empty");
  if (seconds_per_case <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--seconds-per-case must be > 0");
  }
  if (chain_bytes == 0) return absl::InvalidArgumentError("--chain-bytes must be > 0");
  if (paths.empty()) return absl::InvalidArgumentError("--paths: no path given");
  if (resp_clients < 1 || resp_clients > 1000) {
    return absl::InvalidArgumentError("--resp-clients must be 1-1000");
  }
  cachenode::SsdTierOptions ssd_check = ssd;
  ssd_check.path = dir;
  if (absl::Status s = ssd_check.Validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--ssd-*: ", s.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Row>> RunTiers(const TiersOptions& options, const ProgressFn& progress) {
  STRATA_RETURN_IF_ERROR(options.Validate());
  STRATA_ASSIGN_OR_RETURN(TempDir dir, TempDir::Create(options.dir));
  std::string sizes, paths;
  for (uint64_t b : options.block_sizes)
    absl::StrAppend(&sizes, sizes.empty() ? "" : ", ", common::FormatByteSize(b));
  for (TiersPath p : options.paths)
    absl::StrAppend(&paths, paths.empty() ? "" : ",", TiersPathName(p));
  progress(absl::StrCat("working directory ", dir.path(), "; block sizes ", sizes, "; paths ",
                        paths, "; working set ", common::FormatByteSize(options.working_set_bytes),
                        "; ", absl::FormatDuration(options.seconds_per_case), " per case"));
  std::vector<Row> rows;
  for (uint64_t block_bytes : options.block_sizes) {
    Run run{options, progress, block_bytes, options.BlocksFor(block_bytes), {}};
    STRATA_RETURN_IF_ERROR(RunBlockSize(run, dir));
    for (Row& r : run.rows) rows.push_back(std::move(r));
  }
  if (options.Has(TiersPath::kRss)) {
    // Resident memory is a property of the node, measured once with the target's block size.
    progress(absl::StrCat("measuring a strata-cachenode process's resident memory (",
                          common::FormatByteSize(options.rss_dram_bytes),
                          " DRAM tier filled over gRPC)..."));
    STRATA_ASSIGN_OR_RETURN(
        ResidentResult rss,
        MeasureResidentNode(options.rss_dram_bytes, kTargetBlockBytes, dir.Sub("rss-ssd")));
    Row& rss_row = rows.emplace_back();
    rss_row.path = "node";
    rss_row.op = absl::StrCat("rss_", options.rss_dram_bytes == (1ull << 30) ? "1gib" : "custom",
                              "_dram_full");
    rss_row.block_bytes = kTargetBlockBytes;
    rss_row.rss_bytes = rss.rss_bytes;
    rss_row.baseline = "dram_tier_bytes";
    rss_row.ratio_override =
        static_cast<double>(rss.rss_bytes) / static_cast<double>(rss.dram_bytes);
    rss_row.target = Target{std::nullopt, kNodeRssMaxRatio, std::nullopt};
    rss_row.note = absl::StrCat(
        "ratio=rss/dram; shmem ", common::FormatByteSize(rss.rss_shmem_bytes), " + anon ",
        common::FormatByteSize(rss.rss_anon_bytes), "; peak ",
        common::FormatByteSize(rss.peak_rss_bytes), "; ", rss.dram_blocks,
        " blocks in dram; node process only");
  }
  return rows;
}

}  // namespace strata::bench
