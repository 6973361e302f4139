#!/usr/bin/env bash
# Crash safety and resume: kill -9 the agent in the middle of a large upload,
# check nothing half-written is published, then push again and check the
# upload resumed from the journal's durable point instead of starting over,
# within 10 s of the push's start (the time to recover after a crash).
#
#   bash tests/e2e/test_kill_resume.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"

STORE="$E2E_ROOT/store"
REPO="$E2E_ROOT/repo"
SIZE=$((512 * 1024 * 1024))
KILL_AT=$((64 * 1024 * 1024))

new_repo repo
install_ferry "$REPO" "$STORE"
random_file "$REPO/huge.bin" "$SIZE"
random_file "$REPO/small.bin" 5000
OID=$(oid_of "$REPO/huge.bin")
FINAL=$(store_object "$STORE" "$OID")
PARTIAL=$(store_partial "$STORE" "$OID")
(cd "$REPO" && git add -A && git commit -qm "a 512 MiB object") || fail "commit failed"
note "512 MiB object $OID committed ($(e2e_elapsed))"

# The agent serving this repository: the ferry binary run as 'ferry agent',
# with the repository as its working directory. Prints nothing if none.
FERRY_REAL=$(readlink -f "$FERRY")
agent_pid() {
  local pid found=()
  # git-lfs runs the path install recorded (the resolved binary) with 'agent'.
  for pid in $(pgrep -f -- " agent" || true); do
    [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$FERRY_REAL" ]] || continue
    [[ $(readlink "/proc/$pid/cwd" 2>/dev/null) == "$REPO" ]] || continue
    [[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == "$FERRY_REAL agent"* ]] || continue
    found+=("$pid")
  done
  ((${#found[@]} <= 1)) || fail "more than one ferry agent runs in $REPO: ${found[*]}"
  echo "${found[@]:-}"
}

PUSH_LOG="$E2E_ROOT/push1.log"
(cd "$REPO" && exec git lfs push origin main) >"$PUSH_LOG" 2>&1 &
PUSH_PID=$!
track_pid "$PUSH_PID"

partial_big_enough() {
  kill -0 "$PUSH_PID" 2>/dev/null || { show "git lfs push" "$PUSH_LOG"; fail "the push ended before the partial file reached 64 MiB"; }
  [[ -f $PARTIAL ]] && (($(stat -c %s "$PARTIAL" 2>/dev/null || echo 0) >= KILL_AT))
}
partial_exists() {
  kill -0 "$PUSH_PID" 2>/dev/null || { show "git lfs push" "$PUSH_LOG"; fail "the push ended before the partial file appeared"; }
  [[ -f $PARTIAL ]]
}
# Find the agent as soon as it writes, so the kill itself is quick.
wait_for 120 "$PARTIAL to appear" partial_exists
AGENT=$(agent_pid)
[[ -n $AGENT ]] || fail "no 'ferry agent' process found for $REPO while the partial file grows"
wait_for 120 "$PARTIAL to reach 64 MiB" partial_big_enough
kill -9 "$AGENT"
KILLED_AT=$(stat -c %s "$PARTIAL" 2>/dev/null || echo gone)
[[ ! -e $FINAL ]] || fail "the kill landed too late: the upload had already finished (partial had $KILLED_AT bytes)"
pass "killed agent $AGENT with SIGKILL mid-upload (partial file at $KILLED_AT of $SIZE bytes)"

rc=0
wait "$PUSH_PID" || rc=$?
[[ $rc -ne 0 ]] || { show "git lfs push" "$PUSH_LOG"; fail "git lfs push reported success although its agent was killed"; }
pass "the interrupted git lfs push failed (exit $rc)"

[[ ! -e $FINAL ]] || fail "a killed upload published $FINAL"
[[ -f $PARTIAL ]] || fail "the partial file $PARTIAL vanished after the kill"
pass "nothing was published: only the partial file $(basename "$PARTIAL") exists ($(stat -c %s "$PARTIAL") bytes)"
[[ -z $(agent_pid) ]] || fail "a ferry agent still runs in $REPO after the push ended"

status_json "$REPO" "$E2E_ROOT/status-killed.json"
py_check "the journal kept the interrupted upload as active with a durable resume point" '
import json, sys
doc = json.load(open(sys.argv[1]))
oid, size = sys.argv[2], int(sys.argv[3])
recs = [r for r in doc["active"] if r["oid"] == oid and r["direction"] == "upload"]
if not recs:
    raise SystemExit("no active upload of %s: %s" % (oid, doc))
r = recs[0]
if r["state"] not in ("in_flight", "queued"):
    raise SystemExit("state is %r: %s" % (r["state"], r))
if not 0 < r["committed"] < size:
    raise SystemExit("committed=%r, expected 0 < committed < %d: %s" % (r["committed"], size, r))
print("committed %d bytes, state %s" % (r["committed"], r["state"]))
' "$E2E_ROOT/status-killed.json" "$OID" "$SIZE"
DURABLE=$(python3 -c '
import json, sys
doc = json.load(open(sys.argv[1]))
print([r for r in doc["active"] if r["oid"] == sys.argv[2]][0]["committed"])' "$E2E_ROOT/status-killed.json" "$OID")
PARTIAL_BYTES=$(stat -c %s "$PARTIAL")
(( DURABLE <= PARTIAL_BYTES )) || fail "the journal claims $DURABLE durable bytes but the partial file has $(stat -c %s "$PARTIAL")"
pass "the journal's resume point ($DURABLE) is within the partial file"

# Push again: the new agent must resume the partial upload and publish it.
PUSH2_START_MS=$(date +%s%3N)
(cd "$REPO" && git lfs push origin main) >"$E2E_ROOT/push2.log" 2>&1 ||
  { show "second git lfs push" "$E2E_ROOT/push2.log"; show "ferry log" "$REPO/.git/lfs/ferry/ferry.log"; fail "the second git lfs push failed"; }
pass "the second git lfs push succeeded ($(e2e_elapsed))"

assert_stored "$STORE" "$REPO/huge.bin"
assert_stored "$STORE" "$REPO/small.bin"
pass "the object is in the store and its sha256 equals its oid"
assert_no_partials "$STORE"
pass "no .ferry-partial files remain in the store"

status_json "$REPO" "$E2E_ROOT/status-done.json"
assert_history "$E2E_ROOT/status-done.json" upload "done" "$OID" "$(oid_of "$REPO/small.bin")"
py_check "the finished upload resumed (resumed_from > 0) instead of restarting" '
import json, sys
doc = json.load(open(sys.argv[1]))
oid, size = sys.argv[2], int(sys.argv[3])
r = [r for r in doc["history"] if r["oid"] == oid and r["direction"] == "upload"][0]
if doc["active"]:
    raise SystemExit("active transfers remain: %s" % doc["active"])
if r["resumed_from"] == 0:
    raise SystemExit("resumed_from=0: the upload restarted from byte 0 instead of resuming. record: %s" % r)
# The store keeps every byte the killed agent wrote, so the new attempt
# continues at the end of the partial file, at or beyond the durable
# resume point the journal recorded.
if r["resumed_from"] != int(sys.argv[5]):
    raise SystemExit("resumed_from=%r, but the partial file held %s bytes after the kill: %s"
                     % (r["resumed_from"], sys.argv[5], r))
if r["resumed_from"] < int(sys.argv[4]):
    raise SystemExit("resumed_from=%r is below the durable resume point %s recorded in the journal: %s"
                     % (r["resumed_from"], sys.argv[4], r))
if not 0 < r["resumed_from"] < size:
    raise SystemExit("resumed_from=%r (expected 0 < resumed_from < %d): the upload restarted from byte 0. record: %s"
                     % (r["resumed_from"], size, r))
if r["attempts"] < 2:
    raise SystemExit("attempts=%r, expected >= 2 (one killed, one resumed): %s" % (r["attempts"], r))
print("resumed_from %d, attempts %d" % (r["resumed_from"], r["attempts"]))
' "$E2E_ROOT/status-done.json" "$OID" "$SIZE" "$DURABLE" "$PARTIAL_BYTES"

grep -q "continuing at byte" "$REPO/.git/lfs/ferry/ferry.log" ||
  { show "ferry log" "$REPO/.git/lfs/ferry/ferry.log"; fail "ferry.log does not mention resuming"; }
pass "ferry.log records the resume"

# Time to recover after a crash (docs/operations.md): from the start of the
# push after the kill to the line saying the upload goes on from its
# durable byte (ferry.log's time, UTC milliseconds).
py_check "the push after the kill resumed the upload within 10 s of its start" '
import datetime, re, sys
started_ms = int(sys.argv[2])
took = None
for line in open(sys.argv[1]):
    m = re.match(r"time=(\S+) .*continuing at byte", line)
    if m:
        at = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ")
        at_ms = int(at.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)
        if at_ms >= started_ms:
            took = at_ms - started_ms
            break
if took is None:
    raise SystemExit("no continuing-at-byte line after the push started")
if took > 10000:
    raise SystemExit("it resumed only %d ms after the push started" % took)
print("resumed %d ms after the push started" % took)' "$REPO/.git/lfs/ferry/ferry.log" "$PUSH2_START_MS"
