#include "common/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>
#include <utility>

namespace customcode::log {
namespace {

spdlog::level::level_enum gLevel = spdlog::level::info;

std::shared_ptr<spdlog::logger> named(const char* name) {
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  if (auto existing = spdlog::get(name)) return existing;
  static auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>(name, sink);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %v");
  logger->set_level(gLevel);
  spdlog::register_logger(logger);
  return logger;
}

}  // namespace

std::shared_ptr<spdlog::logger> http() {
  static auto logger = named("http");
  return logger;
}
std::shared_ptr<spdlog::logger> store() {
  static auto logger = named("store");
  return logger;
}
std::shared_ptr<spdlog::logger> pool() {
  static auto logger = named("pool");
  return logger;
}
std::shared_ptr<spdlog::logger> runtime() {
  static auto logger = named("runtime");
  return logger;
}
std::shared_ptr<spdlog::logger> app() {
  static auto logger = named("app");
  return logger;
}

void setLevel(spdlog::level::level_enum level) {
  gLevel = level;
  for (auto* get : {&http, &store, &pool, &runtime, &app}) (*get)()->set_level(level);
}

namespace {

// The names LOG_LEVEL takes (spdlog's own say "warning" and map unknown names to `off`).
constexpr std::pair<std::string_view, spdlog::level::level_enum> kLevelNames[] = {
    {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug}, {"info", spdlog::level::info},
    {"warn", spdlog::level::warn},   {"error", spdlog::level::err},   {"critical", spdlog::level::critical},
    {"off", spdlog::level::off}};

}  // namespace

spdlog::level::level_enum level() { return gLevel; }

std::string_view levelName(spdlog::level::level_enum level) {
  for (const auto& [name, value] : kLevelNames)
    if (value == level) return name;
  return "off";
}

std::optional<spdlog::level::level_enum> parseLevel(std::string_view name) {
  for (const auto& [known, value] : kLevelNames)
    if (known == name) return value;
  return std::nullopt;
}

std::string truncateForLog(std::string_view text, std::size_t max) {
  if (text.size() <= max) return std::string(text);
  return std::string(text.substr(0, max)) + "…[" + std::to_string(text.size() - max) + " more bytes]";
}

}  // namespace customcode::log
