// Fuzzes the request validation the gRPC handlers of the cache node and the router run before
// touching any state: bytes -> ParseFromArray of a request message -> the handler's validation
// function. gRPC itself (4 MiB + 64 KiB node / 8 MiB router message limits) is not in the loop:
// what is fuzzed is every message a handler accepts within those limits.
//
// Input: byte 0 picks the message type and whether the node knows only one registered namespace
// (a real NamespaceRegistry) or takes any id but 0; the rest is the serialized message. For each
// message that validates, checks that it satisfies what the handler relies on afterwards:
//   - Get/Lookup/Delete: 1..max_blocks_per_request hashes of exactly 32 bytes, equal to the
//     request's, in a known namespace; Get's chunk size within [64 KiB, kMaxChunkBytes];
//   - Put header: 1 <= size_bytes <= the largest block (the size the handler allocates), a 32-byte
//     hash, a known namespace;
//   - Route/Locate: 1..max_blocks keys; by tokens, at most max_tokens tokens and exactly the keys
//     of common::HashChain over them; by hashes, IndexKeyOf of each 32-byte hash;
//   - PublishEvents (batch or snapshot): at most max_events events and max_keys keys, each the
//     first 8 bytes of its 32-byte hash xor the namespace, CLEARED events without keys.
// A rejection must carry one of the documented codes.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>

#include "cachenode/cache_node_service.h"
#include "cachenode/namespace_registry.h"
#include "common/block_hash.h"
#include "common/namespace_id.h"
#include "fuzz/fuzz_check.h"
#include "router/event_decode.h"
#include "router/router_service.h"
#include "strata/v1/cachenode.pb.h"
#include "strata/v1/router.pb.h"

namespace {

using strata::cachenode::CacheNodeServiceOptions;
using strata::cachenode::NamespaceRegistry;

// The one namespace the registered-node variant knows (fuzz/corpus seeds use its id).
constexpr char kNamespace[] = "fuzz/ns";
// Small limits, so that inputs a few KiB long reach them.
constexpr uint32_t kMaxBlocks = 16;
constexpr uint64_t kLargestBlock = 1 << 20;

const NamespaceRegistry& Registry() {
  static const NamespaceRegistry* registry =
      NamespaceRegistry::Open("", {kNamespace}).value().release();
  return *registry;
}

bool NodeCode(const absl::Status& s) {
  return absl::IsInvalidArgument(s) || absl::IsFailedPrecondition(s) ||
         absl::IsResourceExhausted(s);
}

void CheckChain(const absl::StatusOr<std::vector<strata::common::ChainHash>>& chain,
                const google::protobuf::RepeatedPtrField<std::string>& hashes,
                strata::common::NamespaceId ns, const NamespaceRegistry* namespaces) {
  if (!chain.ok()) {
    FUZZ_CHECK(NodeCode(chain.status()));
    return;
  }
  FUZZ_CHECK(ns != 0);
  if (namespaces != nullptr) FUZZ_CHECK(namespaces->Check(ns).ok());
  FUZZ_CHECK(!chain->empty() && chain->size() <= kMaxBlocks);
  FUZZ_CHECK(chain->size() == static_cast<size_t>(hashes.size()));
  for (size_t i = 0; i < chain->size(); ++i) {
    FUZZ_CHECK((*chain)[i].view() == std::string_view(hashes[static_cast<int>(i)]));
  }
}

template <typename Request>
void CheckRouteKeys(const absl::StatusOr<std::vector<strata::router::IndexKey>>& keys,
                    const Request& req, const strata::router::RouteRequestLimits& limits) {
  if (!keys.ok()) {
    FUZZ_CHECK(absl::IsInvalidArgument(keys.status()));
    return;
  }
  FUZZ_CHECK(strata::common::ValidateNamespaceName(req.namespace_()).ok());
  const strata::common::NamespaceId ns = strata::common::NamespaceIdOf(req.namespace_());
  FUZZ_CHECK(!keys->empty() && keys->size() <= limits.max_blocks);
  FUZZ_CHECK((req.chain_hashes_size() > 0) != (req.token_ids_size() > 0));
  if (req.chain_hashes_size() > 0) {
    FUZZ_CHECK(keys->size() == static_cast<size_t>(req.chain_hashes_size()));
    for (int i = 0; i < req.chain_hashes_size(); ++i) {
      auto h = strata::common::ChainHash::FromBytes(req.chain_hashes(i));
      FUZZ_CHECK(h.ok());
      FUZZ_CHECK((*keys)[static_cast<size_t>(i)] == strata::router::IndexKeyOf(ns, *h));
    }
    return;
  }
  FUZZ_CHECK(static_cast<uint32_t>(req.token_ids_size()) <= limits.max_tokens);
  const uint32_t block_tokens =
      req.block_tokens() != 0 ? req.block_tokens() : limits.default_block_tokens;
  const auto chain = strata::common::HashChain(
      ns, req.cache_salt(), std::span(req.token_ids().data(), req.token_ids_size()), block_tokens);
  FUZZ_CHECK(chain.size() == keys->size());
  for (size_t i = 0; i < chain.size(); ++i) {
    FUZZ_CHECK((*keys)[i] == strata::router::IndexKeyOf(ns, chain[i]));
  }
}

void CheckEvents(const google::protobuf::RepeatedPtrField<strata::v1::BlockEvent>& events) {
  strata::router::DecodeLimits limits;
  limits.max_events = 8;
  limits.max_keys = 64;
  auto decoded = strata::router::DecodeEvents(events, limits);
  if (!decoded.ok()) {
    FUZZ_CHECK(absl::IsInvalidArgument(decoded.status()) ||
               absl::IsResourceExhausted(decoded.status()));
    return;
  }
  FUZZ_CHECK(decoded->size() == static_cast<size_t>(events.size()));
  FUZZ_CHECK(decoded->size() <= limits.max_events);
  size_t keys = 0;
  for (size_t i = 0; i < decoded->size(); ++i) {
    const strata::router::IngestEvent& d = (*decoded)[i];
    const strata::v1::BlockEvent& e = events[static_cast<int>(i)];
    if (d.kind == strata::router::IngestEvent::Kind::kCleared) {
      FUZZ_CHECK(e.kind() == strata::v1::BlockEvent::CLEARED);
      FUZZ_CHECK(d.keys.empty());
      continue;
    }
    FUZZ_CHECK(e.chain_hashes().size() == d.keys.size() * 32);
    for (size_t k = 0; k < d.keys.size(); ++k) {
      uint64_t head;
      std::memcpy(&head, e.chain_hashes().data() + 32 * k, sizeof(head));
      FUZZ_CHECK(d.keys[k] == (head ^ e.namespace_id()));
    }
    keys += d.keys.size();
  }
  FUZZ_CHECK(keys <= limits.max_keys);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t selector = data[0];
  const uint8_t* body = data + 1;
  const int body_size = static_cast<int>(size - 1);
  const NamespaceRegistry* namespaces = (selector & 0x80) != 0 ? &Registry() : nullptr;
  CacheNodeServiceOptions node;
  node.max_blocks_per_request = kMaxBlocks;

  switch ((selector & 0x7f) % 8) {
    case 0: {
      strata::v1::GetRequest req;
      if (!req.ParseFromArray(body, body_size)) return 0;
      auto valid = strata::cachenode::ValidateGetRequest(req, namespaces, node);
      if (valid.ok()) {
        FUZZ_CHECK(valid->chunk_bytes >= (64u << 10) &&
                   valid->chunk_bytes <= strata::cachenode::kMaxChunkBytes);
        CheckChain(valid->chain, req.chain_hashes(), req.namespace_id(), namespaces);
      } else {
        FUZZ_CHECK(NodeCode(valid.status()));
      }
      break;
    }
    case 1: {
      strata::v1::LookupRequest req;
      if (!req.ParseFromArray(body, body_size)) return 0;
      CheckChain(strata::cachenode::ParseRequestChain(namespaces, req.namespace_id(),
                                                      req.chain_hashes(), kMaxBlocks),
                 req.chain_hashes(), req.namespace_id(), namespaces);
      break;
    }
    case 2: {
      strata::v1::DeleteRequest req;
      if (!req.ParseFromArray(body, body_size)) return 0;
      CheckChain(strata::cachenode::ParseRequestChain(namespaces, req.namespace_id(),
                                                      req.chain_hashes(), kMaxBlocks),
                 req.chain_hashes(), req.namespace_id(), namespaces);
      break;
    }
    case 3: {
      strata::v1::PutRequest req;
      if (!req.ParseFromArray(body, body_size) || !req.has_header()) return 0;
      const strata::v1::PutBlockHeader& h = req.header();
      auto info = strata::cachenode::ValidatePutHeader(h, namespaces, kLargestBlock);
      if (!info.ok()) {
        FUZZ_CHECK(NodeCode(info.status()));
        break;
      }
      FUZZ_CHECK(info->size >= 1 && info->size <= kLargestBlock);
      FUZZ_CHECK(info->size == h.size_bytes());
      FUZZ_CHECK(info->key.namespace_id == h.key().namespace_id() && info->key.namespace_id != 0);
      if (namespaces != nullptr) FUZZ_CHECK(namespaces->Check(info->key.namespace_id).ok());
      FUZZ_CHECK(info->key.hash.view() == std::string_view(h.key().chain_hash()));
      FUZZ_CHECK(info->checksum == h.checksum() && info->chain_position == h.chain_position());
      break;
    }
    case 4:
    case 5: {
      strata::router::RouteRequestLimits limits;
      limits.max_blocks = kMaxBlocks;
      limits.max_tokens = 256;
      limits.default_block_tokens = 4;
      if ((selector & 0x7f) % 8 == 4) {
        strata::v1::RouteRequest req;
        if (!req.ParseFromArray(body, body_size)) return 0;
        CheckRouteKeys(strata::router::ValidateRouteRequest(req, limits), req, limits);
      } else {
        strata::v1::LocateRequest req;
        if (!req.ParseFromArray(body, body_size)) return 0;
        CheckRouteKeys(strata::router::ValidateLocateRequest(req, limits), req, limits);
      }
      break;
    }
    case 6: {
      strata::v1::PublishRequest req;
      if (!req.ParseFromArray(body, body_size)) return 0;
      if (req.has_batch()) CheckEvents(req.batch().events());
      if (req.has_snapshot()) CheckEvents(req.snapshot().blocks());
      break;
    }
    default: {
      strata::v1::RegisterNamespaceRequest req;
      if (!req.ParseFromArray(body, body_size)) return 0;
      auto registry = NamespaceRegistry::Open("", {});
      FUZZ_CHECK(registry.ok());
      auto r = (*registry)->Register(req.name());
      if (!r.ok()) {
        FUZZ_CHECK(absl::IsInvalidArgument(r.status()));
        FUZZ_CHECK(!strata::common::ValidateNamespaceName(req.name()).ok());
        break;
      }
      FUZZ_CHECK(req.name().size() >= 1 &&
                 req.name().size() <= strata::common::kMaxNamespaceNameBytes);
      FUZZ_CHECK(r->first == strata::common::NamespaceIdOf(req.name()) && r->second);
      FUZZ_CHECK((*registry)->Check(r->first).ok());
      break;
    }
  }
  return 0;
}
