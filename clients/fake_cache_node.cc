#include "clients/fake_cache_node.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/checksum.h"
#include "common/namespace_id.h"

namespace strata::clients {
namespace {

namespace v1 = ::strata::v1;

grpc::Status Code(grpc::StatusCode code, const std::string& message) {
  return grpc::Status(code, message);
}

}  // namespace

FakeCacheNode::FakeCacheNode() {
  AddNamespace("default");
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize((4 << 20) + (64 << 10));
  builder.SetMaxSendMessageSize((4 << 20) + (64 << 10));
  builder.RegisterService(this);
  server_ = builder.BuildAndStart();
  address_ = absl::StrCat("127.0.0.1:", port);
}

FakeCacheNode::~FakeCacheNode() { server_->Shutdown(); }

void FakeCacheNode::AddNamespace(const std::string& name) {
  absl::MutexLock lock(&mu_);
  namespaces_[common::NamespaceIdOf(name)] = name;
}

void FakeCacheNode::SetMaxBlockBytes(uint64_t bytes) {
  absl::MutexLock lock(&mu_);
  max_block_bytes_ = bytes;
}

void FakeCacheNode::CorruptPayloads(bool corrupt) {
  absl::MutexLock lock(&mu_);
  corrupt_ = corrupt;
}

void FakeCacheNode::TruncatePayloads(bool truncate) {
  absl::MutexLock lock(&mu_);
  truncate_ = truncate;
}

void FakeCacheNode::FailNextCalls(int times, grpc::Status status) {
  failures_.FailNextCalls(times, std::move(status));
}

int FakeCacheNode::calls() const { return failures_.calls(); }

int FakeCacheNode::put_chunk_messages() const {
  absl::MutexLock lock(&mu_);
  return put_chunk_messages_;
}

int FakeCacheNode::max_get_chunk_seen() const {
  absl::MutexLock lock(&mu_);
  return max_get_chunk_seen_;
}

bool FakeCacheNode::Contains(uint64_t ns, const std::string& hash) const {
  absl::MutexLock lock(&mu_);
  return blocks_.contains({ns, hash});
}

grpc::Status FakeCacheNode::CheckNamespace(uint64_t ns) const {
  if (ns == 0) return Code(grpc::INVALID_ARGUMENT, "namespace id 0");
  if (!namespaces_.contains(ns)) return Code(grpc::FAILED_PRECONDITION, "unknown namespace");
  return grpc::Status::OK;
}

grpc::Status FakeCacheNode::Put(grpc::ServerContext*, grpc::ServerReader<v1::PutRequest>* reader,
                                v1::PutResponse* response) {
  if (grpc::Status s = Enter(); !s.ok()) return s;
  std::optional<v1::PutBlockHeader> header;
  std::string payload;
  // Commits (or refuses) the block whose header came last, once all its bytes arrived.
  auto finish = [&]() -> grpc::Status {
    if (!header.has_value()) return grpc::Status::OK;
    if (payload.size() != header->size_bytes()) {
      return Code(grpc::INVALID_ARGUMENT, "stream ended inside a block");
    }
    v1::PutBlockResult* result = response->add_results();
    result->set_chain_hash(header->key().chain_hash());
    absl::MutexLock lock(&mu_);
    grpc::Status status = CheckNamespace(header->key().namespace_id());
    if (status.ok() && header->size_bytes() > max_block_bytes_) {
      status = Code(grpc::RESOURCE_EXHAUSTED, "block too large");
    }
    if (status.ok() && common::Checksum(payload) != header->checksum()) {
      status = Code(grpc::DATA_LOSS, "checksum mismatch");
    }
    result->set_code(status.error_code());
    result->set_message(status.error_message());
    if (status.ok()) {
      result->set_tier(header->from_gpu() ? v1::TIER_HBM : v1::TIER_DRAM);
      blocks_[{header->key().namespace_id(), header->key().chain_hash()}] = payload;
    }
    header.reset();
    payload.clear();
    return grpc::Status::OK;
  };
  v1::PutRequest request;
  while (reader->Read(&request)) {
    if (request.has_header()) {
      if (grpc::Status s = finish(); !s.ok()) return s;
      header = request.header();
    } else {
      {
        absl::MutexLock lock(&mu_);
        ++put_chunk_messages_;
      }
      if (!header.has_value()) return Code(grpc::INVALID_ARGUMENT, "chunk before header");
      payload += request.chunk();
    }
  }
  return finish();
}

grpc::Status FakeCacheNode::Get(grpc::ServerContext*, const v1::GetRequest* request,
                                grpc::ServerWriter<v1::GetResponse>* writer) {
  if (grpc::Status s = Enter(); !s.ok()) return s;
  const size_t chunk = std::clamp<size_t>(
      request->max_chunk_bytes() == 0 ? (1 << 20) : request->max_chunk_bytes(), 64 << 10, 4 << 20);
  bool corrupt = false;
  bool truncate = false;
  {
    absl::MutexLock lock(&mu_);
    if (grpc::Status s = CheckNamespace(request->namespace_id()); !s.ok()) return s;
    corrupt = corrupt_;
    truncate = truncate_;
    max_get_chunk_seen_ = std::max<int>(max_get_chunk_seen_, request->max_chunk_bytes());
  }
  for (int i = 0; i < request->chain_hashes_size(); ++i) {
    std::optional<std::string> payload;
    {
      absl::MutexLock lock(&mu_);
      auto it = blocks_.find({request->namespace_id(), request->chain_hashes(i)});
      if (it != blocks_.end()) payload = it->second;
    }
    v1::GetResponse response;
    v1::GetBlockHeader* header = response.mutable_header();
    header->set_index(i);
    header->set_found(payload.has_value());
    if (!payload.has_value()) {
      header->set_miss_code(grpc::NOT_FOUND);
      writer->Write(response);
      if (request->stop_at_first_miss()) break;
      continue;
    }
    header->set_tier(v1::TIER_DRAM);
    header->set_size_bytes(payload->size());
    header->set_checksum(common::Checksum(*payload));
    writer->Write(response);
    if (corrupt && !payload->empty()) (*payload)[0] ^= 0x01;
    if (truncate && !payload->empty()) payload->pop_back();
    for (size_t offset = 0; offset < payload->size(); offset += chunk) {
      response.set_chunk(payload->substr(offset, chunk));
      writer->Write(response);
    }
  }
  return grpc::Status::OK;
}

grpc::Status FakeCacheNode::Lookup(grpc::ServerContext*, const v1::LookupRequest* request,
                                   v1::LookupResponse* response) {
  if (grpc::Status s = Enter(); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  if (grpc::Status s = CheckNamespace(request->namespace_id()); !s.ok()) return s;
  for (const std::string& hash : request->chain_hashes()) {
    if (!blocks_.contains({request->namespace_id(), hash})) break;
    response->set_matched_blocks(response->matched_blocks() + 1);
    response->set_dram_blocks(response->dram_blocks() + 1);
    response->add_tiers(v1::TIER_DRAM);
  }
  return grpc::Status::OK;
}

grpc::Status FakeCacheNode::Delete(grpc::ServerContext*, const v1::DeleteRequest* request,
                                   v1::DeleteResponse* response) {
  if (grpc::Status s = Enter(); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  if (grpc::Status s = CheckNamespace(request->namespace_id()); !s.ok()) return s;
  for (const std::string& hash : request->chain_hashes()) {
    response->set_deleted_blocks(
        response->deleted_blocks() +
        static_cast<uint32_t>(blocks_.erase({request->namespace_id(), hash})));
  }
  return grpc::Status::OK;
}

grpc::Status FakeCacheNode::Stats(grpc::ServerContext*, const v1::StatsRequest*,
                                  v1::StatsResponse* response) {
  if (grpc::Status s = Enter(); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  v1::TierStats* dram = response->add_tiers();
  dram->set_tier(v1::TIER_DRAM);
  dram->set_name("dram");
  dram->set_capacity_bytes(64 << 20);
  uint64_t used = 0;
  for (const auto& [key, payload] : blocks_) used += payload.size();
  dram->set_used_bytes(used);
  dram->set_blocks(blocks_.size());
  response->set_blocks(blocks_.size());
  response->set_max_block_bytes(max_block_bytes_);
  for (const auto& [id, name] : namespaces_) {
    v1::NamespaceInfo* info = response->add_namespaces();
    info->set_name(name);
    info->set_namespace_id(id);
  }
  return grpc::Status::OK;
}

grpc::Status FakeCacheNode::RegisterNamespace(grpc::ServerContext*,
                                              const v1::RegisterNamespaceRequest* request,
                                              v1::RegisterNamespaceResponse* response) {
  if (grpc::Status s = Enter(); !s.ok()) return s;
  if (!common::ValidateNamespaceName(request->name()).ok()) {
    return Code(grpc::INVALID_ARGUMENT, "bad name");
  }
  const uint64_t id = common::NamespaceIdOf(request->name());
  absl::MutexLock lock(&mu_);
  response->set_namespace_id(id);
  response->set_created(namespaces_.emplace(id, request->name()).second);
  return grpc::Status::OK;
}

grpc::Status FakeCacheNode::ListNamespaces(grpc::ServerContext*, const v1::ListNamespacesRequest*,
                                           v1::ListNamespacesResponse* response) {
  if (grpc::Status s = Enter(); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  for (const auto& [id, name] : namespaces_) {
    v1::NamespaceInfo* info = response->add_namespaces();
    info->set_name(name);
    info->set_namespace_id(id);
  }
  return grpc::Status::OK;
}

v1::ReportEngineLoadRequest FakeCacheNode::last_engine_load() const {
  absl::MutexLock lock(&mu_);
  return last_engine_load_;
}

grpc::Status FakeCacheNode::ReportEngineLoad(grpc::ServerContext*,
                                             const v1::ReportEngineLoadRequest* request,
                                             v1::ReportEngineLoadResponse* response) {
  if (grpc::Status s = Enter(); !s.ok()) return s;
  if (request->engine_id().empty()) return Code(grpc::INVALID_ARGUMENT, "engine_id is empty");
  absl::MutexLock lock(&mu_);
  last_engine_load_ = *request;
  response->set_ttl_ms(3000);
  return grpc::Status::OK;
}

}  // namespace strata::clients
