#pragma once

#include "common/errors.hpp"
#include "workspace/workspace.hpp"

#include <map>
#include <optional>
#include <string>
#include <string_view>

// The npm packages of a workspace and the package.json that lists them.
namespace customcode::deps {

// Package name -> version range, sorted by name (so equal sets compare and serialise equal).
using PackageSet = std::map<std::string, std::string>;

// The packages `workspace` needs: every package its Node.js functions `require` or `import` with a
// string literal (builtins and paths excluded), with the range pinned in the body's "dependencies"
// or "*" (the latest version), plus every package listed in "dependencies" (for computed requires).
// Fails with InvalidRequest listing every bad package name or range, with its JSON path.
Result<PackageSet> requiredPackages(const workspace::Workspace& workspace);

// The package.json written into a workspace directory for `packages`.
std::string manifestJson(const PackageSet& packages);

// The "dependencies" of a package.json, or nullopt when it cannot be read as one.
std::optional<PackageSet> manifestDependencies(std::string_view packageJson);

}  // namespace customcode::deps
