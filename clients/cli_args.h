// Command-line parsing of the `strata` CLI, kept free of I/O so it is unit-tested.
//
// ParseCliArgs turns argv into a CliArgs or an InvalidArgument status whose message is the one line
// the CLI prints before exiting with code 2. Flags may come before or after the command, as
// `--flag value` or `--flag=value`. Node commands talk to a cache node (--node, or --host/--port);
// router commands talk to the router (--router); each requires its own target and ignores the
// other, so one alias can carry both. Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/block_key.h"
#include "common/grpc_security.h"

namespace strata::clients {

enum class CliCommand {
  kHelp,
  kPut,
  kGet,
  kLookup,
  kDelete,
  kStats,
  kRegisterNamespace,
  kNamespaces,
  kSync,
  // Router commands.
  kRoute,
  kLocate,
  kNodes,
  kExperimentReport,
  kExperimentSet,
  kReportOutcome,
};

enum class OutputFormat { kText, kJson };

struct CliArgs {
  CliCommand command = CliCommand::kHelp;
  std::string node;    // cache node gRPC target "HOST:PORT"; set for node commands
  std::string router;  // router gRPC target "HOST:PORT"; set for router commands
  // put/get/lookup: the node's same-node shared-memory socket (--local PATH), used instead of
  // gRPC; `node` is then empty.
  std::string local;
  OutputFormat output = OutputFormat::kText;
  absl::Duration timeout = absl::Seconds(30);
  // Namespace commands (put, get, lookup, delete, register-namespace, route, locate).
  std::string namespace_name;
  common::NamespaceId namespace_id = 0;   // common::NamespaceIdOf(namespace_name)
  std::vector<common::ChainHash> hashes;  // exactly one for put and get
  std::vector<uint32_t> token_ids;        // route and locate: the chain as tokens, not hashes
  std::string file;                       // put: the payload file
  std::string out;                        // get: destination path, "-" for stdout
  uint32_t chain_position = 0;            // put
  bool from_gpu = false;                  // put
  // route: proto defaults (empty, 0) leave the choice to the router.
  std::string session_key;
  std::string request_id;
  std::string policy;
  uint32_t block_tokens = 0;   // also locate
  uint32_t prompt_tokens = 0;  // also report-outcome
  // report-outcome
  uint64_t decision_id = 0;
  double ttft_ms = 0;
  uint32_t cached_tokens = 0;
  // experiment set: the traffic split, e.g. "locality=50,round_robin=50"
  std::string experiment_spec;
  // Transport security (--tls, --cacert, --cert, --key); the token itself is read by main() from
  // token_file or the environment, never from argv.
  common::ChannelSecurityOptions security;
  std::string token_file;
  // stats --watch INTERVAL [--count N]: repeat; count 0 means until interrupted.
  absl::Duration watch = absl::ZeroDuration();
  uint32_t count = 0;
  // kHelp for one command (`strata stats --help`): its name; empty for the whole text.
  std::string help_topic;
};

// The command's name as typed ("register-namespace", "experiment set").
std::string_view CliCommandName(CliCommand command);

// True for the commands that talk to the router (args.router), false for those that talk to a
// cache node (args.node) and for kHelp.
bool IsRouterCommand(CliCommand command);

// Parses the arguments after the program name. --help/-h (or the command `help`) anywhere yields
// kHelp and ignores everything else. InvalidArgument (one line) for an unknown command or flag, a
// flag that does not apply to the command, a missing required flag, a malformed value, hash or
// namespace name.
absl::StatusOr<CliArgs> ParseCliArgs(std::span<const std::string_view> args);

// Parses "HEX64,HEX64,..." (whitespace around entries allowed). InvalidArgument naming the bad
// entry.
absl::StatusOr<std::vector<common::ChainHash>> ParseHashList(std::string_view list);

// The text `strata --help` prints.
std::string_view CliUsage();

// The text `strata COMMAND --help` prints: that command's lines of CliUsage(), then the global
// flags and exit codes.
std::string CliCommandUsage(std::string_view command);

}  // namespace strata::clients
