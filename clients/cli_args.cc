#include "clients/cli_args.h"

#include <cmath>
#include <map>
#include <optional>
#include <type_traits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/namespace_id.h"
#include "common/status_macros.h"
#include "common/string_view_interop.h"

namespace strata::clients {

using common::Concat;
using common::ToAbsl;
using common::ToStd;

namespace {

constexpr std::string_view kUsage =
    R"(strata: command-line client of a Strata cache node (strata-cachenode) and router (strata-router).

Usage:
  strata --node HOST:PORT [global flags] COMMAND [command flags]      (cache node commands)
  strata --router HOST:PORT [global flags] COMMAND [command flags]    (router commands)
  strata --local PATH [global flags] put|get|lookup [command flags]   (same machine, shared memory)

Cache node commands (need --node, or --host/--port; put, get and lookup also take --local):
  put                 store one block from a file
                        --namespace NS --hash HEX64 --file F [--chain-position N] [--from-gpu]
  get                 read one block into a file (written atomically, only on success)
                        --namespace NS --hash HEX64 --out F      (--out - writes to stdout)
  lookup              show which prefix of a chain the node holds, and in which tiers
                        --namespace NS --hashes HEX64,HEX64,...
  delete              remove blocks from every tier
                        --namespace NS --hashes HEX64,...        (or --hash HEX64)
  stats               tier usage and counters
                        [--watch INTERVAL [--count N]]     (repeat every INTERVAL, N times or
                                                            until interrupted)
  register-namespace  make a namespace known to the node
                        --namespace NS
  namespaces          list the namespaces the node accepts
  sync                make every block the node acknowledged before this command durable:
                      written to its SSD tier and flushed, so it survives a crash of the node
                      (fails when the node has no SSD tier or the SSD tier cannot take them)

Router commands (need --router):
  route               ask the router which node should serve a request
                        --namespace NS CHAIN [--session KEY] [--request-id ID]
                        [--policy NAME] [--prompt-tokens N] [--block-tokens N]
  locate              show which nodes hold a prefix of a chain, and in which tiers, without
                      routing (no decision is made or counted)
                        --namespace NS CHAIN
  nodes               list the live nodes with their load and index size
  experiment report   per-policy figures of the running A/B experiment
  experiment set SPEC
                      replace the A/B traffic split; prints the new experiment's report
  report-outcome      report a routed request's measured time to first token
                        --decision-id N --ttft-ms X [--prompt-tokens N] [--cached-tokens N]

  help                print this text

Global flags:
  --node HOST:PORT    the cache node's gRPC address (or --host HOST [default 127.0.0.1] --port PORT)
  --router HOST:PORT  the router's gRPC address
  --local PATH        put, get and lookup through a node on this machine: its shared-memory
                      socket (strata-cachenode --local-socket PATH) instead of --node; payload
                      bytes go through the node's mapped DRAM arena, not a socket
                      (each command uses the one it needs and ignores the other)
  --output text|json  output format (default text); json prints one object per command
  --timeout DURATION  deadline of the whole command, e.g. 500ms, 30s, 2m (default 30s)
  --tls               connect with TLS, verifying the server with the system's roots
  --cacert FILE       ... or with this PEM CA bundle (implies --tls)
  --cert FILE         PEM client certificate for mutual TLS (with --key)
  --key FILE          PEM private key of --cert
  --token-file FILE   bearer token to send (first line of FILE; needs TLS); the environment
                      variable STRATA_TOKEN is read when this is not given. Secrets are never
                      taken on the command line.
  --help, -h          print this text and exit 0; `strata COMMAND --help` (or `strata help
                      COMMAND`) prints that command's part

Arguments:
  NS      namespace name: 1-128 characters of [A-Za-z0-9._:/-], e.g. llama3-8b/bf16/tp0/b16;
          its id is derived from the name, so both sides agree without asking
  HEX64   a 32-byte chain hash as 64 hex characters
  CHAIN   the request's blocks: --hashes HEX64,... (chain hashes in order), or
          --tokens T,T,... [--block-tokens N] (token ids the router hashes into blocks of N
          tokens, default: its cost model's; chains stored with a cache salt need --hashes)
  NAME    a routing policy: locality, round_robin, random, least_loaded, consistent_hash
  SPEC    an A/B split NAME=WEIGHT,... (e.g. locality=90,round_robin=10), or one NAME
  T       a token id: a decimal integer below 2^32
  N       a decimal integer; the decision id is the one `route` printed
  X       milliseconds, a non-negative decimal number such as 12.5
  Flags take their value as "--flag value" or "--flag=value", before or after the command.
  Omitted route flags leave the choice to the router (session: the request id; request id:
  derived from the hashes; policy: the experiment's split; block tokens: its default).

Exit codes:
  0  success
  1  error (RPC failure: its gRPC code name and message are printed, or a local I/O error);
     e.g. route with no live node (UNAVAILABLE), report-outcome of an unknown decision (NOT_FOUND)
  2  usage error: bad or missing flag, malformed hash, bad namespace name, unreadable input file
  3  get: the block is not on the node (absent, or its stored copy failed its checksum)
On failure exactly one line is printed on stderr.
)";

enum FlagBit : uint32_t {
  kPutBit = 1u << 0,
  kGetBit = 1u << 1,
  kLookupBit = 1u << 2,
  kDeleteBit = 1u << 3,
  kStatsBit = 1u << 4,
  kRegisterBit = 1u << 5,
  kNamespacesBit = 1u << 6,
  kRouteBit = 1u << 7,
  kNodesBit = 1u << 8,
  kExperimentReportBit = 1u << 9,
  kExperimentSetBit = 1u << 10,
  kReportOutcomeBit = 1u << 11,
  kLocateBit = 1u << 12,
  kSyncBit = 1u << 13,
  kAllBits = (1u << 14) - 1,
  kChainBits = kRouteBit | kLocateBit,  // commands that take a chain as hashes or tokens
};

struct FlagSpec {
  std::string_view name;
  bool takes_value;
  uint32_t commands;  // FlagBit mask of the commands it applies to
};

constexpr FlagSpec kFlags[] = {
    {"node", true, kAllBits},
    {"host", true, kAllBits},
    {"port", true, kAllBits},
    {"router", true, kAllBits},
    {"local", true, kPutBit | kGetBit | kLookupBit},
    {"output", true, kAllBits},
    {"timeout", true, kAllBits},
    {"tls", false, kAllBits},
    {"cacert", true, kAllBits},
    {"cert", true, kAllBits},
    {"key", true, kAllBits},
    {"token-file", true, kAllBits},
    {"watch", true, kStatsBit},
    {"count", true, kStatsBit},
    {"namespace", true, kPutBit | kGetBit | kLookupBit | kDeleteBit | kRegisterBit | kChainBits},
    {"hash", true, kPutBit | kGetBit | kLookupBit | kDeleteBit | kChainBits},
    {"hashes", true, kLookupBit | kDeleteBit | kChainBits},
    {"tokens", true, kChainBits},
    {"file", true, kPutBit},
    {"out", true, kGetBit},
    {"chain-position", true, kPutBit},
    {"from-gpu", false, kPutBit},
    {"session", true, kRouteBit},
    {"request-id", true, kRouteBit},
    {"policy", true, kRouteBit},
    {"block-tokens", true, kChainBits},
    {"prompt-tokens", true, kRouteBit | kReportOutcomeBit},
    {"decision-id", true, kReportOutcomeBit},
    {"ttft-ms", true, kReportOutcomeBit},
    {"cached-tokens", true, kReportOutcomeBit},
};

// A command is one word, or a group and a subcommand ("experiment set"). `operand` describes the
// one positional argument the command takes after its name; empty when it takes none.
struct CommandSpec {
  std::string_view name;
  CliCommand command;
  uint32_t bit;
  bool router = false;
  std::string_view operand = {};
};

constexpr CommandSpec kCommands[] = {
    {"put", CliCommand::kPut, kPutBit},
    {"get", CliCommand::kGet, kGetBit},
    {"lookup", CliCommand::kLookup, kLookupBit},
    {"delete", CliCommand::kDelete, kDeleteBit},
    {"stats", CliCommand::kStats, kStatsBit},
    {"register-namespace", CliCommand::kRegisterNamespace, kRegisterBit},
    {"namespaces", CliCommand::kNamespaces, kNamespacesBit},
    {"sync", CliCommand::kSync, kSyncBit},
    {"route", CliCommand::kRoute, kRouteBit, true},
    {"locate", CliCommand::kLocate, kLocateBit, true},
    {"nodes", CliCommand::kNodes, kNodesBit, true},
    {"experiment report", CliCommand::kExperimentReport, kExperimentReportBit, true},
    {"experiment set", CliCommand::kExperimentSet, kExperimentSetBit, true,
     "SPEC (e.g. locality=50,round_robin=50)"},
    {"report-outcome", CliCommand::kReportOutcome, kReportOutcomeBit, true},
};

const FlagSpec* FindFlag(std::string_view name) {
  for (const FlagSpec& flag : kFlags) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

absl::Status Usage(std::string_view message) { return absl::InvalidArgumentError(ToAbsl(message)); }

// Values of the flags given, by name. --hash and --hashes may repeat (they accumulate); any other
// flag given twice is an error, since the second would silently win.
using FlagValues = std::map<std::string_view, std::vector<std::string_view>>;

absl::StatusOr<std::string> ParseNode(const FlagValues& flags) {
  const bool has_node = flags.contains("node");
  const bool has_host = flags.contains("host");
  const bool has_port = flags.contains("port");
  if (has_node && (has_host || has_port)) {
    return Usage("give either --node HOST:PORT or --host/--port, not both");
  }
  if (has_node) {
    std::string_view node = flags.at("node").front();
    if (node.empty()) return Usage("--node is empty");
    return std::string(node);
  }
  if (!has_port) return Usage("--node HOST:PORT is required");
  std::string_view port_text = flags.at("port").front();
  int port = 0;
  if (!absl::SimpleAtoi(ToAbsl(port_text), &port) || port < 1 || port > 65535) {
    return Usage(Concat("--port '", port_text, "' is not a port number (1-65535)"));
  }
  std::string host = has_host ? std::string(flags.at("host").front()) : "127.0.0.1";
  if (host.empty()) return Usage("--host is empty");
  // A bare IPv6 address needs brackets in a gRPC target.
  if (host.find(':') != std::string::npos && host.front() != '[') host = Concat("[", host, "]");
  return Concat(host, ":", port);
}

// Sets the target the command talks to; the other one is checked when given, then ignored.
absl::Status ParseTargets(const FlagValues& flags, CliArgs& args) {
  const bool has_node = flags.contains("node") || flags.contains("host") || flags.contains("port");
  const bool has_router = flags.contains("router");
  const std::string_view cmd = CliCommandName(args.command);
  if (has_router && flags.at("router").front().empty()) return Usage("--router is empty");
  if (IsRouterCommand(args.command)) {
    if (!has_router) {
      return Usage(has_node ? Concat("--router HOST:PORT is required (", cmd,
                                     " talks to the router; --node names a cache node)")
                            : std::string("--router HOST:PORT is required"));
    }
    args.router = std::string(flags.at("router").front());
    if (has_node) STRATA_RETURN_IF_ERROR(ParseNode(flags).status());
    return absl::OkStatus();
  }
  if (flags.contains("local")) {
    if (has_node) return Usage("give either --local PATH or --node HOST:PORT, not both");
    args.local = std::string(flags.at("local").front());
    if (args.local.empty()) return Usage("--local is empty");
    return absl::OkStatus();
  }
  if (!has_node && has_router) {
    return Usage(Concat("--node HOST:PORT is required (", cmd,
                        " talks to a cache node; --router names the router)"));
  }
  STRATA_ASSIGN_OR_RETURN(args.node, ParseNode(flags));
  return absl::OkStatus();
}

// Parses flag `name` into `out` when given: an integer in the range of T, or a finite, non-negative
// floating-point number.
template <typename T>
absl::Status ParseNumber(const FlagValues& flags, std::string_view name, std::string_view what,
                         T& out) {
  auto it = flags.find(name);
  if (it == flags.end()) return absl::OkStatus();
  const std::string_view v = it->second.front();
  bool ok = false;
  if constexpr (std::is_floating_point_v<T>) {
    ok = absl::SimpleAtod(ToAbsl(v), &out) && std::isfinite(out) && out >= 0;
  } else {
    ok = absl::SimpleAtoi(ToAbsl(v), &out);
  }
  if (!ok) return Usage(Concat("--", name, " '", v, "' is not ", what));
  return absl::OkStatus();
}

std::string StringFlag(const FlagValues& flags, std::string_view name) {
  auto it = flags.find(name);
  return it == flags.end() ? std::string() : std::string(it->second.front());
}

// Parses "T,T,..." (whitespace around entries allowed) into 32-bit token ids.
absl::StatusOr<std::vector<uint32_t>> ParseTokenList(std::string_view list) {
  std::vector<uint32_t> tokens;
  int position = 0;
  for (absl::string_view piece : absl::StrSplit(ToAbsl(list), ',')) {
    ++position;
    const absl::string_view entry = absl::StripAsciiWhitespace(piece);
    uint32_t token = 0;
    if (!absl::SimpleAtoi(entry, &token)) {
      return Usage(Concat("--tokens: entry ", position, " '", ToStd(entry),
                          "' is not a token id (a non-negative 32-bit integer)"));
    }
    tokens.push_back(token);
  }
  return tokens;
}

absl::Status ParseRouterFlags(const FlagValues& flags, CliArgs& args) {
  constexpr std::string_view kUint32 = "a non-negative 32-bit integer";
  args.session_key = StringFlag(flags, "session");
  args.request_id = StringFlag(flags, "request-id");
  args.policy = StringFlag(flags, "policy");
  if (auto it = flags.find("tokens"); it != flags.end()) {
    STRATA_ASSIGN_OR_RETURN(args.token_ids, ParseTokenList(it->second.front()));
  }
  STRATA_RETURN_IF_ERROR(ParseNumber(flags, "block-tokens", kUint32, args.block_tokens));
  STRATA_RETURN_IF_ERROR(ParseNumber(flags, "prompt-tokens", kUint32, args.prompt_tokens));
  STRATA_RETURN_IF_ERROR(ParseNumber(flags, "cached-tokens", kUint32, args.cached_tokens));
  STRATA_RETURN_IF_ERROR(ParseNumber(flags, "decision-id", "a decision id (a non-negative integer)",
                                     args.decision_id));
  return ParseNumber(flags, "ttft-ms", "a non-negative number of milliseconds", args.ttft_ms);
}

absl::Status ParseFlagValues(const FlagValues& flags, CliArgs& args) {
  STRATA_RETURN_IF_ERROR(ParseTargets(flags, args));
  if (auto it = flags.find("output"); it != flags.end()) {
    const std::string_view v = it->second.front();
    if (v == "text") {
      args.output = OutputFormat::kText;
    } else if (v == "json") {
      args.output = OutputFormat::kJson;
    } else {
      return Usage(Concat("--output must be text or json, got '", v, "'"));
    }
  }
  if (auto it = flags.find("timeout"); it != flags.end()) {
    const std::string_view v = it->second.front();
    if (!absl::ParseDuration(ToAbsl(v), &args.timeout) || args.timeout <= absl::ZeroDuration()) {
      return Usage(Concat("--timeout '", v, "' is not a positive duration such as 30s or 500ms"));
    }
  }
  if (auto it = flags.find("namespace"); it != flags.end()) {
    args.namespace_name = std::string(it->second.front());
    if (absl::Status s = common::ValidateNamespaceName(args.namespace_name); !s.ok()) {
      return Usage(Concat("--namespace: ", s.message()));
    }
    args.namespace_id = common::NamespaceIdOf(args.namespace_name);
  }
  for (std::string_view name : {std::string_view("hash"), std::string_view("hashes")}) {
    auto it = flags.find(name);
    if (it == flags.end()) continue;
    for (std::string_view v : it->second) {
      // A single hash gets the plain message ("must be 64 hex characters"), not a list position.
      absl::StatusOr<std::vector<common::ChainHash>> hashes;
      if (v.find(',') == std::string_view::npos) {
        absl::StatusOr<common::ChainHash> one =
            common::ChainHash::FromHex(ToStd(absl::StripAsciiWhitespace(ToAbsl(v))));
        if (one.ok()) {
          hashes = std::vector<common::ChainHash>{*one};
        } else {
          hashes = one.status();
        }
      } else {
        hashes = ParseHashList(v);
      }
      if (!hashes.ok()) return Usage(Concat("--", name, ": ", hashes.status().message()));
      args.hashes.insert(args.hashes.end(), hashes->begin(), hashes->end());
    }
  }
  if (auto it = flags.find("tls"); it != flags.end()) {
    const std::string_view v = it->second.front();
    if (!v.empty() && v != "true" && v != "1") {
      return Usage(Concat("--tls takes no value, got '", v, "'"));
    }
    args.security.tls = true;
  }
  args.security.ca_file = StringFlag(flags, "cacert");
  args.security.cert_file = StringFlag(flags, "cert");
  args.security.key_file = StringFlag(flags, "key");
  args.token_file = StringFlag(flags, "token-file");
  if (flags.contains("token-file") && args.token_file.empty()) return Usage("--token-file is empty");
  if (absl::Status s = args.security.Validate(); !s.ok()) return Usage(ToStd(s.message()));
  if (!args.token_file.empty() && !args.security.uses_tls()) {
    return Usage("--token-file needs TLS (--tls or --cacert): a token would travel in the clear");
  }
  if (auto it = flags.find("watch"); it != flags.end()) {
    const std::string_view v = it->second.front();
    if (!absl::ParseDuration(ToAbsl(v), &args.watch) || args.watch <= absl::ZeroDuration()) {
      return Usage(Concat("--watch '", v, "' is not a positive duration such as 2s"));
    }
  }
  STRATA_RETURN_IF_ERROR(ParseNumber(flags, "count", "a non-negative 32-bit integer", args.count));
  if (flags.contains("count") && !flags.contains("watch")) return Usage("--count needs --watch");
  args.file = StringFlag(flags, "file");
  args.out = StringFlag(flags, "out");
  STRATA_RETURN_IF_ERROR(
      ParseNumber(flags, "chain-position", "a non-negative 32-bit integer", args.chain_position));
  if (auto it = flags.find("from-gpu"); it != flags.end()) {
    const std::string_view v = it->second.front();
    if (v.empty() || v == "true" || v == "1") {
      args.from_gpu = true;
    } else if (v == "false" || v == "0") {
      args.from_gpu = false;
    } else {
      return Usage(Concat("--from-gpu takes no value (or true/false), got '", v, "'"));
    }
  }
  return ParseRouterFlags(flags, args);
}

absl::Status CheckRequired(const FlagValues& flags, const CliArgs& args) {
  const std::string_view cmd = CliCommandName(args.command);
  auto require = [&](std::string_view flag) -> absl::Status {
    if (flags.contains(flag)) return absl::OkStatus();
    return Usage(Concat(cmd, " needs --", flag));
  };
  switch (args.command) {
    case CliCommand::kPut:
    case CliCommand::kGet:
      STRATA_RETURN_IF_ERROR(require("namespace"));
      STRATA_RETURN_IF_ERROR(require("hash"));
      if (args.hashes.size() != 1) {
        return Usage(Concat(cmd, " takes exactly one --hash, got ", args.hashes.size()));
      }
      STRATA_RETURN_IF_ERROR(require(args.command == CliCommand::kPut ? "file" : "out"));
      if (args.command == CliCommand::kPut && args.file.empty()) return Usage("--file is empty");
      if (args.command == CliCommand::kGet && args.out.empty()) return Usage("--out is empty");
      return absl::OkStatus();
    case CliCommand::kLookup:
    case CliCommand::kDelete:
      STRATA_RETURN_IF_ERROR(require("namespace"));
      if (args.hashes.empty()) return Usage(Concat(cmd, " needs --hashes HEX64,..."));
      return absl::OkStatus();
    case CliCommand::kRoute:
    case CliCommand::kLocate:
      STRATA_RETURN_IF_ERROR(require("namespace"));
      if (!args.hashes.empty() && !args.token_ids.empty()) {
        return Usage(Concat(cmd, " takes --hashes or --tokens, not both"));
      }
      if (args.hashes.empty() && args.token_ids.empty()) {
        return Usage(Concat(cmd, " needs --hashes HEX64,... or --tokens T,T,..."));
      }
      return absl::OkStatus();
    case CliCommand::kRegisterNamespace:
      return require("namespace");
    case CliCommand::kReportOutcome:
      STRATA_RETURN_IF_ERROR(require("decision-id"));
      return require("ttft-ms");
    case CliCommand::kStats:
    case CliCommand::kNamespaces:
    case CliCommand::kSync:
    case CliCommand::kNodes:
    case CliCommand::kExperimentReport:
    case CliCommand::kExperimentSet:  // its SPEC operand is checked with the command words
    case CliCommand::kHelp:
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

struct CommandMatch {
  const CommandSpec* spec;
  size_t words;  // how many of the words name the command: 1, or 2 for a group's subcommand
};

absl::StatusOr<CommandMatch> MatchCommand(std::span<const std::string_view> words) {
  if (words.empty()) return Usage("no command given");
  std::vector<std::string_view> subcommands;  // of the group words[0] names, if it names one
  for (const CommandSpec& spec : kCommands) {
    const size_t space = spec.name.find(' ');
    if (space == std::string_view::npos) {
      if (spec.name == words[0]) return CommandMatch{&spec, 1};
      continue;
    }
    if (spec.name.substr(0, space) != words[0]) continue;
    const std::string_view sub = spec.name.substr(space + 1);
    if (words.size() > 1 && words[1] == sub) return CommandMatch{&spec, 2};
    subcommands.push_back(sub);
  }
  if (subcommands.empty()) return Usage(Concat("unknown command '", words[0], "'"));
  const std::string choices = absl::StrJoin(
      subcommands, " or ", [](std::string* out, auto sub) { absl::StrAppend(out, ToAbsl(sub)); });
  if (words.size() < 2) return Usage(Concat(words[0], " needs a subcommand: ", choices));
  return Usage(Concat("unknown ", words[0], " subcommand '", words[1], "' (", choices, ")"));
}

}  // namespace

std::string_view CliCommandName(CliCommand command) {
  for (const CommandSpec& spec : kCommands) {
    if (spec.command == command) return spec.name;
  }
  return "help";
}

bool IsRouterCommand(CliCommand command) {
  for (const CommandSpec& spec : kCommands) {
    if (spec.command == command) return spec.router;
  }
  return false;
}

std::string_view CliUsage() { return kUsage; }

std::string CliCommandUsage(std::string_view command) {
  // The command's own lines of the usage text (its line and the indented lines under it), then
  // the global flags and exit codes, so the one text stays the single source.
  const std::string_view usage = kUsage;
  std::string out = Concat("strata ", command, " (strata --help lists every command)\n\n");
  bool in_command = false;
  size_t pos = 0;
  while (pos < usage.size()) {
    size_t end = usage.find('\n', pos);
    if (end == std::string_view::npos) end = usage.size();
    const std::string_view line = usage.substr(pos, end - pos);
    pos = end + 1;
    const bool command_line = line.size() > 2 && line.substr(0, 2) == "  " && line[2] != ' ';
    if (command_line) {
      const std::string_view rest = line.substr(2);
      in_command = rest.starts_with(command) &&
                   (rest.size() == command.size() || rest[command.size()] == ' ');
    } else if (!line.starts_with("    ")) {
      in_command = false;
    }
    if (in_command) absl::StrAppend(&out, ToAbsl(line), "\n");
  }
  const size_t global = usage.find("Global flags:");
  absl::StrAppend(&out, "\n", ToAbsl(usage.substr(global)));
  return out;
}

absl::StatusOr<std::vector<common::ChainHash>> ParseHashList(std::string_view list) {
  std::vector<common::ChainHash> hashes;
  int position = 0;
  for (absl::string_view piece : absl::StrSplit(ToAbsl(list), ',')) {
    ++position;
    const std::string_view entry = ToStd(absl::StripAsciiWhitespace(piece));
    if (entry.empty()) {
      return absl::InvalidArgumentError(Concat("entry ", position, " of the hash list is empty"));
    }
    absl::StatusOr<common::ChainHash> hash = common::ChainHash::FromHex(entry);
    if (!hash.ok()) {
      return absl::InvalidArgumentError(
          Concat("entry ", position, " '", entry, "': ", hash.status().message()));
    }
    hashes.push_back(*hash);
  }
  return hashes;
}

absl::StatusOr<CliArgs> ParseCliArgs(std::span<const std::string_view> args) {
  for (std::string_view arg : args) {
    if (arg == "--help" || arg == "-h" || arg == "-help" || arg == "help") {
      // The words that are not flags name the command whose help is wanted, if any.
      std::vector<std::string_view> words;
      for (std::string_view a : args) {
        if (!a.starts_with("-") && a != "help") words.push_back(a);
      }
      CliArgs help;
      if (!words.empty()) {
        absl::StatusOr<CommandMatch> match = MatchCommand(words);
        if (match.ok()) help.help_topic = match->spec->name;
      }
      return help;
    }
  }
  FlagValues flags;
  std::vector<std::string_view> words;  // the command's words and operand, in order
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (arg.size() < 2 || arg[0] != '-') {
      words.push_back(arg);
      continue;
    }
    std::string_view body = arg.substr(arg[1] == '-' ? 2 : 1);
    std::optional<std::string_view> value;
    if (size_t eq = body.find('='); eq != std::string_view::npos) {
      value = body.substr(eq + 1);
      body = body.substr(0, eq);
    }
    const FlagSpec* spec = FindFlag(body);
    if (spec == nullptr) return Usage(Concat("unknown flag '", arg, "'"));
    if (spec->takes_value && !value.has_value()) {
      // "--namespace --hash X" is a forgotten value, not a namespace named "--hash"; such a value
      // can still be given as --namespace=--hash.
      if (i + 1 >= args.size() || args[i + 1].starts_with("--")) {
        return Usage(Concat("--", spec->name, " needs a value"));
      }
      value = args[++i];
    }
    std::vector<std::string_view>& slot = flags[spec->name];
    if (!slot.empty() && spec->name != "hash" && spec->name != "hashes") {
      return Usage(Concat("--", spec->name, " is given twice"));
    }
    slot.push_back(value.value_or(""));
  }
  STRATA_ASSIGN_OR_RETURN(const CommandMatch match, MatchCommand(words));
  const CommandSpec* command = match.spec;
  const size_t operands = command->operand.empty() ? 0 : 1;
  if (words.size() > match.words + operands) {
    return Usage(Concat("unexpected argument '", words[match.words + operands], "' after command '",
                        command->name, "'"));
  }
  if (words.size() < match.words + operands) {
    return Usage(Concat(command->name, " needs ", command->operand));
  }
  for (const auto& [name, values] : flags) {
    if ((FindFlag(name)->commands & command->bit) == 0) {
      return Usage(Concat("--", name, " does not apply to ", command->name));
    }
  }
  CliArgs parsed;
  parsed.command = command->command;
  if (command->command == CliCommand::kExperimentSet) {
    parsed.experiment_spec = std::string(words[match.words]);
  }
  STRATA_RETURN_IF_ERROR(ParseFlagValues(flags, parsed));
  STRATA_RETURN_IF_ERROR(CheckRequired(flags, parsed));
  return parsed;
}

}  // namespace strata::clients
