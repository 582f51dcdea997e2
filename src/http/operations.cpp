#include "http/operations.hpp"

#include "common/log.hpp"
#include "http/error_response.hpp"
#include "http/openapi.hpp"
#include "workspace/validation.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/json.hpp>

namespace customcode::http {
namespace json = boost::json;
namespace {

constexpr std::string_view kLevels = "trace, debug, info, warn, error, critical, off";

std::string levelBody() {
  return json::serialize(json::object{{"level", log::levelName(log::level())}});
}

}  // namespace

Response openApiResponse(const Request& request) {
  return jsonResponse(bhttp::status::ok, std::string(openApiDocument()), request.version(), request.keep_alive());
}

Response loggingResponse(const Request& request) {
  return jsonResponse(bhttp::status::ok, levelBody(), request.version(), request.keep_alive());
}

Response setLogging(const Request& request) {
  auto fail = [&](std::string path, std::string message) {
    return errorResponse(workspace::invalidRequest(std::move(path), std::move(message)), request.version(),
                         request.keep_alive());
  };
  boost::system::error_code ec;
  auto body = json::parse(request.body(), ec);
  if (ec) return fail("", "body is not valid JSON: " + ec.message());
  if (!body.is_object()) return fail("", "body must be a JSON object with a level");
  const auto& object = body.as_object();
  for (const auto& [key, value] : object)
    if (key != "level") return fail(key, "is not a known key (level)");
  const auto* level = object.if_contains("level");
  if (!level) return fail("level", "is required");
  auto parsed = level->is_string() ? log::parseLevel(level->get_string()) : std::nullopt;
  if (!parsed) return fail("level", "must be one of " + std::string(kLevels));

  log::app()->info("log level {} -> {} (PUT /sys/logging)", log::levelName(log::level()), log::levelName(*parsed));
  log::setLevel(*parsed);
  return loggingResponse(request);
}

}  // namespace customcode::http
