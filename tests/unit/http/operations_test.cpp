#include "common/log.hpp"
#include "http/openapi.hpp"
#include "http/operations.hpp"
#include "http/router.hpp"

#include <boost/json.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

namespace customcode::http {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;

Request put(std::string target, std::string body) {
  Request request{bhttp::verb::put, target, 11};
  request.body() = std::move(body);
  request.prepare_payload();
  return request;
}

// Restores the level a test changed.
class LogLevelTest : public ::testing::Test {
 protected:
  void TearDown() override { log::setLevel(saved_); }
  spdlog::level::level_enum saved_ = log::level();
};

// ---- the embedded document ----

TEST(OpenApiDocument, IsOpenApi31Json) {
  auto document = json::parse(openApiDocument());

  EXPECT_EQ(document.at("openapi").as_string().subview().substr(0, 4), "3.1.");
  EXPECT_TRUE(document.at("paths").is_object());
}

TEST(OpenApiDocument, ListsEveryOperationTheRouterKnowsAndNoOther) {
  auto document = json::parse(openApiDocument());
  const std::map<std::string, bhttp::verb> verbs{{"get", bhttp::verb::get}, {"put", bhttp::verb::put},
                                                 {"post", bhttp::verb::post}, {"delete", bhttp::verb::delete_},
                                                 {"patch", bhttp::verb::patch}};
  int operations = 0;
  for (const auto& [templ, item] : document.at("paths").as_object()) {
    std::string path(templ);
    for (auto [from, to] : {std::pair{"{workspace}", "ws"}, std::pair{"{function}", "fn"}})
      if (auto at = path.find(from); at != std::string::npos) path.replace(at, std::string_view(from).size(), to);
    for (const auto& [name, verb] : verbs) {
      auto route = matchRoute(verb, path);
      if (item.as_object().contains(name)) {
        EXPECT_TRUE(route) << name << " " << templ << " is documented but not routed";
        ++operations;
      } else {
        EXPECT_FALSE(route) << name << " " << templ << " is routed but not documented";
      }
    }
  }
  EXPECT_GE(operations, 11);
}

// ---- /sys/logging ----

TEST(LogLevels, ParseTheNamesOfLogLevel) {
  EXPECT_EQ(log::parseLevel("debug"), spdlog::level::debug);
  EXPECT_EQ(log::parseLevel("warn"), spdlog::level::warn);
  EXPECT_EQ(log::parseLevel("error"), spdlog::level::err);
  EXPECT_EQ(log::parseLevel("off"), spdlog::level::off);
  for (const char* bad : {"", "DEBUG", "warning", "err", "verbose", "info "}) EXPECT_FALSE(log::parseLevel(bad)) << bad;
  for (auto level : {spdlog::level::trace, spdlog::level::err, spdlog::level::critical})
    EXPECT_EQ(log::parseLevel(log::levelName(level)), level);
}

TEST_F(LogLevelTest, PutSetsTheLevelOfEveryDomainLogger) {
  log::setLevel(spdlog::level::info);

  auto response = setLogging(put("/sys/logging", R"({"level": "debug"})"));

  EXPECT_EQ(response.result(), bhttp::status::ok);
  EXPECT_EQ(json::parse(response.body()), json::parse(R"({"level": "debug"})"));
  EXPECT_EQ(log::level(), spdlog::level::debug);
  EXPECT_TRUE(log::pool()->should_log(spdlog::level::debug));
  EXPECT_TRUE(log::http()->should_log(spdlog::level::debug));
}

TEST_F(LogLevelTest, ABadBodyIsA400AndKeepsTheLevel) {
  log::setLevel(spdlog::level::warn);
  for (const char* body : {R"({"level": "loud"})", R"({"level": 1})", "{}", R"({"level": "info", "x": 1})", "[]",
                           "{", ""}) {
    auto response = setLogging(put("/sys/logging", body));

    EXPECT_EQ(response.result(), bhttp::status::bad_request) << body;
    EXPECT_EQ(json::parse(response.body()).at("error").as_string(), "RequestValidationError") << body;
    EXPECT_EQ(log::level(), spdlog::level::warn) << body;
  }
  EXPECT_THAT(setLogging(put("/sys/logging", R"({"level": "loud"})")).body(), HasSubstr("trace, debug, info"));
}

TEST(Router, RoutesTheOperationalPaths) {
  EXPECT_EQ(matchRoute(bhttp::verb::get, "/openapi.json")->kind, RouteKind::OpenApi);
  EXPECT_EQ(matchRoute(bhttp::verb::get, "/sys/logging")->kind, RouteKind::GetLogging);
  EXPECT_EQ(matchRoute(bhttp::verb::put, "/sys/logging/")->kind, RouteKind::SetLogging);
  EXPECT_EQ(matchRoute(bhttp::verb::post, "/sys/logging").error().code, Errc::MethodNotAllowed);
  EXPECT_EQ(matchRoute(bhttp::verb::put, "/openapi.json").error().code, Errc::MethodNotAllowed);
}

}  // namespace
}  // namespace customcode::http
