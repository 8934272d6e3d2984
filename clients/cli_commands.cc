#include "clients/cli_commands.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "clients/cli_output.h"
#include "common/checksum.h"
#include "common/string_view_interop.h"

namespace strata::clients {

using common::Concat;
using common::ToAbsl;
using common::ToStd;

namespace {

namespace v1 = ::strata::v1;

CliOutcome Fail(int code, std::string_view command, std::string_view message) {
  // gRPC messages may span lines; the contract is one line on stderr.
  return CliOutcome{code, Concat(command, ": ",
                                 absl::StrReplaceAll(ToAbsl(message), {{"\r", " "}, {"\n", " "}}))};
}

CliOutcome RpcFail(std::string_view command, const absl::Status& status) {
  return Fail(kExitError, command,
              Concat(absl::StatusCodeToString(status.code()), ": ", status.message()));
}

CliOutcome Ok() { return CliOutcome{}; }

// The chain route and locate send, from the same flags.
void SetChain(const CliArgs& args, ChainQuery& chain) {
  chain.namespace_name = args.namespace_name;
  chain.chain_hashes = args.hashes;
  chain.token_ids = args.token_ids;
  chain.block_tokens = args.block_tokens;
}

std::string ErrnoText() { return std::strerror(errno); }

// Writes a file under a temporary name in the destination's directory and renames it into place on
// Commit, so readers never see a partial block and a failed get leaves no file behind.
class AtomicFileWriter {
 public:
  ~AtomicFileWriter() {
    if (fd_ >= 0) close(fd_);
    if (!temp_path_.empty()) unlink(temp_path_.c_str());
  }

  absl::Status Open(const std::string& path) {
    path_ = path;
    std::string temp = path + ".strata-tmp-XXXXXX";
    fd_ = mkstemp(temp.data());
    if (fd_ < 0)
      return absl::InvalidArgumentError(Concat("cannot write ", path, ": ", ErrnoText()));
    temp_path_ = temp;
    return absl::OkStatus();
  }

  void Append(std::string_view data) {
    while (error_.ok() && !data.empty()) {
      const ssize_t n = write(fd_, data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        error_ = absl::InternalError(Concat("writing ", temp_path_, ": ", ErrnoText()));
        return;
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
  }

  absl::Status Commit() {
    if (!error_.ok()) return error_;
    // mkstemp creates 0600; give the file the permissions a plain create would have.
    const mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd_, 0666 & ~mask) != 0 || fsync(fd_) != 0) {
      return absl::InternalError(Concat("writing ", temp_path_, ": ", ErrnoText()));
    }
    const int fd = fd_;
    fd_ = -1;
    if (close(fd) != 0)
      return absl::InternalError(Concat("closing ", temp_path_, ": ", ErrnoText()));
    if (rename(temp_path_.c_str(), path_.c_str()) != 0) {
      return absl::InternalError(Concat("renaming into ", path_, ": ", ErrnoText()));
    }
    temp_path_.clear();
    return absl::OkStatus();
  }

 private:
  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  absl::Status error_;
};

// One sized read: blocks are tens of MiB, so no per-character stream copying.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  auto fail = [&path](std::string_view why) {
    return absl::InvalidArgumentError(Concat("cannot read --file ", path, ": ", why));
  };
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(ErrnoText());
  struct stat st = {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const std::string why = S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file";
    close(fd);
    return fail(why);
  }
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = read(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = n < 0 ? ErrnoText() : "file shrank while being read";
      close(fd);
      return fail(why);
    }
    done += static_cast<size_t>(n);
  }
  close(fd);
  return data;
}

std::string MissText(const CliArgs& args, int miss_code) {
  const std::string where = Concat("ns ", args.namespace_name, " hash ", args.hashes[0].Hex());
  if (miss_code == static_cast<int>(absl::StatusCode::kDataLoss)) {
    return Concat("not found (the node's copy failed its checksum): ", where);
  }
  return Concat("not found: ", where);
}

CliOutcome RunPut(const CliArgs& args, CacheNodeClient& client, std::ostream& out) {
  absl::StatusOr<std::string> read = ReadWholeFile(args.file);
  if (!read.ok()) return Fail(kExitUsage, "put", ToStd(read.status().message()));
  const std::string& payload = *read;

  const PutBlock block{args.hashes[0], std::as_bytes(std::span(payload.data(), payload.size())),
                       args.chain_position, args.from_gpu};
  absl::StatusOr<std::vector<PutResult>> results = client.Put(args.namespace_id, {&block, 1});
  if (!results.ok()) return RpcFail("put", results.status());
  const PutResult& result = results->front();
  if (!result.status.ok()) return RpcFail("put", result.status);
  out << FormatPut(
      BlockSummary{args.hashes[0], result.tier, payload.size(), common::Checksum(payload), ""},
      args.output);
  return Ok();
}

CliOutcome RunGetToStdout(const CliArgs& args, CacheNodeClient& client, std::ostream& out,
                          std::ostream& err) {
  // Buffered, so nothing reaches stdout unless the whole block verified.
  absl::StatusOr<std::vector<GetResult>> results =
      client.Get(args.namespace_id, args.hashes, /*stop_at_first_miss=*/true);
  if (!results.ok()) return RpcFail("get", results.status());
  if (results->empty() || !results->front().found) {
    const int code = results->empty() ? 0 : static_cast<int>(results->front().miss.code());
    return Fail(kExitMiss, "get", MissText(args, code));
  }
  const GetResult& result = results->front();
  out.write(result.payload.data(), static_cast<std::streamsize>(result.payload.size()));
  out.flush();
  if (!out) return Fail(kExitError, "get", "writing the payload to stdout failed");
  if (args.output == OutputFormat::kJson) {
    err << FormatGet(BlockSummary{args.hashes[0], result.tier, result.payload.size(),
                                  common::Checksum(result.payload), "-"},
                     OutputFormat::kJson);
  }
  return Ok();
}

CliOutcome RunGet(const CliArgs& args, CacheNodeClient& client, std::ostream& out,
                  std::ostream& err) {
  if (args.out == "-") return RunGetToStdout(args, client, out, err);
  // The temporary file is created before the RPC: a bad --out path is a usage error, found early.
  AtomicFileWriter writer;
  if (absl::Status s = writer.Open(args.out); !s.ok())
    return Fail(kExitUsage, "get", ToStd(s.message()));
  std::optional<v1::GetBlockHeader> header;
  // Streams straight into the file: a 64 MiB block is never held in memory.
  absl::Status status = client.GetInto(
      args.namespace_id, args.hashes, /*stop_at_first_miss=*/true,
      [&header](const v1::GetBlockHeader& h) { header = h; },
      [&writer](uint32_t, std::string_view chunk) { writer.Append(chunk); });
  if (!status.ok()) return RpcFail("get", status);
  if (!header.has_value() || !header->found()) {
    return Fail(kExitMiss, "get", MissText(args, header.has_value() ? header->miss_code() : 0));
  }
  if (absl::Status s = writer.Commit(); !s.ok()) return Fail(kExitError, "get", ToStd(s.message()));
  out << FormatGet(BlockSummary{args.hashes[0], header->tier(), header->size_bytes(),
                                header->checksum(), args.out},
                   args.output);
  return Ok();
}

CliOutcome RunLocalPut(const CliArgs& args, LocalClient& client, std::ostream& out) {
  absl::StatusOr<std::string> read = ReadWholeFile(args.file);
  if (!read.ok()) return Fail(kExitUsage, "put", ToStd(read.status().message()));
  const std::string& payload = *read;
  if (payload.empty()) return Fail(kExitUsage, "put", Concat("--file ", args.file, " is empty"));
  const LocalPutBlock block{args.hashes[0],
                            std::as_bytes(std::span(payload.data(), payload.size())),
                            args.chain_position};
  absl::StatusOr<std::vector<LocalPutResult>> results = client.Put(args.namespace_id, {&block, 1});
  if (!results.ok()) return RpcFail("put", results.status());
  const LocalPutResult& result = results->front();
  if (!result.status.ok()) return RpcFail("put", result.status);
  out << FormatPut(
      BlockSummary{args.hashes[0], result.tier, payload.size(), common::Checksum(payload), ""},
      args.output);
  return Ok();
}

CliOutcome RunLocalGet(const CliArgs& args, LocalClient& client, std::ostream& out,
                       std::ostream& err) {
  // The temporary file is created before the request: a bad --out path is a usage error.
  AtomicFileWriter writer;
  if (args.out != "-") {
    if (absl::Status s = writer.Open(args.out); !s.ok()) {
      return Fail(kExitUsage, "get", ToStd(s.message()));
    }
  }
  // Verified while copied out of the arena (CopyTo), so no separate verification pass.
  absl::StatusOr<LocalRead> read =
      client.Get(args.namespace_id, args.hashes, /*stop_at_first_miss=*/true, /*verify=*/false);
  if (!read.ok()) return RpcFail("get", read.status());
  if (read->size() == 0 || !read->block(0).status.ok()) {
    const int code = read->size() == 0 ? 0 : static_cast<int>(read->block(0).status.code());
    return Fail(kExitMiss, "get", MissText(args, code));
  }
  const LocalBlock& block = read->block(0);
  std::string payload(block.data.size(), '\0');
  absl::StatusOr<uint64_t> copied =
      read->CopyTo(0, std::as_writable_bytes(std::span(payload.data(), payload.size())));
  read->Release();
  if (!copied.ok()) return Fail(kExitMiss, "get", MissText(args, static_cast<int>(copied.status().code())));
  const BlockSummary summary{args.hashes[0], block.tier, payload.size(), block.checksum, args.out};
  if (args.out == "-") {
    out.write(payload.data(), static_cast<std::streamsize>(payload.size()));
    out.flush();
    if (!out) return Fail(kExitError, "get", "writing the payload to stdout failed");
    if (args.output == OutputFormat::kJson) err << FormatGet(summary, OutputFormat::kJson);
    return Ok();
  }
  writer.Append(payload);
  if (absl::Status s = writer.Commit(); !s.ok()) return Fail(kExitError, "get", ToStd(s.message()));
  out << FormatGet(summary, args.output);
  return Ok();
}

}  // namespace

CliOutcome RunLocalCommand(const CliArgs& args, LocalClient& client, std::ostream& out,
                           std::ostream& err) {
  switch (args.command) {
    case CliCommand::kPut:
      if (args.from_gpu) {
        return Fail(kExitUsage, "put", "--from-gpu does not apply with --local (puts land in DRAM)");
      }
      return RunLocalPut(args, client, out);
    case CliCommand::kGet:
      return RunLocalGet(args, client, out, err);
    case CliCommand::kLookup: {
      absl::StatusOr<v1::LookupResponse> r = client.Lookup(args.namespace_id, args.hashes);
      if (!r.ok()) return RpcFail("lookup", r.status());
      out << FormatLookup(args.hashes, *r, args.output);
      return Ok();
    }
    default:
      break;
  }
  return Fail(kExitUsage, CliCommandName(args.command), "not available with --local");
}

CliOutcome RunCliCommand(const CliArgs& args, CacheNodeClient& client, std::ostream& out,
                         std::ostream& err) {
  switch (args.command) {
    case CliCommand::kPut:
      return RunPut(args, client, out);
    case CliCommand::kGet:
      return RunGet(args, client, out, err);
    case CliCommand::kLookup: {
      absl::StatusOr<v1::LookupResponse> r = client.Lookup(args.namespace_id, args.hashes);
      if (!r.ok()) return RpcFail("lookup", r.status());
      out << FormatLookup(args.hashes, *r, args.output);
      return Ok();
    }
    case CliCommand::kDelete: {
      absl::StatusOr<uint32_t> r = client.Delete(args.namespace_id, args.hashes);
      if (!r.ok()) return RpcFail("delete", r.status());
      out << FormatDelete(args.hashes.size(), *r, args.output);
      return Ok();
    }
    case CliCommand::kStats: {
      absl::StatusOr<v1::StatsResponse> r = client.Stats();
      if (!r.ok()) return RpcFail("stats", r.status());
      out << FormatStats(*r, args.output);
      return Ok();
    }
    case CliCommand::kRegisterNamespace: {
      absl::StatusOr<v1::RegisterNamespaceResponse> r =
          client.RegisterNamespace(args.namespace_name);
      if (!r.ok()) return RpcFail("register-namespace", r.status());
      out << FormatRegisterNamespace(args.namespace_name, *r, args.output);
      return Ok();
    }
    case CliCommand::kNamespaces: {
      absl::StatusOr<v1::ListNamespacesResponse> r = client.ListNamespaces();
      if (!r.ok()) return RpcFail("namespaces", r.status());
      out << FormatNamespaces(*r, args.output);
      return Ok();
    }
    case CliCommand::kSync: {
      absl::StatusOr<v1::SyncResponse> r = client.Sync();
      if (!r.ok()) return RpcFail("sync", r.status());
      out << FormatSync(*r, args.output);
      return Ok();
    }
    case CliCommand::kRoute:
    case CliCommand::kLocate:
    case CliCommand::kNodes:
    case CliCommand::kExperimentReport:
    case CliCommand::kExperimentSet:
    case CliCommand::kReportOutcome:
    case CliCommand::kHelp:
      break;
  }
  return Fail(kExitUsage, CliCommandName(args.command), "not a cache node command");
}

CliOutcome RunRouterCommand(const CliArgs& args, RouterClient& client, std::ostream& out) {
  const std::string_view name = CliCommandName(args.command);
  switch (args.command) {
    case CliCommand::kRoute: {
      RouteQuery query;
      SetChain(args, query);
      query.prompt_tokens = args.prompt_tokens;
      query.session_key = args.session_key;
      query.request_id = args.request_id;
      query.policy = args.policy;
      absl::StatusOr<RouteResult> r = client.Route(query);
      if (!r.ok()) return RpcFail(name, r.status());
      out << FormatRoute(*r, args.output);
      return Ok();
    }
    case CliCommand::kLocate: {
      ChainQuery chain;
      SetChain(args, chain);
      absl::StatusOr<LocateResult> r = client.Locate(chain);
      if (!r.ok()) return RpcFail(name, r.status());
      out << FormatLocate(*r, args.output);
      return Ok();
    }
    case CliCommand::kNodes: {
      absl::StatusOr<std::vector<NodeStatus>> r = client.ListNodes();
      if (!r.ok()) return RpcFail(name, r.status());
      out << FormatNodes(*r, args.output);
      return Ok();
    }
    case CliCommand::kExperimentReport:
    case CliCommand::kExperimentSet: {
      absl::StatusOr<ExperimentReport> r = args.command == CliCommand::kExperimentSet
                                               ? client.SetExperiment(args.experiment_spec)
                                               : client.GetExperimentReport();
      if (!r.ok()) return RpcFail(name, r.status());
      out << FormatExperimentReport(*r, args.output);
      return Ok();
    }
    case CliCommand::kReportOutcome: {
      const RouteOutcome outcome{.decision_id = args.decision_id,
                                 .ttft_ms = args.ttft_ms,
                                 .prompt_tokens = args.prompt_tokens,
                                 .cached_tokens = args.cached_tokens};
      if (absl::Status s = client.ReportOutcome(outcome); !s.ok()) return RpcFail(name, s);
      out << FormatReportOutcome(outcome, args.output);
      return Ok();
    }
    case CliCommand::kPut:
    case CliCommand::kGet:
    case CliCommand::kLookup:
    case CliCommand::kDelete:
    case CliCommand::kStats:
    case CliCommand::kRegisterNamespace:
    case CliCommand::kNamespaces:
    case CliCommand::kSync:
    case CliCommand::kHelp:
      break;
  }
  return Fail(kExitUsage, name, "not a router command");
}

}  // namespace strata::clients
