// gpu::Status: the error type of cachenode/gpu/, the one folder that also builds without Abseil
// (the STRATA_GPU_ONLY build for GPU machines that have only CMake and the CUDA toolkit). Codes use
// the google.rpc.Code numbering, as absl::StatusCode does, so the cache node converts a gpu::Status
// to absl::Status with one cast (cachenode/gpu_adapter.h); nothing else in gpu/ knows about Abseil.
#pragma once

#include <string>
#include <utility>

namespace strata::gpu {

enum class Code : int {
  kOk = 0,
  kInvalidArgument = 3,
  kOutOfRange = 11,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kInternal = 13,
  kUnavailable = 14,
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "INVALID_ARGUMENT: message" or "OK".
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return Status(Code::kInvalidArgument, std::move(m)); }
inline Status Unavailable(std::string m) { return Status(Code::kUnavailable, std::move(m)); }
inline Status Internal(std::string m) { return Status(Code::kInternal, std::move(m)); }

}  // namespace strata::gpu
