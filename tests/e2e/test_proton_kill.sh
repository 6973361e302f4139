#!/usr/bin/env bash
# No orphan bridge process: `kill -9` of the ferry agent while a bridge
# process runs (the simulator hangs on the first upload, then on the first
# download) must take that process with it, within 5 s. A rerun of the same
# push or pull then finishes, byte for byte, and the staging files the killed
# agent left behind are removed.
#
#   FERRY_BRIDGE_SIM=<ferry-bridge-sim> bash tests/e2e/test_proton_kill.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/proton_lib.sh"
e2e_init "$@"
proton_init

FERRY_REAL=$(readlink -f "$FERRY")
FILES=(a.bin=1024 b.bin=$((2 << 20)) c.bin=30000)
NAMES=(a.bin b.bin c.bin)

# hung_bridge <mark> <command>: prints "<pid> <parent pid>" of a bridge
# process since <mark> that started <command> and has not answered; nothing
# if there is none yet.
hung_bridge() {
  python3 - "$BRIDGE_LOG" "$BRIDGE_RUNS" "$1" "$2" <<'PY'
import json, sys
log, runs, mark, command = sys.argv[1:]
log_mark, runs_mark = (int(x) for x in mark.split())
events = [json.loads(l) for l in open(log).read().splitlines()[log_mark:]]
parents = {int(r.split()[1]): int(r.split()[2]) for r in open(runs).read().splitlines()[runs_mark:]}
ended = {e["pid"] for e in events if e["event"] == "end"}
for e in events:
    if e["event"] == "start" and e["command"] == command and e["pid"] not in ended:
        print(e["pid"], parents[e["pid"]])
        break
PY
}

# kill_agent_during <what> <command> <job-pid> <job-log>: waits (bounded) for
# a bridge process of <command> that hangs, checks that its parent is the
# ferry agent, kills the agent with SIGKILL, then checks that no simulator
# process of this test is left after at most 5 s and that the git job
# failed. Sets KILLED (the agent's pid).
kill_agent_during() {
  local what=$1 command=$2 job=$3 log=$4 found="" hung start rc=0
  local deadline=$((SECONDS + 60))
  until [[ -n $found ]]; do
    kill -0 "$job" 2>/dev/null || { show "$what" "$log"; fail "$what ended before a bridge $command hung"; }
    ((SECONDS < deadline)) || fail "timed out after 60s waiting for a hung bridge $command"
    found=$(hung_bridge "$MARK" "$command")
    [[ -n $found ]] || sleep 0.01 # polling interval; the loop re-checks the condition
  done
  read -r hung KILLED <<<"$found"
  [[ $(readlink "/proc/$KILLED/exe" 2>/dev/null) == "$FERRY_REAL" ]] ||
    fail "the parent $KILLED of the hung bridge $hung is not $FERRY_REAL"
  [[ $(tr '\0' ' ' <"/proc/$KILLED/cmdline") == *" agent"* ]] ||
    fail "the parent $KILLED of the hung bridge $hung is not a ferry agent: $(tr '\0' ' ' <"/proc/$KILLED/cmdline")"
  process_gone "$hung" && fail "the hung bridge $hung ended before the kill"
  start=$(date +%s%N)
  kill -9 "$KILLED"
  wait_for 5 "the bridge processes to end after the agent was killed (still running: $(live_bridges | tr '\n' ' '))" \
    no_live_bridges
  pass "$what: killed agent $KILLED during a hung bridge $command ($hung); no simulator process left after $((($(date +%s%N) - start) / 1000000)) ms"
  wait "$job" || rc=$?
  untrack_pid "$job"
  git_failed "$what whose agent was killed" "$log" "$rc"
}

# ---- 1. during an upload -------------------------------------------------------------------
REPO="$E2E_ROOT/repo"
new_repo repo
use_proton "$REPO" "$(proton_scenario hang-upload '{"rules": [{"command": "upload", "times": 1, "fault": "hang"}]}')"
add_lfs_files "$REPO" "${FILES[@]}"
MARK=$(bridge_mark)
PUSH_LOG="$E2E_ROOT/push-killed.log"
(cd "$REPO" && exec git push origin main) >"$PUSH_LOG" 2>&1 &
PUSH_PID=$!
track_pid "$PUSH_PID"
kill_agent_during "git push" upload "$PUSH_PID" "$PUSH_LOG"

SCRATCH="$REPO/.git/lfs/tmp/ferry-proton"
LEFT=$(find "$SCRATCH" -name "ferry-proton-$KILLED-*" -type f)
[[ -n $LEFT ]] || fail "the killed agent left no staging file in $SCRATCH (the check below would prove nothing)"
note "the killed agent left $(basename "$LEFT")"

must_git 60 "$E2E_ROOT/push-again.log" -C "$REPO" push origin main
for name in "${NAMES[@]}"; do assert_in_drive "$REPO/$name"; done
[[ -z $(find "$SCRATCH" -type f) ]] || fail "staging files remain in $SCRATCH: $(find "$SCRATCH" -type f)"
mapfile -t OIDS < <(lfs_oids "$REPO" "${NAMES[@]}")
status_json "$REPO" "$E2E_ROOT/push-status.json"
assert_history "$E2E_ROOT/push-status.json" upload "done" "${OIDS[@]}"
pass "the rerun of git push stored every object intact and removed the killed agent's staging file"

# ---- 2. during a download --------------------------------------------------------------------
CLONE="$E2E_ROOT/clone"
clone_pointers "$E2E_ROOT/repo.git" "$CLONE" "$E2E_ROOT/clone.log"
use_proton "$CLONE" "$(proton_scenario hang-download '{"rules": [{"command": "download", "times": 1, "fault": "hang"}]}')"
MARK=$(bridge_mark)
PULL_LOG="$E2E_ROOT/pull-killed.log"
(cd "$CLONE" && exec git lfs pull) >"$PULL_LOG" 2>&1 &
PULL_PID=$!
track_pid "$PULL_PID"
kill_agent_during "git lfs pull" download "$PULL_PID" "$PULL_LOG"

must_git 60 "$E2E_ROOT/pull-again.log" -C "$CLONE" lfs pull
assert_checkout "$REPO" "$CLONE" "${NAMES[@]}"
[[ -z $(find "$CLONE/.git/lfs/tmp/ferry-proton" -type f) ]] || fail "scratch files remain in $CLONE/.git/lfs/tmp/ferry-proton"
pass "the rerun of git lfs pull checked out every file byte for byte"

assert_bridge_valid "0 0"
