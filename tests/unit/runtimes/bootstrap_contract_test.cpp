// The contract between the bootstraps and the service: each real bootstrap (Node.js and Python)
// runs functions whose results and errors go through the service's decoder, and every successful
// result must come in the layout the service forwards as text (readResultFrame). The workers run
// with SANDBOX=none: this is about the wire format, the sandbox has tests of its own.
#include "pool/worker.hpp"
#include "runtimes/runtime.hpp"
#include "workspace/codegen.hpp"

#include "pool/fake_worker.hpp"
#include "test_loop.hpp"
#include "workspace/workspace_of.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <fstream>

namespace customcode::runtimes {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using customcode::testing::errorOf;
using customcode::testing::kProcessDeadline;
using customcode::testing::resultOf;
using customcode::testing::TestLoop;
using ::testing::HasSubstr;

constexpr std::size_t kResultMax = 4096;

struct Case {
  std::string function;
  json::value expected;
};

class BootstrapContract : public ::testing::TestWithParam<Language> {
 protected:
  BootstrapContract() : sandbox_(config::SandboxConfig{.mode = config::SandboxConfig::Mode::None}) {
    dir_ = fs::temp_directory_path() / ("customcode-contract-" + std::to_string(::getpid()) + "-" +
                                        std::string(workspace::languageName(GetParam())));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  ~BootstrapContract() override { fs::remove_all(dir_); }

  // Starts the real bootstrap of the test's language on `body`'s functions.
  std::shared_ptr<pool::Worker> start(std::string_view body) {
    EXPECT_TRUE(sandbox_.prepare({}).empty());
    EXPECT_FALSE(sandbox_.isolated());  // the mode this test runs in
    config::RuntimeConfig config;
    config.bootstrapDir = CUSTOMCODE_BOOTSTRAP_DIR;
    config.resultMaxBytes = kResultMax;
    config.pythonPackagesWhitelist = {"json"};
    runtimes_.emplace(config, sandbox_);
    if (!runtimes_->available(GetParam())) throw std::runtime_error("no bootstrap in " + config.bootstrapDir.string());
    auto ws = workspace::workspaceOf(body);
    auto script = dir_ / std::string(workspace::scriptFileName(GetParam()));
    std::ofstream(script) << workspace::generateScript(GetParam(), ws, 1);
    auto worker = pool::Worker::start(loop_.executor(), runtimes_->workerCommand(GetParam(), dir_, script),
                                      pool::WorkerOptions{.workspace = "contract", .language = GetParam()});
    if (!worker) throw std::runtime_error(worker.error().message);
    auto ready = loop_.run((*worker)->waitReady(kProcessDeadline), kProcessDeadline + 1s);
    if (!ready) throw std::runtime_error(ready.error().message);
    return *worker;
  }

  pool::RunOutcome run(const std::shared_ptr<pool::Worker>& worker, std::string function,
                       json::object parameters = {}) {
    return loop_.run(customcode::testing::callRun(worker, std::move(function), std::move(parameters), kProcessDeadline),
                     kProcessDeadline + 1s);
  }

  bool python() const { return GetParam() == Language::Python; }

  TestLoop loop_;
  sandbox::Sandbox sandbox_;
  std::optional<Runtimes> runtimes_;
  fs::path dir_;
};

// A body whose functions return the same values in either language.
std::string resultsBody(bool python) {
  auto fn = [&](std::string js, std::string py) {
    return json::object{{"code", python ? py : js}, {"language", python ? "python" : "nodejs"}};
  };
  json::object functions{
      {"text", fn(R"(return "h\u00e9llo \"q\" \\ \n\t \u2028 \ud83d\ude00 </script>";)",
                  R"(return "h\u00e9llo \"q\" \\ \n\t \u2028 \U0001F600 </script>")")},
      {"nested", fn(R"(return {a: [1, 2.5, -3e-7, null, true, false], "k\"ey": {}, e: []};)",
                    R"(return {"a": [1, 2.5, -3e-7, None, True, False], "k\"ey": {}, "e": []})")},
      {"nothing", fn("return undefined;", "return None")},
      {"number", fn("return -1234567.125;", "return -1234567.125")},
      {"echo", json::object{{"code", python ? "return value" : "return value;"},
                            {"language", python ? "python" : "nodejs"},
                            {"parameters", json::object{{"value", json::object{{"type", "object"}}}}}}},
      {"deep", fn("let v = 0; for (let i = 0; i < 200; i++) v = [v]; return v;",
                  "v = 0\nfor _ in range(200):\n    v = [v]\nreturn v")},
      {"throws", fn("throw new RangeError('out of range');", "raise ValueError('out of range')")},
      {"huge", fn("return 'x'.repeat(5000);", "return 'x' * 5000")},
      {"logs", fn("console.log('one'); console.warn('two'); return 2;", "print('one')\nprint('two')\nreturn 2")},
  };
  return json::serialize(json::object{{"functions", functions}});
}

TEST_P(BootstrapContract, EverySuccessfulResultIsForwardedAsTextAndDecodesToTheValue) {
  auto worker = start(resultsBody(python()));
  json::value deep = 0;
  for (int i = 0; i < 200; ++i) deep = json::array{deep};
  const json::value echoed = json::parse(R"({"s":"\u00e9\"\\","n":[1,2.5,null],"o":{"x":{}}})");
  const std::vector<Case> cases = {
      {"text", json::string("h\xc3\xa9llo \"q\" \\ \n\t \xe2\x80\xa8 \xf0\x9f\x98\x80 </script>")},
      {"nested", json::parse(R"({"a":[1,2.5,-3e-7,null,true,false],"k\"ey":{},"e":[]})")},
      {"nothing", nullptr},
      {"number", -1234567.125},
      {"deep", deep},
  };
  std::uint64_t forwarded = 0;
  for (const auto& c : cases) {
    auto outcome = run(worker, c.function);
    ASSERT_EQ(errorOf(outcome), std::nullopt) << c.function << ": " << outcome.error->message;
    EXPECT_EQ(resultOf(outcome), c.expected) << c.function << ": " << outcome.result;
    EXPECT_EQ(worker->textResultsForTest(), ++forwarded) << c.function << " was not in the forwarded layout";
  }
  auto echo = run(worker, "echo", {{"value", echoed}});
  ASSERT_EQ(errorOf(echo), std::nullopt);
  EXPECT_EQ(resultOf(echo), echoed);
  EXPECT_EQ(worker->textResultsForTest(), ++forwarded);
}

TEST_P(BootstrapContract, ErrorsDecodeToTheirCodes) {
  auto worker = start(resultsBody(python()));

  auto threw = run(worker, "throws");
  auto missing = run(worker, "nope");
  auto huge = run(worker, "huge");

  ASSERT_EQ(errorOf(threw), Errc::FunctionFailed);
  const auto& details = threw.error->details.as_object();
  EXPECT_EQ(details.at("name"), python() ? "ValueError" : "RangeError");
  EXPECT_EQ(details.at("message"), "out of range");
  EXPECT_THAT(std::string(details.at("stack").as_string()), HasSubstr("out of range"));
  EXPECT_EQ(threw.error->message, std::string(python() ? "ValueError" : "RangeError") + ": out of range");
  EXPECT_EQ(errorOf(missing), Errc::FunctionNotFound);
  EXPECT_THAT(missing.error->message, HasSubstr("nope"));
  ASSERT_EQ(errorOf(huge), Errc::ResultTooLarge);
  EXPECT_THAT(huge.error->message, HasSubstr(std::to_string(kResultMax)));
  EXPECT_EQ(worker->textResultsForTest(), 0u);
}

TEST_P(BootstrapContract, LogsComeWithTheirRun) {
  auto worker = start(resultsBody(python()));

  auto outcome = run(worker, "logs");

  ASSERT_EQ(errorOf(outcome), std::nullopt);
  EXPECT_EQ(resultOf(outcome), 2);
  ASSERT_EQ(outcome.logs.size(), 2u);
  EXPECT_EQ(outcome.logs[0].at("message"), "one");
  EXPECT_EQ(outcome.logs[1].at("message"), "two");
  EXPECT_EQ(outcome.logs[1].at("level"), python() ? "log" : "warn");
  EXPECT_TRUE(outcome.logs[0].as_object().contains("timestamp"));
}

TEST_P(BootstrapContract, TheCheckerReportsSyntaxErrorsWithTheirPlace) {
  sandbox_.prepare({});
  config::RuntimeConfig config;
  config.bootstrapDir = CUSTOMCODE_BOOTSTRAP_DIR;
  runtimes_.emplace(config, sandbox_);
  auto checker = pool::Worker::start(
      loop_.executor(), runtimes_->checkerCommand(GetParam()),
      pool::WorkerOptions{.workspace = "-", .language = GetParam(), .role = pool::WorkerRole::Check});
  ASSERT_TRUE(checker);
  ASSERT_TRUE(loop_.run((*checker)->waitReady(kProcessDeadline), kProcessDeadline + 1s));
  std::vector<pool::CheckedFunction> functions = {
      {.name = "good", .code = "return 1" + std::string(python() ? "" : ";"), .parameters = {"a"}},
      {.name = "bad", .code = python() ? "x = 1\nreturn (" : "const x = 1;\nreturn (;", .parameters = {}}};

  auto problems = loop_.run((*checker)->check(functions, kProcessDeadline), kProcessDeadline + 1s);

  ASSERT_TRUE(problems) << problems.error().message;
  ASSERT_EQ(problems->size(), 1u);
  EXPECT_EQ(problems->front().function, "bad");
  EXPECT_EQ(problems->front().line, 2);
  EXPECT_TRUE(problems->front().column.has_value());
  EXPECT_FALSE(problems->front().message.empty());
}

INSTANTIATE_TEST_SUITE_P(Runtimes, BootstrapContract, ::testing::Values(Language::Node, Language::Python),
                         [](const auto& info) { return std::string(workspace::languageName(info.param)); });

}  // namespace
}  // namespace customcode::runtimes
