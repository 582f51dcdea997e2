#pragma once

#include "common/errors.hpp"
#include "common/event.hpp"
#include "common/metrics.hpp"
#include "pool/protocol.hpp"
#include "process/cgroup.hpp"
#include "process/child.hpp"
#include "workspace/workspace.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace customcode::workspace {
struct StoredWorkspace;  // workspace/workspace_store.hpp
}  // namespace customcode::workspace

namespace customcode::pool {

namespace asio = boost::asio;

// What a worker is for: serving one workspace, waiting as a spare to take one over, or checking
// syntax at save time. Only names it in log lines.
enum class WorkerRole { Serve, Spare, Check };

struct WorkerOptions {
  std::string workspace;  // for log lines ("-" when it serves none)
  workspace::Language language = workspace::Language::Node;
  WorkerRole role = WorkerRole::Serve;
  std::chrono::milliseconds pingTimeout{1'000};  // after a run timed out: a stuck worker is killed
  // After a run timed out, a worker that has not answered a ping this long while its processes
  // keep running is stuck in a loop and killed without waiting for pingTimeout.
  std::chrono::milliseconds busyLook{25};
  std::size_t maxFrameBytes = 64 * 1024 * 1024;
  std::size_t logsMaxBytes = 256 * 1024;  // per call; past it logs are dropped and the cut marked
  std::chrono::milliseconds killGrace{500};
  // A worker with a call in flight for longer than this runs at `longRunNice` until it has none
  // (see adjustPriority). Zero turns it off.
  std::chrono::milliseconds longRunAfter{0};
  int longRunNice = 19;
  Metrics* metrics = nullptr;  // counts the workers killed as stuck; may be null
  // When set, the worker runs in a cgroup of its own made here (process/cgroup.hpp): its CPU class
  // replaces the nice value, an OOM kill in it fails the worker's runs as OutOfMemory, and it is
  // removed once the worker is reaped. Owned by Server.
  process::Cgroups* cgroups = nullptr;
};

// Ends the calls a run made to functions of the other language (below) when that run ends: it was
// answered, it timed out, it was cancelled itself, or its worker died. cancel() runs each
// callback once; a callback added after it runs at once. Runs on the workers' executor.
class Cancellation {
 public:
  void cancel() {
    if (cancelled_) return;
    cancelled_ = true;
    auto callbacks = std::move(callbacks_);
    for (auto& callback : callbacks) callback();
  }
  bool cancelled() const { return cancelled_; }
  void onCancel(std::function<void()> callback) {
    if (cancelled_) callback();
    else callbacks_.push_back(std::move(callback));
  }

 private:
  bool cancelled_ = false;
  std::vector<std::function<void()>> callbacks_;
};

class CallHandler;
class Worker;

// What a run carries beyond its function and parameters: where its calls to functions of the
// workspace's other language go, and what binds them (the same version of the workspace, one
// deadline, a depth). The default scope takes no calls: a run without one that calls is answered
// with an error.
struct RunScope {
  CallHandler* calls = nullptr;  // owned by the caller of Worker::run, outlives the run
  std::shared_ptr<const workspace::StoredWorkspace> stored;  // the version the run is bound to
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  unsigned depth = 0;  // 0 for a run of a request, n for a call made at depth n - 1
  // A nested call's logs go to the run that called it as they come (set by the caller's worker):
  // one log in the order things happened, kept even when the call times out.
  std::weak_ptr<Worker> logsTo;
  std::uint64_t logsToRun = 0;
};

// A call from a function to a function of the other language (pool/protocol.hpp's "call" frame).
struct NestedCall {
  std::string function;
  boost::json::object parameters;
  RunScope scope;  // the caller's, one level deeper
  std::string caller;  // the language of the caller, for messages
  std::shared_ptr<Cancellation> cancel;  // cancelled when the calling run ends
};

// Serves nested calls: runs the callee on the workspace's worker of its language (Worker::run with
// the call's scope and cancellation, so its logs reach the caller's run as they come) and returns
// its outcome. Every error but RunTimedOut must be a FunctionFailed whose details are what the
// caller raises ({"name","message","stack"?,"function"}).
class CallHandler {
 public:
  virtual ~CallHandler() = default;
  virtual asio::awaitable<RunOutcome> call(NestedCall call) = 0;
};

// One worker process and the one owner of what happens on it: it encodes each request, decodes
// each answer and applies the timeout rule of a run (the run fails at once; a ping then asks
// whether the worker is stuck, and it is killed if it does not answer). It lives until the
// process is gone and reaped: its reader coroutines hold a reference to it. Runs on one executor
// (no strand); every method is called from it.
class Worker : public std::enable_shared_from_this<Worker> {
 public:
  enum class State { Starting, Ready, Retiring, Dead };

  // Spawns the process and starts reading it. Fails with SpawnFailed.
  static Result<std::shared_ptr<Worker>> start(asio::any_io_executor executor, const process::LaunchSpec& spec,
                                               WorkerOptions options);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Waits for the ready frame. Fails with SpawnFailed on a timeout (the worker is then killed),
  // a crash or a fatal frame.
  asio::awaitable<Result<void>> waitReady(std::chrono::milliseconds timeout);

  // Runs `function` with `parameters`, failing with RunTimedOut after `timeout` (the runtime's
  // FUNCTIONS_RUN_TIMEOUT or its kin). Never throws for worker failures: they are the outcome's
  // error. The caller co_awaits at once (the arguments are references).
  asio::awaitable<RunOutcome> run(std::string_view function, const boost::json::value& parameters,
                                  std::chrono::milliseconds timeout);

  // The same, for a run whose functions may call functions of the other language: their "call"
  // frames go to scope.calls (see CallHandler) and are answered with "called" frames; the calls'
  // logs join this run's as they come (the cap is on the whole), and the calls still in flight
  // when this run ends, however it ends, are cancelled. A nested call that timed out fails this
  // run with RunTimedOut at once. `cancel` (may be null) ends this run early when its own caller
  // is gone: it fails with WorkerDied, the worker is sent a "cancel" frame, and is then pinged as
  // after a timeout (killed if it does not answer). The caller co_awaits at once.
  asio::awaitable<RunOutcome> run(std::string_view function, const boost::json::value& parameters,
                                  std::chrono::milliseconds timeout, const RunScope& scope,
                                  std::shared_ptr<Cancellation> cancel);

  // Compiles `functions` (a checker worker). Fails with RunTimedOut or WorkerDied.
  asio::awaitable<Result<std::vector<SyntaxProblem>>> check(const std::vector<CheckedFunction>& functions,
                                                            std::chrono::milliseconds timeout);

  // Hands a spare worker the module of `workspace`: true when it took it over, and from then on it
  // serves that workspace. The caller co_awaits at once.
  asio::awaitable<bool> load(std::string_view workspace, std::string_view filename, std::string_view source,
                             std::chrono::milliseconds timeout);

  // True when the worker answers a ping within `timeout`.
  asio::awaitable<bool> ping(std::chrono::milliseconds timeout);

  // Takes no new calls; the process is asked to exit once the calls in flight are answered.
  void retire();

  // SIGKILLs the process group now; calls in flight fail with `reason`.
  void kill(std::string reason, bool outOfMemory = false);

  // Whether it was killed as stuck in a loop (a run timed out and the ping found it busy or silent).
  bool killedStuck() const { return killedStuck_; }
  // With a cgroup: keeps the worker at the lowest CPU weight until one of its runs answers within
  // longRunAfter. For the worker that replaces one killed stuck: the next call of that code is
  // likely to spin again, and would otherwise take a full share of the CPU for longRunAfter.
  void startLow();

  // Set while a ping asks, after a run timed out, whether the worker is stuck. New runs wait for
  // the verdict (verdict()) rather than queue behind a busy loop.
  bool suspect() const { return suspect_ != nullptr; }
  asio::awaitable<void> verdict();

  // Lowers the worker's CPU priority (a high nice value, process/priority.hpp) while it has a call
  // in flight for longer than longRunAfter (or one timed out and it has answered nothing since),
  // and raises it back when it has none: the short runs of every workspace keep their latency
  // beside a long computation or a busy loop. Called periodically by the pool and when a call
  // ends. Raising back needs CAP_SYS_NICE; without it the worker stays lowered.
  // With a cgroup, its CPU class changes instead (cpuClass()), for the whole tree at once, and can
  // always be raised back.
  void adjustPriority();
  bool lowered() const { return lowered_; }
  // The cgroup's CPU class; nullopt without a cgroup.
  std::optional<process::CpuClass> cpuClass() const;

  // Runs `callback` once, when the process is gone and reaped (at once if it already is).
  void onExit(std::function<void()> callback);
  // Returns once the process is gone and reaped, or at `deadline`; true in the first case.
  asio::awaitable<bool> waitExit(std::chrono::steady_clock::time_point deadline) { return exited_.waitUntil(deadline); }

  State state() const { return state_; }
  // A killed worker takes no new run even before it is reaped.
  bool accepting() const { return state_ == State::Ready && killReason_.empty(); }
  pid_t pid() const { return child_.pid(); }
  std::size_t inFlight() const { return pending_.size(); }
  const std::string& workspace() const { return options_.workspace; }
  workspace::Language language() const { return options_.language; }
  // "nodejs", "python spare", "nodejs checker": for log lines.
  std::string label() const;
  std::chrono::steady_clock::time_point lastUsed() const { return lastUsed_; }
  std::chrono::steady_clock::time_point startedAt() const { return startedAt_; }
  // How many successful results came in the bootstraps' layout and were forwarded as text.
  std::uint64_t textResultsForTest() const { return textResults_; }

 private:
  struct Pending;
  enum class ReplyStatus { Replied, TimedOut, Died, Cancelled };
  struct Reply {
    ReplyStatus status = ReplyStatus::Died;
    boost::json::object frame;  // the answer, when Replied and not a fast-path result
    // A successful result read without parsing it (readResultFrame): its JSON text, spliced as
    // it is into the response. Set with `duration`; `frame` is then empty.
    std::optional<std::string> result;
    std::int64_t duration = 0;
    boost::json::array logs;   // log frames received for this call, in order
    std::string failure;       // why the worker died, when Died
    bool outOfMemory = false;  // when Died: it ran out of memory
    std::chrono::steady_clock::duration elapsed{};
  };

  Worker(asio::any_io_executor executor, process::Started started, WorkerOptions options);
  // Sends {"type":TYPE,"id":…,MEMBERS} and waits at most `timeout` for the answer. A timed-out
  // call is forgotten: a late answer is dropped.
  asio::awaitable<Reply> call(std::string_view type, std::string_view members, std::chrono::milliseconds timeout,
                              const RunScope* scope = nullptr, std::shared_ptr<Cancellation> cancel = nullptr);
  void cancelCall(std::uint64_t id);
  // Serves one "call" frame of a run in flight and writes its "called" answer.
  asio::awaitable<void> serveCall(CallRequest request);
  void appendLog(Pending& pending, boost::json::object log);
  void appendLogToRun(std::uint64_t run, boost::json::object log);
  asio::awaitable<void> pingOrKill();
  void send(std::string frame);
  void flush();
  asio::awaitable<void> readFrames();
  asio::awaitable<void> readOutput();
  void handleFrame(std::string_view line);
  void answer(Pending& pending);  // the call has its answer: wake its caller
  asio::awaitable<void> finish();
  asio::awaitable<void> watchMemory();
  process::CpuClass wantedCpuClass() const;
  std::string memoryCeilingReason() const;
  void closeRequests();
  void finishRetiringIfIdle();

  asio::any_io_executor executor_;
  WorkerOptions options_;
  process::Child child_;
  std::shared_ptr<Event> suspect_;  // set (and dropped) when the ping after a timeout has its verdict
  bool lowered_ = false;
  bool killedStuck_ = false;
  bool idleUntilQuickRun_ = false;  // see startLow()
  bool unansweredTimeout_ = false;  // a call timed out and the worker has answered nothing since
  bool canRaise_ = true;
  State state_ = State::Starting;
  asio::posix::stream_descriptor requests_;
  asio::posix::stream_descriptor frames_;
  asio::posix::stream_descriptor output_;
  std::string outgoing_;       // frames waiting for the write in flight
  std::string inFlightBytes_;  // the write in flight
  bool writing_ = false;
  bool closeWhenFlushed_ = false;
  std::uint64_t nextId_ = 1;
  std::unordered_map<std::uint64_t, Pending*> pending_;
  Event readyEvent_;
  std::optional<Result<void>> readyResult_;
  Event outputClosed_;
  Event exited_;
  std::string outputTail_;
  std::string killReason_;
  bool killedForMemory_ = false;
  asio::steady_timer retireKill_;
  std::vector<std::function<void()>> exitCallbacks_;
  std::chrono::steady_clock::time_point lastUsed_;
  std::chrono::steady_clock::time_point startedAt_;
  std::chrono::steady_clock::time_point outputWindowStart_;
  std::size_t outputLinesInWindow_ = 0;
  std::uint64_t textResults_ = 0;
  std::unique_ptr<process::WorkerCgroup> cgroup_;  // null without cgroups; removed after the reap
  std::optional<asio::posix::stream_descriptor> oomNotifier_;  // readable when the OOM killer acted
};

}  // namespace customcode::pool
