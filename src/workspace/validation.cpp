#include "workspace/validation.hpp"

#include "common/text.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>

namespace customcode::workspace {
namespace json = boost::json;
namespace {

constexpr std::array kParameterTypes = {"string", "number", "integer", "boolean", "object", "array"};

// Reserved words of JavaScript and Python, plus names the generated modules define themselves.
constexpr std::array kReserved = {
    // JavaScript
    "break", "case", "catch", "class", "const", "continue", "debugger", "default", "delete", "do",
    "else", "enum", "export", "extends", "false", "finally", "for", "function", "if", "import", "in",
    "instanceof", "new", "null", "return", "super", "switch", "this", "throw", "true", "try",
    "typeof", "var", "void", "while", "with", "yield", "let", "static", "implements", "interface",
    "package", "private", "protected", "public", "await", "async", "arguments", "eval",
    "undefined", "NaN", "Infinity",
    // Python
    "False", "None", "True", "and", "as", "assert", "def", "del", "elif", "except", "from",
    "global", "is", "lambda", "nonlocal", "not", "or", "pass", "raise",
    // Names injected into every function's scope.
    "cache", "require", "console"};

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

bool matchesType(const json::value& v, std::string_view type) {
  if (type == "string") return v.is_string();
  if (type == "number") return v.is_number();
  if (type == "integer") {
    if (v.is_int64() || v.is_uint64()) return true;
    return v.is_double() && std::isfinite(v.get_double()) && std::floor(v.get_double()) == v.get_double();
  }
  if (type == "boolean") return v.is_bool();
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  return false;
}

void parseParameter(const std::string& path, const std::string& name, const json::value& spec,
                    Function& function, Problems& problems) {
  if (auto why = identifierProblem(name); !why.empty()) problems.add(path, why);
  if (!spec.is_object()) {
    problems.add(path, std::string("must be an object with a type, got ") + kindOf(spec));
    return;
  }
  Parameter parameter{.name = name, .type = {}, .defaultValue = std::nullopt};
  const auto& object = spec.as_object();
  for (const auto& [key, value] : object) {
    auto keyPath = join(path, key);
    if (key == "type") {
      if (!value.is_string() ||
          std::find(kParameterTypes.begin(), kParameterTypes.end(), value.as_string()) == kParameterTypes.end())
        problems.add(keyPath, "must be one of string, number, integer, boolean, object, array");
      else
        parameter.type = std::string(value.as_string());
    } else if (key == "default") {
      parameter.defaultValue = value;
    } else if (key == "description") {
      if (!value.is_string()) problems.add(keyPath, std::string("must be a string, got ") + kindOf(value));
    } else {
      problems.add(keyPath, "is not a known key (type, default, description)");
    }
  }
  if (!object.contains("type")) problems.add(join(path, "type"), "is required");
  if (parameter.defaultValue && !parameter.defaultValue->is_null() && !parameter.type.empty() &&
      !matchesType(*parameter.defaultValue, parameter.type))
    problems.add(join(path, "default"), "must be of type " + parameter.type + ", got " +
                                            kindOf(*parameter.defaultValue));
  function.parameters.push_back(std::move(parameter));
}

void parseFunction(const std::string& path, const std::string& name, const json::value& spec,
                   Workspace& workspace, Problems& problems) {
  if (auto why = identifierProblem(name); !why.empty()) problems.add(path, why);
  if (!spec.is_object()) {
    problems.add(path, std::string("must be an object with code, got ") + kindOf(spec));
    return;
  }
  Function function;
  function.name = name;
  const auto& object = spec.as_object();
  for (const auto& [key, value] : object) {
    auto keyPath = join(path, key);
    if (key == "code") {
      if (!value.is_string()) problems.add(keyPath, std::string("must be a string, got ") + kindOf(value));
      else function.code = std::string(value.as_string());
    } else if (key == "language") {
      auto language = value.is_string() ? parseLanguage(value.as_string()) : std::nullopt;
      if (!language) problems.add(keyPath, "must be \"nodejs\" or \"python\"");
      else function.language = *language;
    } else if (key == "parameters") {
      if (value.is_null()) continue;
      if (!value.is_object()) {
        problems.add(keyPath, std::string("must be an object, got ") + kindOf(value));
        continue;
      }
      for (const auto& [pname, pspec] : value.as_object())
        parseParameter(join(keyPath, pname), std::string(pname), pspec, function, problems);
    } else if (key == "description") {
      if (!value.is_string() && !value.is_null())
        problems.add(keyPath, std::string("must be a string, got ") + kindOf(value));
    } else {
      problems.add(keyPath, "is not a known key (code, parameters, language, description)");
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

std::string identifierProblem(std::string_view name) {
  if (name.empty()) return "must not be empty";
  if (name.size() > kMaxFunctionNameBytes)
    return "must be at most " + std::to_string(kMaxFunctionNameBytes) + " characters";
  auto isStart = [](char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; };
  auto isPart = [&](char c) { return isStart(c) || std::isdigit(static_cast<unsigned char>(c)); };
  if (!isStart(name.front()) || !std::all_of(name.begin(), name.end(), isPart))
    return "must be an identifier: a letter or _ then letters, digits or _";
  if (std::find(kReserved.begin(), kReserved.end(), name) != kReserved.end())
    return "is a reserved word";
  if (name.starts_with("__")) return "must not start with __";
  return {};
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
