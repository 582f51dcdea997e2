#pragma once

#include "config/config.hpp"
#include "http/types.hpp"

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace customcode::http {

// The web playground's static files (the bundle web/playground builds into <bindir>/playground),
// held in memory and served under /playground/ (docs/playground.md). Files under assets/ carry a
// content hash in their name and are cached for a year; the others (index.html) are revalidated
// with their ETag. A file with a gzipped copy (NAME.gz) is sent gzipped to clients that accept it.
// Every answer carries a Content-Security-Policy that allows scripts, styles and
// fetches from this origin only and forbids framing.
class Playground {
 public:
  explicit Playground(config::PlaygroundConfig config) : config_(std::move(config)) {}

  // Reads the built files (when enabled). Returns a warning for the log when the playground is
  // on but was not built. Runs once, before the service listens.
  std::optional<std::string> load();

  bool enabled() const { return config_.enabled; }
  bool built() const { return files_.contains("index.html"); }

  // Answers GET or HEAD for `path` below /playground/ ("" is the page itself); `target` is the
  // request target, to redirect /playground to /playground/. Off: the 404 of an unknown route;
  // not built: a 404 that says so.
  Response serve(const Request& request, std::string_view path) const;

 private:
  struct File {
    std::string body;
    std::string contentType;
    std::string etag;
    bool immutable = false;
    std::string gzipped;  // the build's NAME.gz next to it, if any
    std::string gzippedEtag;
  };

  config::PlaygroundConfig config_;
  std::map<std::string, File, std::less<>> files_;  // by path relative to the directory
};

// The Content-Type of a served file, from its extension.
std::string_view contentTypeOf(std::string_view path);

}  // namespace customcode::http
