#!/usr/bin/env bash
# A finished `ferry migrate` must be true of the destination: every run lists
# the source again and asks the destination again about every object, and
# its counts are of that run. Folders and an LFS server (ferry-lfs-sim):
#
#   w. a finished folder -> folder migration of 50 objects, then the
#      destination folder is removed (rm -rf): the same command again
#      copies all 50 again (sha256 == oid), reports copied 50 / present 0,
#      says 'copied 50 objects' and exits 0. (A run that trusts its journal
#      says copied 50 and copies nothing.)
#   l. one destination object deleted and another truncated: the same
#      command copies exactly those two again (copied 2, present 48); the
#      other 48 files are not rewritten (inode and mtime unchanged).
#   n. nothing to do: copied 0, present 50, moved_bytes 0, exit 0, and the
#      summary says so; no file is rewritten.
#   y. --dry-run into a folder that does not exist: exit 0, one 'would copy'
#      line per object, and neither the folder nor a journal is created. A
#      dry run asks with stat: a same-size damaged copy counts as there.
#   r. an object corrupt at the source fails (exit 3); after the source is
#      repaired, a plain rerun keeps it failed (exit 3, not_retried 1, not
#      copied); --retry-failed copies it (exit 0, copied 1, present 49).
#   s. an object removed from the source after a finished migration is no
#      longer counted: the next run's counts add up to 49.
#   p. folder -> LFS server, then the server's storage loses one object:
#      the same command PUTs exactly that object again (per-oid PUT counts
#      from the sim), asks about the 50 in batch requests, exits 0.
#   b. the server holds all 50 but its first batch requests answer 503, so
#      the page cannot be asked: each copy asks again and writes nothing,
#      and the report counts the 50 as present, not copied (no PUT).
#
# Every report's counts add up: each listed object in exactly one of
# copied, present, verified, failed, corrupt and pending.
#
#   FERRY_LFS_SIM=<ferry-lfs-sim> bash tests/e2e/test_migrate_truth.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/migrate_lib.sh"
e2e_init "$@"
sim_init
ferry_quick_retries
MIGRATIONS="$HOME/.local/state/ferry/migrations"

COUNT=50
SRC="$E2E_ROOT/src"
LIST="$E2E_ROOT/objects.manifest"
make_objects "$SRC" "$LIST" "$COUNT" mixed
sort -o "$LIST" "$LIST"
BYTES=$(manifest_bytes "$LIST")
DST="$E2E_ROOT/dst"
ARGS=(--from "file://$SRC" --to "file://$DST")

# ---- w. the destination folder removed after a finished migration -----------------
run_migrate w1 60 "${ARGS[@]}" --report "$E2E_ROOT/w1.json"
expect_rc w1 0
assert_objects "$DST" "$LIST" exact
assert_report "$E2E_ROOT/w1.json" "copied.objects == $COUNT" "present.objects == 0" "outcome == complete"
JOURNAL=$(journal_of "$MIG_ERR")
[[ -n $JOURNAL && -d $JOURNAL ]] || fail "w: the run named no journal directory on stderr"
rm -rf "$DST"
run_migrate w2 60 "${ARGS[@]}" --report "$E2E_ROOT/w2.json"
expect_rc w2 0
[[ $(journal_of "$MIG_ERR") == "$JOURNAL" ]] || fail "w: the rerun used another journal: $(journal_of "$MIG_ERR")"
assert_objects "$DST" "$LIST" exact
assert_report "$E2E_ROOT/w2.json" "copied.objects == $COUNT" "copied.bytes == $BYTES" "present.objects == 0" \
  "verified.objects == 0" "failed.objects == 0" "corrupt.objects == 0" "pending.objects == 0" \
  "not_retried.objects == 0" "moved_bytes == $BYTES" "outcome == complete"
assert_counts_add_up "$E2E_ROOT/w2.json" "$COUNT" "$BYTES"
grep -q "^copied $COUNT objects (.*), 0 already at the destination, 0 failed, 0 corrupt at source; " "$MIG_OUT" ||
  { show "stdout" "$MIG_OUT"; fail "w: the summary does not say 'copied $COUNT objects, 0 already at the destination'"; }
pass "w: after rm -rf of the destination, the same command copied all $COUNT objects again (sha256 == oid), exit 0"

# ---- l. one object deleted, one truncated at the destination ------------------------
# Two objects of more than 100 bytes (the 0 B one cannot be truncated).
read -r GONE GONE_SIZE < <(awk '$2 > 100' "$LIST" | sed -n 1p)
read -r SHORT SHORT_SIZE < <(awk '$2 > 100' "$LIST" | sed -n 2p)
rm "$(object_path "$DST" "$GONE")"
truncate -s $((SHORT_SIZE / 2)) "$(object_path "$DST" "$SHORT")"
inode_list "$DST" | grep -v -e "$GONE" -e "$SHORT" >"$E2E_ROOT/l-files.before"
[[ $(wc -l <"$E2E_ROOT/l-files.before") -eq $((COUNT - 2)) ]] || fail "l: expected $((COUNT - 2)) untouched files"
run_migrate l1 60 "${ARGS[@]}" --report "$E2E_ROOT/l1.json"
expect_rc l1 0
assert_objects "$DST" "$LIST" exact
assert_report "$E2E_ROOT/l1.json" "copied.objects == 2" "copied.bytes == $((GONE_SIZE + SHORT_SIZE))" \
  "present.objects == $((COUNT - 2))" "present.bytes == $((BYTES - GONE_SIZE - SHORT_SIZE))" \
  "moved_bytes == $((GONE_SIZE + SHORT_SIZE))" "outcome == complete"
assert_counts_add_up "$E2E_ROOT/l1.json" "$COUNT" "$BYTES"
inode_list "$DST" | grep -v -e "$GONE" -e "$SHORT" | cmp -s "$E2E_ROOT/l-files.before" - ||
  fail "l: the rerun rewrote objects that were intact at the destination"
pass "l: the rerun copied exactly the deleted and the truncated object again, and rewrote none of the other $((COUNT - 2))"

# ---- n. nothing to do ---------------------------------------------------------------
inode_list "$DST" >"$E2E_ROOT/n-files.before"
run_migrate n1 60 "${ARGS[@]}" --report "$E2E_ROOT/n1.json"
expect_rc n1 0
assert_report "$E2E_ROOT/n1.json" "copied.objects == 0" "copied.bytes == 0" "present.objects == $COUNT" \
  "present.bytes == $BYTES" "verified.objects == 0" "moved_bytes == 0" "outcome == complete"
assert_counts_add_up "$E2E_ROOT/n1.json" "$COUNT" "$BYTES"
grep -q "^copied 0 objects (0 B), $COUNT already at the destination, 0 failed, 0 corrupt at source; 0 B in " "$MIG_OUT" ||
  { show "stdout" "$MIG_OUT"; fail "n: the summary does not say 'copied 0 objects (0 B), $COUNT already at the destination'"; }
inode_list "$DST" | cmp -s "$E2E_ROOT/n-files.before" - || fail "n: a rerun with nothing to do rewrote files"
pass "n: a rerun with nothing to do: copied 0, $COUNT at the destination, 0 bytes moved, no file rewritten"

# ---- y. --dry-run -------------------------------------------------------------------
NOWHERE="$E2E_ROOT/not-there/dst"
mkdir -p "$MIGRATIONS"
find "$MIGRATIONS" -mindepth 1 -maxdepth 1 | sort >"$E2E_ROOT/journals.before"
run_migrate y1 60 --from "file://$SRC" --to "file://$NOWHERE" --dry-run --report "$E2E_ROOT/y1.json"
expect_rc y1 0
sed -n 's/^would copy \([0-9a-f]\{64\}\) \([0-9]*\)$/\1 \2/p' "$MIG_OUT" | sort >"$E2E_ROOT/y1.would"
cmp -s "$LIST" "$E2E_ROOT/y1.would" ||
  { show "dry run stdout" "$MIG_OUT"; fail "y: the 'would copy <oid> <size>' lines are not exactly the $COUNT objects"; }
assert_report "$E2E_ROOT/y1.json" "dry_run == true" "pending.objects == $COUNT" "copied.objects == 0" \
  "moved_bytes == 0"
[[ ! -e $E2E_ROOT/not-there ]] || fail "y: the dry run created $(find "$E2E_ROOT/not-there" | head -n 3)"
find "$MIGRATIONS" -mindepth 1 -maxdepth 1 | sort | cmp -s "$E2E_ROOT/journals.before" - ||
  fail "y: the dry run created a journal in $MIGRATIONS"
pass "y: --dry-run into a folder that does not exist: $COUNT 'would copy' lines, no folder, no journal"

# A dry run asks with stat, as a migration does: a damaged copy of the
# right size counts as there (only --verify-existing reads copies back).
read -r FLIP _ < <(awk '$2 > 100' "$LIST" | sed -n 3p)
corrupt_object "$(object_path "$DST" "$FLIP")"
run_migrate y2 60 "${ARGS[@]}" --dry-run
expect_rc y2 0
grep -q "^dry run: would copy 0 objects (0 B), skip $COUNT already at the destination" "$MIG_OUT" ||
  { show "dry run stdout" "$MIG_OUT"; fail "y: a dry run into the full folder does not say 'would copy 0 objects ... skip $COUNT'"; }
restore_object "$(object_path "$DST" "$FLIP")"
inode_list "$DST" | cut -d' ' -f1 | cmp -s <(cut -d' ' -f1 "$E2E_ROOT/n-files.before") - ||
  fail "y: the dry run changed the files of the destination"
pass "y: a dry run into the full folder (one same-size damaged copy) would copy nothing: it asks sizes, reads nothing back"

# ---- r. failed objects stay failed until --retry-failed ------------------------------
read -r BAD BAD_SIZE < <(awk '$2 > 100' "$LIST" | sed -n 4p)
corrupt_object "$(object_path "$SRC" "$BAD")"
RDST="$E2E_ROOT/r-dst"
R_ARGS=(--from "file://$SRC" --to "file://$RDST" --report "$E2E_ROOT/r.json")
run_migrate r1 60 "${R_ARGS[@]}"
expect_rc r1 3
assert_report "$E2E_ROOT/r.json" "copied.objects == $((COUNT - 1))" "corrupt.objects == 1" \
  "not_retried.objects == 0" "outcome == completed_with_failures"
[[ ! -e $(object_path "$RDST" "$BAD") ]] || fail "r: the corrupt source object was copied"
# The source is repaired; a plain rerun does not try the failed object again.
restore_object "$(object_path "$SRC" "$BAD")"
run_migrate r2 60 "${R_ARGS[@]}"
expect_rc r2 3
assert_report "$E2E_ROOT/r.json" "copied.objects == 0" "present.objects == $((COUNT - 1))" \
  "corrupt.objects == 1" "not_retried.objects == 1" "not_retried.bytes == $BAD_SIZE" \
  "failures.length == 1" "outcome == completed_with_failures"
assert_counts_add_up "$E2E_ROOT/r.json" "$COUNT" "$BYTES"
[[ ! -e $(object_path "$RDST" "$BAD") ]] || fail "r: a plain rerun copied the object that failed in an earlier run"
grep -q "^copied 0 objects (0 B), $((COUNT - 1)) already at the destination, 0 failed, 1 corrupt at source (1 of them from an earlier run, not tried again)" "$MIG_OUT" ||
  { show "stdout" "$MIG_OUT"; fail "r: the summary does not say the corrupt object is from an earlier run"; }
pass "r: a plain rerun kept the object that was corrupt at the source failed (exit 3, not_retried 1)"
run_migrate r3 60 "${R_ARGS[@]}" --retry-failed
expect_rc r3 0
assert_objects "$RDST" "$LIST" exact
assert_report "$E2E_ROOT/r.json" "copied.objects == 1" "copied.bytes == $BAD_SIZE" \
  "present.objects == $((COUNT - 1))" "corrupt.objects == 0" "failed.objects == 0" \
  "not_retried.objects == 0" "outcome == complete"
assert_counts_add_up "$E2E_ROOT/r.json" "$COUNT" "$BYTES"
pass "r: --retry-failed copied it (copied 1, present $((COUNT - 1))), exit 0"

# ---- s. an object removed from the source --------------------------------------------
read -r LEFT LEFT_SIZE < <(awk '$2 > 100' "$LIST" | sed -n 5p)
mkdir -p "$E2E_ROOT/originals"
mv "$(object_path "$SRC" "$LEFT")" "$E2E_ROOT/originals/$LEFT"
run_migrate s1 60 "${ARGS[@]}" --report "$E2E_ROOT/s1.json"
expect_rc s1 0
assert_report "$E2E_ROOT/s1.json" "copied.objects == 0" "present.objects == $((COUNT - 1))" \
  "present.bytes == $((BYTES - LEFT_SIZE))" "outcome == complete"
assert_counts_add_up "$E2E_ROOT/s1.json" "$((COUNT - 1))" "$((BYTES - LEFT_SIZE))"
grep -q "^copied 0 objects (0 B), $((COUNT - 1)) already at the destination, " "$MIG_OUT" ||
  { show "stdout" "$MIG_OUT"; fail "s: the summary still counts the object removed from the source"; }
restore_object "$(object_path "$SRC" "$LEFT")"
pass "s: an object removed from the source is no longer counted (the run's counts add up to $((COUNT - 1)))"

# ---- p. folder -> LFS server; the server loses one object ------------------------------
start_sim ""
SIM_STORE="lfs+$(lfs_url truth)"
P_ARGS=(--from "file://$SRC" --to "$SIM_STORE" --transfers 4)
run_migrate p1 60 "${P_ARGS[@]}" --report "$E2E_ROOT/p1.json"
expect_rc p1 0
assert_objects "$SIM_ROOT" "$LIST" exact
assert_report "$E2E_ROOT/p1.json" "copied.objects == $COUNT" "outcome == complete"
read -r LOST LOST_SIZE < <(awk '$2 > 100' "$LIST" | sed -n 6p)
rm "$(object_path "$SIM_ROOT" "$LOST")"
sim_stats "$E2E_ROOT/p-before.json"
run_migrate p2 60 "${P_ARGS[@]}" --report "$E2E_ROOT/p2.json"
expect_rc p2 0
assert_objects "$SIM_ROOT" "$LIST" exact
assert_report "$E2E_ROOT/p2.json" "copied.objects == 1" "copied.bytes == $LOST_SIZE" \
  "present.objects == $((COUNT - 1))" "moved_bytes == $LOST_SIZE" "outcome == complete"
assert_counts_add_up "$E2E_ROOT/p2.json" "$COUNT" "$BYTES"
sim_puts "$E2E_ROOT/p.puts"
awk -v lost="$LOST" '{ print $1, ($1 == lost ? 2 : 1) }' "$LIST" | cmp -s - "$E2E_ROOT/p.puts" ||
  { show "PUTs per oid" "$E2E_ROOT/p.puts"; fail "p: the rerun did not PUT exactly the lost object again"; }
sim_stats "$E2E_ROOT/p-after.json"
py_check "p: the rerun asked the server about the $COUNT objects in batch requests (of up to 100)" '
import json, sys
before, after = (json.load(open(p))["requests"] for p in sys.argv[1:3])
batch = after["batch"] - before["batch"]
# One to ask about all 50, one to upload the lost one (and a few retries at most).
if not 1 <= batch <= 4:
    raise SystemExit("%d batch requests" % batch)
print("%d batch requests, %d PUT" % (batch, after["upload"] - before["upload"]))
' "$E2E_ROOT/p-before.json" "$E2E_ROOT/p-after.json"
pass "p: the LFS server lost one object; the same command PUT exactly it again (1 PUT), exit 0"
stop_sim

# ---- b. the server cannot be asked about the page -------------------------------------
# Every object is there (from p), but the first batch requests answer 503:
# each copy asks the server again, finds the object and writes nothing. The
# report must count those objects as present, not as copied.
cat >"$E2E_ROOT/batch-503.json" <<'JSON'
{"rules": [{"match": {"endpoint": "batch"}, "fault": {"status": 503}, "times": 3}]}
JSON
start_sim "$E2E_ROOT/batch-503.json"
sim_stats "$E2E_ROOT/b-before.json"
run_migrate b 60 --from "file://$SRC" --to "lfs+$(lfs_url truth)" --transfers 4 --report "$E2E_ROOT/b.json"
expect_rc b 0
grep -q "cannot ask" "$MIG_ERR" || { show "stderr" "$MIG_ERR"; fail "b: the page's batch request did not fail as the scenario says"; }
assert_objects "$SIM_ROOT" "$LIST" exact
assert_report "$E2E_ROOT/b.json" "copied.objects == 0" "present.objects == $COUNT" "moved_bytes == 0" \
  "outcome == complete"
assert_counts_add_up "$E2E_ROOT/b.json" "$COUNT" "$BYTES"
sim_stats "$E2E_ROOT/b-after.json"
py_check "b: no PUT reached the server" '
import json, sys
before, after = (json.load(open(p))["requests"] for p in sys.argv[1:3])
if after["upload"] != before["upload"]:
    raise SystemExit("%d PUTs" % (after["upload"] - before["upload"]))
' "$E2E_ROOT/b-before.json" "$E2E_ROOT/b-after.json"
pass "b: the page could not be asked; the copies found all $COUNT objects there and the report says present, not copied"
stop_sim
