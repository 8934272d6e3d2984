#include "common/grpc_byte_buffer.h"

#include <google/protobuf/message_lite.h>
#include <grpcpp/impl/codegen/proto_utils.h>

#include <array>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace strata::common {
namespace {

constexpr uint32_t kWireTypeLengthDelimited = 2;
constexpr uint32_t kMaxFieldNumber = (1u << 29) - 1;

// Appends `value` as a protobuf varint; returns the bytes written (at most 10).
size_t PutVarint(uint64_t value, uint8_t* out) {
  size_t n = 0;
  while (value >= 0x80) {
    out[n++] = static_cast<uint8_t>(value | 0x80);
    value >>= 7;
  }
  out[n++] = static_cast<uint8_t>(value);
  return n;
}

// Reads bytes across the slices of a received message, which may split the framing anywhere.
class SliceCursor {
 public:
  explicit SliceCursor(const std::vector<grpc::Slice>& slices) : slices_(slices) { SkipEmpty(); }

  std::optional<uint64_t> ReadVarint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (slice_ == slices_.size()) return std::nullopt;
      const uint8_t byte = slices_[slice_].begin()[offset_];
      ++offset_;
      SkipEmpty();
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return value;
    }
    return std::nullopt;  // longer than 10 bytes: malformed
  }

  // The rest of the message as references: a sub-slice of the current slice, then whole slices.
  std::vector<grpc::Slice> Rest(uint64_t* size) const {
    std::vector<grpc::Slice> out;
    *size = 0;
    for (size_t i = slice_; i < slices_.size(); ++i) {
      const size_t begin = i == slice_ ? offset_ : 0;
      const size_t len = slices_[i].size() - begin;
      if (len == 0) continue;
      out.push_back(begin == 0 ? slices_[i] : slices_[i].sub(begin, slices_[i].size()));
      *size += len;
    }
    return out;
  }

 private:
  void SkipEmpty() {
    while (slice_ < slices_.size() && offset_ == slices_[slice_].size()) {
      ++slice_;
      offset_ = 0;
    }
  }

  const std::vector<grpc::Slice>& slices_;
  size_t slice_ = 0;
  size_t offset_ = 0;
};

void DropOwner(void* owner) { delete static_cast<std::shared_ptr<const void>*>(owner); }

}  // namespace

grpc::ByteBuffer BytesFieldMessage(uint32_t field_number, std::span<const std::byte> payload,
                                   std::shared_ptr<const void> owner) {
  std::array<uint8_t, 20> framing;
  size_t n = PutVarint((static_cast<uint64_t>(field_number) << 3) | kWireTypeLengthDelimited,
                       framing.data());
  n += PutVarint(payload.size(), framing.data() + n);
  // The framing is small enough to be inlined in its slice (copied); the payload is referenced.
  std::array<grpc::Slice, 2> slices = {grpc::Slice(framing.data(), n), grpc::Slice()};
  if (payload.empty()) return grpc::ByteBuffer(slices.data(), 1);
  // gRPC never writes into a slice it sends; the const_cast only satisfies its C signature.
  slices[1] = grpc::Slice(const_cast<std::byte*>(payload.data()), payload.size(), &DropOwner,
                          new std::shared_ptr<const void>(std::move(owner)));
  return grpc::ByteBuffer(slices.data(), slices.size());
}

std::optional<BytesField> SplitBytesField(const grpc::ByteBuffer& message) {
  std::vector<grpc::Slice> slices;
  if (!message.Valid() || !message.Dump(&slices).ok()) return std::nullopt;
  SliceCursor cursor(slices);
  const std::optional<uint64_t> tag = cursor.ReadVarint();
  if (!tag.has_value() || (*tag & 7) != kWireTypeLengthDelimited) return std::nullopt;
  const uint64_t field_number = *tag >> 3;
  if (field_number == 0 || field_number > kMaxFieldNumber) return std::nullopt;
  const std::optional<uint64_t> length = cursor.ReadVarint();
  if (!length.has_value()) return std::nullopt;
  BytesField field;
  field.field_number = static_cast<uint32_t>(field_number);
  field.payload = cursor.Rest(&field.size);
  // Exactly the declared length: anything after it is another field, so protobuf must decide.
  if (field.size != *length) return std::nullopt;
  return field;
}

grpc::ByteBuffer ProtoToBuffer(const google::protobuf::MessageLite& message) {
  grpc::ByteBuffer buffer;
  bool own_buffer = false;
  // Serializing a message that is already built cannot fail short of running out of memory.
  (void)grpc::SerializationTraits<google::protobuf::MessageLite>::Serialize(message, &buffer,
                                                                            &own_buffer);
  return buffer;
}

absl::Status ProtoFromBuffer(grpc::ByteBuffer& buffer, google::protobuf::MessageLite* message) {
  const grpc::Status status =
      grpc::SerializationTraits<google::protobuf::MessageLite>::Deserialize(&buffer, message);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot parse ", message->GetTypeName(), ": ",
                                                   status.error_message()));
  }
  return absl::OkStatus();
}

struct LentMemory::State {
  absl::Mutex mu;
  bool returned ABSL_GUARDED_BY(mu) = false;
};

LentMemory::LentMemory() : state_(std::make_shared<State>()) {
  // The deleter keeps the state alive by itself, so it may run after this object is gone (it never
  // does: the destructor waits) without touching freed memory.
  owner_ = std::shared_ptr<const void>(state_.get(), [state = state_](const void*) {
    absl::MutexLock lock(&state->mu);
    state->returned = true;
  });
}

LentMemory::~LentMemory() { WaitUntilReturned(); }

void LentMemory::WaitUntilReturned() {
  owner_.reset();
  absl::MutexLock lock(&state_->mu);
  state_->mu.Await(absl::Condition(&state_->returned));
}

}  // namespace strata::common
