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

}  // namespace
}  // namespace customcode::network
