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

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <charconv>
#include <cmath>

namespace customcode::http {
namespace json = boost::json;
using asio::as_tuple;
using asio::use_awaitable;
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

double millis(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

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

}  // namespace

// ---- KeyedMutex ----

asio::awaitable<KeyedMutex::Guard> KeyedMutex::lock(std::string key) {
  auto [it, first] = waiters_.try_emplace(key);
  if (!first) {
    // Held: queue up; unlock() hands the lock over by cancelling our timer.
    auto timer = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor, Clock::time_point::max());
    it->second.push_back(timer);
    co_await timer->async_wait(as_tuple(use_awaitable));
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
  next->cancel();
}

// ---- Api ----

Api::Api(Dependencies deps, const config::Config& config) : deps_(deps), config_(config) {}

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
  json::object body{{"healthy", true}, {"isolation", isolation_}};
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
  // Named lambdas throughout: GCC 12 corrupts lambda temporaries built inside co_await expressions.
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
  for (auto language : {workspace::Language::Node, workspace::Language::Python}) {
    std::string runtime(workspace::languageName(language));
    if (!stored->workspace.uses(language) || !deps_.runtimes.available(runtime)) continue;
    spawnLogged(deps_.loop, warm(name, runtime, stored->script(language)), "worker warm-up");
  }
  // The body is echoed as sent.
  co_return jsonResponse(bhttp::status::ok, request.body(), request.version(), request.keep_alive());
}

// A member coroutine, not a lambda: GCC 12 corrupts the frames of lambda coroutines.
asio::awaitable<void> Api::warm(std::string name, std::string runtime, std::uint64_t version) {
  auto warmed = co_await deps_.pool.acquire(name, runtime, version);
  static log::RateLimit failureLog;
  if (!warmed)
    if (auto note = failureLog.admit())
      log::pool()->warn("[ws:{}] warming the {} worker failed: {}{}", name, runtime, warmed.error().message, *note);
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

asio::awaitable<Response> Api::run(const Request& request, std::string name, std::string function) {
  const auto version = request.version();
  const bool keepAlive = request.keep_alive();
  const auto received = Clock::now();
  auto fail = [&](const Error& error, json::object extra = {}) {
    return errorResponse(error, version, keepAlive, std::move(extra));
  };
  if (auto why = workspace::workspaceNameProblem(name); !why.empty())
    co_return fail(workspace::invalidRequest("workspace", why));
  if (!workspace::couldBeFunctionName(function))
    co_return fail(Error{Errc::FunctionNotFound, "Function \"" + function + "\" not found in workspace \"" + name + "\""});
  auto body = parseJsonBody(request.body(), true);
  if (!body) co_return fail(body.error());
  auto parameters = workspace::parseRunBody(*body);
  if (!parameters) co_return fail(parameters.error());

  auto stored = co_await current(name);
  if (!stored) co_return fail(stored.error());
  const auto* fn = (*stored)->workspace.find(function);
  if (!fn) co_return fail(Error{Errc::FunctionNotFound, "Function \"" + function + "\" not found in workspace \"" + name + "\""});
  std::string runtime(workspace::languageName(fn->language));
  if (!deps_.runtimes.available(runtime))
    co_return fail(Error{Errc::LanguageUnavailable, "Functions in " + runtime + " cannot run on this server yet"});

  // Bound to the version resolved above (its script's fingerprint): a save from now on does not
  // change which code this run gets (workspace/workspace_store.hpp).
  auto worker = co_await deps_.pool.acquire(name, runtime, (*stored)->script(fn->language));
  if (!worker) {
    deps_.metrics.recordRun(runtime, "spawn_failed", 0);
    co_return fail(worker.error());
  }
  const auto acquired = Clock::now();
  const bool cold = (*worker)->startedAt() >= received;
  if (cold) ++deps_.metrics.coldStarts;

  auto timeout = fn->language == workspace::Language::Python ? config_.pool.pythonRunTimeout : config_.pool.runTimeout;
  std::string members = "\"fn\":\"" + function + "\",\"parameters\":" + json::serialize(*parameters);
  auto reply = co_await (*worker)->call("run", members, timeout);
  const auto finished = Clock::now();
  auto elapsedMs = static_cast<std::int64_t>(std::llround(millis(reply.elapsed)));

  std::string timing;
  timing.reserve(64);
  timing.append(cold ? "cold;dur=" : "queue;dur=");
  appendMs(timing, acquired - received);
  timing.append(", run;dur=");
  appendMs(timing, finished - acquired);
  timing.append(", total;dur=");
  appendMs(timing, finished - received);
  auto withTiming = [&](Response response) {
    response.set("Server-Timing", timing);
    return response;
  };
  const double seconds = std::chrono::duration<double>(reply.elapsed).count();

  switch (reply.status) {
    case pool::ReplyStatus::TimedOut: {
      deps_.metrics.recordRun(runtime, "timeout", seconds);
      deps_.pool.checkResponsive(*worker);
      static log::RateLimit timeoutLog;
      if (auto note = timeoutLog.admit())
        log::pool()->warn("[ws:{}][pid {}] run {} timed out after {} ms{}", name, (*worker)->pid(), function,
                          timeout.count(), *note);
      co_return withTiming(fail(
          Error{Errc::RunTimedOut, "Function \"" + function + "\" timed out after " + std::to_string(timeout.count()) + " ms"},
          {{"logs", std::move(reply.logs)}, {"duration", elapsedMs}}));
    }
    case pool::ReplyStatus::Died: {
      deps_.metrics.recordRun(runtime, reply.outOfMemory ? "out_of_memory" : "crashed", seconds);
      Error error = reply.outOfMemory
                        ? Error{Errc::OutOfMemory, "Function \"" + function + "\" ran out of memory: " + reply.failure}
                        : Error{Errc::WorkerDied, "Function \"" + function + "\" failed: " + reply.failure};
      co_return withTiming(fail(error, {{"logs", std::move(reply.logs)}, {"duration", elapsedMs}}));
    }
    case pool::ReplyStatus::Replied: break;
  }

  if (reply.result) {
    deps_.metrics.recordRun(runtime, "ok", seconds);
    // The result's text as the worker wrote it (validated there): no parse and re-serialisation.
    std::string body;
    body.reserve(reply.result->size() + 48);
    body.append("{\"result\":").append(*reply.result).append(",\"logs\":");
    if (reply.logs.empty()) body.append("[]");
    else body.append(json::serialize(reply.logs));
    body.append(",\"duration\":").append(std::to_string(reply.duration)).append("}");
    co_return withTiming(jsonResponse(bhttp::status::ok, std::move(body), version, keepAlive));
  }
  auto& frame = reply.frame;
  auto duration = frame.contains("duration") ? frame.at("duration") : json::value(elapsedMs);
  const auto* ok = frame.if_contains("ok");
  if (!ok || !ok->is_bool() || !ok->get_bool()) {
    json::object thrown = frame.contains("error") && frame.at("error").is_object() ? frame.at("error").as_object()
                                                                                   : json::object{};
    std::string thrownName = thrown.contains("name") && thrown.at("name").is_string()
                                 ? std::string(thrown.at("name").get_string()) : "Error";
    std::string thrownMessage = thrown.contains("message") && thrown.at("message").is_string()
                                    ? std::string(thrown.at("message").get_string()) : "";
    if (thrownName == "ResultTooLarge") {
      deps_.metrics.recordRun(runtime, "result_too_large", seconds);
      co_return withTiming(fail(Error{Errc::ResultTooLarge, thrownMessage}, {{"logs", std::move(reply.logs)}, {"duration", duration}}));
    }
    if (thrownName == "NotFound") {
      co_return withTiming(fail(Error{Errc::FunctionNotFound, thrownMessage}));
    }
    deps_.metrics.recordRun(runtime, "error", seconds);
    co_return withTiming(fail(Error{Errc::FunctionFailed, thrownName + ": " + thrownMessage, json::value(thrown)},
                              {{"logs", std::move(reply.logs)}, {"duration", duration}}));
  }
  deps_.metrics.recordRun(runtime, "ok", seconds);
  json::object out;
  out["result"] = frame.contains("result") ? std::move(frame.at("result")) : json::value(nullptr);
  out["logs"] = std::move(reply.logs);
  out["duration"] = duration;
  co_return withTiming(jsonResponse(bhttp::status::ok, json::serialize(out), version, keepAlive));
}

}  // namespace customcode::http
