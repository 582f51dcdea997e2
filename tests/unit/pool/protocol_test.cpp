#include "pool/protocol.hpp"

#include <boost/json.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace customcode::pool {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<std::string> drain(LineSplitter& splitter) {
  std::vector<std::string> lines;
  std::string_view line;
  while (splitter.next(line)) lines.emplace_back(line);
  return lines;
}

TEST(LineSplitter, JoinsALineSplitAcrossFeeds) {
  LineSplitter splitter(100);

  ASSERT_TRUE(splitter.feed("{\"a\""));
  EXPECT_THAT(drain(splitter), IsEmpty());
  ASSERT_TRUE(splitter.feed(":1"));
  EXPECT_THAT(drain(splitter), IsEmpty());
  ASSERT_TRUE(splitter.feed("}\n"));

  EXPECT_THAT(drain(splitter), ElementsAre("{\"a\":1}"));
}

TEST(LineSplitter, ReturnsSeveralLinesOfOneFeedInOrder) {
  LineSplitter splitter(100);

  ASSERT_TRUE(splitter.feed("one\ntwo\n\nthree\nfour"));

  EXPECT_THAT(drain(splitter), ElementsAre("one", "two", "", "three"));
  ASSERT_TRUE(splitter.feed("\n"));
  EXPECT_THAT(drain(splitter), ElementsAre("four"));
}

TEST(LineSplitter, KeepsWorkingAfterManyFeeds) {
  LineSplitter splitter(10);
  std::vector<std::string> lines;

  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(splitter.feed("line" + std::to_string(i % 100)));
    ASSERT_TRUE(splitter.feed("\n"));
    for (auto& line : drain(splitter)) lines.push_back(std::move(line));
  }

  ASSERT_EQ(lines.size(), 1000u);
  EXPECT_EQ(lines.back(), "line99");
}

TEST(LineSplitter, AcceptsALineOfExactlyTheLimit) {
  LineSplitter splitter(8);

  ASSERT_TRUE(splitter.feed(std::string(8, 'x') + "\n"));

  EXPECT_THAT(drain(splitter), ElementsAre(std::string(8, 'x')));
}

TEST(LineSplitter, RejectsACompleteLineOverTheLimit) {
  LineSplitter splitter(8);

  EXPECT_FALSE(splitter.feed("short\n" + std::string(9, 'x') + "\nafter\n"));
}

TEST(LineSplitter, RejectsAPendingPartialLineOverTheLimit) {
  LineSplitter splitter(8);

  ASSERT_TRUE(splitter.feed("ok\nxxxx"));
  ASSERT_TRUE(splitter.feed("xxxx"));  // 8 bytes pending: still within the limit

  EXPECT_FALSE(splitter.feed("x"));
}

TEST(LineSplitter, CountsALineAcrossFeedsAgainstTheLimit) {
  LineSplitter splitter(8);

  ASSERT_TRUE(splitter.feed("xxxxx"));

  EXPECT_FALSE(splitter.feed("xxxxx\n"));
}

TEST(LineSplitter, DoesNotCountHandedOutLinesAgainstTheLimit) {
  LineSplitter splitter(8);
  ASSERT_TRUE(splitter.feed("xxxxxxxx\nxxxx"));
  EXPECT_THAT(drain(splitter), ElementsAre("xxxxxxxx"));

  ASSERT_TRUE(splitter.feed("yyyy\n"));

  EXPECT_THAT(drain(splitter), ElementsAre("xxxxyyyy"));
}

TEST(RequestFrame, BuildsOneJsonLine) {
  auto frame = requestFrame("run", 7, R"("fn":"hello","parameters":{"a":1})");

  ASSERT_TRUE(frame.ends_with("}\n"));
  EXPECT_EQ(std::count(frame.begin(), frame.end(), '\n'), 1);
  EXPECT_EQ(boost::json::parse(frame),
            boost::json::parse(R"({"type":"run","id":7,"fn":"hello","parameters":{"a":1}})"));
}

TEST(RequestFrame, BuildsAFrameWithoutMembers) {
  EXPECT_EQ(requestFrame("ping", 18446744073709551615ull, ""), "{\"type\":\"ping\",\"id\":18446744073709551615}\n");
}

// ---- readResultFrame ----

TEST(ResultFrame, ReadsTheIdDurationAndResultTextOfTheBootstrapsLayout) {
  auto frame = readResultFrame(R"({"type":"result","id":42,"ok":true,"duration":7,"result":{"a":[1,"x}"]}})");

  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->id, 42u);
  EXPECT_EQ(frame->duration, 7);
  EXPECT_EQ(frame->result, R"({"a":[1,"x}"]})");
}

TEST(ResultFrame, ReadsScalarResults) {
  for (std::string_view value : {"null", "\"Hello world\"", "-1.5e3", "true", "[]"}) {
    auto line = std::string(R"({"type":"result","id":1,"ok":true,"duration":0,"result":)") + std::string(value) + "}";
    auto frame = readResultFrame(line);
    ASSERT_TRUE(frame) << value;
    EXPECT_EQ(frame->result, value);
  }
}

TEST(ResultFrame, ReadsAResultNestedFarBeyondTheFrameDepth) {
  std::string nested = std::string(5000, '[') + "1" + std::string(5000, ']');
  auto frame = readResultFrame(R"({"type":"result","id":1,"ok":true,"duration":0,"result":)" + nested + "}");

  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->result.size(), nested.size());
}

TEST(ResultFrame, LeavesEveryOtherFrameToTheGeneralParse) {
  for (std::string_view line : {
           R"({"type":"result","id":1,"ok":false,"duration":0,"error":{"name":"Error","message":"x"}})",
           R"({"type":"result","ok":true,"id":1,"duration":0,"result":1})",  // another order
           R"({"type":"log","id":1,"level":"log","message":"m","timestamp":"t"})",
           R"({"type":"pong","id":3})",
           R"({"type":"result","id":-1,"ok":true,"duration":0,"result":1})",
           R"({"type":"result","id":1,"ok":true,"duration":0,"result":})",
       })
    EXPECT_FALSE(readResultFrame(line)) << line;
}

TEST(ResultFrame, RefusesAResultThatIsNotExactlyOneJsonValue) {
  for (std::string_view result : {"{\"a\":", "1,\"b\":2", "NaN", "[1]]", "\"open", "1 2", "{\"a\":1}} "}) {
    auto line = std::string(R"({"type":"result","id":1,"ok":true,"duration":0,"result":)") + std::string(result) + "}";
    EXPECT_FALSE(readResultFrame(line)) << result;
  }
}

// ---- Calls between languages ----

boost::json::object objectOf(std::string_view text) { return boost::json::parse(text).as_object(); }

TEST(CallFrame, DecodesTheCallOfARun) {
  auto frame = objectOf(R"({"type":"call","id":3,"run":7,"fn":"other","parameters":{"x":[1,{"y":null}]}})");

  auto call = decodeCallFrame(frame);

  ASSERT_TRUE(call);
  EXPECT_EQ(call->id, 3u);
  EXPECT_EQ(call->run, 7u);
  EXPECT_EQ(call->function, "other");
  EXPECT_EQ(call->parameters, objectOf(R"({"x":[1,{"y":null}]})"));
}

TEST(CallFrame, TakesNoParametersOrNullAsNone) {
  auto without = objectOf(R"({"type":"call","id":1,"run":2,"fn":"f"})");
  auto null = objectOf(R"({"type":"call","id":1,"run":2,"fn":"f","parameters":null})");

  ASSERT_TRUE(decodeCallFrame(without));
  EXPECT_TRUE(decodeCallFrame(without)->parameters.empty());
  ASSERT_TRUE(decodeCallFrame(null));
  EXPECT_TRUE(decodeCallFrame(null)->parameters.empty());
}

TEST(CallFrame, RefusesMembersOfTheWrongType) {
  for (std::string_view text : {
           R"({"type":"call","run":2,"fn":"f"})",                       // no id
           R"({"type":"call","id":1,"fn":"f"})",                        // no run
           R"({"type":"call","id":1,"run":2})",                         // no function
           R"({"type":"call","id":-1,"run":2,"fn":"f"})",               // not an id
           R"({"type":"call","id":1,"run":"2","fn":"f"})",              // a string run
           R"({"type":"call","id":1,"run":2,"fn":3})",                  // a number function
           R"({"type":"call","id":1,"run":2,"fn":"f","parameters":[1]})",  // not an object
           R"({"type":"call","id":1,"run":2,"fn":"f","parameters":"x"})",
       }) {
    auto frame = objectOf(text);
    EXPECT_FALSE(decodeCallFrame(frame)) << text;
  }
}

TEST(CalledFrame, CarriesTheResultTextAsItIs) {
  auto frame = calledResultFrame(9, R"({"a":"é","b":[1,2.5,null]})");

  ASSERT_TRUE(frame.ends_with("}\n"));
  EXPECT_EQ(std::count(frame.begin(), frame.end(), '\n'), 1);
  EXPECT_EQ(frame, R"({"type":"called","id":9,"ok":true,"result":{"a":"é","b":[1,2.5,null]}})" "\n");
}

TEST(CalledFrame, CarriesTheErrorTheCallerRaises) {
  boost::json::object error{{"name", "ValueError"}, {"message", "bad \"x\"\n"}, {"stack", "s"}, {"function", "f"}};

  auto frame = calledErrorFrame(4, error);

  EXPECT_EQ(std::count(frame.begin(), frame.end(), '\n'), 1);
  EXPECT_EQ(boost::json::parse(frame),
            boost::json::parse(R"({"type":"called","id":4,"ok":false,"error":{"name":"ValueError",)"
                               R"("message":"bad \"x\"\n","stack":"s","function":"f"}})"));
}

TEST(RunAnswer, AnErrorRaisedInAnotherFunctionIsAFunctionErrorNamingIt) {
  // Even under the names the service gives its own meanings (ResultTooLarge, NotFound).
  for (std::string_view name : {"RangeError", "ResultTooLarge", "NotFound"}) {
    auto frame = objectOf(std::string(R"({"type":"result","id":1,"ok":false,"duration":2,"error":{"name":")") +
                          std::string(name) + R"(","message":"m","stack":"st","function":"inner"}})");
    RunOutcome outcome;

    decodeRunAnswer(frame, outcome);

    ASSERT_TRUE(outcome.error) << name;
    EXPECT_EQ(outcome.error->code, Errc::FunctionFailed) << name;
    EXPECT_EQ(outcome.error->message, std::string(name) + R"(: m (in function "inner"))");
    EXPECT_EQ(outcome.error->details.as_object().at("function"), "inner");
    EXPECT_EQ(outcome.duration, 2);
  }
}

TEST(RunAnswer, AnErrorOfTheFunctionItselfKeepsItsEnvelope) {
  auto frame = objectOf(R"({"type":"result","id":1,"ok":false,"duration":0,"error":{"name":"TypeError","message":"m"}})");
  RunOutcome outcome;

  decodeRunAnswer(frame, outcome);

  ASSERT_TRUE(outcome.error);
  EXPECT_EQ(outcome.error->code, Errc::FunctionFailed);
  EXPECT_EQ(outcome.error->message, "TypeError: m");
  EXPECT_FALSE(outcome.error->details.as_object().contains("function"));
}

}  // namespace
}  // namespace customcode::pool
