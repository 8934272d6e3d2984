#include "common/fd_message.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace strata::common {

absl::Status SendFdMessage(int sock, std::string_view bytes, int fd) {
  iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  ssize_t n;
  do {
    n = sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return absl::UnavailableError(absl::StrCat("send: ", std::strerror(errno)));
  if (static_cast<size_t>(n) != bytes.size()) return absl::UnavailableError("send: cut short");
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReceiveFdMessage(int sock, size_t max_bytes, int* fd) {
  // One byte more than allowed, so an oversized message shows as MSG_TRUNC or a full buffer.
  std::string buffer(max_bytes + 1, '\0');
  iovec iov{buffer.data(), buffer.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (fd != nullptr) *fd = -1;
  if (n >= 0) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      int received;
      std::memcpy(&received, CMSG_DATA(c), sizeof(int));
      if (fd != nullptr && *fd < 0) {
        *fd = received;
      } else {
        close(received);  // not asked for (or a second one): do not leak it
      }
    }
  }
  if (n < 0) return absl::UnavailableError(absl::StrCat("receive: ", std::strerror(errno)));
  if (n == 0) return absl::UnavailableError("the peer closed the socket");
  if ((msg.msg_flags & MSG_TRUNC) != 0 || static_cast<size_t>(n) > max_bytes) {
    if (fd != nullptr && *fd >= 0) {
      close(*fd);
      *fd = -1;
    }
    return absl::ResourceExhaustedError(
        absl::StrCat("message longer than the limit of ", max_bytes, " bytes"));
  }
  buffer.resize(static_cast<size_t>(n));
  return buffer;
}

absl::StatusOr<std::string> ReceiveLastFdMessage(int sock, size_t max_bytes, int* fd) {
  absl::StatusOr<std::string> first = ReceiveFdMessage(sock, max_bytes, fd);
  if (!absl::IsUnavailable(first.status())) return first;
  // The failed receive consumed the socket's pending error; what the peer queued before it closed
  // is readable now (at worst the end of stream, which is the first error again).
  pollfd p{sock, POLLIN, 0};
  int ready;
  do {
    ready = poll(&p, 1, 0);
  } while (ready < 0 && errno == EINTR);
  if (ready != 1 || (p.revents & POLLIN) == 0) return first;
  absl::StatusOr<std::string> queued = ReceiveFdMessage(sock, max_bytes, fd);
  return queued.ok() ? queued : first;
}

}  // namespace strata::common
