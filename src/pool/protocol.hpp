#pragma once

#include "common/errors.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// The worker protocol: one JSON object per line, on a pipe of its own in each direction (fd 3 into
// the worker, fd 4 out of it), never on stdout.
//
//   service -> worker  {"type":"run","id":7,"fn":"hello","parameters":{...}}
//                      {"type":"check","id":8,"functions":[{"name","code","parameters":[...]}]}
//                      {"type":"ping","id":9}
//                      {"type":"load","id":10,"filename":"/data/ws/functions.mjs","source":"…"}   spares only
//                      {"type":"called","id":3,"ok":true,"result":…}          answers a "call" (below)
//                      {"type":"called","id":3,"ok":false,"error":{"name","message","stack"?,"function"}}
//                      {"type":"cancel","id":7}      the run 7 is no longer wanted (its caller is gone)
//   worker -> service  {"type":"ready","pid":123}                      once, after loading
//                      {"type":"log","id":7,"level":"log","message":"…","timestamp":"…"}
//                      {"type":"result","id":7,"ok":true,"result":…,"duration":3}
//                      {"type":"result","id":7,"ok":false,"error":{"name","message","stack"},"duration":3}
//                      {"type":"checked","id":8,"errors":[{"function","line","column","message"}]}
//                      {"type":"pong","id":9}
//                      {"type":"loaded","id":10,"ok":true}
//                      {"type":"fatal","message":"…"}                  before exiting at start-up
//                      {"type":"call","id":3,"run":7,"fn":"other","parameters":{...}}
// Any frame with an id other than a log or a call answers the request with that id.
//
// A "call" is a function of run 7 calling `other`, a function of the workspace in the other
// language: its id is the worker's own (one counter per worker, apart from the service's ids),
// and the service answers it with a "called" frame of the same id once it ran `other` on the
// workspace's worker of that language, within what is left of run 7's deadline. The error of a
// "called" frame names the function where it was raised ("function"); the worker raises it as an
// exception of its language, and reports it with that "function" when the run does not catch it.
// The call depth is the service's to count: a worker cannot claim one.
namespace customcode::pool {

// Splits a byte stream into lines. A line longer than `maxLine` is an error: the worker that sent
// it is broken or hostile.
class LineSplitter {
 public:
  explicit LineSplitter(std::size_t maxLine) : maxLine_(maxLine) {}

  // Appends bytes; returns false if a line grew past the limit.
  bool feed(std::string_view bytes);

  // The next complete line without its '\n', valid until the next feed(); false when none is left.
  bool next(std::string_view& line);

 private:
  std::string buffer_;
  std::size_t consumed_ = 0;   // bytes handed out by next()
  std::size_t lineStart_ = 0;  // start of the line feed() has not seen the end of
  std::size_t maxLine_;
};

// A successful result frame in the exact layout the bootstraps write,
//   {"type":"result","id":7,"ok":true,"duration":3,"result":<JSON>}
// read without building the result: the service splices its text into the response as it is.
struct ResultFrame {
  std::uint64_t id = 0;
  std::int64_t duration = 0;
  std::string_view result;  // one complete JSON value, validated
};

// The frame read as above, or nullopt when it has another layout or the result is not one valid
// JSON value (the caller then parses the frame the general way). Nesting is limited only by
// kMaxResultDepth, far beyond what a JSON.stringify or json.dumps of a result reaches.
inline constexpr std::size_t kMaxResultDepth = 100'000;
std::optional<ResultFrame> readResultFrame(std::string_view line);

// Nesting allowed when a frame is parsed into a value (logs, errors, other frames).
inline constexpr std::size_t kMaxFrameDepth = 1'000;

// Builds a request frame: {"type":TYPE,"id":ID,<members>}\n, where `members` is either empty or
// JSON object members ("fn":"x","parameters":{...}) already serialised.
std::string requestFrame(std::string_view type, std::uint64_t id, std::string_view members);

// The members of each request, serialised for requestFrame.
std::string runMembers(std::string_view function, const boost::json::value& parameters);
struct CheckedFunction {
  std::string name;
  std::string code;
  std::vector<std::string> parameters;
};
std::string checkMembers(const std::vector<CheckedFunction>& functions);
std::string loadMembers(std::string_view filename, std::string_view source);

// A "call" frame, decoded (a frame of another type, or with a member of the wrong type: nullopt).
// Parameters are an object; a call without parameters has an empty one.
struct CallRequest {
  std::uint64_t id = 0;   // the worker's id of the call, for the answer
  std::uint64_t run = 0;  // the service's id of the run that calls
  std::string function;
  boost::json::object parameters;
};
std::optional<CallRequest> decodeCallFrame(boost::json::object& frame);

// The answers to a call: the callee's result (one JSON value, as text), or the error the caller
// raises: {"name","message","stack"?,"function"}.
std::string calledResultFrame(std::uint64_t id, std::string_view result);
std::string calledErrorFrame(std::uint64_t id, const boost::json::object& error);

// What a run came to. A successful run has one shape: its result as JSON text. Any other outcome
// is an `error` (http/error_response.cpp maps its code to a status); every one but
// FunctionNotFound keeps the run's logs and duration.
struct RunOutcome {
  std::optional<Error> error;  // nullopt: success
  std::string result;          // on success: one JSON value, as text
  boost::json::array logs;     // the run's log frames, in order, without "type" and "id"
  std::int64_t duration = 0;   // ms: the worker's own measure, or the time waited when it did not answer
  std::chrono::steady_clock::duration elapsed{};  // the time the service waited for the answer

  bool ok() const { return !error; }
  // The label of the run in the customcode_runs_total metric, or empty when it is not counted.
  std::string_view metricLabel() const;
};

// Fills `outcome` from the answer of a run: a result frame parsed the general way
// ({"ok":false,...}, or a success in another layout than readResultFrame's).
// An error that names the function where it was raised ("function": it crossed from a function of
// the other language) is always a FunctionFailed, whatever its name.
void decodeRunAnswer(boost::json::object& frame, RunOutcome& outcome);

// One syntax error reported by a checker: line and column of the user's code, from 1.
struct SyntaxProblem {
  std::string function;
  std::optional<std::int64_t> line;
  std::optional<std::int64_t> column;
  std::string message;
};
std::vector<SyntaxProblem> decodeCheckAnswer(const boost::json::object& frame);

// Whether a "loaded" answer says the spare took the module.
bool decodeLoadAnswer(const boost::json::object& frame);

}  // namespace customcode::pool
