#pragma once

#include "http/types.hpp"

// The operational routes that hold no state of the API: the OpenAPI document and the log level.
namespace customcode::http {

// GET /openapi.json: the document, as embedded.
Response openApiResponse(const Request& request);

// GET /sys/logging: {"level": "<current>"}.
Response loggingResponse(const Request& request);

// PUT /sys/logging {"level": "debug"}: sets the level of every domain logger at once and answers
// like GET. A body that is not exactly {"level": one of trace debug info warn error critical off}
// is a 400 RequestValidationError, and the level stays.
Response setLogging(const Request& request);

}  // namespace customcode::http
