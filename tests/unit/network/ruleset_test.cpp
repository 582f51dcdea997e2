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

std::vector<AllowedDestination> allowed(std::initializer_list<const char*> texts) {
  std::vector<AllowedDestination> out;
  std::string why;
  for (const char* text : texts) out.push_back(*parseAllowed(text, why));
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
  auto rules = isolationRuleset(cidrs({"127.0.0.0/8", "::1", "10.0.0.0/8"}), allowed({"10.1.0.0/16"}), {});
  EXPECT_THAT(rules, HasSubstr("set deny4 {\n    type ipv4_addr\n    flags interval\n"
                               "    elements = { 127.0.0.0/8, 10.0.0.0/8 }\n  }"));
  EXPECT_THAT(rules, HasSubstr("set deny6 {\n    type ipv6_addr\n    flags interval\n    elements = { ::1/128 }\n  }"));
  EXPECT_THAT(rules, HasSubstr("set allow4 {\n    type ipv4_addr\n    flags interval\n"
                               "    elements = { 10.1.0.0/16 }\n  }"));
  // An empty set has no elements line (nft refuses "elements = { }").
  EXPECT_THAT(rules, HasSubstr("set allow6 {\n    type ipv6_addr\n    flags interval\n  }"));
}

TEST(WorkerNetworkRules, LoopbackIsRefusedBeforeAllowAndAllowBeforeDeny) {
  // Loopback first: no allowed range (0.0.0.0/0) opens the namespace's own addresses, where
  // workers of other workspaces may listen.
  auto rules = isolationRuleset(cidrs({"127.0.0.0/8"}), allowed({"0.0.0.0/0"}), {});
  auto allow = rules.find("ip daddr @allow4 accept");
  auto loopback = rules.find("oifname \"lo\" jump refuse");
  auto deny = rules.find("ip daddr @deny4 jump refuse");
  auto deny6 = rules.find("ip6 daddr @deny6 jump refuse");
  ASSERT_NE(allow, std::string::npos);
  ASSERT_NE(loopback, std::string::npos);
  ASSERT_NE(deny, std::string::npos);
  ASSERT_NE(deny6, std::string::npos);
  EXPECT_LT(loopback, allow);
  EXPECT_LT(allow, deny);
  EXPECT_THAT(rules, HasSubstr("type filter hook output priority filter; policy accept;"));
  // What reject sends back to the worker's socket goes through the loopback interface too.
  auto answers = rules.find("tcp flags & rst == rst accept");
  ASSERT_NE(answers, std::string::npos);
  EXPECT_LT(answers, loopback);
  EXPECT_THAT(rules, HasSubstr("meta l4proto tcp reject with tcp reset"));
}

TEST(WorkerNetworkRules, DropRangesInsideOthers) {
  // nft refuses overlapping intervals in one set: a host address inside WORKER_NETWORK_DENY.
  auto rules =
      isolationRuleset(cidrs({"198.18.0.2", "198.18.0.0/15", "198.18.0.0/15", "127.0.0.1", "127.0.0.0/8"}), {}, {});
  EXPECT_THAT(rules, HasSubstr("elements = { 198.18.0.0/15, 127.0.0.0/8 }"));
  EXPECT_THAT(rules, Not(HasSubstr("198.18.0.2")));
}

TEST(WorkerNetworkRules, AllowedLoopbackPortsPassBeforeLoopbackIsRefusedBothWays) {
  auto rules = isolationRuleset(defaultDenied(), allowed({"127.0.0.1:5432", "[::1]:8125-8126"}), {});
  auto loopback = rules.find("oifname \"lo\" jump refuse");
  auto to = rules.find("ip daddr 127.0.0.1/32 meta l4proto { tcp, udp } th dport 5432 accept");
  // pasta's end of the connection answers from the allowed port.
  auto back = rules.find("ip saddr 127.0.0.1/32 ip daddr 127.0.0.1/32 meta l4proto { tcp, udp } th sport 5432 accept");
  auto to6 = rules.find("ip6 daddr ::1/128 meta l4proto { tcp, udp } th dport 8125-8126 accept");
  ASSERT_NE(to, std::string::npos);
  ASSERT_NE(back, std::string::npos);
  ASSERT_NE(to6, std::string::npos);
  EXPECT_LT(to, loopback);
  EXPECT_LT(back, loopback);
  EXPECT_LT(to6, loopback);
  // Not an address-wide allowance.
  EXPECT_THAT(rules, HasSubstr("set allow4 {\n    type ipv4_addr\n    flags interval\n  }"));
}

TEST(WorkerNetworkRules, AllowedPortsOfOtherRangesComeAfterLoopbackAndBeforeDeny) {
  auto rules = isolationRuleset(cidrs({"10.0.0.0/8"}), allowed({"10.1.0.0/16:443-445"}), {});
  auto rule = rules.find("ip daddr 10.1.0.0/16 meta l4proto { tcp, udp } th dport 443-445 accept");
  ASSERT_NE(rule, std::string::npos);
  EXPECT_GT(rule, rules.find("oifname \"lo\" jump refuse"));
  EXPECT_LT(rule, rules.find("ip daddr @deny4 jump refuse"));
}

TEST(WorkerNetworkRules, DnsToTheForwardAddressesPassesBeforeDeny) {
  auto rules = isolationRuleset(defaultDenied(), {}, cidrs({"169.254.53.53", "fd00:ccdd::53"}));
  auto dns4 = rules.find("ip daddr 169.254.53.53/32 udp dport 53 accept");
  auto dns6 = rules.find("ip6 daddr fd00:ccdd::53/128 udp dport 53 accept");
  ASSERT_NE(dns4, std::string::npos);
  ASSERT_NE(dns6, std::string::npos);
  EXPECT_LT(dns4, rules.find("ip daddr @deny4 jump refuse"));
  EXPECT_LT(dns6, rules.find("ip6 daddr @deny6 jump refuse"));
  // Only UDP port 53: the rest of the link-local range stays denied.
  EXPECT_THAT(rules, Not(HasSubstr("169.254.53.53/32 tcp")));
}

}  // namespace
}  // namespace customcode::network
