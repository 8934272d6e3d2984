// Protobuf messages in grpc::ByteBuffers whose payload bytes are never copied.
//
// Strata's payload messages (GetResponse.chunk, PutRequest.chunk) are a oneof whose payload case is
// one `bytes` field. On the wire such a message is only the field's tag, its length as a varint and
// the bytes. BytesFieldMessage builds that message as a ByteBuffer of two slices: a few framing
// bytes, and a slice that references the sender's memory and keeps it alive through a shared owner
// until gRPC drops the slice. SplitBytesField does the reverse on receipt: framing parsed, payload
// handed out as references to the received slices. Anything else (headers, a chunk another
// encoder laid out differently) goes through ordinary protobuf parsing, so the wire format stays
// plain protobuf and generated clients and servers in any language interoperate.
//
// Thread-safety: the functions are pure. LentMemory is thread-safe: gRPC drops slices on its own
// threads.
#pragma once

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/status.h"

namespace google::protobuf {
class MessageLite;
}  // namespace google::protobuf

namespace strata::common {

// The message made of one length-delimited field `field_number` (1 .. 2^29-1) holding `payload`.
// The payload is not copied: its slice holds a copy of `owner` (whatever keeps `payload` alive)
// until gRPC drops the slice, which can be after the RPC has ended. An empty payload sends only the
// framing and keeps no reference.
grpc::ByteBuffer BytesFieldMessage(uint32_t field_number, std::span<const std::byte> payload,
                                   std::shared_ptr<const void> owner);

// A received message made of exactly one length-delimited field.
struct BytesField {
  uint32_t field_number = 0;
  uint64_t size = 0;                 // payload bytes
  std::vector<grpc::Slice> payload;  // in order, `size` bytes in all; references into the message
};

// Splits `message` when it is exactly one length-delimited field; nullopt for anything else
// (several fields, another wire type, truncated or malformed framing), which the caller then
// parses with protobuf. Copies no payload bytes.
std::optional<BytesField> SplitBytesField(const grpc::ByteBuffer& message);

// A small protobuf message (a header) serialized into a ByteBuffer. Copies its bytes once.
grpc::ByteBuffer ProtoToBuffer(const google::protobuf::MessageLite& message);

// Parses `buffer` (consumed: empty afterwards) into `message`. InvalidArgument when it does not
// parse.
absl::Status ProtoFromBuffer(grpc::ByteBuffer& buffer, google::protobuf::MessageLite* message);

// For a caller that lends its memory to gRPC slices (BytesFieldMessage) and must know when gRPC is
// done with it: every slice built with owner() holds it, and WaitUntilReturned blocks until all are
// gone. gRPC drops a sent slice once the transport has written its bytes to the socket, or when the
// connection is torn down; after the RPC's Finish that is normally immediate, but a peer that stops
// reading its socket while keeping the connection open holds it until the connection fails.
class LentMemory {
 public:
  LentMemory();
  ~LentMemory();  // waits like WaitUntilReturned
  LentMemory(const LentMemory&) = delete;
  LentMemory& operator=(const LentMemory&) = delete;

  // The owner to hand to BytesFieldMessage. Must not be used after WaitUntilReturned.
  const std::shared_ptr<const void>& owner() const { return owner_; }

  // Drops this object's reference and blocks until every slice holding owner() has been dropped.
  void WaitUntilReturned();

 private:
  struct State;
  std::shared_ptr<State> state_;  // shared with owner_'s deleter, which may run on any thread
  std::shared_ptr<const void> owner_;
};

}  // namespace strata::common
