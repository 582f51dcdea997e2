#pragma once

#include "common/errors.hpp"
#include "http/types.hpp"

#include <boost/json/object.hpp>

namespace customcode::http {

// The one place that maps an Errc to an HTTP status and the envelope
// {"error": "<Name>", "message": "...", "details"?: ...}.
bhttp::status statusOf(Errc code);
const char* errorName(Errc code);

// The envelope of `error`, plus `extra` members (a failed run's logs and duration).
boost::json::object errorBody(const Error& error, boost::json::object extra = {});

Response jsonResponse(bhttp::status status, std::string body, unsigned version, bool keepAlive);
Response errorResponse(const Error& error, unsigned version, bool keepAlive, boost::json::object extra = {});

}  // namespace customcode::http
