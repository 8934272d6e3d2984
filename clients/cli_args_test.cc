#include "clients/cli_args.h"

#include <initializer_list>

#include "absl/strings/ascii.h"
#include "common/namespace_id.h"
#include "gtest/gtest.h"

namespace strata::clients {
namespace {

const std::string kHashA(64, 'a');
const std::string kHashB = "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef";

absl::StatusOr<CliArgs> Parse(std::initializer_list<std::string_view> args) {
  const std::vector<std::string_view> v(args);
  return ParseCliArgs(v);
}

std::string ErrorOf(std::initializer_list<std::string_view> args) {
  absl::StatusOr<CliArgs> r = Parse(args);
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  return std::string(r.status().message());
}

TEST(ParseCliArgsTest, HelpAnywhereWins) {
  for (auto args : {std::vector<std::string_view>{"--help"},
                    {"get", "-h"},
                    {"--node", "x:1", "put", "--bogus", "--help"},
                    {"help"}}) {
    absl::StatusOr<CliArgs> r = ParseCliArgs(args);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->command, CliCommand::kHelp);
  }
}

TEST(ParseCliArgsTest, PutWithAllFlags) {
  const std::string hash_flag = "--hash=" + kHashA;
  absl::StatusOr<CliArgs> r =
      Parse({"--node", "127.0.0.1:7070", "put", "--namespace", "llama/b16", hash_flag, "--file",
             "/tmp/x", "--chain-position", "7", "--from-gpu", "--output=json", "--timeout", "2s"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->command, CliCommand::kPut);
  EXPECT_EQ(r->node, "127.0.0.1:7070");
  EXPECT_EQ(r->namespace_name, "llama/b16");
  EXPECT_EQ(r->namespace_id, common::NamespaceIdOf("llama/b16"));
  ASSERT_EQ(r->hashes.size(), 1u);
  EXPECT_EQ(r->hashes[0].Hex(), kHashA);
  EXPECT_EQ(r->file, "/tmp/x");
  EXPECT_EQ(r->chain_position, 7u);
  EXPECT_TRUE(r->from_gpu);
  EXPECT_EQ(r->output, OutputFormat::kJson);
  EXPECT_EQ(r->timeout, absl::Seconds(2));
}

TEST(ParseCliArgsTest, GetToStdoutAndHostPort) {
  absl::StatusOr<CliArgs> r =
      Parse({"get", "--port", "7070", "--namespace", "default", "--hash", kHashB, "--out", "-"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->node, "127.0.0.1:7070");
  EXPECT_EQ(r->out, "-");
  EXPECT_EQ(r->hashes[0].Hex(), absl::AsciiStrToLower(kHashB));
  EXPECT_EQ(Parse({"stats", "--host", "::1", "--port", "1"})->node, "[::1]:1");
}

TEST(ParseCliArgsTest, LookupAndDeleteTakeHashLists) {
  const std::string list = kHashA + ", " + kHashB;
  absl::StatusOr<CliArgs> r =
      Parse({"--node", "n:1", "lookup", "--namespace", "d", "--hashes", list});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->hashes.size(), 2u);
  r = Parse({"--node", "n:1", "delete", "--namespace", "d", "--hash", kHashA, "--hashes", kHashB});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->hashes.size(), 2u);
}

TEST(ParseCliArgsTest, CommandsWithoutFlags) {
  EXPECT_EQ(Parse({"--node", "n:1", "stats"})->command, CliCommand::kStats);
  EXPECT_EQ(Parse({"--node", "n:1", "namespaces"})->command, CliCommand::kNamespaces);
  EXPECT_EQ(Parse({"--node", "n:1", "register-namespace", "--namespace", "a.b"})->command,
            CliCommand::kRegisterNamespace);
}

TEST(ParseCliArgsTest, UsageErrorsSayWhatIsWrong) {
  EXPECT_EQ(ErrorOf({}), "no command given");
  EXPECT_EQ(ErrorOf({"--node", "n:1", "frobnicate"}), "unknown command 'frobnicate'");
  EXPECT_EQ(ErrorOf({"--node", "n:1", "stats", "--verbose"}), "unknown flag '--verbose'");
  EXPECT_EQ(ErrorOf({"stats"}), "--node HOST:PORT is required");
  EXPECT_EQ(ErrorOf({"--node", "n:1", "stats", "--file", "x"}), "--file does not apply to stats");
  EXPECT_EQ(ErrorOf({"--node", "n:1", "stats", "extra"}),
            "unexpected argument 'extra' after command 'stats'");
  EXPECT_EQ(ErrorOf({"--node", "n:1", "get", "--namespace", "d", "--hash", kHashA}),
            "get needs --out");
  EXPECT_EQ(ErrorOf({"--node", "n:1", "put", "--hash", kHashA, "--file", "f"}),
            "put needs --namespace");
  EXPECT_EQ(ErrorOf({"--node", "n:1", "get", "--namespace", "--hash", kHashA}),
            "--namespace needs a value");
  EXPECT_EQ(ErrorOf({"--node", "n:1", "--node", "m:2", "stats"}), "--node is given twice");
  EXPECT_EQ(ErrorOf({"--node", "n:1", "--output", "yaml", "stats"}),
            "--output must be text or json, got 'yaml'");
  EXPECT_NE(ErrorOf({"--node", "n:1", "--timeout", "soon", "stats"}).find("--timeout"),
            std::string::npos);
  EXPECT_EQ(ErrorOf({"--node", "n:1", "lookup", "--namespace", "d"}),
            "lookup needs --hashes HEX64,...");
  EXPECT_EQ(ErrorOf({"--node", "n:1", "get", "--namespace", "d", "--hash", kHashA + "," + kHashB,
                     "--out", "f"}),
            "get takes exactly one --hash, got 2");
  EXPECT_EQ(ErrorOf({"--port", "0", "stats"}), "--port '0' is not a port number (1-65535)");
}

TEST(ParseCliArgsTest, RejectsMalformedHashAndNamespace) {
  const std::string short_hash =
      ErrorOf({"--node", "n:1", "get", "--namespace", "d", "--hash", "abc", "--out", "f"});
  EXPECT_NE(short_hash.find("--hash"), std::string::npos) << short_hash;
  EXPECT_NE(short_hash.find("64 hex characters"), std::string::npos) << short_hash;
  const std::string bad_ns =
      ErrorOf({"--node", "n:1", "get", "--namespace", "a b", "--hash", kHashA, "--out", "f"});
  EXPECT_NE(bad_ns.find("--namespace"), std::string::npos) << bad_ns;
}

TEST(ParseHashListTest, ParsesAndNamesTheBadEntry) {
  absl::StatusOr<std::vector<common::ChainHash>> ok = ParseHashList(kHashA + " ,\t" + kHashB);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->size(), 2u);
  absl::StatusOr<std::vector<common::ChainHash>> empty = ParseHashList(kHashA + ",");
  EXPECT_EQ(empty.status().message(), "entry 2 of the hash list is empty");
  absl::StatusOr<std::vector<common::ChainHash>> bad =
      ParseHashList(kHashA + "," + std::string(64, 'g'));
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status()));
  EXPECT_NE(bad.status().message().find("entry 2"), std::string_view::npos);
}

TEST(CliUsageTest, ListsEveryCommandAndFlag) {
  const std::string_view usage = CliUsage();
  for (std::string_view word :
       {"put", "get", "lookup", "delete", "stats", "register-namespace", "namespaces", "--node",
        "--output", "--timeout", "--namespace", "--hash", "--hashes", "--file", "--out",
        "--chain-position", "--from-gpu", "Exit codes"}) {
    EXPECT_NE(usage.find(word), std::string_view::npos) << word;
  }
}

}  // namespace
}  // namespace strata::clients
