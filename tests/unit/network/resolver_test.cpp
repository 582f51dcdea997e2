#include "network/resolver.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace customcode::network {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(WorkerResolver, ALoopbackResolverIsReachedThroughTheForwardAddress) {
  auto resolver = workerResolver("nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch example.test\n");
  EXPECT_TRUE(resolver.forward4);
  EXPECT_FALSE(resolver.forward6);
  EXPECT_THAT(resolver.resolvConf, HasSubstr("nameserver 169.254.53.53\n"));
  EXPECT_THAT(resolver.resolvConf, Not(HasSubstr("127.0.0.53")));
  EXPECT_THAT(resolver.resolvConf, HasSubstr("options edns0 trust-ad\n"));
  EXPECT_THAT(resolver.resolvConf, HasSubstr("search example.test\n"));
}

TEST(WorkerResolver, TheFirstOfEachVersionIsForwardedTheOthersKeptUnlessOnLoopback) {
  auto resolver = workerResolver(
      "# comment\nnameserver 10.96.0.10\nnameserver 127.0.0.1\nnameserver ::1\nnameserver 10.96.0.11\n"
      "nameserver 192.0.2.53\n");
  EXPECT_TRUE(resolver.forward4);
  EXPECT_TRUE(resolver.forward6);
  // At most three lines: glibc reads no more.
  EXPECT_THAT(resolver.resolvConf, EndsWith("nameserver 169.254.53.53\nnameserver fd00:ccdd::53\n"
                                            "nameserver 10.96.0.11\n"));
}

TEST(WorkerResolver, WithoutANameserverNothingIsForwarded) {
  auto resolver = workerResolver("search example.test\nnameserver fe80::1%eth0\nnameserver not-an-address\n");
  EXPECT_FALSE(resolver.forward4);
  EXPECT_FALSE(resolver.forward6);
  EXPECT_THAT(resolver.resolvConf, Not(HasSubstr("nameserver")));
}

}  // namespace
}  // namespace customcode::network
