#!/usr/bin/env bash
# Installs what rnnserve needs, builds everything (Release, warnings as
# errors) and runs every test with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
tools/build.sh
ctest --test-dir build --output-on-failure -j"${RNNSERVE_JOBS:-$(nproc)}"
