#include "common/namespace_id.h"

#include "gtest/gtest.h"

namespace strata::common {
namespace {

TEST(NamespaceIdTest, IdsAreStableAndDistinct) {
  EXPECT_EQ(NamespaceIdOf("default"), 0xb60ebe97c4016fbbull);
  EXPECT_NE(NamespaceIdOf("a"), NamespaceIdOf("b"));
}

TEST(NamespaceIdTest, ValidatesNames) {
  EXPECT_TRUE(ValidateNamespaceName("llama3-8b/bf16/vllm-flash/tp0/b16").ok());
  EXPECT_EQ(ValidateNamespaceName("").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateNamespaceName("has space").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateNamespaceName(std::string(129, 'a')).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ValidateNamespaceName(std::string(128, 'a')).ok());
}

}  // namespace
}  // namespace strata::common
