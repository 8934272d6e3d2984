// A bounded `strata-bench soak`: a real strata-router and two strata-cachenode processes that the
// bench starts itself, 200 clients over gRPC, RESP, the shared-memory plane and the router for
// 15 s. The run must end with exit 0: no undeclared error, no wrong byte, every server's memory
// flat after warm-up, every node draining cleanly. No timing is asserted (the box is noisy).
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/node_process.h"

namespace strata::tests {
namespace {

std::string BenchBinary() { return STRATA_BENCH_BIN; }
std::string BinDir() {
  const std::string node = CacheNodeBinary();
  return node.substr(0, node.rfind('/'));
}

TEST(SoakProcessTest, TwoHundredClientsOnEveryPlaneEndCleanWithFlatMemory) {
  auto r = RunProcess({BenchBinary(), "soak", "--duration", "15s", "--clients", "200", "--nodes",
                       "2", "--bin-dir", BinDir(), "--output", "json"},
                      absl::Seconds(240));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0) << r->stdout_text << "\n" << r->stderr_text;
  const std::string& json = r->stdout_text;
  EXPECT_TRUE(absl::StrContains(json, "\"undeclared_errors\":0,\"wrong_bytes\":0,\"ok\":true"))
      << json;
  // Every plane's main operations ran (a count of 0 would make the verdict vacuous).
  for (const char* op : {"\"plane\":\"grpc\",\"op\":\"put_chain\"", "\"plane\":\"grpc\",\"op\":\"get_chain\"",
                         "\"plane\":\"grpc\",\"op\":\"lookup\"", "\"plane\":\"resp\",\"op\":\"set\"",
                         "\"plane\":\"resp\",\"op\":\"get\"", "\"plane\":\"resp\",\"op\":\"mget\"",
                         "\"plane\":\"shm\",\"op\":\"put_chain\"", "\"plane\":\"shm\",\"op\":\"get_chain\"",
                         "\"plane\":\"router\",\"op\":\"route\"",
                         "\"plane\":\"router\",\"op\":\"report_outcome\""}) {
    EXPECT_TRUE(absl::StrContains(json, op)) << op << " missing: " << json;
    EXPECT_FALSE(absl::StrContains(json, absl::StrCat(op, ",\"count\":0,"))) << op << ": " << json;
  }
  // The router and both nodes were sampled, and each was judged flat.
  for (const char* name : {"\"name\":\"router\"", "\"name\":\"node-0\"", "\"name\":\"node-1\""}) {
    EXPECT_TRUE(absl::StrContains(json, name)) << name << ": " << json;
  }
  for (absl::string_view line : absl::StrSplit(json, '\n')) {
    if (absl::StrContains(line, "\"kind\":\"process\"")) {
      EXPECT_TRUE(absl::StrContains(line, "\"flat\":true")) << line;
    }
  }
  EXPECT_TRUE(absl::StrContains(r->stderr_text, "prefill done")) << r->stderr_text;
}

TEST(SoakProcessTest, HelpListsTheDeclaredErrors) {
  auto r = RunProcess({BenchBinary(), "soak", "--help"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r->stdout_text, "NOT_FOUND")) << r->stdout_text;
  EXPECT_TRUE(absl::StrContains(r->stdout_text, "RESOURCE_EXHAUSTED")) << r->stdout_text;
  auto bad = RunProcess({BenchBinary(), "soak", "--clients", "1", "--planes", "grpc,resp"});
  ASSERT_TRUE(bad.ok()) << bad.status();
  EXPECT_EQ(bad->exit_code, 2) << bad->stderr_text;
}

}  // namespace
}  // namespace strata::tests
