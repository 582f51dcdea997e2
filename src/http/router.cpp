#include "http/router.hpp"

#include "common/text.hpp"

#include <vector>

namespace customcode::http {
namespace {

Error methodNotAllowed(std::string_view allowed) {
  return Error{Errc::MethodNotAllowed, "Method not allowed; allowed: " + std::string(allowed)};
}

}  // namespace

Result<Route> matchRoute(bhttp::verb method, std::string_view target) {
  auto query = target.find_first_of("?#");
  std::string_view path = target.substr(0, query);
  if (path.empty() || path.front() != '/') return Error{Errc::RouteNotFound, "Route not found"};
  path.remove_prefix(1);
  if (!path.empty() && path.back() == '/') path.remove_suffix(1);  // tolerate one trailing slash

  std::vector<std::string> segments;
  while (!path.empty() || segments.empty()) {
    auto slash = path.find('/');
    auto raw = path.substr(0, slash);
    auto decoded = text::percentDecode(raw);
    if (!decoded) return Error{Errc::InvalidRequest, "Malformed percent-encoding in the URL"};
    segments.push_back(std::move(*decoded));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }

  auto is = [&](std::initializer_list<std::string_view> expected) {
    if (segments.size() != expected.size()) return false;
    std::size_t i = 0;
    for (auto e : expected) {
      if (!e.empty() && segments[i] != e) return false;
      ++i;
    }
    return true;
  };

  if (is({"sys", "healthcheck"}) || is({"healthcheck"})) {
    if (method != bhttp::verb::get && method != bhttp::verb::head) return methodNotAllowed("GET");
    return Route{RouteKind::Healthcheck, {}, {}};
  }
  if (is({"openapi.json"})) {
    if (method != bhttp::verb::get) return methodNotAllowed("GET");
    return Route{RouteKind::OpenApi, {}, {}};
  }
  if (is({"sys", "logging"})) {
    if (method == bhttp::verb::get) return Route{RouteKind::GetLogging, {}, {}};
    if (method == bhttp::verb::put) return Route{RouteKind::SetLogging, {}, {}};
    return methodNotAllowed("GET, PUT");
  }
  if (is({"metrics"})) {
    if (method != bhttp::verb::get) return methodNotAllowed("GET");
    return Route{RouteKind::Metrics, {}, {}};
  }
  if (segments.size() >= 2 && segments[0] == "v2" && segments[1] == "functions") {
    if (segments.size() == 2) {
      if (method != bhttp::verb::get) return methodNotAllowed("GET");
      return Route{RouteKind::ListWorkspaces, {}, {}};
    }
    if (segments.size() == 3) {
      switch (method) {
        case bhttp::verb::post: return Route{RouteKind::SaveWorkspace, segments[2], {}};
        case bhttp::verb::get: return Route{RouteKind::GetWorkspace, segments[2], {}};
        case bhttp::verb::delete_: return Route{RouteKind::DeleteWorkspace, segments[2], {}};
        default: return methodNotAllowed("GET, POST, DELETE");
      }
    }
    if (segments.size() == 5 && segments[3] == "run") {
      if (method != bhttp::verb::post) return methodNotAllowed("POST");
      return Route{RouteKind::Run, segments[2], segments[4]};
    }
  }
  return Error{Errc::RouteNotFound, "Route not found"};
}

}  // namespace customcode::http
