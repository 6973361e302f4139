#!/usr/bin/env bash
# Builds the libFuzzer harnesses in a FERRY_FUZZ build directory and runs
# each one for a while (docs/fuzzing.md); `make fuzz` calls it.
#
#   tests/fuzz/run.sh <build-dir> <seconds> [<parallel runs>] [<area>...]
#
# Areas default to every tests/fuzz/<area>_fuzz.cpp. Each run starts from the
# checked-in seeds (tests/fuzz/corpus/<area>/) and the inputs earlier runs
# kept (<build-dir>/corpus/<area>/, where new ones go), with the dictionary
# tests/fuzz/<area>.dict when there is one. Crashes, broken promises, leaks,
# timeouts (an input taking over 10 s) and out-of-memory inputs (over
# 2048 MB) are saved as <build-dir>/artifacts/<area>-<kind>-<sha1>; logs go to
# <build-dir>/logs/<area>.log. Exits 1 when any run found something.
set -euo pipefail

cd "$(dirname "$0")/../.."
build_dir=${1:?usage: tests/fuzz/run.sh <build-dir> <seconds> [<parallel runs>] [<area>...]}
seconds=${2:?seconds per harness}
parallel=${3:-$(nproc)}
shift $(($# < 3 ? $# : 3))

areas=("$@")
if [ ${#areas[@]} -eq 0 ]; then
  for harness in tests/fuzz/*_fuzz.cpp; do
    name=$(basename "$harness" .cpp)
    areas+=("${name%_fuzz}")
  done
fi

targets=()
for area in "${areas[@]}"; do targets+=("${area}_fuzz"); done
echo "building ${#targets[@]} fuzz harnesses in $build_dir"
start=$SECONDS
cmake --build "$build_dir" -j "$parallel" --target "${targets[@]}"
echo "built in $((SECONDS - start)) s"

mkdir -p "$build_dir/artifacts" "$build_dir/logs"
# Stack traces for UBSan reports too; the harnesses abort on the first one.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
# A 16 MB quarantine for freed memory instead of 256 MB: use-after-free of
# recently freed blocks is still caught, and the heap stays in memory already
# mapped, which halved the CPU time per input (page faults on fresh memory
# dominated on the 2-core CI machine) and cuts each process's RSS to ~100 MB.
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=16}

run_one() {
  local area=$1
  local corpus="$build_dir/corpus/$area"
  local options=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048
                 -artifact_prefix="$build_dir/artifacts/$area-" -print_final_stats=1)
  [ -f "tests/fuzz/$area.dict" ] && options+=(-dict="tests/fuzz/$area.dict")
  mkdir -p "$corpus"
  local rc=0
  # The scratch corpus first: libFuzzer writes new inputs into the first one.
  "$build_dir/${area}_fuzz" "$corpus" "tests/fuzz/corpus/$area" "${options[@]}" \
    > "$build_dir/logs/$area.log" 2>&1 || rc=$?
  echo "$rc" > "$build_dir/logs/$area.rc"
}

echo "fuzzing ${#areas[@]} harnesses for $seconds s each, $parallel at a time"
start=$SECONDS
for area in "${areas[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n || true; done
  run_one "$area" &
done
wait

failed=()
for area in "${areas[@]}"; do
  log="$build_dir/logs/$area.log"
  rc=$(cat "$build_dir/logs/$area.rc")
  # libFuzzer's last status line: "#<runs> DONE cov: ... exec/s: ...".
  last=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
  if [ "$rc" -eq 0 ]; then
    printf '  %-18s ok      %s\n' "$area" "${last:-(no status line)}"
  else
    printf '  %-18s FAILED  (exit %s) see %s\n' "$area" "$rc" "$log"
    failed+=("$area")
  fi
done
echo "fuzzed in $((SECONDS - start)) s"

if [ ${#failed[@]} -gt 0 ]; then
  for area in "${failed[@]}"; do
    echo
    echo "==== $area: $build_dir/logs/$area.log (report)"
    # The report: from libFuzzer's, ASan's or the harness's first error line.
    sed -n '/promise broken\|==ERROR\|ERROR: libFuzzer\|runtime error\|^SUMMARY/,$p' \
      "$build_dir/logs/$area.log" | grep -v '^  *#[0-9]* 0x.* in fuzzer::' | head -n 40
    # The input itself too (base64, first 4 KiB), so a crash seen only in a
    # CI log can be replayed: base64 -d > input.
    for input in "$build_dir/artifacts/$area-"*; do
      [ -f "$input" ] || continue
      echo "  input: $input ($(stat -c %s "$input") bytes), base64:"
      head -c 4096 "$input" | base64 -w 76 | sed 's/^/    /'
    done
  done
  echo
  echo "fuzzing found problems in: ${failed[*]}"
  echo "replay:   $build_dir/<area>_fuzz <input>"
  echo "minimize: $build_dir/<area>_fuzz -minimize_crash=1 -runs=10000 <input>"
  echo "then add it to tests/fuzz/regressions/<area>/ (docs/fuzzing.md)"
  exit 1
fi
