#pragma once

#include "workspace/workspace.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

// Generates the scripts a worker loads from a workspace. Each script starts with a header line
// that carries the fingerprint of the workspace.yaml it came from, so a stale script is detected.
namespace customcode::workspace {

// The file name generated scripts had before they were content-addressed (removed when found).
std::string_view scriptFileName(Language language);

// The file name of the generated script of `language` whose text has fingerprint `version`:
// functions-<16 hex digits>.js or .py. A name always holds the same text (workspace_store.hpp).
std::string scriptFileName(Language language, std::uint64_t version);

// The version in a content-addressed script file name, if it is one.
std::optional<std::uint64_t> scriptVersion(std::string_view fileName, Language language);

// The CommonJS module of every nodejs function of `workspace`: it exports a factory
// `(cache, require, console, stub) => ({NAME: async function NAME({p1, p2} = {}) {...}, ...})`.
// The user's code sits on its own lines, so its line N is line N + offset() of the module. Each
// python function is a `const NAME = stub("NAME")` after them: a function that calls it through
// the service (pool/protocol.hpp's "call" frame); it is not exported.
std::string generateNodeModule(const Workspace& workspace, std::uint64_t sourceFingerprint);

// The Python module of every python function of `workspace`. It holds data only, one Python
// literal: `FUNCTIONS = [{"name", "parameters": [(NAME, DEFAULT_JSON_TEXT or None), ...], "code"}]`,
// every string JSON-escaped (a JSON string is a valid Python string literal). The worker
// (runtimes/python/bootstrap/worker.py) compiles each code as the body of
// `async def NAME(p1=<default or None>, ...)` with the ast module, so the code is never
// re-indented and its line N is line N in tracebacks and syntax errors. When the workspace has
// nodejs functions, `CALLS = [(NAME, [PARAMETER, ...]), ...]` lists them: the worker makes each a
// function that calls it through the service.
std::string generatePythonModule(const Workspace& workspace, std::uint64_t sourceFingerprint);

// Generated scripts, keyed by language, for the languages the workspace uses.
std::string generateScript(Language language, const Workspace& workspace, std::uint64_t sourceFingerprint);

// The fingerprint in a generated script's header line, if it has one.
std::optional<std::uint64_t> scriptFingerprint(std::string_view script);

}  // namespace customcode::workspace
