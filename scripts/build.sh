#!/usr/bin/env bash
# Configures and builds customcode into ${BUILD_DIR:-build} (${BUILD_TYPE:-RelWithDebInfo}).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" ${CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir" -j "${JOBS:-2}"
