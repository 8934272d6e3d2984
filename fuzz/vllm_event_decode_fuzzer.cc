// Fuzzes router::DecodeVllmBatch (vLLM's msgpack KVEventBatch, from an engine's ZMQ socket) and
// the VllmKeyMapper that turns a decoded batch into index changes.
//
// Input: the payload as the subscriber receives it. Checks, beyond ASan/UBSan and "never throws":
//   - a decoded batch stays within VllmDecodeLimits (small ones here, so they are reachable);
//   - re-encoding a decoded batch (array form, hashes as bytes) and decoding it again gives the
//     same batch: nothing the decoder accepts is lost or changed in the round trip;
//   - the mapper's index changes are consistent per tier: a key is reported stored only while
//     absent, removed or cleared only while present; Reset() then clears exactly what is left.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <msgpack.hpp>
#include <string>
#include <string_view>
#include <variant>

#include "absl/container/flat_hash_set.h"
#include "fuzz/fuzz_check.h"
#include "router/vllm_events.h"

namespace {

using namespace strata::router;  // NOLINT: fuzz target

using Packer = msgpack::packer<msgpack::sbuffer>;

void PackStr(Packer& pk, std::string_view s) {
  pk.pack_str(static_cast<uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}
void PackHash(Packer& pk, const EngineBlockHash& h) {
  pk.pack_bin(static_cast<uint32_t>(h.size()));
  pk.pack_bin_body(h.data(), static_cast<uint32_t>(h.size()));
}
template <typename T>
void PackOptional(Packer& pk, const std::optional<T>& v) {
  if (!v.has_value()) {
    pk.pack_nil();
  } else if constexpr (std::is_same_v<T, std::string>) {
    PackStr(pk, *v);
  } else {
    pk.pack_int64(*v);
  }
}

std::string Encode(const VllmBatch& b) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_array(3);
  pk.pack_double(b.ts);
  pk.pack_array(static_cast<uint32_t>(b.events.size()));
  for (const VllmEvent& e : b.events) {
    if (const auto* s = std::get_if<VllmBlockStored>(&e)) {
      pk.pack_array(8);
      PackStr(pk, "BlockStored");
      pk.pack_array(static_cast<uint32_t>(s->block_hashes.size()));
      for (const EngineBlockHash& h : s->block_hashes) PackHash(pk, h);
      if (s->parent.has_value()) {
        PackHash(pk, *s->parent);
      } else {
        pk.pack_nil();
      }
      pk.pack_array(static_cast<uint32_t>(s->token_ids.size()));
      for (uint32_t t : s->token_ids) pk.pack_uint32(t);
      pk.pack_uint32(s->block_size);
      PackOptional(pk, s->lora_id);
      PackOptional(pk, s->medium);
      PackOptional(pk, s->lora_name);
    } else if (const auto* r = std::get_if<VllmBlockRemoved>(&e)) {
      pk.pack_array(3);
      PackStr(pk, "BlockRemoved");
      pk.pack_array(static_cast<uint32_t>(r->block_hashes.size()));
      for (const EngineBlockHash& h : r->block_hashes) PackHash(pk, h);
      PackOptional(pk, r->medium);
    } else {
      pk.pack_array(1);
      PackStr(pk, "AllBlocksCleared");
    }
  }
  PackOptional(pk, b.data_parallel_rank);
  return std::string(buf.data(), buf.size());
}

bool SameEvent(const VllmEvent& a, const VllmEvent& b) {
  if (a.index() != b.index()) return false;
  if (const auto* x = std::get_if<VllmBlockStored>(&a)) {
    const auto& y = std::get<VllmBlockStored>(b);
    return x->block_hashes == y.block_hashes && x->parent == y.parent &&
           x->token_ids == y.token_ids && x->block_size == y.block_size &&
           x->lora_id == y.lora_id && x->medium == y.medium && x->lora_name == y.lora_name;
  }
  if (const auto* x = std::get_if<VllmBlockRemoved>(&a)) {
    const auto& y = std::get<VllmBlockRemoved>(b);
    return x->block_hashes == y.block_hashes && x->medium == y.medium;
  }
  return true;
}

bool SameBatch(const VllmBatch& a, const VllmBatch& b) {
  if (std::memcmp(&a.ts, &b.ts, sizeof(double)) != 0) return false;  // NaN-safe, exact
  if (a.data_parallel_rank != b.data_parallel_rank) return false;
  if (a.events.size() != b.events.size()) return false;
  for (size_t i = 0; i < a.events.size(); ++i) {
    if (!SameEvent(a.events[i], b.events[i])) return false;
  }
  return true;
}

// What the index would hold for this source, per tier, built from the mapper's changes only.
struct Model {
  absl::flat_hash_set<IndexKey> present[kNumTiers];

  void Apply(const std::vector<VllmIndexEvent>& events) {
    for (const VllmIndexEvent& e : events) {
      auto& set = present[static_cast<int>(e.tier)];
      FUZZ_CHECK(!e.keys.empty());
      for (IndexKey k : e.keys) {
        if (e.kind == VllmIndexEvent::kStored) {
          FUZZ_CHECK(set.insert(k).second);  // stored only while absent
        } else {
          FUZZ_CHECK(set.erase(k) == 1);  // removed/cleared only while present
        }
      }
    }
  }
  bool Empty() const {
    for (const auto& s : present) {
      if (!s.empty()) return false;
    }
    return true;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view payload(reinterpret_cast<const char*>(data), size);
  VllmDecodeLimits limits;
  limits.max_payload_bytes = 1 << 16;
  limits.max_events = 64;
  limits.max_hashes_per_event = 64;
  limits.max_tokens_per_event = 256;
  absl::StatusOr<VllmBatch> batch = DecodeVllmBatch(payload, limits);
  if (!batch.ok()) {
    FUZZ_CHECK(absl::IsInvalidArgument(batch.status()) ||
               absl::IsResourceExhausted(batch.status()));
    return 0;
  }
  FUZZ_CHECK(batch->events.size() <= limits.max_events);
  for (const VllmEvent& e : batch->events) {
    if (const auto* s = std::get_if<VllmBlockStored>(&e)) {
      FUZZ_CHECK(s->block_hashes.size() <= limits.max_hashes_per_event);
      FUZZ_CHECK(s->token_ids.size() <= limits.max_tokens_per_event);
      FUZZ_CHECK(s->block_size >= 1);
      for (const EngineBlockHash& h : s->block_hashes) FUZZ_CHECK(!h.empty());
    } else if (const auto* r = std::get_if<VllmBlockRemoved>(&e)) {
      FUZZ_CHECK(r->block_hashes.size() <= limits.max_hashes_per_event);
    }
  }

  // Round trip through the array encoding (what vLLM up to 0.23 sends).
  const std::string encoded = Encode(*batch);
  absl::StatusOr<VllmBatch> again = DecodeVllmBatch(encoded, VllmDecodeLimits{});
  if (!again.ok()) std::fprintf(stderr, "re-decode: %s\n", again.status().ToString().c_str());
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(SameBatch(*batch, *again));

  // The mapper, twice over the same batch (the second store of each block is reference-counted,
  // the second removal finds it), then a reset.
  VllmKeyMapper mapper(/*namespace_id=*/7, size > 0 ? data[0] % 3 : 0);
  Model model;
  model.Apply(mapper.Apply(*batch));
  model.Apply(mapper.Apply(*again));
  FUZZ_CHECK(mapper.stats().batches == 2);
  model.Apply(mapper.Reset());
  FUZZ_CHECK(model.Empty());
  FUZZ_CHECK(mapper.stats().live_engine_blocks == 0);
  return 0;
}
