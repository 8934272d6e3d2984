#include "router/route_memory.h"

#include <vector>

#include "gtest/gtest.h"

namespace strata::router {
namespace {

const absl::Time kT0 = absl::UnixEpoch() + absl::Hours(1);

// The first remembered node's match.
RememberedMatch MatchOf(const RouteMemory& m, std::vector<IndexKey> keys, absl::Time now) {
  return m.Match(keys, now)[0];
}

TEST(RouteMemoryTest, RoutedChainCountsAsHeldByItsNodeUntilTheHorizon) {
  RouteMemory m(RouteMemoryOptions{absl::Seconds(10), 1024}, kT0);
  m.Record(std::vector<IndexKey>{1, 2, 3}, 5, kT0);
  RememberedMatch r = MatchOf(m, {1, 2, 3, 4}, kT0 + absl::Seconds(10));
  EXPECT_EQ(r.node, 5u);
  EXPECT_EQ(r.blocks, 3u);
  EXPECT_EQ(MatchOf(m, {1, 2, 9}, kT0).blocks, 2u);
  EXPECT_EQ(MatchOf(m, {1, 2, 3}, kT0 + absl::Seconds(11)).node, kNoSlot);
  EXPECT_EQ(MatchOf(m, {7}, kT0).blocks, 0u);
  EXPECT_EQ(MatchOf(m, {2, 3}, kT0).blocks, 2u);  // keys are whole prefixes: any start is valid
}

TEST(RouteMemoryTest, ReportsTwoNodesLongestPrefixFirst) {
  RouteMemory m(RouteMemoryOptions{absl::Seconds(10), 1024}, kT0);
  m.Record(std::vector<IndexKey>{1, 2, 3}, 1, kT0);
  m.Record(std::vector<IndexKey>{1, 2}, 2, kT0 + absl::Seconds(1));
  std::array<RememberedMatch, 2> r = m.Match(std::vector<IndexKey>{1, 2, 3}, kT0 + absl::Seconds(1));
  EXPECT_EQ(r[0].node, 1u);
  EXPECT_EQ(r[0].blocks, 3u);
  EXPECT_EQ(r[1].node, 2u);
  EXPECT_EQ(r[1].blocks, 2u);
  // A key keeps its last two nodes: a third pushes out the oldest.
  m.Record(std::vector<IndexKey>{1}, 3, kT0 + absl::Seconds(2));
  r = m.Match(std::vector<IndexKey>{1}, kT0 + absl::Seconds(2));
  EXPECT_EQ(r[0].node, 3u);
  EXPECT_EQ(r[1].node, 2u);
}

TEST(RouteMemoryTest, ALostKeyDoesNotShortenALongerRememberedPrefix) {
  RouteMemory m(RouteMemoryOptions{absl::Seconds(10), 1 << 16}, kT0);
  m.Record(std::vector<IndexKey>{10, 11, 12, 13}, 4, kT0);
  // Block 11's key is missing from the request (as if overwritten): 13 still proves the prefix.
  EXPECT_EQ(MatchOf(m, {10, 99, 12, 13}, kT0).blocks, 4u);
}

TEST(RouteMemoryTest, CollisionsForgetButNeverMisattribute) {
  RouteMemory m(RouteMemoryOptions{absl::Seconds(10), 1}, kT0);  // one slot: everything collides
  m.Record(std::vector<IndexKey>{1}, 1, kT0);
  m.Record(std::vector<IndexKey>{2}, 2, kT0);
  EXPECT_EQ(MatchOf(m, {1}, kT0).node, kNoSlot);
  EXPECT_EQ(MatchOf(m, {2}, kT0).node, 2u);
}

TEST(RouteMemoryTest, ZeroHorizonDisablesIt) {
  RouteMemory m(RouteMemoryOptions{absl::ZeroDuration(), 1024}, kT0);
  m.Record(std::vector<IndexKey>{1}, 1, kT0);
  EXPECT_FALSE(m.enabled());
  EXPECT_EQ(MatchOf(m, {1}, kT0).node, kNoSlot);
}

}  // namespace
}  // namespace strata::router
