// The `strata` command-line client: argv -> CliArgs -> CacheNodeClient -> one command -> exit code.
// See CliUsage() (cli_args.cc) for the commands, flags and exit codes.
#include <grpc/support/log.h>

#include <cstdio>
#include <iostream>
#include <string_view>
#include <vector>

#include "clients/cache_node_client.h"
#include "clients/cli_args.h"
#include "clients/cli_commands.h"

namespace {

void PrintError(std::string_view line) {
  std::fprintf(stderr, "strata: %.*s\n", static_cast<int>(line.size()), line.data());
}

}  // namespace

int main(int argc, char** argv) {
  namespace clients = strata::clients;
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  absl::StatusOr<clients::CliArgs> parsed = clients::ParseCliArgs(args);
  if (!parsed.ok()) {
    PrintError(std::string(parsed.status().message()) + " (see strata --help)");
    return clients::kExitUsage;
  }
  if (parsed->command == clients::CliCommand::kHelp) {
    std::cout << clients::CliUsage();
    return clients::kExitOk;
  }
  // The one stderr line on failure carries the RPC's status; gRPC's own logging would add more.
  gpr_set_log_function([](gpr_log_func_args*) {});

  clients::ClientOptions options;
  options.target = parsed->node;
  options.deadline = parsed->timeout;
  absl::StatusOr<std::unique_ptr<clients::CacheNodeClient>> client =
      clients::CacheNodeClient::Connect(options);
  if (!client.ok()) {
    PrintError(std::string(client.status().message()));
    return clients::kExitUsage;
  }
  const clients::CliOutcome outcome =
      clients::RunCliCommand(*parsed, **client, std::cout, std::cerr);
  std::cout.flush();
  if (outcome.exit_code != clients::kExitOk) PrintError(outcome.error);
  return outcome.exit_code;
}
