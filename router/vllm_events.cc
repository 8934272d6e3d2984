#include "router/vllm_events.h"

#include <exception>
#include <limits>
#include <msgpack.hpp>
#include <span>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/block_hash.h"
#include "common/status_macros.h"
#include "common/string_view_interop.h"

namespace strata::router {
namespace {

using Obj = msgpack::object;

// Deep enough for extra_keys (a list of per-block tuples of identifiers); a payload nested deeper
// is not a KVEventBatch.
constexpr size_t kMaxDepth = 32;

absl::Status Bad(std::string_view where, std::string_view what) {
  return absl::InvalidArgumentError(common::Concat("vllm KVEventBatch: ", where, ": ", what));
}

const char* TypeName(const Obj& o) {
  switch (o.type) {
    case msgpack::type::NIL:
      return "nil";
    case msgpack::type::BOOLEAN:
      return "bool";
    case msgpack::type::POSITIVE_INTEGER:
    case msgpack::type::NEGATIVE_INTEGER:
      return "int";
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      return "float";
    case msgpack::type::STR:
      return "str";
    case msgpack::type::BIN:
      return "bytes";
    case msgpack::type::ARRAY:
      return "array";
    case msgpack::type::MAP:
      return "map";
    case msgpack::type::EXT:
      return "ext";
  }
  return "unknown";
}

absl::Status TooLarge(std::string_view where, size_t size, size_t limit) {
  return absl::ResourceExhaustedError(common::Concat("vllm KVEventBatch: ", where, " has ", size,
                                                     " elements; at most ", limit, " accepted"));
}

absl::Status WrongType(std::string_view where, std::string_view want, const Obj& got) {
  return Bad(where, common::Concat("expected ", want, ", got ", TypeName(got)));
}

std::string_view StrOf(const Obj& o) { return {o.via.str.ptr, o.via.str.size}; }

// Fields of a msgspec struct, whichever way it was encoded: array_like (by position, after
// `first` leading elements such as the tag) or as a map (by name).
class StructView {
 public:
  static StructView Positional(const Obj& array, size_t first) { return {&array, first}; }
  static StructView Named(const Obj& map) { return {&map, 0}; }

  // The field, or nullptr when absent (omitted trailing default or unknown key). A present nil
  // is returned as is.
  const Obj* Get(size_t position, std::string_view name) const {
    if (o_->type == msgpack::type::ARRAY) {
      const size_t i = first_ + position;
      return i < o_->via.array.size ? &o_->via.array.ptr[i] : nullptr;
    }
    for (uint32_t i = 0; i < o_->via.map.size; ++i) {
      const msgpack::object_kv& kv = o_->via.map.ptr[i];
      if (kv.key.type == msgpack::type::STR && StrOf(kv.key) == name) return &kv.val;
    }
    return nullptr;
  }

 private:
  StructView(const Obj* o, size_t first) : o_(o), first_(first) {}
  const Obj* o_;
  size_t first_;
};

bool IsNil(const Obj* o) { return o == nullptr || o->type == msgpack::type::NIL; }

absl::StatusOr<const Obj*> Required(const StructView& view, size_t position, std::string_view name,
                                    std::string_view where) {
  const Obj* o = view.Get(position, name);
  if (o == nullptr) return Bad(where, common::Concat("missing field ", name));
  return o;
}

absl::StatusOr<EngineBlockHash> ParseHash(const Obj& o, std::string_view where) {
  uint64_t bits;
  switch (o.type) {
    case msgpack::type::POSITIVE_INTEGER:
      bits = o.via.u64;
      break;
    case msgpack::type::NEGATIVE_INTEGER:
      // Older vLLM published Python hash() values, signed; the same 64 bits as a uint64.
      bits = static_cast<uint64_t>(o.via.i64);
      break;
    case msgpack::type::BIN:
      if (o.via.bin.size == 0) return Bad(where, "empty block hash");
      return EngineBlockHash(o.via.bin.ptr, o.via.bin.size);
    default:
      return WrongType(where, "int or bytes block hash", o);
  }
  EngineBlockHash out(8, '\0');
  for (int i = 7; i >= 0; --i, bits >>= 8) out[i] = static_cast<char>(bits & 0xff);
  return out;
}

absl::StatusOr<std::vector<EngineBlockHash>> ParseHashList(const Obj& o, std::string_view where,
                                                           const VllmDecodeLimits& limits) {
  if (o.type != msgpack::type::ARRAY) return WrongType(where, "array of block hashes", o);
  if (o.via.array.size > limits.max_hashes_per_event) {
    return TooLarge(where, o.via.array.size, limits.max_hashes_per_event);
  }
  std::vector<EngineBlockHash> out;
  out.reserve(o.via.array.size);
  for (uint32_t i = 0; i < o.via.array.size; ++i) {
    STRATA_ASSIGN_OR_RETURN(EngineBlockHash h,
                            ParseHash(o.via.array.ptr[i], common::Concat(where, "[", i, "]")));
    out.push_back(std::move(h));
  }
  return out;
}

absl::StatusOr<std::vector<uint32_t>> ParseTokenIds(const Obj& o, std::string_view where,
                                                    const VllmDecodeLimits& limits) {
  if (o.type != msgpack::type::ARRAY) return WrongType(where, "array of token ids", o);
  if (o.via.array.size > limits.max_tokens_per_event) {
    return TooLarge(where, o.via.array.size, limits.max_tokens_per_event);
  }
  std::vector<uint32_t> out;
  out.reserve(o.via.array.size);
  for (uint32_t i = 0; i < o.via.array.size; ++i) {
    const Obj& t = o.via.array.ptr[i];
    if (t.type != msgpack::type::POSITIVE_INTEGER || t.via.u64 > UINT32_MAX) {
      return Bad(common::Concat(where, "[", i, "]"), "token id is not an int in [0, 2^32)");
    }
    out.push_back(static_cast<uint32_t>(t.via.u64));
  }
  return out;
}

absl::StatusOr<std::optional<int64_t>> ParseOptionalInt(const Obj* o, std::string_view where) {
  if (IsNil(o)) return std::nullopt;
  if (o->type == msgpack::type::NEGATIVE_INTEGER) return o->via.i64;
  if (o->type == msgpack::type::POSITIVE_INTEGER &&
      o->via.u64 <= uint64_t{std::numeric_limits<int64_t>::max()}) {
    return static_cast<int64_t>(o->via.u64);
  }
  return WrongType(where, "int64 or nil", *o);
}

absl::StatusOr<std::optional<std::string>> ParseOptionalString(const Obj* o,
                                                               std::string_view where) {
  if (IsNil(o)) return std::nullopt;
  if (o->type != msgpack::type::STR) return WrongType(where, "str or nil", *o);
  return std::string(StrOf(*o));
}

absl::StatusOr<VllmBlockStored> ParseStored(const StructView& v, std::string_view where,
                                            const VllmDecodeLimits& limits) {
  VllmBlockStored s;
  STRATA_ASSIGN_OR_RETURN(const Obj* hashes, Required(v, 0, "block_hashes", where));
  STRATA_ASSIGN_OR_RETURN(s.block_hashes,
                          ParseHashList(*hashes, common::Concat(where, ".block_hashes"), limits));
  STRATA_ASSIGN_OR_RETURN(const Obj* parent, Required(v, 1, "parent_block_hash", where));
  if (!IsNil(parent)) {
    STRATA_ASSIGN_OR_RETURN(s.parent,
                            ParseHash(*parent, common::Concat(where, ".parent_block_hash")));
  }
  STRATA_ASSIGN_OR_RETURN(const Obj* tokens, Required(v, 2, "token_ids", where));
  STRATA_ASSIGN_OR_RETURN(s.token_ids,
                          ParseTokenIds(*tokens, common::Concat(where, ".token_ids"), limits));
  STRATA_ASSIGN_OR_RETURN(const Obj* size, Required(v, 3, "block_size", where));
  if (size->type != msgpack::type::POSITIVE_INTEGER || size->via.u64 == 0 ||
      size->via.u64 > UINT32_MAX) {
    return Bad(common::Concat(where, ".block_size"), "not an int in [1, 2^32)");
  }
  s.block_size = static_cast<uint32_t>(size->via.u64);
  // Optional from here on: absent in older versions (or omitted as trailing defaults).
  STRATA_ASSIGN_OR_RETURN(s.lora_id,
                          ParseOptionalInt(v.Get(4, "lora_id"), common::Concat(where, ".lora_id")));
  STRATA_ASSIGN_OR_RETURN(
      s.medium, ParseOptionalString(v.Get(5, "medium"), common::Concat(where, ".medium")));
  STRATA_ASSIGN_OR_RETURN(
      s.lora_name, ParseOptionalString(v.Get(6, "lora_name"), common::Concat(where, ".lora_name")));
  return s;
}

absl::StatusOr<VllmBlockRemoved> ParseRemoved(const StructView& v, std::string_view where,
                                              const VllmDecodeLimits& limits) {
  VllmBlockRemoved r;
  STRATA_ASSIGN_OR_RETURN(const Obj* hashes, Required(v, 0, "block_hashes", where));
  STRATA_ASSIGN_OR_RETURN(r.block_hashes,
                          ParseHashList(*hashes, common::Concat(where, ".block_hashes"), limits));
  STRATA_ASSIGN_OR_RETURN(
      r.medium, ParseOptionalString(v.Get(1, "medium"), common::Concat(where, ".medium")));
  return r;
}

absl::StatusOr<VllmEvent> ParseEvent(const Obj& o, std::string_view where,
                                     const VllmDecodeLimits& limits) {
  const Obj* tag = nullptr;
  std::optional<StructView> view;
  if (o.type == msgpack::type::ARRAY) {
    if (o.via.array.size == 0) return Bad(where, "empty event array (no tag)");
    tag = &o.via.array.ptr[0];
    view = StructView::Positional(o, 1);
  } else if (o.type == msgpack::type::MAP) {
    view = StructView::Named(o);
    tag = view->Get(0, "type");
    if (tag == nullptr) return Bad(where, "event map without a \"type\" tag");
  } else {
    return WrongType(where, "tagged event (array or map)", o);
  }
  if (tag->type != msgpack::type::STR) return WrongType(where, "str event tag", *tag);
  const std::string_view name = StrOf(*tag);
  if (name == "BlockStored") return ParseStored(*view, where, limits);
  if (name == "BlockRemoved") return ParseRemoved(*view, where, limits);
  if (name == "AllBlocksCleared") return VllmAllBlocksCleared{};
  return Bad(where, common::Concat("unknown event tag \"", name, "\""));
}

absl::StatusOr<VllmBatch> ParseBatch(const Obj& o, const VllmDecodeLimits& limits) {
  std::optional<StructView> view;
  if (o.type == msgpack::type::ARRAY) {
    view = StructView::Positional(o, 0);
  } else if (o.type == msgpack::type::MAP) {
    view = StructView::Named(o);
  } else {
    return WrongType("batch", "array [ts, events, data_parallel_rank]", o);
  }
  VllmBatch batch;
  STRATA_ASSIGN_OR_RETURN(const Obj* ts, Required(*view, 0, "ts", "batch"));
  switch (ts->type) {
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      batch.ts = ts->via.f64;
      break;
    // msgpack-c's pack_double writes an integral double as an int, of either sign (found by the
    // vllm_event_decode fuzzer: a negative whole timestamp did not survive a round trip).
    case msgpack::type::POSITIVE_INTEGER:
      batch.ts = static_cast<double>(ts->via.u64);
      break;
    case msgpack::type::NEGATIVE_INTEGER:
      batch.ts = static_cast<double>(ts->via.i64);
      break;
    default:
      return WrongType("batch.ts", "float", *ts);
  }
  STRATA_ASSIGN_OR_RETURN(const Obj* events, Required(*view, 1, "events", "batch"));
  if (events->type != msgpack::type::ARRAY) return WrongType("batch.events", "array", *events);
  if (events->via.array.size > limits.max_events) {
    return TooLarge("batch.events", events->via.array.size, limits.max_events);
  }
  batch.events.reserve(events->via.array.size);
  for (uint32_t i = 0; i < events->via.array.size; ++i) {
    STRATA_ASSIGN_OR_RETURN(
        VllmEvent e,
        ParseEvent(events->via.array.ptr[i], common::Concat("events[", i, "]"), limits));
    batch.events.push_back(std::move(e));
  }
  STRATA_ASSIGN_OR_RETURN(
      batch.data_parallel_rank,
      ParseOptionalInt(view->Get(2, "data_parallel_rank"), "batch.data_parallel_rank"));
  return batch;
}

}  // namespace

absl::StatusOr<VllmBatch> DecodeVllmBatch(std::string_view payload,
                                          const VllmDecodeLimits& limits) {
  if (payload.empty()) return Bad("batch", "empty payload");
  if (payload.size() > limits.max_payload_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("vllm KVEventBatch: payload of ", payload.size(), " bytes; at most ",
                     limits.max_payload_bytes, " accepted"));
  }
  // No container can have more elements than the payload has bytes; without this cap a 5-byte
  // header claiming 2^32 elements would make msgpack allocate them up front.
  const size_t n = payload.size();
  const msgpack::unpack_limit limit(n, n, n, n, n, kMaxDepth);
  msgpack::object_handle handle;
  size_t offset = 0;
  try {
    handle = msgpack::unpack(payload.data(), payload.size(), offset, nullptr, nullptr, limit);
  } catch (const std::exception& e) {
    return Bad("batch", common::Concat("not msgpack: ", e.what()));
  }
  if (offset != payload.size()) {
    return Bad("batch", absl::StrCat(payload.size() - offset, " trailing bytes after the batch"));
  }
  return ParseBatch(handle.get(), limits);
}

absl::StatusOr<uint64_t> DecodeVllmSequence(std::string_view frame) {
  if (frame.size() != 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("vllm sequence frame has ", frame.size(), " bytes, want 8"));
  }
  uint64_t seq = 0;
  for (char c : frame) seq = (seq << 8) | static_cast<uint8_t>(c);
  return seq;
}

std::optional<Tier> VllmMediumTier(const std::optional<std::string>& medium) {
  if (!medium.has_value()) return Tier::kHbm;
  const std::string m = absl::AsciiStrToUpper(*medium);
  if (m == "GPU") return Tier::kHbm;
  if (m == "CPU") return Tier::kDram;
  if (m == "DISK" || m == "SSD") return Tier::kSsd;
  return std::nullopt;
}

std::string VllmBlockExtra(const VllmBlockStored& stored) {
  if (stored.lora_id.has_value()) return absl::StrCat("lora:", *stored.lora_id);
  if (stored.lora_name.has_value()) return common::Concat("lora-name:", *stored.lora_name);
  return {};
}

VllmKeyMapper::VllmKeyMapper(common::NamespaceId namespace_id, uint32_t expected_block_size)
    : namespace_id_(namespace_id), expected_block_size_(expected_block_size) {}

std::vector<VllmIndexEvent> VllmKeyMapper::Apply(const VllmBatch& batch) {
  ++stats_.batches;
  std::vector<VllmIndexEvent> out;
  for (const VllmEvent& event : batch.events) {
    if (const auto* stored = std::get_if<VllmBlockStored>(&event)) {
      ApplyStored(*stored, &out);
    } else if (const auto* removed = std::get_if<VllmBlockRemoved>(&event)) {
      ApplyRemoved(*removed, &out);
    } else {
      for (VllmIndexEvent& e : Reset()) out.push_back(std::move(e));
    }
  }
  stats_.live_engine_blocks = engine_.size();
  return out;
}

void VllmKeyMapper::ApplyStored(const VllmBlockStored& stored, std::vector<VllmIndexEvent>* out) {
  const size_t n = stored.block_hashes.size();
  const size_t block_size = stored.block_size;
  if (expected_block_size_ != 0 && block_size != expected_block_size_) {
    stats_.block_size_mismatches += n;
    return;
  }
  // Without exactly one full block of tokens per hash the blocks' boundaries are unknown.
  if (block_size == 0 || stored.token_ids.size() != n * block_size) {
    stats_.malformed_blocks += n;
    return;
  }
  std::optional<common::ChainHash> parent;
  if (stored.parent.has_value()) {
    auto it = engine_.find(*stored.parent);
    if (it == engine_.end()) {
      stats_.unresolved_parent_blocks += n;
      return;
    }
    parent = it->second.strata_hash;
  }
  const std::optional<Tier> tier = VllmMediumTier(stored.medium);
  const int slot = tier.has_value() ? static_cast<int>(*tier) : kNumTiers;
  const std::string extra = VllmBlockExtra(stored);
  const std::span<const uint32_t> tokens(stored.token_ids);
  VllmIndexEvent event{VllmIndexEvent::kStored, tier.value_or(Tier::kHbm), {}};
  for (size_t i = 0; i < n; ++i) {
    const common::ChainHash hash = common::HashBlock(
        parent, namespace_id_, "", tokens.subspan(i * block_size, block_size), extra);
    auto [it, inserted] = engine_.try_emplace(stored.block_hashes[i]);
    // A live engine hash keeps its first mapping, so its per-tier counts and the Strata-side
    // counts stay paired; a different hash here would be an engine-side collision.
    if (inserted) it->second.strata_hash = hash;
    ++it->second.counts[slot];
    ++stats_.blocks_stored;
    parent = hash;
    if (!tier.has_value()) continue;
    const IndexKey key = IndexKeyOf(namespace_id_, it->second.strata_hash);
    if (strata_[key][slot]++ == 0) event.keys.push_back(key);
  }
  if (!event.keys.empty()) out->push_back(std::move(event));
}

void VllmKeyMapper::ApplyRemoved(const VllmBlockRemoved& removed,
                                 std::vector<VllmIndexEvent>* out) {
  const std::optional<Tier> tier = VllmMediumTier(removed.medium);
  const int slot = tier.has_value() ? static_cast<int>(*tier) : kNumTiers;
  VllmIndexEvent event{VllmIndexEvent::kRemoved, tier.value_or(Tier::kHbm), {}};
  for (const EngineBlockHash& engine_hash : removed.block_hashes) {
    auto it = engine_.find(engine_hash);
    if (it == engine_.end() || it->second.counts[slot] == 0) {
      ++stats_.unknown_removals;
      continue;
    }
    --it->second.counts[slot];
    ++stats_.blocks_removed;
    if (tier.has_value()) {
      const IndexKey key = IndexKeyOf(namespace_id_, it->second.strata_hash);
      auto s = strata_.find(key);
      if (s != strata_.end() && --s->second[slot] == 0) {
        event.keys.push_back(key);
        if (s->second == std::array<uint32_t, kNumTiers>{}) strata_.erase(s);
      }
    }
    if (it->second.counts == SlotCounts{}) engine_.erase(it);
  }
  if (!event.keys.empty()) out->push_back(std::move(event));
}

std::vector<VllmIndexEvent> VllmKeyMapper::Reset() {
  std::vector<VllmIndexEvent> out;
  for (Tier tier : kAllTiers) {
    VllmIndexEvent event{VllmIndexEvent::kCleared, tier, {}};
    for (const auto& [key, counts] : strata_) {
      if (counts[static_cast<int>(tier)] > 0) event.keys.push_back(key);
    }
    if (!event.keys.empty()) out.push_back(std::move(event));
  }
  engine_.clear();
  strata_.clear();
  ++stats_.clears;
  stats_.live_engine_blocks = 0;
  return out;
}

}  // namespace strata::router
