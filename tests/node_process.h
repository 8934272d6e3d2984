// Process-level support: runs the real strata-cachenode and strata binaries (tests, and
// strata-bench's resident-memory case, which measures a real node process).
//
// NodeProcess starts a server (strata-cachenode or strata-router) with given flags (fork/exec),
// reads its stdout until it prints "PROGRAM serving on HOST:PORT" (blocking reads with a bound, no
// sleeps) and hands back
// the address; the node's stderr goes to a file the test can read. RunProcess runs any binary to
// completion and captures its exit code, stdout and stderr. Children die with the test (their
// parent death signal is SIGKILL), so a crashed test leaves no node behind. Not thread-safe; one
// test thread drives each object.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace strata::tests {

// Paths of the binaries under test, fixed at build time by CMake.
std::string CacheNodeBinary();
std::string CliBinary();
std::string RouterBinary();

struct ProcessResult {
  int exit_code = -1;  // the exit status, or 128 + signal number when killed by a signal
  std::string stdout_text;
  std::string stderr_text;
};

// Runs argv (argv[0] is the binary's path) until it exits. The process is killed, and
// DeadlineExceeded returned, if it runs past `timeout`. Internal if it cannot be started.
absl::StatusOr<ProcessResult> RunProcess(const std::vector<std::string>& argv,
                                         absl::Duration timeout = absl::Seconds(120));

// Runs the strata CLI with `args` (without the program name).
absl::StatusOr<ProcessResult> RunCli(const std::vector<std::string>& args);

// GET http://127.0.0.1:PORT/PATH (HTTP/1.0); the response body. Unavailable when nothing listens.
absl::StatusOr<std::string> HttpGet(int port, const std::string& path);

// A TCP port on 127.0.0.1 that nothing listens on now. It is drawn at random below the kernel's
// ephemeral range, so the source port of an outgoing connection (a parallel test's client) never
// takes it between this call and the server's bind; another test may still draw the same port,
// which StartOnFreePort handles.
int FreePort();

// True when `start_error` (from NodeProcess::Start) says the server could not bind its port.
bool IsPortTaken(const absl::Status& start_error);

// TCP ports the process `pid` listens on (its socket inodes looked up in /proc/net/tcp and tcp6).
std::vector<int> ListeningPorts(pid_t pid);

// Lines of `text` without their newlines; a missing final newline still ends a line.
std::vector<std::string> Lines(const std::string& text);

// A fresh directory under $TEST_TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

class NodeProcess;

// Starts `process` with flags_for(port) for a FreePort() port, and again with another port (five
// tries in all) while the server exits because something else took that port first. `*port` is
// the port of the last try. Returns what NodeProcess::Start returns.
absl::StatusOr<std::string> StartOnFreePort(
    NodeProcess& process, const std::function<std::vector<std::string>(int port)>& flags_for,
    int* port);

class NodeProcess {
 public:
  // Runs `binary` (default: the strata-cachenode of this build; RouterBinary() for the router).
  explicit NodeProcess(std::string binary = CacheNodeBinary());
  ~NodeProcess();  // SIGKILLs a node that is still running
  NodeProcess(const NodeProcess&) = delete;
  NodeProcess& operator=(const NodeProcess&) = delete;

  // Starts strata-cachenode with `flags`, adding "--listen 127.0.0.1:0" unless a --listen is given
  // and "--plaintext" unless --tls-cert or --plaintext is.
  // Returns "HOST:PORT" once the node serves. If the node exits first, returns FailedPrecondition
  // with its last stderr line and records exit_code(); DeadlineExceeded (node killed) if it does
  // neither within `startup_timeout`.
  absl::StatusOr<std::string> Start(const std::vector<std::string>& flags,
                                    absl::Duration startup_timeout = absl::Seconds(60));

  // Environment variables ("NAME=VALUE", e.g. STRATA_FAIL_POINTS=...) added to the test's own for
  // every later Start; empty by default.
  void SetEnvironment(std::vector<std::string> env) { env_ = std::move(env); }

  // SIGTERM, then waits for the exit (killing it after `timeout`). Returns the exit code.
  absl::StatusOr<int> Terminate(absl::Duration timeout = absl::Seconds(60));
  // SIGKILL and wait. Returns 128 + SIGKILL.
  absl::StatusOr<int> Kill();

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  const std::string& address() const { return address_; }
  // The exit code of the last run that ended, if any.
  std::optional<int> exit_code() const { return exit_code_; }
  // Everything the node wrote to stderr so far.
  std::string stderr_text() const;

 private:
  absl::StatusOr<int> SignalAndWait(int signal, absl::Duration timeout);
  void StopDrain();

  const std::string binary_;
  std::vector<std::string> env_;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string stderr_path_;
  std::string address_;
  std::optional<int> exit_code_;
  // Reads the node's stdout after the serving line, so a chatty node never blocks on a full pipe.
  std::thread drain_;
};

// The port of a running node's RESP listener (started with --resp-listen 127.0.0.1:0): the port,
// other than its gRPC one, that answers PING. 0 when there is none.
int RespPortOf(const NodeProcess& node);

}  // namespace strata::tests
