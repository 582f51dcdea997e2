#include "network/worker_network.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

namespace customcode::network {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::vector<Cidr> cidrs(std::initializer_list<const char*> texts) {
  std::vector<Cidr> out;
  for (const char* text : texts) out.push_back(*parseCidr(text));
  return out;
}

bool hasCidr(const std::vector<Cidr>& list, const char* text) {
  return std::find(list.begin(), list.end(), *parseCidr(text)) != list.end();
}

TEST(WorkerNetworkRules, DenyLoopbackAndLinkLocalByDefault) {
  auto denied = defaultDenied();
  for (const char* range : {"127.0.0.0/8", "::1/128", "169.254.0.0/16", "fe80::/10"})
    EXPECT_TRUE(hasCidr(denied, range)) << range;
}

TEST(WorkerNetworkRules, HostAddressesIncludeLoopback) {
  auto addresses = hostAddresses();
  EXPECT_TRUE(hasCidr(addresses, "127.0.0.1/32"));
}

TEST(WorkerNetworkRules, SplitTheListsByFamily) {
  auto rules = isolationRuleset(cidrs({"127.0.0.0/8", "::1", "10.0.0.0/8"}), cidrs({"10.1.0.0/16"}));
  EXPECT_THAT(rules, HasSubstr("set deny4 {\n    type ipv4_addr\n    flags interval\n"
                               "    elements = { 127.0.0.0/8, 10.0.0.0/8 }\n  }"));
  EXPECT_THAT(rules, HasSubstr("set deny6 {\n    type ipv6_addr\n    flags interval\n    elements = { ::1/128 }\n  }"));
  EXPECT_THAT(rules, HasSubstr("set allow4 {\n    type ipv4_addr\n    flags interval\n"
                               "    elements = { 10.1.0.0/16 }\n  }"));
  // An empty set has no elements line (nft refuses "elements = { }").
  EXPECT_THAT(rules, HasSubstr("set allow6 {\n    type ipv6_addr\n    flags interval\n  }"));
}

TEST(WorkerNetworkRules, AllowComesBeforeLoopbackAndDeny) {
  auto rules = isolationRuleset(cidrs({"127.0.0.0/8"}), {});
  auto allow = rules.find("ip daddr @allow4 accept");
  auto loopback = rules.find("oifname \"lo\" jump refuse");
  auto deny = rules.find("ip daddr @deny4 jump refuse");
  auto deny6 = rules.find("ip6 daddr @deny6 jump refuse");
  ASSERT_NE(allow, std::string::npos);
  ASSERT_NE(loopback, std::string::npos);
  ASSERT_NE(deny, std::string::npos);
  ASSERT_NE(deny6, std::string::npos);
  EXPECT_LT(allow, loopback);
  EXPECT_LT(loopback, deny);
  EXPECT_THAT(rules, HasSubstr("type filter hook output priority filter; policy accept;"));
  // What reject sends back to the worker's socket goes through the loopback interface too.
  auto answers = rules.find("tcp flags & rst == rst accept");
  ASSERT_NE(answers, std::string::npos);
  EXPECT_LT(answers, loopback);
  EXPECT_THAT(rules, HasSubstr("meta l4proto tcp reject with tcp reset"));
}

TEST(WorkerNetworkRules, DropRangesInsideOthers) {
  // nft refuses overlapping intervals in one set: a host address inside WORKER_NETWORK_DENY.
  auto rules = isolationRuleset(cidrs({"198.18.0.2", "198.18.0.0/15", "198.18.0.0/15", "127.0.0.1", "127.0.0.0/8"}), {});
  EXPECT_THAT(rules, HasSubstr("elements = { 198.18.0.0/15, 127.0.0.0/8 }"));
  EXPECT_THAT(rules, Not(HasSubstr("198.18.0.2")));
}

}  // namespace
}  // namespace customcode::network
