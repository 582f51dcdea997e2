#!/usr/bin/env bash
# Builds customcode in Release and runs the benchmark. Arguments go to bench.py, e.g.
#   bench/run.sh --repeats 3 --duration 5
#   bench/run.sh --only warm16,cold --env SANDBOX=none
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD_DIR=build-release BUILD_TYPE=Release CMAKE_ARGS="-DCUSTOMCODE_BUILD_TESTS=OFF" scripts/build.sh >/dev/null
exec /usr/bin/python3 bench/bench.py --binary build-release/customcode "$@"
