#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

// One named spdlog logger per domain. Loggers are created on first use and share one sink, so the
// output is a single stream of lines: time, level, domain, message.
namespace customcode::log {

std::shared_ptr<spdlog::logger> http();
std::shared_ptr<spdlog::logger> store();
std::shared_ptr<spdlog::logger> pool();
std::shared_ptr<spdlog::logger> runtime();
std::shared_ptr<spdlog::logger> app();

// Sets the level of every domain logger, from LOG_LEVEL (trace, debug, info, warn, error).
void setLevel(spdlog::level::level_enum level);

// The level every domain logger is at now.
spdlog::level::level_enum level();

// The LOG_LEVEL name of `level`.
std::string_view levelName(spdlog::level::level_enum level);

// The level named `name` (trace debug info warn error critical off, as LOG_LEVEL), if it is one.
std::optional<spdlog::level::level_enum> parseLevel(std::string_view name);

// Cuts `text` to at most `max` bytes for a log line, marking the cut.
std::string truncateForLog(std::string_view text, std::size_t max = 512);

// Keeps a message that can repeat under load (an accept failure, a timed-out run, a failed
// spawn) from flooding the log: at most `burst` lines per `window`; the rest are counted, and the
// next line let through says how many were left out. One per call site, usually a static:
//
//   static log::RateLimit limit;
//   if (auto note = limit.admit()) log::http()->warn("accept failed: {}{}", ec.message(), *note);
//
// Thread-safe (the store logs from the file-system pool).
class RateLimit {
 public:
  using Clock = std::chrono::steady_clock;
  explicit RateLimit(std::chrono::milliseconds window = std::chrono::seconds(10), std::size_t burst = 5)
      : window_(window), burst_(burst) {}

  // Whether to log now: nullopt when the line is left out (and counted), otherwise the text to
  // append to it: empty, or " (N similar messages left out)".
  std::optional<std::string> admit() { return admit(Clock::now()); }
  std::optional<std::string> admit(Clock::time_point now);

 private:
  std::mutex mutex_;
  std::chrono::milliseconds window_;
  std::size_t burst_;
  Clock::time_point windowStart_{};
  std::size_t inWindow_ = 0;
  std::uint64_t leftOut_ = 0;  // since the last line let through
};

// Lines left out by every RateLimit since start-up (for /metrics).
std::uint64_t linesLeftOut();

}  // namespace customcode::log
