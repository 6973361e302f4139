#!/usr/bin/env bash
# S3 and Proton stores through the per-user daemon (ferry.daemon=true,
# the default), at git-lfs's own default concurrency (8 agents per
# repository), every agent a thin client of one daemon of this test's own
# (FERRY_DAEMON_DIR). The daemon is started first (`ferry daemon start`)
# from an environment without S3 keys.
#
#   1. S3 (the radosgw of the ctest fixture): push of 40 objects, two of them
#      multipart uploads (the multipart setting, FERRY_S3_*, travels with the
#      agents' session too), fresh clone, git lfs pull: boto3 finds exactly
#      the 40 objects in the bucket, each with sha256 == oid; every file
#      byte for byte; the daemon served several agents of each, and no agent
#      ran the engine in its own process.
#   2. The S3 keys were only in the environment of each git command
#      (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), never in the daemon's:
#      they travelled with the agents' sessions. A push without them gets
#      none from the daemon or the earlier sessions and stores nothing. The
#      secret is in no file the test's commands wrote (daemon.log, the
#      daemon's ferry.log, the repositories' ferry.log and journals, git's
#      output), at ferry.logLevel trace.
#   3. Proton (the bridge simulator): the same round trip; every object in
#      the simulated Drive with sha256 == oid, every file byte for byte; every
#      bridge process of the push and the pull was a child of the daemon.
#   Then `ferry daemon stop` ends the daemon.
#
#   ctest -R e2e.test_daemon_stores   (the radosgw fixture sets FERRY_S3_* and FERRY_RADOSGW_LOG)
set -euo pipefail
# Before lib.sh: its sandbox unsets every FERRY_* variable.
source "$(dirname "${BASH_SOURCE[0]}")/../s3/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/daemon_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/proton_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/secrets_lib.sh"
s3_e2e_init ferry-e2e-daemon "$@"
proton_init

# The keys are given to each command that needs them, nothing else: git
# (with_keys) and boto3 (boto).
S3_KEY_ID=$AWS_ACCESS_KEY_ID
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
export -n FERRY_S3_ACCESS_KEY FERRY_S3_SECRET_KEY
with_keys() { AWS_ACCESS_KEY_ID=$S3_KEY_ID AWS_SECRET_ACCESS_KEY=$FERRY_S3_SECRET_KEY "$@"; }
boto() { FERRY_S3_ACCESS_KEY=$FERRY_S3_ACCESS_KEY FERRY_S3_SECRET_KEY=$FERRY_S3_SECRET_KEY "$@"; }

# One trap for the two libraries': the bucket goes, the bridges still
# running are ended, then lib.sh's cleanup (which stops the daemon).
daemon_stores_exit() {
  local status=$? pid
  boto s3_remove_bucket "$S3_BUCKET" >/dev/null 2>&1 ||
    echo "$E2E_NAME: warning: could not remove bucket $S3_BUCKET" >&2
  for pid in $(live_bridges); do kill -9 "$pid" 2>/dev/null || true; done
  e2e_cleanup "$status"
}
trap daemon_stores_exit EXIT

# lib.sh turns the daemon off for the other tests; here it is left at its
# default.
unset FERRY_DAEMON
git config --global ferry.logLevel trace
add_secret "$FERRY_S3_SECRET_KEY"

COUNT=38 # and two multipart objects
MIB=$((1 << 20))
PREFIX=daemon/lfs

"$FERRY" daemon start >"$E2E_ROOT/daemon-start.out" 2>&1 ||
  { show "ferry daemon start" "$E2E_ROOT/daemon-start.out"; fail "ferry daemon start failed"; }
DAEMON=$(daemon_pid)
track_pid "$DAEMON"
tr '\0' '\n' <"/proc/$DAEMON/environ" >"$E2E_ROOT/daemon-environ.txt"
! grep -q -e '^AWS_ACCESS_KEY_ID=' -e '^AWS_SECRET_ACCESS_KEY=' -e "$FERRY_S3_SECRET_KEY" "$E2E_ROOT/daemon-environ.txt" ||
  fail "the daemon (pid $DAEMON) was started with S3 keys in its environment"
note "daemon pid $DAEMON, started without S3 keys in its environment"
# Set once the daemon runs: they reach the S3 store through the sessions.
export FERRY_S3_MULTIPART_THRESHOLD=5MiB FERRY_S3_PART_SIZE=5MiB

# same_daemon <what>: the daemon started at the beginning served <what>.
same_daemon() {
  [[ $(daemon_pid) == "$DAEMON" ]] || fail "another daemon ($(daemon_pid)) served $1"
}

# add_round_trip_files <repo-dir>: add_mixed_lfs_files of COUNT files, and two
# objects above the multipart threshold (2 and 3 parts). Sets FILES.
add_round_trip_files() {
  add_mixed_lfs_files "$1" "$COUNT"
  add_lfs_files "$1" big1.bin=$((5 * MIB + 1)) big2.bin=$((11 * MIB - 3))
  FILES+=(big1.bin big2.bin)
}

# ---- 1. S3 round trip, keys only in each git command's environment ------------------
S3_REPO="$E2E_ROOT/s3-repo"
S3_CLONE="$E2E_ROOT/s3-clone"
new_repo s3-repo
git_lfs_defaults_url "$S3_REPO" "$(s3_store_url "$PREFIX")"
add_round_trip_files "$S3_REPO"
for f in "${FILES[@]}"; do echo "$(oid_of "$S3_REPO/$f") $(stat -c %s "$S3_REPO/$f")"; done >"$E2E_ROOT/s3-manifest"
MARK=$(s3_log_lines)
with_keys must_git 300 "$E2E_ROOT/s3-push.log" -C "$S3_REPO" push origin main
PUSH_MS=$ELAPSED_MS
out=$(boto s3_bucket_holds "$S3_BUCKET" "$PREFIX" "$E2E_ROOT/s3-manifest" 2>&1) ||
  fail "the bucket after the push: $out"
pass "git push through the daemon stored all ${#FILES[@]} objects; boto3 reads each with sha256 == oid, nothing else ($PUSH_MS ms)"
s3_requests_since "$MARK" "$E2E_ROOT/s3-push-requests.tsv"
py_check "the two objects above 5 MiB went up as multipart uploads of 2 and 3 parts" '
import sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
prefix = sys.argv[2]
for oid, parts in zip(sys.argv[3::2], map(int, sys.argv[4::2])):
    key = "%s/%s/%s/%s" % (prefix, oid[:2], oid[2:4], oid)
    starts = [r for r in rows if r[0] == "POST" and r[1] == key and r[2] == "uploads"]
    numbers = sorted(r[2].split("&")[0] for r in rows if r[0] == "PUT" and r[1] == key and r[2] and r[3] == "200")
    if len(starts) != 1 or numbers != ["partNumber=%d" % n for n in range(1, parts + 1)]:
        raise SystemExit("%s: %d multipart starts, parts %s, expected 1 and %d parts" % (key, len(starts), numbers, parts))
' "$E2E_ROOT/s3-push-requests.tsv" "$PREFIX" \
  "$(oid_of "$S3_REPO/big1.bin")" 2 "$(oid_of "$S3_REPO/big2.bin")" 3
assert_daemon_served "$S3_REPO" "the S3 push"
same_daemon "the S3 push"
pass "the daemon served $SERVED agents of the S3 push; no agent ran an engine itself"

clone_pointers "$E2E_ROOT/s3-repo.git" "$S3_CLONE" "$E2E_ROOT/s3-clone.log"
git_lfs_defaults_url "$S3_CLONE" "$(s3_store_url "$PREFIX")"
with_keys must_git 300 "$E2E_ROOT/s3-pull.log" -C "$S3_CLONE" lfs pull
assert_checkout "$S3_REPO" "$S3_CLONE" "${FILES[@]}"
assert_daemon_served "$S3_CLONE" "the S3 pull"
same_daemon "the S3 pull"
pass "git lfs pull in a fresh clone through the daemon ($SERVED agents): all ${#FILES[@]} files byte for byte ($ELAPSED_MS ms)"

# ---- 2. the keys travelled with the sessions, and only there -----------------------------
# A push whose environment has no keys: the daemon has none of its own, and
# the earlier sessions' keys stay theirs.
add_lfs_files "$S3_REPO" keyless.bin=3001
KEYLESS_KEY=$(s3_nested_key "$PREFIX" "$(oid_of "$S3_REPO/keyless.bin")")
rc=0
timed_git 120 "$E2E_ROOT/s3-keyless-push.log" -C "$S3_REPO" push origin main || rc=$?
((rc != 0)) || { show "git push" "$E2E_ROOT/s3-keyless-push.log"; fail "a push without S3 keys in its environment succeeded"; }
[[ -z $(boto s3_interop ls "$S3_BUCKET" "$KEYLESS_KEY") ]] || fail "$KEYLESS_KEY was stored by a push without keys"
same_daemon "the push without keys"
pass "a push without keys in its environment failed (exit $rc) and stored nothing: the keys travel with each session only"
assert_no_secret_in_files "daemon.log, the daemon's ferry.log, the repositories' ferry.log and journals, git's output" \
  "$E2E_ROOT" --exclude "$E2E_ROOT/secrets"

# ---- 3. Proton round trip -------------------------------------------------------------------
P_REPO="$E2E_ROOT/proton-repo"
P_CLONE="$E2E_ROOT/proton-clone"
# use_proton_defaults <repo-dir>: the bridge simulator as the store, at git-lfs's defaults.
use_proton_defaults() {
  git -C "$1" config ferry.proton.command "$(proton_command)"
  git_lfs_defaults_url "$1" proton://LFS
}
new_repo proton-repo
use_proton_defaults "$P_REPO"
add_round_trip_files "$P_REPO"
MARK=$(bridge_mark)
must_git 300 "$E2E_ROOT/proton-push.log" -C "$P_REPO" push origin main
for f in "${FILES[@]}"; do assert_in_drive "$P_REPO/$f"; done
stored=$(find "$DRIVE" -path "$DRIVE/.sim" -prune -o -type f -print | wc -l)
((stored == ${#FILES[@]})) || fail "the Drive holds $stored files, expected the ${#FILES[@]} objects"
pass "git push through the daemon stored all ${#FILES[@]} objects in the Drive with sha256 == oid, nothing else ($ELAPSED_MS ms)"
# bridges_of_daemon <mark> <what>: every bridge process since <mark> was
# started by the daemon.
bridges_of_daemon() {
  bridge_check "every bridge process of $2 was the daemon's child" "$1" '
daemon = int(sys.argv[3])
if not runs:
    raise SystemExit("no bridge process ran")
others = [r for r in runs if r["ppid"] != daemon]
if others:
    raise SystemExit("%d of %d bridge processes were not started by the daemon (pid %d): %s"
                     % (len(others), len(runs), daemon, others[:3]))
print("%d processes" % len(runs))' "$DAEMON"
}
bridges_of_daemon "$MARK" "the Proton push"
assert_daemon_served "$P_REPO" "the Proton push"
same_daemon "the Proton push"
pass "the daemon served $SERVED agents of the Proton push; no agent ran an engine itself"

clone_pointers "$E2E_ROOT/proton-repo.git" "$P_CLONE" "$E2E_ROOT/proton-clone.log"
use_proton_defaults "$P_CLONE"
MARK=$(bridge_mark)
must_git 300 "$E2E_ROOT/proton-pull.log" -C "$P_CLONE" lfs pull
assert_checkout "$P_REPO" "$P_CLONE" "${FILES[@]}"
bridges_of_daemon "$MARK" "the Proton pull"
assert_daemon_served "$P_CLONE" "the Proton pull"
same_daemon "the Proton pull"
pass "git lfs pull in a fresh clone through the daemon ($SERVED agents): all ${#FILES[@]} files byte for byte ($ELAPSED_MS ms)"

"$FERRY" daemon stop >"$E2E_ROOT/daemon-stop.out" 2>&1 ||
  { show "ferry daemon stop" "$E2E_ROOT/daemon-stop.out"; fail "ferry daemon stop failed"; }
untrack_pid "$DAEMON"
pass "ferry daemon stop ended the daemon (pid $DAEMON)"
