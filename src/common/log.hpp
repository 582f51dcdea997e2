#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <optional>
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

}  // namespace customcode::log
