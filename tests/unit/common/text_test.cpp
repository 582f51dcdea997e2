#include "common/text.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace customcode::text {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Optional;

TEST(SplitList, TrimsPiecesAndDropsEmptyOnes) {
  EXPECT_THAT(splitList(" http, https ,,url ,"), ElementsAre("http", "https", "url"));
}

TEST(SplitList, ReturnsNothingForBlankText) {
  EXPECT_THAT(splitList(""), IsEmpty());
  EXPECT_THAT(splitList("  , ,"), IsEmpty());
}

TEST(SplitList, SplitsOnTheGivenSeparator) {
  EXPECT_THAT(splitList("a;b c;d", ';'), ElementsAre("a", "b c", "d"));
}

TEST(PercentDecode, DecodesEscapesOfEitherCase) {
  EXPECT_THAT(percentDecode("%2e%2E%2f%2F"), Optional(std::string("..//")));
  EXPECT_THAT(percentDecode("a%20b"), Optional(std::string("a b")));
}

TEST(PercentDecode, KeepsPlusAndPlainText) {
  EXPECT_THAT(percentDecode("a+b"), Optional(std::string("a+b")));
  EXPECT_THAT(percentDecode(""), Optional(std::string("")));
}

TEST(PercentDecode, DecodesToRawBytesIncludingNul) {
  auto decoded = percentDecode("%00%ff");
  ASSERT_TRUE(decoded);
  EXPECT_EQ(*decoded, std::string("\0\xff", 2));
}

TEST(PercentDecode, RejectsMalformedEscapes) {
  EXPECT_EQ(percentDecode("%"), std::nullopt);
  EXPECT_EQ(percentDecode("abc%"), std::nullopt);
  EXPECT_EQ(percentDecode("%4"), std::nullopt);
  EXPECT_EQ(percentDecode("%zz"), std::nullopt);
  EXPECT_EQ(percentDecode("%4g"), std::nullopt);
  EXPECT_EQ(percentDecode("%-1"), std::nullopt);
  EXPECT_EQ(percentDecode("%+1"), std::nullopt);
  EXPECT_EQ(percentDecode("%%41"), std::nullopt);
}

TEST(ParseByteSize, ReadsUnitsAsPowersOf1024) {
  EXPECT_THAT(parseByteSize("1mb"), Optional(1024u * 1024u));
  EXPECT_THAT(parseByteSize("10kb"), Optional(10u * 1024u));
  EXPECT_THAT(parseByteSize("1gb"), Optional(1024ull * 1024u * 1024u));
  EXPECT_THAT(parseByteSize("512"), Optional(512u));
  EXPECT_THAT(parseByteSize("512b"), Optional(512u));
}

TEST(ParseByteSize, IgnoresCaseSpacesAndAcceptsFractions) {
  EXPECT_THAT(parseByteSize(" 2 MB "), Optional(2u * 1024u * 1024u));
  EXPECT_THAT(parseByteSize("1.5mb"), Optional(1536u * 1024u));
  EXPECT_THAT(parseByteSize("10K"), Optional(10u * 1024u));
}

TEST(ParseByteSize, RejectsBadValues) {
  for (const char* bad : {"", "mb", "abc", "-1", "-1mb", "1 tb", "1mbx", "1..5mb", ".", "1e3", "1 2",
                          "99999999999999999999gb"})
    EXPECT_EQ(parseByteSize(bad), std::nullopt) << bad;
}

TEST(IsValidUtf8, AcceptsAsciiAndMultiByteSequences) {
  EXPECT_TRUE(isValidUtf8(""));
  EXPECT_TRUE(isValidUtf8("hello"));
  EXPECT_TRUE(isValidUtf8("caf\xc3\xa9"));          // é, 2 bytes, at the very end
  EXPECT_TRUE(isValidUtf8("\xe2\x82\xac"));         // €, 3 bytes
  EXPECT_TRUE(isValidUtf8("\xf0\x9f\x98\x80 ok"));  // 😀, 4 bytes
}

TEST(IsValidUtf8, RejectsBrokenSequences) {
  EXPECT_FALSE(isValidUtf8("\xff"));
  EXPECT_FALSE(isValidUtf8("\x80"));             // a lone continuation byte
  EXPECT_FALSE(isValidUtf8("caf\xc3"));          // cut at the end
  EXPECT_FALSE(isValidUtf8("\xe2\x82"));         // cut at the end
  EXPECT_FALSE(isValidUtf8("\xc3(x"));           // not a continuation byte
  EXPECT_FALSE(isValidUtf8("\xf8\x88\x80\x80\x80"));  // 5-byte form
}

TEST(IsValidUtf8, RejectsOverlongFormsSurrogatesAndCodePointsPastTheLast) {
  EXPECT_FALSE(isValidUtf8("\xc0\xaf"));              // '/' in two bytes
  EXPECT_FALSE(isValidUtf8("\xc1\xbf"));
  EXPECT_FALSE(isValidUtf8("\xe0\x80\xaf"));          // '/' in three bytes
  EXPECT_FALSE(isValidUtf8("\xf0\x80\x80\xaf"));      // '/' in four bytes
  EXPECT_FALSE(isValidUtf8("\xed\xa0\x80"));          // U+D800, a surrogate
  EXPECT_FALSE(isValidUtf8("\xf4\x90\x80\x80"));      // U+110000
  EXPECT_FALSE(isValidUtf8("\xf5\x80\x80\x80"));
  EXPECT_TRUE(isValidUtf8("\xc2\x80"));               // U+0080, the first two-byte code point
  EXPECT_TRUE(isValidUtf8("\xe0\xa0\x80"));           // U+0800
  EXPECT_TRUE(isValidUtf8("\xed\x9f\xbf"));           // U+D7FF, just below the surrogates
  EXPECT_TRUE(isValidUtf8("\xee\x80\x80"));           // U+E000, just above them
  EXPECT_TRUE(isValidUtf8("\xf0\x90\x80\x80"));       // U+10000
  EXPECT_TRUE(isValidUtf8("\xf4\x8f\xbf\xbf"));       // U+10FFFF, the last code point
}

TEST(Fingerprint, IsStableAndSensitiveToEveryByte) {
  EXPECT_EQ(fingerprint("abc"), fingerprint("abc"));
  EXPECT_NE(fingerprint("abc"), fingerprint("abd"));
  EXPECT_NE(fingerprint(""), fingerprint(std::string_view("\0", 1)));
}

}  // namespace
}  // namespace customcode::text
