#!/usr/bin/env bash
# Quick start: installs the dependencies, builds, and starts customcode on PORT (default 4000)
# with its functions stored in FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH (default data/functions/).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD_TYPE=${BUILD_TYPE:-Release} scripts/build.sh
exec build/customcode
