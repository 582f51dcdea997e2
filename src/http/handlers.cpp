#include "http/handlers.hpp"

#include "common/async.hpp"
#include "common/log.hpp"
#include "common/text.hpp"
#include "http/browser_guard.hpp"
#include "http/error_response.hpp"
#include "http/metrics.hpp"
#include "http/operations.hpp"
#include "http/router.hpp"
#include "workspace/validation.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <charconv>

namespace customcode::http {
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

Result<json::value> parseJsonBody(std::string_view body, bool allowEmpty) {
  if (allowEmpty && text::trim(body).empty()) return json::value(nullptr);
  boost::system::error_code ec;
  json::parse_options options;
  options.max_depth = 64;
  auto value = json::parse(body, ec, {}, options);
  if (ec) return workspace::invalidRequest("", "body is not valid JSON: " + ec.message());
  return value;
}

// Appends milliseconds with three decimals, from whole microseconds: on the hot path of every run,
// where floating-point formatting (and snprintf) showed in the profile.
void appendMs(std::string& out, Clock::duration d) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  if (us < 0) us = 0;
  char buffer[24];
  auto end = std::to_chars(buffer, buffer + sizeof buffer, us / 1000).ptr;
  out.append(buffer, end);
  auto fraction = us % 1000;
  const char digits[4] = {'.', static_cast<char>('0' + fraction / 100), static_cast<char>('0' + fraction / 10 % 10),
                          static_cast<char>('0' + fraction % 10)};
  out.append(digits, sizeof digits);
}

// {"result":…,"logs":[…],"duration":N}: the result's text as the worker wrote it (validated
// there), so no parse and re-serialisation.
std::string successBody(const pool::RunOutcome& outcome) {
  std::string body;
  body.reserve(outcome.result.size() + 48);
  body.append("{\"result\":").append(outcome.result).append(",\"logs\":");
  if (outcome.logs.empty()) body.append("[]");
  else body.append(json::serialize(outcome.logs));
  body.append(",\"duration\":").append(std::to_string(outcome.duration)).append("}");
  return body;
}

// "queue;dur=0.052, run;dur=1.234, total;dur=1.286" ("cold" instead of "queue" when the run
// waited for its worker to start).
std::string serverTiming(bool cold, Clock::time_point received, Clock::time_point acquired, Clock::time_point finished) {
  std::string timing;
  timing.reserve(64);
  timing.append(cold ? "cold;dur=" : "queue;dur=");
  appendMs(timing, acquired - received);
  timing.append(", run;dur=");
  appendMs(timing, finished - acquired);
  timing.append(", total;dur=");
  appendMs(timing, finished - received);
  return timing;
}

}  // namespace

// ---- KeyedMutex ----

asio::awaitable<KeyedMutex::Guard> KeyedMutex::lock(std::string key) {
  auto [it, first] = waiters_.try_emplace(key);
  if (!first) {
    // Held: queue up; unlock() hands the lock over by setting our event.
    auto turn = std::make_shared<Event>();
    it->second.push_back(turn);
    co_await turn->wait();
  }
  co_return Guard(this, std::move(key));
}

void KeyedMutex::unlock(const std::string& key) {
  auto it = waiters_.find(key);
  if (it == waiters_.end()) return;
  if (it->second.empty()) {
    waiters_.erase(it);
    return;
  }
  auto next = std::move(it->second.front());
  it->second.pop_front();
  next->set();
}

// ---- Api ----

Api::Api(Dependencies deps, const config::Config& config)
    : deps_(deps), config_(config), nestedCalls_(deps.pool, deps.runtimes, deps.metrics) {}

asio::awaitable<Response> Api::handle(Request request) {
  ++deps_.metrics.httpRequests;
  auto route = matchRoute(request.method(), request.target());
  if (!route) {
    auto response = errorResponse(route.error(), request.version(), request.keep_alive());
    if (route.error().code == Errc::MethodNotAllowed) {
      auto message = route.error().message;
      response.set(bhttp::field::allow, message.substr(message.find(": ") + 2));
    }
    co_return response;
  }
  if (auto refused = crossSiteProblem(request))
    co_return errorResponse(*refused, request.version(), request.keep_alive());
  switch (route->kind) {
    case RouteKind::Healthcheck: co_return healthcheck(request);
    case RouteKind::Metrics: co_return metrics(request);
    case RouteKind::ListWorkspaces: co_return co_await list(request);
    case RouteKind::SaveWorkspace: co_return co_await save(request, std::move(route->workspace));
    case RouteKind::GetWorkspace: co_return co_await get(request, std::move(route->workspace));
    case RouteKind::DeleteWorkspace: co_return co_await remove(request, std::move(route->workspace));
    case RouteKind::Run: co_return co_await run(request, std::move(route->workspace), std::move(route->function));
    case RouteKind::Playground: co_return deps_.playground.serve(request, route->file);
    case RouteKind::OpenApi: co_return openApiResponse(request);
    case RouteKind::GetLogging: co_return loggingResponse(request);
    case RouteKind::SetLogging: co_return setLogging(request);
  }
  co_return errorResponse(Error{Errc::RouteNotFound, "Route not found"}, request.version(), request.keep_alive());
}

Response Api::healthcheck(const Request& request) const {
  json::object body{{"healthy", true}, {"isolation", isolation_}, {"resources", resources_}};
  if (!healthWarnings_.empty()) {
    json::array warnings;
    for (const auto& w : healthWarnings_) warnings.push_back(json::string(w));
    body["details"] = json::object{{"warnings", warnings}};
  }
  return jsonResponse(bhttp::status::ok, json::serialize(body), request.version(), request.keep_alive());
}

Response Api::metrics(const Request& request) const {
  Response res{bhttp::status::ok, request.version()};
  res.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  res.keep_alive(request.keep_alive());
  res.body() = renderMetrics(deps_.metrics);
  res.prepare_payload();
  return res;
}

asio::awaitable<Response> Api::list(const Request& request) {
  // Named lambdas throughout (GCC 12, common/async.hpp).
  auto listAll = [&store = deps_.store] { return store.list(); };
  auto names = co_await onPool(deps_.fsPool, deps_.loop, std::move(listAll));
  json::array workspaces;
  for (auto& name : names) workspaces.push_back(json::string(name));
  co_return jsonResponse(bhttp::status::ok, json::serialize(json::object{{"workspaces", workspaces}}),
                         request.version(), request.keep_alive());
}

asio::awaitable<Result<std::shared_ptr<const workspace::StoredWorkspace>>> Api::current(const std::string& name) {
  // One stat per run: cheap, and it makes a save by another replica visible at once.
  auto identity = deps_.store.identity(name);
  if (!identity) {
    cache_.erase(name);
    co_return Error{Errc::WorkspaceNotFound, "Workspace \"" + name + "\" not found"};
  }
  if (auto it = cache_.find(name); it != cache_.end() && it->second->identity == *identity) co_return it->second;
  auto load = [&store = deps_.store, name] { return store.load(name); };
  auto loaded = co_await onPool(deps_.fsPool, deps_.loop, std::move(load));
  if (!loaded) co_return loaded.error();
  auto stored = std::make_shared<const workspace::StoredWorkspace>(std::move(*loaded));
  cache_[name] = stored;
  co_return stored;
}

asio::awaitable<Response> Api::get(const Request& request, std::string name) {
  if (auto why = workspace::workspaceNameProblem(name); !why.empty())
    co_return errorResponse(workspace::invalidRequest("workspace", why), request.version(), request.keep_alive());
  auto stored = co_await current(name);
  if (!stored) co_return errorResponse(stored.error(), request.version(), request.keep_alive());
  co_return jsonResponse(bhttp::status::ok, json::serialize((*stored)->workspace.body), request.version(),
                         request.keep_alive());
}

asio::awaitable<Response> Api::save(const Request& request, std::string name) {
  auto body = parseJsonBody(request.body(), false);
  if (!body) co_return errorResponse(body.error(), request.version(), request.keep_alive());
  auto parsed = workspace::parseWorkspace(name, *body);
  if (!parsed) co_return errorResponse(parsed.error(), request.version(), request.keep_alive());
  auto& ws = *parsed;

  auto guard = co_await writes_.lock(name);
  auto checked = co_await deps_.checker.check(ws);
  if (!checked) co_return errorResponse(checked.error(), request.version(), request.keep_alive());

  // npm runs here, under the workspace's lock, into a staging directory; commit() swaps the
  // packages in just before workspace.yaml is written (see deps/npm_installer.hpp).
  auto staged = co_await deps_.npm.prepare(ws);
  if (!staged) co_return errorResponse(staged.error(), request.version(), request.keep_alive());
  auto write = [&npm = deps_.npm, &ws, &packages = *staged] { return npm.commit(ws, packages); };
  auto saved = co_await onPool(deps_.fsPool, deps_.loop, std::move(write));
  if (!saved) co_return errorResponse(saved.error(), request.version(), request.keep_alive());
  ++deps_.metrics.saves;
  auto stored = std::make_shared<const workspace::StoredWorkspace>(std::move(*saved));
  cache_[name] = stored;
  deps_.pool.retireWorkspace(name);

  // Warm the new workers now, so the first run does not pay for the start.
  for (auto language : runtimes::kLanguages) {
    if (!stored->workspace.uses(language) || !deps_.runtimes.available(language)) continue;
    spawnLogged(deps_.loop, warm(wanted(stored, language)), "worker warm-up");
  }
  // The body is echoed as sent.
  co_return jsonResponse(bhttp::status::ok, request.body(), request.version(), request.keep_alive());
}

// A member coroutine, not a lambda (GCC 12, common/async.hpp).
asio::awaitable<void> Api::warm(pool::WorkerWanted wanted) {
  auto warmed = co_await deps_.pool.acquire(wanted);
  static log::RateLimit failureLog;
  if (!warmed)
    if (auto note = failureLog.admit())
      log::pool()->warn("[ws:{}] warming the {} worker failed: {}{}", wanted.workspace,
                        workspace::languageName(wanted.language), warmed.error().message, *note);
}

// Bound to the version `stored` has (its script's fingerprint): a save from then on does not
// change which code the run gets (workspace/workspace_store.hpp).
pool::WorkerWanted Api::wanted(const std::shared_ptr<const workspace::StoredWorkspace>& stored,
                               workspace::Language language) {
  return pool::WorkerWanted{.workspace = stored->workspace.name,
                            .language = language,
                            .version = pool::versionOf(*stored, language),
                            .stored = stored};
}

asio::awaitable<Response> Api::remove(const Request& request, std::string name) {
  if (auto why = workspace::workspaceNameProblem(name); !why.empty())
    co_return errorResponse(workspace::invalidRequest("workspace", why), request.version(), request.keep_alive());
  auto guard = co_await writes_.lock(name);
  auto erase = [&store = deps_.store, name] { return store.remove(name); };
  auto removed = co_await onPool(deps_.fsPool, deps_.loop, std::move(erase));
  if (!removed) co_return errorResponse(removed.error(), request.version(), request.keep_alive());
  cache_.erase(name);
  deps_.pool.retireWorkspace(name);
  co_return jsonResponse(bhttp::status::ok, json::serialize(json::object{{"workspace", name}, {"deleted", true}}),
                         request.version(), request.keep_alive());
}

// Validate, resolve the stored version, get its worker, run, answer. The worker owns the run: the
// wire format, the timeout and what happens to a stuck worker (pool/worker.hpp).
asio::awaitable<Response> Api::run(const Request& request, std::string name, std::string function) {
  const auto received = Clock::now();
  auto fail = [&](const Error& error, json::object extra = {}) {
    return errorResponse(error, request.version(), request.keep_alive(), std::move(extra));
  };
  auto notFound = [&] {
    return Error{Errc::FunctionNotFound, "Function \"" + function + "\" not found in workspace \"" + name + "\""};
  };
  if (auto why = workspace::workspaceNameProblem(name); !why.empty())
    co_return fail(workspace::invalidRequest("workspace", why));
  if (!workspace::couldBeFunctionName(function)) co_return fail(notFound());
  auto body = parseJsonBody(request.body(), true);
  if (!body) co_return fail(body.error());
  auto parameters = workspace::parseRunBody(*body);
  if (!parameters) co_return fail(parameters.error());

  auto stored = co_await current(name);
  if (!stored) co_return fail(stored.error());
  const auto* fn = (*stored)->workspace.find(function);
  if (!fn) co_return fail(notFound());
  if (!deps_.runtimes.available(fn->language))
    co_return fail(Error{Errc::LanguageUnavailable, "Functions in " + std::string(workspace::languageName(fn->language)) +
                                                        " cannot run on this server yet"});

  // Named, not temporaries in the co_await expressions (GCC 12, common/async.hpp).
  auto want = wanted(*stored, fn->language);
  auto worker = co_await deps_.pool.acquire(std::move(want));
  if (!worker) {
    deps_.metrics.recordRun(std::string(workspace::languageName(fn->language)), "spawn_failed", 0);
    co_return fail(worker.error());
  }
  const auto acquired = Clock::now();
  const bool cold = (*worker)->startedAt() >= received;
  if (cold) ++deps_.metrics.coldStarts;

  const auto timeout = config_.pool.*runtimes::traits(fn->language).runTimeout;
  const json::value arguments(std::move(*parameters));
  // Its calls to functions of the other language share its version and its deadline.
  pool::RunScope scope;
  scope.calls = &nestedCalls_;
  scope.stored = *stored;
  scope.deadline = acquired + timeout;
  std::shared_ptr<pool::Cancellation> noCaller;  // named (GCC 12, common/async.hpp)
  ++deps_.metrics.runsInFlight;
  auto outcome = co_await (*worker)->run(function, arguments, timeout, scope, std::move(noCaller));
  --deps_.metrics.runsInFlight;
  if (auto label = outcome.metricLabel(); !label.empty())
    deps_.metrics.recordRun(std::string(workspace::languageName(fn->language)), std::string(label), std::chrono::duration<double>(outcome.elapsed).count());
  auto response = outcome.ok() ? jsonResponse(bhttp::status::ok, successBody(outcome), request.version(),
                                              request.keep_alive())
                  : outcome.error->code == Errc::FunctionNotFound
                      ? fail(*outcome.error)
                      : fail(*outcome.error, {{"logs", std::move(outcome.logs)}, {"duration", outcome.duration}});
  response.set("Server-Timing", serverTiming(cold, received, acquired, Clock::now()));
  co_return response;
}

}  // namespace customcode::http
