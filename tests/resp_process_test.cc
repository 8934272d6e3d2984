// The RESP endpoint of a real strata-cachenode process, driven by the stock Redis tools
// (redis-cli, redis-benchmark), Debian's python3-redis and raw sockets. A missing tool skips its
// test with the reason (CI installs them: scripts/install-deps.sh).
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cachenode/resp_test_client.h"
#include "tests/node_process.h"

namespace strata::tests {
namespace {

bool Executable(const std::string& path) { return access(path.c_str(), X_OK) == 0; }

std::string RandomBinary(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  s.replace(n / 2, 6, std::string("\r\n\0\r\n\0", 6));
  return s;
}

class RespProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> address =
        node_.Start({"--data-dir", dir_.path(), "--dram-bytes", "256MiB", "--ssd-bytes", "0",
                     "--resp-listen", "127.0.0.1:0"});
    ASSERT_TRUE(address.ok()) << address.status();
    resp_port_ = RespPortOf(node_);
    ASSERT_GT(resp_port_, 0) << "no listening port of the node answers PING";
  }

  // redis-cli with `args`; skips the test when redis-cli is missing.
  ProcessResult Cli(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/redis-cli", "-p", std::to_string(resp_port_)};
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<ProcessResult> r = RunProcess(argv);
    EXPECT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r.ok() ? r->exit_code : -1, 0) << (r.ok() ? r->stderr_text : "");
    return r.ok() ? *r : ProcessResult{};
  }
  // A shell line (for stdin redirection); $P is the RESP port.
  ProcessResult Shell(const std::string& line) {
    absl::StatusOr<ProcessResult> r =
        RunProcess({"/bin/sh", "-c", absl::StrCat("P=", resp_port_, "; ", line)});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : ProcessResult{};
  }

  TempDir dir_;
  NodeProcess node_;
  int resp_port_ = 0;
};

TEST_F(RespProcessTest, RedisCliCommandsWork) {
  if (!Executable("/usr/bin/redis-cli")) GTEST_SKIP() << "redis-cli not installed (redis-tools)";
  EXPECT_EQ(Cli({"PING"}).stdout_text, "PONG\n");
  EXPECT_EQ(Cli({"SET", "k", "v"}).stdout_text, "OK\n");
  EXPECT_EQ(Cli({"GET", "k"}).stdout_text, "v\n");
  EXPECT_EQ(Cli({"SET", "k2", "w"}).stdout_text, "OK\n");
  EXPECT_EQ(Cli({"EXISTS", "k", "k2", "nope"}).stdout_text, "2\n");
  EXPECT_EQ(Cli({"MGET", "k", "nope", "k2"}).stdout_text, "v\n\nw\n");
  EXPECT_EQ(Cli({"DEL", "k", "nope"}).stdout_text, "1\n");
  EXPECT_EQ(Cli({"GET", "k"}).stdout_text, "\n");
  const std::string info = Cli({"INFO"}).stdout_text;
  EXPECT_NE(info.find("# Strata"), std::string::npos) << info;
  EXPECT_NE(info.find("tier_dram_capacity_bytes:"), std::string::npos) << info;
  const ProcessResult unknown = Cli({"KEYS", "*"});
  EXPECT_NE(unknown.stdout_text.find("unknown command"), std::string::npos);
}

TEST_F(RespProcessTest, RedisCliBinaryValuesRoundTripByteExact) {
  if (!Executable("/usr/bin/redis-cli")) GTEST_SKIP() << "redis-cli not installed (redis-tools)";
  for (size_t size : {size_t{100}, size_t{70000}, size_t{2} << 20}) {
    const std::string value = RandomBinary(size, static_cast<uint32_t>(size));
    const std::string in = dir_.File("value.bin");
    const std::string out = dir_.File("out.bin");
    {
      std::ofstream f(in, std::ios::binary);
      f.write(value.data(), static_cast<std::streamsize>(value.size()));
    }
    EXPECT_EQ(Shell("redis-cli -p $P -x SET bin < " + in).stdout_text, "OK\n") << size;
    // --raw prints the bytes as they are, then one newline.
    ASSERT_EQ(Shell("redis-cli -p $P --raw GET bin > " + out).exit_code, 0);
    std::ifstream f(out, std::ios::binary);
    std::stringstream got;
    got << f.rdbuf();
    EXPECT_TRUE(got.str() == value + "\n")
        << "value of " << size << " bytes differs (got " << got.str().size() << " bytes)";
  }
}

TEST_F(RespProcessTest, PythonRedisClientConforms) {
  if (!Executable("/usr/bin/python3")) GTEST_SKIP() << "python3 not installed";
  absl::StatusOr<ProcessResult> r =
      RunProcess({"/usr/bin/python3", STRATA_RESP_CONFORMANCE, std::to_string(resp_port_)});
  ASSERT_TRUE(r.ok()) << r.status();
  if (r->exit_code == 77) GTEST_SKIP() << r->stdout_text;
  EXPECT_EQ(r->exit_code, 0) << r->stdout_text << r->stderr_text;
  EXPECT_NE(r->stdout_text.find("conformance: OK"), std::string::npos) << r->stdout_text;
}

TEST_F(RespProcessTest, RedisBenchmarkRunsCleanWithTwoMiBValues) {
  if (!Executable("/usr/bin/redis-benchmark")) {
    GTEST_SKIP() << "redis-benchmark not installed (redis-tools)";
  }
  absl::StatusOr<ProcessResult> r =
      RunProcess({"/usr/bin/redis-benchmark", "-p", std::to_string(resp_port_), "-t", "set,get",
                  "-d", "2097152", "-n", "200", "-c", "4", "-q"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0) << r->stdout_text << r->stderr_text;
  const std::string all = r->stdout_text + r->stderr_text;
  EXPECT_NE(all.find("SET: "), std::string::npos) << all;
  EXPECT_NE(all.find("GET: "), std::string::npos) << all;
  for (const char* bad : {"ERR", "Error", "error", "WARNING"}) {
    EXPECT_EQ(all.find(bad), std::string::npos) << bad << " in:\n" << all;
  }
}

TEST_F(RespProcessTest, MalformedInputClosesThatConnectionOnly) {
  const std::vector<std::string> cases = {
      "*2\r\n$3\r\nGET\r\n$99999999999\r\n",
      "*-5\r\n",
      "*2\r\n$3\r\nGET\r\n$2\r\nabcdef\r\n",
      std::string("\x16\x03\x01\x00\xff\x01\x00\x00\r\n", 10),
      std::string(70000, 'A'),
  };
  cachenode::RespTestClient other(resp_port_);
  ASSERT_TRUE(other.connected());
  for (const std::string& bad_bytes : cases) {
    cachenode::RespTestClient bad(resp_port_);
    ASSERT_TRUE(bad.connected());
    bad.Send(bad_bytes);
    const std::string reply = bad.ReadToEof();  // the server closes it
    EXPECT_EQ(reply.rfind("-ERR Protocol error: ", 0), 0u) << reply;
    // The other client, connected all along, still gets a SET/GET round trip.
    other.Send("*3\r\n$3\r\nSET\r\n$5\r\nother\r\n$2\r\nok\r\n*2\r\n$3\r\nGET\r\n$5\r\nother\r\n");
    EXPECT_EQ(other.ReadExact(13), "+OK\r\n$2\r\nok\r\n");
  }
}

TEST_F(RespProcessTest, RespNamespaceMustBeOneOfTheNodes) {
  TempDir dir;
  NodeProcess node;
  absl::StatusOr<std::string> address =
      node.Start({"--data-dir", dir.path(), "--dram-bytes", "64MiB", "--ssd-bytes", "0",
                  "--resp-listen", "127.0.0.1:0", "--resp-namespace", "not-registered"});
  EXPECT_FALSE(address.ok());
  EXPECT_EQ(node.exit_code(), 2);
  EXPECT_NE(node.stderr_text().find("not one of the node's namespaces"), std::string::npos)
      << node.stderr_text();
}

}  // namespace
}  // namespace strata::tests
