#!/usr/bin/env bash
# A journal lost or damaged mid-migration loses nothing: the rerun still
# ends true. These are the recovery steps docs/operations.md gives.
#
#   l. lost: `ferry migrate` (folder -> folder, 300 objects) is killed with
#      SIGKILL a third of the way, its whole directory (journal, inventory,
#      log) is deleted, and the same command runs again: exit 0, every
#      object at the destination with sha256 == oid, the report complete
#      and its counts adding up, the objects the killed run stored counted
#      as present.
#   d. deleted under a running migration: the journal directory is removed
#      while the run copies. Whatever that run then reports, a success must
#      be true; the next run ends with exit 0 and every object intact.
#   c. corrupt: killed again, and the journal's and the inventory's RocksDB
#      manifests overwritten with garbage. The same command moves both
#      databases aside (kept, named on stderr), starts new ones and ends
#      true, as in l.
#   a. an agent's journal corrupt: `git push` fails and the message says to
#      move the journal aside; after the `mv` it names, the push succeeds
#      and the store holds every object.
#
#   bash tests/e2e/test_journal_damage.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/migrate_lib.sh"
e2e_init "$@"

COUNT=300
SRC="$E2E_ROOT/src"
DST="$E2E_ROOT/dst"
LIST="$E2E_ROOT/objects.manifest"
make_objects "$SRC" "$LIST" "$COUNT" small
BYTES=$(manifest_bytes "$LIST")
# 150 copies a second: a run takes about two seconds, long enough to be caught.
ARGS=(--from "file://$SRC" --to "file://$DST" --tps 150)

stored_count() {
  find "$DST" -type f -name '[0-9a-f]*' 2>/dev/null | wc -l
}

# start_run <name>: ferry migrate in the background; RUN_PID, RUN_ERR.
start_run() {
  RUN_ERR="$E2E_ROOT/$1.err"
  "$FERRY" migrate "${ARGS[@]}" >"$E2E_ROOT/$1.out" 2>"$RUN_ERR" &
  RUN_PID=$!
  track_pid "$RUN_PID"
}
run_alive() {
  kill -0 "$RUN_PID" 2>/dev/null ||
    { show "stderr" "$RUN_ERR"; fail "ferry migrate ended before a third of the objects were copied"; }
}
a_third_stored() { run_alive && (($(stored_count) >= COUNT / 3)); }

# kill_a_third_of_the_way <name>: start, wait for a third, SIGKILL.
kill_a_third_of_the_way() {
  local rc=0
  start_run "$1"
  wait_for 60 "a third of the objects at the destination" a_third_stored
  kill -9 "$RUN_PID"
  { wait "$RUN_PID"; } 2>/dev/null || rc=$?
  untrack_pid "$RUN_PID"
  ((rc == 137)) || { show "stderr" "$RUN_ERR"; fail "$1: ferry exited with $rc before SIGKILL reached it"; }
  STORED_AT_KILL=$(stored_count)
  MIGRATION_DIR=$(journal_of "$RUN_ERR")
  [[ -d $MIGRATION_DIR/journal && -d $MIGRATION_DIR/inventory ]] ||
    fail "$1: the run named no migration directory with a journal and an inventory: '$MIGRATION_DIR'"
}

# rerun_ends_true <name>: the same command again ends complete and true.
rerun_ends_true() {
  local name=$1
  run_migrate "$name" 120 "${ARGS[@]}" --report "$E2E_ROOT/$name.json"
  expect_rc "$name" 0
  assert_objects "$DST" "$LIST" exact
  assert_report "$E2E_ROOT/$name.json" "outcome == complete" "failed.objects == 0" "corrupt.objects == 0" \
    "pending.objects == 0"
  assert_counts_add_up "$E2E_ROOT/$name.json" "$COUNT" "$BYTES"
}

# ---- l. the migration's directory deleted after a kill ------------------------------
kill_a_third_of_the_way l-killed
rm -rf "$MIGRATION_DIR"
rerun_ends_true l-rerun
assert_report "$E2E_ROOT/l-rerun.json" "present.objects >= $STORED_AT_KILL" "copied.objects >= 1"
pass "l: killed at $STORED_AT_KILL of $COUNT, journal and inventory deleted: the rerun copied the rest, exit 0, all $COUNT intact"

# ---- d. the journal deleted under a running migration ---------------------------------
rm -rf "$DST" "$MIGRATION_DIR"
start_run d-running
wait_for 60 "a third of the objects at the destination" a_third_stored
MIGRATION_DIR=$(journal_of "$RUN_ERR")
rm -rf "$MIGRATION_DIR/journal"
rc=0
wait "$RUN_PID" || rc=$?
untrack_pid "$RUN_PID"
if ((rc == 0)); then
  # A run that says it finished must be right about the destination.
  assert_objects "$DST" "$LIST" exact
fi
note "d: the run whose journal was deleted under it exited with $rc"
rerun_ends_true d-rerun
pass "d: journal deleted while the run copied: that run's exit $rc was true, the next run ended true"

# ---- c. journal and inventory corrupt after a kill ------------------------------------
rm -rf "$DST" "$MIGRATION_DIR"
kill_a_third_of_the_way c-killed
for db in journal inventory; do
  found=0
  for manifest in "$MIGRATION_DIR/$db"/MANIFEST-*; do
    [[ -f $manifest ]] || continue
    head -c 4096 /dev/urandom >"$manifest"
    found=1
  done
  ((found)) || fail "c: no RocksDB manifest in $MIGRATION_DIR/$db"
done
rerun_ends_true c-rerun
for db in journal inventory; do
  grep -q "moved the damaged database to $MIGRATION_DIR/$db.damaged-" "$MIG_ERR" ||
    { show "stderr" "$MIG_ERR"; fail "c: the rerun did not say where the damaged $db went"; }
  compgen -G "$MIGRATION_DIR/$db.damaged-*/MANIFEST-*" >/dev/null ||
    fail "c: the damaged $db was not kept in $MIGRATION_DIR/$db.damaged-*"
done
assert_report "$E2E_ROOT/c-rerun.json" "present.objects >= $STORED_AT_KILL"
pass "c: journal and inventory corrupt after a kill: both moved aside and kept, the rerun ended true"

# ---- a. an agent's journal corrupt ---------------------------------------------------
STORE="$E2E_ROOT/store"
new_repo repo
install_ferry "$E2E_ROOT/repo" "$STORE"
add_lfs_files "$E2E_ROOT/repo" one.bin=1000 two.bin=20000
must_git 60 "$E2E_ROOT/a-first.log" -C "$E2E_ROOT/repo" push origin main
JOURNAL="$E2E_ROOT/repo/.git/lfs/ferry"
[[ -f $JOURNAL/CURRENT ]] || fail "a: no journal at $JOURNAL after a push"
for manifest in "$JOURNAL"/MANIFEST-*; do head -c 4096 /dev/urandom >"$manifest"; done
add_lfs_files "$E2E_ROOT/repo" three.bin=30000
rc=0
timed_git 60 "$E2E_ROOT/a-damaged.log" -C "$E2E_ROOT/repo" push origin main || rc=$?
((rc != 0)) || fail "a: git push succeeded through a journal ferry cannot open"
grep -qF "move the journal aside (mv $JOURNAL $JOURNAL.damaged)" "$E2E_ROOT/a-damaged.log" ||
  { show "git push" "$E2E_ROOT/a-damaged.log"; fail "a: the failed push did not say how to recover"; }
mv "$JOURNAL" "$JOURNAL.damaged"
must_git 60 "$E2E_ROOT/a-after.log" -C "$E2E_ROOT/repo" push origin main
for f in one.bin two.bin three.bin; do assert_stored "$STORE" "$E2E_ROOT/repo/$f"; done
pass "a: a corrupt agent journal fails the push with the way out; after the mv it names, the push stores every object"
