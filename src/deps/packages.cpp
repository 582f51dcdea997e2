#include "deps/packages.hpp"

#include "deps/scanner.hpp"

#include <boost/json.hpp>

namespace customcode::deps {
namespace json = boost::json;

Result<PackageSet> requiredPackages(const workspace::Workspace& workspace) {
  json::array problems;
  auto problem = [&](std::string path, std::string message) {
    problems.push_back(json::object{{"path", std::move(path)}, {"message", std::move(message)}});
  };
  PackageSet packages;
  if (const auto* pinned = workspace.body.if_contains("dependencies"); pinned && pinned->is_object()) {
    for (const auto& [name, range] : pinned->as_object()) {
      std::string path = "dependencies." + std::string(name);
      if (auto why = packageNameProblem(name); !why.empty()) problem(path, "package name " + why);
      if (!range.is_string()) continue;  // parseWorkspace reported it
      if (auto why = versionRangeProblem(range.get_string()); !why.empty()) problem(path, why);
      packages[std::string(name)] = std::string(range.get_string());
    }
  }
  for (const auto& function : workspace.functions) {
    if (function.language != workspace::Language::Node) continue;
    for (const auto& specifier : findModuleSpecifiers(function.code)) {
      auto name = packageOf(specifier);
      if (!name || packages.contains(*name)) continue;
      if (auto why = packageNameProblem(*name); !why.empty()) {
        problem("functions." + function.name + ".code", "requires \"" + specifier + "\": package name " + why);
        continue;
      }
      packages[*name] = "*";
    }
  }
  if (!problems.empty()) {
    std::string message = "Invalid npm dependencies: ";
    if (problems.size() == 1) {
      const auto& only = problems.front().as_object();
      message += std::string(only.at("path").as_string()) + " " + std::string(only.at("message").as_string());
    } else {
      message += std::to_string(problems.size()) + " problems";
    }
    return Error{Errc::InvalidRequest, std::move(message), std::move(problems)};
  }
  return packages;
}

std::string manifestJson(const PackageSet& packages) {
  json::object dependencies;
  for (const auto& [name, range] : packages) dependencies[name] = range;
  json::object manifest{{"name", "customcode-workspace"},
                        {"private", true},
                        {"description", "Generated from workspace.yaml by customcode at save time; do not edit."},
                        {"dependencies", std::move(dependencies)}};
  return json::serialize(manifest) + "\n";
}

std::optional<PackageSet> manifestDependencies(std::string_view packageJson) {
  boost::system::error_code ec;
  auto value = json::parse(packageJson, ec);
  if (ec || !value.is_object()) return std::nullopt;
  PackageSet packages;
  const auto* dependencies = value.as_object().if_contains("dependencies");
  if (!dependencies) return packages;
  if (!dependencies->is_object()) return std::nullopt;
  for (const auto& [name, range] : dependencies->as_object()) {
    if (!range.is_string()) return std::nullopt;
    packages[std::string(name)] = std::string(range.get_string());
  }
  return packages;
}

}  // namespace customcode::deps
