#include "clients/rpc_retry.h"

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace strata::clients {
namespace {

TEST(WithRetriesTest, RetriesOnlyUnavailableAndStopsAtMaxAttempts) {
  int attempts = 0;
  const absl::Status unavailable = WithRetries({absl::Seconds(10), 3}, [&](absl::Time, bool*) {
    ++attempts;
    return absl::UnavailableError("down");
  });
  EXPECT_TRUE(absl::IsUnavailable(unavailable));
  EXPECT_EQ(attempts, 3);

  attempts = 0;
  const absl::Status not_found = WithRetries({absl::Seconds(10), 3}, [&](absl::Time, bool*) {
    ++attempts;
    return absl::NotFoundError("gone");
  });
  EXPECT_TRUE(absl::IsNotFound(not_found));
  EXPECT_EQ(attempts, 1);
}

TEST(WithRetriesTest, AnAttemptCanForbidFurtherRetries) {
  int attempts = 0;
  const absl::Status status = WithRetries({absl::Seconds(10), 5}, [&](absl::Time, bool* retryable) {
    ++attempts;
    *retryable = false;  // e.g. data was already delivered to the caller
    return absl::UnavailableError("broken stream");
  });
  EXPECT_TRUE(absl::IsUnavailable(status));
  EXPECT_EQ(attempts, 1);
}

TEST(WithRetriesTest, NoRetryWhenTheBackoffWouldOutlastTheDeadline) {
  // The first backoff is 50 ms, longer than the whole 10 ms budget.
  int attempts = 0;
  absl::Time seen_deadline;
  const absl::Time before = absl::Now();
  const absl::Status status =
      WithRetries({absl::Milliseconds(10), 5}, [&](absl::Time deadline, bool*) {
        ++attempts;
        seen_deadline = deadline;
        return absl::UnavailableError("down");
      });
  EXPECT_TRUE(absl::IsUnavailable(status));
  EXPECT_EQ(attempts, 1);
  EXPECT_GE(seen_deadline, before + absl::Milliseconds(10));
}

TEST(RetryBudgetTest, ValidateNamesTheOwnerAndField) {
  EXPECT_TRUE((RetryBudget{absl::Seconds(1), 1}.Validate("x").ok()));
  EXPECT_EQ((RetryBudget{absl::Seconds(1), 0}.Validate("router client").message()),
            "router client max_attempts must be at least 1, got 0");
  EXPECT_EQ((RetryBudget{absl::ZeroDuration(), 1}.Validate("client").message()),
            "client deadline must be positive, got 0");
}

}  // namespace
}  // namespace strata::clients
