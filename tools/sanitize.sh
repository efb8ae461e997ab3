#!/usr/bin/env bash
# Builds rnnserve with a sanitizer (clang-14) and runs the tests it covers.
#
#   tools/sanitize.sh address   AddressSanitizer + UndefinedBehaviorSanitizer
#                               + LeakSanitizer, in build-asan/: every test
#                               but the soak tests.
#   tools/sanitize.sh thread    ThreadSanitizer, in build-tsan/: the tests
#                               labelled batching, sessions and service.
#
# Fails on a failing test and on any sanitizer report from any process,
# children included: reports go to files in <build dir>/sanitizer-reports/,
# which must stay empty. A server started by a Python test reports there too,
# even where the test never looks at the server's exit status.
#
# Debug (asserts on) at -O1 with line tables only: the optimisation the
# sanitizers' authors advise, and line tables are all a report needs; it
# builds and runs faster than -O0 -g. Benchmarks are not built.
# RNNSERVE_JOBS sets the build's and ctest's parallelism (default: nproc).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
jobs="${RNNSERVE_JOBS:-$(nproc)}"
mode="${1:-}"

case "$mode" in
  address)
    dir=build-asan
    targets=(all)
    # Not the soak tests (bench/soak.py): they assert bounds on resident
    # memory and latency, which ASan moves by design (a 256 MiB quarantine
    # of freed memory, shadow memory, 2-3x slower calls).
    ctest_filter=(-LE soak)
    ;;
  thread)
    dir=build-tsan
    # What the batching, sessions and service tests need: everything their
    # test folders define, and the binaries, since the live service tests
    # drive build-tsan/bin/rnnserve (and rnnctl) from Python, so that main.cc
    # and a real SIGTERM shutdown run under TSan too.
    targets=(tests/batching/all tests/sessions/all tests/service/all
             rnnserve rnnctl)
    ctest_filter=(-L 'batching|sessions|service')
    ;;
  *)
    echo "usage: $0 address|thread" >&2
    exit 2
    ;;
esac

reports="$root/$dir/sanitizer-reports"
supp="$root/tools/sanitizers"

# clang would link LLVM's OpenMP runtime (libomp), while Debian's oneDNN
# runs on GCC's (libgomp): the engine's omp_set_num_threads would then set
# the wrong runtime's thread count. Use GCC's, as the release build does.
openmp=()
for lang in C CXX; do
  openmp+=(-DOpenMP_${lang}_FLAGS=-fopenmp=libgomp
           -DOpenMP_${lang}_LIB_NAMES=gomp)
done
openmp+=(-DOpenMP_gomp_LIBRARY=/usr/lib/x86_64-linux-gnu/libgomp.so.1)

start=$(date +%s)
cmake -S . -B "$dir" -G Ninja \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 "${openmp[@]}" \
  -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_FLAGS_DEBUG="-O1 -gline-tables-only" \
  -DCMAKE_CXX_FLAGS_DEBUG="-O1 -gline-tables-only" \
  -DRNNSERVE_SANITIZER="$mode" -DRNNSERVE_BENCH=OFF >/dev/null
cmake --build "$dir" -j"$jobs" --target "${targets[@]}"
built=$(date +%s)
echo "sanitize $mode: built in $((built - start))s"

rm -rf "$reports"
mkdir -p "$reports"
# llvm-symbolizer turns the reports' addresses into functions and lines.
export ASAN_SYMBOLIZER_PATH=/usr/bin/llvm-symbolizer-14
export TSAN_SYMBOLIZER_PATH="$ASAN_SYMBOLIZER_PATH"
export UBSAN_SYMBOLIZER_PATH="$ASAN_SYMBOLIZER_PATH"
if [ "$mode" = address ]; then
  export ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=1:\
check_initialization_order=1:strict_init_order=1:strict_string_checks=1:\
halt_on_error=1:log_path=$reports/asan"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:\
log_path=$reports/ubsan"
  export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
else
  # ignore_noninstrumented_modules: see tools/sanitizers/tsan.supp.
  export TSAN_OPTIONS="suppressions=$supp/tsan.supp:halt_on_error=1:\
second_deadlock_stack=1:ignore_noninstrumented_modules=1:\
print_suppressions=0:log_path=$reports/tsan"
fi

status=0
ctest --test-dir "$dir" --output-on-failure -j"$jobs" \
  "${ctest_filter[@]}" || status=$?
echo "sanitize $mode: tests ran in $(($(date +%s) - built))s"

shopt -s nullglob
found=("$reports"/*)
if ((${#found[@]})); then
  for f in "${found[@]}"; do
    echo "=== $f"
    cat "$f"
  done
  echo "sanitize $mode: ${#found[@]} sanitizer report(s), see above" >&2
  status=1
fi
if ((status)); then
  echo "sanitize $mode: FAILED" >&2
  exit "$status"
fi
echo "sanitize $mode: clean"
