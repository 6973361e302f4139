#!/usr/bin/env bash
# GIT_TRACE traces ferry's agent the way git-lfs traces itself, and every
# line about one object carries that transfer's correlation id (cid):
#
#   1. git push of 3 objects into a folder store with GIT_TRACE=<file>: the
#      file holds "HH:MM:SS.micro trace ferry: ..." lines, for each oid one
#      naming it with a cid; each oid has its own cid, the same in every
#      trace line, in every ferry.log line of that oid, in `ferry status
#      --json` and in `ferry status`.
#   2. git push with GIT_TRACE unset: no trace line anywhere, the file is
#      left alone (the agent did run: ferry.log has the object).
#   3. ferry.logFormat json and GIT_TRACE=1: ferry.log's new lines are JSON
#      objects with the oid and cid fields; the trace lines reach git's
#      stderr (git-lfs passes its agent's stderr into its own trace).
#   4. a push through an LFS server that wants a password, GIT_TRACE=<file>
#      and ferry.logLevel trace: the password is in no form in the trace
#      file, git's output or ferry.log (secret_scan.py).
#
#   FERRY_LFS_SIM=<ferry-lfs-sim> bash tests/e2e/test_git_trace.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/secrets_lib.sh"
e2e_init "$@"
sim_init

STORE="$E2E_ROOT/store"
REPO="$E2E_ROOT/repo"
LOG="$REPO/.git/lfs/ferry/ferry.log"
TRACE="$E2E_ROOT/trace.log"

new_repo repo
install_ferry "$REPO" "$STORE"

# ---- 1. GIT_TRACE=<file> --------------------------------------------------------------
add_lfs_files "$REPO" a.bin=3000 b.bin=5000 "sub dir/c.bin=70000"
mapfile -t OIDS < <(lfs_oids "$REPO" a.bin b.bin "sub dir/c.bin")
GIT_TRACE="$TRACE" must_git 60 "$E2E_ROOT/push1.log" -C "$REPO" push origin main
status_json "$REPO" "$E2E_ROOT/status1.json"
(cd "$REPO" && "$FERRY" status) >"$E2E_ROOT/status1.txt" 2>&1 ||
  { show "ferry status" "$E2E_ROOT/status1.txt"; fail "ferry status failed"; }
py_check "each pushed oid has one cid in the trace, ferry.log and ferry status" '
import json, re, sys
trace_file, log_file, status_file, text_file = sys.argv[1:5]
oids = sys.argv[5:]
trace = [l.rstrip("\n") for l in open(trace_file)]
ours = [l for l in trace if " trace ferry: " in l]
if not ours:
    raise SystemExit("no trace ferry line in %s" % trace_file)
shape = re.compile(r"^\d\d:\d\d:\d\d\.\d{6} trace ferry: \S")
bad = [l for l in ours if not shape.match(l)]
if bad:
    raise SystemExit("trace lines not shaped like git-lfs ones: %s" % bad[:3])
log = open(log_file).read().splitlines()
status = json.load(open(status_file))
text = open(text_file).read()
cids = {}
for oid in oids:
    found = set(re.findall(r"oid=%s cid=([0-9a-f]{12})$" % oid, "\n".join(ours), re.M))
    if len(found) != 1:
        raise SystemExit("trace lines of %s carry the cids %s: %s" % (oid, found, ours))
    cid = found.pop()
    if not any("request received" in l and ("oid=" + oid) in l for l in ours):
        raise SystemExit("no trace line says the request for %s was received" % oid)
    lines = [l for l in log if ("oid=" + oid) in l]
    if not lines or any(("cid=%s oid=%s " % (cid, oid)) not in l for l in lines):
        raise SystemExit("ferry.log lines of %s do not all carry cid %s: %s" % (oid, cid, lines))
    records = [r for r in status["history"] if r["oid"] == oid]
    if [r.get("cid") for r in records] != [cid]:
        raise SystemExit("ferry status --json has %s for %s, expected [%s]" % (records, oid, cid))
    if not re.search(r"^  upload %s .*, cid %s$" % (oid, cid), text, re.M):
        raise SystemExit("ferry status does not show cid %s for %s:\n%s" % (cid, oid, text))
    cids[oid] = cid
if len(set(cids.values())) != len(oids):
    raise SystemExit("objects share a cid: %s" % cids)
print("%d trace lines, cids %s" % (len(ours), sorted(cids.values())))
' "$TRACE" "$LOG" "$E2E_ROOT/status1.json" "$E2E_ROOT/status1.txt" "${OIDS[@]}"

# ---- 2. GIT_TRACE unset -------------------------------------------------------------------
TRACE_BYTES=$(stat -c %s "$TRACE")
add_lfs_files "$REPO" d.bin=4000
D_OID=$(oid_of "$REPO/d.bin")
(unset GIT_TRACE && must_git 60 "$E2E_ROOT/push2.log" -C "$REPO" push origin main)
grep -q "oid=$D_OID msg=\"upload: done\"" "$LOG" ||
  { show "ferry log" "$LOG"; fail "ferry.log does not record the upload of $D_OID"; }
[[ $(stat -c %s "$TRACE") -eq $TRACE_BYTES ]] || fail "the trace file grew although GIT_TRACE was unset"
! grep -q "trace ferry:" "$E2E_ROOT/push2.log" ||
  { show "git push" "$E2E_ROOT/push2.log"; fail "git's output has trace lines although GIT_TRACE was unset"; }
pass "GIT_TRACE unset: no trace line, the upload logged in ferry.log"

# ---- 3. JSON lines and GIT_TRACE=1 ------------------------------------------------------------
git -C "$REPO" config ferry.logFormat json
LOG_LINES=$(wc -l <"$LOG")
add_lfs_files "$REPO" e.bin=6000
E_OID=$(oid_of "$REPO/e.bin")
GIT_TRACE=1 must_git 60 "$E2E_ROOT/push3.log" -C "$REPO" push origin main
tail -n +"$((LOG_LINES + 1))" "$LOG" >"$E2E_ROOT/json-lines.log"
py_check "ferry.logFormat json: new ferry.log lines are JSON with the cid the stderr trace shows" '
import json, re, sys
lines, push_log, oid = open(sys.argv[1]).read().splitlines(), open(sys.argv[2]).read(), sys.argv[3]
if not lines:
    raise SystemExit("no new ferry.log line")
docs = [json.loads(l) for l in lines]
for d in docs:
    if list(d)[:3] != ["time", "level", "pid"] or "msg" not in d:
        raise SystemExit("unexpected fields: %s" % d)
mine = [d for d in docs if d.get("oid") == oid]
cids = {d.get("cid") for d in mine}
if not mine or len(cids) != 1 or not re.fullmatch(r"[0-9a-f]{12}", str(next(iter(cids)))):
    raise SystemExit("lines of %s: %s" % (oid, mine))
cid = cids.pop()
if ("trace ferry: upload: done oid=%s cid=%s" % (oid, cid)) not in push_log:
    raise SystemExit("the GIT_TRACE=1 output lacks the done line of %s with cid %s" % (oid, cid))
print("%d JSON lines" % len(docs))
' "$E2E_ROOT/json-lines.log" "$E2E_ROOT/push3.log" "$E_OID"

# ---- 4. no secret in the trace ------------------------------------------------------------------
PASSWORD=$(random_secret trace-password)
add_secret "$PASSWORD"
assert_scan_finds_planted
HELPER="$E2E_ROOT/bin/git-credential-secret"
mkdir -p "$(dirname "$HELPER")"
{
  echo '#!/bin/sh'
  echo 'cat >/dev/null'
  echo "[ \"\$1\" = get ] || exit 0"
  printf '%s\n' "printf 'username=e2e-user\\npassword=%s\\n' '$PASSWORD'"
} >"$HELPER"
chmod 700 "$HELPER"
git config --global credential.helper "$HELPER"
SCENARIO="$E2E_ROOT/auth-required.json"
echo '{"rules": [{"fault": {"status": 401, "then_success": true}}]}' >"$SCENARIO"
check_scenario "$SCENARIO"
start_sim "$SCENARIO"
new_repo secret
install_ferry_url "$E2E_ROOT/secret" "lfs+$(lfs_url secret)"
git -C "$E2E_ROOT/secret" config ferry.logLevel trace
add_lfs_files "$E2E_ROOT/secret" s.bin=2000
S_OID=$(oid_of "$E2E_ROOT/secret/s.bin")
SECRET_TRACE="$E2E_ROOT/secret-trace.log"
GIT_TRACE="$SECRET_TRACE" must_git 60 "$E2E_ROOT/push4.log" -C "$E2E_ROOT/secret" push origin main
expect_stats "fault_statuses.401 >= 1"
stop_sim
grep -q "trace ferry: upload: done oid=$S_OID cid=" "$SECRET_TRACE" ||
  { show "trace" "$SECRET_TRACE"; fail "the trace lacks the upload of $S_OID"; }
assert_no_secret_in_files "the trace, git's output and ferry.log of a push that needed a password" \
  "$SECRET_TRACE" "$E2E_ROOT/push4.log" "$E2E_ROOT/secret/.git/lfs/ferry/ferry.log"
