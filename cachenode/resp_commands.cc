#include "cachenode/resp_commands.h"

#include <openssl/sha.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/string_view_interop.h"

namespace strata::cachenode {
namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// A client-supplied name quoted in an error line: no CR/LF (they would end the line), bounded.
std::string Quoted(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 128)) {
    const unsigned char u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
  }
  return out;
}

std::string WrongArgs(std::string_view command) {
  return common::Concat("ERR wrong number of arguments for '", Lower(command), "' command");
}

std::span<const std::byte> Bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

}  // namespace

common::BlockKey RespKey(common::NamespaceId namespace_id, std::string_view key) {
  constexpr std::string_view kTag = "strata.resp-key.v1";
  // Reused per thread: hashing a key allocates nothing once warm.
  thread_local std::string input;
  input.assign(kTag);
  input.push_back('\0');
  input.append(key);
  common::BlockKey k;
  k.namespace_id = namespace_id;
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), k.hash.bytes.data());
  if (input.capacity() > (64u << 10)) std::string().swap(input);
  return k;
}

RespServerStats RespCounters::Snapshot() const {
  RespServerStats s;
  s.connections_accepted = connections_accepted.load(std::memory_order_relaxed);
  s.connections_open = connections_open.load(std::memory_order_relaxed);
  s.connections_rejected = connections_rejected.load(std::memory_order_relaxed);
  s.commands = commands.load(std::memory_order_relaxed);
  s.protocol_errors = protocol_errors.load(std::memory_order_relaxed);
  s.data_loss_reads = data_loss_reads.load(std::memory_order_relaxed);
  s.bytes_in = bytes_in.load(std::memory_order_relaxed);
  s.bytes_out = bytes_out.load(std::memory_order_relaxed);
  return s;
}

// --- RespReplyQueue ---

void RespReplyQueue::Text(std::string_view bytes) {
  if (bytes.empty()) return;
  // Coalesce with a trailing text piece: consecutive small replies go out as one iovec.
  if (pieces_.empty() || pieces_.back().handle.valid()) pieces_.emplace_back();
  pieces_.back().text.append(bytes);
  pending_ += bytes.size();
}

void RespReplyQueue::Line(char type, std::string_view s) {
  std::string line;
  line.reserve(s.size() + 3);
  line.push_back(type);
  line.append(s);
  line.append("\r\n");
  Text(line);
}

void RespReplyQueue::Integer(int64_t v) { Text(common::Concat(":", v, "\r\n")); }

void RespReplyQueue::Bulk(std::string_view bytes) {
  Text(common::Concat("$", bytes.size(), "\r\n"));
  Text(bytes);
  Text("\r\n");
}

void RespReplyQueue::ArrayHeader(size_t n) { Text(common::Concat("*", n, "\r\n")); }

void RespReplyQueue::Block(BlockHandle handle) {
  const size_t size = handle.data().size();
  Text(common::Concat("$", size, "\r\n"));
  if (size > 0) {
    Piece p;
    p.handle = std::move(handle);
    pieces_.push_back(std::move(p));
    pending_ += size;
  }
  Text("\r\n");
}

size_t RespReplyQueue::Gather(iovec* iov, size_t max) const {
  size_t n = 0;
  for (auto it = pieces_.begin(); it != pieces_.end() && n < max; ++it, ++n) {
    const char* base = it->handle.valid()
                           ? reinterpret_cast<const char*>(it->handle.data().data())
                           : it->text.data();
    iov[n].iov_base = const_cast<char*>(base + it->offset);
    iov[n].iov_len = it->size() - it->offset;
  }
  return n;
}

void RespReplyQueue::Consume(size_t n) {
  pending_ -= n;
  while (n > 0) {
    Piece& p = pieces_.front();
    const size_t left = p.size() - p.offset;
    if (n < left) {
      p.offset += n;
      return;
    }
    n -= left;
    pieces_.pop_front();
  }
}

// --- RespCommands ---

RespCommands::RespCommands(const RespCommandsOptions& options, TieredStore* store,
                           RespCounters* counters)
    : options_(options), store_(store), counters_(counters), start_(absl::Now()) {}

std::vector<common::ChainHash> RespCommands::HashesOf(const RespRequest& r, size_t first) const {
  std::vector<common::ChainHash> hashes;
  hashes.reserve(r.args.size() - first);
  for (size_t i = first; i < r.args.size(); ++i) {
    hashes.push_back(RespKey(options_.namespace_id, r.args[i]).hash);
  }
  return hashes;
}

void RespCommands::Execute(const RespRequest& r, RespSession& session, RespReplyQueue& out) {
  counters_->commands.fetch_add(1, std::memory_order_relaxed);
  if (r.too_large) {
    out.Error(common::Concat("ERR value too large (max ", options_.max_bulk_bytes, " bytes)"));
    return;
  }
  if (r.args.empty()) {
    out.Error("ERR empty command");
    return;
  }
  const std::string_view cmd = r.args[0];
  const size_t argc = r.args.size();
  if (EqualsIgnoreCase(cmd, "get")) {
    Get(r, out);
  } else if (EqualsIgnoreCase(cmd, "set")) {
    Set(r, out);
  } else if (EqualsIgnoreCase(cmd, "mget")) {
    MGet(r, out);
  } else if (EqualsIgnoreCase(cmd, "exists")) {
    Exists(r, out);
  } else if (EqualsIgnoreCase(cmd, "del")) {
    Del(r, out);
  } else if (EqualsIgnoreCase(cmd, "ping")) {
    if (argc == 1) {
      out.Simple("PONG");
    } else if (argc == 2) {
      out.Bulk(r.args[1]);
    } else {
      out.Error(WrongArgs(cmd));
    }
  } else if (EqualsIgnoreCase(cmd, "info")) {
    out.Bulk(Info(argc > 1 ? r.args[1] : std::string_view()));
  } else if (EqualsIgnoreCase(cmd, "command")) {
    // redis-cli asks for COMMAND DOCS when it starts interactively; an empty array means "no
    // hints", which it handles.
    out.ArrayHeader(0);
  } else if (EqualsIgnoreCase(cmd, "config")) {
    Config(r, out);
  } else if (EqualsIgnoreCase(cmd, "select")) {
    if (argc != 2) {
      out.Error(WrongArgs(cmd));
    } else if (r.args[1] == "0") {
      out.Simple("OK");
    } else {
      out.Error("ERR DB index is out of range (only db 0 exists)");
    }
  } else if (EqualsIgnoreCase(cmd, "quit")) {
    out.Simple("OK");
    session.quit = true;
  } else if (EqualsIgnoreCase(cmd, "client")) {
    Client(r, session, out);
  } else if (EqualsIgnoreCase(cmd, "hello")) {
    // RESP3 is not spoken. Redis 5 answers HELLO this way, and every client that tries HELLO
    // falls back to RESP2 on it.
    out.Error("ERR unknown command 'HELLO' (this server speaks RESP2 only)");
  } else {
    out.Error(common::Concat("ERR unknown command '", Quoted(cmd), "'"));
  }
}

void RespCommands::Get(const RespRequest& r, RespReplyQueue& out) {
  if (r.args.size() != 2) return out.Error(WrongArgs(r.args[0]));
  const common::ChainHash hash = RespKey(options_.namespace_id, r.args[1]).hash;
  std::vector<BlockRead> reads =
      store_->GetChain(options_.namespace_id, std::span(&hash, 1), /*stop_at_first_miss=*/false);
  BlockRead& read = reads[0];
  if (read.status.ok()) return out.Block(std::move(read.handle));
  if (read.status.code() == absl::StatusCode::kDataLoss) {
    // Wrong bytes are never served: a corrupt block is a miss, and counted.
    counters_->data_loss_reads.fetch_add(1, std::memory_order_relaxed);
  } else if (read.status.code() != absl::StatusCode::kNotFound) {
    return out.Error(common::Concat("ERR ", common::ToStd(read.status.message())));
  }
  out.Nil();
}

void RespCommands::MGet(const RespRequest& r, RespReplyQueue& out) {
  if (r.args.size() < 2) return out.Error(WrongArgs(r.args[0]));
  const std::vector<common::ChainHash> hashes = HashesOf(r, 1);
  std::vector<BlockRead> reads = store_->GetChain(options_.namespace_id, hashes, false);
  out.ArrayHeader(reads.size());
  for (BlockRead& read : reads) {
    if (read.status.ok()) {
      out.Block(std::move(read.handle));
      continue;
    }
    if (read.status.code() == absl::StatusCode::kDataLoss) {
      counters_->data_loss_reads.fetch_add(1, std::memory_order_relaxed);
    }
    out.Nil();  // an array element cannot be an error in RESP2; Redis answers nil for misses
  }
}

void RespCommands::Set(const RespRequest& r, RespReplyQueue& out) {
  if (r.args.size() < 3) return out.Error(WrongArgs(r.args[0]));
  if (r.args.size() > 3) {
    return out.Error(common::Concat("ERR SET option '", Quoted(r.args[3]),
                                  "' is not supported (only plain SET key value)"));
  }
  const std::string_view value = r.args[2];
  if (value.empty()) return out.Error("ERR empty values are not supported");
  BlockInfo info;
  info.key = RespKey(options_.namespace_id, r.args[1]);
  info.size = value.size();
  info.chain_position = 0;
  // The store computes the checksum from the very bytes it stores: one pass, not two. A value the
  // parser read straight into a reserved DRAM slot is adopted as it is, without a copy.
  absl::StatusOr<TierKind> put =
      r.value_slot.valid()
          ? store_->CommitDramComputingChecksum(info, std::move(r.value_slot))
          : store_->PutComputingChecksum(info, Bytes(value), /*from_gpu=*/false);
  if (put.ok()) return out.Simple("OK");
  if (put.status().code() == absl::StatusCode::kResourceExhausted &&
      value.size() > store_->LargestBlockBytes()) {
    return out.Error(
        common::Concat("ERR value too large (max ", store_->LargestBlockBytes(), " bytes)"));
  }
  if (put.status().code() == absl::StatusCode::kResourceExhausted) {
    return out.Error(common::Concat("OOM ", common::ToStd(put.status().message())));
  }
  out.Error(common::Concat("ERR ", common::ToStd(put.status().message())));
}

void RespCommands::Exists(const RespRequest& r, RespReplyQueue& out) {
  if (r.args.size() < 2) return out.Error(WrongArgs(r.args[0]));
  const std::vector<common::ChainHash> hashes = HashesOf(r, 1);
  int64_t present = 0;
  // A key named twice counts twice, as in Redis.
  for (uint64_t size : store_->PayloadSizes(options_.namespace_id, hashes)) present += size > 0;
  out.Integer(present);
}

void RespCommands::Del(const RespRequest& r, RespReplyQueue& out) {
  if (r.args.size() < 2) return out.Error(WrongArgs(r.args[0]));
  const std::vector<common::ChainHash> hashes = HashesOf(r, 1);
  out.Integer(store_->Delete(options_.namespace_id, hashes));
}

void RespCommands::Config(const RespRequest& r, RespReplyQueue& out) {
  if (r.args.size() < 2) return out.Error(WrongArgs(r.args[0]));
  if (!EqualsIgnoreCase(r.args[1], "get")) {
    return out.Error(
        common::Concat("ERR CONFIG ", Quoted(r.args[1]), " is not supported (only CONFIG GET)"));
  }
  if (r.args.size() < 3) return out.Error(WrongArgs("config|get"));
  // redis-benchmark asks for these two to describe the server; both are true of a cache node:
  // nothing is snapshotted or logged the Redis way (the SSD tier is its own persistence).
  std::vector<std::pair<std::string, std::string>> found;
  for (size_t i = 2; i < r.args.size(); ++i) {
    if (EqualsIgnoreCase(r.args[i], "save")) found.emplace_back("save", "");
    if (EqualsIgnoreCase(r.args[i], "appendonly")) found.emplace_back("appendonly", "no");
  }
  out.ArrayHeader(2 * found.size());
  for (const auto& [k, v] : found) {
    out.Bulk(k);
    out.Bulk(v);
  }
}

void RespCommands::Client(const RespRequest& r, RespSession& session, RespReplyQueue& out) {
  if (r.args.size() < 2) return out.Error(WrongArgs(r.args[0]));
  const std::string_view sub = r.args[1];
  if (EqualsIgnoreCase(sub, "setname")) {
    if (r.args.size() != 3) return out.Error(WrongArgs("client|setname"));
    session.name = std::string(r.args[2]);
    return out.Simple("OK");
  }
  if (EqualsIgnoreCase(sub, "getname")) {
    if (session.name.empty()) return out.Nil();
    return out.Bulk(session.name);
  }
  if (EqualsIgnoreCase(sub, "setinfo")) return out.Simple("OK");  // newer clients' lib-name
  out.Error(common::Concat("ERR CLIENT ", Quoted(sub), " is not supported"));
}

std::string RespCommands::Info(std::string_view section) const {
  const std::string want = Lower(section);
  const bool all = want.empty() || want == "all" || want == "default" || want == "everything";
  const RespServerStats s = counters_->Snapshot();
  const StoreStats st = store_->Stats();
  std::string text;
  auto field = [&text](std::string_view key, const auto& value) {
    absl::StrAppend(&text, common::ToAbsl(key), ":", value, "\r\n");
  };
  if (all || want == "server") {
    text += "# Server\r\n";
    // The Redis version whose command replies this endpoint follows (RESP2 subset).
    field("redis_version", "7.0.0");
    field("server_name", "strata-cachenode");
    field("redis_mode", "standalone");
    field("multiplexing_api", "epoll");
    field("arch_bits", 64);
    field("process_id", static_cast<int64_t>(getpid()));
    field("tcp_port", port_);
    field("uptime_in_seconds", absl::ToInt64Seconds(absl::Now() - start_));
    field("io_threads_active", options_.io_threads);
    text += "\r\n";
  }
  if (all || want == "clients") {
    text += "# Clients\r\n";
    field("connected_clients", s.connections_open);
    field("maxclients", options_.max_clients);
    text += "\r\n";
  }
  if (all || want == "stats") {
    text += "# Stats\r\n";
    field("total_connections_received", s.connections_accepted);
    field("total_commands_processed", s.commands);
    field("total_net_input_bytes", s.bytes_in);
    field("total_net_output_bytes", s.bytes_out);
    field("rejected_connections", s.connections_rejected);
    field("protocol_errors", s.protocol_errors);
    field("data_loss_reads", s.data_loss_reads);
    text += "\r\n";
  }
  if (all || want == "keyspace") {
    // Blocks of every namespace: keys are not stored, so this endpoint's own keys cannot be told
    // apart from gRPC clients' blocks.
    text += "# Keyspace\r\n";
    if (st.blocks > 0) field("db0", common::Concat("keys=", st.blocks, ",expires=0,avg_ttl=0"));
    text += "\r\n";
  }
  if (all || want == "strata") {
    text += "# Strata\r\n";
    field("strata_namespace", options_.namespace_name);
    field("strata_blocks", st.blocks);
    field("strata_misses", st.misses);
    field("strata_demotions", st.demotions);
    field("strata_promotions", st.promotions);
    field("strata_write_behind_pending", st.write_behind_pending);
    field("strata_persisted_blocks", st.persisted_blocks);
    field("strata_max_block_bytes", st.max_block_bytes);
    field("strata_tiers", st.tiers.size());
    text += "\r\n";
    // One section per tier, named as the store names it ("hbm(emulated)" for a host-memory HBM).
    for (const StoreStats::PerTier& t : st.tiers) {
      const std::string p = common::Concat("tier_", common::ToAbsl(TierKindName(t.kind)), "_");
      absl::StrAppend(&text, "# Strata ", t.name, "\r\n");
      field(p + "name", t.name);
      field(p + "emulated", t.emulated ? 1 : 0);
      field(p + "capacity_bytes", t.usage.capacity_bytes);
      field(p + "used_bytes", t.usage.used_bytes);
      field(p + "blocks", t.usage.blocks);
      field(p + "hits", t.counters.hits);
      field(p + "evictions", t.counters.evictions);
      field(p + "checksum_failures", t.counters.checksum_failures);
      field(p + "bytes_written", t.counters.bytes_written);
      field(p + "bytes_read", t.counters.bytes_read);
      text += "\r\n";
    }
  }
  return text;
}

}  // namespace strata::cachenode
