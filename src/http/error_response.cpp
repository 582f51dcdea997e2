#include "http/error_response.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/json.hpp>

namespace customcode::http {
namespace json = boost::json;

bhttp::status statusOf(Errc code) {
  switch (code) {
    case Errc::InvalidRequest:
    case Errc::PackageNotFound: return bhttp::status::bad_request;
    case Errc::PackageInstallFailed: return bhttp::status::bad_gateway;
    case Errc::WorkspaceNotFound:
    case Errc::FunctionNotFound:
    case Errc::RouteNotFound: return bhttp::status::not_found;
    case Errc::MethodNotAllowed: return bhttp::status::method_not_allowed;
    case Errc::CrossSiteRequest: return bhttp::status::forbidden;
    case Errc::UnsupportedMediaType: return bhttp::status::unsupported_media_type;
    case Errc::PayloadTooLarge: return bhttp::status::payload_too_large;
    case Errc::RunTimedOut: return bhttp::status::gateway_timeout;
    case Errc::LanguageUnavailable: return bhttp::status::not_implemented;
    case Errc::ShuttingDown: return bhttp::status::service_unavailable;
    case Errc::SpawnFailed:
    case Errc::WorkerDied:
    case Errc::OutOfMemory:
    case Errc::StorageFailed:
    case Errc::ResultTooLarge:
    case Errc::FunctionFailed: return bhttp::status::internal_server_error;
  }
  return bhttp::status::internal_server_error;
}

const char* errorName(Errc code) {
  switch (code) {
    case Errc::InvalidRequest:
    case Errc::PackageNotFound: return "RequestValidationError";
    case Errc::PackageInstallFailed: return "PackageInstallError";
    case Errc::WorkspaceNotFound:
    case Errc::FunctionNotFound:
    case Errc::RouteNotFound: return "ObjectNotFoundError";
    case Errc::MethodNotAllowed: return "MethodNotAllowedError";
    case Errc::CrossSiteRequest: return "ForbiddenError";
    case Errc::UnsupportedMediaType: return "UnsupportedMediaTypeError";
    case Errc::PayloadTooLarge: return "PayloadTooLarge";
    case Errc::RunTimedOut: return "TimeoutError";
    case Errc::LanguageUnavailable: return "NotImplementedError";
    case Errc::ShuttingDown: return "ServiceUnavailableError";
    case Errc::SpawnFailed: return "WorkerStartError";
    case Errc::WorkerDied: return "WorkerCrashed";
    case Errc::OutOfMemory: return "OutOfMemory";
    case Errc::StorageFailed: return "StorageError";
    case Errc::ResultTooLarge: return "ResultTooLarge";
    case Errc::FunctionFailed: return "FunctionError";
  }
  return "InternalError";
}

json::object errorBody(const Error& error, json::object extra) {
  json::object body{{"error", errorName(error.code)}, {"message", error.message}};
  if (!error.details.is_null()) body["details"] = error.details;
  for (auto& [key, value] : extra) body[key] = std::move(value);
  return body;
}

Response jsonResponse(bhttp::status status, std::string body, unsigned version, bool keepAlive) {
  Response res{status, version};
  res.set(bhttp::field::content_type, "application/json; charset=utf-8");
  res.keep_alive(keepAlive);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

Response errorResponse(const Error& error, unsigned version, bool keepAlive, json::object extra) {
  return jsonResponse(statusOf(error.code), json::serialize(errorBody(error, std::move(extra))), version, keepAlive);
}

}  // namespace customcode::http
