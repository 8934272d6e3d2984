#include "clients/cache_node_client.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/support/sync_stream.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <algorithm>
#include <climits>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/checksum.h"
#include "common/grpc_byte_buffer.h"
#include "common/grpc_status.h"
#include "common/namespace_id.h"
#include "common/status_macros.h"

namespace strata::clients {
namespace {

namespace v1 = ::strata::v1;

// The node clamps chunks to 4 MiB (cachenode.proto); asking for more only wastes the request.
constexpr size_t kMaxChunkBytes = 4 << 20;
// Room for a chunk's protobuf framing (tag, length, oneof) inside one message.
constexpr size_t kChunkFramingBytes = 1 << 10;
// A header claiming more than this is not trusted for a reservation; the bytes are still accepted
// (and counted against the claimed size) as they arrive.
constexpr uint64_t kMaxReserveBytes = 1ull << 30;

template <typename Request>
void AddHashes(std::span<const common::ChainHash> chain, Request& request) {
  request.mutable_chain_hashes()->Reserve(static_cast<int>(chain.size()));
  for (const common::ChainHash& hash : chain) request.add_chain_hashes(std::string(hash.view()));
}

// Tracks the block whose payload is arriving on a Get stream and checks it against its header.
class BlockVerifier {
 public:
  explicit BlockVerifier(size_t chain_size) : chain_size_(chain_size) {}

  absl::Status OnHeader(const v1::GetBlockHeader& header) {
    STRATA_RETURN_IF_ERROR(FinishBlock());
    if (header.index() >= chain_size_ || (seen_any_ && header.index() <= last_index_)) {
      return absl::InternalError(absl::StrFormat(
          "node sent block index %d out of order (previous %d, chain of %d)", header.index(),
          seen_any_ ? static_cast<int64_t>(last_index_) : -1, chain_size_));
    }
    seen_any_ = true;
    last_index_ = header.index();
    in_block_ = header.found();
    expected_bytes_ = header.size_bytes();
    expected_checksum_ = header.checksum();
    received_bytes_ = 0;
    checksum_.Reset();
    return absl::OkStatus();
  }

  // Accounts for a chunk of `size` bytes before any of it reaches the caller.
  absl::Status Admit(uint64_t size) {
    if (!in_block_) {
      return absl::InternalError("node sent payload bytes without the header of a found block");
    }
    received_bytes_ += size;
    if (received_bytes_ > expected_bytes_) {
      return absl::DataLossError(
          absl::StrFormat("block %d: received more than the %d bytes its header announced",
                          last_index_, expected_bytes_));
    }
    return absl::OkStatus();
  }

  // Adds admitted bytes to the block's checksum.
  void Hash(std::string_view piece) {
    checksum_.Update(std::as_bytes(std::span(piece.data(), piece.size())));
  }

  // Verifies the block in progress, if any. Called before the next header and at the stream's end.
  absl::Status FinishBlock() {
    if (!in_block_) return absl::OkStatus();
    in_block_ = false;
    if (received_bytes_ != expected_bytes_) {
      return absl::DataLossError(absl::StrFormat("block %d: received %d of %d bytes", last_index_,
                                                 received_bytes_, expected_bytes_));
    }
    const uint64_t actual = checksum_.Digest();
    if (actual != expected_checksum_) {
      return absl::DataLossError(absl::StrFormat(
          "block %d: checksum %016x of the received bytes does not match the node's %016x",
          last_index_, actual, expected_checksum_));
    }
    return absl::OkStatus();
  }

  uint32_t current_index() const { return last_index_; }

 private:
  const size_t chain_size_;
  bool seen_any_ = false;
  uint32_t last_index_ = 0;
  bool in_block_ = false;
  uint64_t expected_bytes_ = 0;
  uint64_t expected_checksum_ = 0;
  uint64_t received_bytes_ = 0;
  common::StreamingChecksum checksum_;
};

// Payload is handed to the caller and hashed in pieces of this size, so that the caller's copy and
// the hash read the bytes while they sit in L2 (1-2 MiB per core here; 64 KiB leaves room for the
// destination too). The slices gRPC receives are mostly smaller: HTTP/2 frames and socket reads.
constexpr size_t kPieceBytes = 64 << 10;

// Hands an admitted chunk to the caller piece by piece, hashing each piece right after the caller
// has read it.
void DeliverPieces(std::string_view chunk, BlockVerifier& verifier,
                   const std::function<void(uint32_t, std::string_view)>& on_chunk) {
  for (size_t offset = 0; offset < chunk.size(); offset += kPieceBytes) {
    const std::string_view piece = chunk.substr(offset, kPieceBytes);
    if (on_chunk) on_chunk(verifier.current_index(), piece);
    verifier.Hash(piece);
  }
}

std::string_view ViewOf(const grpc::Slice& slice) {
  return std::string_view(reinterpret_cast<const char*>(slice.begin()), slice.size());
}

}  // namespace

absl::Status ClientOptions::Validate() const {
  if (target.empty()) return absl::InvalidArgumentError("client target is empty");
  STRATA_RETURN_IF_ERROR((RetryBudget{deadline, max_attempts}.Validate("client")));
  if (chunk_bytes == 0 || chunk_bytes > kMaxChunkBytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "client chunk_bytes must be in [1, %d], got %d", kMaxChunkBytes, chunk_bytes));
  }
  if (max_message_bytes < chunk_bytes + kChunkFramingBytes ||
      max_message_bytes > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("client max_message_bytes must be in [chunk_bytes + %d, %d], got %d",
                        kChunkFramingBytes, INT_MAX, max_message_bytes));
  }
  return security.Validate();
}

absl::StatusOr<std::unique_ptr<CacheNodeClient>> CacheNodeClient::Connect(
    const ClientOptions& options) {
  STRATA_RETURN_IF_ERROR(options.Validate());
  // HTTP/2 and TCP settings stay gRPC's defaults (BDP probing on, 16 KiB frames, adaptive read
  // sizes). Measured with `strata-bench tiers --block-bytes 2MiB --paths grpc`, on both ends:
  // max_frame_size 16 MiB, 1 MiB TCP read chunks, both together, or BDP probing off with an 8 MiB
  // window gave 0.51-0.90 GB/s against 0.51-0.72 GB/s for the defaults in the same session, with
  // no consistent order between runs (GB/s per core 0.51-0.72 against 0.55-0.61), so none is set.
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  args.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
  STRATA_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> credentials,
                          common::MakeChannelCredentials(options.security));
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(options.target, std::move(credentials), args);
  return std::unique_ptr<CacheNodeClient>(new CacheNodeClient(options, std::move(channel)));
}

CacheNodeClient::CacheNodeClient(ClientOptions options, std::shared_ptr<grpc::Channel> channel)
    : options_(std::move(options)),
      channel_(std::move(channel)),
      stub_(v1::CacheNode::NewStub(channel_)),
      put_method_("/strata.v1.CacheNode/Put", grpc::internal::RpcMethod::CLIENT_STREAMING,
                  channel_),
      get_method_("/strata.v1.CacheNode/Get", grpc::internal::RpcMethod::SERVER_STREAMING,
                  channel_) {}

CacheNodeClient::~CacheNodeClient() = default;

absl::StatusOr<std::vector<PutResult>> CacheNodeClient::Put(common::NamespaceId ns,
                                                            std::span<const PutBlock> blocks) {
  if (blocks.empty()) return std::vector<PutResult>();
  // Checksums are computed once, not per attempt.
  std::vector<uint64_t> checksums;
  checksums.reserve(blocks.size());
  for (const PutBlock& block : blocks) checksums.push_back(common::Checksum(block.payload));

  v1::PutResponse response;
  // Payload slices reference the caller's blocks; this returns only once gRPC let go of them all.
  common::LentMemory lent;
  const absl::Status status = WithRetries(budget(), [&](absl::Time deadline, bool*) {
    grpc::ClientContext context;
    SetDeadline(context, deadline);
    response.Clear();
    std::unique_ptr<grpc::ClientWriter<grpc::ByteBuffer>> writer(
        grpc::internal::ClientWriterFactory<grpc::ByteBuffer>::Create(channel_.get(), put_method_,
                                                                       &context, &response));
    v1::PutRequest header_message;
    bool stream_ok = true;
    for (size_t i = 0; i < blocks.size() && stream_ok; ++i) {
      const PutBlock& block = blocks[i];
      v1::PutBlockHeader* header = header_message.mutable_header();
      header->mutable_key()->set_namespace_id(ns);
      header->mutable_key()->set_chain_hash(std::string(block.hash.view()));
      header->set_size_bytes(block.payload.size());
      header->set_checksum(checksums[i]);
      header->set_chain_position(block.chain_position);
      header->set_from_gpu(block.from_gpu);
      stream_ok = writer->Write(common::ProtoToBuffer(header_message));
      for (size_t offset = 0; offset < block.payload.size() && stream_ok;
           offset += options_.chunk_bytes) {
        const size_t n = std::min(options_.chunk_bytes, block.payload.size() - offset);
        stream_ok = writer->Write(common::BytesFieldMessage(
            v1::PutRequest::kChunkFieldNumber, block.payload.subspan(offset, n), lent.owner()));
      }
    }
    // A failed Write means the stream is broken; Finish reports why.
    if (stream_ok) writer->WritesDone();
    return common::FromGrpcStatus(writer->Finish());
  });
  lent.WaitUntilReturned();
  STRATA_RETURN_IF_ERROR(status);

  if (static_cast<size_t>(response.results_size()) != blocks.size()) {
    return absl::InternalError(absl::StrFormat("node returned %d put results for %d blocks",
                                               response.results_size(), blocks.size()));
  }
  std::vector<PutResult> results;
  results.reserve(blocks.size());
  for (size_t i = 0; i < blocks.size(); ++i) {
    const v1::PutBlockResult& r = response.results(static_cast<int>(i));
    if (r.chain_hash() != blocks[i].hash.view()) {
      return absl::InternalError(absl::StrFormat("put result %d names hash %s, not the block's %s",
                                                 i, absl::BytesToHexString(r.chain_hash()),
                                                 blocks[i].hash.Hex()));
    }
    results.push_back(PutResult{common::StatusFromCode(r.code(), r.message()), r.tier()});
  }
  return results;
}

absl::Status CacheNodeClient::GetOnce(
    absl::Time deadline, const v1::GetRequest& request,
    const std::function<void(const v1::GetBlockHeader&)>& on_header,
    const std::function<void(uint32_t, std::string_view)>& on_chunk, bool* delivered) {
  grpc::ClientContext context;
  SetDeadline(context, deadline);
  std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> reader(
      grpc::internal::ClientReaderFactory<grpc::ByteBuffer>::Create(channel_.get(), get_method_,
                                                                     &context, request));
  BlockVerifier verifier(static_cast<size_t>(request.chain_hashes_size()));
  grpc::ByteBuffer buffer;
  v1::GetResponse response;  // headers, and chunks some other encoder laid out differently
  absl::Status verdict;
  while (verdict.ok() && reader->Read(&buffer)) {
    // The chunk path: slices go to the caller as they came off the socket.
    if (std::optional<common::BytesField> chunk = common::SplitBytesField(buffer);
        chunk.has_value() && chunk->field_number == v1::GetResponse::kChunkFieldNumber) {
      verdict = verifier.Admit(chunk->size);
      if (!verdict.ok()) break;
      *delivered = true;
      for (const grpc::Slice& slice : chunk->payload) {
        DeliverPieces(ViewOf(slice), verifier, on_chunk);
      }
      continue;
    }
    verdict = common::ProtoFromBuffer(buffer, &response);
    if (!verdict.ok()) {
      verdict = absl::InternalError(absl::StrCat("node sent a bad GetResponse: ",
                                                 verdict.message()));
    } else if (response.has_header()) {
      verdict = verifier.OnHeader(response.header());
      if (verdict.ok()) {
        *delivered = true;
        if (on_header) on_header(response.header());
      }
    } else if (response.has_chunk()) {
      verdict = verifier.Admit(response.chunk().size());
      if (verdict.ok()) {
        *delivered = true;
        DeliverPieces(response.chunk(), verifier, on_chunk);
      }
    } else {
      verdict = absl::InternalError("node sent an empty GetResponse");
    }
  }
  if (!verdict.ok()) {
    // Stop the node from sending the rest; drain what is in flight so Finish may be called.
    context.TryCancel();
    while (reader->Read(&buffer)) {
    }
    reader->Finish();  // CANCELLED by us; `verdict` says why
    return verdict;
  }
  STRATA_RETURN_IF_ERROR(common::FromGrpcStatus(reader->Finish()));
  return verifier.FinishBlock();
}

absl::Status CacheNodeClient::GetInto(
    common::NamespaceId ns, std::span<const common::ChainHash> chain, bool stop_at_first_miss,
    const std::function<void(const v1::GetBlockHeader&)>& on_header,
    const std::function<void(uint32_t index, std::string_view chunk)>& on_chunk) {
  v1::GetRequest request;
  request.set_namespace_id(ns);
  AddHashes(chain, request);
  request.set_stop_at_first_miss(stop_at_first_miss);
  request.set_max_chunk_bytes(static_cast<uint32_t>(options_.chunk_bytes));
  return WithRetries(budget(), [&](absl::Time deadline, bool* retryable) {
    bool delivered = false;
    absl::Status status = GetOnce(deadline, request, on_header, on_chunk, &delivered);
    // Once the caller has seen data, a retry would deliver it twice.
    *retryable = !delivered;
    return status;
  });
}

absl::StatusOr<std::vector<GetResult>> CacheNodeClient::Get(
    common::NamespaceId ns, std::span<const common::ChainHash> chain, bool stop_at_first_miss) {
  v1::GetRequest request;
  request.set_namespace_id(ns);
  AddHashes(chain, request);
  request.set_stop_at_first_miss(stop_at_first_miss);
  request.set_max_chunk_bytes(static_cast<uint32_t>(options_.chunk_bytes));
  std::vector<GetResult> results;
  const auto on_header = [&results](const v1::GetBlockHeader& header) {
    GetResult& result = results.emplace_back();
    result.index = header.index();
    result.found = header.found();
    result.tier = header.tier();
    if (header.found()) {
      result.payload.reserve(std::min(header.size_bytes(), kMaxReserveBytes));
    } else {
      // A miss without a code is still a miss: NotFound is the ordinary one.
      const int code = header.miss_code() == 0 ? static_cast<int>(absl::StatusCode::kNotFound)
                                               : header.miss_code();
      result.miss =
          common::StatusFromCode(code, code == static_cast<int>(absl::StatusCode::kDataLoss)
                                           ? "the node's copy failed its checksum"
                                           : "block not found");
    }
  };
  const auto on_chunk = [&results](uint32_t, std::string_view chunk) {
    results.back().payload.append(chunk);
  };
  STRATA_RETURN_IF_ERROR(WithRetries(budget(), [&](absl::Time deadline, bool*) {
    results.clear();  // a retry starts over; nothing has left this function yet
    bool delivered = false;
    return GetOnce(deadline, request, on_header, on_chunk, &delivered);
  }));
  return results;
}

absl::StatusOr<v1::LookupResponse> CacheNodeClient::Lookup(
    common::NamespaceId ns, std::span<const common::ChainHash> chain) {
  v1::LookupRequest request;
  request.set_namespace_id(ns);
  AddHashes(chain, request);
  v1::LookupResponse response;
  STRATA_RETURN_IF_ERROR(
      CallUnary(budget(), *stub_, &v1::CacheNode::StubInterface::Lookup, request, &response));
  return response;
}

absl::StatusOr<uint32_t> CacheNodeClient::Delete(common::NamespaceId ns,
                                                 std::span<const common::ChainHash> chain) {
  v1::DeleteRequest request;
  request.set_namespace_id(ns);
  AddHashes(chain, request);
  v1::DeleteResponse response;
  STRATA_RETURN_IF_ERROR(
      CallUnary(budget(), *stub_, &v1::CacheNode::StubInterface::Delete, request, &response));
  return response.deleted_blocks();
}

absl::StatusOr<v1::StatsResponse> CacheNodeClient::Stats() {
  v1::StatsResponse response;
  STRATA_RETURN_IF_ERROR(CallUnary(budget(), *stub_, &v1::CacheNode::StubInterface::Stats,
                                   v1::StatsRequest(), &response));
  return response;
}

absl::StatusOr<v1::SyncResponse> CacheNodeClient::Sync() {
  v1::SyncResponse response;
  // One attempt only: UNAVAILABLE may mean the node died, and a Sync answered by the restarted
  // node would say nothing about the puts its previous run acknowledged (they may be lost).
  STRATA_RETURN_IF_ERROR(CallUnary(RetryBudget{options_.deadline, 1}, *stub_,
                                   &v1::CacheNode::StubInterface::Sync, v1::SyncRequest(),
                                   &response));
  return response;
}

absl::StatusOr<v1::RegisterNamespaceResponse> CacheNodeClient::RegisterNamespace(
    std::string_view name) {
  STRATA_RETURN_IF_ERROR(common::ValidateNamespaceName(name));
  v1::RegisterNamespaceRequest request;
  request.set_name(std::string(name));
  v1::RegisterNamespaceResponse response;
  STRATA_RETURN_IF_ERROR(CallUnary(
      budget(), *stub_, &v1::CacheNode::StubInterface::RegisterNamespace, request, &response));
  return response;
}

absl::StatusOr<v1::ListNamespacesResponse> CacheNodeClient::ListNamespaces() {
  v1::ListNamespacesResponse response;
  STRATA_RETURN_IF_ERROR(CallUnary(budget(), *stub_, &v1::CacheNode::StubInterface::ListNamespaces,
                                   v1::ListNamespacesRequest(), &response));
  return response;
}

absl::StatusOr<absl::Duration> CacheNodeClient::ReportEngineLoad(const EngineLoadReport& report) {
  if (report.engine_id.empty()) return absl::InvalidArgumentError("engine id is empty");
  v1::ReportEngineLoadRequest request;
  request.set_engine_id(report.engine_id);
  request.set_queued_requests(report.queued_requests);
  request.set_running_requests(report.running_requests);
  request.set_prefill_tokens_in_flight(report.prefill_tokens_in_flight);
  request.set_free_hbm_blocks(report.free_hbm_blocks);
  v1::ReportEngineLoadResponse response;
  STRATA_RETURN_IF_ERROR(CallUnary(
      budget(), *stub_, &v1::CacheNode::StubInterface::ReportEngineLoad, request, &response));
  return absl::Milliseconds(response.ttl_ms());
}

}  // namespace strata::clients
