#pragma once

#include "common/errors.hpp"
#include "http/types.hpp"

#include <optional>

namespace customcode::http {

// Refuses the state-changing requests (any method but GET, HEAD and OPTIONS) that a page on
// another site could make a visitor's browser send, since the API answers no CORS preflight:
// - CrossSiteRequest when the browser says the request comes from another site
//   (`Sec-Fetch-Site: cross-site` or `same-site`) or, without that header, when `Origin` is
//   present and names another host than `Host` (or is `null`);
// - UnsupportedMediaType when a body or a `Content-Type` is sent and the type is not
//   `application/json` (a form or `text/plain` body needs no preflight).
// A request with neither a body nor a `Content-Type` (curl -X POST) passes, as do callers that
// send no browser headers. Pure: no I/O.
std::optional<Error> crossSiteProblem(const Request& request);

}  // namespace customcode::http
