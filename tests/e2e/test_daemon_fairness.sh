#!/usr/bin/env bash
# Fairness and memory of the per-user daemon with 64 clients: 56 agents of
# one repository flood it with 20,000 upload requests at once (each agent
# writes its whole share without waiting for answers, worse than git-lfs,
# which hands an agent one object at a time), and meanwhile a 10-object
# `git lfs pull` of another repository runs with git-lfs's 8 agents.
#
#   1. the pull completes, byte for byte, while the flood still has requests
#      unanswered: the other repository's backlog does not hold it up;
#   2. every one of the flood's requests is answered complete and its object
#      is in the store;
#   3. the daemon's peak memory (VmHWM) stays under 128 MiB (each agent sends at
#      most 8 transfers at once; reading every request at once, it peaked at
#      212 MiB).
#
#   bash tests/e2e/test_daemon_fairness.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/daemon_lib.sh"
e2e_init "$@"
unset FERRY_DAEMON

FLOOD=20000
FLOOD_AGENTS=56
MEMORY_MIB=128
PROGRESS="$E2E_ROOT/flood.progress"

# ---- the small repository: 10 objects in its store, a clone of pointers -----------------
SMALL="$E2E_ROOT/small"
SMALL_STORE="$E2E_ROOT/small-store"
new_repo small
git_lfs_defaults "$SMALL" "$SMALL_STORE"
SPECS=() FILES=()
for i in $(seq 1 10); do SPECS+=("s$i.bin=$((3000 + i))") FILES+=("s$i.bin"); done
add_lfs_files "$SMALL" "${SPECS[@]}"
must_git 120 "$E2E_ROOT/small-push.log" -C "$SMALL" push origin main
CLONE="$E2E_ROOT/small-clone"
clone_pointers "$E2E_ROOT/small.git" "$CLONE" "$E2E_ROOT/clone.log"
git_lfs_defaults "$CLONE" "$SMALL_STORE"

# ---- the flood, and the pull in its middle ----------------------------------------------
BIG="$E2E_ROOT/big"
new_repo big
git_lfs_defaults "$BIG" "$E2E_ROOT/big-store"
python3 "$E2E_DIR/flood_agents.py" "$FERRY" "$BIG" "$FLOOD" "$FLOOD_AGENTS" "$PROGRESS" 2>"$E2E_ROOT/flood.err" &
flood_pid=$!
track_pid "$flood_pid"
flood_answered() { cat "$PROGRESS" 2>/dev/null || echo 0; }
flood_under_way() { (($(flood_answered) >= 100)) || ! kill -0 "$flood_pid" 2>/dev/null; }
wait_for 300 "the flood's first answers" flood_under_way
kill -0 "$flood_pid" 2>/dev/null || { show "flood" "$E2E_ROOT/flood.err"; fail "the flood ended before the pull could start"; }
at_start=$(flood_answered)
must_git 120 "$E2E_ROOT/pull.log" -C "$CLONE" lfs pull
at_end=$(flood_answered)
assert_checkout "$SMALL" "$CLONE" "${FILES[@]}"
assert_daemon_served "$CLONE" "the pull"
((at_end < FLOOD)) ||
  fail "the flood was answered in full before the 10-object pull ended: the pull waited for the other repository"
pass "a 10-object git lfs pull (8 agents) completed in $ELAPSED_MS ms while the flood went from $at_start to $at_end of $FLOOD answers"

# ---- the flood completes; the daemon's memory ------------------------------------------
DAEMON=$(daemon_pid)
rc=0
wait "$flood_pid" || rc=$?
((rc == 0)) || { show "flood" "$E2E_ROOT/flood.err"; fail "the flood of $FLOOD requests from $FLOOD_AGENTS agents did not all complete"; }
stored=$(find "$E2E_ROOT/big-store" -type f -name '[0-9a-f]*' | wc -l)
((stored == FLOOD)) || fail "the store holds $stored of the flood's $FLOOD objects"
pass "all $FLOOD requests of the $FLOOD_AGENTS flooding agents were answered complete; the store holds every object"
peak_kib=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$DAEMON/status")
[[ -n $peak_kib ]] || fail "cannot read the daemon's (pid $DAEMON) peak memory"
((peak_kib < MEMORY_MIB * 1024)) || fail "the daemon's peak memory was $((peak_kib / 1024)) MiB, over $MEMORY_MIB MiB"
pass "the daemon's peak memory with 64 clients and $FLOOD requests queued: $((peak_kib / 1024)) MiB (under $MEMORY_MIB MiB)"
"$FERRY" daemon stop >/dev/null || fail "ferry daemon stop failed"
