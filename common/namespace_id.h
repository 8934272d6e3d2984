// Namespace names and ids.
//
// A namespace names what a block's bytes mean (model, dtype, KV layout, TP rank, block size), e.g.
// "llama3-8b/bf16/vllm-flash/tp0/b16". Its id is the first 8 bytes (big-endian) of
// SHA-256(tag "strata.namespace.v1", name): stable everywhere, so clients compute it without asking
// a node. Pure functions, thread-safe.
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "common/block_key.h"

namespace strata::common {

inline constexpr size_t kMaxNamespaceNameBytes = 128;

// OK when `name` is 1-128 characters of [A-Za-z0-9._:/-]; InvalidArgument naming the problem
// otherwise.
absl::Status ValidateNamespaceName(std::string_view name);

// The id of a namespace name. Call ValidateNamespaceName first; the id of an invalid name is
// meaningless.
NamespaceId NamespaceIdOf(std::string_view name);

}  // namespace strata::common
