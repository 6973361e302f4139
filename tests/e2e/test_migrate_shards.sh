#!/usr/bin/env bash
# `ferry migrate --shard auto` run as an orchestrator runs it, with plain
# processes standing in for a Kubernetes Indexed Job's pods:
#
#   a. 2,000 small objects, folder -> folder, as 4 shards (2 at a time), each
#      `JOB_COMPLETION_INDEX=i FERRY_SHARD_COUNT=4 ferry migrate --shard auto
#      --report-dir R`: each says on stderr which shard it took and from
#      where, exits 0, writes R/report-shard-I-of-4.json with its `shard`;
#      each copied exactly the oids whose first 32 bits modulo 4 are I-1, and
#      the destination holds every object and nothing else.
#   b. shard 3's journal deleted (a pod rescheduled to a new node) and shard
#      3 run again: it asks the destination, copies 0 and finds its share
#      present, moves no byte, and no file of the destination is rewritten
#      (inode and mtime of every file unchanged).
#   c. `ferry report merge R` exits 0 with the totals of the whole source
#      (copied + present == 2,000 objects, the source's bytes; nothing
#      pending, failed or corrupt); --json writes the merged report.
#   d. a shard's report removed: the merge exits 1 naming the missing shard;
#      a report of another shard count among them: exit 2 naming it; an
#      empty directory: exit 2.
#   e. --shard auto with no orchestrator variable, or JOB_COMPLETION_INDEX
#      without FERRY_SHARD_COUNT: exit 2 naming the variables; a journal
#      made for 4 shards, given to a run of 2 shards with --journal: exit 2
#      saying it holds 4 and how to start over.
#
#   bash tests/e2e/test_migrate_shards.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/migrate_lib.sh"
e2e_init "$@"
# No orchestrator of the caller's may choose a shard here.
unset JOB_COMPLETION_INDEX SLURM_ARRAY_TASK_ID SLURM_ARRAY_TASK_COUNT SLURM_ARRAY_TASK_MIN \
  SLURM_ARRAY_TASK_MAX SLURM_ARRAY_TASK_STEP

SRC="$E2E_ROOT/src"
LIST="$E2E_ROOT/src.manifest"
DST="$E2E_ROOT/dst"
REPORTS="$E2E_ROOT/reports"
OBJECTS=2000
SHARDS=4
make_objects "$SRC" "$LIST" "$OBJECTS" small
BYTES=$(manifest_bytes "$LIST")

# start_shard <I>: shard I as a pod of an Indexed Job runs it, in the
# background; its pid in SHARD_PID, output in shard-I.out/.err.
start_shard() {
  JOB_COMPLETION_INDEX=$(($1 - 1)) FERRY_SHARD_COUNT=$SHARDS \
    timeout --kill-after=10 300 "$FERRY" migrate --shard auto --from "file://$SRC" \
    --to "file://$DST" --report-dir "$REPORTS" \
    >"$E2E_ROOT/shard-$1.out" 2>"$E2E_ROOT/shard-$1.err" &
  SHARD_PID=$!
  track_pid "$SHARD_PID"
}

# finish_shard <I> <pid>: waits for it; it must exit 0.
finish_shard() {
  local rc=0
  wait "$2" || rc=$?
  ((rc == 0)) || { show "shard $1 stderr" "$E2E_ROOT/shard-$1.err"; fail "shard $1 exited with $rc"; }
}

# ---- a. 4 shards, 2 at a time ---------------------------------------------------
for pair in "1 2" "3 4"; do
  read -r first second <<<"$pair"
  start_shard "$first"
  FIRST_PID=$SHARD_PID
  start_shard "$second"
  finish_shard "$first" "$FIRST_PID"
  finish_shard "$second" "$SHARD_PID"
done
for i in 1 2 3 4; do
  grep -qx "ferry migrate: shard $i/4 from JOB_COMPLETION_INDEX=$((i - 1)), FERRY_SHARD_COUNT=4" \
    "$E2E_ROOT/shard-$i.err" ||
    { show "shard $i stderr" "$E2E_ROOT/shard-$i.err"; fail "a: shard $i did not say which shard it took and from where"; }
  journal=$(journal_of "$E2E_ROOT/shard-$i.err")
  grep -q "shard $i/4 from JOB_COMPLETION_INDEX=$((i - 1)), FERRY_SHARD_COUNT=4" "$journal/ferry.log" ||
    fail "a: shard $i's log does not say which shard it took"
  read -r objects bytes <<<"$(shard_share "$i" "$SHARDS" "$LIST")"
  ((objects > 0)) || fail "a: shard $i of 4 has no object of the 2,000 (the test needs some)"
  assert_report "$REPORTS/report-shard-$i-of-4.json" "shard.index == $i" "shard.count == 4" \
    "copied.objects == $objects" "copied.bytes == $bytes" "present.objects == 0" \
    "outcome == complete"
done
assert_objects "$DST" "$LIST" exact
pass "a: 4 shards from JOB_COMPLETION_INDEX 0..3, 2 at a time: each copied exactly its share by oid, all $OBJECTS objects arrived"

# ---- b. a shard rerun without its journal -------------------------------------
read -r objects3 bytes3 <<<"$(shard_share 3 "$SHARDS" "$LIST")"
journal3=$(journal_of "$E2E_ROOT/shard-3.err")
[[ -d $journal3 ]] || fail "b: shard 3's journal '$journal3' is not a directory"
rm -rf "$journal3"
inode_list "$DST" >"$E2E_ROOT/dst.before"
start_shard 3
finish_shard 3 "$SHARD_PID"
assert_report "$REPORTS/report-shard-3-of-4.json" "shard.index == 3" "copied.objects == 0" \
  "present.objects == $objects3" "present.bytes == $bytes3" "moved_bytes == 0" "outcome == complete"
inode_list "$DST" >"$E2E_ROOT/dst.after"
cmp -s "$E2E_ROOT/dst.before" "$E2E_ROOT/dst.after" ||
  { diff "$E2E_ROOT/dst.before" "$E2E_ROOT/dst.after" | head -n 20 >&2; fail "b: the rerun rewrote files at the destination"; }
[[ -d $journal3 ]] || fail "b: the rerun did not start a new journal at $journal3"
pass "b: shard 3 rerun without its journal: copied 0, its $objects3 objects present, no file rewritten"

# ---- c. the merged report -----------------------------------------------------
run_ferry report merge-ok 60 merge "$REPORTS" --json "$E2E_ROOT/merged.json"
expect_rc "c: ferry report merge" 0
assert_report "$E2E_ROOT/merged.json" "shard_count == 4" "missing_shards.length == 0" \
  "shards.length == 4" "pending.objects == 0" "failed.objects == 0" "corrupt.objects == 0" \
  "outcome == complete" "source == file://$SRC" "destination == file://$DST"
assert_counts_add_up "$E2E_ROOT/merged.json" "$OBJECTS" "$BYTES"
assert_report "$E2E_ROOT/merged.json" "present.objects == $objects3" \
  "copied.objects == $((OBJECTS - objects3))"
grep -qx "outcome: complete" "$MIG_OUT" || { show "stdout" "$MIG_OUT"; fail "c: the merge's summary does not end with 'outcome: complete'"; }
for i in 1 2 3 4; do
  grep -q "^  shard $i/4: complete, " "$MIG_OUT" || { show "stdout" "$MIG_OUT"; fail "c: no line for shard $i"; }
done
pass "c: ferry report merge: all 4 shards complete, copied + present == $OBJECTS objects, $BYTES bytes"

# ---- d. what the merge refuses ------------------------------------------------
mv "$REPORTS/report-shard-2-of-4.json" "$E2E_ROOT/kept.json"
run_ferry report merge-missing 60 merge "$REPORTS"
expect_rc "d: merge without shard 2" 1
grep -q "shard 2 of 4 is missing: no report-shard-2-of-4.json" "$MIG_ERR" ||
  { show "stderr" "$MIG_ERR"; fail "d: the merge does not name the missing shard 2"; }
grep -q "^  shard 2/4: missing" "$MIG_OUT" || { show "stdout" "$MIG_OUT"; fail "d: the summary does not list shard 2 as missing"; }
mv "$E2E_ROOT/kept.json" "$REPORTS/report-shard-2-of-4.json"
pass "d: without shard 2's report the merge exits 1 naming it"

python3 - "$REPORTS/report-shard-1-of-4.json" "$REPORTS/report-shard-1-of-2.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
report["shard"] = {"index": 1, "count": 2}
json.dump(report, open(sys.argv[2], "w"))
PY
run_ferry report merge-mixed 60 merge "$REPORTS"
expect_rc "d: merge of 2 and 4 shards" 2
grep -q "report-shard-.*one of .* shards, but .* one of .*keep one migration's reports" "$MIG_ERR" ||
  { show "stderr" "$MIG_ERR"; fail "d: the merge of mixed counts does not say why"; }
rm "$REPORTS/report-shard-1-of-2.json"
mkdir "$E2E_ROOT/no-reports"
run_ferry report merge-empty 60 merge "$E2E_ROOT/no-reports"
expect_rc "d: merge of an empty directory" 2
run_ferry report merge-again 60 merge "$REPORTS"
expect_rc "d: merge after putting the reports back" 0
pass "d: reports of another shard count, or none, exit 2 with a message"

# ---- e. what --shard auto and a journal refuse --------------------------------
run_migrate e-none 30 --shard auto --from "file://$SRC" --to "file://$E2E_ROOT/e-dst"
expect_rc "e: --shard auto without variables" 2
for name in FERRY_SHARD JOB_COMPLETION_INDEX SLURM_ARRAY_TASK_ID; do
  grep -q "$name" "$MIG_ERR" || { show "stderr" "$MIG_ERR"; fail "e: the usage error does not name $name"; }
done
JOB_COMPLETION_INDEX=1 run_migrate e-count 30 --shard auto --from "file://$SRC" --to "file://$E2E_ROOT/e-dst"
expect_rc "e: JOB_COMPLETION_INDEX without FERRY_SHARD_COUNT" 2
grep -q "FERRY_SHARD_COUNT" "$MIG_ERR" || { show "stderr" "$MIG_ERR"; fail "e: the usage error does not name FERRY_SHARD_COUNT"; }
[[ ! -e $E2E_ROOT/e-dst ]] || fail "e: a refused run created the destination"

JOURNAL="$E2E_ROOT/journal-of-4"
run_migrate e-four 120 --shard 1/4 --journal "$JOURNAL" --from "file://$SRC" --to "file://$DST"
expect_rc "e: shard 1/4 with --journal" 0
inode_list "$DST" >"$E2E_ROOT/dst.before"
run_migrate e-two 60 --shard 1/2 --journal "$JOURNAL" --from "file://$SRC" --to "file://$DST"
expect_rc "e: shard 1/2 with the journal of shard 1/4" 2
grep -q "holds shard 1 of 4 of this migration, and this run is shard 1 of 2" "$MIG_ERR" ||
  { show "stderr" "$MIG_ERR"; fail "e: the refusal does not say which count the journal holds"; }
grep -q "new --journal" "$MIG_ERR" || { show "stderr" "$MIG_ERR"; fail "e: the refusal does not say how to start over"; }
inode_list "$DST" >"$E2E_ROOT/dst.after"
cmp -s "$E2E_ROOT/dst.before" "$E2E_ROOT/dst.after" || fail "e: the refused run changed the destination"
run_migrate e-other 60 --shard 2/4 --journal "$JOURNAL" --from "file://$SRC" --to "file://$DST"
expect_rc "e: shard 2/4 with the journal of shard 1/4" 2
pass "e: --shard auto without its variables, and a journal of 4 shards given to 2, exit 2 saying why"
