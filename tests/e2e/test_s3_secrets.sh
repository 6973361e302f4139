#!/usr/bin/env bash
# No secret of an S3 store leaks: the secret access key of the radosgw
# fixture, taken from each place ferry looks for keys, is nowhere in what
# ferry wrote or printed and in no argv of any process ferry ran, and ferry
# puts it in no child's environment, while every request it signs with it is
# accepted (radosgw verifies each SigV4 signature).
#
#   1. push (multipart and single PUT) with the keys in AWS_ACCESS_KEY_ID /
#      AWS_SECRET_ACCESS_KEY, GIT_TRACE=1 and ferry.logLevel trace.
#   2. pull in a fresh clone with the keys in ~/.aws/credentials only.
#   3. ferry migrate from a folder into the bucket, and ferry check --hash of
#      the two, with the keys from `git credential fill` only.
#   Then: the secret is in no file below the sandbox (git's output and
#   trace, ferry's stdout and stderr, logs, journals, inventories, reports,
#   status --json, the repositories) and in no argv of ferry's process tree;
#   an environment there holds it only in an entry ferry itself was given
#   (git, which ferry runs, inherits ferry's environment: in step 1 the
#   AWS_SECRET_ACCESS_KEY entry). Read from /proc while each process ran;
#   every git ferry starts, and the credential helper, waits until the
#   watcher has read it and its ancestors. The checks find planted secrets.
#
#   ctest -R e2e.test_s3_secrets   (the radosgw fixture sets FERRY_S3_* and FERRY_RADOSGW_LOG)
set -euo pipefail
# Before lib.sh: its sandbox unsets every FERRY_* variable.
source "$(dirname "${BASH_SOURCE[0]}")/../s3/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/migrate_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/secrets_lib.sh"
s3_e2e_init ferry-e2e-secrets "$@"
git config --global ferry.logLevel trace
export FERRY_S3_MULTIPART_THRESHOLD=5MiB FERRY_S3_PART_SIZE=5MiB
git config --global ferry.parallelThreshold 1MiB

add_secret "$FERRY_S3_SECRET_KEY"
assert_scan_finds_planted

PREFIX=secrets/lfs
use_s3_store() { install_ferry_url "$1" "$(s3_store_url "$PREFIX")"; }

watch_start

# ---- 1. push, keys from the environment ----------------------------------------------
FILES=(one-kib.bin=1024 "sub dir/six-mib.bin=$((6 << 20))")
REPO="$E2E_ROOT/repo"
CLONE="$E2E_ROOT/repo-clone"
new_repo repo
use_s3_store "$REPO"
add_lfs_files "$REPO" "${FILES[@]}"
NAMES=()
for spec in "${FILES[@]}"; do NAMES+=("${spec%=*}"); done
mapfile -t OIDS < <(lfs_oids "$REPO" "${NAMES[@]}")
GIT_TRACE=1 must_git 120 "$E2E_ROOT/push.log" -C "$REPO" push origin main
for oid in "${OIDS[@]}"; do
  [[ -n $(s3_interop ls "$S3_BUCKET" "$(s3_nested_key "$PREFIX" "$oid")") ]] || fail "$oid is not in the bucket"
done
status_json "$REPO" "$E2E_ROOT/push-status.json"
assert_history "$E2E_ROOT/push-status.json" upload "done" "${OIDS[@]}"
pass "push with the keys in the environment: radosgw accepted every signed request"

# ---- 2. pull, keys from ~/.aws/credentials ------------------------------------------------
mkdir -p "$HOME/.aws"
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
  "$FERRY_S3_ACCESS_KEY" "$FERRY_S3_SECRET_KEY" >"$HOME/.aws/credentials"
chmod 600 "$HOME/.aws/credentials"
clone_pointers "$E2E_ROOT/repo.git" "$CLONE" "$E2E_ROOT/clone.log"
use_s3_store "$CLONE"
(
  unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
  GIT_TRACE=1 must_git 120 "$E2E_ROOT/pull.log" -C "$CLONE" lfs pull
)
assert_checkout "$REPO" "$CLONE" "${NAMES[@]}"
status_json "$CLONE" "$E2E_ROOT/pull-status.json"
assert_history "$E2E_ROOT/pull-status.json" download "done" "${OIDS[@]}"
grep -q "$HOME/.aws/credentials" "$CLONE/.git/lfs/ferry/ferry.log" ||
  fail "ferry.log of the pull does not say the keys came from ~/.aws/credentials"
rm "$HOME/.aws/credentials"
pass "pull with the keys in ~/.aws/credentials only: every object intact"

# ---- 3. migrate and check, keys from git credential -------------------------------------------
HELPER="$E2E_ROOT/bin/git-credential-s3"
mkdir -p "$(dirname "$HELPER")"
{
  echo '#!/bin/sh'
  echo 'cat >/dev/null'
  hold_for_watch
  echo "[ \"\$1\" = get ] || exit 0"
  printf '%s\n' "printf 'username=%s\\npassword=%s\\n' '$FERRY_S3_ACCESS_KEY' '$FERRY_S3_SECRET_KEY'"
} >"$HELPER"
chmod 700 "$HELPER"
git config --global credential.helper "$HELPER"
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
SOURCE="$E2E_ROOT/source"
make_objects "$SOURCE" "$E2E_ROOT/source.manifest" 5 large
run_migrate migrate 120 --from "file://$SOURCE" --to "$(s3_store_url migrated)" \
  --report "$E2E_ROOT/migrate.json"
expect_rc migrate 0
assert_report "$E2E_ROOT/migrate.json" "copied.objects == 5" "outcome == complete"
s3_bucket_holds "$S3_BUCKET" migrated "$E2E_ROOT/source.manifest" || fail "the bucket does not hold the migrated objects"
run_check check 120 --from "file://$SOURCE" --to "$(s3_store_url migrated)" --hash \
  --report "$E2E_ROOT/check.json"
expect_rc check 0
pass "migrate and check with the keys from git credential only: every object intact"

# ---- the secret is nowhere ---------------------------------------------------------------------
watch_stop
assert_no_secret_in_processes --expect "credential fill" --expect "$HELPER get"
assert_no_secret_in_files "git output and trace, ferry's stdout and stderr, logs, journals, inventories, reports, status --json, repositories" \
  "$E2E_ROOT" --exclude "$E2E_ROOT/secrets" --exclude "$E2E_ROOT/bin"
