#include "http/browser_guard.hpp"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <utility>

namespace customcode::http {
namespace {

Request request(bhttp::verb method, std::string body,
                std::initializer_list<std::pair<std::string, std::string>> headers) {
  Request req{method, "/v2/functions/ws/run/hello", 11};
  req.set(bhttp::field::host, "localhost:4000");
  for (const auto& [name, value] : headers) req.set(name, value);
  req.body() = std::move(body);
  return req;
}

TEST(BrowserGuard, AcceptsAJsonPostFromAClientThatIsNotABrowser) {
  auto req = request(bhttp::verb::post, R"({"parameters":{}})", {{"Content-Type", "application/json"}});

  EXPECT_FALSE(crossSiteProblem(req));
}

TEST(BrowserGuard, AcceptsAJsonContentTypeWithParametersInAnyCase) {
  auto req = request(bhttp::verb::post, "{}", {{"Content-Type", "Application/JSON; charset=utf-8"}});

  EXPECT_FALSE(crossSiteProblem(req));
}

TEST(BrowserGuard, AcceptsAPostWithNeitherBodyNorContentType) {
  auto req = request(bhttp::verb::post, "", {});

  EXPECT_FALSE(crossSiteProblem(req));
}

TEST(BrowserGuard, RefusesABodyWithoutContentTypeAsUnsupportedMediaType) {
  auto req = request(bhttp::verb::post, "{}", {});

  auto problem = crossSiteProblem(req);

  ASSERT_TRUE(problem);
  EXPECT_EQ(problem->code, Errc::UnsupportedMediaType);
  EXPECT_NE(problem->message.find("no Content-Type"), std::string::npos);
}

TEST(BrowserGuard, RefusesTheContentTypesAFormCanSendWithoutPreflight) {
  for (const char* type : {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"}) {
    auto req = request(bhttp::verb::post, R"({"parameters":{}})", {{"Content-Type", type}});

    auto problem = crossSiteProblem(req);

    ASSERT_TRUE(problem) << type;
    EXPECT_EQ(problem->code, Errc::UnsupportedMediaType) << type;
    EXPECT_NE(problem->message.find(type), std::string::npos) << problem->message;
  }
}

TEST(BrowserGuard, RefusesADeleteWithANonJsonContentTypeEvenWithoutBody) {
  auto req = request(bhttp::verb::delete_, "", {{"Content-Type", "text/plain"}});

  auto problem = crossSiteProblem(req);

  ASSERT_TRUE(problem);
  EXPECT_EQ(problem->code, Errc::UnsupportedMediaType);
}

TEST(BrowserGuard, RefusesWhatTheBrowserMarksCrossSiteOrSameSite) {
  for (const char* site : {"cross-site", "same-site", "Cross-Site"}) {
    auto req = request(bhttp::verb::post, "{}", {{"Content-Type", "application/json"}, {"Sec-Fetch-Site", site}});

    auto problem = crossSiteProblem(req);

    ASSERT_TRUE(problem) << site;
    EXPECT_EQ(problem->code, Errc::CrossSiteRequest) << site;
  }
}

TEST(BrowserGuard, AcceptsWhatTheBrowserMarksSameOriginEvenWhenAProxyRewroteHost) {
  auto req = request(bhttp::verb::post, "{}",
                     {{"Content-Type", "application/json"}, {"Sec-Fetch-Site", "same-origin"},
                      {"Origin", "https://functions.example.com"}});

  EXPECT_FALSE(crossSiteProblem(req));
}

TEST(BrowserGuard, RefusesAnOriginThatIsNotTheHostWhenSecFetchSiteIsMissing) {
  for (const char* origin : {"https://evil.example", "null", "http://localhost:4001", "localhost:4000"}) {
    auto req = request(bhttp::verb::delete_, "", {{"Origin", origin}});

    auto problem = crossSiteProblem(req);

    ASSERT_TRUE(problem) << origin;
    EXPECT_EQ(problem->code, Errc::CrossSiteRequest) << origin;
  }
}

TEST(BrowserGuard, AcceptsAnOriginThatIsTheHost) {
  auto req = request(bhttp::verb::post, "{}", {{"Content-Type", "application/json"}, {"Origin", "http://LOCALHOST:4000"}});

  EXPECT_FALSE(crossSiteProblem(req));
}

TEST(BrowserGuard, LeavesReadsAlone) {
  for (auto method : {bhttp::verb::get, bhttp::verb::head, bhttp::verb::options}) {
    auto req = request(method, "", {{"Sec-Fetch-Site", "cross-site"}, {"Content-Type", "text/plain"}});

    EXPECT_FALSE(crossSiteProblem(req));
  }
}

TEST(BrowserGuard, ChecksEveryOtherMethod) {
  for (auto method : {bhttp::verb::put, bhttp::verb::patch, bhttp::verb::delete_}) {
    auto req = request(method, "", {{"Sec-Fetch-Site", "cross-site"}});

    EXPECT_TRUE(crossSiteProblem(req));
  }
}

}  // namespace
}  // namespace customcode::http
