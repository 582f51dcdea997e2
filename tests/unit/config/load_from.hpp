#pragma once

#include "config/config.hpp"

#include <map>
#include <string>

namespace customcode::config {

// loadConfig over a fixed environment, as if the binary lived in /opt/customcode/bin.
inline LoadResult loadFrom(const std::map<std::string, std::string>& env) {
  return loadConfig(
      [&env](const char* name) -> const char* {
        auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
      },
      "/opt/customcode/bin");
}

}  // namespace customcode::config
