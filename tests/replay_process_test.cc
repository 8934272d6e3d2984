// Process-level tests of `strata-bench replay`: a generated workload replayed live against a real
// strata-router and real strata-cachenode processes that the bench starts and stops itself, the
// sim mode's determinism across processes, and Ctrl-C leaving nothing behind.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/node_process.h"

extern char** environ;

namespace strata::tests {
namespace {

std::string BenchBinary() { return STRATA_BENCH_BIN; }

// Writes a small generated trace into `dir` and returns its path.
std::string GenTrace(const TempDir& dir, int requests, double rate) {
  const std::string path = dir.File("trace.jsonl");
  auto r = RunProcess({BenchBinary(), "gen", "--requests", absl::StrCat(requests), "--rate",
                       absl::StrCat(rate), "--seed", "3", "--out", path});
  EXPECT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0) << r->stderr_text;
  return path;
}

bool PortRefuses(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool refused = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0;
  close(fd);
  return refused;
}

TEST(ReplayProcessTest, LiveReplayRunsARealClusterAndReportsBothArms) {
  TempDir dir;
  const std::string trace = GenTrace(dir, 80, 10);
  auto r = RunProcess({BenchBinary(), "replay", "--trace", trace, "--mode", "live", "--nodes", "2",
                       "--experiment", "locality=50,round_robin=50", "--hbm-capacity", "4GiB",
                       "--speedup", "20", "--output", "json"},
                      absl::Seconds(180));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->exit_code, 0) << r->stderr_text;
  const std::string& json = r->stdout_text;
  EXPECT_TRUE(absl::StrContains(json, "\"mode\":\"live\"")) << json;
  EXPECT_TRUE(absl::StrContains(json, "\"requests\":80,")) << json;
  EXPECT_TRUE(absl::StrContains(json, "\"policies\":[{\"policy\":\"locality\"")) << json;
  EXPECT_TRUE(absl::StrContains(json, "{\"policy\":\"round_robin\"")) << json;
  EXPECT_TRUE(absl::StrContains(json, "\"rpc_errors\":0}")) << json;
  EXPECT_FALSE(absl::StrContains(json, "\"samples\":0}")) << "no event lag measured: " << json;
  EXPECT_FALSE(absl::StrContains(json, "\"bytes_written\":0,")) << json;
  // It started its own processes and said so.
  EXPECT_TRUE(absl::StrContains(r->stderr_text, "strata-router serving on")) << r->stderr_text;
  EXPECT_TRUE(absl::StrContains(r->stderr_text, "strata-cachenode node-1 serving on"));
}

TEST(ReplayProcessTest, SimModeIsDeterministicAcrossProcesses) {
  TempDir dir;
  const std::string trace = GenTrace(dir, 300, 12);
  const std::vector<std::string> argv = {BenchBinary(), "replay", "--trace", trace, "--nodes", "3",
                                         "--experiment", "locality=50,least_loaded=50",
                                         "--output", "json"};
  auto a = RunProcess(argv);
  auto b = RunProcess(argv);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->exit_code, 0) << a->stderr_text;
  EXPECT_EQ(a->stdout_text, b->stdout_text);
  EXPECT_TRUE(absl::StrContains(a->stdout_text, "\"mode\":\"sim\""));
}

TEST(ReplayProcessTest, MalformedTraceLineIsReportedWithItsNumber) {
  TempDir dir;
  const std::string path = dir.File("bad.jsonl");
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    std::fputs("{\"timestamp\": 0, \"input_length\": 10, \"output_length\": 1, \"hash_ids\": [1]}\n"
               "{\"timestamp\": 5, \"input_length\": 10, \"output_length\": 1}\n",
               f);
    std::fclose(f);
  }
  auto r = RunProcess({BenchBinary(), "replay", "--trace", path});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r->stderr_text, "bad.jsonl:2:")) << r->stderr_text;
}

TEST(ReplayProcessTest, CtrlCStopsTheClusterItStarted) {
  TempDir dir;
  const std::string trace = GenTrace(dir, 2000, 4);  // about 500 s of traffic: far from done
  const std::string tmp = dir.File("scratch");
  std::filesystem::create_directories(tmp);
  int err_pipe[2];
  ASSERT_EQ(pipe(err_pipe), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&actions, err_pipe[0]);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  std::vector<std::string> args = {BenchBinary(), "replay", "--trace", trace, "--mode", "live",
                                   "--nodes", "2", "--speedup", "1"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings = {"TMPDIR=" + tmp};
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string(*e).rfind("TMPDIR=", 0) != 0) env_strings.push_back(*e);
  }
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid;
  ASSERT_EQ(posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data()), 0);
  posix_spawn_file_actions_destroy(&actions);
  close(err_pipe[1]);

  // Read stderr until the replay is under way (blocking reads with a bound), noting the ports.
  std::string err;
  std::vector<int> ports;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline && !absl::StrContains(err, "requests routed")) {
    pollfd p{err_pipe[0], POLLIN, 0};
    if (poll(&p, 1, 1000) <= 0) continue;
    char buf[4096];
    const ssize_t n = read(err_pipe[0], buf, sizeof(buf));
    if (n <= 0) break;
    err.append(buf, n);
  }
  ASSERT_TRUE(absl::StrContains(err, "requests routed")) << err;
  for (size_t at = err.find("serving on 127.0.0.1:"); at != std::string::npos;
       at = err.find("serving on 127.0.0.1:", at + 1)) {
    const size_t start = at + std::string("serving on 127.0.0.1:").size();
    int port = 0;
    ASSERT_TRUE(absl::SimpleAtoi(err.substr(start, err.find('\n', start) - start), &port));
    ports.push_back(port);
  }
  ASSERT_EQ(ports.size(), 3u) << err;  // the router and two nodes

  ASSERT_EQ(kill(pid, SIGINT), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  close(err_pipe[0]);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by a signal instead of stopping";
  EXPECT_EQ(WEXITSTATUS(status), 1);
  for (int port : ports) EXPECT_TRUE(PortRefuses(port)) << "port " << port << " still served";
  EXPECT_TRUE(std::filesystem::is_empty(tmp)) << "scratch data left behind";
}

}  // namespace
}  // namespace strata::tests
