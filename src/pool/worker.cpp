#include "pool/worker.hpp"

#include "common/async.hpp"
#include "common/log.hpp"
#include "process/activity.hpp"
#include "process/priority.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>

#include <unistd.h>

#include <array>
#include <cstring>

namespace customcode::pool {
namespace json = boost::json;
using namespace std::chrono_literals;
using asio::as_tuple;
using asio::use_awaitable;

namespace {

constexpr std::size_t kOutputTailBytes = 8 * 1024;
constexpr std::size_t kOutputLinesPerSecond = 50;
constexpr auto kOutputDrainLimit = 500ms;
// How long the removal of a worker's cgroup waits for the rest of its tree to exit.
constexpr auto kCgroupRemoveLimit = 2000ms;

bool looksOutOfMemory(std::string_view tail) {
  for (auto needle : {"heap out of memory", "Allocation failed", "MemoryError", "Cannot allocate memory",
                      "out of memory"})
    if (tail.find(needle) != std::string_view::npos) return true;
  return false;
}

}  // namespace

struct Worker::Pending {
  Event answered;
  std::chrono::steady_clock::time_point started;
  const RunScope* scope = nullptr;  // a run's (see run()); null for other requests
  std::shared_ptr<Cancellation> nested;  // made at the run's first nested call
  bool done = false;
  bool cancelled = false;
  std::size_t logBytes = 0;
  bool logsTruncated = false;
  Reply reply;
};

Result<std::shared_ptr<Worker>> Worker::start(asio::any_io_executor executor, const process::LaunchSpec& spec,
                                              WorkerOptions options) {
  // The cgroup is made before the fork, and the child joins it just before exec: nothing of the
  // worker ever runs outside it. Spares start in the normal class too (docs/decisions.md,
  // "Resource isolation with cgroups": in the idle policy they were not ready in time under load).
  std::unique_ptr<process::WorkerCgroup> cgroup;
  std::optional<process::LaunchSpec> joining;
  if (options.cgroups != nullptr) {
    auto made = options.cgroups->create();
    if (!made) return made.error();
    auto procs = (*made)->openProcs();
    if (!procs) return procs.error();
    cgroup = std::move(*made);
    joining.emplace(spec);
    joining->joinCgroups = std::move(*procs);
  }
  auto started = process::start(executor, joining ? *joining : spec);
  if (joining)
    for (int fd : joining->joinCgroups) ::close(fd);
  if (!started) return started.error();
  std::shared_ptr<Worker> worker(new Worker(executor, std::move(*started), std::move(options)));
  log::pool()->info("[ws:{}][pid {}] {} worker started", worker->workspace(), worker->pid(), worker->label());
  if (cgroup) {
    worker->lowered_ = cgroup->cpuClass() != process::CpuClass::Normal;
    int notifier = cgroup->openOomNotifier();
    worker->cgroup_ = std::move(cgroup);
    if (notifier >= 0) {
      worker->oomNotifier_.emplace(executor, notifier);
      spawnLogged(executor, worker->watchMemory(), "worker memory watch");
    } else {
      log::pool()->warn("[ws:{}][pid {}] cannot watch the OOM events of the worker's cgroup ({}); an OOM kill is "
                        "known when the worker exits",
                        worker->workspace(), worker->pid(), std::strerror(errno));
    }
  }
  spawnLogged(executor, worker->readOutput(), "worker output reader");
  spawnLogged(executor, worker->readFrames(), "worker frame reader");
  return worker;
}

Worker::Worker(asio::any_io_executor executor, process::Started started, WorkerOptions options)
    : executor_(executor),
      options_(std::move(options)),
      child_(std::move(started.child)),
      requests_(executor, started.requests),
      frames_(executor, started.frames),
      output_(executor, started.output),
      retireKill_(executor),
      lastUsed_(std::chrono::steady_clock::now()),
      startedAt_(lastUsed_) {}

// The child's destructor kills and reaps the process if it is still there.
Worker::~Worker() = default;

std::string Worker::label() const {
  std::string label(workspace::languageName(options_.language));
  if (options_.role == WorkerRole::Spare) label += " spare";
  if (options_.role == WorkerRole::Check) label += " checker";
  return label;
}

asio::awaitable<Result<void>> Worker::waitReady(std::chrono::milliseconds timeout) {
  co_await readyEvent_.waitFor(timeout);
  if (!readyResult_) {
    kill("the worker did not start within " + std::to_string(timeout.count()) + " ms");
    co_return Error{Errc::SpawnFailed, "The worker did not start within " + std::to_string(timeout.count()) + " ms"};
  }
  co_return *readyResult_;
}

asio::awaitable<Worker::Reply> Worker::call(std::string_view type, std::string_view members,
                                            std::chrono::milliseconds timeout, const RunScope* scope,
                                            std::shared_ptr<Cancellation> cancel) {
  // A retiring worker still answers: a run that acquired it just before a redeploy goes through.
  if (state_ != State::Ready && state_ != State::Retiring) {
    Reply refused;
    refused.failure = "the worker is not running";
    co_return refused;
  }
  if (cancel && cancel->cancelled()) {
    Reply refused;
    refused.status = ReplyStatus::Cancelled;
    co_return refused;
  }
  auto self = shared_from_this();
  auto started = std::chrono::steady_clock::now();
  lastUsed_ = started;
  auto id = nextId_++;
  Pending pending;
  pending.started = started;
  pending.scope = scope;
  pending_.emplace(id, &pending);
  send(requestFrame(type, id, members));
  if (cancel)
    cancel->onCancel([weak = weak_from_this(), id] {
      if (auto worker = weak.lock()) worker->cancelCall(id);
    });
  co_await pending.answered.waitFor(timeout);
  pending_.erase(id);
  // The run is over: so are the calls it made that are still in flight.
  if (pending.nested) pending.nested->cancel();
  if (pending.cancelled) {
    pending.reply.status = ReplyStatus::Cancelled;
    unansweredTimeout_ = true;  // as after a timeout: it may still be running that call
  } else if (!pending.done) {
    pending.reply.status = ReplyStatus::TimedOut;
    unansweredTimeout_ = true;  // it may still be running that call
  }
  pending.reply.elapsed = std::chrono::steady_clock::now() - started;
  if (idleUntilQuickRun_ && pending.done && type == "run" && pending.reply.elapsed < options_.longRunAfter) {
    idleUntilQuickRun_ = false;
    adjustPriority();
  }
  lastUsed_ = std::chrono::steady_clock::now();
  if (lowered_) adjustPriority();
  finishRetiringIfIdle();
  co_return std::move(pending.reply);
}

void Worker::cancelCall(std::uint64_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end() || it->second->done) return;
  it->second->cancelled = true;
  // The worker ends the run where it can (a Python task is cancelled); its late answer is dropped.
  send(requestFrame("cancel", id, ""));
  it->second->answered.set();
}

asio::awaitable<RunOutcome> Worker::run(std::string_view function, const boost::json::value& parameters,
                                        std::chrono::milliseconds timeout) {
  static const RunScope kNoCalls;
  std::shared_ptr<Cancellation> never;  // named (GCC 12, common/async.hpp)
  co_return co_await run(function, parameters, timeout, kNoCalls, std::move(never));
}

asio::awaitable<RunOutcome> Worker::run(std::string_view function, const boost::json::value& parameters,
                                        std::chrono::milliseconds timeout, const RunScope& scope,
                                        std::shared_ptr<Cancellation> cancel) {
  const auto members = runMembers(function, parameters);  // named (GCC 12, common/async.hpp)
  auto reply = co_await call("run", members, timeout, &scope, std::move(cancel));
  RunOutcome outcome;
  outcome.elapsed = reply.elapsed;
  outcome.logs = std::move(reply.logs);
  outcome.duration = std::chrono::duration_cast<std::chrono::milliseconds>(reply.elapsed + 500us).count();
  const auto quoted = [&] { return "Function \"" + std::string(function) + "\""; };
  switch (reply.status) {
    case ReplyStatus::TimedOut: {
      static log::RateLimit timeoutLog;
      if (auto note = timeoutLog.admit())
        log::pool()->warn("[ws:{}][pid {}] run {} timed out after {} ms{}", workspace(), pid(), function,
                          timeout.count(), *note);
      outcome.error = Error{Errc::RunTimedOut,
                            quoted() + " timed out after " + std::to_string(timeout.count()) + " ms"};
      // The run has failed; whether the worker is stuck (then killed) or only awaiting something
      // slow (then it keeps serving its other runs) is the ping's to tell.
      spawnLogged(executor_, pingOrKill(), "worker ping");
      break;
    }
    case ReplyStatus::Cancelled:
      outcome.error = Error{Errc::WorkerDied, quoted() + " was cancelled: the run that called it ended"};
      // As after a timeout: a worker stuck in that call is killed, one that answers keeps serving.
      spawnLogged(executor_, pingOrKill(), "worker ping");
      break;
    case ReplyStatus::Died:
      outcome.error = reply.outOfMemory ? Error{Errc::OutOfMemory, quoted() + " ran out of memory: " + reply.failure}
                                        : Error{Errc::WorkerDied, quoted() + " failed: " + reply.failure};
      break;
    case ReplyStatus::Replied:
      if (reply.result) {
        outcome.result = std::move(*reply.result);
        outcome.duration = reply.duration;
      } else {
        decodeRunAnswer(reply.frame, outcome);
      }
      break;
  }
  co_return outcome;
}

asio::awaitable<Result<std::vector<SyntaxProblem>>> Worker::check(const std::vector<CheckedFunction>& functions,
                                                                   std::chrono::milliseconds timeout) {
  const auto members = checkMembers(functions);
  auto reply = co_await call("check", members, timeout);
  if (reply.status == ReplyStatus::TimedOut) {
    spawnLogged(executor_, pingOrKill(), "checker ping");
    co_return Error{Errc::RunTimedOut, "The syntax check timed out"};
  }
  if (reply.status == ReplyStatus::Died) co_return Error{Errc::WorkerDied, reply.failure};
  co_return decodeCheckAnswer(reply.frame);
}

asio::awaitable<bool> Worker::load(std::string_view workspace, std::string_view filename, std::string_view source,
                                   std::chrono::milliseconds timeout) {
  const auto members = loadMembers(filename, source);

  auto reply = co_await call("load", members, timeout);
  if (reply.status != ReplyStatus::Replied || !decodeLoadAnswer(reply.frame)) co_return false;
  options_.workspace = std::string(workspace);
  options_.role = WorkerRole::Serve;
  co_return true;
}

asio::awaitable<bool> Worker::ping(std::chrono::milliseconds timeout) {
  auto reply = co_await call("ping", "", timeout);
  co_return reply.status == ReplyStatus::Replied;
}

asio::awaitable<void> Worker::pingOrKill() {
  if (state_ == State::Dead || suspect_) co_return;
  auto self = shared_from_this();
  auto verdict = std::make_shared<Event>();
  suspect_ = verdict;
  adjustPriority();
  // A responsive event loop answers within a millisecond. One that does not answer within
  // busyLook while its processes run (a loop) is stuck: killed at once, so that the next run gets
  // a fresh worker. One that is blocked but idle (a synchronous sleep) has the rest of pingTimeout.
  const auto look = std::min(options_.busyLook, options_.pingTimeout);
  const auto before = process::lookAtTree(pid());
  const auto lookedAt = std::chrono::steady_clock::now();
  bool answered = co_await ping(look);
  bool busy = false;
  if (!answered && state_ != State::Dead) {
    const auto after = process::lookAtTree(pid());
    busy = before && after && process::looksBusy(*before, *after, std::chrono::steady_clock::now() - lookedAt);
    if (!busy && options_.pingTimeout > look) answered = co_await ping(options_.pingTimeout - look);
  }
  suspect_.reset();
  adjustPriority();
  if (!answered && state_ != State::Dead) {
    if (options_.metrics) ++options_.metrics->killsStuck;
    killedStuck_ = true;
    kill(busy ? "the worker stopped responding after a run timed out and kept running (stuck in a loop?): killed"
              : "the worker stopped responding after a run timed out and was killed");
  }
  verdict->set();
}

asio::awaitable<void> Worker::verdict() {
  if (auto verdict = suspect_) co_await verdict->wait();
}

void Worker::send(std::string frame) {
  outgoing_ += frame;
  if (!writing_) flush();
}

// A plain completion handler, not a coroutine: it runs for every batch of frames, and spawning a
// coroutine per batch showed in the profile. Frames queued while a write is in flight go out
// together with the next one.
void Worker::flush() {
  if (outgoing_.empty() || !requests_.is_open()) {
    outgoing_.clear();
    writing_ = false;
    if (closeWhenFlushed_) {
      boost::system::error_code ignored;
      requests_.close(ignored);
    }
    return;
  }
  writing_ = true;
  inFlightBytes_.clear();
  inFlightBytes_.swap(outgoing_);
  asio::async_write(requests_, asio::buffer(inFlightBytes_),
                    [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                      // On an error the worker is gone; readFrames() sees the end and fails the calls.
                      if (ec) self->outgoing_.clear();
                      self->flush();
                    });
}

void Worker::retire() {
  if (state_ == State::Dead || state_ == State::Retiring) return;
  state_ = State::Retiring;
  finishRetiringIfIdle();
}

void Worker::finishRetiringIfIdle() {
  if (state_ != State::Retiring || !pending_.empty() || !requests_.is_open()) return;
  log::pool()->info("[ws:{}][pid {}] retiring {} worker", workspace(), pid(), label());
  closeRequests();
  // The bootstrap exits when its input ends; a worker stuck in user code does not, so kill it.
  retireKill_.expires_after(options_.killGrace);
  retireKill_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec && self->state_ != State::Dead) self->kill("the worker was retired");
  });
}

void Worker::closeRequests() {
  // Let the writer flush first: closing under it would drop frames. flush() closes when done.
  closeWhenFlushed_ = true;
  if (!writing_) flush();
}

void Worker::kill(std::string reason, bool outOfMemory) {
  if (child_.reaped()) return;
  if (killReason_.empty()) {
    killReason_ = std::move(reason);
    killedForMemory_ = outOfMemory;
  }
  log::pool()->warn("[ws:{}][pid {}] killing {} worker: {}", workspace(), pid(), label(), killReason_);
  child_.kill();
  if (cgroup_) cgroup_->killAll();  // also what left the process group (a new session, a daemon)
}

std::string Worker::memoryCeilingReason() const {
  return "the worker's processes reached its memory ceiling of " +
         std::to_string(cgroup_->memoryMax() / (1024 * 1024)) + " MiB (WORKER_MEMORY_MAX_SIZE)";
}

// Wakes when the kernel's OOM killer may have acted in the worker's cgroup (a child process, a
// tmpfs filled beside the interpreter): the whole worker is then killed, so that its runs fail
// as OutOfMemory rather than going on with part of the tree gone. Ends when finish() closes the
// notifier.
asio::awaitable<void> Worker::watchMemory() {
  auto self = shared_from_this();
  std::array<char, 4096> events;
  while (oomNotifier_ && oomNotifier_->is_open()) {
    auto [ec] = co_await oomNotifier_->async_wait(asio::posix::descriptor_base::wait_read, as_tuple(use_awaitable));
    if (ec || !oomNotifier_->is_open()) co_return;
    // Consumed (an eventfd's counter, or inotify events), so that the next wait blocks again.
    [[maybe_unused]] auto n = ::read(oomNotifier_->native_handle(), events.data(), events.size());
    if (!child_.reaped() && killReason_.empty() && cgroup_->oomKills() > 0) kill(memoryCeilingReason(), true);
  }
}

std::optional<process::CpuClass> Worker::cpuClass() const {
  if (!cgroup_) return std::nullopt;
  return cgroup_->cpuClass();
}

void Worker::startLow() {
  if (!cgroup_ || options_.longRunAfter.count() <= 0) return;
  idleUntilQuickRun_ = true;
  adjustPriority();
}

process::CpuClass Worker::wantedCpuClass() const {
  // While a ping asks whether the worker is stuck, it has the normal weight: at the lowest, on a
  // busy machine, an idle worker could not answer in time and would be taken for a stuck one.
  if (suspect()) return process::CpuClass::Normal;
  if (idleUntilQuickRun_) return process::CpuClass::Low;
  if (options_.longRunAfter.count() <= 0) return process::CpuClass::Normal;
  bool longCall = unansweredTimeout_;
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [id, pending] : pending_)
    if (now - pending->started >= options_.longRunAfter) longCall = true;
  return longCall ? process::CpuClass::Low : process::CpuClass::Normal;
}

void Worker::adjustPriority() {
  if (child_.reaped() || !killReason_.empty()) return;
  if (cgroup_) {
    const auto wanted = wantedCpuClass();
    if (wanted == cgroup_->cpuClass()) return;
    if (!cgroup_->setCpuClass(wanted))
      log::pool()->warn("[ws:{}][pid {}] cannot change the CPU class of the worker's cgroup: {}", workspace(), pid(),
                        std::strerror(errno));
    lowered_ = wanted != process::CpuClass::Normal;
    if (lowered_)
      log::pool()->debug("[ws:{}][pid {}] a call runs for over {} ms: lowered to the lowest CPU weight (its cgroup)",
                         workspace(), pid(), options_.longRunAfter.count());
    else
      log::pool()->debug("[ws:{}][pid {}] no long call left: its cgroup is back to the normal CPU weight",
                         workspace(), pid());
    return;
  }
  if (options_.longRunAfter.count() <= 0) return;
  const bool longCall = wantedCpuClass() == process::CpuClass::Low;
  if (longCall && !lowered_) {
    lowered_ = true;
    process::setTreeNice(pid(), options_.longRunNice);
    log::pool()->debug("[ws:{}][pid {}] a call runs for over {} ms: lowered to nice {}", workspace(), pid(),
                       options_.longRunAfter.count(), options_.longRunNice);
  } else if (!longCall && lowered_ && canRaise_) {
    if (process::setTreeNice(pid(), 0)) {
      lowered_ = false;
      log::pool()->debug("[ws:{}][pid {}] no long call left: back to normal priority", workspace(), pid());
    } else {
      canRaise_ = false;
      log::pool()->info("[ws:{}][pid {}] cannot raise the worker's priority back (no CAP_SYS_NICE): it stays lowered",
                        workspace(), pid());
    }
  }
}

void Worker::onExit(std::function<void()> callback) {
  if (child_.reaped()) callback();
  else exitCallbacks_.push_back(std::move(callback));
}

asio::awaitable<void> Worker::readFrames() {
  auto self = shared_from_this();
  LineSplitter splitter(options_.maxFrameBytes);
  std::vector<char> buffer(64 * 1024);
  for (;;) {
    auto [ec, n] = co_await frames_.async_read_some(asio::buffer(buffer), as_tuple(use_awaitable));
    if (ec) break;
    if (!splitter.feed(std::string_view(buffer.data(), n))) {
      kill("the worker sent a frame over " + std::to_string(options_.maxFrameBytes) + " bytes");
      break;
    }
    std::string_view line;
    while (splitter.next(line)) handleFrame(line);
  }
  co_await finish();
}

void Worker::handleFrame(std::string_view line) {
  // The common case first: a successful result, its text forwarded without a parse.
  if (auto result = readResultFrame(line)) {
    auto it = pending_.find(result->id);
    if (it == pending_.end()) return;  // a late answer to a call that timed out
    Pending& pending = *it->second;
    pending.reply.result.emplace(result->result);
    pending.reply.duration = result->duration;
    ++textResults_;
    answer(pending);
    return;
  }
  boost::system::error_code ec;
  json::parse_options options;
  options.max_depth = kMaxFrameDepth;
  auto value = json::parse(line, ec, {}, options);
  if (ec || !value.is_object()) {
    log::pool()->warn("[ws:{}][pid {}] ignoring a malformed frame: {}", workspace(), pid(), log::truncateForLog(line, 200));
    return;
  }
  auto& frame = value.as_object();
  const auto* type = frame.if_contains("type");
  std::string_view kind = type && type->is_string() ? std::string_view(type->get_string()) : "";
  if (kind == "ready") {
    if (state_ == State::Starting) state_ = State::Ready;
    readyResult_ = Result<void>();
    readyEvent_.set();
    return;
  }
  if (kind == "fatal") {
    const auto* message = frame.if_contains("message");
    std::string text = message && message->is_string() ? std::string(message->get_string()) : "unknown error";
    log::pool()->error("[ws:{}][pid {}] worker failed to start: {}", workspace(), pid(), log::truncateForLog(text));
    if (!readyResult_) readyResult_ = Error{Errc::SpawnFailed, "The worker failed to start: " + text};
    readyEvent_.set();
    return;
  }
  if (kind == "call") {
    auto request = decodeCallFrame(frame);
    if (!request) {
      log::pool()->warn("[ws:{}][pid {}] ignoring a malformed call frame: {}", workspace(), pid(),
                        log::truncateForLog(line, 200));
      return;
    }
    spawnLogged(executor_, serveCall(std::move(*request)), "nested call");
    return;
  }
  const auto* idValue = frame.if_contains("id");
  if (!idValue || !idValue->is_number()) return;
  boost::system::error_code idError;
  auto id = idValue->to_number<std::uint64_t>(idError);
  if (idError) return;
  auto it = pending_.find(id);
  if (it == pending_.end()) return;  // a late answer to a call that timed out
  Pending& pending = *it->second;
  if (kind == "log") {
    frame.erase("type");
    frame.erase("id");
    appendLog(pending, std::move(frame));
    return;
  }
  pending.reply.frame = std::move(frame);
  answer(pending);
}

// The cap is on the whole run, the logs of its nested calls included. The bootstrap caps its own
// logs; this also guards against a worker that writes frames directly.
void Worker::appendLog(Pending& pending, json::object log) {
  if (pending.scope && pending.scope->logsToRun != 0) {
    if (auto caller = pending.scope->logsTo.lock()) caller->appendLogToRun(pending.scope->logsToRun, std::move(log));
    return;
  }
  if (pending.logsTruncated) return;
  const auto* message = log.if_contains("message");
  auto size = message && message->is_string() ? message->get_string().size() : 0;
  if (pending.logBytes + size > options_.logsMaxBytes) {
    pending.logsTruncated = true;
    pending.reply.logs.push_back(json::object{
        {"level", "warn"},
        {"message", "[customcode] logs truncated: this run wrote more than " +
                        std::to_string(options_.logsMaxBytes) + " bytes of logs"},
        {"timestamp", log.contains("timestamp") ? log.at("timestamp") : json::value(nullptr)}});
    return;
  }
  pending.logBytes += size;
  pending.reply.logs.push_back(std::move(log));
}

void Worker::appendLogToRun(std::uint64_t run, json::object log) {
  auto it = pending_.find(run);
  if (it != pending_.end() && !it->second->done && !it->second->cancelled) appendLog(*it->second, std::move(log));
}

asio::awaitable<void> Worker::serveCall(CallRequest request) {
  auto self = shared_from_this();
  const std::string caller(workspace::languageName(options_.language));
  auto refuse = [&](std::string name, std::string message) {
    send(calledErrorFrame(request.id, json::object{{"name", std::move(name)},
                                                   {"message", std::move(message)},
                                                   {"function", request.function}}));
  };
  auto it = pending_.find(request.run);
  if (it == pending_.end() || !it->second->scope || it->second->done || it->second->cancelled) {
    refuse("Error", "\"" + request.function + "\" was not called: the run that calls it has ended");
    co_return;
  }
  Pending& run = *it->second;
  if (!run.scope->calls) {
    refuse("Error", "\"" + request.function + "\" was not called: this run cannot call functions of another language");
    co_return;
  }
  if (!run.nested) run.nested = std::make_shared<Cancellation>();
  NestedCall nested{.function = request.function,
                    .parameters = std::move(request.parameters),
                    .scope = *run.scope,
                    .caller = caller,
                    .cancel = run.nested};
  ++nested.scope.depth;
  nested.scope.logsTo = weak_from_this();
  nested.scope.logsToRun = request.run;
  auto* handler = run.scope->calls;
  auto outcome = co_await handler->call(std::move(nested));

  // The run may have ended meanwhile (answered, timed out, its worker gone): look it up again.
  auto again = pending_.find(request.run);
  const bool timedOut = outcome.error && outcome.error->code == Errc::RunTimedOut;
  // One deadline: a nested call that timed out fails the whole run as timed out, at once.
  if (timedOut && again != pending_.end() && !again->second->done && !again->second->cancelled)
    again->second->answered.set();
  if (state_ == State::Dead) co_return;
  if (outcome.ok()) send(calledResultFrame(request.id, outcome.result));
  else if (timedOut) refuse("TimeoutError", outcome.error->message);
  else if (outcome.error->details.is_object()) send(calledErrorFrame(request.id, outcome.error->details.get_object()));
  else refuse("Error", outcome.error->message);
}

void Worker::answer(Pending& pending) {
  unansweredTimeout_ = false;
  pending.done = true;
  pending.reply.status = ReplyStatus::Replied;
  pending.answered.set();
}

asio::awaitable<void> Worker::readOutput() {
  auto self = shared_from_this();
  std::vector<char> buffer(16 * 1024);
  std::string partial;
  for (;;) {
    auto [ec, n] = co_await output_.async_read_some(asio::buffer(buffer), as_tuple(use_awaitable));
    if (ec) break;
    partial.append(buffer.data(), n);
    outputTail_.append(buffer.data(), n);
    if (outputTail_.size() > 2 * kOutputTailBytes) outputTail_.erase(0, outputTail_.size() - kOutputTailBytes);
    std::size_t start = 0;
    for (auto end = partial.find('\n'); end != std::string::npos || partial.size() - start > 4096;
         end = partial.find('\n', start)) {
      auto stop = end == std::string::npos ? start + 4096 : end;
      auto now = std::chrono::steady_clock::now();
      if (now - outputWindowStart_ > 1s) {
        if (outputLinesInWindow_ > kOutputLinesPerSecond)
          log::runtime()->warn("[ws:{}][pid {}] {} output line(s) not logged", workspace(), pid(),
                               outputLinesInWindow_ - kOutputLinesPerSecond);
        outputWindowStart_ = now;
        outputLinesInWindow_ = 0;
      }
      if (++outputLinesInWindow_ <= kOutputLinesPerSecond)
        log::runtime()->info("[ws:{}][pid {}] {}", workspace(), pid(),
                             log::truncateForLog(std::string_view(partial).substr(start, stop - start)));
      start = end == std::string::npos ? stop : stop + 1;
      if (start >= partial.size()) break;
    }
    partial.erase(0, start);
  }
  if (!partial.empty()) log::runtime()->info("[ws:{}][pid {}] {}", workspace(), pid(), log::truncateForLog(partial));
  outputClosed_.set();
}

asio::awaitable<void> Worker::finish() {
  state_ = State::Dead;
  boost::system::error_code ignored;
  requests_.close(ignored);
  frames_.close(ignored);
  // The output pipe ends when the process (and any child holding it) is gone; wait a little for
  // it, since the reason of a crash (e.g. V8's out-of-memory report) is there.
  co_await outputClosed_.waitFor(kOutputDrainLimit);
  // The frames ended: the process is exiting. One that lingers past the grace is killed.
  child_.killAt(std::chrono::steady_clock::now() + options_.killGrace);
  int status = co_await child_.wait();
  output_.close(ignored);
  // The kernel's OOM killer says nothing on the worker's output: its counter does, read once now.
  bool cgroupOutOfMemory = false;
  if (cgroup_) {
    if (oomNotifier_) oomNotifier_->close(ignored);
    cgroupOutOfMemory = cgroup_->oomKills() > 0;
    cgroup_->killAll();  // the rest of the tree, wherever it went
    if (cgroupOutOfMemory && killReason_.empty()) killReason_ = memoryCeilingReason();
  }

  bool outOfMemory = killedForMemory_ || cgroupOutOfMemory || looksOutOfMemory(outputTail_);
  std::string failure = !killReason_.empty() ? killReason_
                        : outOfMemory        ? "the worker ran out of memory"
                                             : "the worker process " + process::describeStatus(status);
  log::pool()->info("[ws:{}][pid {}] {} worker gone: {}", workspace(), pid(), label(), failure);
  if (!readyResult_) {
    readyResult_ = Error{Errc::SpawnFailed, "The worker failed to start: " + failure +
                                                (outputTail_.empty() ? "" : ": " + log::truncateForLog(outputTail_, 400))};
    readyEvent_.set();
  }
  for (auto& [id, pending] : pending_) {
    pending->done = true;
    pending->reply.status = ReplyStatus::Died;
    pending->reply.failure = failure;
    pending->reply.outOfMemory = outOfMemory;
    pending->answered.set();
  }
  retireKill_.cancel();
  exited_.set();
  auto callbacks = std::move(exitCallbacks_);
  for (auto& callback : callbacks) callback();
  if (cgroup_) {
    // After the callbacks: the pool need not wait for the removal. Named (GCC 12, common/async.hpp).
    auto executor = executor_;
    const auto deadline = std::chrono::steady_clock::now() + kCgroupRemoveLimit;
    if (co_await cgroup_->remove(executor, deadline))
      cgroup_.reset();
    else
      log::pool()->warn("[ws:{}][pid {}] the worker's cgroup still has processes {} ms after its exit", workspace(),
                        pid(), kCgroupRemoveLimit.count());
  }
}

}  // namespace customcode::pool
