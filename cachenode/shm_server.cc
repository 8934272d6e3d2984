#include "cachenode/shm_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <random>

#include "absl/strings/str_cat.h"
#include "cachenode/cache_node_service.h"
#include "common/fd_message.h"
#include "common/status_macros.h"

namespace strata::cachenode {
namespace {

namespace v1 = ::strata::v1;

std::string ErrnoText(int err) { return std::strerror(err); }

int64_t UnixMillis(absl::Time t) { return absl::ToUnixMillis(t); }

}  // namespace

struct ShmServer::Lease {
  struct Block {
    uint32_t index = 0;  // in the Get's response
    BlockKey key;
    TierKind tier = TierKind::kDram;
    uint64_t checksum = 0;
    BlockHandle handle;  // the DRAM pin, or
    ReservedSlot slot;   // the temporary slot a non-DRAM copy was copied into
  };
  uint64_t id = 0;
  uint64_t client_id = 0;
  uint64_t bytes = 0;
  absl::Time expiry;
  std::vector<Block> blocks;
};

struct ShmServer::Reservation {
  uint64_t id = 0;
  uint64_t client_id = 0;
  uint64_t bytes = 0;
  absl::Time expiry;
  std::vector<BlockInfo> infos;  // checksum filled in on Commit
  std::vector<ReservedSlot> slots;
};

struct ShmServer::Client {
  int fd = -1;
  uint64_t bytes = 0;   // pinned + reserved
  uint32_t holds = 0;   // leases + reservations
};

absl::Status ShmServerOptions::Validate() const {
  if (socket_path.empty()) return absl::InvalidArgumentError("local socket path is empty");
  if (socket_path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("local socket path is ", socket_path.size(),
                                                   " bytes; at most ",
                                                   sizeof(sockaddr_un{}.sun_path) - 1));
  }
  if (lease_ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("lease_ttl must be > 0");
  }
  if (max_clients == 0) return absl::InvalidArgumentError("max_clients must be > 0");
  if (max_leases_per_client == 0) {
    return absl::InvalidArgumentError("max_leases_per_client must be > 0");
  }
  if (max_client_bytes == 0) return absl::InvalidArgumentError("max_client_bytes must be > 0");
  if (max_blocks_per_request == 0 || max_blocks_per_request > 1024) {
    return absl::InvalidArgumentError("max_blocks_per_request must be 1-1024");
  }
  return kv_handover.Validate();
}

ShmServer::ShmServer(const ShmServerOptions& options, TieredStore* store,
                     const NamespaceRegistry* namespaces, common::Clock* clock)
    : options_(options),
      store_(store),
      dram_(store->dram_memory()),
      namespaces_(namespaces),
      clock_(clock),
      segment_id_(std::random_device{}() * (uint64_t{1} << 32) ^ std::random_device{}()),
      generation_(static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()))),
      handover_(std::make_unique<KvHandover>(options.kv_handover, store, namespaces)) {}

absl::StatusOr<std::unique_ptr<ShmServer>> ShmServer::Start(const ShmServerOptions& options,
                                                            TieredStore* store,
                                                            const NamespaceRegistry* namespaces,
                                                            common::Clock* clock) {
  STRATA_RETURN_IF_ERROR(options.Validate());
  MemoryTier* dram = store->dram_memory();
  if (dram == nullptr || dram->shared_fd() < 0) {
    return absl::FailedPreconditionError(
        "the local socket needs a DRAM tier backed by a memfd (engines map its arena): "
        "configure DRAM bytes > 0");
  }
  std::unique_ptr<ShmServer> server(new ShmServer(options, store, namespaces, clock));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, options.socket_path.data(), options.socket_path.size());
  // A socket file nobody answers on is left over from a crash: replace it. A live one is not ours.
  if (int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0); probe >= 0) {
    const bool live = connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    close(probe);
    if (live) {
      return absl::FailedPreconditionError(
          absl::StrCat("local socket ", options.socket_path, " is in use by a running server"));
    }
  }
  unlink(options.socket_path.c_str());
  const int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("socket: ", ErrnoText(errno)));
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(fd, static_cast<int>(options.max_clients)) != 0) {
    const int err = errno;
    close(fd);
    return absl::UnavailableError(
        absl::StrCat("local socket ", options.socket_path, ": ", ErrnoText(err)));
  }
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    const int err = errno;
    close(fd);
    unlink(options.socket_path.c_str());
    return absl::UnavailableError(absl::StrCat("pipe: ", ErrnoText(err)));
  }
  server->listen_fd_ = fd;
  server->wake_read_ = pipe_fds[0];
  server->wake_write_ = pipe_fds[1];
  server->accept_thread_ = std::thread([s = server.get()] { s->AcceptLoop(); });
  return server;
}

ShmServer::~ShmServer() { Stop(); }

void ShmServer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      mu_.Await(absl::Condition(&stopped_));
      return;
    }
    stopping_ = true;
  }
  const char byte = 1;
  (void)!write(wake_write_, &byte, 1);  // never read: every poll() sees it from now on
  if (accept_thread_.joinable()) accept_thread_.join();
  absl::flat_hash_map<uint64_t, std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    threads.swap(threads_);  // no thread is added once stopping_
  }
  for (auto& [id, t] : threads) t.join();
  std::vector<std::unique_ptr<Lease>> leases;
  std::vector<std::unique_ptr<Reservation>> reservations;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, lease] : leases_) leases.push_back(std::move(lease));
    for (auto& [id, r] : reservations_) reservations.push_back(std::move(r));
    leases_.clear();
    reservations_.clear();
    clients_.clear();
  }
  leases.clear();  // unpins, outside the lock
  reservations.clear();
  close(listen_fd_);
  close(wake_read_);
  close(wake_write_);
  unlink(options_.socket_path.c_str());
  absl::MutexLock lock(&mu_);
  stopped_ = true;
}

void ShmServer::AcceptLoop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_read_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      std::cerr << "strata-cachenode: local socket poll: " << ErrnoText(errno) << "\n";
      return;
    }
    if (fds[1].revents != 0) return;
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;  // the peer gave up already, or a transient error
    std::vector<std::thread> finished;
    bool refused = false;
    {
      absl::MutexLock lock(&mu_);
      for (uint64_t id : finished_threads_) {
        auto it = threads_.find(id);
        if (it == threads_.end()) continue;
        finished.push_back(std::move(it->second));
        threads_.erase(it);
      }
      finished_threads_.clear();
      refused = clients_.size() >= options_.max_clients;
      if (!refused) {
        const uint64_t id = next_id_++;
        auto client = std::make_unique<Client>();
        client->fd = fd;
        clients_[id] = std::move(client);
        threads_[id] = std::thread([this, id, fd] { Serve(id, fd); });
      }
    }
    if (refused) {
      v1::LocalResponse refusal;
      refusal.set_code(static_cast<int>(absl::StatusCode::kResourceExhausted));
      refusal.set_message(absl::StrCat("the node serves at most ", options_.max_clients,
                                       " local clients at once"));
      common::SendFdMessage(fd, refusal.SerializeAsString()).IgnoreError();  // closing anyway
      // Read the hello if it is here already (never wait for it: this is the accept loop). A
      // message left unread turns the close into a reset, which the client sees before the reason
      // unless it reads past the reset (LocalClient does; see common::ReceiveLastFdMessage).
      char discard[256];
      for (int i = 0; i < 4 && recv(fd, discard, sizeof(discard), MSG_DONTWAIT) > 0; ++i) {
      }
      close(fd);
    }
    for (std::thread& t : finished) t.join();  // they have returned already: joins at once
  }
}

void ShmServer::Serve(uint64_t client_id, int fd) {
  for (;;) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {wake_read_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents != 0) break;
    // Unavailable: the client closed its socket (exit, crash, kill -9) or the socket failed.
    int received_fd = -1;
    absl::StatusOr<std::string> raw =
        common::ReceiveFdMessage(fd, kMaxLocalMessageBytes, &received_fd);
    if (!raw.ok() && !absl::IsResourceExhausted(raw.status())) {
      if (received_fd >= 0) close(received_fd);
      break;
    }
    v1::LocalRequest request;
    v1::LocalResponse response;
    int send_fd = -1;
    if (!raw.ok() || !request.ParseFromString(*raw)) {
      if (received_fd >= 0) close(received_fd);
      response.set_code(static_cast<int>(absl::StatusCode::kInvalidArgument));
      response.set_message(!raw.ok() ? absl::StrCat("request ", raw.status().message())
                                     : "request is not a strata.v1.LocalRequest");
    } else {
      Handle(client_id, request, received_fd, response, &send_fd);
    }
    if (!common::SendFdMessage(fd, response.SerializeAsString(), send_fd).ok()) break;
  }
  // Everything the client held goes now, whatever the reason it left.
  std::vector<std::unique_ptr<Lease>> leases;
  std::vector<std::unique_ptr<Reservation>> reservations;
  {
    absl::MutexLock lock(&mu_);
    TakeAllLocked(client_id, leases, reservations);
    counters_.disconnect_released += leases.size() + reservations.size();
  }
  leases.clear();  // unpins, outside the lock
  reservations.clear();
  handover_->DropOwner(client_id);
  close(fd);
  // Only now does the client stop counting: whoever waits for it to go (Stats) sees its memory
  // back in the arena.
  absl::MutexLock lock(&mu_);
  clients_.erase(client_id);
  finished_threads_.push_back(client_id);
}

void ShmServer::TakeAllLocked(uint64_t client_id, std::vector<std::unique_ptr<Lease>>& leases,
                              std::vector<std::unique_ptr<Reservation>>& reservations) {
  for (auto it = leases_.begin(); it != leases_.end();) {
    if (it->second->client_id == client_id) {
      leases.push_back(std::move(it->second));
      leases_.erase(it++);
    } else {
      ++it;
    }
  }
  for (auto it = reservations_.begin(); it != reservations_.end();) {
    if (it->second->client_id == client_id) {
      reservations.push_back(std::move(it->second));
      reservations_.erase(it++);
    } else {
      ++it;
    }
  }
}

void ShmServer::Handle(uint64_t client_id, const v1::LocalRequest& request, int received_fd,
                       v1::LocalResponse& response, int* send_fd) {
  absl::Status status;
  if (received_fd >= 0 && request.kind_case() != v1::LocalRequest::kRegisterKv) {
    close(received_fd);  // only RegisterKv takes a descriptor
    received_fd = -1;
  }
  switch (request.kind_case()) {
    case v1::LocalRequest::kRegisterKv: {
      auto r = handover_->Register(client_id, request.register_kv(), received_fd);
      status = r.status();
      if (r.ok()) *response.mutable_register_kv() = std::move(*r);
      break;
    }
    case v1::LocalRequest::kOffload: {
      auto r = handover_->Offload(client_id, request.offload());
      status = r.status();
      if (r.ok()) *response.mutable_offload() = std::move(*r);
      break;
    }
    case v1::LocalRequest::kOnload: {
      auto r = handover_->Onload(client_id, request.onload());
      status = r.status();
      if (r.ok()) *response.mutable_onload() = std::move(*r);
      break;
    }
    case v1::LocalRequest::kUnregisterKv:
      status = handover_->Unregister(client_id, request.unregister_kv().registration_id());
      if (status.ok()) response.mutable_unregister_kv();
      break;
    case v1::LocalRequest::kHello: {
      v1::LocalHelloResponse* hello = response.mutable_hello();
      hello->set_protocol_version(1);
      hello->set_arena_bytes(dram_->region_bytes());
      hello->set_segment_id(segment_id_);
      hello->set_generation(generation_);
      hello->set_max_blocks_per_request(options_.max_blocks_per_request);
      hello->set_max_client_bytes(options_.max_client_bytes);
      hello->set_max_leases(options_.max_leases_per_client);
      hello->set_lease_ttl_ms(static_cast<uint64_t>(absl::ToInt64Milliseconds(options_.lease_ttl)));
      hello->set_max_block_bytes(store_->LargestBlockBytes());
      *send_fd = dram_->shared_fd();
      break;
    }
    case v1::LocalRequest::kGet:
      status = DoGet(client_id, request, response);
      break;
    case v1::LocalRequest::kRelease:
      status = DoRelease(client_id, request, response);
      break;
    case v1::LocalRequest::kReserve:
      status = DoReserve(client_id, request, response);
      break;
    case v1::LocalRequest::kCommit:
      status = DoCommit(client_id, request, response);
      break;
    case v1::LocalRequest::kAbort: {
      std::unique_ptr<Reservation> aborted;  // frees the slots when it goes, outside the lock
      absl::MutexLock lock(&mu_);
      auto it = reservations_.find(request.abort().reservation_id());
      if (it == reservations_.end() || it->second->client_id != client_id) {
        status = absl::NotFoundError("no such reservation (committed, aborted or expired)");
        break;
      }
      aborted = std::move(it->second);
      reservations_.erase(it);
      UnchargeLocked(client_id, aborted->bytes);
      response.mutable_abort();
      break;
    }
    case v1::LocalRequest::kLookup: {
      auto chain = ParseChain(request.lookup().namespace_id(), request.lookup().chain_hashes());
      if (!chain.ok()) {
        status = chain.status();
        break;
      }
      const LookupResult r = store_->Lookup(request.lookup().namespace_id(), *chain);
      v1::LookupResponse* out = response.mutable_lookup();
      out->set_matched_blocks(r.matched_blocks);
      out->set_hbm_blocks(r.blocks_per_tier[static_cast<int>(TierKind::kHbm)]);
      out->set_dram_blocks(r.blocks_per_tier[static_cast<int>(TierKind::kDram)]);
      out->set_ssd_blocks(r.blocks_per_tier[static_cast<int>(TierKind::kSsd)]);
      for (TierKind t : r.tiers) out->add_tiers(ToProtoTier(t));
      break;
    }
    case v1::LocalRequest::kStats:
      status = DoStats(request, response);
      break;
    case v1::LocalRequest::KIND_NOT_SET:
      status = absl::InvalidArgumentError("empty request");
      break;
  }
  if (!status.ok()) {
    response.Clear();
    *send_fd = -1;
    response.set_code(static_cast<int>(status.code()));
    response.set_message(std::string(status.message()));
  }
}

absl::StatusOr<std::vector<common::ChainHash>> ShmServer::ParseChain(
    common::NamespaceId ns, const google::protobuf::RepeatedPtrField<std::string>& hashes) const {
  return ParseRequestChain(namespaces_, ns, hashes, options_.max_blocks_per_request);
}

absl::Status ShmServer::ChargeLocked(Client& client, uint64_t bytes) {
  if (client.holds + 1 > options_.max_leases_per_client) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "client holds ", client.holds, " leases and reservations; the limit is ",
        options_.max_leases_per_client, " (release some)"));
  }
  if (client.bytes + bytes > options_.max_client_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "client would hold ", client.bytes + bytes, " pinned/reserved bytes; the limit is ",
        options_.max_client_bytes, " (release leases or ask for fewer blocks)"));
  }
  client.holds += 1;
  client.bytes += bytes;
  return absl::OkStatus();
}

void ShmServer::UnchargeLocked(uint64_t client_id, uint64_t bytes) {
  auto it = clients_.find(client_id);
  if (it == clients_.end()) return;
  it->second->holds -= 1;
  it->second->bytes -= bytes;
}

absl::Status ShmServer::DoGet(uint64_t client_id, const v1::LocalRequest& request,
                              v1::LocalResponse& response) {
  const v1::LocalGetRequest& get = request.get();
  STRATA_ASSIGN_OR_RETURN(std::vector<common::ChainHash> chain,
                          ParseChain(get.namespace_id(), get.chain_hashes()));
  // Charge what the chain weighs now; the lease is charged what it really pins below.
  uint64_t estimate = 0;
  for (uint64_t size : store_->PayloadSizes(get.namespace_id(), chain)) {
    if (size == 0 && get.stop_at_first_miss()) break;
    estimate += size;
  }
  {
    absl::MutexLock lock(&mu_);
    auto it = clients_.find(client_id);
    if (it == clients_.end()) return absl::UnavailableError("client is gone");
    STRATA_RETURN_IF_ERROR(ChargeLocked(*it->second, estimate));
  }
  ReadOptions read_options;
  read_options.verify_dram = options_.verify_dram_reads;
  read_options.prefer_dram = true;
  std::vector<BlockRead> reads =
      store_->GetChain(get.namespace_id(), chain, get.stop_at_first_miss(), read_options);

  auto lease = std::make_unique<Lease>();
  const std::byte* base = dram_->host_base();
  const uint64_t arena = dram_->region_bytes();
  v1::LocalGetResponse* out = response.mutable_get();
  for (uint32_t i = 0; i < reads.size(); ++i) {
    BlockRead& r = reads[i];
    v1::LocalBlockLocation* loc = out->add_blocks();
    if (!r.status.ok()) {
      loc->set_miss_code(static_cast<int>(r.status.code()));
      continue;
    }
    Lease::Block block;
    block.index = i;
    block.key = r.handle.info().key;
    block.tier = r.tier;
    block.checksum = r.handle.info().checksum;
    const std::span<const std::byte> data = r.handle.data();
    uint64_t offset;
    if (data.data() >= base && data.data() + data.size() <= base + arena) {
      offset = static_cast<uint64_t>(data.data() - base);  // a DRAM copy: pinned in place
      block.handle = std::move(r.handle);
    } else {
      // SSD or HBM: the store verified these bytes; copy them where the client can see them.
      absl::StatusOr<ReservedSlot> slot = store_->ReserveDram(data.size());
      if (!slot.ok()) {
        loc->set_miss_code(static_cast<int>(slot.status().code()));
        if (get.stop_at_first_miss()) break;
        continue;
      }
      std::memcpy(slot->data().data(), data.data(), data.size());
      offset = slot->offset();
      block.slot = std::move(*slot);
    }
    loc->set_found(true);
    loc->set_tier(ToProtoTier(r.tier));
    loc->set_offset(offset);
    loc->set_length(data.size());
    loc->set_checksum(block.checksum);
    lease->bytes += data.size();
    lease->blocks.push_back(std::move(block));
  }
  absl::MutexLock lock(&mu_);
  auto it = clients_.find(client_id);
  if (it == clients_.end()) return absl::UnavailableError("client is gone");
  it->second->bytes = it->second->bytes - estimate + lease->bytes;
  if (lease->blocks.empty()) {
    it->second->holds -= 1;
    return absl::OkStatus();  // nothing pinned: no lease
  }
  lease->id = next_id_++;
  lease->client_id = client_id;
  lease->expiry = clock_->Now() + options_.lease_ttl;
  out->set_lease_id(lease->id);
  out->set_lease_expiry_unix_ms(UnixMillis(lease->expiry));
  leases_[lease->id] = std::move(lease);
  return absl::OkStatus();
}

absl::Status ShmServer::DoRelease(uint64_t client_id, const v1::LocalRequest& request,
                                  v1::LocalResponse& response) {
  std::unique_ptr<Lease> lease;
  {
    absl::MutexLock lock(&mu_);
    auto it = leases_.find(request.release().lease_id());
    if (it == leases_.end() || it->second->client_id != client_id) {
      return absl::NotFoundError("no such lease (released or expired)");
    }
    lease = std::move(it->second);
    leases_.erase(it);
    UnchargeLocked(client_id, lease->bytes);
    ++counters_.released_leases;
  }
  uint32_t dropped = 0;
  for (uint32_t index : request.release().corrupt_indices()) {
    for (const Lease::Block& b : lease->blocks) {
      if (b.index != index) continue;
      // The copy the client read: the DRAM copy itself, or (from a temporary slot) the store's
      // copy in b.tier, which the store re-checks before dropping anything.
      if (store_->ReportCorruptCopy(b.key, b.tier, b.checksum)) ++dropped;
    }
  }
  response.mutable_release()->set_dropped_copies(dropped);
  if (dropped > 0) {
    absl::MutexLock lock(&mu_);
    counters_.checksum_reports += dropped;
  }
  return absl::OkStatus();  // `lease` unpins here, outside the lock
}

absl::Status ShmServer::DoReserve(uint64_t client_id, const v1::LocalRequest& request,
                                  v1::LocalResponse& response) {
  const v1::LocalReserveRequest& reserve = request.reserve();
  if (namespaces_ != nullptr) {
    STRATA_RETURN_IF_ERROR(namespaces_->Check(reserve.namespace_id()));
  } else if (reserve.namespace_id() == 0) {
    return absl::InvalidArgumentError("no namespace id given");
  }
  if (reserve.blocks().empty()) return absl::InvalidArgumentError("no blocks to reserve");
  if (static_cast<uint32_t>(reserve.blocks_size()) > options_.max_blocks_per_request) {
    return absl::InvalidArgumentError(absl::StrCat("request names ", reserve.blocks_size(),
                                                   " blocks; the limit is ",
                                                   options_.max_blocks_per_request));
  }
  auto r = std::make_unique<Reservation>();
  for (int i = 0; i < reserve.blocks_size(); ++i) {
    const v1::LocalReserveBlock& b = reserve.blocks(i);
    auto hash = common::ChainHash::FromBytes(b.chain_hash());
    if (!hash.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("blocks[", i, "]: ", hash.status().message()));
    }
    if (b.size_bytes() == 0) return absl::InvalidArgumentError(absl::StrCat("blocks[", i, "]: empty"));
    r->infos.push_back(BlockInfo{BlockKey{reserve.namespace_id(), *hash}, b.size_bytes(), 0,
                                 b.chain_position()});
    r->bytes += b.size_bytes();
  }
  {
    absl::MutexLock lock(&mu_);
    auto it = clients_.find(client_id);
    if (it == clients_.end()) return absl::UnavailableError("client is gone");
    STRATA_RETURN_IF_ERROR(ChargeLocked(*it->second, r->bytes));
  }
  for (const BlockInfo& info : r->infos) {
    absl::StatusOr<ReservedSlot> slot = store_->ReserveDram(info.size);
    if (!slot.ok()) {
      {
        absl::MutexLock lock(&mu_);
        UnchargeLocked(client_id, r->bytes);
      }
      return slot.status();  // `r` frees the slots reserved so far, outside the lock
    }
    response.mutable_reserve()->add_offsets(slot->offset());
    r->slots.push_back(std::move(*slot));
  }
  absl::MutexLock lock(&mu_);
  r->id = next_id_++;
  r->client_id = client_id;
  r->expiry = clock_->Now() + options_.lease_ttl;
  response.mutable_reserve()->set_reservation_id(r->id);
  response.mutable_reserve()->set_expiry_unix_ms(UnixMillis(r->expiry));
  ++counters_.reservations;
  reservations_[r->id] = std::move(r);
  return absl::OkStatus();
}

absl::Status ShmServer::DoCommit(uint64_t client_id, const v1::LocalRequest& request,
                                 v1::LocalResponse& response) {
  const v1::LocalCommitRequest& commit = request.commit();
  std::unique_ptr<Reservation> r;
  {
    absl::MutexLock lock(&mu_);
    auto it = reservations_.find(commit.reservation_id());
    if (it == reservations_.end() || it->second->client_id != client_id) {
      return absl::NotFoundError("no such reservation (committed, aborted or expired)");
    }
    if (static_cast<size_t>(commit.checksums_size()) != it->second->infos.size()) {
      return absl::InvalidArgumentError(absl::StrCat("commit carries ", commit.checksums_size(),
                                                     " checksums for ",
                                                     it->second->infos.size(), " blocks"));
    }
    r = std::move(it->second);
    reservations_.erase(it);
  }
  uint64_t committed = 0;
  for (size_t i = 0; i < r->infos.size(); ++i) {
    BlockInfo info = r->infos[i];
    info.checksum = commit.checksums(static_cast<int>(i));
    absl::StatusOr<TierKind> tier = store_->CommitDram(info, std::move(r->slots[i]));
    v1::LocalCommitResult* out = response.mutable_commit()->add_results();
    if (tier.ok()) {
      out->set_tier(ToProtoTier(*tier));
      ++committed;
    } else {
      out->set_code(static_cast<int>(tier.status().code()));
      out->set_message(std::string(tier.status().message()));
    }
  }
  absl::MutexLock lock(&mu_);
  UnchargeLocked(client_id, r->bytes);
  counters_.committed_blocks += committed;
  return absl::OkStatus();
}

absl::Status ShmServer::DoStats(const v1::LocalRequest& request, v1::LocalResponse& response) {
  const v1::LocalStatsRequest& req = request.stats();
  absl::MutexLock lock(&mu_);
  if (req.wait_until_clients_at_most() > 0) {
    const uint32_t limit = req.wait_until_clients_at_most();
    auto few_enough = [this, limit]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return clients_.size() <= limit || stopping_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&few_enough),
                         absl::Milliseconds(std::min<uint64_t>(req.wait_timeout_ms(), 60'000)));
  }
  const ShmStats s = StatsLocked();
  v1::LocalStatsResponse* out = response.mutable_stats();
  out->set_clients(s.clients);
  out->set_live_leases(s.live_leases);
  out->set_pinned_bytes(s.pinned_bytes);
  out->set_live_reservations(s.live_reservations);
  out->set_reserved_bytes(s.reserved_bytes);
  out->set_expired_leases(s.expired_leases);
  out->set_released_leases(s.released_leases);
  out->set_disconnect_released(s.disconnect_released);
  out->set_expired_reservations(s.expired_reservations);
  out->set_committed_blocks(s.committed_blocks);
  out->set_checksum_reports(s.checksum_reports);
  out->set_kv_registrations(s.kv.total_registrations());
  out->set_offloaded_blocks(s.kv.total_offloaded().blocks);
  out->set_offloaded_bytes(s.kv.total_offloaded().bytes);
  out->set_onloaded_blocks(s.kv.total_onloaded().blocks);
  out->set_onloaded_bytes(s.kv.total_onloaded().bytes);
  return absl::OkStatus();
}

size_t ShmServer::ExpireLeases() {
  std::vector<std::unique_ptr<Lease>> leases;
  std::vector<std::unique_ptr<Reservation>> reservations;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_->Now();
    for (auto it = leases_.begin(); it != leases_.end();) {
      if (it->second->expiry <= now) {
        UnchargeLocked(it->second->client_id, it->second->bytes);
        leases.push_back(std::move(it->second));
        leases_.erase(it++);
      } else {
        ++it;
      }
    }
    for (auto it = reservations_.begin(); it != reservations_.end();) {
      if (it->second->expiry <= now) {
        UnchargeLocked(it->second->client_id, it->second->bytes);
        reservations.push_back(std::move(it->second));
        reservations_.erase(it++);
      } else {
        ++it;
      }
    }
    counters_.expired_leases += leases.size();
    counters_.expired_reservations += reservations.size();
  }
  return leases.size() + reservations.size();  // both unpin on return, outside the lock
}

ShmStats ShmServer::StatsLocked() const {
  ShmStats s = counters_;
  s.clients = static_cast<uint32_t>(clients_.size());
  s.live_leases = leases_.size();
  s.pinned_bytes = 0;
  for (const auto& [id, lease] : leases_) s.pinned_bytes += lease->bytes;
  s.live_reservations = reservations_.size();
  s.reserved_bytes = 0;
  for (const auto& [id, r] : reservations_) s.reserved_bytes += r->bytes;
  s.kv = handover_->Stats();
  return s;
}

ShmStats ShmServer::Stats() const {
  absl::MutexLock lock(&mu_);
  return StatsLocked();
}

}  // namespace strata::cachenode
