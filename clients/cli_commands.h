// Runs one parsed `strata` CLI command against a cache node and decides its exit code.
//
// Output goes to the given streams; errors do not: they come back as one line for main() to print,
// so a failure always produces exactly one line on stderr. Not thread-safe (one command at a time).
#pragma once

#include <ostream>
#include <string>

#include "clients/cache_node_client.h"
#include "clients/cli_args.h"

namespace strata::clients {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;  // RPC failure or local I/O error
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

}  // namespace strata::clients
