#include "workspace/workspace.hpp"

namespace customcode::workspace {

std::string_view languageName(Language language) {
  return language == Language::Python ? "python" : "nodejs";
}

std::optional<Language> parseLanguage(std::string_view name) {
  if (name == "nodejs" || name == "javascript" || name == "js" || name == "node") return Language::Node;
  if (name == "python" || name == "py") return Language::Python;
  return std::nullopt;
}

const Function* Workspace::find(std::string_view function) const {
  for (const auto& f : functions)
    if (f.name == function) return &f;
  return nullptr;
}

bool Workspace::uses(Language language) const {
  for (const auto& f : functions)
    if (f.language == language) return true;
  return false;
}

}  // namespace customcode::workspace
