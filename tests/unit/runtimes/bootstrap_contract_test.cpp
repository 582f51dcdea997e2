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
namespace asio = boost::asio;

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
    config.pythonBuiltinModules = {"asyncio"};
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

  // A run whose calls to the other language go to `calls`.
  static asio::awaitable<pool::RunOutcome> callRunWithScope(std::shared_ptr<pool::Worker> worker, std::string function,
                                                            pool::CallHandler* calls, std::chrono::milliseconds timeout) {
    pool::RunScope scope;
    scope.calls = calls;
    scope.deadline = std::chrono::steady_clock::now() + timeout;
    const json::value parameters = json::object{};
    std::shared_ptr<pool::Cancellation> none;
    co_return co_await worker->run(function, parameters, timeout, scope, std::move(none));
  }
  pool::RunOutcome runWithCalls(const std::shared_ptr<pool::Worker>& worker, std::string function,
                                pool::CallHandler& calls, std::chrono::milliseconds timeout = kProcessDeadline) {
    return loop_.run(callRunWithScope(worker, std::move(function), &calls, timeout), kProcessDeadline + 1s);
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

// ---- Calls to the other language ----

// Stands in for the service's side of a nested call: records each call and answers it as the test
// says, or, for a function named "hangs", waits until the call is cancelled.
class FakeCalls : public pool::CallHandler {
 public:
  struct Seen {
    std::string function;
    json::object parameters;
    unsigned depth;
  };
  std::function<pool::RunOutcome(const pool::NestedCall&)> answer = [](const pool::NestedCall&) {
    pool::RunOutcome outcome;
    outcome.result = "null";
    return outcome;
  };
  std::vector<Seen> seen;
  bool cancelled = false;

  asio::awaitable<pool::RunOutcome> call(pool::NestedCall call) override {
    seen.push_back({call.function, call.parameters, call.scope.depth});
    if (call.function == "hangs") {
      auto ended = std::make_shared<Event>();
      call.cancel->onCancel([ended] { ended->set(); });
      co_await ended->wait();
      cancelled = true;
      pool::RunOutcome outcome;
      outcome.error = Error{Errc::WorkerDied, "cancelled"};
      co_return outcome;
    }
    co_return answer(call);
  }
};

pool::RunOutcome raised(std::string_view details) {
  pool::RunOutcome outcome;
  outcome.error = Error{Errc::FunctionFailed, "x", json::parse(details)};
  return outcome;
}

// A workspace whose functions of the test's language call `other` and `hangs`, functions of the
// other language (parameters a and b: a Python caller may pass them positionally).
std::string callersBody(bool python) {
  auto fn = [&](std::string js, std::string py) {
    return json::object{{"code", python ? py : js}, {"language", python ? "python" : "nodejs"}};
  };
  auto other = json::object{{"code", python ? "return 1;" : "return 1"},
                            {"language", python ? "nodejs" : "python"},
                            {"parameters", json::object{{"a", json::object{}}, {"b", json::object{}}}}};
  auto hangs = json::object{{"code", python ? "return 1;" : "return 1"}, {"language", python ? "nodejs" : "python"}};
  json::object functions{
      {"other", other},
      {"hangs", hangs},
      {"calls", fn(R"(return await other({a: 1, b: [2, "é", null, {c: true}]});)",
                   R"(return await other(1, b=[2, "é", None, {"c": True}]))")},
      {"catches", fn("try { await other({}); } catch (e) { return [e.name, e.message, e.stack]; }",
                     "try:\n    await other()\nexcept Exception as e:\n"
                     "    return [type(e).__name__, str(e), e.stack, isinstance(e, TypeError)]")},
      {"uncaught", fn("await other({}); return 1;", "await other()\nreturn 1")},
      {"fires", fn("other({}).catch(() => {}); hangs({}).catch(() => {});\n"
                   "await new Promise((r) => setTimeout(r, 100)); return 'done';",
                   "import asyncio\nasyncio.ensure_future(other())\nasyncio.ensure_future(hangs())\n"
                   "await asyncio.sleep(0.1)\nreturn 'done'")},
      {"waits", fn("await other({}); return 'late';", "await other()\nreturn 'late'")},
      {"waitsForHangs", fn("await hangs({}); return 'late';", "await hangs()\nreturn 'late'")},
  };
  return json::serialize(json::object{{"functions", functions}});
}

TEST_P(BootstrapContract, ACallToTheOtherLanguageGoesToTheServiceAndReturnsItsResult) {
  auto worker = start(callersBody(python()));
  FakeCalls calls;
  calls.answer = [](const pool::NestedCall&) {
    pool::RunOutcome outcome;
    outcome.result = R"({"got":["\u00e9",1.5,null]})";
    return outcome;
  };

  auto outcome = runWithCalls(worker, "calls", calls);

  ASSERT_EQ(errorOf(outcome), std::nullopt) << outcome.error->message;
  EXPECT_EQ(resultOf(outcome), json::parse(R"({"got":["\u00e9",1.5,null]})"));
  ASSERT_EQ(calls.seen.size(), 1u);
  EXPECT_EQ(calls.seen[0].function, "other");
  EXPECT_EQ(calls.seen[0].parameters, json::parse(R"({"a":1,"b":[2,"\u00e9",null,{"c":true}]})").as_object());
  EXPECT_EQ(calls.seen[0].depth, 1u);
}

TEST_P(BootstrapContract, AnErrorOfACallIsRaisedWithTheCalleesNameMessageAndStack) {
  auto worker = start(callersBody(python()));
  FakeCalls calls;
  calls.answer = [](const pool::NestedCall&) {
    return raised(R"({"name":"TypeError","message":"bad","stack":"TypeError: bad\n    at callee","function":"deep"})");
  };

  auto caught = runWithCalls(worker, "catches", calls);
  auto uncaught = runWithCalls(worker, "uncaught", calls);

  ASSERT_EQ(errorOf(caught), std::nullopt) << caught.error->message;
  auto values = resultOf(caught).as_array();
  EXPECT_EQ(values[0], "TypeError");
  EXPECT_EQ(values[1], "bad");
  EXPECT_THAT(std::string(values[2].as_string()), HasSubstr("at callee"));
  if (python()) {
    EXPECT_EQ(values[3], true);  // also caught by `except TypeError`
  }
  ASSERT_EQ(errorOf(uncaught), Errc::FunctionFailed);
  EXPECT_EQ(uncaught.error->message, "TypeError: bad (in function \"deep\")");
  const auto& details = uncaught.error->details.as_object();
  EXPECT_EQ(details.at("name"), "TypeError");
  EXPECT_EQ(details.at("function"), "deep");
  EXPECT_THAT(std::string(details.at("stack").as_string()), HasSubstr("at callee"));
  EXPECT_THAT(std::string(details.at("stack").as_string()), HasSubstr("uncaught"));  // the caller's line too
}

TEST_P(BootstrapContract, ATimedOutCallFailsTheRunAtOnce) {
  auto worker = start(callersBody(python()));
  FakeCalls calls;
  calls.answer = [](const pool::NestedCall&) {
    pool::RunOutcome outcome;
    outcome.error = Error{Errc::RunTimedOut, "timed out"};
    return outcome;
  };
  const auto started = std::chrono::steady_clock::now();

  auto outcome = runWithCalls(worker, "waits", calls, 60s);

  EXPECT_EQ(errorOf(outcome), Errc::RunTimedOut);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 30s);  // not the run's own 60 s
  EXPECT_TRUE(loop_.run(customcode::testing::callPing(worker, kProcessDeadline), kProcessDeadline + 1s));  // and the worker serves on
}

TEST_P(BootstrapContract, TheCallsARunLeavesInFlightAreCancelledWhenItEnds) {
  auto worker = start(callersBody(python()));
  FakeCalls calls;

  auto outcome = runWithCalls(worker, "fires", calls);

  ASSERT_EQ(errorOf(outcome), std::nullopt) << outcome.error->message;
  EXPECT_EQ(resultOf(outcome), "done");
  EXPECT_TRUE(loop_.runUntil([&] { return calls.cancelled; }, kProcessDeadline));
  EXPECT_EQ(calls.seen.size(), 2u);
}

TEST_P(BootstrapContract, TheCallsOfAWorkerThatIsKilledAreCancelled) {
  auto worker = start(callersBody(python()));
  FakeCalls calls;
  auto task = loop_.start(callRunWithScope(worker, "waitsForHangs", &calls, kProcessDeadline));
  ASSERT_TRUE(loop_.runUntil([&] { return calls.seen.size() == 1; }, kProcessDeadline));

  worker->kill("killed by the test");

  ASSERT_TRUE(loop_.runUntil([&] { return task->done && calls.cancelled; }, kProcessDeadline));
  EXPECT_EQ(errorOf(*task->value), Errc::WorkerDied);
}

TEST_P(BootstrapContract, ARunWithoutCallsAnswersACallWithAnError) {
  auto worker = start(callersBody(python()));

  auto outcome = run(worker, "catches");

  ASSERT_EQ(errorOf(outcome), std::nullopt) << outcome.error->message;
  EXPECT_EQ(resultOf(outcome).as_array()[0], "Error");
  EXPECT_THAT(std::string(resultOf(outcome).as_array()[1].as_string()), HasSubstr("cannot call functions of another language"));
}

INSTANTIATE_TEST_SUITE_P(Runtimes, BootstrapContract, ::testing::Values(Language::Node, Language::Python),
                         [](const auto& info) { return std::string(workspace::languageName(info.param)); });

}  // namespace
}  // namespace customcode::runtimes
