#include "clients/cli_args.h"

#include <map>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
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
    R"(strata: command-line client of a Strata cache node (strata-cachenode).

Usage:
  strata --node HOST:PORT [global flags] COMMAND [command flags]

Commands:
  put                 store one block from a file
                        --namespace NS --hash HEX64 --file F [--chain-position N] [--from-gpu]
  get                 read one block into a file (written atomically, only on success)
                        --namespace NS --hash HEX64 --out F      (--out - writes to stdout)
  lookup              show which prefix of a chain the node holds, and in which tiers
                        --namespace NS --hashes HEX64,HEX64,...
  delete              remove blocks from every tier
                        --namespace NS --hashes HEX64,...        (or --hash HEX64)
  stats               tier usage and counters
  register-namespace  make a namespace known to the node
                        --namespace NS
  namespaces          list the namespaces the node accepts
  help                print this text

Global flags:
  --node HOST:PORT    the node's gRPC address (or --host HOST [default 127.0.0.1] --port PORT)
  --output text|json  output format (default text); json prints one object per command
  --timeout DURATION  deadline of the whole command, e.g. 500ms, 30s, 2m (default 30s)
  --help, -h          print this text and exit 0

Arguments:
  NS      namespace name: 1-128 characters of [A-Za-z0-9._:/-], e.g. llama3-8b/bf16/tp0/b16;
          its id is derived from the name, so both sides agree without asking
  HEX64   a 32-byte chain hash as 64 hex characters
  Flags take their value as "--flag value" or "--flag=value", before or after the command.

Exit codes:
  0  success
  1  error (RPC failure: its gRPC code name and message are printed, or a local I/O error)
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
  kAllBits = 0x7f,
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
    {"output", true, kAllBits},
    {"timeout", true, kAllBits},
    {"namespace", true, kPutBit | kGetBit | kLookupBit | kDeleteBit | kRegisterBit},
    {"hash", true, kPutBit | kGetBit | kLookupBit | kDeleteBit},
    {"hashes", true, kLookupBit | kDeleteBit},
    {"file", true, kPutBit},
    {"out", true, kGetBit},
    {"chain-position", true, kPutBit},
    {"from-gpu", false, kPutBit},
};

struct CommandSpec {
  std::string_view name;
  CliCommand command;
  uint32_t bit;
};

constexpr CommandSpec kCommands[] = {
    {"put", CliCommand::kPut, kPutBit},
    {"get", CliCommand::kGet, kGetBit},
    {"lookup", CliCommand::kLookup, kLookupBit},
    {"delete", CliCommand::kDelete, kDeleteBit},
    {"stats", CliCommand::kStats, kStatsBit},
    {"register-namespace", CliCommand::kRegisterNamespace, kRegisterBit},
    {"namespaces", CliCommand::kNamespaces, kNamespacesBit},
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

absl::Status ParseFlagValues(const FlagValues& flags, CliArgs& args) {
  STRATA_ASSIGN_OR_RETURN(args.node, ParseNode(flags));
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
  if (auto it = flags.find("file"); it != flags.end()) args.file = std::string(it->second.front());
  if (auto it = flags.find("out"); it != flags.end()) args.out = std::string(it->second.front());
  if (auto it = flags.find("chain-position"); it != flags.end()) {
    const std::string_view v = it->second.front();
    if (!absl::SimpleAtoi(ToAbsl(v), &args.chain_position)) {
      return Usage(Concat("--chain-position '", v, "' is not a non-negative 32-bit integer"));
    }
  }
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
  return absl::OkStatus();
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
    case CliCommand::kRegisterNamespace:
      return require("namespace");
    case CliCommand::kStats:
    case CliCommand::kNamespaces:
    case CliCommand::kHelp:
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

}  // namespace

std::string_view CliCommandName(CliCommand command) {
  for (const CommandSpec& spec : kCommands) {
    if (spec.command == command) return spec.name;
  }
  return "help";
}

std::string_view CliUsage() { return kUsage; }

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
    if (arg == "--help" || arg == "-h" || arg == "-help" || arg == "help") return CliArgs{};
  }
  FlagValues flags;
  std::optional<std::string_view> command_name;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (arg.size() < 2 || arg[0] != '-') {
      if (command_name.has_value()) {
        return Usage(Concat("unexpected argument '", arg, "' after command '", *command_name, "'"));
      }
      command_name = arg;
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
  if (!command_name.has_value()) return Usage("no command given");
  const CommandSpec* command = nullptr;
  for (const CommandSpec& spec : kCommands) {
    if (spec.name == *command_name) command = &spec;
  }
  if (command == nullptr) return Usage(Concat("unknown command '", *command_name, "'"));
  for (const auto& [name, values] : flags) {
    if ((FindFlag(name)->commands & command->bit) == 0) {
      return Usage(Concat("--", name, " does not apply to ", command->name));
    }
  }
  CliArgs parsed;
  parsed.command = command->command;
  STRATA_RETURN_IF_ERROR(ParseFlagValues(flags, parsed));
  STRATA_RETURN_IF_ERROR(CheckRequired(flags, parsed));
  return parsed;
}

}  // namespace strata::clients
