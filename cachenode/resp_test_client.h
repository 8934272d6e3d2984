// Test-only: a blocking RESP2 client on a raw loopback socket, shared by the RESP server's unit
// tests and the process tests that drive a real node's Redis port.
//
// It sends what it is given (commands, or any bytes: tests send garbage on purpose) and parses
// replies. The 30 s receive timeout only bounds a hung test; it is never a synchronization: every
// read waits for bytes the server sends in reply. Not thread-safe; one connection per object.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace strata::cachenode {

// One parsed RESP2 reply.
struct RespReply {
  char type = 0;  // '+', '-', ':', '$', '*'; 0 when the connection ended first
  std::string text;
  int64_t integer = 0;
  bool nil = false;
  std::vector<RespReply> elements;
};

class RespTestClient {
 public:
  explicit RespTestClient(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval timeout{30, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RespTestClient() { close(fd_); }
  RespTestClient(const RespTestClient&) = delete;
  RespTestClient& operator=(const RespTestClient&) = delete;

  bool connected() const { return connected_; }

  // `args` as one RESP array of bulk strings.
  static std::string Encode(const std::vector<std::string>& args) {
    std::string s = "*" + std::to_string(args.size()) + "\r\n";
    for (const std::string& a : args) s += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
    return s;
  }

  // Sends all of `bytes`; stops quietly when the server has closed (the test reads what it said).
  void Send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
  }

  // Sends one command and reads its reply.
  RespReply Call(const std::vector<std::string>& args) {
    Send(Encode(args));
    return Read();
  }

  // The next reply; type 0 when the connection ended before a whole one arrived.
  RespReply Read() {
    RespReply r;
    std::string line;
    if (!ReadLine(&line) || line.empty()) return r;
    r.type = line[0];
    const std::string rest = line.substr(1);
    switch (r.type) {
      case '+':
      case '-':
        r.text = rest;
        break;
      case ':':
        r.integer = std::stoll(rest);
        break;
      case '$': {
        const int64_t len = std::stoll(rest);
        if (len < 0) {
          r.nil = true;
          break;
        }
        if (!Take(static_cast<size_t>(len) + 2, &r.text)) return RespReply{};
        r.text.resize(static_cast<size_t>(len));
        break;
      }
      case '*': {
        const int64_t n = std::stoll(rest);
        for (int64_t i = 0; i < n; ++i) r.elements.push_back(Read());
        break;
      }
      default:
        break;
    }
    return r;
  }

  // Exactly `n` raw bytes, fewer if the connection ends first.
  std::string ReadExact(size_t n) {
    while (buffer_.size() < n && Fill()) {
    }
    std::string out = buffer_.substr(0, n);
    buffer_.erase(0, out.size());
    return out;
  }

  // Every raw byte until the server closes the connection.
  std::string ReadToEof() {
    while (Fill()) {
    }
    return std::exchange(buffer_, std::string());
  }

  // True when the server closed the connection (EOF) after everything read so far.
  bool AtEof() {
    if (!buffer_.empty()) return false;
    char c;
    return recv(fd_, &c, 1, 0) == 0;
  }

 private:
  bool Fill() {
    char chunk[64 << 10];
    const ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }
  bool ReadLine(std::string* line) {
    size_t at;
    while ((at = buffer_.find("\r\n")) == std::string::npos) {
      if (!Fill()) return false;
    }
    *line = buffer_.substr(0, at);
    buffer_.erase(0, at + 2);
    return true;
  }
  bool Take(size_t n, std::string* out) {
    while (buffer_.size() < n) {
      if (!Fill()) return false;
    }
    *out = buffer_.substr(0, n);
    buffer_.erase(0, n);
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buffer_;
};

}  // namespace strata::cachenode
