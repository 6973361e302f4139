#!/usr/bin/env bash
# No secret of a Proton Drive store leaks. The Proton data password lives in
# a git credential helper; ferry passes the bridge only the provider's name
# (ferry.proton.dataCredentialProvider git-credential) and host, and the
# bridge (here a wrapper that, like proton-drive-cli, asks `git credential
# fill` through a pipe, then runs ferry-bridge-sim) reads it itself. AWS keys
# in ferry's environment must not reach the bridge.
#
#   1. ferry install, push, fresh clone and pull (GIT_TRACE=1,
#      ferry.logLevel trace), then ferry migrate from the Drive into a folder
#      with a report: every object intact, and every bridge call after
#      auth-state got the data password from git's credential helper.
#   2. The bridge prints an Authorization header and the password on
#      stderr, and once answers an upload with an error text holding the
#      password, once crashes on a download: ferry's messages about those
#      failures carry neither (bridge output is not trusted).
#   3. The secrets are in no file below the sandbox (git's output and trace,
#      ferry's output, logs, journals, reports, status --json, the
#      repositories), in no argv of ferry's process tree, and in no
#      environment of a bridge process; git, which ferry runs for its
#      settings, inherits ferry's environment unchanged (the AWS keys among
#      it) and ferry adds nothing. Read from /proc while each process ran;
#      every git ferry starts, each bridge and the credential helper wait
#      until the watcher has read them and their ancestors.
#   4. The checks can fail: they find planted secrets, and a secret put in a
#      PROTON_* variable (which the bridge gets by design) in a live bridge
#      process.
#   5. Under umask 000, ferry's Proton staging folders are private.
#
#   FERRY_BRIDGE_SIM=<ferry-bridge-sim> bash tests/e2e/test_secrets_proton.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/proton_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/migrate_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/secrets_lib.sh"
e2e_init "$@"
proton_init
umask 000
ferry_quick_retries
git config --global ferry.logLevel trace

DATA_PASSWORD=$(random_secret proton-data-password)
AWS_SECRET=$(random_secret aws-secret)
add_secret "$DATA_PASSWORD" "$AWS_SECRET"
export AWS_ACCESS_KEY_ID=AKIAE2ESECRETSTEST AWS_SECRET_ACCESS_KEY=$AWS_SECRET
assert_scan_finds_planted --bridge "$DRIVE"

DATA_HOST=proton-data.e2e.invalid
HELPER="$E2E_ROOT/bin/git-credential-data-password"
{
  echo '#!/bin/sh'
  echo 'cat >/dev/null'
  hold_for_watch
  echo "[ \"\$1\" = get ] || exit 0"
  printf '%s\n' "printf 'username=e2e\\npassword=%s\\n' '$DATA_PASSWORD'"
} >"$HELPER"
chmod 700 "$HELPER"
git config --global credential.helper "$HELPER"

# The bridge: waits for the watcher, reads the data password as
# proton-drive-cli does for git-credential (recording only whether it got
# it), writes what a careless bridge might on stderr, then runs the sim.
PASSWORD_LOG="$E2E_ROOT/bridge-passwords.txt"
{
  echo '#!/bin/bash'
  hold_for_watch
  cat <<WRAPPER
command=\${*: -1}
request=\$(cat)
got=none
if [[ \$request == *'"dataCredentialProvider":"git-credential"'* && \$request == *'"dataCredentialHost":"$DATA_HOST"'* ]]; then
  answer=\$(printf 'protocol=https\nhost=$DATA_HOST\n\n' | git credential fill 2>/dev/null) || true
  [[ \$answer != *'password=$DATA_PASSWORD'* ]] || got=password
fi
echo "\$command \$got" >>'$PASSWORD_LOG'
echo "unlocking keys, Authorization: Basic $(printf 'e2e:%s' "$DATA_PASSWORD" | base64 -w0)" >&2
echo "git credential answered password=$DATA_PASSWORD" >&2
exec '$BRIDGE_SIM' "\$@" <<<"\$request"
WRAPPER
} >"$BRIDGE"
chmod 755 "$BRIDGE"

# An upload answered once with an error text holding the password, a
# download that crashes once; both are retried.
SCENARIO=$(proton_scenario careless "{\"rules\": [
  {\"command\": \"upload\", \"times\": 1, \"fault\": \"server_error\",
   \"message\": \"key unlock failed: git credential answered password=$DATA_PASSWORD\"},
  {\"command\": \"download\", \"times\": 1, \"fault\": \"crash\"}]}")
cp "$SCENARIO" "$E2E_ROOT/secrets/" && rm "$SCENARIO" && SCENARIO="$E2E_ROOT/secrets/$(basename "$SCENARIO")"
git config --global ferry.proton.command "$(proton_command "$SCENARIO")"
git config --global ferry.proton.dataCredentialProvider git-credential
git config --global ferry.proton.dataCredentialHost "$DATA_HOST"

watch_start

# ---- 1. install, push, pull, migrate ---------------------------------------------------
FILES=(one-kib.bin=1024 "sub dir/two-mib.bin=$((2 << 20))")
REPO="$E2E_ROOT/repo"
CLONE="$E2E_ROOT/repo-clone"
new_repo repo
install_ferry_url "$REPO" proton://LFS
add_lfs_files "$REPO" "${FILES[@]}"
NAMES=()
for spec in "${FILES[@]}"; do NAMES+=("${spec%=*}"); done
mapfile -t OIDS < <(lfs_oids "$REPO" "${NAMES[@]}")
GIT_TRACE=1 must_git 120 "$E2E_ROOT/push.log" -C "$REPO" push origin main
for name in "${NAMES[@]}"; do assert_in_drive "$REPO/$name"; done
status_json "$REPO" "$E2E_ROOT/push-status.json"
assert_history "$E2E_ROOT/push-status.json" upload "done" "${OIDS[@]}"

clone_pointers "$E2E_ROOT/repo.git" "$CLONE" "$E2E_ROOT/clone.log"
install_ferry_url "$CLONE" proton://LFS
GIT_TRACE=1 must_git 120 "$E2E_ROOT/pull.log" -C "$CLONE" lfs pull
assert_checkout "$REPO" "$CLONE" "${NAMES[@]}"
status_json "$CLONE" "$E2E_ROOT/pull-status.json"
assert_history "$E2E_ROOT/pull-status.json" download "done" "${OIDS[@]}"

run_migrate migrate 120 --from proton://LFS --to "file://$E2E_ROOT/copy" --report "$E2E_ROOT/migrate.json"
expect_rc migrate 0
assert_report "$E2E_ROOT/migrate.json" "copied.objects == 2" "outcome == complete"
pass "install, push, pull and migrate through the bridge: every object intact"

py_check "every bridge call but auth-state got the data password from git's credential helper" '
import sys
calls = [line.split() for line in open(sys.argv[1])]
without = [c for c in calls if c[0] != "auth-state" and c[1] != "password"]
commands = {c[0] for c in calls}
if without or not {"upload", "download", "list"} <= commands:
    raise SystemExit("calls without the password: %s; commands: %s" % (without, sorted(commands)))
print("%d calls" % len(calls))' "$PASSWORD_LOG"

# ---- 2. the careless bridge's failures were reported ------------------------------------
py_check "the failed upload and the crashed download are in the journals" '
import json, sys
def errors(path, direction):
    doc = json.load(open(path))
    return [e["message"] for r in doc["history"] if r["direction"] == direction for e in r["errors"]]
up, down = errors(sys.argv[1], "upload"), errors(sys.argv[2], "download")
if not any("key unlock failed" in m for m in up):
    raise SystemExit("no upload error names the bridge error: %s" % up)
if not any("137" in m for m in down):
    raise SystemExit("no download error names the crash: %s" % down)
print("%s | %s" % (up[0][:150], down[0][:150]))' "$E2E_ROOT/push-status.json" "$E2E_ROOT/pull-status.json"

# ---- 3. the secrets are nowhere --------------------------------------------------------------
watch_stop
assert_no_secret_in_processes --bridge "$DRIVE" \
  --expect "$BRIDGE" --expect "credential fill"
assert_no_secret_in_files "git output and trace, ferry's stdout and stderr, logs, journals, inventories, reports, status --json, repositories" \
  "$E2E_ROOT" --exclude "$E2E_ROOT/secrets" --exclude "$E2E_ROOT/bin"

# ---- 4. a secret in a live bridge's environment is found ----------------------------------------
watch_start
PLANTED="$E2E_ROOT/planted-repo"
new_repo planted-repo
PROTON_E2E_PLANTED=$DATA_PASSWORD install_ferry_url "$PLANTED" proton://LFS
watch_stop
out=$(python3 "$E2E_DIR/secret_scan.py" "$SECRETS_FILE" processes "$WATCH_RECORDS" --ferry "$FERRY" \
  --bridge "$DRIVE" 2>&1) &&
  fail "the process check missed the password in a bridge's PROTON_E2E_PLANTED"
[[ $out == *"PROTON_E2E_PLANTED holds"* ]] || fail "the process check failed for another reason: $out"
pass "the process check finds a secret in a live bridge's environment (PROTON_E2E_PLANTED)"

# ---- 5. private staging ----------------------------------------------------------------------------
for dir in "$REPO/.git/lfs/tmp/ferry-proton" "$CLONE/.git/lfs/tmp/ferry-proton"; do
  [[ -d $dir ]] || fail "$dir is missing"
  open=$(find "$dir" -perm /077 -printf '%m %p\n')
  [[ -z $open ]] || fail "open to group or others under umask 000: $open"
done
pass "under umask 000, the Proton staging folders of the push and the pull are private"
