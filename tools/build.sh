#!/usr/bin/env bash
# Configures and builds rnnserve into build/ (Release): the server, the
# client, the tests and the benchmarks. Extra arguments go to the build, e.g.
# `tools/build.sh --target rnnserve`. Uses ccache when it is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${RNNSERVE_JOBS:-$(nproc)}"
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DRNNSERVE_WERROR=ON \
  "${launcher[@]}" >/dev/null
cmake --build build -j"$jobs" "$@"
