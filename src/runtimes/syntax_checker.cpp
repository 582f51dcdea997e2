#include "runtimes/syntax_checker.hpp"

#include <boost/json.hpp>

namespace customcode::runtimes {
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {
constexpr auto kCheckTimeout = 10s;
}

SyntaxChecker::SyntaxChecker(boost::asio::any_io_executor executor, const Runtimes& runtimes,
                             config::PoolConfig poolConfig)
    : runtimes_(runtimes),
      checkers_(
          executor,
          config::PoolConfig{.maxWorkers = 4,
                             .runTimeout = poolConfig.runTimeout,
                             .pythonRunTimeout = poolConfig.pythonRunTimeout,
                             .idleTimeout = std::chrono::hours(24 * 365),
                             .pingTimeout = poolConfig.pingTimeout,
                             .startupTimeout = poolConfig.startupTimeout,
                             .killGrace = poolConfig.killGrace},
          [this, executor](std::string, std::string runtime, std::uint64_t) {
            return spawnChecker(executor, std::move(runtime));
          },
          metrics_) {}

boost::asio::awaitable<Result<std::shared_ptr<pool::Worker>>> SyntaxChecker::spawnChecker(
    boost::asio::any_io_executor executor, std::string runtime) {
  co_return pool::Worker::start(executor, runtimes_.checkerCommand(runtime),
                                pool::WorkerOptions{.workspace = "-", .runtime = runtime + " checker"});
}

boost::asio::awaitable<Result<void>> SyntaxChecker::check(const workspace::Workspace& workspace) {
  json::array errors;
  for (auto language : {workspace::Language::Node, workspace::Language::Python}) {
    std::string runtime(workspace::languageName(language));
    if (!workspace.uses(language) || !runtimes_.available(runtime)) continue;
    json::array functions;
    for (const auto& function : workspace.functions) {
      if (function.language != language) continue;
      json::array parameters;
      for (const auto& p : function.parameters) parameters.push_back(json::string(p.name));
      functions.push_back(json::object{{"name", function.name}, {"code", function.code}, {"parameters", parameters}});
    }
    auto members = "\"functions\":" + json::serialize(functions);
    // A checker that died (it only parses, but a parser can crash) is replaced once.
    pool::Reply reply;
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto checker = co_await checkers_.acquire("-", runtime, 0);
      if (!checker) co_return checker.error();
      reply = co_await (*checker)->call("check", members, kCheckTimeout);
      if (reply.status != pool::ReplyStatus::Died) {
        if (reply.status == pool::ReplyStatus::TimedOut) checkers_.checkResponsive(*checker);
        break;
      }
    }
    if (reply.status == pool::ReplyStatus::TimedOut)
      co_return Error{Errc::RunTimedOut, "The syntax check timed out"};
    if (reply.status == pool::ReplyStatus::Died)
      co_return Error{Errc::SpawnFailed, "The syntax checker failed: " + reply.failure};
    const auto* found = reply.frame.if_contains("errors");
    if (!found || !found->is_array()) continue;
    for (const auto& e : found->get_array()) {
      if (!e.is_object()) continue;
      const auto& error = e.get_object();
      auto name = error.contains("function") ? json::value_to<std::string>(error.at("function")) : std::string();
      json::object item{{"path", "functions." + name + ".code"}};
      std::string message = error.contains("message") ? json::value_to<std::string>(error.at("message")) : "";
      item["function"] = name;
      item["line"] = error.contains("line") ? error.at("line") : json::value(nullptr);
      item["column"] = error.contains("column") ? error.at("column") : json::value(nullptr);
      item["message"] = message;
      errors.push_back(std::move(item));
    }
  }
  if (errors.empty()) co_return Result<void>();
  const auto& first = errors.front().as_object();
  std::string message = "Syntax error in function " + json::value_to<std::string>(first.at("function"));
  if (first.at("line").is_number())
    message += " at line " + json::serialize(first.at("line")) + ", column " + json::serialize(first.at("column"));
  message += ": " + json::value_to<std::string>(first.at("message"));
  if (errors.size() > 1) message += " (and " + std::to_string(errors.size() - 1) + " more)";
  co_return Error{Errc::InvalidRequest, message, std::move(errors)};
}

boost::asio::awaitable<void> SyntaxChecker::shutdown() { co_await checkers_.shutdown(1s); }

}  // namespace customcode::runtimes
