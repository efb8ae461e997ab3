#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (clang-14, ASan + UBSan, in
# build-fuzz/) and runs each one after the other for a bounded time.
#
#   tools/fuzz.sh [seconds per target, default 60] [target...]
#   tools/fuzz.sh 900 model_loader      # a longer run of one target
#
# Targets: json safetensors model_config model_loader request_validation.
# Each starts from its committed seeds (fuzz/corpus/<target>/) plus what
# earlier runs here found (build-fuzz/corpus/<target>/, where new inputs go,
# so the committed corpus never changes by itself). Fails on any crash,
# FUZZ_CHECK, sanitizer report, leak, timeout (-timeout=10 s per input) or
# memory blow-up (-rss_limit_mb=2048); the input is kept in
# build-fuzz/artifacts/<target>/ and the log in build-fuzz/logs/<target>.log.
# Replay one with build-fuzz/fuzz/<target>_fuzzer <file>.
# Extra libFuzzer flags: FUZZ_FLAGS="-use_value_profile=1" tools/fuzz.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${RNNSERVE_JOBS:-$(nproc)}"
seconds="${1:-60}"
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=(json safetensors model_config model_loader request_validation)
fi
dir=build-fuzz

start=$(date +%s)
# Optimised for speed, with line tables for the reports and asserts kept.
cmake -S . -B "$dir" -G Ninja \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_FLAGS_DEBUG="-O2 -gline-tables-only" \
  -DCMAKE_CXX_FLAGS_DEBUG="-O2 -gline-tables-only" \
  -DRNNSERVE_SANITIZER=address -DRNNSERVE_FUZZ=ON -DRNNSERVE_BENCH=OFF \
  >/dev/null
cmake --build "$dir" -j"$jobs" --target \
  "${targets[@]/%/_fuzzer}"
echo "fuzz: built in $(($(date +%s) - start))s"

export ASAN_SYMBOLIZER_PATH=/usr/bin/llvm-symbolizer-14
export ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=1:\
strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

failed=()
summary=()
for target in "${targets[@]}"; do
  corpus="$dir/corpus/$target"
  artifacts="$dir/artifacts/$target"
  log="$dir/logs/$target.log"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  dict=()
  [ -f "fuzz/$target.dict" ] && dict=(-dict="fuzz/$target.dict")
  echo "fuzz: $target for ${seconds}s"
  status=0
  # shellcheck disable=SC2086  # FUZZ_FLAGS is a list of flags.
  "$dir/fuzz/${target}_fuzzer" -max_total_time="$seconds" \
    -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "${dict[@]}" ${FUZZ_FLAGS:-} \
    "$corpus" "fuzz/corpus/$target" >"$log" 2>&1 || status=$?
  # Coverage from the last status line ("#N DONE cov: .. ft: .. corp: ..")
  # of the instrumented edges ("Loaded 1 modules (N inline 8-bit counters)").
  coverage=$(sed -n 's/^#[0-9]*[[:space:]]*DONE[[:space:]]*\(cov: [0-9]* ft: [0-9]* corp: [^ ]*\).*/\1/p' "$log")
  edges=$(sed -n 's/^INFO: Loaded 1 modules *(\([0-9]*\) inline 8-bit counters).*/\1/p' "$log" | head -1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
  summary+=("$target: ${execs:-?} execs (${rate:-?}/s), ${coverage:-no DONE line} \
of ${edges:-?} edges (corp: inputs/bytes), peak RSS ${rss:-?} MB")
  if ((status)); then
    failed+=("$target")
    echo "fuzz: $target FAILED (exit $status); end of $log:" >&2
    tail -60 "$log" >&2
    ls -l "$artifacts" >&2
  fi
done

printf 'fuzz: %s\n' "${summary[@]}"
echo "fuzz: done after $(($(date +%s) - start))s"
if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
