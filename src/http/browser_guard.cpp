#include "http/browser_guard.hpp"

#include "common/text.hpp"

#include <boost/beast/core/string.hpp>

#include <string>
#include <string_view>

namespace customcode::http {
namespace beast = boost::beast;
namespace {

std::string lowerTrimmed(std::string_view value) { return text::toLower(text::trim(value)); }

// The host[:port] of an Origin such as "https://example.com:8080"; empty when it has no scheme.
std::string_view originHost(std::string_view origin) {
  auto scheme = origin.find("://");
  if (scheme == std::string_view::npos) return {};
  return origin.substr(scheme + 3);
}

std::optional<Error> crossSite(std::string why) {
  return Error{Errc::CrossSiteRequest,
               "Cross-site request refused (" + why + "): the API takes changes only from its own pages and "
               "from clients that are not browsers"};
}

}  // namespace

std::optional<Error> crossSiteProblem(const Request& request) {
  switch (request.method()) {
    case bhttp::verb::get:
    case bhttp::verb::head:
    case bhttp::verb::options: return std::nullopt;
    default: break;
  }

  // Browsers set Sec-Fetch-Site themselves (pages cannot), and it survives proxies that rewrite
  // Host; Origin against Host covers browsers that predate it.
  // On every POST of every run: compared in place, no copy unless refused.
  auto fetchSite = text::trim(request["Sec-Fetch-Site"]);
  if (!fetchSite.empty()) {
    if (beast::iequals(fetchSite, "cross-site") || beast::iequals(fetchSite, "same-site"))
      return crossSite("Sec-Fetch-Site: " + lowerTrimmed(fetchSite));
  } else if (auto origin = request.find(bhttp::field::origin); origin != request.end()) {
    auto value = lowerTrimmed(origin->value());
    auto host = lowerTrimmed(request[bhttp::field::host]);
    if (value == "null" || host.empty() || originHost(value) != host) return crossSite("Origin: " + value);
  }

  auto type = request.find(bhttp::field::content_type);
  if (type == request.end() && request.body().empty()) return std::nullopt;
  std::string_view declared = type == request.end() ? std::string_view() : std::string_view(type->value());
  if (!beast::iequals(text::trim(declared.substr(0, declared.find(';'))), "application/json")) {
    return Error{Errc::UnsupportedMediaType,
                 "The request body must be JSON sent with \"Content-Type: application/json\"" +
                     (declared.empty() ? std::string(" (no Content-Type was sent)")
                                       : " (got \"" + std::string(text::trim(declared)) + "\")")};
  }
  return std::nullopt;
}

}  // namespace customcode::http
