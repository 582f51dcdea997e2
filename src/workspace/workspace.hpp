#pragma once

#include <boost/json/value.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

// The values of a workspace, as validated from a save body or loaded from workspace.yaml.
namespace customcode::workspace {

enum class Language { Node, Python };

std::string_view languageName(Language language);  // "nodejs" or "python"
std::optional<Language> parseLanguage(std::string_view name);

struct Parameter {
  std::string name;
  std::string type;  // string number integer boolean object array
  std::optional<boost::json::value> defaultValue;
};

struct Function {
  std::string name;
  Language language = Language::Node;
  std::string code;
  std::vector<Parameter> parameters;
};

struct Workspace {
  std::string name;
  std::vector<Function> functions;  // in the order of the body
  bool disableNpmRegistry = false;
  boost::json::object body;  // the body as saved, returned by GET

  const Function* find(std::string_view function) const;
  bool uses(Language language) const;
};

}  // namespace customcode::workspace
