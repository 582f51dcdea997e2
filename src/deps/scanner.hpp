#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

// Static analysis of JavaScript function bodies for the npm packages they load, and the npm rules
// for package names and version ranges. Pure functions: no I/O.
namespace customcode::deps {

// The string literals passed to `require(...)` and `import(...)` in `code`, in order of appearance,
// duplicates included. A lexical scan, not a parser: it skips comments, string and template
// literals and (by the usual heuristic on the previous token) regular expression literals, and
// records `require` / `import` when it is not a member access (`x.require(...)`) and its first
// argument is a plain string literal. A computed argument (`require(name)`) is not seen: such a
// package must be listed in the save body's "dependencies".
std::vector<std::string> findModuleSpecifiers(std::string_view code);

// True for the modules Node.js ships (`fs`, `fs/promises`, ...), given without the `node:` prefix.
bool isNodeBuiltin(std::string_view name);

// The npm package a specifier names: "x/sub" -> "x", "@s/p/sub" -> "@s/p". nullopt for builtins
// (with or without `node:`) and for relative or absolute paths, which are not packages. The result
// is not validated: see packageNameProblem.
std::optional<std::string> packageOf(std::string_view specifier);

// Why `name` is not an acceptable npm package name, or "" when it is. The npm rules (at most 214
// characters, URL-safe characters only, no leading '.' or '_', `@scope/name` for scoped packages),
// made stricter where npm is lax: no leading '-', no builtin module names, no reserved names.
// Upper case letters are allowed, since old packages (e.g. JSONStream) use them.
std::string packageNameProblem(std::string_view name);

// Why `range` is not an acceptable version range for "dependencies", or "" when it is: a semver
// range or a dist-tag ("^1.2.0", "~1.2", ">=1 <3", "1.x || 2", "*", "latest"). Anything that
// points elsewhere (file:, git, URLs, github:user/repo, npm: aliases) is refused.
std::string versionRangeProblem(std::string_view range);

}  // namespace customcode::deps
