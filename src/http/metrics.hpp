#pragma once

#include "common/metrics.hpp"

#include <string>

namespace customcode::http {

// The Prometheus text exposition of `metrics`.
std::string renderMetrics(const Metrics& metrics);

}  // namespace customcode::http
