#include "config/config.hpp"

#include "common/text.hpp"

#include <charconv>
#include <functional>

namespace customcode::config {
namespace {

std::optional<long long> parseInteger(std::string_view text) {
  text = text::trim(text);
  long long value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

// One row per variable: its name and how it lands in the config. A parser returns an error
// message (without the name) or an empty string.
struct Variable {
  const char* name;
  std::function<std::string(std::string_view, Config&)> parse;
};

auto positiveMs(std::function<milliseconds&(Config&)> field) {
  return [field](std::string_view text, Config& c) -> std::string {
    auto v = parseInteger(text);
    if (!v || *v <= 0) return "must be a positive number of ms";
    field(c) = milliseconds(*v);
    return {};
  };
}

auto spareCount(std::function<std::size_t&(Config&)> field) {
  return [field](std::string_view text, Config& c) -> std::string {
    auto v = parseInteger(text);
    if (!v || *v < 0 || *v > 64) return "must be a number of workers between 0 and 64";
    field(c) = static_cast<std::size_t>(*v);
    return {};
  };
}

auto positiveSeconds(std::function<seconds&(Config&)> field) {
  return [field](std::string_view text, Config& c) -> std::string {
    auto v = parseInteger(text);
    if (!v || *v <= 0) return "must be a positive number of seconds";
    field(c) = seconds(*v);
    return {};
  };
}

auto byteSize(std::function<std::size_t&(Config&)> field) {
  return [field](std::string_view text, Config& c) -> std::string {
    auto v = text::parseByteSize(text);
    if (!v || *v == 0) return "must be a size such as 1mb, 100kb or 512 (bytes)";
    field(c) = static_cast<std::size_t>(*v);
    return {};
  };
}

auto list(std::function<std::vector<std::string>&(Config&)> field) {
  return [field](std::string_view text, Config& c) -> std::string {
    field(c) = text::splitList(text);
    return {};
  };
}

auto cidrs(std::function<std::vector<network::Cidr>&(Config&)> field) {
  return [field](std::string_view text, Config& c) -> std::string {
    std::string error;
    field(c) = network::parseCidrList(text, error);
    return error;
  };
}

auto allowList(std::function<std::vector<network::AllowedDestination>&(Config&)> field) {
  return [field](std::string_view text, Config& c) -> std::string {
    std::string error;
    field(c) = network::parseAllowList(text, error);
    return error;
  };
}

auto path(std::function<std::filesystem::path&(Config&)> field) {
  return [field](std::string_view text, Config& c) -> std::string {
    if (text::trim(text).empty()) return "must not be empty";
    field(c) = std::filesystem::path(std::string(text::trim(text)));
    return {};
  };
}

// yes/true/1 or no/false/0 (empty: no).
auto flag(std::function<bool&(Config&)> field) {
  return [field](std::string_view text, Config& c) -> std::string {
    auto v = text::toLower(text::trim(text));
    if (v == "yes" || v == "true" || v == "1") field(c) = true;
    else if (v == "no" || v == "false" || v == "0" || v.empty()) field(c) = false;
    else return "must be yes, true, no or false";
    return {};
  };
}

const std::vector<Variable>& variables() {
  static const std::vector<Variable> table = {
      {"PORT",
       [](std::string_view text, Config& c) -> std::string {
         auto v = parseInteger(text);
         if (!v || *v < 0 || *v > 65535) return "must be a port number between 0 and 65535";
         c.http.port = static_cast<std::uint16_t>(*v);
         return {};
       }},
      {"HOST",
       [](std::string_view text, Config& c) -> std::string {
         if (text::trim(text).empty()) return "must not be empty";
         c.http.host = std::string(text::trim(text));
         return {};
       }},
      {"REQUEST_MAX_SIZE", byteSize([](Config& c) -> std::size_t& { return c.http.requestMaxSize; })},
      {"SHUTDOWN_TIMEOUT", positiveMs([](Config& c) -> milliseconds& { return c.http.shutdownGrace; })},
      {"HTTP_MAX_CONNECTIONS",
       [](std::string_view text, Config& c) -> std::string {
         auto v = parseInteger(text);
         if (!v || *v < 0) return "must be a number of connections (0: half the descriptor limit)";
         c.http.maxConnections = static_cast<std::size_t>(*v);
         return {};
       }},
      {"HTTP_IDLE_TIMEOUT", positiveMs([](Config& c) -> milliseconds& { return c.http.idleTimeout; })},
      {"HTTP_HEADER_TIMEOUT", positiveMs([](Config& c) -> milliseconds& { return c.http.headerTimeout; })},
      {"FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH", path([](Config& c) -> std::filesystem::path& { return c.store.root; })},
      {"UPDATE_SCRIPTS_ON_STARTUP", flag([](Config& c) -> bool& { return c.store.updateScriptsOnStartup; })},
      {"FUNCTIONS_WORKERS_MAX_LRU",
       [](std::string_view text, Config& c) -> std::string {
         auto v = parseInteger(text);
         if (!v || *v <= 0) return "must be a positive number of workers";
         c.pool.maxWorkers = static_cast<std::size_t>(*v);
         return {};
       }},
      {"FUNCTIONS_RUN_TIMEOUT", positiveMs([](Config& c) -> milliseconds& { return c.pool.runTimeout; })},
      {"PYTHON_FUNCTIONS_RUN_TIMEOUT", positiveMs([](Config& c) -> milliseconds& { return c.pool.pythonRunTimeout; })},
      {"INACTIVE_NODE_WORKER_DELETION_TIMEOUT", positiveSeconds([](Config& c) -> seconds& { return c.pool.idleTimeout; })},
      {"WORKER_PING_TIMEOUT", positiveMs([](Config& c) -> milliseconds& { return c.pool.pingTimeout; })},
      {"WORKER_STARTUP_TIMEOUT", positiveMs([](Config& c) -> milliseconds& { return c.pool.startupTimeout; })},
      {"FUNCTIONS_SPARE_WORKERS", spareCount([](Config& c) -> std::size_t& { return c.pool.spareWorkers; })},
      {"PYTHON_FUNCTIONS_SPARE_WORKERS", spareCount([](Config& c) -> std::size_t& { return c.pool.pythonSpareWorkers; })},
      {"FUNCTIONS_LONG_RUN_AFTER",
       [](std::string_view text, Config& c) -> std::string {
         auto v = parseInteger(text);
         if (!v || *v < 0) return "must be a number of milliseconds (0 turns lowering off)";
         c.pool.longRunAfter = milliseconds(*v);
         return {};
       }},
      {"FUNCTIONS_LONG_RUN_NICE",
       [](std::string_view text, Config& c) -> std::string {
         auto v = parseInteger(text);
         if (!v || *v < 1 || *v > 19) return "must be a nice value between 1 and 19";
         c.pool.longRunNice = static_cast<int>(*v);
         return {};
       }},
      {"NODE_PATH_BINARY", path([](Config& c) -> std::filesystem::path& { return c.runtime.nodePath; })},
      {"PYTHON_PATH_BINARY", path([](Config& c) -> std::filesystem::path& { return c.runtime.pythonPath; })},
      {"NODE_BUILTIN_MODULES", list([](Config& c) -> std::vector<std::string>& { return c.runtime.nodeBuiltinModules; })},
      {"NODE_WORKER_MAX_OLD_GENERATION_SIZE_MB",
       [](std::string_view text, Config& c) -> std::string {
         // The reference documents "100MB"; a bare number means megabytes.
         auto t = text::toLower(text::trim(text));
         if (t.ends_with("mb")) t.resize(t.size() - 2);
         auto v = parseInteger(t);
         if (!v || *v < 16) return "must be a number of megabytes, at least 16 (e.g. 100 or 100MB)";
         c.runtime.nodeMaxOldGenerationMb = static_cast<std::size_t>(*v);
         return {};
       }},
      {"PYTHON_BUILTIN_MODULES", list([](Config& c) -> std::vector<std::string>& { return c.runtime.pythonBuiltinModules; })},
      {"PYTHON_PACKAGES_WHITELIST_IMPORT",
       list([](Config& c) -> std::vector<std::string>& { return c.runtime.pythonPackagesWhitelist; })},
      {"PYTHON_API_URL",
       [](std::string_view text, Config& c) -> std::string {
         c.runtime.pythonApiUrl = std::string(text::trim(text));
         return {};
       }},
      {"FUNCTIONS_LOGS_MAX_SIZE", byteSize([](Config& c) -> std::size_t& { return c.runtime.logsMaxBytes; })},
      {"FUNCTIONS_RESULT_MAX_SIZE", byteSize([](Config& c) -> std::size_t& { return c.runtime.resultMaxBytes; })},
      {"NPM_PATH_BINARY", path([](Config& c) -> std::filesystem::path& { return c.npm.npmPath; })},
      {"NPM_CONFIG_REGISTRY",
       [](std::string_view text, Config& c) -> std::string {
         auto v = std::string(text::trim(text));
         if (!v.empty() && !v.starts_with("http://") && !v.starts_with("https://")) return "must be an http(s) URL";
         c.npm.registry = v;
         return {};
       }},
      {"NPM_INSTALL_TIMEOUT", positiveMs([](Config& c) -> milliseconds& { return c.npm.installTimeout; })},
      {"NPM_CACHE_DIRECTORY", path([](Config& c) -> std::filesystem::path& { return c.npm.cacheDir; })},
      {"SANDBOX",
       [](std::string_view text, Config& c) -> std::string {
         auto v = text::toLower(text::trim(text));
         if (v == "auto" || v.empty()) c.sandbox.mode = SandboxConfig::Mode::Auto;
         else if (v == "bwrap") c.sandbox.mode = SandboxConfig::Mode::Bwrap;
         else if (v == "restricted") c.sandbox.mode = SandboxConfig::Mode::Restricted;
         else if (v == "none") c.sandbox.mode = SandboxConfig::Mode::None;
         else return "must be auto, bwrap, restricted or none";
         return {};
       }},
      {"SANDBOX_TEST_NO_NAMESPACES", flag([](Config& c) -> bool& { return c.sandbox.testNoNamespaces; })},
      {"WORKER_CGROUPS",
       [](std::string_view text, Config& c) -> std::string {
         auto v = text::toLower(text::trim(text));
         if (v == "auto" || v.empty()) c.sandbox.cgroups = SandboxConfig::Cgroups::Auto;
         else if (v == "on") c.sandbox.cgroups = SandboxConfig::Cgroups::On;
         else if (v == "off") c.sandbox.cgroups = SandboxConfig::Cgroups::Off;
         else return "must be auto, on or off";
         return {};
       }},
      {"WORKER_CGROUPS_TEST_UNAVAILABLE", flag([](Config& c) -> bool& { return c.sandbox.testNoCgroups; })},
      {"WORKER_MEMORY_MAX_SIZE", byteSize([](Config& c) -> std::size_t& { return c.sandbox.memoryMaxBytes; })},
      {"WORKER_TMP_MAX_SIZE", byteSize([](Config& c) -> std::size_t& { return c.sandbox.tmpMaxBytes; })},
      {"NODE_PERMISSION_MODEL",
       [](std::string_view text, Config& c) -> std::string {
         auto v = text::toLower(text::trim(text));
         if (v == "yes" || v == "true" || v == "1") c.sandbox.nodePermissionModel = true;
         else if (v == "no" || v == "false" || v == "0") c.sandbox.nodePermissionModel = false;
         else return "must be yes, true, no or false";
         return {};
       }},
      {"WORKER_NETWORK",
       [](std::string_view text, Config& c) -> std::string {
         auto v = text::toLower(text::trim(text));
         c.network.required = v == "isolated";
         if (v == "isolated" || v.empty()) c.network.mode = WorkerNetworkConfig::Mode::Isolated;
         else if (v == "host") c.network.mode = WorkerNetworkConfig::Mode::Host;
         else if (v == "none") c.network.mode = WorkerNetworkConfig::Mode::None;
         else return "must be isolated, host or none";
         return {};
       }},
      {"WORKER_NETWORK_DENY", cidrs([](Config& c) -> std::vector<network::Cidr>& { return c.network.deny; })},
      {"WORKER_NETWORK_ALLOW",
       allowList([](Config& c) -> std::vector<network::AllowedDestination>& { return c.network.allow; })},
      {"LOG_LEVEL",
       [](std::string_view text, Config& c) -> std::string {
         auto v = text::toLower(text::trim(text));
         for (auto* level : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
           if (v == level) {
             c.log.level = v;
             return {};
           }
         }
         return "must be one of trace, debug, info, warn, error, critical, off";
       }},
      {"PLAYGROUND",
       [](std::string_view text, Config& c) -> std::string {
         auto v = text::toLower(text::trim(text));
         if (v == "on" || v == "yes" || v == "true" || v == "1") c.playground.enabled = true;
         else if (v == "off" || v == "no" || v == "false" || v == "0") c.playground.enabled = false;
         else return "must be on or off";
         return {};
       }},
      {"PLAYGROUND_DIR", path([](Config& c) -> std::filesystem::path& { return c.playground.dir; })},
  };
  return table;
}

}  // namespace

std::vector<std::string> defaultPythonBuiltinModules() {
  return {"json",     "csv",        "re",        "math",       "random",   "datetime",  "time",
          "calendar", "collections", "itertools", "functools", "operator", "typing",    "dataclasses",
          "enum",     "decimal",    "fractions", "statistics", "string",   "textwrap",  "unicodedata",
          "base64",   "binascii",   "hashlib",   "hmac",       "secrets",  "zlib",      "gzip",
          "bz2",      "lzma",       "zipfile",   "io",         "copy",     "pprint",    "urllib",
          "http",     "html",       "xml",       "email",      "logging",  "uuid",      "bisect",
          "heapq",    "array",      "struct",    "difflib",    "abc",      "contextlib", "numbers",
          "asyncio",  "traceback",  "warnings",  "weakref",    "locale",   "zoneinfo",  "ipaddress",
          "mimetypes", "shlex",     "fnmatch",   "codecs",     "types"};
}

std::vector<std::string> defaultPythonPackagesWhitelist() {
  return {"numpy", "pandas", "tabulate", "dateparser", "urllib3", "requests", "pptx", "docx"};
}

LoadResult loadConfig(const std::function<const char*(const char*)>& getenv,
                      const std::filesystem::path& executableDir) {
  LoadResult out;
  out.config.runtime.bootstrapDir = executableDir / "runtimes";
  out.config.playground.dir = executableDir / "playground";
  out.config.runtime.pythonBuiltinModules = defaultPythonBuiltinModules();
  out.config.runtime.pythonPackagesWhitelist = defaultPythonPackagesWhitelist();
  for (const auto& variable : variables()) {
    const char* value = getenv(variable.name);
    if (value == nullptr) continue;
    auto problem = variable.parse(value, out.config);
    if (!problem.empty())
      out.errors.push_back(std::string(variable.name) + ": " + problem + ", got \"" + value + "\"");
  }
  return out;
}

}  // namespace customcode::config
