#include "http/metrics.hpp"

#include "common/log.hpp"

#include <fmt/format.h>

namespace customcode::http {

std::string renderMetrics(const Metrics& m) {
  std::string out;
  auto counter = [&](const char* name, const char* help, std::uint64_t value) {
    out += fmt::format("# HELP {0} {1}\n# TYPE {0} counter\n{0} {2}\n", name, help, value);
  };
  auto gauge = [&](const char* name, const char* help, std::uint64_t value) {
    out += fmt::format("# HELP {0} {1}\n# TYPE {0} gauge\n{0} {2}\n", name, help, value);
  };
  out += "# HELP customcode_runs_total Function runs by outcome.\n# TYPE customcode_runs_total counter\n";
  for (const auto* outcome : Metrics::kOutcomes) {
    auto it = m.runsByOutcome.find(outcome);
    out += fmt::format("customcode_runs_total{{outcome=\"{}\"}} {}\n", outcome, it == m.runsByOutcome.end() ? 0 : it->second);
  }
  out += "# HELP customcode_language_runs_total Function runs by language and outcome.\n"
         "# TYPE customcode_language_runs_total counter\n";
  for (const auto* language : Metrics::kLanguages) {
    for (const auto* outcome : Metrics::kOutcomes) {
      auto it = m.runsByLanguage.find({language, outcome});
      out += fmt::format("customcode_language_runs_total{{language=\"{}\",outcome=\"{}\"}} {}\n", language, outcome,
                         it == m.runsByLanguage.end() ? 0 : it->second);
    }
  }
  out += "# HELP customcode_run_duration_seconds Duration of function runs.\n"
         "# TYPE customcode_run_duration_seconds histogram\n";
  for (std::size_t i = 0; i < Metrics::kDurationBuckets.size(); ++i)
    out += fmt::format("customcode_run_duration_seconds_bucket{{le=\"{}\"}} {}\n", Metrics::kDurationBuckets[i],
                       m.durationBuckets[i]);
  out += fmt::format("customcode_run_duration_seconds_bucket{{le=\"+Inf\"}} {}\n", m.durationCount);
  out += fmt::format("customcode_run_duration_seconds_sum {}\n", m.durationSum);
  out += fmt::format("customcode_run_duration_seconds_count {}\n", m.durationCount);
  gauge("customcode_workers_alive", "Live workers in the pool.", m.workersAlive);
  gauge("customcode_runs_in_flight", "Runs sent to a worker and not yet answered.", m.runsInFlight);
  counter("customcode_nested_calls_total",
          "Calls from a function to a function of the workspace's other language, sent to its worker.", m.nestedCalls);
  counter("customcode_worker_spawns_total", "Worker processes started.", m.spawns);
  counter("customcode_worker_spawn_failures_total", "Worker processes that failed to start.", m.spawnFailures);
  counter("customcode_cold_starts_total", "Runs that waited for a worker to start.", m.coldStarts);
  out += "# HELP customcode_worker_evictions_total Workers retired by the pool.\n"
         "# TYPE customcode_worker_evictions_total counter\n";
  out += fmt::format("customcode_worker_evictions_total{{reason=\"lru\"}} {}\n", m.evictionsLru);
  out += fmt::format("customcode_worker_evictions_total{{reason=\"idle\"}} {}\n", m.evictionsIdle);
  counter("customcode_worker_kills_total", "Workers killed because they stopped responding.", m.killsStuck);
  counter("customcode_worker_exits_total", "Worker processes that ended.", m.workerExits);
  counter("customcode_workspace_saves_total", "Workspaces saved.", m.saves);
  counter("customcode_npm_installs_total", "npm installs run at save time (unchanged package sets skip npm).",
          m.npmInstalls);
  counter("customcode_npm_install_failures_total", "npm installs that failed or timed out.", m.npmInstallFailures);
  counter("customcode_http_requests_total", "HTTP requests handled.", m.httpRequests);
  out += "# HELP customcode_isolation_level Worker isolation in effect (1 for the mode in use).\n"
         "# TYPE customcode_isolation_level gauge\n";
  for (const auto* level : {"bwrap", "restricted", "none"})
    out += fmt::format("customcode_isolation_level{{level=\"{}\"}} {}\n", level, m.isolation == level ? 1 : 0);
  out += "# HELP customcode_resource_isolation How workers' memory, processes and CPU are bounded: a cgroup per "
         "worker (v1 or v2), or per-process rlimits and nice values only (1 for the mode in use).\n"
         "# TYPE customcode_resource_isolation gauge\n";
  for (const auto* mode : {"cgroup-v1", "cgroup-v2", "rlimits"})
    out += fmt::format("customcode_resource_isolation{{mode=\"{}\"}} {}\n", mode, m.resources == mode ? 1 : 0);
  out += "# HELP customcode_worker_network The network workers get (WORKER_NETWORK in effect): 1 for the mode in force.\n"
         "# TYPE customcode_worker_network gauge\n";
  for (const auto* mode : {"isolated", "host", "none"})
    out += fmt::format("customcode_worker_network{{mode=\"{}\"}} {}\n", mode, m.workerNetwork == mode ? 1 : 0);
  gauge("customcode_http_connections_open", "HTTP connections open.", m.httpConnectionsOpen);
  out += "# HELP customcode_http_connections_refused_total Connections closed unserved: at HTTP_MAX_CONNECTIONS "
         "(limit) or when accept() found no descriptor left (descriptors).\n"
         "# TYPE customcode_http_connections_refused_total counter\n";
  out += fmt::format("customcode_http_connections_refused_total{{reason=\"limit\"}} {}\n", m.httpConnectionsRefusedLimit);
  out += fmt::format("customcode_http_connections_refused_total{{reason=\"descriptors\"}} {}\n",
                     m.httpConnectionsRefusedDescriptors);
  counter("customcode_log_lines_left_out_total", "Log lines left out by rate limits (a message repeating under load).",
          log::linesLeftOut());
  return out;
}

}  // namespace customcode::http
