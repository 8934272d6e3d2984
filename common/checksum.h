// Block payload checksums: xxh3-64 with seed 0, the value carried on the wire and stored with every
// block in every tier. Fast enough (tens of GB/s) to verify on every read. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace strata::common {

uint64_t Checksum(std::span<const std::byte> data);
uint64_t Checksum(std::string_view data);

// Incremental form, for payloads that arrive in chunks. Not thread-safe; one per stream.
class StreamingChecksum {
 public:
  StreamingChecksum();
  ~StreamingChecksum();
  StreamingChecksum(const StreamingChecksum&) = delete;
  StreamingChecksum& operator=(const StreamingChecksum&) = delete;

  void Reset();
  void Update(std::span<const std::byte> data);
  uint64_t Digest() const;

 private:
  void* state_;  // XXH3_state_t, kept out of this header
};

}  // namespace strata::common
