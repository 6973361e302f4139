#!/usr/bin/env bash
# Rolling a migration back, as docs/operations.md describes it, with folders:
#
#   1. `ferry migrate --from OLD --to NEW` (60 objects) leaves OLD as it was:
#      the same files with the same inodes and mtimes.
#   2. After the cut-over, 5 objects are pushed to NEW only. `ferry check
#      --from OLD --to NEW` names exactly those 5 as extra (exit 3).
#   3. The way back: `ferry migrate --from NEW --to OLD` copies exactly those
#      5 (copied 5, present 60, exit 0) and rewrites none of OLD's files;
#      then `ferry check --hash --from NEW --to OLD` finds the stores equal
#      (exit 0), so OLD can serve again.
#
#   bash tests/e2e/test_migrate_rollback.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/migrate_lib.sh"
e2e_init "$@"

OLD="$E2E_ROOT/old"
NEW="$E2E_ROOT/new"
make_objects "$OLD" "$E2E_ROOT/old.manifest" 60 mixed
inode_list "$OLD" >"$E2E_ROOT/old.before"

# ---- 1. the migration leaves its source as it was --------------------------------
run_migrate forward 120 --from "file://$OLD" --to "file://$NEW" --report "$E2E_ROOT/forward.json"
expect_rc forward 0
assert_objects "$NEW" "$E2E_ROOT/old.manifest" exact
inode_list "$OLD" | diff -u "$E2E_ROOT/old.before" - >"$E2E_ROOT/old.diff" ||
  { show "OLD changed" "$E2E_ROOT/old.diff"; fail "1: ferry migrate changed its source"; }
pass "1: 60 objects migrated; the source's files, inodes and mtimes are unchanged"

# ---- 2. objects pushed to NEW after the cut-over ----------------------------------
make_objects "$NEW" "$E2E_ROOT/after.manifest" 5 small
run_check since 60 --from "file://$OLD" --to "file://$NEW" --report "$E2E_ROOT/since.json"
expect_rc since 3
expected=()
while read -r oid size; do expected+=("extra:$oid:$size"); done <"$E2E_ROOT/after.manifest"
expect_findings since "$E2E_ROOT/since.json" "${expected[@]}"
pass "2: ferry check names exactly the 5 objects NEW received after the cut-over"

# ---- 3. the way back ----------------------------------------------------------------
run_migrate back 120 --from "file://$NEW" --to "file://$OLD" --report "$E2E_ROOT/back.json"
expect_rc back 0
assert_report "$E2E_ROOT/back.json" "copied.objects == 5" "present.objects == 60" "outcome == complete"
cat "$E2E_ROOT/old.manifest" "$E2E_ROOT/after.manifest" >"$E2E_ROOT/all.manifest"
assert_objects "$OLD" "$E2E_ROOT/all.manifest" exact
inode_list "$OLD" | grep -F -f <(cut -d' ' -f1 "$E2E_ROOT/old.manifest") >"$E2E_ROOT/old.after"
diff -u "$E2E_ROOT/old.before" "$E2E_ROOT/old.after" >"$E2E_ROOT/old-back.diff" ||
  { show "OLD's first 60 changed" "$E2E_ROOT/old-back.diff"; fail "3: the way back rewrote objects OLD had"; }
run_check equal 120 --hash --from "file://$NEW" --to "file://$OLD"
expect_rc equal 0
grep -q "the stores match" "$MIG_OUT" || { show "check" "$MIG_OUT"; fail "3: ferry check did not say the stores match"; }
pass "3: migrating back copied the 5 new objects only; ferry check --hash finds NEW and OLD equal"
