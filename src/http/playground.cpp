#include "http/playground.hpp"

#include "common/files.hpp"
#include "common/text.hpp"
#include "http/error_response.hpp"

#include <fmt/format.h>

#include <boost/beast/http/field.hpp>

#include <system_error>

namespace customcode::http {
namespace fs = std::filesystem;
namespace {

// Scripts, fetches and images from this origin only; no framing, no plugins, no forms posted
// elsewhere. Styles also allow inline <style> elements: CodeMirror injects its theme that way
// (the page writes no markup, so there is nothing to inject styles through).
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; "
    "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

void setCommonHeaders(Response& res) {
  res.set("Content-Security-Policy", kContentSecurityPolicy);
  res.set("X-Content-Type-Options", "nosniff");
  res.set("X-Frame-Options", "DENY");
  res.set("Referrer-Policy", "no-referrer");
}

// Whether an Accept-Encoding value accepts gzip ("gzip", "gzip;q=0.5", not "gzip;q=0").
bool acceptsGzip(std::string_view acceptEncoding) {
  while (!acceptEncoding.empty()) {
    auto comma = acceptEncoding.find(',');
    auto item = text::toLower(text::trim(acceptEncoding.substr(0, comma)));
    auto semicolon = item.find(';');
    auto coding = text::trim(std::string_view(item).substr(0, semicolon));
    if (coding == "gzip" || coding == "*") {
      if (semicolon == std::string::npos) return true;
      auto params = std::string_view(item).substr(semicolon + 1);
      auto q = params.find("q=");
      if (q == std::string_view::npos) return true;
      auto value = text::trim(params.substr(q + 2));
      return !(value.starts_with("0") && value.find_first_not_of("0.", 0) == std::string_view::npos);
    }
    if (comma == std::string_view::npos) break;
    acceptEncoding.remove_prefix(comma + 1);
  }
  return false;
}

bool etagMatches(std::string_view ifNoneMatch, std::string_view etag) {
  // A list of ETags, possibly weak (W/"..."), or "*".
  while (!ifNoneMatch.empty()) {
    auto comma = ifNoneMatch.find(',');
    auto item = text::trim(ifNoneMatch.substr(0, comma));
    if (item.starts_with("W/")) item.remove_prefix(2);
    if (item == etag || item == "*") return true;
    if (comma == std::string_view::npos) break;
    ifNoneMatch.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

std::string_view contentTypeOf(std::string_view path) {
  auto dot = path.rfind('.');
  auto ext = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
  if (ext == "html") return "text/html; charset=utf-8";
  if (ext == "js" || ext == "mjs") return "text/javascript; charset=utf-8";
  if (ext == "css") return "text/css; charset=utf-8";
  if (ext == "json" || ext == "map") return "application/json; charset=utf-8";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "png") return "image/png";
  if (ext == "ico") return "image/x-icon";
  if (ext == "txt") return "text/plain; charset=utf-8";
  if (ext == "woff2") return "font/woff2";
  return "application/octet-stream";
}

std::optional<std::string> Playground::load() {
  files_.clear();
  if (!config_.enabled) return std::nullopt;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(config_.dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    auto body = files::readFile(it->path());
    if (!body) continue;
    auto relative = it->path().lexically_relative(config_.dir).generic_string();
    File file;
    file.contentType = std::string(contentTypeOf(relative));
    file.etag = fmt::format("\"{:016x}-{:x}\"", text::fingerprint(*body), body->size());
    file.immutable = relative.starts_with("assets/");
    file.body = std::move(*body);
    files_.emplace(std::move(relative), std::move(file));
  }
  // NAME.gz is the gzipped copy of NAME: served in its place, never on its own.
  for (auto it = files_.begin(); it != files_.end();) {
    auto base = it->first.ends_with(".gz") ? files_.find(std::string_view(it->first).substr(0, it->first.size() - 3))
                                           : files_.end();
    if (base == files_.end()) {
      ++it;
      continue;
    }
    base->second.gzipped = std::move(it->second.body);
    base->second.gzippedEtag = it->second.etag;
    it = files_.erase(it);
  }
  if (!built()) {
    files_.clear();
    return "the playground is on but not built (no index.html in " + config_.dir.string() +
           "): /playground says so; build it with scripts/build.sh (needs npm), set PLAYGROUND_DIR, or set "
           "PLAYGROUND=off";
  }
  return std::nullopt;
}

Response Playground::serve(const Request& request, std::string_view path) const {
  const auto version = request.version();
  const bool keepAlive = request.keep_alive();
  if (!config_.enabled) return errorResponse(Error{Errc::RouteNotFound, "Route not found"}, version, keepAlive);
  if (!built()) {
    return errorResponse(Error{Errc::RouteNotFound,
                               "The playground is not built on this server: build it with scripts/build.sh "
                               "(needs npm) and restart, or point PLAYGROUND_DIR at a built copy"},
                         version, keepAlive);
  }

  auto target = std::string_view(request.target());
  if (target.substr(0, target.find_first_of("?#")) == "/playground") {
    // Relative links in the page (assets/..., ../v2/...) need the trailing slash.
    Response res{bhttp::status::moved_permanently, version};
    res.set(bhttp::field::location, "playground/");
    res.keep_alive(keepAlive);
    res.prepare_payload();
    return res;
  }

  auto it = files_.find(path.empty() ? std::string_view("index.html") : path);
  if (it == files_.end()) return errorResponse(Error{Errc::RouteNotFound, "Route not found"}, version, keepAlive);
  const File& file = it->second;

  const bool gzip = !file.gzipped.empty() && acceptsGzip(request[bhttp::field::accept_encoding]);
  const std::string& body = gzip ? file.gzipped : file.body;
  const std::string& etag = gzip ? file.gzippedEtag : file.etag;

  Response res{bhttp::status::ok, version};
  res.keep_alive(keepAlive);
  setCommonHeaders(res);
  res.set(bhttp::field::etag, etag);
  res.set(bhttp::field::cache_control, file.immutable ? "public, max-age=31536000, immutable" : "no-cache");
  if (!file.gzipped.empty()) res.set(bhttp::field::vary, "Accept-Encoding");
  if (auto inm = request.find(bhttp::field::if_none_match);
      inm != request.end() && etagMatches(inm->value(), etag)) {
    res.result(bhttp::status::not_modified);
    return res;
  }
  res.set(bhttp::field::content_type, file.contentType);
  if (gzip) res.set(bhttp::field::content_encoding, "gzip");
  if (request.method() == bhttp::verb::head) {
    res.content_length(body.size());
  } else {
    res.body() = body;
    res.prepare_payload();
  }
  return res;
}

}  // namespace customcode::http
