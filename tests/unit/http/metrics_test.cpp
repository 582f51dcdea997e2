#include "http/metrics.hpp"

#include <gtest/gtest.h>

#include <string>

namespace customcode::http {
namespace {

bool hasLine(const std::string& text, const std::string& line) { return text.find("\n" + line + "\n") != std::string::npos; }

TEST(RenderMetrics, CountsRunsByLanguageAndOutcome) {
  Metrics metrics;
  metrics.recordRun("nodejs", "ok", 0.002);
  metrics.recordRun("nodejs", "ok", 0.003);
  metrics.recordRun("python", "timeout", 1.5);

  auto text = renderMetrics(metrics);

  EXPECT_TRUE(hasLine(text, R"(customcode_language_runs_total{language="nodejs",outcome="ok"} 2)")) << text;
  EXPECT_TRUE(hasLine(text, R"(customcode_language_runs_total{language="python",outcome="timeout"} 1)"));
  EXPECT_TRUE(hasLine(text, R"(customcode_language_runs_total{language="python",outcome="ok"} 0)"));
  EXPECT_TRUE(hasLine(text, R"(customcode_runs_total{outcome="ok"} 2)"));
  EXPECT_TRUE(hasLine(text, "customcode_run_duration_seconds_count 3"));
  EXPECT_TRUE(hasLine(text, "# TYPE customcode_language_runs_total counter"));
}

TEST(RenderMetrics, ShowsTheIsolationLevelInUse) {
  Metrics metrics;
  metrics.isolation = "bwrap";
  auto text = renderMetrics(metrics);

  EXPECT_TRUE(hasLine(text, R"(customcode_isolation_level{level="bwrap"} 1)")) << text;
  EXPECT_TRUE(hasLine(text, R"(customcode_isolation_level{level="none"} 0)")) << text;
  EXPECT_TRUE(hasLine(text, "# TYPE customcode_isolation_level gauge"));
}

}  // namespace
}  // namespace customcode::http
