#include "cachenode/namespace_registry.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/namespace_id.h"
#include "common/status_macros.h"

namespace strata::cachenode {

absl::StatusOr<std::unique_ptr<NamespaceRegistry>> NamespaceRegistry::Open(
    std::string path, const std::vector<std::string>& initial) {
  std::unique_ptr<NamespaceRegistry> r(new NamespaceRegistry(std::move(path)));
  absl::MutexLock lock(&r->mu_);
  if (!r->path_.empty()) {
    std::ifstream in(r->path_);
    std::string line;
    while (in && std::getline(in, line)) {
      if (line.empty()) continue;
      if (!common::ValidateNamespaceName(line).ok())
        continue;  // skip a damaged line, keep the rest
      r->names_[common::NamespaceIdOf(line)] = line;
    }
  }
  for (const std::string& name : initial) {
    STRATA_RETURN_IF_ERROR(common::ValidateNamespaceName(name));
    r->names_[common::NamespaceIdOf(name)] = name;
  }
  STRATA_RETURN_IF_ERROR(r->PersistLocked());
  return r;
}

absl::StatusOr<std::pair<common::NamespaceId, bool>> NamespaceRegistry::Register(
    std::string_view name) {
  STRATA_RETURN_IF_ERROR(common::ValidateNamespaceName(name));
  const common::NamespaceId id = common::NamespaceIdOf(name);
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = names_.try_emplace(id, std::string(name));
  if (inserted) {
    if (absl::Status s = PersistLocked(); !s.ok()) {
      names_.erase(it);
      return s;
    }
  }
  return std::make_pair(id, inserted);
}

absl::Status NamespaceRegistry::Check(common::NamespaceId id) const {
  if (id == 0) return absl::InvalidArgumentError("namespace id is empty (0)");
  absl::MutexLock lock(&mu_);
  if (!names_.contains(id)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "unknown namespace id %016x: register the namespace with the node first", id));
  }
  return absl::OkStatus();
}

std::vector<std::pair<std::string, common::NamespaceId>> NamespaceRegistry::List() const {
  std::vector<std::pair<std::string, common::NamespaceId>> out;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, name] : names_) out.emplace_back(name, id);
  }
  std::sort(out.begin(), out.end());
  return out;
}

absl::Status NamespaceRegistry::PersistLocked() const {
  if (path_.empty()) return absl::OkStatus();
  std::string text;
  std::vector<std::string> sorted;
  for (const auto& [id, name] : names_) sorted.push_back(name);
  std::sort(sorted.begin(), sorted.end());
  for (const std::string& name : sorted) absl::StrAppend(&text, name, "\n");
  const std::string tmp = path_ + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write ", tmp, ": ", std::strerror(errno)));
  }
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path_.c_str()) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write ", path_, ": ", std::strerror(ok ? errno : err)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<common::ChainHash>> ParseRequestChain(
    const NamespaceRegistry* namespaces, common::NamespaceId ns,
    const google::protobuf::RepeatedPtrField<std::string>& hashes, uint32_t max_blocks) {
  if (namespaces != nullptr) {
    STRATA_RETURN_IF_ERROR(namespaces->Check(ns));
  } else if (ns == 0) {
    return absl::InvalidArgumentError("no namespace id given");
  }
  if (hashes.empty()) return absl::InvalidArgumentError("no chain hashes given");
  if (static_cast<uint32_t>(hashes.size()) > max_blocks) {
    return absl::InvalidArgumentError(
        absl::StrCat("request names ", hashes.size(), " blocks; the limit is ", max_blocks));
  }
  std::vector<common::ChainHash> chain;
  chain.reserve(hashes.size());
  for (int i = 0; i < hashes.size(); ++i) {
    auto h = common::ChainHash::FromBytes(hashes[i]);
    if (!h.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("chain_hashes[", i, "]: ", h.status().message()));
    }
    chain.push_back(*h);
  }
  return chain;
}

}  // namespace strata::cachenode
