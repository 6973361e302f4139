#!/usr/bin/env bash
# Ferry as the transfer an LFS server picks (non-standalone mode): after
# `ferry install --server-offered`, git-lfs keeps talking to the server's
# Batch API, lists "ferry" among its transfers, and ferry-lfs-sim (started
# with --offer-transfer ferry) answers "transfer": "ferry"; git-lfs then runs
# `ferry agent`, which performs the actions (href + headers) it is handed.
#
#   1. healthy: push, fresh clone and pull of 0 B, 1 KiB, 1 MiB and 64 MiB
#      files, byte for byte. git-lfs's trace shows the server chose "ferry"
#      and git-lfs started the ferry adapter, never basic; ferry's journal in
#      each repository records every object; the sim saw every action header
#      sent back.
#   2. every-fault.json's faults on the requests ferry sends in this mode
#      (storage GETs and PUTs; git-lfs sends the batch requests): the round
#      trip ends with every object intact in one push and one pull, the sim
#      log shows every rule fired in the right phase, and the 30 s stalls
#      were cut short.
#
#   FERRY_LFS_SIM=<ferry-lfs-sim> bash tests/e2e/test_lfs_server_mode.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"
sim_init
sim_credentials
ferry_quick_retries
# git-lfs's trace of each push and pull shows which transfer adapter ran.
TRACE_TRANSFERS=1

# server_mode_repo <repo-dir>: git-lfs uses the running sim as its LFS server
# and offers it ferry.
server_mode_repo() {
  git -C "$1" config lfs.url "$(lfs_url "$(basename "$1")")"
  (cd "$1" && "$FERRY" install --server-offered) >"$E2E_ROOT/install.out" 2>&1 ||
    { show "ferry install --server-offered" "$E2E_ROOT/install.out"; fail "ferry install --server-offered in $1 failed"; }
  one_agent_at_a_time "$1"
  [[ -z $(git -C "$1" config --get lfs.standalonetransferagent) ]] ||
    fail "ferry install --server-offered set lfs.standalonetransferagent"
}

# assert_ferry_chosen <trace> <what>: git-lfs's trace (GIT_TRACE=1) shows a
# batch answer choosing "ferry" and the ferry adapter starting, and never the
# basic adapter.
assert_ferry_chosen() {
  local trace=$1 what=$2
  grep -q '"transfer":"ferry"' "$trace" ||
    { show "GIT_TRACE of $what" "$trace"; fail "$what: no batch answer in git-lfs's trace chose the transfer \"ferry\""; }
  grep -q 'starting transfer adapter "ferry"' "$trace" ||
    { show "GIT_TRACE of $what" "$trace"; fail "$what: git-lfs did not start the ferry adapter"; }
  ! grep -q 'starting transfer adapter "basic"' "$trace" ||
    { show "GIT_TRACE of $what" "$trace"; fail "$what: git-lfs started its basic adapter"; }
}

# ---- the sim offers ferry only to clients that list it --------------------------
start_sim "" --offer-transfer ferry
B="$E2E_ROOT/batch.json"
O="$E2E_ROOT/batch.out"
for transfers in '["basic", "ferry"]:ferry' '["basic"]:basic'; do
  printf '{"operation": "download", "transfers": %s, "objects": []}' "${transfers%:*}" >"$B"
  [[ $(http POST "$(lfs_url)/objects/batch" "$B" "$O" "Content-Type: application/vnd.git-lfs+json") == 200 ]] ||
    { show "batch answer" "$O"; fail "the batch request listing ${transfers%:*} failed"; }
  grep -q "\"transfer\":\"${transfers##*:}\"" "$O" ||
    { show "batch answer" "$O"; fail "transfers ${transfers%:*}: the sim did not choose ${transfers##*:}"; }
done
pass "the sim chooses ferry when the client lists it, basic otherwise"

# ---- 1. healthy round trip ------------------------------------------------------
round_trip healthy server_mode_repo "${ROUND_TRIP_FILES[@]}"
assert_ferry_chosen "$E2E_ROOT/healthy-push.log" "git push"
assert_ferry_chosen "$E2E_ROOT/healthy-pull.log" "git lfs pull"
checks=("events.stored == 3" "events.verify_ok == 3" "events.missing_action_header == 0")
for oid in "${OIDS[@]}"; do checks+=("puts.$oid == 1" "gets.$oid >= 1"); done
expect_stats "${checks[@]}"
[[ -s $CLONE/.git/lfs/ferry/ferry.log ]] || fail "the clone has no ferry log in .git/lfs/ferry"
pass "the server chose ferry; ferry sent each PUT and GET with the action headers; git-lfs verified"
stop_sim

# ---- 2. the fault scenario ------------------------------------------------------
# In this mode git-lfs, not ferry, sends the batch requests, so the batch
# faults would test git-lfs (3.3.0 gives up on a 5xx or a cut batch answer,
# and would not reach rules counted for ferry's one batch per object). Ferry
# sends the storage requests: every-fault.json's rules for those (and for
# verify, which git-lfs retries) are kept.
SCENARIO="$E2E_ROOT/every-fault-server-mode.json"
python3 - "$SCENARIOS/every-fault.json" "$SCENARIO" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
doc["rules"] = [r for r in doc["rules"] if r.get("match", {}).get("endpoint") != "batch"]
json.dump(doc, open(sys.argv[2], "w"), indent=1)
PY
check_scenario "$SCENARIO"
start_sim "$SCENARIO" --offer-transfer ferry
fault_round_trip "$SCENARIO" server_mode_repo
assert_ferry_chosen "$E2E_ROOT/faulty-push.log" "git push"
assert_ferry_chosen "$E2E_ROOT/faulty-pull.log" "git lfs pull"
expect_stats "events.hash_mismatch == 0" "events.size_mismatch == 0" "faults.corrupt_byte_at >= 1"
pass "every object intact through the faults, moved by ferry"
stop_sim
assert_root_clean
