#include "common/grpc_byte_buffer.h"

#include <grpc/grpc.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <optional>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "strata/v1/cachenode.pb.h"

namespace strata::common {
namespace {

std::span<const std::byte> Bytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  std::string out;
  for (const grpc::Slice& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

std::string Flatten(const std::vector<grpc::Slice>& slices) {
  std::string out;
  for (const grpc::Slice& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

// A message split into slices at the given byte offsets, as a socket read might split it.
grpc::ByteBuffer SplitAt(const std::string& bytes, const std::vector<size_t>& cuts) {
  std::vector<grpc::Slice> slices;
  size_t begin = 0;
  for (size_t cut : cuts) {
    slices.emplace_back(bytes.data() + begin, cut - begin);
    begin = cut;
  }
  slices.emplace_back(bytes.data() + begin, bytes.size() - begin);
  return grpc::ByteBuffer(slices.data(), slices.size());
}

class GrpcByteBufferTest : public ::testing::Test {
 protected:
  // Slices need the library initialized.
  GrpcByteBufferTest() { grpc_init(); }
  ~GrpcByteBufferTest() override { grpc_shutdown(); }
};

TEST_F(GrpcByteBufferTest, BytesFieldMessageIsTheProtobufEncodingOfAChunk) {
  const std::string payload(300, 'x');  // a two-byte length varint
  const grpc::ByteBuffer buffer =
      BytesFieldMessage(strata::v1::GetResponse::kChunkFieldNumber, Bytes(payload), nullptr);
  strata::v1::GetResponse expected;
  expected.set_chunk(payload);
  EXPECT_EQ(Flatten(buffer), expected.SerializeAsString());
}

TEST_F(GrpcByteBufferTest, BytesFieldMessageReferencesThePayloadUntilTheLastSliceGoes) {
  std::string payload = "0123456789abcdef0123456789abcdef";
  auto owner = std::make_shared<int>(0);
  std::weak_ptr<int> watch = owner;
  std::optional<grpc::ByteBuffer> buffer =
      BytesFieldMessage(2, Bytes(payload), std::move(owner));
  payload[0] = 'Z';  // not copied: the message sees the change
  EXPECT_EQ(Flatten(*buffer).substr(2), payload);
  grpc::ByteBuffer copy = *buffer;  // a copy shares the slices
  buffer.reset();
  EXPECT_FALSE(watch.expired());
  copy.Clear();
  EXPECT_TRUE(watch.expired());
}

TEST_F(GrpcByteBufferTest, SplitFindsThePayloadWhereverTheSlicesAreCut) {
  const std::string payload(200, 'p');
  strata::v1::PutRequest message;
  message.set_chunk(payload);
  const std::string wire = message.SerializeAsString();  // tag, 2-byte varint, payload
  for (const std::vector<size_t>& cuts : std::vector<std::vector<size_t>>{
           {}, {1}, {2}, {3}, {1, 2}, {1, 2, 3, 100}, {150}}) {
    std::optional<BytesField> field = SplitBytesField(SplitAt(wire, cuts));
    ASSERT_TRUE(field.has_value()) << "cuts: " << cuts.size();
    EXPECT_EQ(field->field_number, strata::v1::PutRequest::kChunkFieldNumber);
    EXPECT_EQ(field->size, payload.size());
    EXPECT_EQ(Flatten(field->payload), payload);
  }
}

TEST_F(GrpcByteBufferTest, SplitLeavesAnythingButOneLengthDelimitedFieldToProtobuf) {
  strata::v1::GetResponse header;
  header.mutable_header()->set_index(3);
  std::optional<BytesField> field = SplitBytesField(SplitAt(header.SerializeAsString(), {}));
  ASSERT_TRUE(field.has_value());  // a header is one field too: the caller checks the number
  EXPECT_EQ(field->field_number, strata::v1::GetResponse::kHeaderFieldNumber);

  strata::v1::GetResponse chunk;
  chunk.set_chunk("abc");
  const std::string wire = chunk.SerializeAsString();
  EXPECT_FALSE(SplitBytesField(SplitAt(wire + wire, {})).has_value());  // two fields
  EXPECT_FALSE(SplitBytesField(SplitAt(wire.substr(0, wire.size() - 1), {})).has_value());
  EXPECT_FALSE(SplitBytesField(SplitAt(std::string("\x08\x05", 2), {})).has_value());  // varint
  EXPECT_FALSE(SplitBytesField(SplitAt(std::string("\x12\xff", 2), {})).has_value());  // cut off
  EXPECT_FALSE(SplitBytesField(grpc::ByteBuffer()).has_value());
}

TEST_F(GrpcByteBufferTest, ProtoRoundTripsThroughAByteBuffer) {
  strata::v1::GetResponse message;
  message.mutable_header()->set_index(7);
  message.mutable_header()->set_checksum(0x0123456789abcdefull);
  grpc::ByteBuffer buffer = ProtoToBuffer(message);
  strata::v1::GetResponse parsed;
  ASSERT_TRUE(ProtoFromBuffer(buffer, &parsed).ok());
  EXPECT_EQ(parsed.header().index(), 7u);
  EXPECT_EQ(parsed.header().checksum(), 0x0123456789abcdefull);

  grpc::ByteBuffer garbage = SplitAt(std::string("\x12\x05xy", 4), {});
  EXPECT_TRUE(absl::IsInvalidArgument(ProtoFromBuffer(garbage, &parsed)));
}

TEST_F(GrpcByteBufferTest, LentMemoryWaitsUntilTheLastSliceIsDropped) {
  const std::string payload(1000, 'q');
  LentMemory lent;
  std::optional<grpc::ByteBuffer> buffer =
      BytesFieldMessage(2, Bytes(payload), lent.owner());
  std::atomic<bool> returned{false};
  std::thread waiter([&] {
    lent.WaitUntilReturned();
    returned = true;
  });
  // While the slice is alive the waiter cannot get past the wait, however it is scheduled.
  EXPECT_FALSE(returned.load());
  buffer.reset();
  waiter.join();
  EXPECT_TRUE(returned.load());
}

}  // namespace
}  // namespace strata::common
