// Runs one parsed `strata` CLI command against a cache node or the router and decides its exit
// code.
//
// Output goes to the given streams; errors do not: they come back as one line for main() to print,
// so a failure always produces exactly one line on stderr. Not thread-safe (one command at a time).
#pragma once

#include <ostream>
#include <string>

#include "clients/cache_node_client.h"
#include "clients/cli_args.h"
#include "clients/local_client.h"
#include "clients/router_client.h"

namespace strata::clients {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;  // RPC failure (e.g. no live node) or local I/O error
inline constexpr int kExitUsage = 2;  // bad flags, hash, namespace name, unreadable input file
inline constexpr int kExitMiss = 3;   // get: the block is absent (or its copy failed its checksum)

struct CliOutcome {
  int exit_code = kExitOk;
  std::string error;  // one line without the "strata: " prefix; empty on success
};

// Runs `args.command` (not kHelp). Results go to `out` in args.output format; `get --out -` writes
// the payload to `out` and its JSON summary (json mode only) to `err`. `get --out FILE` writes FILE
// through a temporary file and a rename, only when the whole block arrived and verified.
CliOutcome RunCliCommand(const CliArgs& args, CacheNodeClient& client, std::ostream& out,
                         std::ostream& err);

// Runs put, get or lookup (args.local set) through a node's shared-memory socket, with the same
// output and exit codes as RunCliCommand.
CliOutcome RunLocalCommand(const CliArgs& args, LocalClient& client, std::ostream& out,
                           std::ostream& err);

// Runs a router command (IsRouterCommand(args.command)); results go to `out` in args.output
// format. Router commands never exit kExitMiss: a route that matches nothing is still a route.
CliOutcome RunRouterCommand(const CliArgs& args, RouterClient& client, std::ostream& out);

}  // namespace strata::clients
