// The transport-security flags both servers take (--plaintext, --tls-cert, --tls-key,
// --tls-client-ca, --auth-tokens-file, --health-listen) and their reading into
// ServerSecurityOptions, the environment's STRATA_AUTH_TOKENS included. Linked only into the server
// binaries (library strata_server_flags): flags and the environment are read in executables alone.
#pragma once

#include <string>
#include <vector>

#include "common/grpc_security.h"

namespace strata::common {

// Underscore names, in display order, for CommandLineSpec::flags.
const std::vector<std::string>& ServerSecurityFlagNames();

// The options the flags and STRATA_AUTH_TOKENS describe (not yet validated).
ServerSecurityOptions ServerSecurityOptionsFromFlags();

// --health-listen: "" for none.
std::string HealthListenFromFlags();

}  // namespace strata::common
