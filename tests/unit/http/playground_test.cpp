#include "http/playground.hpp"

#include <gtest/gtest.h>

#include <boost/beast/http/field.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace customcode::http {
namespace {
namespace fs = std::filesystem;

// A built playground in a fresh temporary directory.
class PlaygroundTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/customcode-playground-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    fs::create_directories(dir_ / "assets");
    write("index.html", "<!doctype html><title>x</title>");
    write("assets/main-ABC123.js", "console.log(1);");
    write("assets/main-DEF456.css", "body{}");
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name) << text; }

  Playground loaded(bool enabled = true) {
    Playground playground(config::PlaygroundConfig{.enabled = enabled, .dir = dir_});
    EXPECT_FALSE(playground.load());
    return playground;
  }

  static Request get(std::string target, bhttp::verb method = bhttp::verb::get) {
    return Request{method, target, 11};
  }

  fs::path dir_;
};

TEST_F(PlaygroundTest, ServesThePageWithRevalidationAndAPolicy) {
  auto playground = loaded();

  auto res = playground.serve(get("/playground/"), "");

  EXPECT_EQ(res.result(), bhttp::status::ok);
  EXPECT_EQ(res.body(), "<!doctype html><title>x</title>");
  EXPECT_EQ(res[bhttp::field::content_type], "text/html; charset=utf-8");
  EXPECT_EQ(res[bhttp::field::cache_control], "no-cache");
  EXPECT_FALSE(res[bhttp::field::etag].empty());
  EXPECT_NE(res["Content-Security-Policy"].find("frame-ancestors 'none'"), std::string::npos);
  EXPECT_EQ(res["X-Content-Type-Options"], "nosniff");
}

TEST_F(PlaygroundTest, CachesHashedAssetsForAYear) {
  auto playground = loaded();

  auto res = playground.serve(get("/playground/assets/main-ABC123.js"), "assets/main-ABC123.js");

  EXPECT_EQ(res.result(), bhttp::status::ok);
  EXPECT_EQ(res.body(), "console.log(1);");
  EXPECT_EQ(res[bhttp::field::content_type], "text/javascript; charset=utf-8");
  EXPECT_EQ(res[bhttp::field::cache_control], "public, max-age=31536000, immutable");
}

TEST_F(PlaygroundTest, AnswersNotModifiedToAMatchingETag) {
  auto playground = loaded();
  auto first = playground.serve(get("/playground/"), "");
  auto again = get("/playground/");
  again.set(bhttp::field::if_none_match, "\"other\", W/" + std::string(first[bhttp::field::etag]));

  auto res = playground.serve(again, "");

  EXPECT_EQ(res.result(), bhttp::status::not_modified);
  EXPECT_TRUE(res.body().empty());
  EXPECT_EQ(res[bhttp::field::etag], first[bhttp::field::etag]);
}

TEST_F(PlaygroundTest, ChangesTheETagWithTheContent) {
  auto before = loaded().serve(get("/playground/"), "");
  write("index.html", "<!doctype html><title>y</title>");

  auto after = loaded().serve(get("/playground/"), "");

  EXPECT_NE(before[bhttp::field::etag], after[bhttp::field::etag]);
}

TEST_F(PlaygroundTest, RedirectsToTheTrailingSlashSoRelativeLinksResolve) {
  auto playground = loaded();

  auto res = playground.serve(get("/playground?x=1"), "");

  EXPECT_EQ(res.result(), bhttp::status::moved_permanently);
  EXPECT_EQ(res[bhttp::field::location], "playground/");
}

TEST_F(PlaygroundTest, AnswersHeadWithTheLengthAndNoBody) {
  auto playground = loaded();

  auto res = playground.serve(get("/playground/", bhttp::verb::head), "");

  EXPECT_EQ(res.result(), bhttp::status::ok);
  EXPECT_TRUE(res.body().empty());
  EXPECT_EQ(res[bhttp::field::content_length], std::to_string(std::string("<!doctype html><title>x</title>").size()));
}

TEST_F(PlaygroundTest, ServesOnlyTheFilesItLoaded) {
  auto playground = loaded();
  write("late.js", "x");

  for (const char* path : {"late.js", "../index.html", "assets", "assets/../index.html", "/etc/passwd"}) {
    auto res = playground.serve(get(std::string("/playground/") + path), path);

    EXPECT_EQ(res.result(), bhttp::status::not_found) << path;
  }
}

TEST_F(PlaygroundTest, SaysSoWhenItIsNotBuilt) {
  fs::remove(dir_ / "index.html");
  Playground playground(config::PlaygroundConfig{.enabled = true, .dir = dir_});

  auto warning = playground.load();
  auto res = playground.serve(get("/playground/"), "");

  ASSERT_TRUE(warning);
  EXPECT_NE(warning->find("not built"), std::string::npos);
  EXPECT_FALSE(playground.built());
  EXPECT_EQ(res.result(), bhttp::status::not_found);
  EXPECT_NE(res.body().find("not built"), std::string::npos);
}

TEST_F(PlaygroundTest, TurnedOffItAnswersLikeAnUnknownRouteAndReadsNothing) {
  auto playground = loaded(false);

  auto res = playground.serve(get("/playground/"), "");

  EXPECT_FALSE(playground.built());
  EXPECT_EQ(res.result(), bhttp::status::not_found);
  EXPECT_NE(res.body().find("Route not found"), std::string::npos);
}

TEST_F(PlaygroundTest, SendsTheGzippedCopyToClientsThatAcceptIt) {
  write("assets/main-ABC123.js.gz", "GZIPPED");
  auto playground = loaded();
  auto gzipRequest = [](std::string acceptEncoding) {
    auto req = get("/playground/assets/main-ABC123.js");
    req.set(bhttp::field::accept_encoding, acceptEncoding);
    return req;
  };

  auto gzipped = playground.serve(gzipRequest("br, gzip;q=0.8"), "assets/main-ABC123.js");
  auto refused = playground.serve(gzipRequest("gzip;q=0, deflate"), "assets/main-ABC123.js");
  auto plain = playground.serve(get("/playground/assets/main-ABC123.js"), "assets/main-ABC123.js");
  auto direct = playground.serve(get("/playground/assets/main-ABC123.js.gz"), "assets/main-ABC123.js.gz");

  EXPECT_EQ(gzipped.body(), "GZIPPED");
  EXPECT_EQ(gzipped[bhttp::field::content_encoding], "gzip");
  EXPECT_EQ(gzipped[bhttp::field::content_type], "text/javascript; charset=utf-8");
  EXPECT_EQ(gzipped[bhttp::field::vary], "Accept-Encoding");
  EXPECT_EQ(refused.body(), "console.log(1);");
  EXPECT_EQ(plain.body(), "console.log(1);");
  EXPECT_TRUE(plain[bhttp::field::content_encoding].empty());
  EXPECT_EQ(plain[bhttp::field::vary], "Accept-Encoding");
  EXPECT_NE(gzipped[bhttp::field::etag], plain[bhttp::field::etag]);
  EXPECT_EQ(direct.result(), bhttp::status::not_found);
}

TEST_F(PlaygroundTest, RevalidatesEachEncodingWithItsOwnETag) {
  write("index.html.gz", "GZ");
  auto playground = loaded();
  auto request = get("/playground/");
  request.set(bhttp::field::accept_encoding, "gzip");
  auto first = playground.serve(request, "");
  request.set(bhttp::field::if_none_match, first[bhttp::field::etag]);

  auto again = playground.serve(request, "");
  auto plain = get("/playground/");
  plain.set(bhttp::field::if_none_match, first[bhttp::field::etag]);
  auto other = playground.serve(plain, "");

  EXPECT_EQ(again.result(), bhttp::status::not_modified);
  EXPECT_EQ(other.result(), bhttp::status::ok);
  EXPECT_EQ(other.body(), "<!doctype html><title>x</title>");
}

TEST(PlaygroundContentType, FollowsTheExtension) {
  EXPECT_EQ(contentTypeOf("a/b.css"), "text/css; charset=utf-8");
  EXPECT_EQ(contentTypeOf("x.svg"), "image/svg+xml");
  EXPECT_EQ(contentTypeOf("x.map"), "application/json; charset=utf-8");
  EXPECT_EQ(contentTypeOf("LICENSE"), "application/octet-stream");
}

}  // namespace
}  // namespace customcode::http
