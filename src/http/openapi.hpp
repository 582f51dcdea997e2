#pragma once

#include <string_view>

namespace customcode::http {

// The OpenAPI 3.1 document of the service: docs/openapi.json, embedded at build time.
std::string_view openApiDocument();

}  // namespace customcode::http
