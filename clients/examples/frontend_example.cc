// strata-example-frontend: the loop a Dynamo-style frontend runs around Strata, in C++.
//
// For each request: hash the prompt's tokens into chain hashes (the same helper the router uses),
// ask the router which node to serve it on, read the prefix that node already holds, store the
// blocks it lacks (a real frontend's engine would compute their KV; here they are stand-in bytes),
// and report the outcome so the router's experiment sees it. No model runs: the reported time to
// first token is this loop's own wall time, and the program says so.
//
//   strata-example-frontend --router HOST:PORT [--cacert CA.pem [--cert C.pem --key K.pem]]
//       [--token-file FILE] [--namespace default] [--requests 3] [--block-tokens 16]
//
// The token comes from --token-file or the environment variable STRATA_TOKEN, never argv.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "clients/cache_node_client.h"
#include "clients/router_client.h"
#include "common/block_hash.h"
#include "common/grpc_security.h"
#include "common/namespace_id.h"

namespace {

using strata::clients::CacheNodeClient;
using strata::clients::RouterClient;

struct Args {
  std::string router;
  std::string namespace_name = "default";
  int requests = 3;
  uint32_t block_tokens = 16;
  strata::common::ChannelSecurityOptions security;
};

constexpr char kUsage[] =
    "usage: strata-example-frontend --router HOST:PORT [--cacert F [--cert F --key F]]\n"
    "           [--token-file F] [--namespace NS] [--requests N] [--block-tokens N]\n"
    "Routes N requests that share a system prompt, reads each one's cached prefix from the node\n"
    "the router chose, stores the missing blocks (stand-in bytes: no model runs) and reports the\n"
    "outcome. The token comes from --token-file or STRATA_TOKEN.\n";

int Usage(const std::string& why) {
  std::cerr << "strata-example-frontend: " << why << "\n" << kUsage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  std::string token_file;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (i + 1 >= argc) return Usage(flag + " needs a value");
    const std::string value = argv[++i];
    if (flag == "--router") a.router = value;
    else if (flag == "--cacert") a.security.ca_file = value;
    else if (flag == "--cert") a.security.cert_file = value;
    else if (flag == "--key") a.security.key_file = value;
    else if (flag == "--token-file") token_file = value;
    else if (flag == "--namespace") a.namespace_name = value;
    else if (flag == "--requests" && absl::SimpleAtoi(value, &a.requests) && a.requests > 0) {}
    else if (flag == "--block-tokens" && absl::SimpleAtoi(value, &a.block_tokens) &&
             a.block_tokens > 0) {}
    else return Usage("bad flag or value: " + flag + " " + value);
  }
  if (a.router.empty()) return Usage("--router is required");
  if (!token_file.empty()) {
    auto token = strata::common::ReadTokenFile(token_file);
    if (!token.ok()) return Usage(std::string(token.status().message()));
    a.security.token = *token;
  } else if (const char* env = std::getenv("STRATA_TOKEN"); env != nullptr) {
    a.security.token = env;
  }

  strata::clients::RouterClientOptions router_options;
  router_options.security = a.security;
  auto router = RouterClient::Connect(a.router, router_options);
  if (!router.ok()) return Usage(std::string(router.status().message()));
  const strata::common::NamespaceId ns = strata::common::NamespaceIdOf(a.namespace_name);
  std::cout << "no model runs here: payloads are stand-in bytes, TTFT is this loop's wall time\n";

  // Every request shares a 4-block system prompt, then adds 2 blocks of its own.
  std::vector<uint32_t> system_prompt(4 * a.block_tokens);
  for (size_t i = 0; i < system_prompt.size(); ++i) system_prompt[i] = 100 + i;
  for (int r = 0; r < a.requests; ++r) {
    const absl::Time start = absl::Now();
    std::vector<uint32_t> tokens = system_prompt;
    for (uint32_t i = 0; i < 2 * a.block_tokens; ++i) tokens.push_back(50000 + r * 1000 + i);
    const std::vector<strata::common::ChainHash> chain =
        strata::common::HashChain(ns, "", tokens, a.block_tokens);

    strata::clients::RouteQuery query;
    query.namespace_name = a.namespace_name;
    query.chain_hashes = chain;
    query.prompt_tokens = static_cast<uint32_t>(tokens.size());
    auto route = (*router)->Route(query);
    if (!route.ok()) {
      std::cerr << "route: " << route.status() << "\n";
      return 1;
    }
    strata::clients::ClientOptions node_options;
    node_options.target = route->endpoint;
    node_options.security = a.security;
    auto node = CacheNodeClient::Connect(node_options);
    if (!node.ok()) {
      std::cerr << "node: " << node.status() << "\n";
      return 1;
    }
    auto cached = (*node)->Get(ns, chain, /*stop_at_first_miss=*/true);
    if (!cached.ok()) {
      std::cerr << "get: " << cached.status() << "\n";
      return 1;
    }
    size_t hits = 0;
    while (hits < cached->size() && (*cached)[hits].found) ++hits;
    // The engine would compute the KV of the missing blocks now; store stand-ins for them.
    const std::string payload(64 << 10, static_cast<char>('a' + r));
    std::vector<strata::clients::PutBlock> missing;
    for (size_t i = hits; i < chain.size(); ++i) {
      missing.push_back({chain[i], std::as_bytes(std::span(payload.data(), payload.size())),
                         static_cast<uint32_t>(i)});
    }
    if (!missing.empty()) {
      auto put = (*node)->Put(ns, missing);
      if (!put.ok()) {
        std::cerr << "put: " << put.status() << "\n";
        return 1;
      }
    }
    const double ttft_ms = absl::ToDoubleMilliseconds(absl::Now() - start);
    strata::clients::RouteOutcome outcome;
    outcome.decision_id = route->decision_id;
    outcome.ttft_ms = ttft_ms;
    outcome.prompt_tokens = static_cast<uint32_t>(tokens.size());
    outcome.cached_tokens = static_cast<uint32_t>(hits * a.block_tokens);
    if (absl::Status s = (*router)->ReportOutcome(outcome); !s.ok()) {
      std::cerr << "report-outcome: " << s << "\n";
      return 1;
    }
    std::cout << "request " << r << ": node " << route->node_id << " (" << route->policy
              << "), " << hits << " of " << chain.size() << " blocks cached, " << missing.size()
              << " stored, loop time " << ttft_ms << " ms\n";
  }
  return 0;
}
