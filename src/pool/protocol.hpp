#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

// The worker protocol: one JSON object per line, on a pipe of its own in each direction (fd 3 into
// the worker, fd 4 out of it), never on stdout.
//
//   service -> worker  {"type":"run","id":7,"fn":"hello","parameters":{...}}
//                      {"type":"check","id":8,"functions":[{"name","code","parameters":[...]}]}
//                      {"type":"ping","id":9}
//   worker -> service  {"type":"ready","pid":123}                      once, after loading
//                      {"type":"log","id":7,"level":"log","message":"…","timestamp":"…"}
//                      {"type":"result","id":7,"ok":true,"result":…,"duration":3}
//                      {"type":"result","id":7,"ok":false,"error":{"name","message","stack"},"duration":3}
//                      {"type":"checked","id":8,"errors":[{"function","line","column","message"}]}
//                      {"type":"pong","id":9}
//                      {"type":"fatal","message":"…"}                  before exiting at start-up
// Any frame with an id other than a log answers the request with that id.
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

}  // namespace customcode::pool
