#pragma once

#include "workspace/validation.hpp"
#include "workspace/workspace.hpp"

#include <boost/json.hpp>

#include <stdexcept>
#include <string_view>

namespace customcode::workspace {

// The validated workspace "ws" of a save body; throws on a body the test got wrong.
inline Workspace workspaceOf(std::string_view body) {
  auto parsed = parseWorkspace("ws", boost::json::parse(body));
  if (!parsed) throw std::logic_error(parsed.error().message);
  return std::move(*parsed);
}

}  // namespace customcode::workspace
