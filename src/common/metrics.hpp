#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

// Counters for /metrics. Updated from the event loop; read when /metrics renders.
namespace customcode {

struct Metrics {
  // Upper bounds of the run duration histogram, in seconds.
  static constexpr std::array<double, 12> kDurationBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                              0.1,   0.25,   0.5,   1,    5,     20};

  // Outcomes of runs: ok, error, timeout, crashed, out_of_memory, result_too_large, spawn_failed.
  static constexpr std::array<const char*, 7> kOutcomes = {"ok",     "error",            "timeout",     "crashed",
                                                           "out_of_memory", "result_too_large", "spawn_failed"};
  static constexpr std::array<const char*, 2> kLanguages = {"nodejs", "python"};

  std::map<std::string, std::uint64_t> runsByOutcome;  // ok, error, timeout, crashed, oom, ...
  std::map<std::pair<std::string, std::string>, std::uint64_t> runsByLanguage;  // (language, outcome)
  std::array<std::uint64_t, kDurationBuckets.size()> durationBuckets{};
  std::uint64_t durationCount = 0;
  double durationSum = 0;
  std::uint64_t spawns = 0;
  std::uint64_t spawnFailures = 0;
  std::uint64_t coldStarts = 0;
  std::uint64_t evictionsLru = 0;
  std::uint64_t evictionsIdle = 0;
  std::uint64_t killsStuck = 0;
  std::uint64_t workerExits = 0;
  std::uint64_t workersAlive = 0;
  std::uint64_t runsInFlight = 0;  // sent to a worker, not yet answered
  std::uint64_t nestedCalls = 0;   // calls from a function to one of the other language
  std::uint64_t saves = 0;
  std::uint64_t npmInstalls = 0;         // npm runs started at save time
  std::uint64_t npmInstallFailures = 0;  // of which failed or timed out
  std::uint64_t httpRequests = 0;
  std::string isolation = "none";  // the sandbox mode in effect: bwrap, restricted or none
  std::string workerNetwork = "host";  // WORKER_NETWORK in effect: isolated, host or none
  std::string resources = "rlimits";   // how workers' resources are bounded: cgroup-v1, cgroup-v2 or rlimits
  std::uint64_t httpConnectionsOpen = 0;
  std::uint64_t httpConnectionsRefusedLimit = 0;        // closed at once: HTTP_MAX_CONNECTIONS reached
  std::uint64_t httpConnectionsRefusedDescriptors = 0;  // accept() failed: no descriptor left

  void recordRun(const std::string& language, const std::string& outcome, double seconds) {
    ++runsByOutcome[outcome];
    ++runsByLanguage[{language, outcome}];
    for (std::size_t i = 0; i < kDurationBuckets.size(); ++i)
      if (seconds <= kDurationBuckets[i]) ++durationBuckets[i];
    ++durationCount;
    durationSum += seconds;
  }
};

}  // namespace customcode
