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

TEST(ParseCliArgsTest, HelpForOneCommandNamesIt) {
  absl::StatusOr<CliArgs> r = Parse({"stats", "--help"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->help_topic, "stats");
  r = Parse({"help", "experiment", "set"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->help_topic, "experiment set");
  const std::string text = CliCommandUsage("stats");
  EXPECT_NE(text.find("--watch INTERVAL"), std::string::npos) << text;
  EXPECT_NE(text.find("--token-file FILE"), std::string::npos) << text;  // global flags follow
  EXPECT_EQ(text.find("register-namespace"), std::string::npos) << text;  // not other commands
}

TEST(ParseCliArgsTest, TlsFlagsAndTokenFile) {
  absl::StatusOr<CliArgs> r =
      Parse({"--node", "h:1", "--cacert", "ca.pem", "--cert", "c.pem", "--key", "k.pem",
             "--token-file", "t", "stats"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->security.uses_tls());
  EXPECT_EQ(r->security.ca_file, "ca.pem");
  EXPECT_EQ(r->security.cert_file, "c.pem");
  EXPECT_EQ(r->token_file, "t");
  EXPECT_TRUE(r->security.token.empty());  // read by main(), never from argv
  r = Parse({"--router", "h:1", "--tls", "nodes"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->security.tls);
}

TEST(ParseCliArgsTest, TokensAndClientCertificatesNeedTls) {
  EXPECT_NE(ErrorOf({"--node", "h:1", "--token-file", "t", "stats"}).find("needs TLS"),
            std::string::npos);
  EXPECT_NE(ErrorOf({"--node", "h:1", "--cert", "c.pem", "--key", "k.pem", "stats"}).find("TLS"),
            std::string::npos);
  EXPECT_NE(ErrorOf({"--node", "h:1", "--cacert", "ca", "--cert", "c.pem", "stats"}).find("key"),
            std::string::npos);
  EXPECT_NE(ErrorOf({"--node", "h:1", "--token", "secret", "stats"}).find("unknown flag"),
            std::string::npos);  // no way to put a secret on the command line
}

TEST(ParseCliArgsTest, StatsWatchTakesAnIntervalAndACount) {
  absl::StatusOr<CliArgs> r = Parse({"--node", "h:1", "stats", "--watch", "2s", "--count", "5"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->watch, absl::Seconds(2));
  EXPECT_EQ(r->count, 5u);
  EXPECT_NE(ErrorOf({"--node", "h:1", "stats", "--watch", "soon"}).find("--watch"),
            std::string::npos);
  EXPECT_NE(ErrorOf({"--node", "h:1", "stats", "--count", "3"}).find("needs --watch"),
            std::string::npos);
  EXPECT_NE(ErrorOf({"--node", "h:1", "get", "--watch", "1s"}).find("does not apply"),
            std::string::npos);
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
  EXPECT_EQ(Parse({"--node", "n:1", "sync"})->command, CliCommand::kSync);
  EXPECT_EQ(Parse({"--node", "n:1", "register-namespace", "--namespace", "a.b"})->command,
            CliCommand::kRegisterNamespace);
}

TEST(ParseCliArgsTest, SyncTalksToANodeAndTakesNoBlockFlags) {
  EXPECT_EQ(Parse({"sync", "--node", "n:1"})->node, "n:1");
  EXPECT_EQ(ErrorOf({"sync", "--router", "r:1"}),
            "--node HOST:PORT is required (sync talks to a cache node; --router names the router)");
  EXPECT_EQ(ErrorOf({"--node", "n:1", "sync", "--namespace", "a"}),
            "--namespace does not apply to sync");
  EXPECT_EQ(ErrorOf({"--node", "n:1", "sync", "--local", "/tmp/s"}),
            "--local does not apply to sync");
  EXPECT_NE(CliCommandUsage("sync").find("survives a crash of the node"), std::string::npos);
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

TEST(ParseCliArgsTest, RouteWithAllFlags) {
  absl::StatusOr<CliArgs> r =
      Parse({"--router", "router:7000", "route", "--namespace", "llama/b16", "--hashes",
             kHashA + "," + kHashB, "--session", "s1", "--request-id", "r1", "--policy",
             "least_loaded", "--prompt-tokens", "300", "--block-tokens=16", "--output", "json"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->command, CliCommand::kRoute);
  EXPECT_TRUE(IsRouterCommand(r->command));
  EXPECT_EQ(r->router, "router:7000");
  EXPECT_EQ(r->node, "");
  EXPECT_EQ(r->namespace_name, "llama/b16");
  ASSERT_EQ(r->hashes.size(), 2u);
  EXPECT_EQ(r->hashes[1].Hex(), absl::AsciiStrToLower(kHashB));
  EXPECT_EQ(r->session_key, "s1");
  EXPECT_EQ(r->request_id, "r1");
  EXPECT_EQ(r->policy, "least_loaded");
  EXPECT_EQ(r->prompt_tokens, 300u);
  EXPECT_EQ(r->block_tokens, 16u);
  EXPECT_EQ(r->output, OutputFormat::kJson);
}

TEST(ParseCliArgsTest, RouterCommandsNeedTheRouterAndNodeCommandsTheNode) {
  EXPECT_EQ(ErrorOf({"nodes"}), "--router HOST:PORT is required");
  EXPECT_EQ(ErrorOf({"--node", "n:1", "route", "--namespace", "d", "--hashes", kHashA}),
            "--router HOST:PORT is required (route talks to the router; --node names a cache "
            "node)");
  EXPECT_EQ(ErrorOf({"--router", "r:1", "stats"}),
            "--node HOST:PORT is required (stats talks to a cache node; --router names the "
            "router)");
  EXPECT_EQ(ErrorOf({"--router=", "nodes"}), "--router is empty");
  // One alias may carry both targets: each command takes the one it needs.
  absl::StatusOr<CliArgs> nodes = Parse({"--node", "n:1", "--router", "r:1", "nodes"});
  ASSERT_TRUE(nodes.ok()) << nodes.status();
  EXPECT_EQ(nodes->router, "r:1");
  absl::StatusOr<CliArgs> stats = Parse({"--node", "n:1", "--router", "r:1", "stats"});
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->node, "n:1");
  EXPECT_FALSE(IsRouterCommand(stats->command));
}

TEST(ParseCliArgsTest, RouteUsageErrorsNameTheProblem) {
  EXPECT_EQ(ErrorOf({"--router", "r:1", "route", "--hashes", kHashA}), "route needs --namespace");
  EXPECT_EQ(ErrorOf({"--router", "r:1", "route", "--namespace", "d"}),
            "route needs --hashes HEX64,... or --tokens T,T,...");
  const std::string bad_hash = ErrorOf(
      {"--router", "r:1", "route", "--namespace", "d", "--hashes", kHashA + ",xyz," + kHashB});
  EXPECT_EQ(bad_hash.rfind("--hashes: entry 2 'xyz': ", 0), 0u) << bad_hash;
  EXPECT_EQ(ErrorOf({"--router", "r:1", "route", "--namespace", "d", "--hashes", kHashA,
                     "--block-tokens", "-1"}),
            "--block-tokens '-1' is not a non-negative 32-bit integer");
  EXPECT_EQ(
      ErrorOf({"--router", "r:1", "route", "--namespace", "d", "--hashes", kHashA, "--file", "f"}),
      "--file does not apply to route");
  EXPECT_EQ(ErrorOf({"--router", "r:1", "nodes", "--policy", "random"}),
            "--policy does not apply to nodes");
}

TEST(ParseCliArgsTest, LocateTakesTheChainAsRouteDoes) {
  absl::StatusOr<CliArgs> by_hashes = Parse(
      {"--router", "r:1", "locate", "--namespace", "llama/b16", "--hashes", kHashA + "," + kHashB});
  ASSERT_TRUE(by_hashes.ok()) << by_hashes.status();
  EXPECT_EQ(by_hashes->command, CliCommand::kLocate);
  EXPECT_TRUE(IsRouterCommand(by_hashes->command));
  EXPECT_EQ(by_hashes->hashes.size(), 2u);
  EXPECT_TRUE(by_hashes->token_ids.empty());

  for (std::string_view cmd : {"locate", "route"}) {
    absl::StatusOr<CliArgs> by_tokens =
        Parse({"--router", "r:1", cmd, "--namespace", "d", "--tokens", "1, 2,4000000000",
               "--block-tokens", "16", "--output=json"});
    ASSERT_TRUE(by_tokens.ok()) << by_tokens.status();
    EXPECT_EQ(by_tokens->token_ids, (std::vector<uint32_t>{1, 2, 4000000000u})) << cmd;
    EXPECT_EQ(by_tokens->block_tokens, 16u);
    EXPECT_TRUE(by_tokens->hashes.empty());
  }
}

TEST(ParseCliArgsTest, LocateUsageErrorsNameTheProblem) {
  EXPECT_EQ(ErrorOf({"--router", "r:1", "locate", "--hashes", kHashA}), "locate needs --namespace");
  EXPECT_EQ(ErrorOf({"--router", "r:1", "locate", "--namespace", "d"}),
            "locate needs --hashes HEX64,... or --tokens T,T,...");
  EXPECT_EQ(ErrorOf({"--router", "r:1", "locate", "--namespace", "d", "--hashes", kHashA,
                     "--tokens", "1,2"}),
            "locate takes --hashes or --tokens, not both");
  EXPECT_EQ(ErrorOf({"--router", "r:1", "locate", "--namespace", "d", "--tokens", "1,x"}),
            "--tokens: entry 2 'x' is not a token id (a non-negative 32-bit integer)");
  EXPECT_EQ(ErrorOf({"--router", "r:1", "locate", "--namespace", "d", "--tokens", "1,-2"}),
            "--tokens: entry 2 '-2' is not a token id (a non-negative 32-bit integer)");
  EXPECT_EQ(ErrorOf({"--router", "r:1", "locate", "--namespace", "d", "--hashes", kHashA,
                     "--policy", "random"}),
            "--policy does not apply to locate");
  EXPECT_EQ(ErrorOf({"--node", "n:1", "locate", "--namespace", "d", "--hashes", kHashA}),
            "--router HOST:PORT is required (locate talks to the router; --node names a cache "
            "node)");
  EXPECT_EQ(ErrorOf({"--node", "n:1", "lookup", "--namespace", "d", "--tokens", "1"}),
            "--tokens does not apply to lookup");
}

TEST(ParseCliArgsTest, ExperimentSubcommands) {
  absl::StatusOr<CliArgs> report = Parse({"--router", "r:1", "experiment", "report"});
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->command, CliCommand::kExperimentReport);
  absl::StatusOr<CliArgs> set =
      Parse({"experiment", "--router", "r:1", "set", "locality=50,round_robin=50"});
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->command, CliCommand::kExperimentSet);
  EXPECT_EQ(set->experiment_spec, "locality=50,round_robin=50");
  EXPECT_EQ(CliCommandName(CliCommand::kExperimentSet), "experiment set");

  EXPECT_EQ(ErrorOf({"--router", "r:1", "experiment"}),
            "experiment needs a subcommand: report or set");
  EXPECT_EQ(ErrorOf({"--router", "r:1", "experiment", "reset"}),
            "unknown experiment subcommand 'reset' (report or set)");
  EXPECT_EQ(ErrorOf({"--router", "r:1", "experiment", "set"}),
            "experiment set needs SPEC (e.g. locality=50,round_robin=50)");
  EXPECT_EQ(ErrorOf({"--router", "r:1", "experiment", "set", "a=1", "b=2"}),
            "unexpected argument 'b=2' after command 'experiment set'");
  EXPECT_EQ(ErrorOf({"--router", "r:1", "experiment", "report", "now"}),
            "unexpected argument 'now' after command 'experiment report'");
}

TEST(ParseCliArgsTest, ReportOutcomeTakesExactIdsAndMilliseconds) {
  absl::StatusOr<CliArgs> r =
      Parse({"--router", "r:1", "report-outcome", "--decision-id", "1152921504606846983",
             "--ttft-ms", "12.75", "--prompt-tokens", "512", "--cached-tokens", "384"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->command, CliCommand::kReportOutcome);
  EXPECT_EQ(r->decision_id, (1ull << 60) + 7);
  EXPECT_EQ(r->ttft_ms, 12.75);
  EXPECT_EQ(r->prompt_tokens, 512u);
  EXPECT_EQ(r->cached_tokens, 384u);

  EXPECT_EQ(ErrorOf({"--router", "r:1", "report-outcome", "--ttft-ms", "1"}),
            "report-outcome needs --decision-id");
  EXPECT_EQ(ErrorOf({"--router", "r:1", "report-outcome", "--decision-id", "1"}),
            "report-outcome needs --ttft-ms");
  EXPECT_EQ(
      ErrorOf({"--router", "r:1", "report-outcome", "--decision-id", "0x2a", "--ttft-ms", "1"}),
      "--decision-id '0x2a' is not a decision id (a non-negative integer)");
  for (std::string_view bad : {"-1", "nan", "inf", "fast"}) {
    EXPECT_NE(ErrorOf({"--router", "r:1", "report-outcome", "--decision-id", "1", "--ttft-ms", bad})
                  .find("--ttft-ms"),
              std::string::npos)
        << bad;
  }
}

TEST(CliUsageTest, ListsEveryCommandAndFlag) {
  const std::string_view usage = CliUsage();
  for (std::string_view word : {"put",
                                "get",
                                "lookup",
                                "delete",
                                "stats",
                                "register-namespace",
                                "namespaces",
                                "sync",
                                "--node",
                                "--output",
                                "--timeout",
                                "--namespace",
                                "--hash",
                                "--hashes",
                                "--file",
                                "--out",
                                "--chain-position",
                                "--from-gpu",
                                "Exit codes",
                                "--router",
                                "route",
                                "locate",
                                "--tokens",
                                "nodes",
                                "experiment report",
                                "experiment set SPEC",
                                "report-outcome",
                                "--session",
                                "--request-id",
                                "--policy",
                                "--prompt-tokens",
                                "--block-tokens",
                                "--decision-id",
                                "--ttft-ms",
                                "--cached-tokens"}) {
    EXPECT_NE(usage.find(word), std::string_view::npos) << word;
  }
}

TEST(ParseCliArgsTest, LocalSocketReplacesTheNodeForGetPutAndLookup) {
  absl::StatusOr<CliArgs> r =
      Parse({"--local", "/run/strata.sock", "get", "--namespace", "ns", "--hash", kHashA, "--out",
             "-"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->local, "/run/strata.sock");
  EXPECT_TRUE(r->node.empty());
  r = Parse({"lookup", "--local=/s", "--namespace", "ns", "--hashes", kHashA});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->local, "/s");
}

TEST(ParseCliArgsTest, LocalSocketIsRefusedWithNodeAndForOtherCommands) {
  EXPECT_NE(ErrorOf({"--local", "/s", "--node", "h:1", "get", "--namespace", "ns", "--hash", kHashA,
                     "--out", "-"})
                .find("not both"),
            std::string::npos);
  EXPECT_NE(ErrorOf({"--local", "/s", "stats"}).find("does not apply"), std::string::npos);
  EXPECT_NE(ErrorOf({"--local", "", "lookup", "--namespace", "ns", "--hashes", kHashA})
                .find("empty"),
            std::string::npos);
}

}  // namespace
}  // namespace strata::clients
