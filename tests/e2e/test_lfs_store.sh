#!/usr/bin/env bash
# A Git LFS server as ferry's store (standalone mode): git-lfs hands every
# transfer to `ferry agent`, which talks to ferry-lfs-sim through the Batch
# API and basic transfers (`ferry install --store lfs+http://…/info/lfs`).
#
#   1. healthy: push, fresh clone and pull of 0 B, 1 KiB, 1 MiB and 64 MiB
#      files, byte for byte; the sim holds every object with sha256 == oid;
#      the 64 MiB download came as several ranged GETs; the clone names the
#      store by its git remote URL (http://…/healthy.git), the original by
#      the LFS endpoint (lfs+http://…/healthy.git/info/lfs).
#   2. every-fault.json (every transient fault kind): the same round trip
#      with more objects ends with every object intact in one push and one
#      pull; the sim log shows every rule fired; the 30 s stalls were cut
#      short by the stall detection; credentials never reach logs or output.
#   3. per-object 404/410/422 from the batch API (and a 422 on upload): each
#      failing object gets its own error naming it, without retries, while
#      the other objects complete.
#   4. a 429 whose Retry-After (3600 s) exceeds ferry.maxRetryWait (10 s)
#      fails the push at once, and git's output names the wait and the key.
#
# Corrupt or truncated bytes are never accepted: every checked-out file and
# every cached object hashes to its oid, and the sim root holds only
# verified objects.
#
#   FERRY_LFS_SIM=<ferry-lfs-sim> bash tests/e2e/test_lfs_store.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"
sim_init
sim_credentials
ferry_quick_retries

# use_sim_store <repo-dir>: ferry's store is the running sim (its port changes
# with every start), named by its LFS endpoint; a clone uses its origin's.
use_sim_store() {
  local name
  name=$(basename "$1")
  install_ferry_url "$1" "lfs+$(lfs_url "${name%-clone}")"
}

# use_sim_remote <repo-dir>: the same store named by the git remote URL
# http://…/<repo>.git (ferry derives <remote>/info/lfs, as git-lfs does) in
# a clone; the original repository uses the endpoint.
use_sim_remote() {
  local name
  name=$(basename "$1")
  if [[ $name == *-clone ]]; then
    install_ferry_url "$1" "$SIM_URL/${name%-clone}.git"
  else
    use_sim_store "$1"
  fi
}

# ---- 1. healthy round trip ------------------------------------------------------
start_sim
round_trip healthy use_sim_remote "${ROUND_TRIP_FILES[@]}"
sim_log_this_run "$E2E_ROOT/healthy-sim.log"
tail -n +"$((PULL_LINE - SIM_LOG_MARK + 1))" "$E2E_ROOT/healthy-sim.log" |
  grep -qE '^[^ ]+ POST /healthy\.git/info/lfs/objects/batch -> 200( |$)' ||
  { show "sim log" "$E2E_ROOT/healthy-sim.log"; fail "the clone's batch requests did not go to <remote>/info/lfs"; }
pass "the clone's store given as the git remote URL reached the LFS endpoint <remote>.git/info/lfs"
checks=("events.stored == 3" "events.verify_ok == 3" "events.missing_action_header == 0")
for oid in "${OIDS[@]}"; do checks+=("puts.$oid == 1"); done
expect_stats "${checks[@]}"
pass "/stats: one PUT and one verify per object, every action header sent back"
sim_stats "$E2E_ROOT/stats1.json"
py_check "the 64 MiB object came as several ranged GETs" '
import json, sys
stats = json.load(open(sys.argv[1]))
gets, ranges = stats["gets"].get(sys.argv[2], 0), stats["events"]["range_requests"]
if gets < 2 or ranges < 2:
    raise SystemExit("%d GETs of the 64 MiB object, %d ranged answers in all" % (gets, ranges))
print("%d GETs, %d answered with 206" % (gets, ranges))' "$E2E_ROOT/stats1.json" "$(oid_of "$REPO/big.bin")"
stop_sim

# ---- 2. every transient fault kind ----------------------------------------------
SCENARIO="$SCENARIOS/every-fault.json"
check_scenario "$SCENARIO"
start_sim "$SCENARIO"
fault_round_trip "$SCENARIO" use_sim_store
expect_stats "fault_statuses.401 >= 1" "fault_statuses.429 >= 2" "fault_statuses.500 >= 1" \
  "fault_statuses.502 >= 1" "fault_statuses.503 >= 1" "faults.retry_after >= 2" \
  "faults.reset_after_bytes >= 2" "faults.truncate_at >= 2" "faults.corrupt_byte_at >= 1" \
  "faults.stall_ms >= 3" "faults.bandwidth_bytes_per_s >= 1" "faults.expired_actions >= 1" \
  "events.hash_mismatch == 0" "events.size_mismatch == 0"
pass "/stats: every fault kind was injected; the sim never received a corrupt upload"
stop_sim
assert_root_clean

# ---- 3. per-object errors --------------------------------------------------------
# Downloads: tiny.bin 404, k1.bin 410, k2.bin 422; the rest complete.
# Upload: of two new files, one gets 422 from the batch API.
declare -A CODE_OF=([tiny.bin]=404 [k1.bin]=410 [k2.bin]=422)
add_lfs_files "$REPO" new-ok.bin=5000 new-refused.bin=6000
REFUSED_OID=$(oid_of "$REPO/new-refused.bin")
SCENARIO="$E2E_ROOT/object-errors.json"
{
  printf '{"rules": [\n'
  for f in "${!CODE_OF[@]}"; do
    printf '  {"match": {"endpoint": "batch", "operation": "download", "oid": "%s"}, "fault": {"object_error": %s}},\n' \
      "$(oid_of "$REPO/$f")" "${CODE_OF[$f]}"
  done
  printf '  {"match": {"endpoint": "batch", "operation": "upload", "oid": "%s"}, "fault": {"object_error": 422}}\n' \
    "$REFUSED_OID"
  printf ']}\n'
} >"$SCENARIO"
check_scenario "$SCENARIO"
start_sim "$SCENARIO"

use_sim_store "$REPO"
timed_git 120 "$E2E_ROOT/push3.log" -C "$REPO" lfs push origin main && rc=0 || rc=$?
[[ $rc -ne 0 ]] || { show "git lfs push" "$E2E_ROOT/push3.log"; fail "git lfs push succeeded although the server refused an object"; }
assert_stored "$SIM_ROOT" "$REPO/new-ok.bin"
[[ ! -e $(store_object "$SIM_ROOT" "$REFUSED_OID") ]] || fail "the refused object was stored"
grep -q "$REFUSED_OID" "$E2E_ROOT/push3.log" ||
  { show "git lfs push" "$E2E_ROOT/push3.log"; fail "git's output does not name the refused object $REFUSED_OID"; }
pass "upload: the object refused with 422 is reported by oid, the other one was stored"

CLONE="$E2E_ROOT/errors-clone"
clone_pointers "$E2E_ROOT/faulty.git" "$CLONE" "$E2E_ROOT/clone3.log"
use_sim_store "$CLONE"
timed_git 120 "$E2E_ROOT/pull3.log" -C "$CLONE" lfs pull && rc=0 || rc=$?
[[ $rc -ne 0 ]] || { show "git lfs pull" "$E2E_ROOT/pull3.log"; fail "git lfs pull succeeded although objects are missing"; }
GOOD=()
for f in "${FILES[@]}"; do [[ -n ${CODE_OF[$f]:-} ]] || GOOD+=("$f"); done
assert_checkout "$REPO" "$CLONE" "${GOOD[@]}"
FAILED_OIDS=()
OID_CODES=()
for f in "${!CODE_OF[@]}"; do
  is_pointer "$CLONE/$f" || fail "$f (answered ${CODE_OF[$f]}) is not a pointer in the clone"
  oid=$(oid_of "$REPO/$f")
  FAILED_OIDS+=("$oid")
  OID_CODES+=("$oid" "${CODE_OF[$f]}")
  # The line naming the object also names the server's code (the oid itself
  # is taken out first: its hex digits could contain the code).
  grep "$oid" "$E2E_ROOT/pull3.log" | sed "s/$oid//g" | grep -qw "${CODE_OF[$f]}" ||
    { show "git lfs pull" "$E2E_ROOT/pull3.log"; fail "git's output does not name $f's object $oid with ${CODE_OF[$f]}"; }
done
pass "download: ${#GOOD[@]} objects checked out intact; git's output names each 404, 410 and 422 object with its code"
status_json "$CLONE" "$E2E_ROOT/status-pull3.json"
assert_history "$E2E_ROOT/status-pull3.json" download failed "${FAILED_OIDS[@]}"
py_check "per-object errors are permanent: one attempt each, the error says what the server said" '
import json, sys
doc = json.load(open(sys.argv[1]))
for oid, code in zip(sys.argv[2::2], sys.argv[3::2]):
    r = [r for r in doc["history"] if r["oid"] == oid][0]
    if r["attempts"] != 1:
        raise SystemExit("%s (%s) took %d attempts: %s" % (oid, code, r["attempts"], r))
    message = r["errors"][-1]["message"] if r["errors"] else ""
    if code not in message:
        raise SystemExit("the error for %s does not mention %s: %r" % (oid, code, message))
' "$E2E_ROOT/status-pull3.json" "${OID_CODES[@]}"
stop_sim

# ---- 4. Retry-After beyond ferry.maxRetryWait ------------------------------------
SCENARIO="$SCENARIOS/retry-after-too-long.json"
check_scenario "$SCENARIO"
start_sim "$SCENARIO"
use_sim_store "$REPO"
add_lfs_files "$REPO" later.bin=7000
timed_git 120 "$E2E_ROOT/push4.log" -C "$REPO" lfs push origin main && rc=0 || rc=$?
[[ $rc -ne 0 ]] || { show "git lfs push" "$E2E_ROOT/push4.log"; fail "git lfs push succeeded against a server that only answers 429"; }
((ELAPSED_MS < 20000)) || fail "the push took $ELAPSED_MS ms: it waited instead of failing at once"
if ! grep -q "3600" "$E2E_ROOT/push4.log" || ! grep -q "ferry.maxRetryWait" "$E2E_ROOT/push4.log"; then
  show "git lfs push" "$E2E_ROOT/push4.log"
  fail "git's output does not name the 3600 s wait and ferry.maxRetryWait"
fi
expect_stats "fault_statuses.429 >= 1" "faults.retry_after >= 1" "events.stored == 0"
pass "Retry-After: 3600 > ferry.maxRetryWait: the push failed in $ELAPSED_MS ms, naming the wait and the key"
stop_sim
assert_root_clean
