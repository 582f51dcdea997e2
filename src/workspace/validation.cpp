#include "workspace/validation.hpp"

#include "common/text.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>
#include <vector>

namespace customcode::workspace {
namespace json = boost::json;
namespace {

constexpr std::array kParameterTypes = {"string", "number", "integer", "boolean", "object", "array"};

// Reserved words of JavaScript (ES2023, strict mode, plus the globals a binding must not shadow),
// and the names the generated module injects into every function's scope.
constexpr std::array kReservedJs = {
    "break", "case", "catch", "class", "const", "continue", "debugger", "default", "delete", "do",
    "else", "enum", "export", "extends", "false", "finally", "for", "function", "if", "import", "in",
    "instanceof", "new", "null", "return", "super", "switch", "this", "throw", "true", "try",
    "typeof", "var", "void", "while", "with", "yield", "let", "static", "implements", "interface",
    "package", "private", "protected", "public", "await", "async", "arguments", "eval",
    "undefined", "NaN", "Infinity", "cache", "require", "console",
    // The generated module's binder of the workspace's Python functions.
    "__customcode_stub",
    // An object literal treats this key apart: the generated module returns its functions in one.
    "__proto__"};

// Keywords of Python 3 (soft keywords such as `match` are valid names), and the names the worker
// puts in the functions' namespace.
constexpr std::array kReservedPython = {
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in",
    "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with",
    "yield", "cache"};

template <std::size_t N>
bool isIn(const std::array<const char*, N>& words, std::string_view name) {
  return std::find(words.begin(), words.end(), name) != words.end();
}

// Edit distance of two short ASCII keys, ignoring case, where swapping two adjacent letters counts
// as one edit (optimal string alignment).
std::size_t editDistance(std::string_view a, std::string_view b) {
  auto same = [&](std::size_t i, std::size_t j) {
    return std::tolower(static_cast<unsigned char>(a[i])) == std::tolower(static_cast<unsigned char>(b[j]));
  };
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (same(i - 1, j - 1) ? 0 : 1)});
      if (i > 1 && j > 1 && same(i - 1, j - 2) && same(i - 2, j - 1)) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

// The known key `key` looks like a misspelling of, if any: unknown keys are otherwise accepted in
// function and parameter specs (see docs/decisions.md).
template <std::size_t N>
std::optional<std::string_view> misspelt(std::string_view key, const std::array<const char*, N>& known) {
  for (std::string_view candidate : known) {
    // One edit away from a four-letter key (`cod`, `tpye`), two from a longer one (`paramters`):
    // foreign keys such as `note` or `title` stay accepted.
    if (editDistance(key, candidate) <= (candidate.size() <= 4 ? 1u : 2u)) return candidate;
  }
  return std::nullopt;
}

constexpr std::array kFunctionKeys = {"code", "parameters", "language", "description"};
constexpr std::array kParameterKeys = {"type", "default", "description"};

class Problems {
 public:
  void add(std::string path, std::string message) {
    list_.push_back(json::object{{"path", std::move(path)}, {"message", std::move(message)}});
  }
  bool empty() const { return list_.empty(); }
  Error toError(std::string_view what) && {
    std::string message = std::string(what);
    if (list_.size() == 1) {
      const auto& only = list_.front().as_object();
      message += ": " + std::string(only.at("path").as_string()) + " " +
                 std::string(only.at("message").as_string());
    } else {
      message += ": " + std::to_string(list_.size()) + " problems";
    }
    return Error{Errc::InvalidRequest, std::move(message), std::move(list_)};
  }

 private:
  json::array list_;
};

std::string join(std::string_view a, std::string_view b) {
  return a.empty() ? std::string(b) : std::string(a) + "." + std::string(b);
}

const char* kindOf(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null: return "null";
    case json::kind::bool_: return "boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_: return "number";
    case json::kind::string: return "string";
    case json::kind::array: return "array";
    case json::kind::object: return "object";
  }
  return "unknown";
}

void parseParameter(const std::string& path, const std::string& name, const json::value& spec,
                    Language language, Function& function, Problems& problems) {
  if (auto why = identifierProblem(name, language); !why.empty()) problems.add(path, why);
  if (!spec.is_object()) {
    problems.add(path, std::string("must be an object with a type, got ") + kindOf(spec));
    return;
  }
  Parameter parameter{.name = name, .type = {}, .defaultValue = std::nullopt};
  for (const auto& [key, value] : spec.as_object()) {
    auto keyPath = join(path, key);
    if (key == "type") {
      if (!value.is_string() ||
          std::find(kParameterTypes.begin(), kParameterTypes.end(), value.as_string()) == kParameterTypes.end())
        problems.add(keyPath, "must be one of string, number, integer, boolean, object, array");
      else
        parameter.type = std::string(value.as_string());
    } else if (key == "default") {
      // Any JSON value, whatever the type: a default stands for a missing run parameter, and run
      // parameters are not type-checked either (docs/decisions.md).
      parameter.defaultValue = value;
    } else if (key == "description") {
      if (!value.is_string() && !value.is_null())
        problems.add(keyPath, std::string("must be a string, got ") + kindOf(value));
    } else if (auto known = misspelt(key, kParameterKeys)) {
      problems.add(keyPath, "is not a known key; did you mean \"" + std::string(*known) + "\"?");
    }
  }
  function.parameters.push_back(std::move(parameter));
}

void parseFunction(const std::string& path, const std::string& name, const json::value& spec,
                   Workspace& workspace, Problems& problems) {
  if (!spec.is_object()) {
    if (auto why = identifierProblem(name, Language::Node); !why.empty()) problems.add(path, why);
    problems.add(path, std::string("must be an object with code, got ") + kindOf(spec));
    return;
  }
  Function function;
  function.name = name;
  const auto& object = spec.as_object();
  // The language first: which names are valid depends on it.
  if (const auto* value = object.if_contains("language")) {
    auto language = value->is_string() ? parseLanguage(value->as_string()) : std::nullopt;
    if (!language) problems.add(join(path, "language"), "must be \"nodejs\" or \"python\"");
    else function.language = *language;
  }
  if (auto why = identifierProblem(name, function.language); !why.empty()) problems.add(path, why);
  for (const auto& [key, value] : object) {
    auto keyPath = join(path, key);
    if (key == "code") {
      if (!value.is_string()) problems.add(keyPath, std::string("must be a string, got ") + kindOf(value));
      else function.code = std::string(value.as_string());
    } else if (key == "language") {
      continue;
    } else if (key == "parameters") {
      if (value.is_null()) continue;
      if (!value.is_object()) {
        problems.add(keyPath, std::string("must be an object, got ") + kindOf(value));
        continue;
      }
      for (const auto& [pname, pspec] : value.as_object())
        parseParameter(join(keyPath, pname), std::string(pname), pspec, function.language, function, problems);
    } else if (key == "description") {
      if (!value.is_string() && !value.is_null())
        problems.add(keyPath, std::string("must be a string, got ") + kindOf(value));
    } else if (auto known = misspelt(key, kFunctionKeys)) {
      problems.add(keyPath, "is not a known key; did you mean \"" + std::string(*known) + "\"?");
    }
  }
  if (!object.contains("code")) problems.add(join(path, "code"), "is required");
  workspace.functions.push_back(std::move(function));
}

}  // namespace

Error invalidRequest(std::string path, std::string message) {
  Problems problems;
  problems.add(std::move(path), std::move(message));
  return std::move(problems).toError("Invalid request");
}

std::string workspaceNameProblem(std::string_view name) {
  if (name.empty()) return "must not be empty";
  if (name.size() > kMaxWorkspaceNameBytes)
    return "must be at most " + std::to_string(kMaxWorkspaceNameBytes) + " bytes";
  if (name.front() == '.') return "must not start with a dot";
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) return "must not contain control characters";
    if (c == '/' || c == '\\') return "must not contain a slash or a backslash";
  }
  if (!text::isValidUtf8(name)) return "must be valid UTF-8";
  return {};
}

std::string identifierProblem(std::string_view name, Language language) {
  if (name.empty()) return "must not be empty";
  if (name.size() > kMaxFunctionNameBytes)
    return "must be at most " + std::to_string(kMaxFunctionNameBytes) + " characters";
  const bool js = language == Language::Node;
  auto isStart = [js](char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || (js && c == '$'); };
  auto isPart = [&](char c) { return isStart(c) || std::isdigit(static_cast<unsigned char>(c)); };
  if (!isStart(name.front()) || !std::all_of(name.begin(), name.end(), isPart))
    return js ? "must be a JavaScript identifier: a letter, _ or $ then letters, digits, _ or $"
              : "must be a Python identifier: a letter or _ then letters, digits or _";
  if (js ? isIn(kReservedJs, name) : isIn(kReservedPython, name))
    return std::string("is a reserved word in ") + (js ? "JavaScript" : "Python");
  // Python's own dunder names (__builtins__, __name__) and the worker's live in the namespace.
  if (!js && name.starts_with("__")) return "must not start with __";
  return {};
}

bool couldBeFunctionName(std::string_view name) {
  return identifierProblem(name, Language::Node).empty() || identifierProblem(name, Language::Python).empty();
}

Result<Workspace> parseWorkspace(std::string name, const json::value& body) {
  Problems problems;
  if (auto why = workspaceNameProblem(name); !why.empty()) problems.add("workspace", why);
  if (!body.is_object()) {
    problems.add("", std::string("body must be a JSON object, got ") + kindOf(body));
    return std::move(problems).toError("Invalid workspace");
  }
  Workspace workspace;
  workspace.name = std::move(name);
  const auto& object = body.as_object();
  for (const auto& [key, value] : object) {
    if (key == "functions") {
      if (!value.is_object()) {
        problems.add("functions", std::string("must be an object, got ") + kindOf(value));
        continue;
      }
      for (const auto& [fname, spec] : value.as_object())
        parseFunction(join("functions", fname), std::string(fname), spec, workspace, problems);
    } else if (key == "disableNpmRegistry") {
      if (!value.is_bool()) problems.add("disableNpmRegistry", std::string("must be a boolean, got ") + kindOf(value));
      else workspace.disableNpmRegistry = value.as_bool();
    } else if (key == "dependencies") {
      if (!value.is_object()) {
        problems.add("dependencies", std::string("must be an object, got ") + kindOf(value));
        continue;
      }
      for (const auto& [pkg, range] : value.as_object())
        if (!range.is_string()) problems.add(join("dependencies", pkg), "must be a version range string");
    } else {
      problems.add(key, "is not a known key (functions, disableNpmRegistry, dependencies)");
    }
  }
  if (!object.contains("functions")) problems.add("functions", "is required");
  if (!problems.empty()) return std::move(problems).toError("Invalid workspace");
  workspace.body = object;
  return workspace;
}

Result<json::object> parseRunBody(const json::value& body) {
  Problems problems;
  if (body.is_null()) return json::object{};
  if (!body.is_object()) {
    problems.add("", std::string("body must be a JSON object, got ") + kindOf(body));
    return std::move(problems).toError("Invalid run request");
  }
  json::object parameters;
  for (const auto& [key, value] : body.as_object()) {
    if (key == "parameters") {
      if (value.is_null()) continue;
      if (!value.is_object()) problems.add("parameters", std::string("must be an object, got ") + kindOf(value));
      else parameters = value.as_object();
    } else {
      problems.add(key, "is not a known key (parameters)");
    }
  }
  if (!problems.empty()) return std::move(problems).toError("Invalid run request");
  return parameters;
}

}  // namespace customcode::workspace
