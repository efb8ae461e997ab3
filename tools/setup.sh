#!/usr/bin/env bash
# Installs everything rnnserve needs to build, test, benchmark and fuzz on Debian 12.
# Idempotent: packages already present are skipped by apt-get.
set -euo pipefail

packages=(
  # Build.
  build-essential cmake ninja-build pkg-config git clang-format
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libdnnl-dev prometheus-cpp-dev libabsl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # The shared session store: Redis's C client, SHA digests, and a real
  # redis-server for the tests.
  libhiredis-dev libssl-dev redis-server
  # A real gRPC proxy in front of several replicas in the cluster tests.
  nginx
  # Sanitizers and fuzzing.
  clang-14 libclang-rt-14-dev
  # Reference numbers, goldens, Python interop test, data.
  python3-torch python3-numpy python3-grpcio python3-grpc-tools
  # ONNX: tools/export_model.py --from-onnx, and torch.onnx.export in its test.
  python3-onnx
  # Installing the Python client package (client/python) in its test.
  python3-protobuf python3-pip python3-setuptools python3-wheel
  dataset-fashion-mnist
  # Real Prometheus for the scrape test; promtool comes with it.
  prometheus
  # Lints every YAML file under deploy/ (ctest deploy_yamllint).
  yamllint
  # Throwaway certificates in the TLS tests.
  openssl
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    missing+=("$p")
done
# The Node.js example client (client/node) and its test need node and npm.
# A machine may have them from elsewhere (NodeSource's nodejs bundles npm
# and conflicts with Debian's npm): Debian's packages only when absent.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi

if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
