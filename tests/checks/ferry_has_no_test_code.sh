#!/usr/bin/env bash
# The production binary holds no test double: no code of the unit tests'
# helpers (namespace ferry::testing, the failing-disk layer), of the
# simulated peers (ferry::sim, ferry::bridge_sim, their contract), and no
# link to cpp-httplib, which only the test peers use.
#
#   bash tests/checks/ferry_has_no_test_code.sh <binary>
set -euo pipefail
binary=${1:?usage: ferry_has_no_test_code.sh <binary>}
[[ -x $binary ]] || { echo "FAIL: $binary is not an executable" >&2; exit 1; }

found=0
symbols=$(nm -C "$binary")
# Namespaces of test and simulator code.
if hits=$(grep -E ' (ferry::testing|ferry::sim|ferry::bridge_sim|contract)::' <<<"$symbols"); then
  echo "FAIL: $binary holds test or simulator code:" >&2
  head -n 10 <<<"$hits" >&2
  found=1
fi
# The failing-disk layer defines these libc calls itself; a binary that
# defines them would put every write through it.
if hits=$(grep -E ' T (write|pwrite|pwrite64|fsync|fdatasync)$' <<<"$symbols"); then
  echo "FAIL: $binary defines libc's file calls itself (a fault layer):" >&2
  echo "$hits" >&2
  found=1
fi
if hits=$(ldd "$binary" | grep -i httplib); then
  echo "FAIL: $binary links the test peers' HTTP server library:" >&2
  echo "$hits" >&2
  found=1
fi
((found == 0)) || exit 1
echo "ok: $binary holds no test or simulator code ($(wc -l <<<"$symbols") symbols checked)"
