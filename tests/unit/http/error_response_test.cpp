#include "http/error_response.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <utility>
#include <vector>

namespace customcode::http {
namespace {

namespace json = boost::json;

// Every Errc, its status and its envelope name: the table of the README.
const std::vector<std::tuple<Errc, bhttp::status, std::string>> kMapping = {
    {Errc::InvalidRequest, bhttp::status::bad_request, "RequestValidationError"},
    {Errc::PackageNotFound, bhttp::status::bad_request, "RequestValidationError"},
    {Errc::PackageInstallFailed, bhttp::status::bad_gateway, "PackageInstallError"},
    {Errc::WorkspaceNotFound, bhttp::status::not_found, "ObjectNotFoundError"},
    {Errc::FunctionNotFound, bhttp::status::not_found, "ObjectNotFoundError"},
    {Errc::RouteNotFound, bhttp::status::not_found, "ObjectNotFoundError"},
    {Errc::MethodNotAllowed, bhttp::status::method_not_allowed, "MethodNotAllowedError"},
    {Errc::PayloadTooLarge, bhttp::status::payload_too_large, "PayloadTooLarge"},
    {Errc::RunTimedOut, bhttp::status::gateway_timeout, "TimeoutError"},
    {Errc::LanguageUnavailable, bhttp::status::not_implemented, "NotImplementedError"},
    {Errc::ShuttingDown, bhttp::status::service_unavailable, "ServiceUnavailableError"},
    {Errc::SpawnFailed, bhttp::status::internal_server_error, "WorkerStartError"},
    {Errc::WorkerDied, bhttp::status::internal_server_error, "WorkerCrashed"},
    {Errc::OutOfMemory, bhttp::status::internal_server_error, "OutOfMemory"},
    {Errc::StorageFailed, bhttp::status::internal_server_error, "StorageError"},
    {Errc::ResultTooLarge, bhttp::status::internal_server_error, "ResultTooLarge"},
    {Errc::FunctionFailed, bhttp::status::internal_server_error, "FunctionError"},
};

TEST(ErrorResponse, MapsEveryCodeToItsStatusAndName) {
  for (const auto& [code, status, name] : kMapping) {
    EXPECT_EQ(statusOf(code), status) << name;
    EXPECT_EQ(errorName(code), name) << static_cast<int>(code);
  }
  EXPECT_EQ(kMapping.size(), static_cast<std::size_t>(Errc::PackageInstallFailed));  // one row per code
}

TEST(ErrorResponse, TheEnvelopeHasDetailsOnlyWhenThereAreSome) {
  auto plain = errorBody(Error{Errc::WorkspaceNotFound, "Workspace \"x\" not found"});
  EXPECT_EQ(plain, (json::object{{"error", "ObjectNotFoundError"}, {"message", "Workspace \"x\" not found"}}));

  auto detailed = errorBody(Error{Errc::InvalidRequest, "bad", json::array{json::object{{"path", "functions"}}}},
                            {{"logs", json::array{}}, {"duration", 3}});
  EXPECT_EQ(detailed.at("details"), (json::array{json::object{{"path", "functions"}}}));
  EXPECT_EQ(detailed.at("logs"), json::array{});
  EXPECT_EQ(detailed.at("duration"), 3);
}

TEST(ErrorResponse, AResponseCarriesTheStatusAndAJsonBody) {
  auto response = errorResponse(Error{Errc::RunTimedOut, "too slow"}, 11, true);

  EXPECT_EQ(response.result(), bhttp::status::gateway_timeout);
  EXPECT_EQ(response[bhttp::field::content_type], "application/json; charset=utf-8");
  EXPECT_TRUE(response.keep_alive());
  EXPECT_EQ(json::parse(response.body()), (json::object{{"error", "TimeoutError"}, {"message", "too slow"}}));
}

}  // namespace
}  // namespace customcode::http
