#pragma once

#include <boost/assert/source_location.hpp>
#include <boost/json/value.hpp>
#include <boost/system/result.hpp>

#include <stdexcept>
#include <string>

namespace customcode {

// Failures that are expected while serving. Only http/error_response.cpp maps them to statuses.
enum class Errc {
  InvalidRequest = 1,
  WorkspaceNotFound,
  FunctionNotFound,
  SpawnFailed,
  RunTimedOut,
  WorkerDied,
  OutOfMemory,
  LanguageUnavailable,
  StorageFailed,
  ShuttingDown,
  PayloadTooLarge,
  RouteNotFound,
  MethodNotAllowed,
  ResultTooLarge,
  FunctionFailed,  // the user's function threw: details carry its name, message and stack
  PackageNotFound,       // npm: no such package, or no version in the pinned range
  PackageInstallFailed,  // npm failed otherwise (registry unreachable, timeout, no npm)
  CrossSiteRequest,      // a browser sent a state-changing request from another site
  UnsupportedMediaType,  // a body that is not declared as JSON
};

// An expected failure with the message a client may see.
struct Error {
  Errc code;
  std::string message;
  boost::json::value details = nullptr;  // e.g. the list of validation problems
};

// Reached only through Result::value() on an error, which is a bug in the caller.
[[noreturn]] inline void throw_exception_from_error(const Error& e, const boost::source_location&) {
  throw std::logic_error("unchecked Result error: " + e.message);
}

template <class T>
using Result = boost::system::result<T, Error>;

}  // namespace customcode
