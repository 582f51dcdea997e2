#include "app/process_setup.hpp"
#include "app/server.hpp"
#include "common/log.hpp"
#include "config/config.hpp"
#include "http/listener.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

int main(int, char** argv) {
  // Workers inherit nothing by accident: keep 0-2 taken so no socket or pipe lands there.
  for (int fd = 0; fd < 3; ++fd)
    if (::fcntl(fd, F_GETFD) < 0) ::open("/dev/null", O_RDWR);
  ::signal(SIGPIPE, SIG_IGN);

  std::error_code ec;
  auto self = std::filesystem::canonical("/proc/self/exe", ec);
  auto executableDir = ec ? std::filesystem::path(argv[0]).parent_path() : self.parent_path();

  auto loaded = customcode::config::loadConfig([](const char* name) { return std::getenv(name); }, executableDir);
  if (!loaded.errors.empty()) {
    for (const auto& error : loaded.errors) std::fprintf(stderr, "customcode: configuration error: %s\n", error.c_str());
    return 2;
  }
  customcode::log::setLevel(spdlog::level::from_str(loaded.config.log.level));
  auto descriptors = customcode::app::raiseDescriptorLimit();
  if (loaded.config.http.maxConnections == 0)
    loaded.config.http.maxConnections = customcode::http::defaultMaxConnections(descriptors.soft);

  customcode::app::Server server(std::move(loaded.config));
  auto problems = server.prepare();
  if (!problems.empty()) {
    for (const auto& problem : problems) std::fprintf(stderr, "customcode: cannot start: %s\n", problem.c_str());
    return 1;
  }
  server.run();
  return 0;
}
