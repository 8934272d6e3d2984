#include "common/fd_message.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace strata::common {
namespace {

class FdMessageTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, fds_), 0); }
  void TearDown() override {
    for (int fd : fds_)
      if (fd >= 0) close(fd);
  }
  int fds_[2] = {-1, -1};
};

TEST_F(FdMessageTest, MessageAndDescriptorArriveTogether) {
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  ASSERT_TRUE(SendFdMessage(fds_[0], "hello", pipe_fds[1]).ok());
  close(pipe_fds[1]);
  int got = -1;
  absl::StatusOr<std::string> m = ReceiveFdMessage(fds_[1], 64, &got);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(*m, "hello");
  ASSERT_GE(got, 0);
  // The received descriptor is the pipe's write end: what goes in comes out of the read end.
  ASSERT_EQ(write(got, "x", 1), 1);
  char c = 0;
  EXPECT_EQ(read(pipe_fds[0], &c, 1), 1);
  EXPECT_EQ(c, 'x');
  EXPECT_NE(fcntl(got, F_GETFD) & FD_CLOEXEC, 0);  // received close-on-exec
  close(got);
  close(pipe_fds[0]);
}

TEST_F(FdMessageTest, MessagesKeepTheirBoundariesAndNoDescriptorIsMinusOne) {
  ASSERT_TRUE(SendFdMessage(fds_[0], "one").ok());
  ASSERT_TRUE(SendFdMessage(fds_[0], "two").ok());
  int got = 7;
  EXPECT_EQ(*ReceiveFdMessage(fds_[1], 64, &got), "one");
  EXPECT_EQ(got, -1);
  EXPECT_EQ(*ReceiveFdMessage(fds_[1], 64), "two");
}

TEST_F(FdMessageTest, OversizedMessageIsResourceExhaustedAndTheNextOneStillArrives) {
  ASSERT_TRUE(SendFdMessage(fds_[0], std::string(100, 'a')).ok());
  ASSERT_TRUE(SendFdMessage(fds_[0], "ok").ok());
  EXPECT_TRUE(absl::IsResourceExhausted(ReceiveFdMessage(fds_[1], 10).status()));
  EXPECT_EQ(*ReceiveFdMessage(fds_[1], 10), "ok");
}

TEST_F(FdMessageTest, ClosedPeerIsUnavailableOnBothSides) {
  close(fds_[0]);
  fds_[0] = -1;
  EXPECT_TRUE(absl::IsUnavailable(ReceiveFdMessage(fds_[1], 10).status()));
  EXPECT_TRUE(absl::IsUnavailable(SendFdMessage(fds_[1], "late")));
}

// How a node refuses a local client: it sends its reason and closes without reading the client's
// hello. The unread hello makes the close a reset, which the client's next receive reports ahead
// of the queued reason (on Linux); ReceiveLastFdMessage still returns the reason.
TEST_F(FdMessageTest, ReplyQueuedBeforeAResettingCloseIsStillRead) {
  ASSERT_TRUE(SendFdMessage(fds_[0], "hello").ok());  // left unread by the peer
  ASSERT_TRUE(SendFdMessage(fds_[1], "refused: full").ok());
  close(fds_[1]);
  fds_[1] = -1;
  absl::StatusOr<std::string> reply = ReceiveLastFdMessage(fds_[0], 64);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(*reply, "refused: full");
  // Then the end of the stream, as for any closed peer.
  EXPECT_TRUE(absl::IsUnavailable(ReceiveLastFdMessage(fds_[0], 64).status()));
}

TEST_F(FdMessageTest, ReceiveLastFdMessageGivesTheErrorWhenNothingWasQueued) {
  ASSERT_TRUE(SendFdMessage(fds_[0], "hello").ok());  // left unread by the peer
  close(fds_[1]);
  fds_[1] = -1;
  EXPECT_TRUE(absl::IsUnavailable(ReceiveLastFdMessage(fds_[0], 64).status()));
  EXPECT_TRUE(absl::IsUnavailable(ReceiveLastFdMessage(fds_[0], 64).status()));
}

}  // namespace
}  // namespace strata::common
