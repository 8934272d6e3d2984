#include "cachenode/cache_node_service.h"

#include <google/protobuf/descriptor.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/method_handler.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/byte_size.h"
#include "common/grpc_byte_buffer.h"
#include "common/grpc_status.h"
#include "common/status_macros.h"

namespace strata::cachenode {

using common::ToGrpcStatus;

namespace {

// Position of a method in the generated service: the proto's declaration order, which is the order
// the generated Service constructor registers its methods in.
int MethodIndex(const char* name) {
  const google::protobuf::MethodDescriptor* method =
      strata::v1::GetRequest::descriptor()->file()->FindServiceByName("CacheNode")->FindMethodByName(
          name);
  return method->index();
}

constexpr uint8_t kOnSsd = 1u << static_cast<int>(TierKind::kSsd);

// The blocks the store holds without an SSD copy (only those in `among` when given), how many
// hold one, and how many of `among` do. One pass over the store's index under its mutex.
struct SsdCoverage {
  absl::flat_hash_set<BlockKey> missing;
  uint64_t on_ssd = 0;
  uint64_t among_on_ssd = 0;
};
SsdCoverage ScanSsdCoverage(const TieredStore& store,
                            const absl::flat_hash_set<BlockKey>* among = nullptr) {
  SsdCoverage c;
  store.VisitBlocks([] {},
                    [&](const BlockKey& key, uint8_t tiers) {
                      if ((tiers & kOnSsd) != 0) {
                        ++c.on_ssd;
                        if (among != nullptr && among->contains(key)) ++c.among_on_ssd;
                      } else if (among == nullptr || among->contains(key)) {
                        c.missing.insert(key);
                      }
                    });
  return c;
}

}  // namespace

strata::v1::Tier ToProtoTier(TierKind kind) {
  switch (kind) {
    case TierKind::kHbm:
      return strata::v1::TIER_HBM;
    case TierKind::kDram:
      return strata::v1::TIER_DRAM;
    case TierKind::kSsd:
      return strata::v1::TIER_SSD;
  }
  return strata::v1::TIER_UNSPECIFIED;
}

absl::StatusOr<BlockInfo> ValidatePutHeader(const strata::v1::PutBlockHeader& h,
                                            const NamespaceRegistry* namespaces,
                                            uint64_t largest_block_bytes) {
  const common::NamespaceId ns = h.key().namespace_id();
  if (namespaces != nullptr) {
    STRATA_RETURN_IF_ERROR(namespaces->Check(ns));
  } else if (ns == 0) {
    return absl::InvalidArgumentError("no namespace id given");
  }
  STRATA_ASSIGN_OR_RETURN(common::ChainHash hash,
                          common::ChainHash::FromBytes(h.key().chain_hash()));
  if (h.size_bytes() == 0) return absl::InvalidArgumentError("empty block");
  if (h.size_bytes() > largest_block_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("block of ", common::FormatByteSize(h.size_bytes()),
                     " exceeds the largest block this node accepts (",
                     common::FormatByteSize(largest_block_bytes), ")"));
  }
  return BlockInfo{common::BlockKey{ns, hash}, h.size_bytes(), h.checksum(), h.chain_position()};
}

absl::StatusOr<ValidGet> ValidateGetRequest(const strata::v1::GetRequest& request,
                                            const NamespaceRegistry* namespaces,
                                            const CacheNodeServiceOptions& options) {
  ValidGet out;
  STRATA_ASSIGN_OR_RETURN(out.chain, ParseRequestChain(namespaces, request.namespace_id(),
                                                       request.chain_hashes(),
                                                       options.max_blocks_per_request));
  const uint64_t asked =
      request.max_chunk_bytes() == 0 ? options.default_chunk_bytes : request.max_chunk_bytes();
  out.chunk_bytes = std::clamp<uint64_t>(asked, 64 << 10, kMaxChunkBytes);
  return out;
}

// Counts one RPC as in flight until Done, and reports its duration and code to the observer.
class CacheNodeService::RpcTimer {
 public:
  RpcTimer(CacheNodeService* service, std::string_view method)
      : service_(service), method_(method), start_(service->clock_->Now()) {
    absl::MutexLock lock(&service_->inflight_mu_);
    ++service_->inflight_;
  }
  ~RpcTimer() {
    absl::MutexLock lock(&service_->inflight_mu_);
    --service_->inflight_;
  }
  grpc::Status Done(grpc::Status status) {
    if (service_->observer_ != nullptr) {
      service_->observer_->OnRpcDone(method_, service_->clock_->Now() - start_,
                                     static_cast<int>(status.error_code()));
    }
    return status;
  }

 private:
  CacheNodeService* service_;
  std::string_view method_;
  absl::Time start_;
};

CacheNodeService::CacheNodeService(TieredStore* store, NamespaceRegistry* namespaces,
                                   EngineLoadTable* engines, const CacheNodeServiceOptions& options,
                                   RpcObserver* observer, common::Clock* clock)
    : store_(store),
      namespaces_(namespaces),
      engines_(engines),
      options_(options),
      observer_(observer),
      clock_(clock) {
  // Replaces the generated Put and Get handlers with raw ones. As streamed methods the server
  // hands them the call's messages as they come; their wire format does not change.
  MarkMethodStreamed(
      MethodIndex("Put"),
      new grpc::internal::BidiStreamingHandler<CacheNodeService, grpc::ByteBuffer,
                                               strata::v1::PutResponse>(
          [](CacheNodeService* service, grpc::ServerContext* context, PutStream* stream) {
            return service->StreamPut(context, stream);
          },
          this));
  MarkMethodStreamed(
      MethodIndex("Get"),
      new grpc::internal::SplitServerStreamingHandler<strata::v1::GetRequest, grpc::ByteBuffer>(
          [this](grpc::ServerContext* context, GetStream* stream) {
            return StreamGet(context, stream);
          }));
}

bool CacheNodeService::WaitUntilIdle(absl::Duration timeout) {
  absl::MutexLock lock(&inflight_mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(inflight_mu_) { return inflight_ == 0; };
  return inflight_mu_.AwaitWithTimeout(absl::Condition(&idle), timeout);
}

int CacheNodeService::InflightRpcs() const {
  absl::MutexLock lock(&inflight_mu_);
  return inflight_;
}

absl::StatusOr<std::vector<common::ChainHash>> CacheNodeService::ParseChain(
    common::NamespaceId ns, const google::protobuf::RepeatedPtrField<std::string>& hashes) const {
  return ParseRequestChain(namespaces_, ns, hashes, options_.max_blocks_per_request);
}

grpc::Status CacheNodeService::StreamPut(grpc::ServerContext* context, PutStream* stream) {
  RpcTimer timer(this, "Put");
  strata::v1::PutResponse response;
  absl::Status status = DoPut(context, stream, &response);
  // As the generated client-streaming handler does: the response travels only with an OK status.
  if (status.ok() && !stream->Write(response)) {
    status = absl::CancelledError("client went away before the put results were sent");
  }
  return timer.Done(ToGrpcStatus(status));
}

absl::Status CacheNodeService::DoPut(grpc::ServerContext* context, PutStream* stream,
                                     strata::v1::PutResponse* response) {
  // The block being received. Its bytes go straight into a reserved DRAM slot when the block
  // lands in DRAM (one copy on the node); otherwise (HBM, no host-addressable DRAM tier, DRAM
  // cannot make room) into a heap buffer that TieredStore::Put copies where it belongs.
  struct Pending {
    BlockInfo info;
    bool from_gpu = false;
    ReservedSlot slot;
    std::unique_ptr<std::byte[]> bytes;
    std::byte* data = nullptr;  // slot's or bytes'
    uint64_t received = 0;
  };
  std::optional<Pending> cur;
  int index = -1;  // of the block being received
  auto fail = [&](const absl::Status& s) {
    return absl::Status(
        s.code(), absl::StrCat("block ", index, ": ", s.message(), " (", response->results_size(),
                               " earlier blocks committed)"));
  };
  // One chunk of `size` bytes: `copy_to` writes it at the given address (the assembly buffer).
  auto on_chunk = [&](uint64_t size, const auto& copy_to) -> absl::Status {
    if (!cur.has_value()) {
      return fail(absl::InvalidArgumentError("payload chunk without a block header"));
    }
    if (cur->received + size > cur->info.size) {
      return fail(absl::InvalidArgumentError(absl::StrCat(
          "chunks exceed the declared size of ", cur->info.size, " bytes; not committed")));
    }
    copy_to(cur->data + cur->received);
    cur->received += size;
    if (cur->received == cur->info.size) {
      auto tier = cur->slot.valid()
                      ? store_->CommitDram(cur->info, std::move(cur->slot))
                      : store_->Put(cur->info, {cur->data, cur->info.size}, cur->from_gpu);
      if (!tier.ok()) return fail(tier.status());
      strata::v1::PutBlockResult* r = response->add_results();
      r->set_chain_hash(std::string(cur->info.key.hash.view()));
      r->set_code(0);
      r->set_tier(ToProtoTier(*tier));
      cur.reset();
    }
    return absl::OkStatus();
  };
  grpc::ByteBuffer buffer;
  strata::v1::PutRequest req;  // headers, and chunks some other encoder laid out differently
  while (stream->Read(&buffer)) {
    // The chunk path: the payload's slices are copied once, straight into the block.
    if (std::optional<common::BytesField> chunk = common::SplitBytesField(buffer);
        chunk.has_value() && chunk->field_number == strata::v1::PutRequest::kChunkFieldNumber) {
      STRATA_RETURN_IF_ERROR(on_chunk(chunk->size, [&](std::byte* out) {
        for (const grpc::Slice& slice : chunk->payload) {
          std::memcpy(out, slice.begin(), slice.size());
          out += slice.size();
        }
      }));
      continue;
    }
    if (absl::Status s = common::ProtoFromBuffer(buffer, &req); !s.ok()) return fail(s);
    if (req.has_header()) {
      if (cur.has_value()) {
        return fail(absl::InvalidArgumentError(absl::StrCat("truncated: next header arrived after ",
                                                            cur->received, " of ", cur->info.size,
                                                            " bytes; not committed")));
      }
      ++index;
      const strata::v1::PutBlockHeader& h = req.header();
      absl::StatusOr<BlockInfo> info =
          ValidatePutHeader(h, namespaces_, store_->LargestBlockBytes());
      if (!info.ok()) return fail(info.status());
      cur.emplace();
      cur->info = *info;
      cur->from_gpu = h.from_gpu();
      if (!cur->from_gpu || store_->tier(TierKind::kHbm) == nullptr) {
        if (absl::StatusOr<ReservedSlot> slot = store_->ReserveDram(h.size_bytes()); slot.ok()) {
          cur->slot = std::move(*slot);
          cur->data = cur->slot.data().data();
        }
      }
      if (!cur->slot.valid()) {
        cur->bytes = std::make_unique_for_overwrite<std::byte[]>(h.size_bytes());
        cur->data = cur->bytes.get();
      }
    } else if (req.item_case() == strata::v1::PutRequest::kChunk) {
      const std::string& chunk = req.chunk();
      STRATA_RETURN_IF_ERROR(on_chunk(chunk.size(), [&](std::byte* out) {
        std::memcpy(out, chunk.data(), chunk.size());
      }));
    } else {
      return fail(absl::InvalidArgumentError("put message carries neither header nor chunk"));
    }
  }
  if (context->IsCancelled()) {
    return fail(absl::CancelledError("put stream cancelled or past its deadline"));
  }
  if (cur.has_value()) {
    return fail(absl::InvalidArgumentError(absl::StrCat(
        "stream ended after ", cur->received, " of ", cur->info.size, " bytes; not committed")));
  }
  return absl::OkStatus();
}

grpc::Status CacheNodeService::StreamGet(grpc::ServerContext* context, GetStream* stream) {
  RpcTimer timer(this, "Get");
  strata::v1::GetRequest request;
  if (!stream->Read(&request)) {
    return timer.Done(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                   "the stream carried no parsable GetRequest"));
  }
  return timer.Done(ToGrpcStatus(DoGet(context, request, stream)));
}

absl::Status CacheNodeService::DoGet(grpc::ServerContext* context,
                                     const strata::v1::GetRequest& request, GetStream* stream) {
  STRATA_ASSIGN_OR_RETURN(ValidGet valid, ValidateGetRequest(request, namespaces_, options_));
  const std::vector<common::ChainHash>& chain = valid.chain;
  const uint64_t chunk_bytes = valid.chunk_bytes;
  const std::vector<uint64_t> sizes = store_->PayloadSizes(request.namespace_id(), chain);
  const absl::Status cancelled = absl::CancelledError("client went away or deadline passed");
  strata::v1::GetResponse msg;
  size_t begin = 0;
  while (begin < chain.size()) {
    if (context->IsCancelled()) return cancelled;
    // A window pins at most get_window_bytes of payload (at least one block).
    size_t end = begin;
    uint64_t window = 0;
    do {
      window += sizes[end++];
    } while (end < chain.size() && window + sizes[end] <= options_.get_window_bytes);
    std::vector<BlockRead> reads =
        store_->GetChain(request.namespace_id(), std::span(chain).subspan(begin, end - begin),
                         request.stop_at_first_miss());
    for (size_t i = 0; i < reads.size(); ++i) {
      BlockRead& r = reads[i];
      strata::v1::GetBlockHeader* h = msg.mutable_header();
      h->Clear();
      h->set_index(static_cast<uint32_t>(begin + i));
      h->set_found(r.status.ok());
      if (r.status.ok()) {
        h->set_tier(ToProtoTier(r.tier));
        h->set_size_bytes(r.handle.data().size());
        h->set_checksum(r.handle.info().checksum);
      } else {
        h->set_miss_code(static_cast<int>(r.status.code()));
      }
      if (!stream->Write(common::ProtoToBuffer(msg))) return cancelled;
      if (!r.status.ok()) {
        if (request.stop_at_first_miss()) return absl::OkStatus();
        continue;
      }
      // The pin becomes shared: every chunk's slice holds it until gRPC has written the chunk (or
      // dropped it when the stream fails), which can be after this handler has returned.
      const std::span<const std::byte> data = r.handle.data();
      const auto pin = std::make_shared<const BlockHandle>(std::move(r.handle));
      for (uint64_t off = 0; off < data.size(); off += chunk_bytes) {
        const uint64_t n = std::min<uint64_t>(chunk_bytes, data.size() - off);
        if (!stream->Write(common::BytesFieldMessage(strata::v1::GetResponse::kChunkFieldNumber,
                                                     data.subspan(off, n), pin))) {
          return cancelled;
        }
      }
    }
    if (request.stop_at_first_miss() && reads.size() < end - begin) return absl::OkStatus();
    begin = end;
  }
  return absl::OkStatus();
}

grpc::Status CacheNodeService::Lookup(grpc::ServerContext*, const strata::v1::LookupRequest* req,
                                      strata::v1::LookupResponse* resp) {
  RpcTimer timer(this, "Lookup");
  auto chain = ParseChain(req->namespace_id(), req->chain_hashes());
  if (!chain.ok()) return timer.Done(ToGrpcStatus(chain.status()));
  const LookupResult r = store_->Lookup(req->namespace_id(), *chain);
  resp->set_matched_blocks(r.matched_blocks);
  resp->set_hbm_blocks(r.blocks_per_tier[static_cast<int>(TierKind::kHbm)]);
  resp->set_dram_blocks(r.blocks_per_tier[static_cast<int>(TierKind::kDram)]);
  resp->set_ssd_blocks(r.blocks_per_tier[static_cast<int>(TierKind::kSsd)]);
  for (TierKind t : r.tiers) resp->add_tiers(ToProtoTier(t));
  return timer.Done(grpc::Status::OK);
}

grpc::Status CacheNodeService::Delete(grpc::ServerContext*, const strata::v1::DeleteRequest* req,
                                      strata::v1::DeleteResponse* resp) {
  RpcTimer timer(this, "Delete");
  auto chain = ParseChain(req->namespace_id(), req->chain_hashes());
  if (!chain.ok()) return timer.Done(ToGrpcStatus(chain.status()));
  resp->set_deleted_blocks(store_->Delete(req->namespace_id(), *chain));
  return timer.Done(grpc::Status::OK);
}

grpc::Status CacheNodeService::Stats(grpc::ServerContext*, const strata::v1::StatsRequest*,
                                     strata::v1::StatsResponse* resp) {
  RpcTimer timer(this, "Stats");
  const StoreStats s = store_->Stats();
  for (const StoreStats::PerTier& t : s.tiers) {
    strata::v1::TierStats* out = resp->add_tiers();
    out->set_tier(ToProtoTier(t.kind));
    out->set_name(t.name);
    out->set_emulated(t.emulated);
    out->set_capacity_bytes(t.usage.capacity_bytes);
    out->set_used_bytes(t.usage.used_bytes);
    out->set_blocks(t.usage.blocks);
    out->set_hits(t.counters.hits);
    out->set_evictions(t.counters.evictions);
    out->set_checksum_failures(t.counters.checksum_failures);
    out->set_bytes_written(t.counters.bytes_written);
    out->set_bytes_read(t.counters.bytes_read);
  }
  resp->set_misses(s.misses);
  resp->set_blocks(s.blocks);
  resp->set_max_block_bytes(s.max_block_bytes);
  resp->set_demotions(s.demotions);
  resp->set_promotions(s.promotions);
  resp->set_write_behind_pending(s.write_behind_pending);
  resp->set_persisted_blocks(s.persisted_blocks);
  for (const auto& [name, id] : namespaces_->List()) {
    strata::v1::NamespaceInfo* ns = resp->add_namespaces();
    ns->set_name(name);
    ns->set_namespace_id(id);
  }
  return timer.Done(grpc::Status::OK);
}

grpc::Status CacheNodeService::RegisterNamespace(grpc::ServerContext*,
                                                 const strata::v1::RegisterNamespaceRequest* req,
                                                 strata::v1::RegisterNamespaceResponse* resp) {
  RpcTimer timer(this, "RegisterNamespace");
  auto r = namespaces_->Register(req->name());
  if (!r.ok()) return timer.Done(ToGrpcStatus(r.status()));
  resp->set_namespace_id(r->first);
  resp->set_created(r->second);
  return timer.Done(grpc::Status::OK);
}

grpc::Status CacheNodeService::ListNamespaces(grpc::ServerContext*,
                                              const strata::v1::ListNamespacesRequest*,
                                              strata::v1::ListNamespacesResponse* resp) {
  RpcTimer timer(this, "ListNamespaces");
  for (const auto& [name, id] : namespaces_->List()) {
    strata::v1::NamespaceInfo* ns = resp->add_namespaces();
    ns->set_name(name);
    ns->set_namespace_id(id);
  }
  return timer.Done(grpc::Status::OK);
}

grpc::Status CacheNodeService::ReportEngineLoad(grpc::ServerContext*,
                                                const strata::v1::ReportEngineLoadRequest* req,
                                                strata::v1::ReportEngineLoadResponse* resp) {
  RpcTimer timer(this, "ReportEngineLoad");
  LoadFigures load;
  load.queued_requests = req->queued_requests();
  load.running_requests = req->running_requests();
  load.prefill_tokens_in_flight = req->prefill_tokens_in_flight();
  load.free_hbm_blocks = req->free_hbm_blocks();
  if (absl::Status s = engines_->Report(req->engine_id(), load); !s.ok()) {
    return timer.Done(ToGrpcStatus(s));
  }
  resp->set_ttl_ms(static_cast<uint32_t>(std::min<int64_t>(
      absl::ToInt64Milliseconds(engines_->options().ttl), std::numeric_limits<uint32_t>::max())));
  return timer.Done(grpc::Status::OK);
}

grpc::Status CacheNodeService::Sync(grpc::ServerContext* context, const strata::v1::SyncRequest*,
                                    strata::v1::SyncResponse* resp) {
  RpcTimer timer(this, "Sync");
  auto* ssd = dynamic_cast<SsdTier*>(store_->tier(TierKind::kSsd));
  if (ssd == nullptr) {
    return timer.Done(ToGrpcStatus(absl::FailedPreconditionError(
        "this node has no SSD tier: blocks live in memory only and cannot be made durable")));
  }
  // Why not TieredStore::Drain: it loops until write-behind is empty, which may never happen
  // while other clients keep putting, and it can flush while the background write-behind loop
  // still holds some of our blocks in a batch it is writing (they are then in no memtable yet),
  // so its flush would not cover them. Instead: list the blocks that have no SSD copy now (every
  // block committed before the call either has one or is listed), write batches until each
  // listed block has an SSD copy or is gone (deleted), whoever wrote it, and only then flush. A
  // block's SSD bit is set only after its write returned, so the flush covers every one of them.
  // The listing is one pass over the index per batch: Sync is a checkpoint, not a per-put call.
  absl::flat_hash_set<BlockKey> waiting = ScanSsdCoverage(*store_).missing;
  const uint64_t listed = waiting.size();
  uint64_t on_ssd = 0;
  uint64_t persisted = 0;  // listed blocks seen with an SSD copy (the others were deleted)
  absl::Time last_progress = clock_->Now();
  absl::Duration backoff = absl::Milliseconds(1);
  for (;;) {
    if (context->IsCancelled()) {
      return timer.Done(ToGrpcStatus(absl::CancelledError(absl::StrCat(
          "sync cancelled or past its deadline with ", waiting.size(), " blocks not yet on SSD"))));
    }
    const size_t written = waiting.empty() ? 0 : store_->FlushWriteBehind();
    const size_t before = waiting.size();
    SsdCoverage now = ScanSsdCoverage(*store_, &waiting);
    waiting = std::move(now.missing);
    on_ssd = now.on_ssd;
    persisted += now.among_on_ssd;
    if (waiting.empty()) break;
    if (waiting.size() < before) {
      last_progress = clock_->Now();
    } else if (clock_->Now() - last_progress > options_.sync_stall_timeout) {
      return timer.Done(ToGrpcStatus(absl::ResourceExhaustedError(absl::StrCat(
          waiting.size(), " of ", listed,
          " blocks committed before the sync could not be written to the SSD tier in ",
          absl::FormatDuration(options_.sync_stall_timeout),
          " (disk full or failing, or larger than its capacity); nothing was flushed"))));
    }
    if (written == 0) {
      // What we wait for is in a batch the background loop is writing, or the disk refuses it.
      // Nothing signals the end of that batch, so poll with a short, growing pause.
      absl::SleepFor(backoff);
      backoff = std::min(backoff * 2, absl::Milliseconds(20));
    } else {
      backoff = absl::Milliseconds(1);
    }
  }
  if (absl::Status s = ssd->Flush(); !s.ok()) return timer.Done(ToGrpcStatus(s));
  resp->set_persisted_blocks(persisted);
  resp->set_durable_blocks(on_ssd);
  return timer.Done(grpc::Status::OK);
}

common::MethodRoles NodeMethodRoles() {
  using common::Role;
  const auto route = static_cast<common::RoleSet>(Role::kRoute);
  const auto node = static_cast<common::RoleSet>(Role::kNode);
  return {
      {"/strata.v1.CacheNode/Put", route | node},
      {"/strata.v1.CacheNode/Get", route | node},
      {"/strata.v1.CacheNode/Lookup", route | node},
      {"/strata.v1.CacheNode/Stats", route | node},
      {"/strata.v1.CacheNode/ListNamespaces", route | node},
      {"/strata.v1.CacheNode/ReportEngineLoad", route | node},
      {"/strata.v1.CacheNode/Sync", route | node},
      {"/strata.v1.CacheNode/Delete", node},
      {"/strata.v1.CacheNode/RegisterNamespace", node},
  };
}

absl::StatusOr<NodeServer> StartNodeServer(const std::string& listen, CacheNodeService* service,
                                           std::shared_ptr<grpc::ServerCredentials> credentials) {
  return common::StartGrpcServer(listen, {service}, kMaxMessageBytes, std::move(credentials));
}

}  // namespace strata::cachenode
