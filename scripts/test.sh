#!/usr/bin/env bash
# Installs the dependencies, builds, and runs every test: the GoogleTest unit tests and the
# end-to-end pytest suite (which starts the real binary on free ports), through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
CMAKE_ARGS="${CMAKE_ARGS:-} -DCUSTOMCODE_WERROR=${CUSTOMCODE_WERROR:-OFF}" scripts/build.sh
cd build
ctest --output-on-failure --timeout 900 "$@"
