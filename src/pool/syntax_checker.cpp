#include "pool/syntax_checker.hpp"

#include <boost/json.hpp>

namespace customcode::pool {
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {
constexpr auto kCheckTimeout = 10s;
}

SyntaxChecker::SyntaxChecker(boost::asio::any_io_executor executor, const runtimes::Runtimes& runtimes,
                             WorkerFactory& factory, config::PoolConfig poolConfig)
    : runtimes_(runtimes),
      factory_(factory),
      checkers_(executor,
                config::PoolConfig{.maxWorkers = 4,
                                   .runTimeout = poolConfig.runTimeout,
                                   .pythonRunTimeout = poolConfig.pythonRunTimeout,
                                   .idleTimeout = std::chrono::hours(24 * 365),
                                   .pingTimeout = poolConfig.pingTimeout,
                                   .startupTimeout = poolConfig.startupTimeout,
                                   .killGrace = poolConfig.killGrace},
                [this](WorkerWanted wanted) { return spawnChecker(std::move(wanted)); }, metrics_) {}

boost::asio::awaitable<Result<std::shared_ptr<Worker>>> SyntaxChecker::spawnChecker(WorkerWanted wanted) {
  co_return factory_.startChecker(wanted.language);
}

boost::asio::awaitable<Result<void>> SyntaxChecker::check(const workspace::Workspace& workspace) {
  json::array errors;
  for (auto language : runtimes::kLanguages) {
    if (!workspace.uses(language) || !runtimes_.available(language)) continue;
    std::vector<pool::CheckedFunction> functions;
    for (const auto& function : workspace.functions) {
      if (function.language != language) continue;
      pool::CheckedFunction checked{.name = function.name, .code = function.code, .parameters = {}};
      for (const auto& p : function.parameters) checked.parameters.push_back(p.name);
      functions.push_back(std::move(checked));
    }
    // A checker that died (it only parses, but a parser can crash) is replaced once.
    Result<std::vector<pool::SyntaxProblem>> problems = Error{Errc::WorkerDied, "no checker"};
    for (int attempt = 0; attempt < 2; ++attempt) {
      // Named, not a temporary in the co_await expression (GCC 12, common/async.hpp).
      WorkerWanted wanted{.workspace = "-", .language = language, .version = 0, .stored = nullptr};
      auto checker = co_await checkers_.acquire(std::move(wanted));
      if (!checker) co_return checker.error();
      auto checked = co_await (*checker)->check(functions, kCheckTimeout);
      problems = std::move(checked);
      if (problems || problems.error().code != Errc::WorkerDied) break;
    }
    if (!problems && problems.error().code == Errc::WorkerDied)
      co_return Error{Errc::SpawnFailed, "The syntax checker failed: " + problems.error().message};
    if (!problems) co_return problems.error();
    for (const auto& problem : *problems) {
      json::object item{{"path", "functions." + problem.function + ".code"}};
      item["function"] = problem.function;
      item["line"] = problem.line ? json::value(*problem.line) : json::value(nullptr);
      item["column"] = problem.column ? json::value(*problem.column) : json::value(nullptr);
      item["message"] = problem.message;
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

}  // namespace customcode::pool
