// One message over a connected SOCK_SEQPACKET Unix socket, optionally carrying one file
// descriptor (SCM_RIGHTS): how the same-node shared-memory data plane hands an engine the DRAM
// arena's memfd and then exchanges its control messages. Both ends use these two functions, so
// the ancillary-data handling lives in one place. Thread-compatible (one caller per socket at a
// time); EINTR is retried.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace strata::common {

// Sends `bytes` as one message, with `fd` attached when >= 0 (the sender keeps its own copy).
// Unavailable when the peer is gone or the message was cut short.
absl::Status SendFdMessage(int sock, std::string_view bytes, int fd = -1);

// Receives one message of at most `max_bytes`. A descriptor that came with it is stored in *fd
// (-1 if none) or, when fd is null, closed so it cannot leak. Unavailable when the peer closed the
// socket or on a socket error; ResourceExhausted when the message was longer than max_bytes.
absl::StatusOr<std::string> ReceiveFdMessage(int sock, size_t max_bytes, int* fd = nullptr);

// ReceiveFdMessage for a reply the peer may send just before it closes (a refusal). When the peer
// closes with a message of ours still unread in its socket, Linux fails our next receive with
// ECONNRESET even though the peer's reply is queued ahead of the close; this then reads the queued
// reply. Returns the first error when nothing was queued.
absl::StatusOr<std::string> ReceiveLastFdMessage(int sock, size_t max_bytes, int* fd = nullptr);

}  // namespace strata::common
