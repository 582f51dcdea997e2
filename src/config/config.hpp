#pragma once

#include "network/cidr.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

// Plain configuration structs with their defaults. load_config.cpp fills them from the environment;
// each constructor takes only the sub-struct it needs.
namespace customcode::config {

using std::chrono::milliseconds;
using std::chrono::seconds;

struct HttpConfig {
  std::string host = "0.0.0.0";
  std::uint16_t port = 4000;                  // PORT; 0 picks a free port (logged at start-up)
  std::size_t requestMaxSize = 1024 * 1024;   // REQUEST_MAX_SIZE
  // HTTP_MAX_CONNECTIONS: connections open at once; a new one beyond it is closed at once. 0 (the
  // default) means half the descriptor limit the service runs with (http/listener.hpp).
  std::size_t maxConnections = 0;
  milliseconds idleTimeout{75'000};    // HTTP_IDLE_TIMEOUT: a keep-alive connection waiting for a request
  milliseconds headerTimeout{10'000};  // HTTP_HEADER_TIMEOUT: the whole request head, from its first byte
  milliseconds shutdownGrace{10'000};         // SHUTDOWN_TIMEOUT
};

struct StoreConfig {
  std::filesystem::path root = "data/functions/";  // FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH
  bool updateScriptsOnStartup = false;             // UPDATE_SCRIPTS_ON_STARTUP
};

struct PoolConfig {
  std::size_t maxWorkers = 500;                // FUNCTIONS_WORKERS_MAX_LRU
  milliseconds runTimeout{20'000};             // FUNCTIONS_RUN_TIMEOUT
  milliseconds pythonRunTimeout{20'000};       // PYTHON_FUNCTIONS_RUN_TIMEOUT
  seconds idleTimeout{3600};                   // INACTIVE_NODE_WORKER_DELETION_TIMEOUT
  milliseconds pingTimeout{1'000};             // WORKER_PING_TIMEOUT
  milliseconds startupTimeout{10'000};         // WORKER_STARTUP_TIMEOUT
  std::size_t spareWorkers = 2;                // FUNCTIONS_SPARE_WORKERS: pre-started Node workers
  std::size_t pythonSpareWorkers = 2;          // PYTHON_FUNCTIONS_SPARE_WORKERS: pre-started Python workers
  milliseconds longRunAfter{50};               // FUNCTIONS_LONG_RUN_AFTER: a call this long lowers its worker...
  int longRunNice = 19;                        // FUNCTIONS_LONG_RUN_NICE: ...to this nice value (docs/decisions.md)
  milliseconds killGrace{500};
};

struct RuntimeConfig {
  std::filesystem::path nodePath = "/usr/bin/node";       // NODE_PATH_BINARY
  std::filesystem::path pythonPath = "/usr/bin/python3";  // PYTHON_PATH_BINARY
  std::filesystem::path bootstrapDir;  // set from the binary's location: <bindir>/runtimes
  std::vector<std::string> nodeBuiltinModules{"http", "https", "url",    "util",  "zlib",
                                              "dns",  "stream", "buffer", "crypto"};
  std::size_t nodeMaxOldGenerationMb = 100;  // NODE_WORKER_MAX_OLD_GENERATION_SIZE_MB
  std::vector<std::string> pythonBuiltinModules;     // PYTHON_BUILTIN_MODULES
  std::vector<std::string> pythonPackagesWhitelist;  // PYTHON_PACKAGES_WHITELIST_IMPORT
  std::string pythonApiUrl = "http://localhost:8000";  // PYTHON_API_URL: accepted, unused
  std::size_t logsMaxBytes = 256 * 1024;               // FUNCTIONS_LOGS_MAX_SIZE (per run)
  std::size_t resultMaxBytes = 10 * 1024 * 1024;       // FUNCTIONS_RESULT_MAX_SIZE
};

// npm installs of the packages a workspace's JavaScript requires, at save time (docs/npm.md).
struct NpmConfig {
  std::filesystem::path npmPath = "/usr/bin/npm";  // NPM_PATH_BINARY
  std::string registry;                  // NPM_CONFIG_REGISTRY; empty: npm's own configuration
  milliseconds installTimeout{120'000};  // NPM_INSTALL_TIMEOUT
  std::filesystem::path cacheDir;        // NPM_CACHE_DIRECTORY; empty: <storage root>/.npm-cache
};

// How workers are isolated from the host (docs/security.md).
struct SandboxConfig {
  enum class Mode { Auto, Bwrap, Restricted, None };
  Mode mode = Mode::Auto;                          // SANDBOX: auto, bwrap, restricted or none
  std::filesystem::path bwrapPath = "/usr/bin/bwrap";
  std::size_t memoryMaxBytes = 1024 * 1024 * 1024;  // WORKER_MEMORY_MAX_SIZE (per worker)
  std::size_t tmpMaxBytes = 16 * 1024 * 1024;       // WORKER_TMP_MAX_SIZE (its private /tmp)
  bool nodePermissionModel = true;                  // NODE_PERMISSION_MODEL
  // SANDBOX_TEST_NO_NAMESPACES: a test switch that makes the bubblewrap probe fail as on a host
  // that refuses namespaces, so that the weaker modes are tested on purpose.
  bool testNoNamespaces = false;
  // WORKER_CGROUPS: a cgroup per worker with a memory ceiling of memoryMaxBytes for its whole tree,
  // a process limit and a CPU class (process/cgroup.hpp). auto: where the service may make them;
  // on: start-up fails without them; off: rlimits and nice values only.
  enum class Cgroups { Auto, On, Off };
  Cgroups cgroups = Cgroups::Auto;
  // WORKER_CGROUPS_TEST_UNAVAILABLE: a test switch that makes cgroups look unavailable, so that
  // the fallback of WORKER_CGROUPS=auto is tested on purpose.
  bool testNoCgroups = false;
};

// What the network of a worker reaches (docs/security.md, "Network").
struct WorkerNetworkConfig {
  enum class Mode { Isolated, Host, None };
  Mode mode = Mode::Isolated;  // WORKER_NETWORK: isolated (default), host or none
  // WORKER_NETWORK set to "isolated" (not left to its default): refuse to start without it
  // instead of falling back to host.
  bool required = false;
  std::vector<network::Cidr> deny;   // WORKER_NETWORK_DENY: added to the default list
  // WORKER_NETWORK_ALLOW: reachable even when denied; ports of the host's loopback through pasta.
  std::vector<network::AllowedDestination> allow;
  std::filesystem::path pastaPath = "/usr/bin/pasta";
  std::filesystem::path nftPath = "/usr/sbin/nft";
  std::filesystem::path unsharePath = "/usr/bin/unshare";
};

struct LogConfig {
  std::string level = "info";  // LOG_LEVEL
};

// The web playground served at /playground (docs/playground.md).
struct PlaygroundConfig {
  bool enabled = true;        // PLAYGROUND: on (default) or off (no route at all)
  std::filesystem::path dir;  // PLAYGROUND_DIR; default <bindir>/playground (the build output)
};

struct Config {
  HttpConfig http;
  StoreConfig store;
  PoolConfig pool;
  RuntimeConfig runtime;
  NpmConfig npm;
  SandboxConfig sandbox;
  WorkerNetworkConfig network;
  LogConfig log;
  PlaygroundConfig playground;
};

// Default allowlists, as in the reference service.
std::vector<std::string> defaultPythonBuiltinModules();
std::vector<std::string> defaultPythonPackagesWhitelist();

// Reads every variable once. Returns the config, or every problem found, each naming its variable.
struct LoadResult {
  Config config;
  std::vector<std::string> errors;
};
LoadResult loadConfig(const std::function<const char*(const char*)>& getenv,
                      const std::filesystem::path& executableDir);

}  // namespace customcode::config
