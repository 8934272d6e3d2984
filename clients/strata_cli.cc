// The `strata` command-line client: argv -> CliArgs -> CacheNodeClient or RouterClient -> one
// command -> exit code.
// See CliUsage() (cli_args.cc) for the commands, flags and exit codes.
#include <grpc/support/log.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string_view>
#include <vector>

#include "clients/cache_node_client.h"
#include "clients/cli_args.h"
#include "clients/cli_commands.h"
#include "clients/local_client.h"
#include "clients/router_client.h"
#include "absl/time/clock.h"
#include "common/grpc_security.h"

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
strata::clients::CliOutcome Run(const strata::clients::CliArgs& args,
                                const strata::common::ChannelSecurityOptions& security) {
  namespace clients = strata::clients;
  if (clients::IsRouterCommand(args.command)) {
    clients::RouterClientOptions options;
    options.deadline = args.timeout;
    options.security = security;
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
  options.security = security;
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
    if (parsed->help_topic.empty()) {
      std::cout << clients::CliUsage();
    } else {
      std::cout << clients::CliCommandUsage(parsed->help_topic);
    }
    return clients::kExitOk;
  }
  // The token: from --token-file, else the environment; never from argv.
  strata::common::ChannelSecurityOptions security = parsed->security;
  if (!parsed->token_file.empty()) {
    absl::StatusOr<std::string> token = strata::common::ReadTokenFile(parsed->token_file);
    if (!token.ok()) {
      PrintError(std::string(token.status().message()));
      return clients::kExitUsage;
    }
    security.token = *token;
  } else if (const char* env = std::getenv("STRATA_TOKEN"); env != nullptr && *env != '\0') {
    if (!security.uses_tls()) {
      PrintError("STRATA_TOKEN is set but the connection is plaintext: add --tls or --cacert");
      return clients::kExitUsage;
    }
    security.token = env;
  }
  // The one stderr line on failure carries the RPC's status; gRPC's own logging would add more.
  gpr_set_log_function([](gpr_log_func_args*) {});

  // stats --watch: one report per interval, `count` times or until interrupted (SIGINT ends it).
  for (uint32_t round = 1;; ++round) {
    const clients::CliOutcome outcome = Run(*parsed, security);
    std::cout.flush();
    if (outcome.exit_code != clients::kExitOk) {
      PrintError(outcome.error);
      return outcome.exit_code;
    }
    if (parsed->watch <= absl::ZeroDuration() || round == parsed->count) return clients::kExitOk;
    if (parsed->output == clients::OutputFormat::kText) std::cout << "\n";
    absl::SleepFor(parsed->watch);
  }
}
