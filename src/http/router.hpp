#pragma once

#include "common/errors.hpp"
#include "http/types.hpp"

#include <string>
#include <string_view>

namespace customcode::http {

enum class RouteKind {
  Healthcheck,     // GET /sys/healthcheck
  Metrics,         // GET /metrics
  ListWorkspaces,  // GET /v2/functions
  SaveWorkspace,   // POST /v2/functions/{workspace}
  GetWorkspace,    // GET /v2/functions/{workspace}
  DeleteWorkspace, // DELETE /v2/functions/{workspace}
  Run,             // POST /v2/functions/{workspace}/run/{function}
  OpenApi,         // GET /openapi.json
  GetLogging,      // GET /sys/logging
  SetLogging,      // PUT /sys/logging
};

struct Route {
  RouteKind kind;
  std::string workspace;  // percent-decoded, not yet validated
  std::string function;   // percent-decoded, not yet validated
};

// Matches a request line. Segments are split before they are percent-decoded, so an encoded
// slash stays inside its segment (and is then refused by name validation). Fails with
// RouteNotFound, MethodNotAllowed (message lists the allowed methods) or InvalidRequest (a
// malformed escape).
Result<Route> matchRoute(bhttp::verb method, std::string_view target);

}  // namespace customcode::http
