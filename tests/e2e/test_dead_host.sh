#!/usr/bin/env bash
# A store host that is down must fail a push quickly and say why, once.
#
#   1. nothing listens at the LFS store's port (connections refused): a push
#      of 100 small objects through `ferry agent`, with the default retry,
#      breaker and ferry.maxRetryTime settings, fails within 60 s; every
#      object is reported failed, and the ones after the failed probe fail at
#      once naming the host and the last error. The agent's stderr (which
#      git-lfs 3.3.0 shows only with GIT_TRACE=1, so the push runs with it)
#      holds one notice per circuit change, and lines naming an object only
#      for the few that failed before the circuit opened. Its trace lines
#      show each retry with its delay and the circuit opening.
#   2. ferry-lfs-sim answering 503 to everything, with ferry.maxAttempts 10
#      and ferry.maxRetryTime 20s: the push ends within 20 s plus the pause
#      before the probe (30 s), and an object was given up with the
#      ferry.maxRetryTime message.
#   3. `ferry migrate` of 300 objects from a folder into the refused LFS
#      store: exit 3 within 60 s, every object failed in the report, and
#      stderr holds one line saying the destination cannot be asked, one
#      notice per circuit change and progress lines, nothing per object; a
#      dry run lists every object as to be copied, with two lines per page
#      of 100 on stderr.
#
#   FERRY_LFS_SIM=<ferry-lfs-sim> bash tests/e2e/test_dead_host.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/migrate_lib.sh"
e2e_init "$@"
sim_init

OBJECTS=100

# push_objects <name> <store-url> <limit-s>: a repository <name> with
# $OBJECTS small objects and ferry installed on <store-url>; one `git lfs
# push`, which must fail within <limit-s>. Its output is appended (git-lfs
# and the agent both append) to $E2E_ROOT/<name>-push.log; sets LOG,
# ELAPSED_MS and REPO.
push_objects() {
  local name=$1 url=$2 limit=$3 i specs=() start rc=0
  new_repo "$name"
  REPO="$E2E_ROOT/$name"
  for ((i = 1; i <= OBJECTS; i++)); do specs+=("obj$i.bin=$((1000 + i))"); done
  add_lfs_files "$REPO" "${specs[@]}"
  install_ferry_url "$REPO" "$url"
  LOG="$E2E_ROOT/$name-push.log"
  : >"$LOG"
  start=$(date +%s%N)
  (cd "$REPO" && GIT_TRACE=1 timeout --kill-after=10 "$limit" git lfs push origin main) >>"$LOG" 2>&1 || rc=$?
  ELAPSED_MS=$((($(date +%s%N) - start) / 1000000))
  ((rc != 124 && rc != 137)) || { show "git lfs push" "$LOG"; fail "$name: git lfs push did not end within ${limit}s"; }
  ((rc != 0)) || { show "git lfs push" "$LOG"; fail "$name: git lfs push succeeded against a dead host"; }
  note "$name: git lfs push failed (exit $rc) after $ELAPSED_MS ms"
}

# assert_all_failed: git-lfs reports an error for each object, and the
# agent's journal records every object as failed.
assert_all_failed() {
  local json="$E2E_ROOT/status.json" reported
  reported=$(grep -oE '^error transferring "[0-9a-f]{64}"' "$LOG" | sort -u | wc -l)
  ((reported == OBJECTS)) || { show "git lfs push" "$LOG"; fail "git-lfs reported $reported of $OBJECTS objects as failed"; }
  pass "git-lfs reported each of the $OBJECTS objects as failed"
  (cd "$REPO" && "$FERRY" status --json --limit 1000) >"$json" 2>"$E2E_ROOT/status.err" ||
    { show "ferry status" "$E2E_ROOT/status.err"; fail "ferry status --json failed"; }
  py_check "every one of the $OBJECTS objects is recorded as failed, none done" '
import json, sys
data = json.load(open(sys.argv[1]))
records = data.get("history", []) + data.get("active", [])
failed = {r["oid"] for r in records if r.get("state") == "failed"}
done = {r["oid"] for r in records if r.get("state") == "done"}
if done or len(failed) != int(sys.argv[2]):
    raise SystemExit("%d failed, %d done: %s" % (len(failed), len(done), json.dumps(data)[:2000]))
print("%d failed" % len(failed))' "$json" "$OBJECTS"
}

# count <pattern>: lines of $LOG matching the extended regex.
count() { grep -cE "$1" "$LOG" || true; }

# ---- 1. connections refused ------------------------------------------------------
PORT=$(free_port)
HOST="127.0.0.1:$PORT"
push_objects refused "lfs+http://$HOST/repo.git/info/lfs" 120
((ELAPSED_MS < 60000)) || { show "git lfs push" "$LOG"; fail "the push took $ELAPSED_MS ms (limit 60 s)"; }
pass "the push of $OBJECTS objects against a refusing host failed in $ELAPSED_MS ms (limit 60 s)"
fast=$(count "$HOST is not answering \\(last error: .*the probe at [0-9:]+ failed; run the command again once $HOST is reachable")
((fast >= 1)) || { show "git lfs push" "$LOG"; fail "no object failed at once with the dead-host message"; }
pass "objects after the failed probe failed at once naming the host ($fast line(s))"
assert_all_failed
REFUSED_MS=$ELAPSED_MS
# The agent's stderr reaches the trace as lines naming the agent. Its own
# GIT_TRACE lines ("trace ferry: ..."), one or more per object, are for
# debugging and not counted here.
agent_lines="$E2E_ROOT/refused-agent-stderr.log"
grep -E 'ferry: .*(is failing|is not answering|is answering again)|warning|error' "$LOG" |
  grep -vE '^error transferring|Custom transfer| trace ferry: ' >"$agent_lines" || true
failing=$(grep -c "ferry: $HOST is failing (5 failures in a row" "$agent_lines" || true)
dead=$(grep -c "ferry: $HOST is not answering: the probe failed" "$agent_lines" || true)
((failing == 1 && dead == 1)) ||
  { show "the agent's stderr" "$agent_lines"; fail "expected one 'is failing' and one 'not answering' notice, got $failing and $dead"; }
# Only objects that failed before the circuit opened (at most the 5
# failures that open it) have a line of their own.
per_object=$(grep -cE '[0-9a-f]{64}' "$agent_lines" || true)
((per_object <= 5)) ||
  { show "the agent's stderr" "$agent_lines"; fail "the agent's stderr has $per_object lines naming an object"; }
pass "the agent's stderr: one notice per circuit change, $per_object line(s) naming an object"
# The first look of the runbook "A push is stuck or slow" (docs/operations.md):
# GIT_TRACE=1 shows each retry with its delay and the host's circuit opening.
grep -qE " trace ferry: upload: attempt 1 failed \(.*\); retrying in [0-9]" "$LOG" &&
  grep -q " trace ferry: circuit for $HOST open after 5 consecutive failures" "$LOG" ||
  { show "git lfs push" "$LOG"; fail "the GIT_TRACE=1 output lacks a retry with its delay or the circuit opening"; }
pass "GIT_TRACE=1 shows the retries with their delays and the circuit opening"

# ---- 2. 503 to everything, ferry.maxRetryTime 20s --------------------------------
SCENARIO="$E2E_ROOT/all-503.json"
cat >"$SCENARIO" <<'JSON'
{"name": "all-503", "comment": "every request answered 503 without Retry-After",
 "rules": [{"match": {"endpoint": "any"}, "fault": {"status": 503}}]}
JSON
check_scenario "$SCENARIO"
start_sim "$SCENARIO"
git config --global ferry.maxAttempts 10
git config --global ferry.maxRetryTime 20s
push_objects unavailable "lfs+$(lfs_url unavailable)" 120
stop_sim
((ELAPSED_MS < 60000)) || { show "git lfs push" "$LOG"; fail "the push took $ELAPSED_MS ms (limit 20 s + 30 s probe pause + 10 s)"; }
pass "the push against a host answering 503 failed in $ELAPSED_MS ms"
(($(count "gave up after [0-9]+ attempts over 20s \\(ferry\\.maxRetryTime\\): ") >= 1)) ||
  { show "git lfs push" "$LOG"; fail "no object was given up with the ferry.maxRetryTime message"; }
pass "an object was given up after ferry.maxRetryTime (20s), and the message says so"
assert_all_failed
UNAVAILABLE_MS=$ELAPSED_MS

# ---- 3. ferry migrate into the refused store ---------------------------------------
git config --global --unset ferry.maxAttempts
git config --global --unset ferry.maxRetryTime
MIGRATED=300
make_objects "$E2E_ROOT/source" "$E2E_ROOT/source.manifest" "$MIGRATED" small
run_migrate migrate-refused 120 --from "file://$E2E_ROOT/source" \
  --to "lfs+http://$HOST/repo.git/info/lfs" --report "$E2E_ROOT/refused-report.json"
expect_rc migrate-refused 3
((MIG_MS < 60000)) || { show "ferry migrate stderr" "$MIG_ERR"; fail "the migration took $MIG_MS ms (limit 60 s)"; }
assert_report "$E2E_ROOT/refused-report.json" "failed.objects == $MIGRATED" "copied.objects == 0"
lines() { grep -cE "$1" "$MIG_ERR" || true; }
asked=$(lines "cannot ask lfs\+http://$HOST/.* whether it holds")
failing=$(lines "ferry: $HOST is failing \\(5 failures in a row")
dead=$(lines "ferry: $HOST is not answering: the probe failed")
per_object=$(lines '[0-9a-f]{64}')
other=$(grep -cvE "cannot ask|ferry: $HOST is|^ferry migrate: " "$MIG_ERR" || true)
((asked == 1 && failing == 1 && dead == 1 && per_object == 0 && other == 0)) || {
  show "ferry migrate stderr" "$MIG_ERR"
  fail "stderr: expected one line each for the destination check, 'is failing' and 'not answering' and none per object; got $asked, $failing, $dead, $per_object per object, $other other"
}
pass "ferry migrate of $MIGRATED objects into a refusing host: exit 3 in $MIG_MS ms, one line per event on stderr"

# A dry run lists every object as to be copied, and says once per page of
# 100 that the destination could not be asked (two lines), not per object.
run_migrate dry-run-refused 60 --dry-run --from "file://$E2E_ROOT/source" \
  --to "lfs+http://$HOST/repo.git/info/lfs"
expect_rc dry-run-refused 0
would=$(grep -c '^would copy ' "$MIG_OUT" || true)
asked=$(lines "^ferry migrate: cannot ask lfs\+http://$HOST/")
((would == MIGRATED && asked == 2 * (MIGRATED / 100) && $(wc -l <"$MIG_ERR") == asked)) || {
  show "ferry migrate --dry-run stderr" "$MIG_ERR"
  fail "dry run: $would 'would copy' lines (expected $MIGRATED), $asked lines about the destination (expected $((2 * (MIGRATED / 100)))), $(wc -l <"$MIG_ERR") on stderr"
}
pass "a dry run into the refusing host: all $MIGRATED to copy, two lines per page on stderr"
note "measured: refused push $REFUSED_MS ms, 503 push $UNAVAILABLE_MS ms, refused migrate $MIG_MS ms"
