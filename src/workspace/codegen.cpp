#include "workspace/codegen.hpp"

#include "workspace/validation.hpp"

#include <boost/json.hpp>

#include <charconv>
#include <cstdio>
#include <stdexcept>

namespace customcode::workspace {
namespace json = boost::json;
namespace {

constexpr std::string_view kHeaderPrefix = "customcode generated script; source fingerprint ";

std::string header(std::string_view commentPrefix, std::uint64_t fingerprint) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fingerprint));
  return std::string(commentPrefix) + " " + std::string(kHeaderPrefix) + hex +
         " (generated from workspace.yaml, do not edit)\n";
}

}  // namespace

std::string_view scriptFileName(Language language) {
  return language == Language::Python ? "functions.py" : "functions.js";
}

std::string scriptFileName(Language language, std::uint64_t version) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(version));
  return std::string("functions-") + hex + (language == Language::Python ? ".py" : ".js");
}

std::optional<std::uint64_t> scriptVersion(std::string_view fileName, Language language) {
  constexpr std::string_view prefix = "functions-";
  const std::string_view suffix = language == Language::Python ? ".py" : ".js";
  if (fileName.size() != prefix.size() + 16 + suffix.size() || !fileName.starts_with(prefix) ||
      !fileName.ends_with(suffix))
    return std::nullopt;
  auto hex = fileName.substr(prefix.size(), 16);
  std::uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), value, 16);
  if (ec != std::errc{} || ptr != hex.data() + hex.size()) return std::nullopt;
  if (scriptFileName(language, value) != fileName) return std::nullopt;  // e.g. upper-case digits
  return value;
}

std::string generateNodeModule(const Workspace& workspace, std::uint64_t sourceFingerprint) {
  std::string out = header("//", sourceFingerprint);
  out += "module.exports = function (cache, require, console, __customcode_stub) {\n";
  for (const auto& function : workspace.functions) {
    if (function.language != Language::Node) continue;
    out += "async function " + function.name + "({";
    bool first = true;
    for (const auto& parameter : function.parameters) {
      if (!first) out += ", ";
      first = false;
      out += parameter.name;
      // JSON is valid JavaScript for every value a default can hold.
      if (parameter.defaultValue) out += " = " + json::serialize(*parameter.defaultValue);
    }
    out += "} = {}) {\n";
    out += function.code;
    out += "\n}\n";
  }
  // The Python functions, called through the service: `await other({x: 1})` as for a JavaScript
  // one. After the functions, so that their lines keep their numbers. A name that is not a
  // JavaScript identifier (or is reserved there) has no stub; the bootstrap gives a name that is
  // a global (fetch, process...) the global rather than hide it.
  for (const auto& function : workspace.functions) {
    if (function.language == Language::Node || !identifierProblem(function.name, Language::Node).empty()) continue;
    out += "const " + function.name + " = __customcode_stub(\"" + function.name + "\");\n";
  }
  out += "return {";
  bool first = true;
  for (const auto& function : workspace.functions) {
    if (function.language != Language::Node) continue;
    out += first ? " " : ", ";
    first = false;
    out += function.name;
  }
  out += " };\n};\n";
  return out;
}

std::string generatePythonModule(const Workspace& workspace, std::uint64_t sourceFingerprint) {
  auto literal = [](std::string_view text) { return json::serialize(json::string(text)); };
  std::string out = header("#", sourceFingerprint);
  out += "# Data only: runtimes/python/worker.py compiles each code as the body of its function.\n";
  out += "FUNCTIONS = [\n";
  for (const auto& function : workspace.functions) {
    if (function.language != Language::Python) continue;
    out += "    {\n        \"name\": " + literal(function.name) + ",\n        \"parameters\": [";
    for (const auto& parameter : function.parameters) {
      // The default travels as JSON text: JSON's true/false/null are not Python literals.
      out += "(" + literal(parameter.name) + ", " +
             (parameter.defaultValue ? literal(json::serialize(*parameter.defaultValue)) : std::string("None")) +
             "), ";
    }
    out += "],\n        \"code\": " + literal(function.code) + ",\n    },\n";
  }
  out += "]\n";
  // The JavaScript functions, called through the service, with their parameters' names (a call
  // may pass them positionally). Only names that are Python identifiers (not reserved there).
  bool first = true;
  for (const auto& function : workspace.functions) {
    if (function.language == Language::Python || !identifierProblem(function.name, Language::Python).empty()) continue;
    if (first) out += "CALLS = [\n";
    first = false;
    out += "    (" + literal(function.name) + ", [";
    for (const auto& parameter : function.parameters) out += literal(parameter.name) + ", ";
    out += "]),\n";
  }
  if (!first) out += "]\n";
  return out;
}

std::string generateScript(Language language, const Workspace& workspace, std::uint64_t sourceFingerprint) {
  switch (language) {
    case Language::Node: return generateNodeModule(workspace, sourceFingerprint);
    case Language::Python: return generatePythonModule(workspace, sourceFingerprint);
  }
  throw std::logic_error("no code generator for " + std::string(languageName(language)));
}

std::optional<std::uint64_t> scriptFingerprint(std::string_view script) {
  auto pos = script.find(kHeaderPrefix);
  auto eol = script.find('\n');
  if (pos == std::string_view::npos || pos > eol) return std::nullopt;
  auto start = pos + kHeaderPrefix.size();
  if (start + 16 > script.size()) return std::nullopt;
  std::uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(script.data() + start, script.data() + start + 16, value, 16);
  if (ec != std::errc{} || ptr != script.data() + start + 16) return std::nullopt;
  return value;
}

}  // namespace customcode::workspace
