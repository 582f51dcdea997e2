#pragma once

#include "workspace/workspace.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

// Generates the scripts a worker loads from a workspace. Each script starts with a header line
// that carries the fingerprint of the workspace.yaml it came from, so a stale script is detected.
namespace customcode::workspace {

// The file name of the generated script of `language` inside the workspace directory.
std::string_view scriptFileName(Language language);

// The CommonJS module of every nodejs function of `workspace`: it exports a factory
// `(cache, require, console) => ({NAME: async function NAME({p1, p2} = {}) {...}, ...})`.
// The user's code sits on its own lines, so its line N is line N + offset() of the module.
std::string generateNodeModule(const Workspace& workspace, std::uint64_t sourceFingerprint);

// Generated scripts, keyed by language, for the languages the workspace uses.
std::string generateScript(Language language, const Workspace& workspace, std::uint64_t sourceFingerprint);

// The fingerprint in a generated script's header line, if it has one.
std::optional<std::uint64_t> scriptFingerprint(std::string_view script);

}  // namespace customcode::workspace
