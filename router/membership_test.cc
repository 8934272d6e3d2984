#include "router/membership.h"

#include "gtest/gtest.h"

namespace strata::router {
namespace {

class MembershipTest : public ::testing::Test {
 protected:
  MembershipOptions Options() {
    MembershipOptions o;
    o.ttl = absl::Seconds(3);
    o.heartbeat_interval = absl::Seconds(1);
    o.max_nodes = 4;
    return o;
  }
  common::ManualClock clock_{absl::FromUnixSeconds(1000)};
};

TEST_F(MembershipTest, RegisterAssignsDenseSlotsAndTheViewListsMembers) {
  Membership m(Options(), &clock_);
  auto a = m.Register("a", "h:1", 7, {});
  auto b = m.Register("b", "h:2", 9, {});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->slot, 0u);
  EXPECT_EQ(b->slot, 1u);
  EXPECT_TRUE(a->new_incarnation);
  auto view = m.View();
  ASSERT_EQ(view->members.size(), 2u);
  ASSERT_NE(view->Find(b->slot), nullptr);
  EXPECT_EQ(view->Find(b->slot)->endpoint, "h:2");
  EXPECT_EQ(view->Find(5), nullptr);
}

TEST_F(MembershipTest, RejectsBadRegistrations) {
  Membership m(Options(), &clock_);
  EXPECT_EQ(m.Register("", "h:1", 1, {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(m.Register("a", "", 1, {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(m.Register("a", "h:1", 0, {}).status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(m.Register("a", "h:1", 5, {}).ok());
  EXPECT_EQ(m.Register("a", "h:1", 4, {}).status().code(),
            absl::StatusCode::kFailedPrecondition);  // a stale incarnation
  for (const char* id : {"b", "c", "d"}) ASSERT_TRUE(m.Register(id, "h:1", 1, {}).ok());
  EXPECT_EQ(m.Register("e", "h:1", 1, {}).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(MembershipTest, SameEpochIsARefreshAndANewEpochANewIncarnationOnTheSameSlot) {
  Membership m(Options(), &clock_);
  auto first = m.Register("a", "h:1", 5, {});
  auto again = m.Register("a", "h:9", 5, {});
  auto restarted = m.Register("a", "h:9", 6, {});
  ASSERT_TRUE(first.ok() && again.ok() && restarted.ok());
  EXPECT_FALSE(again->new_incarnation);
  EXPECT_TRUE(restarted->new_incarnation);
  EXPECT_EQ(restarted->slot, first->slot);
  EXPECT_EQ(m.View()->Find(first->slot)->endpoint, "h:9");
}

TEST_F(MembershipTest, HeartbeatNeedsTheRegisteredEpoch) {
  Membership m(Options(), &clock_);
  ASSERT_TRUE(m.Register("a", "h:1", 5, {}).ok());
  EXPECT_TRUE(m.Heartbeat("a", 5, {}).ok());
  EXPECT_EQ(m.Heartbeat("a", 4, {}).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(m.Heartbeat("zz", 5, {}).code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(m.SlotOf("a", 5).ok());
  EXPECT_EQ(m.SlotOf("a", 6).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(m.SlotOf("b", 5).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(MembershipTest, SilentNodesExpireAfterTheTtlAndHeartbeatsKeepOthersAlive) {
  Membership m(Options(), &clock_);
  auto a = m.Register("a", "h:1", 1, {});
  auto b = m.Register("b", "h:2", 1, {});
  ASSERT_TRUE(a.ok() && b.ok());
  clock_.Advance(absl::Seconds(2));
  ASSERT_TRUE(m.Heartbeat("b", 1, {}).ok());
  EXPECT_TRUE(m.Expire().empty());  // a: 2s of silence, within the 3s ttl
  clock_.Advance(absl::Milliseconds(1500));
  EXPECT_EQ(m.Expire(), std::vector<NodeSlot>{a->slot});
  EXPECT_EQ(m.View()->members.size(), 1u);
  EXPECT_EQ(m.Heartbeat("a", 1, {}).code(), absl::StatusCode::kNotFound);
  // The freed slot is reused by the next newcomer.
  auto c = m.Register("c", "h:3", 1, {});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->slot, a->slot);
}

TEST_F(MembershipTest, VllmSourcesNeverExpire) {
  Membership m(Options(), &clock_);
  ASSERT_TRUE(m.Register("engine", "tcp://h:5557", 1, {}, NodeSource::kVllm).ok());
  clock_.Advance(absl::Hours(1));
  EXPECT_TRUE(m.Expire().empty());
  EXPECT_EQ(m.View()->members.size(), 1u);
}

TEST_F(MembershipTest, PendingLoadAddsUpUntilTheNextHeartbeat) {
  Membership m(Options(), &clock_);
  NodeLoad reported;
  reported.queued_requests = 2;
  reported.prefill_tokens_in_flight = 100;
  auto a = m.Register("a", "h:1", 1, reported);
  ASSERT_TRUE(a.ok());
  m.AddPending(a->slot, 1, 512);
  m.AddPending(a->slot, 1, 256);
  const Member* member = m.View()->Find(a->slot);
  NodeLoad load = m.EffectiveLoad(*member);
  EXPECT_EQ(load.queued_requests, 4u);
  EXPECT_EQ(load.prefill_tokens_in_flight, 868u);
  ASSERT_TRUE(m.Heartbeat("a", 1, reported).ok());
  load = m.EffectiveLoad(*m.View()->Find(a->slot));
  EXPECT_EQ(load.queued_requests, 2u);
  EXPECT_EQ(load.prefill_tokens_in_flight, 100u);
}

TEST(MembershipOptionsTest, ValidateRejectsNonsense) {
  MembershipOptions o;
  EXPECT_TRUE(o.Validate().ok());
  o.heartbeat_interval = absl::Seconds(10);
  EXPECT_FALSE(o.Validate().ok());
  o = MembershipOptions();
  o.ttl = absl::ZeroDuration();
  EXPECT_FALSE(o.Validate().ok());
}

}  // namespace
}  // namespace strata::router
