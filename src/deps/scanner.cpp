#include "deps/scanner.hpp"

#include <algorithm>
#include <array>

namespace customcode::deps {
namespace {

// Node.js 20's builtin modules that are reachable without the `node:` prefix (top-level names;
// `fs/promises` and friends are covered by their top-level name). `test`, `sea` and `sqlite` need
// the prefix, so a bare `test` is an npm package.
constexpr auto kBuiltins = std::to_array<std::string_view>({
    "_http_agent", "_http_client", "_http_common", "_http_incoming", "_http_outgoing", "_http_server",
    "_stream_duplex", "_stream_passthrough", "_stream_readable", "_stream_transform", "_stream_wrap",
    "_stream_writable", "_tls_common", "_tls_wrap", "assert", "async_hooks", "buffer", "child_process",
    "cluster", "console", "constants", "crypto", "dgram", "diagnostics_channel", "dns", "domain",
    "events", "fs", "http", "http2", "https", "inspector", "module", "net", "os", "path", "perf_hooks",
    "process", "punycode", "querystring", "readline", "repl", "stream", "string_decoder", "sys",
    "timers", "tls", "trace_events", "tty", "url", "util", "v8", "vm", "wasi", "worker_threads", "zlib"});

constexpr std::size_t kMaxPackageNameLength = 214;  // npm's limit
constexpr std::size_t kMaxRangeLength = 256;

bool isIdentifierStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool isIdentifierPart(char c) { return isIdentifierStart(c) || (c >= '0' && c <= '9'); }
bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// Words after which a '/' starts a regular expression rather than a division.
bool isKeywordBeforeExpression(std::string_view word) {
  static constexpr auto kWords = std::to_array<std::string_view>(
      {"return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case", "do", "else", "yield", "await"});
  return std::find(kWords.begin(), kWords.end(), word) != kWords.end();
}

// What came before the current position, for the regex-or-division guess and member accesses.
enum class Previous { Operator, Value, Dot };

class Scanner {
 public:
  explicit Scanner(std::string_view code) : s_(code) {}

  std::vector<std::string> run() {
    while (i_ < s_.size()) step();
    return std::move(found_);
  }

 private:
  void step() {
    const char c = s_[i_];
    const char next = i_ + 1 < s_.size() ? s_[i_ + 1] : '\0';
    if (isSpace(c)) {
      ++i_;
    } else if (c == '/' && (next == '/' || next == '*')) {
      i_ = skipComment(i_);
    } else if (c == '\'' || c == '"') {
      i_ = skipString(i_);
      previous_ = Previous::Value;
    } else if (c == '`') {
      ++i_;
      scanTemplate();
      previous_ = Previous::Value;
    } else if (c == '/') {
      if (previous_ == Previous::Operator) skipRegex();
      else ++i_;
      previous_ = previous_ == Previous::Operator ? Previous::Value : Previous::Operator;
    } else if (isIdentifierStart(c)) {
      auto start = i_;
      while (i_ < s_.size() && isIdentifierPart(s_[i_])) ++i_;
      auto word = s_.substr(start, i_ - start);
      if ((word == "require" || word == "import") && previous_ != Previous::Dot) recordCall();
      previous_ = isKeywordBeforeExpression(word) ? Previous::Operator : Previous::Value;
    } else if (c >= '0' && c <= '9') {
      while (i_ < s_.size() && (isIdentifierPart(s_[i_]) || s_[i_] == '.')) ++i_;
      previous_ = Previous::Value;
    } else if (c == '.') {
      if (s_.substr(i_, 3) == "...") {
        i_ += 3;
        previous_ = Previous::Operator;
      } else {
        ++i_;
        previous_ = Previous::Dot;
      }
    } else if (c == '{') {
      ++braceDepth_;
      ++i_;
      previous_ = Previous::Operator;
    } else if (c == '}') {
      ++i_;
      if (!templates_.empty() && templates_.back() == braceDepth_) {
        // The end of a ${...} substitution: back inside the template literal.
        templates_.pop_back();
        --braceDepth_;
        scanTemplate();
        previous_ = Previous::Value;
      } else {
        if (braceDepth_ > 0) --braceDepth_;
        previous_ = Previous::Operator;  // the end of a block: a regex may follow
      }
    } else if (c == ')' || c == ']') {
      ++i_;
      previous_ = Previous::Value;
    } else {
      ++i_;
      previous_ = Previous::Operator;
    }
  }

  // Returns the position after the comment that starts at `at`.
  std::size_t skipComment(std::size_t at) const {
    if (s_[at + 1] == '/') {
      auto end = s_.find('\n', at);
      return end == std::string_view::npos ? s_.size() : end + 1;
    }
    auto end = s_.find("*/", at + 2);
    return end == std::string_view::npos ? s_.size() : end + 2;
  }

  // Returns the position after the '...' or "..." literal that starts at `at`.
  std::size_t skipString(std::size_t at) const {
    const char quote = s_[at];
    std::size_t j = at + 1;
    while (j < s_.size() && s_[j] != quote && s_[j] != '\n') j += s_[j] == '\\' ? 2 : 1;
    return std::min(j + 1, s_.size());
  }

  // Inside a template literal: up to its closing backtick, or into a ${ substitution.
  void scanTemplate() {
    while (i_ < s_.size()) {
      const char c = s_[i_];
      if (c == '\\') {
        i_ += 2;
      } else if (c == '`') {
        ++i_;
        return;
      } else if (c == '$' && i_ + 1 < s_.size() && s_[i_ + 1] == '{') {
        i_ += 2;
        ++braceDepth_;
        templates_.push_back(braceDepth_);
        previous_ = Previous::Operator;
        return;
      } else {
        ++i_;
      }
    }
  }

  void skipRegex() {
    std::size_t j = i_ + 1;
    bool inClass = false;
    while (j < s_.size()) {
      const char c = s_[j];
      if (c == '\n') {
        // Not a regex after all (the guess was wrong): treat the '/' as an operator.
        ++i_;
        return;
      }
      if (c == '\\') {
        j += 2;
        continue;
      }
      if (c == '[') inClass = true;
      else if (c == ']') inClass = false;
      else if (c == '/' && !inClass) break;
      ++j;
    }
    j = std::min(j + 1, s_.size());
    while (j < s_.size() && isIdentifierPart(s_[j])) ++j;  // flags
    i_ = j;
  }

  std::size_t skipSpaceAndComments(std::size_t j) const {
    while (j < s_.size()) {
      if (isSpace(s_[j])) {
        ++j;
      } else if (s_[j] == '/' && j + 1 < s_.size() && (s_[j + 1] == '/' || s_[j + 1] == '*')) {
        j = skipComment(j);
      } else {
        break;
      }
    }
    return j;
  }

  // After `require` or `import`: records the argument of `(<string literal>)` or `(<literal>, ...)`.
  // Leaves the position alone, so that the call's tokens are scanned as usual.
  void recordCall() {
    auto j = skipSpaceAndComments(i_);
    if (j >= s_.size() || s_[j] != '(') return;
    j = skipSpaceAndComments(j + 1);
    if (j >= s_.size() || (s_[j] != '\'' && s_[j] != '"' && s_[j] != '`')) return;
    const char quote = s_[j];
    std::string value;
    ++j;
    while (j < s_.size() && s_[j] != quote) {
      if (s_[j] == '\n' && quote != '`') return;
      if (quote == '`' && s_[j] == '$' && j + 1 < s_.size() && s_[j + 1] == '{') return;  // computed
      if (s_[j] == '\\' && j + 1 < s_.size()) ++j;
      value += s_[j];
      ++j;
    }
    if (j >= s_.size()) return;
    j = skipSpaceAndComments(j + 1);
    if (j >= s_.size() || (s_[j] != ')' && s_[j] != ',')) return;
    found_.push_back(std::move(value));
  }

  std::string_view s_;
  std::size_t i_ = 0;
  std::size_t braceDepth_ = 0;
  std::vector<std::size_t> templates_;  // the brace depth at which each open ${ ends
  Previous previous_ = Previous::Operator;
  std::vector<std::string> found_;
};

bool isUrlSafeNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

std::string namePartProblem(std::string_view part, std::string_view what) {
  if (part.empty()) return std::string(what) + " must not be empty";
  if (part.front() == '.' || part.front() == '_' || part.front() == '-')
    return std::string(what) + " must not start with '.', '_' or '-'";
  if (!std::all_of(part.begin(), part.end(), isUrlSafeNameChar))
    return std::string(what) + " may only contain letters, digits and - . _ ~";
  return {};
}

}  // namespace

std::vector<std::string> findModuleSpecifiers(std::string_view code) { return Scanner(code).run(); }

bool isNodeBuiltin(std::string_view name) {
  if (name.starts_with("node:")) return true;
  auto top = name.substr(0, name.find('/'));
  return std::find(kBuiltins.begin(), kBuiltins.end(), top) != kBuiltins.end();
}

std::optional<std::string> packageOf(std::string_view specifier) {
  if (specifier.empty() || specifier.starts_with("node:") || specifier.starts_with('.') ||
      specifier.starts_with('/'))
    return std::nullopt;
  auto slash = specifier.find('/');
  if (specifier.starts_with('@') && slash != std::string_view::npos) slash = specifier.find('/', slash + 1);
  auto name = specifier.substr(0, slash);
  if (!name.starts_with('@') && isNodeBuiltin(name)) return std::nullopt;
  return std::string(name);
}

std::string packageNameProblem(std::string_view name) {
  if (name.empty()) return "must not be empty";
  if (name.size() > kMaxPackageNameLength)
    return "must be at most " + std::to_string(kMaxPackageNameLength) + " characters";
  if (name == "node_modules" || name == "favicon.ico") return "is a reserved name";
  if (name.starts_with('@')) {
    auto slash = name.find('/');
    if (slash == std::string_view::npos) return "must be @scope/name";
    auto scope = name.substr(1, slash - 1);
    auto rest = name.substr(slash + 1);
    if (rest.find('/') != std::string_view::npos) return "must be @scope/name";
    if (auto why = namePartProblem(scope, "the scope"); !why.empty()) return why;
    return namePartProblem(rest, "the name");
  }
  if (auto why = namePartProblem(name, "the name"); !why.empty()) return why;
  if (isNodeBuiltin(name)) return "is a Node.js builtin module";
  return {};
}

std::string versionRangeProblem(std::string_view range) {
  if (range.empty()) return "must not be empty (\"*\" accepts any version)";
  if (range.size() > kMaxRangeLength) return "must be at most " + std::to_string(kMaxRangeLength) + " characters";
  auto allowed = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ' || c == '.' ||
           c == '*' || c == '^' || c == '~' || c == '<' || c == '>' || c == '=' || c == '|' || c == '+' || c == '-';
  };
  if (!std::all_of(range.begin(), range.end(), allowed) || range.front() == '-')
    return "must be a semver range or a dist-tag such as ^1.2.0 or latest (file:, git, URL and alias "
           "dependencies are not supported)";
  return {};
}

}  // namespace customcode::deps
