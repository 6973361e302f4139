#!/usr/bin/env bash
# Proton Drive store under every fault the bridge can produce: the real
# git-lfs -> `ferry agent` -> the bridge simulator with a scenario. Each
# phase pushes (or pulls) in a repository of its own and checks what the
# user sees and, from the simulator's log and the record of every bridge
# process, what ferry did:
#
#   stop (the user must act; no bridge process starts after the answer):
#     session_expired (401) -> the agent checks the session once and
#       retries; the next 401 fails the push naming "proton-drive login";
#     captcha (407)         -> it fails naming the verification URL;
#     insufficient_scope    -> it fails with the bridge's "stop" action.
#     captcha after one upload, then the runbook's way out: `ferry status`
#     lists the missing objects as failed naming the URL; after the login
#     (a bridge without the fault) the push sends just those and succeeds.
#   rate_limited (429, retryAfter 2 s) on the first upload -> the push
#     succeeds, no bridge process starts until 2 s after the 429, and one
#     starts at most ferry.backoffMax (+1 s to start a process) after that.
#   transient (retried until the push succeeds): bad_gateway (502) twice,
#     server_error (500), a crash (exit 137), a hang (killed at
#     ferry.proton.timeout, and the hung process is gone), log noise on
#     stdout, a malformed envelope.
#   permanent (fails at once, no retry): quota (507) with the no-space
#     message, invalid (400) with the bridge's message.
#   corrupt downloads: bytes that do not hash to the oid never reach the
#     working tree or .git/lfs/objects; a corrupt copy once is fetched again.
#   an object missing from the Drive (404): the pull fails naming it, at once.
#
#   FERRY_BRIDGE_SIM=<ferry-bridge-sim> bash tests/e2e/test_proton_faults.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/proton_lib.sh"
e2e_init "$@"
proton_init
ferry_quick_retries

# Three objects per phase: with 2 bridge processes, work is still queued
# when the first answer comes.
PHASE_FILES=(a.bin=1000 b.bin=20000 c.bin=300000)

# fault_push <name> <scenario-json> [git config key=value...]: a new
# repository <name> with PHASE_FILES whose bridge runs that scenario, then
# one bounded git push. Sets REPO, OIDS, MARK (before the push), PUSH_RC,
# PUSH_LOG and ELAPSED_MS.
fault_push() {
  local name=$1 scenario setting
  scenario=$(proton_scenario "$name" "$2")
  shift 2
  REPO="$E2E_ROOT/$name"
  new_repo "$name"
  use_proton "$REPO" "$scenario"
  for setting in "$@"; do git -C "$REPO" config "${setting%%=*}" "${setting#*=}"; done
  add_lfs_files "$REPO" "${PHASE_FILES[@]}"
  mapfile -t OIDS < <(lfs_oids "$REPO" a.bin b.bin c.bin)
  MARK=$(bridge_mark)
  PUSH_LOG="$E2E_ROOT/$name-push.log"
  PUSH_RC=0
  timed_git 60 "$PUSH_LOG" -C "$REPO" push origin main || PUSH_RC=$?
}

# pushed_all: the push succeeded and the Drive holds every object intact.
pushed_all() {
  ((PUSH_RC == 0)) || { show "git push" "$PUSH_LOG"; show "ferry log" "$REPO/.git/lfs/ferry/ferry.log"; fail "git push failed ($PUSH_RC)"; }
  local f
  for f in a.bin b.bin c.bin; do assert_in_drive "$REPO/$f"; done
}

# stored_none: the Drive holds none of the phase's objects.
stored_none() {
  local oid
  for oid in "${OIDS[@]}"; do
    [[ ! -e $(drive_object "$oid") ]] || fail "$oid was stored although every upload failed"
  done
}

# fault_count <mark> <fault> <code|-> <command>: prints how many bridge
# processes since <mark> ended with that fault (and that answer code).
fault_count() {
  python3 - "$BRIDGE_LOG" "$1" "$2" "$3" "$4" <<'PY'
import json, sys
path, mark, fault, code, command = sys.argv[1:]
events = [json.loads(l) for l in open(path).read().splitlines()[int(mark.split()[0]):]]
print(sum(1 for e in events if e["event"] == "end" and e["fault"] == fault and e["command"] == command
          and (code == "-" or e["code"] == int(code))))
PY
}

# expect_fault <fault> <code|-> <command> <times>: exactly <times> bridge
# processes since MARK answered <command> with the fault.
expect_fault() {
  local got
  got=$(fault_count "$MARK" "$1" "$2" "$3")
  ((got == $4)) || { show "bridge log" "$BRIDGE_LOG"; fail "$1 on $3 was injected $got times, expected $4"; }
}

# assert_stopped <fault> <code>: no bridge process started after the first
# answer with that fault, although git-lfs still had objects to send. The
# scenario holds each upload 200 ms, so a process ferry had already started
# when the answer came shows up well before it.
assert_stopped() {
  bridge_check "no bridge process started after the first $1 answer ($2)" "$MARK" '
fault, code = sys.argv[3], int(sys.argv[4])
ends = [e for e in events if e["event"] == "end" and e["fault"] == fault and e["code"] == code]
if not ends:
    raise SystemExit("no %s answer (%d) in the log" % (fault, code))
first = min(e["at_ms"] for e in ends)
later = [r for r in runs if r["at_ms"] > first]
if later:
    raise SystemExit("processes started after the answer at %d: %s" % (first, later))
print("%d processes in all, %d got %s" % (len(runs), len(ends), fault))' "$1" "$2"
}

# assert_uploads <n> <why>: exactly <n> upload processes ran since MARK.
assert_uploads() {
  bridge_check "$1 upload processes ran ($2)" "$MARK" '
got = commands().count("upload")
if got != int(sys.argv[3]):
    raise SystemExit("%d uploads: %s" % (got, commands()))' "$1"
}

# ---- stop: the user must act ---------------------------------------------------------
STOP_RULE='"command": "upload", "delay_ms": 200'
fault_push expired "{\"rules\": [{$STOP_RULE, \"fault\": \"session_expired\"}]}"
git_failed "git push under session_expired" "$PUSH_LOG" "$PUSH_RC"
must_mention "git push under session_expired" "$PUSH_LOG" "proton-drive login"
stored_none
# The first expiry after a good start is checked again once (auth-state, and
# a refresh if it reports session_expired); the next one stops.
bridge_check "after the first session_expired the agent checked the session once; after the next, no process started" "$MARK" '
expired = sorted(e["at_ms"] for e in events if e["event"] == "end" and e["fault"] == "session_expired")
if not expired:
    raise SystemExit("no session_expired answer in the log")
checks = [r for r in runs if r["at_ms"] > expired[0] and r["command"] == "auth-state"]
if len(checks) != 1:
    raise SystemExit("expected one auth-state after the first expiry: %s" % runs)
after_check = [t for t, s in ((e["at_ms"], e) for e in events if e["event"] == "end" and e["fault"] == "session_expired")
               if any(x["event"] == "start" and x["pid"] == s["pid"] and x["at_ms"] > checks[0]["at_ms"] for x in events)]
if not after_check:
    raise SystemExit("no upload after the check got session_expired: %s" % runs)
later = [r for r in runs if r["at_ms"] > min(after_check)]
if later:
    raise SystemExit("processes started after the second expiry at %d: %s" % (min(after_check), later))
print("%d processes in all, %d got session_expired" % (len(runs), len(expired)))'
pass "session_expired: the push failed in $ELAPSED_MS ms naming 'proton-drive login'"

fault_push captcha "{\"rules\": [{$STOP_RULE, \"fault\": \"captcha\"}]}"
git_failed "git push under captcha" "$PUSH_LOG" "$PUSH_RC"
must_mention "git push under captcha" "$PUSH_LOG" "https://verify.proton.me/captcha?token=sim-captcha"
stored_none
assert_stopped captcha 407
pass "captcha: the push failed in $ELAPSED_MS ms naming the verification URL"

# The runbook's way out (docs/operations.md): `ferry status` names the failed
# objects and why; once the check is passed and the account logged in again
# (here: a bridge without the fault), pushing again sends only what the Drive
# lacks.
fault_push captcha-recover "{\"rules\": [{$STOP_RULE, \"skip\": 1, \"fault\": \"captcha\"}]}"
git_failed "git push under captcha after one upload" "$PUSH_LOG" "$PUSH_RC"
MISSING=()
for oid in "${OIDS[@]}"; do [[ -e $(drive_object "$oid") ]] || MISSING+=("$oid"); done
((${#MISSING[@]} > 0 && ${#MISSING[@]} < 3)) ||
  fail "captcha-recover: ${#MISSING[@]} of 3 objects are missing from the Drive, expected 1 or 2"
status_json "$REPO" "$E2E_ROOT/captcha-status.json"
py_check "captcha-recover: ferry status lists each missing object as failed, naming the verification URL" '
import json, sys
doc = json.load(open(sys.argv[1]))
for oid in sys.argv[2:]:
    recs = [r for r in doc["history"] if r["oid"] == oid and r["direction"] == "upload"]
    if not recs or recs[0]["state"] != "failed":
        raise SystemExit("%s is not listed as failed: %s" % (oid, recs))
    errors = recs[0].get("errors") or [{}]
    if "verify.proton.me/captcha" not in errors[-1].get("message", ""):
        raise SystemExit("the last error of %s does not name the URL: %s" % (oid, recs[0]))' \
  "$E2E_ROOT/captcha-status.json" "${MISSING[@]}"
use_proton "$REPO"
MARK=$(bridge_mark)
PUSH_RC=0
timed_git 60 "$PUSH_LOG" -C "$REPO" push origin main || PUSH_RC=$?
pushed_all
assert_uploads "${#MISSING[@]}" "only the objects the Drive lacked"
pass "captcha-recover: after the login the push again sent the ${#MISSING[@]} missing object(s) and succeeded"

fault_push scope "{\"rules\": [{$STOP_RULE, \"fault\": \"insufficient_scope\"}]}"
git_failed "git push under insufficient_scope" "$PUSH_LOG" "$PUSH_RC"
must_mention "git push under insufficient_scope" "$PUSH_LOG" "scope is insufficient"
stored_none
assert_stopped insufficient_scope 403
pass "insufficient_scope: the push failed in $ELAPSED_MS ms with the bridge's stop action"

# ---- rate limit ------------------------------------------------------------------------
fault_push limited '{"rules": [{"command": "upload", "times": 1, "fault": "rate_limited", "retry_after": 2}]}'
pushed_all
expect_fault rate_limited 429 upload 1
bridge_check "no bridge process started within retryAfter (2 s) of the 429, one at most ferry.backoffMax (+1 s) after it" "$MARK" '
first = min(e["at_ms"] for e in events if e["event"] == "end" and e["fault"] == "rate_limited")
# 20 ms for the gap between the answer and its log line.
early = [r for r in runs if first < r["at_ms"] < first + 2000 - 20]
if early:
    raise SystemExit("started during the cooldown (429 at %d): %s" % (first, early))
after = [r["at_ms"] - first for r in runs if r["at_ms"] > first]
if not after:
    raise SystemExit("nothing ran after the 429")
# Traffic resumes at most ferry.backoffMax (500 ms) after the cooldown ends;
# 1 s more for starting a process on a loaded machine.
if min(after) > 2000 + 500 + 1000:
    raise SystemExit("the first process after the 429 started only %d ms later" % min(after))
print("the first process after the 429 started %d ms later" % min(after))'
pass "rate_limited: the push waited out the cooldown and succeeded in $ELAPSED_MS ms"

# ---- transient: retried until the push succeeds ----------------------------------------------
fault_push gateway '{"rules": [{"command": "upload", "times": 2, "fault": "bad_gateway"}]}'
pushed_all
expect_fault bad_gateway 502 upload 2
pass "bad_gateway twice: retried, the push succeeded ($ELAPSED_MS ms)"

fault_push server '{"rules": [{"command": "batch-exists", "times": 1, "fault": "server_error"}]}'
pushed_all
expect_fault server_error 500 batch-exists 1
pass "server_error on batch-exists: retried, the push succeeded ($ELAPSED_MS ms)"

fault_push crash '{"rules": [{"command": "upload", "times": 1, "fault": "crash"}]}'
pushed_all
bridge_check "the crashed bridge process exited 137" "$MARK" '
crashed = [e for e in events if e["event"] == "end" and e["fault"] == "crash"]
if len(crashed) != 1 or crashed[0]["exit"] != 137:
    raise SystemExit("crash ends: %s" % crashed)'
pass "crash (exit 137) once: retried, the push succeeded ($ELAPSED_MS ms)"

fault_push hang '{"rules": [{"command": "upload", "times": 1, "fault": "hang"}]}' \
  ferry.proton.timeout=2s
pushed_all
HUNG=$(python3 - "$BRIDGE_LOG" "$MARK" <<'PY'
import json, sys
events = [json.loads(l) for l in open(sys.argv[1]).read().splitlines()[int(sys.argv[2].split()[0]):]]
ended = {e["pid"] for e in events if e["event"] == "end"}
print(" ".join(str(e["pid"]) for e in events if e["event"] == "start" and e["pid"] not in ended))
PY
)
[[ $HUNG =~ ^[0-9]+$ ]] || fail "expected one bridge process that never answered, got '$HUNG'"
((ELAPSED_MS >= 2000)) || fail "the push took $ELAPSED_MS ms, less than the 2 s time limit the hang needs"
process_gone "$HUNG" || fail "the hung bridge process $HUNG still runs"
pass "hang once: killed at ferry.proton.timeout (2 s), retried, the push succeeded ($ELAPSED_MS ms); process $HUNG is gone"

fault_push noise '{"rules": [{"fault": "noise"}]}'
pushed_all
((${#OIDS[@]} <= $(fault_count "$MARK" noise - upload))) || fail "noise was not injected on every upload"
pass "log noise before every envelope: the push succeeded ($ELAPSED_MS ms)"

fault_push envelope '{"rules": [{"command": "upload", "times": 1, "fault": "bad_envelope"}]}'
pushed_all
expect_fault bad_envelope - upload 1
assert_uploads 4 "3 objects, one of them twice"
pass "a malformed envelope once: treated as transient, retried, the push succeeded ($ELAPSED_MS ms)"

# ---- permanent: fails at once ---------------------------------------------------------------
fault_push quota '{"rules": [{"command": "upload", "fault": "quota"}]}'
git_failed "git push under quota" "$PUSH_LOG" "$PUSH_RC"
must_mention "git push under quota" "$PUSH_LOG" "Proton Drive is full"
stored_none
assert_uploads 3 "one per object: a permanent failure is not retried"
pass "quota (507): the push failed in $ELAPSED_MS ms with the no-space message, nothing retried"

fault_push invalid '{"rules": [{"command": "upload", "fault": "invalid", "message": "A file with that name already exists"}]}'
git_failed "git push under invalid" "$PUSH_LOG" "$PUSH_RC"
must_mention "git push under invalid" "$PUSH_LOG" "A file with that name already exists"
stored_none
assert_uploads 3 "one per object: a permanent failure is not retried"
pass "invalid (400): the push failed in $ELAPSED_MS ms quoting the bridge's message, nothing retried"

# ---- corrupt downloads ---------------------------------------------------------------------------
# The objects of the rate-limit phase are in the Drive; clone that repository.
SOURCE="$E2E_ROOT/limited"
CORRUPT_OID=$(oid_of "$SOURCE/b.bin")

# assert_cache_verified <clone>: every object in .git/lfs/objects hashes to
# its name.
assert_cache_verified() {
  local f
  while IFS= read -r -d '' f; do
    [[ $(oid_of "$f") == "$(basename "$f")" ]] || fail "$f in the LFS cache does not hash to its name"
  done < <(find "$1/.git/lfs/objects" -type f -print0 2>/dev/null)
}

BAD="$E2E_ROOT/corrupt-always"
clone_pointers "$E2E_ROOT/limited.git" "$BAD" "$E2E_ROOT/corrupt-always-clone.log"
use_proton "$BAD" "$(proton_scenario corrupt-always "{\"rules\": [{\"command\": \"download\", \"oid\": \"$CORRUPT_OID\", \"fault\": \"corrupt\"}]}")"
# Three attempts: fewer than the five consecutive failures that open the
# circuit for the whole store (docs/network.md), which would hold the pull 30 s.
git -C "$BAD" config ferry.maxAttempts 3
MARK=$(bridge_mark)
rc=0
timed_git 60 "$E2E_ROOT/corrupt-always-pull.log" -C "$BAD" lfs pull || rc=$?
git_failed "git lfs pull with an always corrupt object" "$E2E_ROOT/corrupt-always-pull.log" "$rc"
must_mention "git lfs pull with an always corrupt object" "$E2E_ROOT/corrupt-always-pull.log" "$CORRUPT_OID"
must_mention "git lfs pull with an always corrupt object" "$E2E_ROOT/corrupt-always-pull.log" "hash to"
is_pointer "$BAD/b.bin" || fail "b.bin was checked out although every copy was corrupt"
[[ ! -e $BAD/.git/lfs/objects/${CORRUPT_OID:0:2}/${CORRUPT_OID:2:2}/$CORRUPT_OID ]] ||
  fail "the corrupt object reached .git/lfs/objects"
assert_checkout "$SOURCE" "$BAD" a.bin c.bin
assert_cache_verified "$BAD"
expect_fault corrupt - download 3
pass "a corrupt object on every download: fetched 3 times (ferry.maxAttempts), then the pull failed naming it; b.bin stays a pointer, the other files are intact"

ONCE="$E2E_ROOT/corrupt-once"
clone_pointers "$E2E_ROOT/limited.git" "$ONCE" "$E2E_ROOT/corrupt-once-clone.log"
use_proton "$ONCE" "$(proton_scenario corrupt-once "{\"rules\": [{\"command\": \"download\", \"oid\": \"$CORRUPT_OID\", \"times\": 1, \"fault\": \"corrupt\"}]}")"
MARK=$(bridge_mark)
must_git 60 "$E2E_ROOT/corrupt-once-pull.log" -C "$ONCE" lfs pull
assert_checkout "$SOURCE" "$ONCE" a.bin b.bin c.bin
assert_cache_verified "$ONCE"
expect_fault corrupt - download 1
pass "a corrupt copy once: fetched again, the pull succeeded with every file intact"

# ---- an object missing from the Drive --------------------------------------------------------------
SOURCE="$E2E_ROOT/gateway"
MISSING_OID=$(oid_of "$SOURCE/c.bin")
rm "$(drive_object "$MISSING_OID")"
GONE="$E2E_ROOT/missing"
clone_pointers "$E2E_ROOT/gateway.git" "$GONE" "$E2E_ROOT/missing-clone.log"
use_proton "$GONE"
MARK=$(bridge_mark)
rc=0
timed_git 60 "$E2E_ROOT/missing-pull.log" -C "$GONE" lfs pull || rc=$?
git_failed "git lfs pull of an object missing from the Drive" "$E2E_ROOT/missing-pull.log" "$rc"
must_mention "git lfs pull of an object missing from the Drive" "$E2E_ROOT/missing-pull.log" "$MISSING_OID"
is_pointer "$GONE/c.bin" || fail "c.bin was checked out although its object is missing"
assert_checkout "$SOURCE" "$GONE" a.bin b.bin
bridge_check "the missing object was asked for once (404 is not retried)" "$MARK" '
oid = sys.argv[3]
asked = [e for e in events if e["event"] == "end" and e["command"] == "download" and e["code"] == 404]
if len(asked) != 1:
    raise SystemExit("%d downloads answered 404: %s" % (len(asked), asked))' "$MISSING_OID"
pass "an object missing from the Drive: the pull failed naming it, without retries; the other files are intact"

assert_bridge_valid "0 0"
no_live_bridges || fail "bridge processes still run: $(live_bridges)"
pass "no bridge process is left running"
