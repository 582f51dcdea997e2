#include "network/cidr.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace customcode::network {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::string textOf(std::string_view input) {
  auto cidr = parseCidr(input);
  return cidr ? cidr->text() : "invalid";
}

TEST(Cidr, ParsesRangesAndSingleAddresses) {
  EXPECT_EQ(textOf("10.0.0.0/8"), "10.0.0.0/8");
  EXPECT_EQ(textOf(" 192.168.1.7 "), "192.168.1.7/32");
  EXPECT_EQ(textOf("fd00::/8"), "fd00::/8");
  EXPECT_EQ(textOf("::1"), "::1/128");
  EXPECT_EQ(textOf("0.0.0.0/0"), "0.0.0.0/0");
  EXPECT_EQ(textOf("::/0"), "::/0");
}

TEST(Cidr, ClearsTheBitsPastThePrefix) {
  EXPECT_EQ(textOf("10.1.2.3/8"), "10.0.0.0/8");
  EXPECT_EQ(textOf("172.31.255.255/12"), "172.16.0.0/12");
  EXPECT_EQ(textOf("fe80::1234/10"), "fe80::/10");
}

TEST(Cidr, RefusesWhatIsNotARange) {
  for (const char* bad : {"", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x", "10.0.0",
                          "example.com", "10.0.0.0/8/8", "1.2.3.4.5", "fe80::1%eth0"})
    EXPECT_EQ(textOf(bad), "invalid") << bad;
}

TEST(Cidr, ContainsNarrowerRangesOfTheSameFamily) {
  auto wide = *parseCidr("198.18.0.0/15");
  EXPECT_TRUE(wide.contains(*parseCidr("198.19.255.1")));
  EXPECT_TRUE(wide.contains(wide));
  EXPECT_FALSE(wide.contains(*parseCidr("198.20.0.1")));
  EXPECT_FALSE(wide.contains(*parseCidr("0.0.0.0/0")));
  EXPECT_FALSE(wide.contains(*parseCidr("::ffff:198.18.0.1")));
  EXPECT_TRUE(parseCidr("::/0")->contains(*parseCidr("2001:db8::1")));
}

TEST(Cidr, ParsesCommaSeparatedLists) {
  std::string error;
  auto list = parseCidrList(" 10.0.0.0/8 ,, fd00::/8,192.168.0.1 ", error);
  EXPECT_THAT(error, IsEmpty());
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].text(), "10.0.0.0/8");
  EXPECT_EQ(list[1].text(), "fd00::/8");
  EXPECT_EQ(list[2].text(), "192.168.0.1/32");
  EXPECT_THAT(parseCidrList("", error), IsEmpty());
}

TEST(Cidr, NamesTheBadItemOfAList) {
  std::string error;
  EXPECT_THAT(parseCidrList("10.0.0.0/8, 10.0.0.0/40", error), IsEmpty());
  EXPECT_THAT(error, HasSubstr("\"10.0.0.0/40\""));
}

std::string allowedText(std::string_view input) {
  std::string why;
  auto allowed = parseAllowed(input, why);
  return allowed ? allowed->text() : "invalid: " + why;
}

TEST(AllowedDestination, TakesRangesWithOrWithoutPorts) {
  EXPECT_EQ(allowedText("10.0.0.0/8"), "10.0.0.0/8");
  EXPECT_EQ(allowedText("198.51.100.7"), "198.51.100.7/32");
  EXPECT_EQ(allowedText("fd00::/8"), "fd00::/8");
  EXPECT_EQ(allowedText("10.0.0.0/8:443"), "10.0.0.0/8:443");
  EXPECT_EQ(allowedText(" 10.1.2.3:8000-8010 "), "10.1.2.3/32:8000-8010");
  EXPECT_EQ(allowedText("[fd00::/8]:443"), "[fd00::/8]:443");
  EXPECT_EQ(allowedText("[fd00::7]"), "fd00::7/128");
}

TEST(AllowedDestination, OpensTheHostsLoopbackOnlyPortByPortOn127001AndV6Loopback) {
  EXPECT_EQ(allowedText("127.0.0.1:5432"), "127.0.0.1/32:5432");
  EXPECT_EQ(allowedText("127.0.0.1/32:8125-8126"), "127.0.0.1/32:8125-8126");
  EXPECT_EQ(allowedText("[::1]:5432"), "[::1/128]:5432");
  std::string why;
  auto allowed = parseAllowed("127.0.0.1:5432", why);
  ASSERT_TRUE(allowed);
  EXPECT_TRUE(allowed->loopback());
  EXPECT_FALSE(parseAllowed("10.0.0.1:5432", why)->loopback());
  for (const char* bad : {"127.0.0.1", "127.0.0.0/8:80", "127.0.0.2:80", "::1", "[::1]", "127.0.0.1/32"})
    EXPECT_THAT(allowedText(bad), HasSubstr("opens the host's loopback")) << bad;
  // A range around loopback is accepted: the rules keep loopback closed whatever is allowed.
  EXPECT_EQ(allowedText("0.0.0.0/0"), "0.0.0.0/0");
}

TEST(AllowedDestination, RefusesBadPortsAndForms) {
  for (const char* bad : {"10.0.0.1:0", "10.0.0.1:65536", "10.0.0.1:80-79", "10.0.0.1:", "10.0.0.1:http",
                          "10.0.0.1:80-", "[fd00::1", "[fd00::1]80"})
    EXPECT_THAT(allowedText(bad), HasSubstr("invalid")) << bad;
  EXPECT_THAT(allowedText("example.com:80"), HasSubstr("is not an IPv4 or IPv6 address"));
}

TEST(AllowedDestination, ListsNameTheBadItem) {
  std::string error;
  auto list = parseAllowList("10.0.0.0/8, 127.0.0.1:5432,[::1]:9000-9001", error);
  EXPECT_THAT(error, IsEmpty());
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[2].firstPort, 9000);
  EXPECT_EQ(list[2].lastPort, 9001);
  list = parseAllowList("10.0.0.0/8, 127.0.0.1", error);
  EXPECT_THAT(list, IsEmpty());
  EXPECT_THAT(error, HasSubstr("\"127.0.0.1\" opens the host's loopback"));
}

}  // namespace
}  // namespace customcode::network
