#!/usr/bin/env bash
# git-lfs's own defaults for a custom transfer: lfs.customtransfer.ferry.concurrent
# unset (true) and lfs.concurrenttransfers 8, so git-lfs runs 8 `ferry agent`
# processes per repository at once. Each takes a journal slot of its own
# (.git/lfs/ferry, then .git/lfs/ferry/slots/<n>):
#
#   1. push of 40 objects (1 B to 2 MiB) into a folder store: exit 0, every
#      object stored and hashing to its oid, no partial file; more than one
#      agent kept a journal; `ferry status` lists every upload as done,
#      gathered from every slot, and nothing active.
#   2. a fresh clone pulls them all the same way: byte for byte, every
#      download done, no Ferry download file left in .git/lfs/tmp/ferry or
#      its slots.
#   3. two pushes of the same objects into a new store at once (16 agents):
#      both exit 0, every object stored once and intact, no partial file.
#   4. the transfer an LFS server offers (ferry-lfs-sim --offer-transfer
#      ferry, `ferry install --server-offered`), concurrency at git-lfs's
#      default: push and pull of 24 objects, all intact, git-lfs ran ferry.
#
#   FERRY_LFS_SIM=<ferry-lfs-sim> bash tests/e2e/test_concurrent_agents.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"

STORE="$E2E_ROOT/store"
REPO="$E2E_ROOT/origin-repo"
CLONE="$E2E_ROOT/clone"
COUNT=40

# slots_used <repo-dir>: how many journals (slot 0 included) agents opened.
slots_used() {
  local n=0
  [[ -f $1/.git/lfs/ferry/CURRENT ]] && n=1
  for d in "$1"/.git/lfs/ferry/slots/*/; do
    [[ -f $d/CURRENT ]] && n=$((n + 1))
  done
  echo "$n"
}

new_repo origin-repo
git_lfs_defaults "$REPO" "$STORE"
add_mixed_lfs_files "$REPO" "$COUNT"
mapfile -t OIDS < <(lfs_oids "$REPO" "${FILES[@]}")
[[ ${#OIDS[@]} -eq $COUNT ]] || fail "expected $COUNT LFS objects, have ${#OIDS[@]}"

# ---- 1. push with 8 agents at once -------------------------------------------------
must_git 300 "$E2E_ROOT/push.log" -C "$REPO" push origin main
for f in "${FILES[@]}"; do
  assert_stored "$STORE" "$REPO/$f"
done
assert_no_partials "$STORE"
pass "git push with git-lfs's default concurrency stored all $COUNT objects, each hashing to its oid"
used=$(slots_used "$REPO")
((used > 1)) || fail "only $used agent journal was used: git-lfs did not run agents at once"
pass "$used agents ran at once, each with a journal slot of its own"
status_json "$REPO" "$E2E_ROOT/push-status.json"
assert_history "$E2E_ROOT/push-status.json" upload done "${OIDS[@]}"
py_check "ferry status: nothing active, one done upload per object" '
import json, sys
doc = json.load(open(sys.argv[1]))
if doc["active"]:
    raise SystemExit("active transfers remain: %s" % doc["active"])
done = [r["oid"] for r in doc["history"] if r["direction"] == "upload" and r["state"] == "done"]
if sorted(done) != sorted(sys.argv[2:]):
    raise SystemExit("done uploads %d, expected each of the %d objects once" % (len(done), len(sys.argv) - 2))
' "$E2E_ROOT/push-status.json" "${OIDS[@]}"
(cd "$REPO" && "$FERRY" status) >"$E2E_ROOT/status.txt" 2>&1 || fail "ferry status failed"
grep -q "slot(s) of agents that ran at once" "$E2E_ROOT/status.txt" ||
  { show "ferry status" "$E2E_ROOT/status.txt"; fail "ferry status does not say it read the agents' slots"; }
pass "ferry status reads every slot"

# ---- 2. pull with 8 agents at once -------------------------------------------------
clone_pointers "$E2E_ROOT/origin-repo.git" "$CLONE" "$E2E_ROOT/clone.log"
git_lfs_defaults "$CLONE" "$STORE"
must_git 300 "$E2E_ROOT/pull.log" -C "$CLONE" lfs pull
assert_checkout "$REPO" "$CLONE" "${FILES[@]}"
pass "git lfs pull with git-lfs's default concurrency restored all $COUNT files byte for byte"
((used = $(slots_used "$CLONE"), used > 1)) || fail "only $used agent journal was used by the pull"
status_json "$CLONE" "$E2E_ROOT/pull-status.json"
assert_history "$E2E_ROOT/pull-status.json" download done "${OIDS[@]}"
leftovers=$(find "$CLONE/.git/lfs/tmp/ferry" -type f 2>/dev/null || true)
[[ -z $leftovers ]] || fail "ferry's download files remain: $leftovers"
pass "no download file remains in .git/lfs/tmp/ferry or its slots"

# ---- 3. two pushes of the same objects at once --------------------------------------
STORE2="$E2E_ROOT/store2"
for r in 1 2; do
  git -C "$REPO" config ferry.store "file://$STORE2"
  git -C "$REPO" remote add "second$r" "$E2E_ROOT/second$r.git" 2>/dev/null || true
  git init -q --bare "$E2E_ROOT/second$r.git"
done
timed_git 300 "$E2E_ROOT/push-a.log" -C "$REPO" push second1 main &
pid_a=$!
timed_git 300 "$E2E_ROOT/push-b.log" -C "$REPO" push second2 main &
pid_b=$!
await_both "$pid_a" "$E2E_ROOT/push-a.log" "the first of two pushes at once" "$pid_b" "$E2E_ROOT/push-b.log" "the second of two pushes at once"
for f in "${FILES[@]}"; do
  assert_stored "$STORE2" "$REPO/$f"
done
assert_no_partials "$STORE2"
count=$(find "$STORE2" -type f | wc -l)
((count == COUNT)) || fail "the store holds $count files, expected $COUNT"
pass "two pushes at once (up to 16 agents) stored every object once, intact"

# ---- 4. the transfer an LFS server offers ------------------------------------------
sim_init
sim_credentials
start_sim "" --offer-transfer ferry
SERVER_FILES=()
for i in $(seq 1 24); do SERVER_FILES+=("s$i.bin=$((i * 1031))"); done
TRACE_TRANSFERS=1
round_trip offered server_offered "${SERVER_FILES[@]}"
grep -q 'starting transfer adapter "ferry"' "$E2E_ROOT/offered-push.log" ||
  { show "GIT_TRACE of the push" "$E2E_ROOT/offered-push.log"; fail "git-lfs did not start the ferry adapter"; }
((used = $(slots_used "$REPO"), used > 1)) || fail "only $used agent journal was used by the server-offered push"
pass "server-offered: $used agents at once, every object intact both ways"
