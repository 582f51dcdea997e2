#pragma once

#include "common/errors.hpp"
#include "workspace/workspace.hpp"

#include <boost/json/value.hpp>

#include <string>
#include <string_view>

// Validation of names and request bodies. Every problem is reported at once, with its JSON path,
// in an InvalidRequest error whose details is [{"path", "message"}].
namespace customcode::workspace {

inline constexpr std::size_t kMaxWorkspaceNameBytes = 200;
inline constexpr std::size_t kMaxFunctionNameBytes = 128;

// Empty when `name` is a safe directory name (no separators, no dot names, no control bytes,
// valid UTF-8, bounded); otherwise why not.
std::string workspaceNameProblem(std::string_view name);

// Empty when `name` can name a function or parameter of `language`: an ASCII identifier of that
// language (`$` allowed in JavaScript), not one of its reserved words nor a name the generated
// module defines (such as `cache`), no leading `__` in Python; otherwise why not.
std::string identifierProblem(std::string_view name, Language language);

// Whether `name` can name a function in one of the languages at all.
bool couldBeFunctionName(std::string_view name);

// Validates a save body for workspace `name`.
Result<Workspace> parseWorkspace(std::string name, const boost::json::value& body);

// Validates a run body ({"parameters": {...}}, all optional) and returns the parameters object.
Result<boost::json::object> parseRunBody(const boost::json::value& body);

// An InvalidRequest error with a single problem.
Error invalidRequest(std::string path, std::string message);

}  // namespace customcode::workspace
