#include "tests/node_process.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "cachenode/resp_test_client.h"

namespace strata::tests {
namespace {

// Every Strata server prints "PROGRAM serving on HOST:PORT[ details]" on stdout once it serves.
constexpr std::string_view kServingMarker = " serving on ";

std::string ErrnoText() { return std::strerror(errno); }

int ExitCodeOf(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string TempBase() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir != nullptr && *dir != '\0' ? dir : "/tmp";
}

// Milliseconds left until `deadline`, for poll(); never negative.
int MillisUntil(absl::Time deadline) {
  const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
  return static_cast<int>(std::clamp<int64_t>(ms, 0, 1 << 30));
}

// Forks and execs argv with the given descriptors as its stdin/stdout/stderr. Everything the child
// touches between fork and exec is prepared here, since only async-signal-safe calls are allowed
// there (the test process has gRPC threads).
// `env` ("NAME=VALUE") is added to the test's own environment (replacing a variable of that name).
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, int in_fd, int out_fd, int err_fd,
                            const std::vector<std::string>& env = {}) {
  std::vector<char*> c_argv;
  for (const std::string& arg : argv) c_argv.push_back(const_cast<char*>(arg.c_str()));
  c_argv.push_back(nullptr);
  std::vector<char*> c_env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view var(*e);
    const bool replaced = std::any_of(env.begin(), env.end(), [&](const std::string& x) {
      return var.substr(0, var.find('=') + 1) == std::string_view(x).substr(0, x.find('=') + 1);
    });
    if (!replaced) c_env.push_back(*e);
  }
  for (const std::string& e : env) c_env.push_back(const_cast<char*>(e.c_str()));
  c_env.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", ErrnoText()));
  if (pid == 0) {
    // Die with the test, so a crashed or killed test never leaves a node holding a port.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl = {};
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &dfl, nullptr);
    if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0) _exit(127);
    execve(c_argv[0], c_argv.data(), c_env.data());
    static constexpr char kMsg[] = "exec failed\n";
    (void)!write(2, kMsg, sizeof(kMsg) - 1);
    _exit(127);
  }
  return pid;
}

// Waits for `pid` to exit; after `timeout` it is SIGKILLed and DeadlineExceeded returned. A pidfd
// makes the wait bounded without polling in a sleep loop.
absl::StatusOr<int> WaitForExit(pid_t pid, absl::Duration timeout) {
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  bool timed_out = false;
  if (pidfd >= 0) {
    const absl::Time deadline = absl::Now() + timeout;
    pollfd p{pidfd, POLLIN, 0};
    int r = 0;
    do {
      r = poll(&p, 1, MillisUntil(deadline));
    } while (r < 0 && errno == EINTR);
    close(pidfd);
    if (r == 0) {
      timed_out = true;
      kill(pid, SIGKILL);
    }
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return absl::InternalError(absl::StrCat("waitpid: ", ErrnoText()));
  }
  if (timed_out) {
    return absl::DeadlineExceededError(
        absl::StrCat("process ", pid, " did not exit within ", absl::FormatDuration(timeout)));
  }
  return ExitCodeOf(status);
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string LastLine(const std::string& text) {
  std::vector<std::string> lines = Lines(text);
  return lines.empty() ? "(no stderr output)" : lines.back();
}

}  // namespace

std::string CacheNodeBinary() { return STRATA_CACHENODE_BIN; }
std::string CliBinary() { return STRATA_CLI_BIN; }
std::string RouterBinary() { return STRATA_ROUTER_BIN; }

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

absl::StatusOr<ProcessResult> RunProcess(const std::vector<std::string>& argv,
                                         absl::Duration timeout) {
  int out[2];
  int err[2];
  if (pipe2(out, O_CLOEXEC) != 0) return absl::InternalError(absl::StrCat("pipe: ", ErrnoText()));
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    return absl::InternalError(absl::StrCat("pipe: ", ErrnoText()));
  }
  const int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  absl::StatusOr<pid_t> pid = Spawn(argv, devnull, out[1], err[1]);
  close(devnull);
  close(out[1]);
  close(err[1]);
  if (!pid.ok()) {
    close(out[0]);
    close(err[0]);
    return pid.status();
  }

  ProcessResult result;
  const absl::Time deadline = absl::Now() + timeout;
  bool killed = false;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.stdout_text, &result.stderr_text};
  int open_pipes = 2;
  char buffer[64 << 10];
  while (open_pipes > 0) {
    const int r = poll(fds, 2, killed ? -1 : MillisUntil(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) {
      kill(*pid, SIGKILL);  // the pipes then reach EOF
      killed = true;
      continue;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_pipes;
      }
    }
  }
  absl::StatusOr<int> code = WaitForExit(*pid, absl::Seconds(30));
  if (!code.ok()) return code.status();
  if (killed) {
    return absl::DeadlineExceededError(absl::StrCat(argv[0], " ran past ",
                                                    absl::FormatDuration(timeout),
                                                    "; stderr: ", LastLine(result.stderr_text)));
  }
  result.exit_code = *code;
  return result;
}

int FreePort() {
  // Ports below the ephemeral range (usually 32768-60999), which connect() draws source ports
  // from; 10000 up keeps clear of the well-known and registered services a test machine runs.
  int ephemeral_low = 32768;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> ephemeral_low;
  const int low = 10000, high = std::max(low + 1000, ephemeral_low);
  static std::mt19937 rng(std::random_device{}() ^ static_cast<uint32_t>(getpid()));
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const int port = low + static_cast<int>(rng() % static_cast<uint32_t>(high - low));
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    const bool free = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    close(fd);
    if (free) return port;
  }
  return 0;  // the caller's bind fails with a clear message
}

std::vector<int> ListeningPorts(pid_t pid) {
  std::vector<std::string> inodes;
  const std::string fd_dir = absl::StrCat("/proc/", pid, "/fd");
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(fd_dir, ec)) {
    std::error_code link_ec;
    const std::string t = std::filesystem::read_symlink(entry.path(), link_ec).string();
    if (!link_ec && t.rfind("socket:[", 0) == 0) inodes.push_back(t.substr(8, t.size() - 9));
  }
  std::vector<int> ports;
  for (const char* table : {"tcp", "tcp6"}) {
    std::ifstream in(absl::StrCat("/proc/", pid, "/net/", table));
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
      // sl local_address rem_address st(0A: listening) tx:rx tr:when retrnsmt uid timeout inode
      if (f.size() < 10 || f[3] != "0A") continue;
      if (std::find(inodes.begin(), inodes.end(), f[9]) == inodes.end()) continue;
      ports.push_back(static_cast<int>(std::stoul(f[1].substr(f[1].rfind(':') + 1), nullptr, 16)));
    }
  }
  return ports;
}

int RespPortOf(const NodeProcess& node) {
  int grpc_port = 0;
  const std::string& address = node.address();
  if (!absl::SimpleAtoi(address.substr(address.rfind(':') + 1), &grpc_port)) return 0;
  for (int port : ListeningPorts(node.pid())) {
    if (port == grpc_port) continue;
    cachenode::RespTestClient c(port);
    if (!c.connected()) continue;
    // Five pipelined PINGs are longer than the HTTP/2 preface, so a gRPC listener (gRPC may hold
    // listening sockets of its own) rejects them at once instead of waiting for more bytes.
    c.Send("PING\r\nPING\r\nPING\r\nPING\r\nPING\r\n");
    if (c.ReadExact(7) == "+PONG\r\n") return port;
  }
  return 0;
}

bool IsPortTaken(const absl::Status& start_error) {
  const absl::string_view m = start_error.message();
  return absl::StrContains(m, "cannot listen") || absl::StrContains(m, "already in use") ||
         absl::StrContains(m, "listen on");
}

absl::StatusOr<std::string> StartOnFreePort(
    NodeProcess& process, const std::function<std::vector<std::string>(int port)>& flags_for,
    int* port) {
  absl::StatusOr<std::string> address;
  for (int attempt = 0; attempt < 5; ++attempt) {
    *port = FreePort();
    address = process.Start(flags_for(*port));
    if (address.ok() || !IsPortTaken(address.status())) return address;
  }
  return address;
}

absl::StatusOr<ProcessResult> RunCli(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {CliBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProcess(argv);
}

TempDir::TempDir() {
  std::string pattern = TempBase() + "/strata-test-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) std::abort();  // nothing sensible to test without it
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

NodeProcess::NodeProcess(std::string binary) : binary_(std::move(binary)) {}

NodeProcess::~NodeProcess() {
  if (running()) Kill().IgnoreError();
  StopDrain();
  if (!stderr_path_.empty()) unlink(stderr_path_.c_str());
}

std::string NodeProcess::stderr_text() const {
  return stderr_path_.empty() ? "" : ReadWholeFile(stderr_path_);
}

absl::StatusOr<std::string> NodeProcess::Start(const std::vector<std::string>& flags,
                                               absl::Duration startup_timeout) {
  if (running()) return absl::FailedPreconditionError("node is already running");
  StopDrain();
  address_.clear();
  exit_code_.reset();

  std::vector<std::string> argv = {binary_};
  bool has_listen = false;
  bool has_security = false;
  for (const std::string& flag : flags) {
    has_listen |= flag.rfind("--listen", 0) == 0;
    has_security |= flag.rfind("--tls-cert", 0) == 0 || flag.rfind("--plaintext", 0) == 0;
    argv.push_back(flag);
  }
  if (!has_listen) {
    argv.push_back("--listen");
    argv.push_back("127.0.0.1:0");
  }
  // Loopback processes of tests and benchmarks: plaintext unless the caller chose TLS.
  if (!has_security) argv.push_back("--plaintext");

  if (!stderr_path_.empty()) unlink(stderr_path_.c_str());
  std::string err_path = TempBase() + "/strata-node-stderr-XXXXXX";
  const int err_fd = mkostemp(err_path.data(), O_CLOEXEC);
  if (err_fd < 0) return absl::InternalError(absl::StrCat("mkostemp: ", ErrnoText()));
  stderr_path_ = err_path;
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(err_fd);
    return absl::InternalError(absl::StrCat("pipe: ", ErrnoText()));
  }
  const int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  absl::StatusOr<pid_t> pid = Spawn(argv, devnull, out[1], err_fd, env_);
  close(devnull);
  close(err_fd);
  close(out[1]);
  if (!pid.ok()) {
    close(out[0]);
    return pid.status();
  }
  pid_ = *pid;
  stdout_fd_ = out[0];

  // Read stdout line by line until the serving line, EOF (the node exited) or the deadline.
  const absl::Time deadline = absl::Now() + startup_timeout;
  std::string pending;
  char buffer[4096];
  while (true) {
    pollfd p{stdout_fd_, POLLIN, 0};
    const int r = poll(&p, 1, MillisUntil(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) {
      Kill().IgnoreError();
      return absl::DeadlineExceededError(absl::StrCat(
          binary_.substr(binary_.rfind('/') + 1), " did not print its serving line within ",
          absl::FormatDuration(startup_timeout), "; stderr: ", LastLine(stderr_text())));
    }
    const ssize_t n = read(stdout_fd_, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: the node is gone (or closed stdout, which is as bad)
    pending.append(buffer, static_cast<size_t>(n));
    size_t newline;
    while ((newline = pending.find('\n')) != std::string::npos) {
      const std::string line = pending.substr(0, newline);
      pending.erase(0, newline + 1);
      const size_t marker = line.find(kServingMarker);
      if (marker != std::string::npos && line.rfind("strata", 0) == 0) {
        address_ = line.substr(marker + kServingMarker.size());
        address_ = address_.substr(0, address_.find(' '));
        const int fd = stdout_fd_;
        drain_ = std::thread([fd] {
          char sink[4096];
          while (true) {
            const ssize_t got = read(fd, sink, sizeof(sink));
            if (got > 0 || (got < 0 && errno == EINTR)) continue;
            return;
          }
        });
        return address_;
      }
    }
  }
  absl::StatusOr<int> code = SignalAndWait(0, absl::Seconds(30));
  if (!code.ok()) return code.status();
  return absl::FailedPreconditionError(absl::StrCat(binary_.substr(binary_.rfind('/') + 1),
                                                    " exited with code ", *code,
                                                    " before serving: ", LastLine(stderr_text())));
}

absl::StatusOr<int> NodeProcess::SignalAndWait(int signal, absl::Duration timeout) {
  if (!running()) return absl::FailedPreconditionError("node is not running");
  if (signal != 0) kill(pid_, signal);
  absl::StatusOr<int> code = WaitForExit(pid_, timeout);
  pid_ = -1;
  StopDrain();
  if (code.ok()) exit_code_ = *code;
  return code;
}

absl::StatusOr<int> NodeProcess::Terminate(absl::Duration timeout) {
  return SignalAndWait(SIGTERM, timeout);
}

absl::StatusOr<int> NodeProcess::Kill() { return SignalAndWait(SIGKILL, absl::Seconds(60)); }

void NodeProcess::StopDrain() {
  // Only called once the node has exited, so the drain thread sees EOF and returns.
  if (drain_.joinable()) drain_.join();
  if (stdout_fd_ >= 0) {
    close(stdout_fd_);
    stdout_fd_ = -1;
  }
}

absl::StatusOr<std::string> HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket");
  timeval timeout{10, 0};  // a bound, not a synchronization: the server answers at once
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return absl::UnavailableError("connect");
  }
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return absl::InternalError("write");
  }
  std::string response;
  char buf[65536];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) response.append(buf, n);
  close(fd);
  const size_t body = response.find("\r\n\r\n");
  if (response.rfind("HTTP/1.", 0) != 0 || body == std::string::npos) {
    return absl::InternalError("not an HTTP response: " + response.substr(0, 80));
  }
  return response.substr(body + 4);
}

}  // namespace strata::tests
