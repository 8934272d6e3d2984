#include "cachenode/resp_server.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

namespace strata::cachenode {
namespace {

// Bytes one connection may read per wake-up before the loop serves others (fairness between
// clients of one IO thread; a 2 MiB SET fits in one turn).
constexpr size_t kReadBudgetPerWake = 8u << 20;
// After a protocol error or QUIT the write side is shut and input is discarded until EOF, so the
// peer reads its reply instead of a connection reset; this bounds how much is discarded.
constexpr uint64_t kLingerDiscardBytes = 4u << 20;
constexpr int kMaxIov = 64;
constexpr int kMaxEvents = 128;

std::string ErrnoText(int err) { return std::strerror(err); }

// Parses "HOST:PORT" and returns a bound, listening, non-blocking socket.
absl::StatusOr<int> Listen(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("RESP listen address '", listen, "' is not HOST:PORT"));
  }
  std::string host = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* result = nullptr;
  const int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &result);
  if (rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("RESP listen address '", listen, "': ", gai_strerror(rc)));
  }
  std::string last_error = "no address";
  for (addrinfo* ai = result; ai != nullptr; ai = ai->ai_next) {
    const int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      last_error = ErrnoText(errno);
      continue;
    }
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, SOMAXCONN) == 0) {
      freeaddrinfo(result);
      return fd;
    }
    last_error = ErrnoText(errno);
    close(fd);
  }
  freeaddrinfo(result);
  return absl::UnavailableError(absl::StrCat("RESP listen on ", listen, ": ", last_error));
}

int BoundPort(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
}

}  // namespace

absl::Status RespServerOptions::Validate() const {
  if (listen.empty()) return absl::InvalidArgumentError("RESP listen address is empty");
  if (namespace_name.empty()) return absl::InvalidArgumentError("RESP namespace is empty");
  if (io_threads == 0 || io_threads > 64) {
    return absl::InvalidArgumentError("RESP io_threads must be 1-64");
  }
  if (max_clients == 0) return absl::InvalidArgumentError("RESP max_clients must be positive");
  if (max_pending_reply_bytes == 0) {
    return absl::InvalidArgumentError("RESP max_pending_reply_bytes must be positive");
  }
  RespParserOptions p;
  p.max_bulk_bytes = max_bulk_bytes == 0 ? 1 : max_bulk_bytes;
  p.max_discard_bytes = max_discard_bytes;
  p.max_args = max_args;
  p.max_inline_bytes = max_inline_bytes;
  if (absl::Status s = p.Validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("RESP ", s.message()));
  }
  return absl::OkStatus();
}

// A SET's value is read from the socket straight into a slot reserved in the DRAM tier (when the
// node has a host-addressable one and it can make room), so the node copies it no more than Redis
// does; without a slot the value lands in a pool buffer and the store copies it in.
class StoreSlots final : public SlotSource {
 public:
  explicit StoreSlots(TieredStore* store) : store_(store) {}
  absl::StatusOr<ReservedSlot> Reserve(uint64_t size) override {
    return store_->ReserveDram(size);
  }

 private:
  TieredStore* const store_;
};

struct RespServer::Shared {
  Shared(const RespServerOptions& o, const RespParserOptions& p, const RespCommandsOptions& c,
         TieredStore* store)
      : options(o), parser(p), slots(store), commands(c, store, &counters) {}

  const RespServerOptions options;
  const RespParserOptions parser;
  StoreSlots slots;
  RespCounters counters;
  RespCommands commands;
  int listen_fd = -1;
  std::atomic<uint64_t> next_loop{0};
  std::vector<IoLoop*> loops;
};

// One IO thread: an epoll over its connections (and, for loop 0, the listening socket), plus an
// eventfd that hands it new connections and stop requests. Everything but Adopt and Stop runs on
// the loop's own thread.
class RespServer::IoLoop {
 public:
  IoLoop(Shared* shared, size_t index)
      : shared_(shared), index_(index), pool_(shared->options.buffer_cache_bytes) {}
  ~IoLoop() { Stop(); }

  absl::Status Init() {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epoll_fd_ < 0 || wake_fd_ < 0) {
      return absl::InternalError(absl::StrCat("epoll/eventfd: ", ErrnoText(errno)));
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = wake_fd_;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
    if (index_ == 0) {
      ev.data.fd = shared_->listen_fd;
      epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, shared_->listen_fd, &ev);
    }
    return absl::OkStatus();
  }

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }

  // Joins the thread and closes every connection, including ones handed over but not yet adopted.
  void Stop() {
    if (thread_.joinable()) {
      stopping_.store(true);
      Wake();
      thread_.join();
    }
    for (auto& [fd, conn] : conns_) CloseFd(fd);
    conns_.clear();
    absl::MutexLock lock(&inbox_mu_);
    for (int fd : inbox_) CloseFd(fd);
    inbox_.clear();
    if (epoll_fd_ >= 0) close(epoll_fd_);
    if (wake_fd_ >= 0) close(wake_fd_);
    epoll_fd_ = wake_fd_ = -1;
  }

  // From the accepting thread: this loop takes over `fd`.
  void Adopt(int fd) {
    {
      absl::MutexLock lock(&inbox_mu_);
      inbox_.push_back(fd);
    }
    Wake();
  }

 private:
  struct Connection {
    Connection(int f, const RespParserOptions& o, BulkBufferPool* pool, SlotSource* slots)
        : fd(f), parser(o, pool, slots) {}
    int fd;
    RespParser parser;
    RespRequest request;
    RespReplyQueue out;
    RespSession session;
    uint32_t events = EPOLLIN;  // what epoll watches now
    bool closing = false;       // protocol error or QUIT: run nothing more, close once flushed
    bool peer_closed = false;   // EOF read: answer what was read, then close
    bool lingering = false;     // write side shut; discarding input until EOF
    uint64_t discarded = 0;
  };

  void Wake() {
    const uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }

  void CloseFd(int fd) {
    close(fd);
    shared_->counters.connections_open.fetch_sub(1, std::memory_order_relaxed);
  }

  void Run() {
    epoll_event events[kMaxEvents];
    while (!stopping_.load(std::memory_order_relaxed)) {
      const int n = epoll_wait(epoll_fd_, events, kMaxEvents, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        return;  // the epoll fd is gone: nothing sensible left to do
      }
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == wake_fd_) {
          uint64_t count;
          (void)!read(wake_fd_, &count, sizeof(count));
          TakeInbox();
        } else if (fd == shared_->listen_fd) {
          Accept();
        } else {
          auto it = conns_.find(fd);
          if (it != conns_.end()) OnEvent(*it->second, events[i].events);
        }
      }
    }
  }

  void TakeInbox() {
    std::vector<int> fds;
    {
      absl::MutexLock lock(&inbox_mu_);
      fds.swap(inbox_);
    }
    for (int fd : fds) Add(fd);
  }

  void Add(int fd) {
    auto conn = std::make_unique<Connection>(fd, shared_->parser, &pool_, &shared_->slots);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      CloseFd(fd);
      return;
    }
    conns_.emplace(fd, std::move(conn));
  }

  // Loop 0 only: accepts every pending connection and deals them out round-robin.
  void Accept() {
    while (true) {
      const int fd = accept4(shared_->listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;  // EAGAIN, or out of descriptors (retried on the next readiness)
      }
      RespCounters& c = shared_->counters;
      if (c.connections_open.load(std::memory_order_relaxed) >= shared_->options.max_clients) {
        c.connections_rejected.fetch_add(1, std::memory_order_relaxed);  // before the reply
        static constexpr char kFull[] = "-ERR max number of clients reached\r\n";
        (void)!send(fd, kFull, sizeof(kFull) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        close(fd);
        continue;
      }
      const int one = 1;
      // Replies are written whole with writev; Nagle would only delay the last partial segment.
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      c.connections_accepted.fetch_add(1, std::memory_order_relaxed);
      c.connections_open.fetch_add(1, std::memory_order_relaxed);
      const size_t target = shared_->next_loop.fetch_add(1) % shared_->loops.size();
      if (target == index_) {
        Add(fd);
      } else {
        shared_->loops[target]->Adopt(fd);
      }
    }
  }

  void Close(Connection& c) {
    const int fd = c.fd;
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    CloseFd(fd);
    conns_.erase(fd);  // destroys `c`
  }

  void OnEvent(Connection& c, uint32_t events) {
    if (c.lingering) return Linger(c);
    if ((events & EPOLLERR) != 0) return Close(c);
    if ((events & (EPOLLIN | EPOLLHUP)) != 0 && (c.events & EPOLLIN) != 0) {
      if (!ReadAndRun(c)) return;
    } else if (!Drive(c)) {
      return;
    }
    UpdateInterest(c);
  }

  // Reads what the socket has (within the budget) and runs the complete requests. False when the
  // connection was closed.
  bool ReadAndRun(Connection& c) {
    const uint64_t bound = shared_->options.max_pending_reply_bytes;
    size_t budget = kReadBudgetPerWake;
    while (!c.closing && !c.peer_closed && c.out.pending_bytes() <= bound && budget > 0) {
      std::array<std::span<char>, 2> spans;
      const size_t count = c.parser.ReadSpans(spans);
      iovec iov[2];
      size_t wanted = 0;
      for (size_t i = 0; i < count; ++i) {
        iov[i] = {spans[i].data(), spans[i].size()};
        wanted += spans[i].size();
      }
      if (wanted == 0) {
        // Cannot happen with the parser's bounds (a full header area is a protocol error first).
        c.closing = true;
        c.out.Error("ERR Protocol error: request buffer full");
        break;
      }
      const ssize_t n = readv(c.fd, iov, static_cast<int>(count));
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        Close(c);
        return false;
      }
      if (n == 0) {
        c.peer_closed = true;
        break;
      }
      c.parser.Advance(static_cast<size_t>(n));
      shared_->counters.bytes_in.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
      budget -= std::min(budget, static_cast<size_t>(n));
      RunRequests(c);
      // A short read means the socket is drained: skip the EAGAIN round trip.
      if (static_cast<size_t>(n) < wanted) break;
    }
    return Drive(c);
  }

  // Runs buffered complete requests while unsent replies stay under the bound. True when it
  // stopped only because of that bound (more may be buffered).
  bool RunRequests(Connection& c) {
    const uint64_t bound = shared_->options.max_pending_reply_bytes;
    while (!c.closing) {
      if (c.out.pending_bytes() > bound) return true;
      switch (c.parser.Next(c.request)) {
        case RespParser::Result::kNeedMore:
          return false;
        case RespParser::Result::kError:
          shared_->counters.protocol_errors.fetch_add(1, std::memory_order_relaxed);
          c.out.Error(absl::StrCat("ERR Protocol error: ", c.parser.error()));
          c.closing = true;
          return false;
        case RespParser::Result::kRequest:
          shared_->commands.Execute(c.request, c.session, c.out);
          if (c.session.quit) c.closing = true;
          break;
      }
    }
    return false;
  }

  // Writes what it can, runs requests held back by the bound as replies drain, and finishes
  // closing connections. False when the connection was closed.
  bool Drive(Connection& c) {
    while (true) {
      const bool held_back = RunRequests(c);
      if (!Flush(c)) return false;
      if (!held_back || c.out.pending_bytes() > shared_->options.max_pending_reply_bytes) break;
    }
    if (c.out.empty() && c.closing) {
      // Shut the write side, then drain input until EOF: closing with unread input would send a
      // reset that can destroy the error reply before the peer reads it.
      shutdown(c.fd, SHUT_WR);
      c.lingering = true;
      Linger(c);
      return false;  // Linger owns it now (and may have closed it)
    }
    if (c.out.empty() && c.peer_closed) {
      Close(c);
      return false;
    }
    return true;
  }

  // Writes replies until done or the socket is full. False when the connection was closed.
  bool Flush(Connection& c) {
    while (!c.out.empty()) {
      iovec iov[kMaxIov];
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = c.out.Gather(iov, kMaxIov);
      // sendmsg rather than writev: MSG_NOSIGNAL turns a vanished peer into EPIPE, not SIGPIPE.
      const ssize_t n = sendmsg(c.fd, &msg, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
        Close(c);
        return false;
      }
      c.out.Consume(static_cast<size_t>(n));
      shared_->counters.bytes_out.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
    }
    return true;
  }

  void Linger(Connection& c) {
    char sink[16 << 10];
    while (true) {
      const ssize_t n = read(c.fd, sink, sizeof(sink));
      if (n > 0) {
        c.discarded += static_cast<uint64_t>(n);
        if (c.discarded > kLingerDiscardBytes) return Close(c);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      return Close(c);  // EOF or error
    }
    SetEvents(c, EPOLLIN);
  }

  void UpdateInterest(Connection& c) {
    uint32_t want = 0;
    if (!c.closing && !c.peer_closed &&
        c.out.pending_bytes() <= shared_->options.max_pending_reply_bytes) {
      want |= EPOLLIN;  // otherwise back-pressure: not read until replies drain
    }
    if (!c.out.empty()) want |= EPOLLOUT;
    SetEvents(c, want);
  }

  void SetEvents(Connection& c, uint32_t want) {
    if (want == c.events) return;
    epoll_event ev{};
    ev.events = want;
    ev.data.fd = c.fd;
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
    c.events = want;
  }

  Shared* const shared_;
  const size_t index_;
  BulkBufferPool pool_;  // large bulk buffers of this thread's connections
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  absl::flat_hash_map<int, std::unique_ptr<Connection>> conns_;
  absl::Mutex inbox_mu_;
  std::vector<int> inbox_ ABSL_GUARDED_BY(inbox_mu_);
};

absl::StatusOr<std::unique_ptr<RespServer>> RespServer::Start(const RespServerOptions& options,
                                                              TieredStore* store,
                                                              common::NamespaceId namespace_id) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  RespParserOptions parser;
  parser.max_bulk_bytes =
      options.max_bulk_bytes > 0 ? options.max_bulk_bytes : store->LargestBlockBytes();
  parser.max_discard_bytes = std::max(options.max_discard_bytes, parser.max_bulk_bytes);
  parser.max_args = options.max_args;
  parser.max_inline_bytes = options.max_inline_bytes;
  RespCommandsOptions commands;
  commands.namespace_name = options.namespace_name;
  commands.namespace_id = namespace_id;
  commands.max_bulk_bytes = parser.max_bulk_bytes;
  commands.io_threads = options.io_threads;
  commands.max_clients = options.max_clients;

  std::unique_ptr<RespServer> server(new RespServer());
  server->shared_ = std::make_unique<Shared>(options, parser, commands, store);
  absl::StatusOr<int> fd = Listen(options.listen);
  if (!fd.ok()) return fd.status();
  server->shared_->listen_fd = *fd;
  server->port_ = BoundPort(*fd);
  server->shared_->commands.set_port(server->port_);
  for (uint32_t i = 0; i < options.io_threads; ++i) {
    server->loops_.push_back(std::make_unique<IoLoop>(server->shared_.get(), i));
    server->shared_->loops.push_back(server->loops_.back().get());
    if (absl::Status s = server->loops_.back()->Init(); !s.ok()) return s;
  }
  for (auto& loop : server->loops_) loop->Start();
  return server;
}

RespServer::~RespServer() { Stop(); }

void RespServer::Stop() {
  absl::MutexLock lock(&stop_mu_);
  if (stopped_) return;
  stopped_ = true;
  // Loop 0 (the acceptor) stops first: no connection is handed to a loop that already stopped.
  for (auto& loop : loops_) loop->Stop();
  if (shared_ != nullptr && shared_->listen_fd >= 0) {
    close(shared_->listen_fd);
    shared_->listen_fd = -1;
  }
}

RespServerStats RespServer::Stats() const { return shared_->counters.Snapshot(); }

}  // namespace strata::cachenode
