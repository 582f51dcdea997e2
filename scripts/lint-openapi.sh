#!/usr/bin/env bash
# Lints docs/openapi.json with @redocly/cli (redocly.yaml), as installed by scripts/setup.sh into
# .tools/redocly. Run by CTest (test openapi_lint).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.tools/redocly/node_modules/.bin/redocly
if [ ! -x "$bin" ]; then
  echo "lint-openapi: $bin is missing: run scripts/setup.sh" >&2
  exit 1
fi
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
exec "$bin" lint --config redocly.yaml --format=stylish docs/openapi.json
