#include "pool/protocol.hpp"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/serialize.hpp>

#include <charconv>

namespace customcode::pool {

bool LineSplitter::feed(std::string_view bytes) {
  // Drop what next() already handed out before growing the buffer.
  if (consumed_ > 0) {
    buffer_.erase(0, consumed_);
    lineStart_ -= consumed_;
    consumed_ = 0;
  }
  auto scanFrom = buffer_.size();
  buffer_.append(bytes);
  for (auto i = buffer_.find('\n', scanFrom); i != std::string::npos; i = buffer_.find('\n', i + 1)) {
    if (i - lineStart_ > maxLine_) return false;
    lineStart_ = i + 1;
  }
  return buffer_.size() - lineStart_ <= maxLine_;
}

bool LineSplitter::next(std::string_view& line) {
  auto end = buffer_.find('\n', consumed_);
  if (end == std::string::npos) return false;
  line = std::string_view(buffer_).substr(consumed_, end - consumed_);
  consumed_ = end + 1;
  return true;
}

std::string requestFrame(std::string_view type, std::uint64_t id, std::string_view members) {
  std::string frame;
  frame.reserve(32 + type.size() + members.size());
  frame += "{\"type\":\"";
  frame += type;
  frame += "\",\"id\":";
  frame += std::to_string(id);
  if (!members.empty()) {
    frame += ',';
    frame += members;
  }
  frame += "}\n";
  return frame;
}

std::string runMembers(std::string_view function, const boost::json::value& parameters) {
  return "\"fn\":" + boost::json::serialize(boost::json::string(function)) +
         ",\"parameters\":" + boost::json::serialize(parameters);
}

std::string checkMembers(const std::vector<CheckedFunction>& functions) {
  boost::json::array list;
  for (const auto& function : functions) {
    boost::json::array parameters;
    for (const auto& p : function.parameters) parameters.push_back(boost::json::string(p));
    list.push_back(boost::json::object{{"name", function.name}, {"code", function.code}, {"parameters", parameters}});
  }
  return "\"functions\":" + boost::json::serialize(list);
}

std::string loadMembers(std::string_view filename, std::string_view source) {
  return "\"filename\":" + boost::json::serialize(boost::json::string(filename)) +
         ",\"source\":" + boost::json::serialize(boost::json::string(source));
}

std::optional<CallRequest> decodeCallFrame(boost::json::object& frame) {
  CallRequest call;
  const auto* id = frame.if_contains("id");
  const auto* run = frame.if_contains("run");
  const auto* fn = frame.if_contains("fn");
  auto* parameters = frame.if_contains("parameters");
  if (!id || !run || !fn || !fn->is_string()) return std::nullopt;
  boost::system::error_code ec;
  call.id = id->to_number<std::uint64_t>(ec);
  if (ec) return std::nullopt;
  call.run = run->to_number<std::uint64_t>(ec);
  if (ec) return std::nullopt;
  call.function = std::string(fn->get_string());
  if (parameters && parameters->is_object()) call.parameters = std::move(parameters->get_object());
  else if (parameters && !parameters->is_null()) return std::nullopt;
  return call;
}

std::string calledResultFrame(std::uint64_t id, std::string_view result) {
  std::string frame;
  frame.reserve(48 + result.size());
  frame += "{\"type\":\"called\",\"id\":";
  frame += std::to_string(id);
  frame += ",\"ok\":true,\"result\":";
  frame += result;
  frame += "}\n";
  return frame;
}

std::string calledErrorFrame(std::uint64_t id, const boost::json::object& error) {
  return "{\"type\":\"called\",\"id\":" + std::to_string(id) +
         ",\"ok\":false,\"error\":" + boost::json::serialize(error) + "}\n";
}

namespace {

std::string stringMember(const boost::json::object& object, std::string_view key, std::string fallback = {}) {
  const auto* value = object.if_contains(key);
  return value && value->is_string() ? std::string(value->get_string()) : fallback;
}

std::optional<std::int64_t> integerMember(const boost::json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  if (!value || !value->is_number()) return std::nullopt;
  boost::system::error_code ec;
  auto number = value->to_number<std::int64_t>(ec);
  if (ec) return std::nullopt;
  return number;
}

}  // namespace

std::string_view RunOutcome::metricLabel() const {
  if (!error) return "ok";
  switch (error->code) {
    case Errc::RunTimedOut: return "timeout";
    case Errc::OutOfMemory: return "out_of_memory";
    case Errc::WorkerDied: return "crashed";
    case Errc::ResultTooLarge: return "result_too_large";
    case Errc::FunctionFailed: return "error";
    default: return "";
  }
}

void decodeRunAnswer(boost::json::object& frame, RunOutcome& outcome) {
  if (auto duration = integerMember(frame, "duration")) outcome.duration = *duration;
  const auto* ok = frame.if_contains("ok");
  if (ok && ok->is_bool() && ok->get_bool()) {
    const auto* result = frame.if_contains("result");
    outcome.result = result ? boost::json::serialize(*result) : "null";
    return;
  }
  const auto* error = frame.if_contains("error");
  boost::json::object thrown = error && error->is_object() ? error->get_object() : boost::json::object{};
  auto name = stringMember(thrown, "name", "Error");
  auto message = stringMember(thrown, "message");
  auto raisedIn = stringMember(thrown, "function");
  if (!raisedIn.empty())
    outcome.error = Error{Errc::FunctionFailed, name + ": " + message + " (in function \"" + raisedIn + "\")",
                          std::move(thrown)};
  else if (name == "ResultTooLarge") outcome.error = Error{Errc::ResultTooLarge, message};
  else if (name == "NotFound") outcome.error = Error{Errc::FunctionNotFound, message};
  else outcome.error = Error{Errc::FunctionFailed, name + ": " + message, std::move(thrown)};
}

std::vector<SyntaxProblem> decodeCheckAnswer(const boost::json::object& frame) {
  std::vector<SyntaxProblem> problems;
  const auto* errors = frame.if_contains("errors");
  if (!errors || !errors->is_array()) return problems;
  for (const auto& e : errors->get_array()) {
    if (!e.is_object()) continue;
    const auto& error = e.get_object();
    problems.push_back(SyntaxProblem{.function = stringMember(error, "function"),
                                     .line = integerMember(error, "line"),
                                     .column = integerMember(error, "column"),
                                     .message = stringMember(error, "message")});
  }
  return problems;
}

bool decodeLoadAnswer(const boost::json::object& frame) {
  const auto* ok = frame.if_contains("ok");
  return ok && ok->is_bool() && ok->get_bool();
}

namespace {

// Accepts any JSON and keeps nothing: validation without building a value.
struct IgnoreAll {
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  using ec = boost::system::error_code;
  bool on_document_begin(ec&) { return true; }
  bool on_document_end(ec&) { return true; }
  bool on_array_begin(ec&) { return true; }
  bool on_array_end(std::size_t, ec&) { return true; }
  bool on_object_begin(ec&) { return true; }
  bool on_object_end(std::size_t, ec&) { return true; }
  bool on_string_part(boost::json::string_view, std::size_t, ec&) { return true; }
  bool on_string(boost::json::string_view, std::size_t, ec&) { return true; }
  bool on_key_part(boost::json::string_view, std::size_t, ec&) { return true; }
  bool on_key(boost::json::string_view, std::size_t, ec&) { return true; }
  bool on_number_part(boost::json::string_view, ec&) { return true; }
  bool on_int64(std::int64_t, boost::json::string_view, ec&) { return true; }
  bool on_uint64(std::uint64_t, boost::json::string_view, ec&) { return true; }
  bool on_double(double, boost::json::string_view, ec&) { return true; }
  bool on_bool(bool, ec&) { return true; }
  bool on_null(ec&) { return true; }
  bool on_comment_part(boost::json::string_view, ec&) { return true; }
  bool on_comment(boost::json::string_view, ec&) { return true; }
};

bool isOneJsonValue(std::string_view text) {
  boost::json::parse_options options;
  options.max_depth = kMaxResultDepth;
  boost::json::basic_parser<IgnoreAll> parser(options);
  boost::system::error_code ec;
  auto used = parser.write_some(false, text.data(), text.size(), ec);
  return !ec && used == text.size() && parser.done();
}

// Reads the decimal number at `at` into `out` (a '-' only where Int is signed) and moves past it.
template <class Int>
bool readInteger(std::string_view line, std::size_t& at, Int& out) {
  auto [end, error] = std::from_chars(line.data() + at, line.data() + line.size(), out);
  if (error != std::errc{}) return false;
  at = static_cast<std::size_t>(end - line.data());
  return true;
}

bool readLiteral(std::string_view line, std::size_t& at, std::string_view literal) {
  if (line.substr(at, literal.size()) != literal) return false;
  at += literal.size();
  return true;
}

}  // namespace

std::optional<ResultFrame> readResultFrame(std::string_view line) {
  ResultFrame frame;
  std::size_t at = 0;
  if (!readLiteral(line, at, R"({"type":"result","id":)") || !readInteger(line, at, frame.id) ||
      !readLiteral(line, at, R"(,"ok":true,"duration":)") || !readInteger(line, at, frame.duration) ||
      !readLiteral(line, at, R"(,"result":)") || line.size() < at + 2 || line.back() != '}')
    return std::nullopt;
  frame.result = line.substr(at, line.size() - at - 1);
  if (!isOneJsonValue(frame.result)) return std::nullopt;
  return frame;
}

}  // namespace customcode::pool
