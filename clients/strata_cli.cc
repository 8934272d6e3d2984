// The `strata` command-line client: argv -> CliArgs -> CacheNodeClient or RouterClient -> one
// command -> exit code.
// See CliUsage() (cli_args.cc) for the commands, flags and exit codes.
#include <grpc/support/log.h>

#include <cstdio>
#include <iostream>
#include <string_view>
#include <vector>

#include "clients/cache_node_client.h"
#include "clients/cli_args.h"
#include "clients/cli_commands.h"
#include "clients/local_client.h"
#include "clients/router_client.h"

namespace {

void PrintError(std::string_view line) {
  std::fprintf(stderr, "strata: %.*s\n", static_cast<int>(line.size()), line.data());
}

// Runs `command` on the client, or reports why the client could not be made (a usage error: the
// target or the options were bad).
template <typename Client, typename Command>
strata::clients::CliOutcome RunWith(absl::StatusOr<std::unique_ptr<Client>> client,
                                    Command command) {
  if (!client.ok()) {
    return {strata::clients::kExitUsage, std::string(client.status().message())};
  }
  return command(**client);
}

// Connects to the service the command talks to and runs it; output goes to stdout (and, for
// `get --out -` in json mode, its summary to stderr).
strata::clients::CliOutcome Run(const strata::clients::CliArgs& args) {
  namespace clients = strata::clients;
  if (clients::IsRouterCommand(args.command)) {
    clients::RouterClientOptions options;
    options.deadline = args.timeout;
    return RunWith(clients::RouterClient::Connect(args.router, options),
                   [&](clients::RouterClient& client) {
                     return clients::RunRouterCommand(args, client, std::cout);
                   });
  }
  if (!args.local.empty()) {
    // A node that does not answer on the socket is a runtime failure (exit 1), not bad usage.
    absl::StatusOr<std::unique_ptr<clients::LocalClient>> local =
        clients::LocalClient::Connect(args.local);
    if (!local.ok()) {
      return {clients::kExitError,
              std::string(clients::CliCommandName(args.command)) + ": " +
                  std::string(local.status().message())};
    }
    return clients::RunLocalCommand(args, **local, std::cout, std::cerr);
  }
  clients::ClientOptions options;
  options.target = args.node;
  options.deadline = args.timeout;
  return RunWith(clients::CacheNodeClient::Connect(options), [&](clients::CacheNodeClient& client) {
    return clients::RunCliCommand(args, client, std::cout, std::cerr);
  });
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

  const clients::CliOutcome outcome = Run(*parsed);
  std::cout.flush();
  if (outcome.exit_code != clients::kExitOk) PrintError(outcome.error);
  return outcome.exit_code;
}
