// NamespaceRegistry: the namespaces a node accepts blocks for.
//
// A block is only stored or served under a namespace the node knows: one named on the command line
// or registered over RPC. Registrations persist in a small text file (one name per line, replaced
// atomically) so they survive restarts along with the SSD blocks. Thread-safe.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <google/protobuf/repeated_ptr_field.h>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/block_key.h"

namespace strata::cachenode {

class NamespaceRegistry {
 public:
  // Loads `path` when it exists (empty path: nothing persisted) and adds `initial` names.
  // InvalidArgument for a bad name; FailedPrecondition when the file cannot be read or written.
  static absl::StatusOr<std::unique_ptr<NamespaceRegistry>> Open(
      std::string path, const std::vector<std::string>& initial);

  // Registers a name; returns its id and whether it was new. InvalidArgument for a bad name.
  absl::StatusOr<std::pair<common::NamespaceId, bool>> Register(std::string_view name);

  // OK for a known id; InvalidArgument for id 0 (no namespace given); FailedPrecondition for an
  // unknown one (register it first).
  absl::Status Check(common::NamespaceId id) const;

  // (name, id) pairs sorted by name.
  std::vector<std::pair<std::string, common::NamespaceId>> List() const;

 private:
  explicit NamespaceRegistry(std::string path) : path_(std::move(path)) {}
  absl::Status PersistLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<common::NamespaceId, std::string> names_ ABSL_GUARDED_BY(mu_);
};

// Validates the chain a request names (the gRPC and shared-memory data planes share it): the
// namespace is registered (FailedPrecondition otherwise; `namespaces` null: any id but 0), there are
// 1 to max_blocks hashes, each exactly 32 bytes (InvalidArgument naming the first bad one).
absl::StatusOr<std::vector<common::ChainHash>> ParseRequestChain(
    const NamespaceRegistry* namespaces, common::NamespaceId ns,
    const google::protobuf::RepeatedPtrField<std::string>& hashes, uint32_t max_blocks);

}  // namespace strata::cachenode
