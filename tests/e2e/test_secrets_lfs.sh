#!/usr/bin/env bash
# No secret of a Git LFS server store leaks: a git credential password that
# answers ferry-lfs-sim's 401 challenges, and a token a server hands out in
# an action's Authorization header (server-offered mode), are nowhere in
# what ferry wrote or printed, and in no argv or environment of any process
# ferry ran, while every transfer that needs them succeeds.
#
#   1. push, fresh clone and pull (GIT_TRACE=1, ferry.logLevel trace) through
#      a server that answers 401 to every request without credentials; the
#      objects arrive intact, so ferry sent the password it got from
#      `git credential fill`.
#   2. ferry migrate from that server (--from-repo) into a folder, then
#      ferry check of the two, with JSON reports.
#   3. ferry agent after `ferry install --server-offered`, handed a download
#      whose action carries "Authorization: RemoteAuth <token>": the object
#      arrives intact (the server wants the header).
#   4. a server that refuses every credential: the push fails and ferry
#      tells git to reject the credential.
#   Then: the secrets are in no file below the sandbox (git's output and
#   trace, ferry's stdout and stderr, logs, journals, inventories, reports,
#   status --json, the repositories) and in no argv, and ferry added them to
#   no environment, of any process of ferry's tree, read from /proc while
#   each ran (every git ferry starts, and the credential helper, waits until
#   the watcher has read it and its ancestors). The checks find planted
#   secrets.
#
#   FERRY_LFS_SIM=<ferry-lfs-sim> bash tests/e2e/test_secrets_lfs.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/migrate_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/secrets_lib.sh"
e2e_init "$@"
sim_init
ferry_quick_retries
# Every line ferry can log, and parallel ranges from 1 MiB on.
git config --global ferry.logLevel trace
git config --global ferry.parallelThreshold 1MiB

PASSWORD=$(random_secret lfs-password)
ACTION_TOKEN=$(random_secret action-token)
add_secret "$PASSWORD" "$ACTION_TOKEN"
assert_scan_finds_planted

# A credential helper that answers every `get` with the password, records
# which action it was asked for, and waits until the watcher has seen it.
HELPER="$E2E_ROOT/bin/git-credential-secrets"
HELPER_CALLS="$E2E_ROOT/helper-calls.txt"
mkdir -p "$(dirname "$HELPER")"
{
  echo '#!/bin/sh'
  echo 'cat >/dev/null'
  hold_for_watch
  echo "echo \"\$1\" >>'$HELPER_CALLS'"
  echo "[ \"\$1\" = get ] || exit 0"
  printf '%s\n' "printf 'username=e2e-user\\npassword=%s\\n' '$PASSWORD'"
} >"$HELPER"
chmod 700 "$HELPER"
git config --global credential.helper "$HELPER"

use_sim_store() {
  local name
  name=$(basename "$1")
  install_ferry_url "$1" "lfs+$(lfs_url "${name%-clone}")"
}

# Every request without an Authorization header gets 401.
AUTH_SCENARIO="$E2E_ROOT/auth-required.json"
echo '{"rules": [{"fault": {"status": 401, "then_success": true}}]}' >"$AUTH_SCENARIO"
check_scenario "$AUTH_SCENARIO"

watch_start

# ---- 1. push and pull --------------------------------------------------------------
start_sim "$AUTH_SCENARIO"
TRACE_TRANSFERS=1 round_trip lfs use_sim_store one-kib.bin=1024 "sub dir/three-mib.bin=$((3 << 20))"
expect_stats "fault_statuses.401 >= 2"
grep -qx get "$HELPER_CALLS" || fail "ferry never asked git for the credential"
pass "every transfer was challenged with 401 and succeeded with the password from git credential"

# ---- 2. migrate and check --------------------------------------------------------------
run_migrate migrate 120 --from "lfs+$(lfs_url lfs)" --from-repo "$REPO" --to "file://$E2E_ROOT/copy" \
  --report "$E2E_ROOT/migrate.json"
expect_rc migrate 0
assert_report "$E2E_ROOT/migrate.json" "copied.objects == 2" "outcome == complete"
run_check check 120 --from "lfs+$(lfs_url lfs)" --from-repo "$REPO" --to "file://$E2E_ROOT/copy" --hash \
  --report "$E2E_ROOT/check.json"
expect_rc check 0

# ---- 3. an action's Authorization header (server-offered mode) ---------------------------
OID=${OIDS[0]}
SIZE=$(stat -c %s "$REPO/one-kib.bin")
printf '{"operation": "download", "transfers": ["basic"], "objects": [{"oid": "%s", "size": %s}]}' \
  "$OID" "$SIZE" >"$E2E_ROOT/batch.json"
# The sim takes any credentials; these are not the secret.
[[ $(http POST "$(lfs_url lfs)/objects/batch" "$E2E_ROOT/batch.json" "$E2E_ROOT/batch.out" \
  "Content-Type: application/vnd.git-lfs+json" "Authorization: Basic dGVzdDp0ZXN0") == 200 ]] ||
  { show "batch answer" "$E2E_ROOT/batch.out"; fail "the batch request for $OID failed"; }
HREF=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["objects"][0]["actions"]["download"]["href"])' \
  "$E2E_ROOT/batch.out")
new_repo offered
(cd "$E2E_ROOT/offered" && "$FERRY" install --server-offered) >"$E2E_ROOT/offered-install.out" 2>&1 ||
  { show "ferry install --server-offered" "$E2E_ROOT/offered-install.out"; fail "ferry install --server-offered failed"; }
# The session names the token, so it lives with the secrets.
SESSION="$E2E_ROOT/secrets/offered-session.jsonl"
{
  echo '{"label":"init","json":{"event":"init","operation":"download","remote":"origin","concurrent":false,"concurrenttransfers":1}}'
  printf '{"label":"download","json":{"event":"download","oid":"%s","size":%s,"action":{"href":"%s","header":{"X-Ferry-Sim-Action":"download","Authorization":"RemoteAuth %s"}}}}\n' \
    "$OID" "$SIZE" "$HREF" "$ACTION_TOKEN"
  echo '{"label":"bye","json":{"event":"terminate"},"exit":true}'
} >"$SESSION"
sim_stats "$E2E_ROOT/before-offered.json"
python3 "$E2E_DIR/agent_driver.py" --ferry "$FERRY" --cwd "$E2E_ROOT/offered" --timeout 60 \
  --stderr "$E2E_ROOT/offered-agent.err" <"$SESSION" >"$E2E_ROOT/offered-agent.out" ||
  fail "agent_driver.py failed"
py_check "the download with the action's Authorization header arrived intact" '
import json, sys
steps = {s["label"]: s for s in map(json.loads, open(sys.argv[1]))}
reply = steps["download"]["reply"] or {}
info = steps["download"].get("path_info") or {}
if reply.get("error") or info.get("sha256") != sys.argv[2]:
    raise SystemExit("reply %s, file %s" % (reply, info))
if steps["<exit>"]["exit_code"] != 0:
    raise SystemExit("the agent exited with %s" % steps["<exit>"]["exit_code"])
' "$E2E_ROOT/offered-agent.out" "$OID"
sim_stats "$E2E_ROOT/after-offered.json"
py_check "the storage GET carried the action's header: the sim answered it without a 401" '
import json, sys
before, after = (json.load(open(p)).get("fault_statuses", {}).get("401", 0) for p in sys.argv[1:])
if after != before:
    raise SystemExit("%d more 401 answers" % (after - before))
' "$E2E_ROOT/before-offered.json" "$E2E_ROOT/after-offered.json"
status_json "$E2E_ROOT/offered" "$E2E_ROOT/offered-status.json"
stop_sim

# ---- 4. a server that refuses every credential ----------------------------------------------
REFUSE_SCENARIO="$E2E_ROOT/refuse-all.json"
echo '{"rules": [{"fault": {"status": 401}}]}' >"$REFUSE_SCENARIO"
check_scenario "$REFUSE_SCENARIO"
start_sim "$REFUSE_SCENARIO"
use_sim_store "$REPO"
add_lfs_files "$REPO" refused.bin=2000
rc=0
GIT_TRACE=1 timed_git 60 "$E2E_ROOT/refused-push.log" -C "$REPO" push origin main || rc=$?
((rc != 0)) || { show "git push" "$E2E_ROOT/refused-push.log"; fail "git push succeeded against a server that refuses every credential"; }
grep -q 401 "$E2E_ROOT/refused-push.log" || { show "git push" "$E2E_ROOT/refused-push.log"; fail "git's output does not name the 401"; }
status_json "$REPO" "$E2E_ROOT/refused-status.json"
stop_sim
pass "a refused credential fails the push naming the 401"

# ---- the secrets are nowhere ----------------------------------------------------------------
watch_stop
assert_no_secret_in_processes --expect "credential fill" --expect "credential approve" \
  --expect "credential reject" --expect "$HELPER get"
# Everything in the sandbox but the test's own copies of the secrets (the
# helper, the agent session, the watcher's records of ferry's own
# environment) and git-lfs's global config.
assert_no_secret_in_files "git output and trace, ferry's stdout and stderr, logs, journals, inventories, reports, status --json, repositories" \
  "$E2E_ROOT" --exclude "$E2E_ROOT/secrets" --exclude "$E2E_ROOT/bin"
