#!/usr/bin/env bash
# Installs what rnnserve needs, builds it (Release) and starts the server on
# the bundled models in models/. Flags go to the server, e.g.
#   tools/run.sh --grpc-address 0.0.0.0:50051
# See build/bin/rnnserve --help for every flag.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
tools/build.sh --target rnnserve rnnctl
exec build/bin/rnnserve --model-repository models "$@"
