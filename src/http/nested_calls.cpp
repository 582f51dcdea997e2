#include "http/nested_calls.hpp"

#include "http/error_response.hpp"
#include "pool/worker_factory.hpp"

#include <boost/json.hpp>

namespace customcode::http {
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

// The error the caller raises, as a FunctionFailed outcome.
void raise(pool::RunOutcome& outcome, const std::string& function, std::string name, std::string message) {
  outcome.error = Error{Errc::FunctionFailed, name + ": " + message,
                        json::object{{"name", name}, {"message", message}, {"function", function}}};
}

}  // namespace

asio::awaitable<pool::RunOutcome> NestedCalls::call(pool::NestedCall call) {
  pool::RunOutcome outcome;
  const auto& stored = call.scope.stored;
  const auto* fn = stored ? stored->workspace.find(call.function) : nullptr;
  if (!fn) {
    raise(outcome, call.function, "ReferenceError", "function \"" + call.function + "\" is not in this workspace");
    co_return outcome;
  }
  const std::string callee(workspace::languageName(fn->language));
  if (call.scope.depth > kMaxDepth) {
    raise(outcome, call.function, "CallDepthError",
          "calls between languages nest deeper than " + std::to_string(kMaxDepth) + " levels: \"" + call.function +
              "\" (" + callee + ") was not called from " + call.caller);
    co_return outcome;
  }
  if (!runtimes_.available(fn->language)) {
    raise(outcome, call.function, errorName(Errc::LanguageUnavailable),
          "functions in " + callee + " cannot run on this server yet");
    co_return outcome;
  }
  ++metrics_.nestedCalls;

  // The same version of the workspace as the outer run, through the path a run takes.
  pool::WorkerWanted want{.workspace = stored->workspace.name,
                          .language = fn->language,
                          .version = pool::versionOf(*stored, fn->language),
                          .stored = stored};
  auto worker = co_await pool_.acquire(std::move(want));
  if (!worker) {
    raise(outcome, call.function, errorName(worker.error().code), worker.error().message);
    co_return outcome;
  }
  // What is left of the outer run's deadline, a start of the worker included.
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(call.scope.deadline - Clock::now());
  if (left.count() <= 0) {
    outcome.error = Error{Errc::RunTimedOut, "Function \"" + call.function + "\" was called after the deadline"};
    co_return outcome;
  }
  const json::value parameters(std::move(call.parameters));
  auto cancel = call.cancel;  // named (GCC 12, common/async.hpp)
  outcome = co_await (*worker)->run(call.function, parameters, left, call.scope, std::move(cancel));
  if (outcome.ok() || outcome.error->code == Errc::RunTimedOut) co_return outcome;
  if (outcome.error->code == Errc::FunctionFailed && outcome.error->details.is_object()) {
    // Raised in the callee, or deeper: the first function to raise it keeps the name.
    auto& details = outcome.error->details.get_object();
    if (!details.contains("function")) details["function"] = call.function;
    co_return outcome;
  }
  // The callee's worker died, ran out of memory, returned too much: an error of the call.
  auto error = std::move(*outcome.error);
  raise(outcome, call.function, errorName(error.code), error.message);
  co_return outcome;
}

}  // namespace customcode::http
