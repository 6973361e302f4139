#!/usr/bin/env bash
# `ferry migrate` between folders, a repository's .git/lfs/objects and an LFS
# server (ferry-lfs-sim), end to end:
#
#   a. folder -> folder, 200 objects (0 B, 1 B to 64 KiB, three of 1 to 3 MiB):
#      every object arrives with sha256 == oid and nothing else; exit 0; the
#      summary goes to stdout, progress to stderr; the JSON report counts
#      them. The same command again lists the source and asks the
#      destination again: the report counts this run (copied 0, present
#      200, moved_bytes 0) and no file is rewritten; a new migration (fresh
#      journal) into the full folder finds all 200 present and moves nothing.
#   f. --dry-run prints one 'would copy' line per missing object and the
#      totals, and writes nothing: not even the destination folder, no journal.
#   b. a repository's .git/lfs/objects (git lfs install --local; objects on
#      two branches, an old version of a file) -> folder.
#   c. folder -> LFS server (healthy), then LFS server -> folder with
#      --from-repo (the repository whose pointers name the objects) and with
#      --inventory FILE; byte for byte. Without either, the LFS source is
#      refused with a message naming both.
#   d. a source object with one byte changed (same size) and one that
#      vanishes after the listing, while the run is slowed by --tps: both
#      are in the summary and the report (corrupt / failed with their
#      errors), the rest is copied, exit 3; after restoring them,
#      --retry-failed copies just those two (copied 2, the rest present)
#      and exits 0.
#   g. --shard 1/2 and 2/2 into an LFS server: together they PUT every
#      object exactly once (the sim's per-oid PUT counts), each its own share.
#   e. an LFS server that answers 503 and 429 + Retry-After to batch
#      requests, 500, 429 + Retry-After and connection resets to PUTs and
#      502 to verify: every object arrives intact, exit 0. Then 2,000
#      objects with 3% of their PUTs answered 503: none fails.
#   h. a destination object with one byte changed (same size): a new
#      migration into the folder checks sizes only and leaves it (present
#      200, nothing rewritten); the completed migration's own command with
#      --verify-existing reads every copy back, replaces just that one
#      (copied 1, verified 199) and rewrites nothing else.
#   u. bad command lines (a bad --transfers, --shard or --bwlimit, the same
#      store twice, no --from, an unknown option, --from-repo with
#      --inventory) exit with 2 and a message, and create nothing.
#   v. an --inventory file with a malformed line, or with one oid at two
#      sizes, exits with 2 naming the problem and copies nothing.
#
#   FERRY_LFS_SIM=<ferry-lfs-sim> bash tests/e2e/test_migrate.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/migrate_lib.sh"
e2e_init "$@"
sim_init
# Many attempts with short backoff (ferry migrate reads git config too).
ferry_quick_retries
MIGRATIONS="$HOME/.local/state/ferry/migrations"

# ---- a. folder -> folder ----------------------------------------------------------
A="$E2E_ROOT/a-src"
A_LIST="$E2E_ROOT/a.manifest"
make_objects "$A" "$A_LIST" 200 mixed
A_BYTES=$(manifest_bytes "$A_LIST")
DA="$E2E_ROOT/a-dst"
run_migrate a1 120 --from "file://$A" --to "file://$DA" --report "$E2E_ROOT/a1.json"
expect_rc a1 0
assert_objects "$DA" "$A_LIST" exact
pass "a: folder -> folder: all 200 objects ($A_BYTES bytes) arrived with sha256 == oid, nothing else ($MIG_MS ms)"
assert_report "$E2E_ROOT/a1.json" "copied.objects == 200" "copied.bytes == $A_BYTES" \
  "present.objects == 0" "failed.objects == 0" "corrupt.objects == 0" "pending.objects == 0" \
  "failures.length == 0" "moved_bytes == $A_BYTES" "outcome == complete" "dry_run == false" \
  "source == file://$A" "destination == file://$DA"
grep -q '^copied 200 objects (.*), 0 already at the destination, 0 failed, 0 corrupt at source; ' "$MIG_OUT" ||
  { show "stdout" "$MIG_OUT"; fail "a: the summary on stdout does not say 'copied 200 objects'"; }
! grep -q '^ferry migrate:' "$MIG_OUT" || { show "stdout" "$MIG_OUT"; fail "a: progress lines went to stdout"; }
grep -q '^ferry migrate: 200/200 objects, .* (100\.0%)' "$MIG_ERR" ||
  { show "stderr" "$MIG_ERR"; fail "a: stderr has no final progress line '200/200 objects ... (100.0%)'"; }
pass "a: the summary is on stdout, the progress lines on stderr"
A_JOURNAL=$(journal_of "$MIG_ERR")
[[ -n $A_JOURNAL && $A_JOURNAL == "$MIGRATIONS"/* && -d $A_JOURNAL ]] ||
  fail "a: the journal '$A_JOURNAL' is not a directory under $MIGRATIONS"

inode_list "$DA" >"$E2E_ROOT/a-files.before"
run_migrate a2 60 --from "file://$A" --to "file://$DA" --report "$E2E_ROOT/a2.json"
expect_rc a2 0
# The report counts this run: every object asked about again and found there.
assert_report "$E2E_ROOT/a2.json" "copied.objects == 0" "present.objects == 200" \
  "present.bytes == $A_BYTES" "verified.objects == 0" "not_retried.objects == 0" \
  "moved_bytes == 0" "pending.objects == 0" "outcome == complete"
grep -q '^copied 0 objects (0 B), 200 already at the destination, 0 failed, 0 corrupt at source; 0 B in ' "$MIG_OUT" ||
  { show "stdout" "$MIG_OUT"; fail "a: the rerun's summary does not say 'copied 0 objects (0 B), 200 already at the destination'"; }
inode_list "$DA" >"$E2E_ROOT/a-files.after"
cmp -s "$E2E_ROOT/a-files.before" "$E2E_ROOT/a-files.after" || fail "a: the rerun rewrote destination files"
[[ $(journal_of "$MIG_ERR") == "$A_JOURNAL" ]] || fail "a: the rerun used another journal: $(journal_of "$MIG_ERR")"
pass "a: the same command again found all 200 at the destination (copied 0), moved 0 bytes and rewrote no file"

run_migrate a3 60 --from "file://$A" --to "file://$DA" --journal "$E2E_ROOT/a3-journal" \
  --report "$E2E_ROOT/a3.json"
expect_rc a3 0
assert_report "$E2E_ROOT/a3.json" "copied.objects == 0" "present.objects == 200" \
  "present.bytes == $A_BYTES" "moved_bytes == 0" "outcome == complete"
inode_list "$DA" >"$E2E_ROOT/a-files.after3"
cmp -s "$E2E_ROOT/a-files.before" "$E2E_ROOT/a-files.after3" ||
  fail "a: a new migration into the full folder rewrote files"
pass "a: a new migration (--journal elsewhere) found all 200 objects present and moved nothing"

# ---- f. --dry-run ------------------------------------------------------------------
DF="$E2E_ROOT/f-dst"
find "$MIGRATIONS" -mindepth 1 -maxdepth 1 | sort >"$E2E_ROOT/journals.before"
run_migrate f1 60 --from "file://$A" --to "file://$DF" --dry-run --report "$E2E_ROOT/f1.json"
expect_rc f1 0
sed -n 's/^would copy \([0-9a-f]\{64\}\) \([0-9]*\)$/\1 \2/p' "$MIG_OUT" | sort >"$E2E_ROOT/f1.would"
sort "$A_LIST" | cmp -s - "$E2E_ROOT/f1.would" ||
  { show "dry run stdout" "$MIG_OUT"; fail "f: the 'would copy <oid> <size>' lines are not exactly the 200 objects"; }
grep -q '^dry run: would copy 200 objects (.*), skip 0 already at the destination' "$MIG_OUT" ||
  { show "dry run stdout" "$MIG_OUT"; fail "f: no totals line 'dry run: would copy 200 objects'"; }
assert_report "$E2E_ROOT/f1.json" "dry_run == true" "pending.objects == 200" "pending.bytes == $A_BYTES" \
  "copied.objects == 0" "moved_bytes == 0"
[[ ! -e $DF ]] || fail "f: the dry run created the destination $DF: $(find "$DF" | head -n 3)"
find "$MIGRATIONS" -mindepth 1 -maxdepth 1 | sort | cmp -s "$E2E_ROOT/journals.before" - || fail "f: the dry run created a journal in $MIGRATIONS"
pass "f: --dry-run printed 200 'would copy' lines and the totals; no destination folder, no journal"

run_migrate f2 60 --from "file://$A" --to "file://$DA" --dry-run
expect_rc f2 0
! grep -q '^would copy ' "$MIG_OUT" || { show "stdout" "$MIG_OUT"; fail "f: a dry run into the full folder would copy something"; }
grep -q '^dry run: would copy 0 objects (0 B), skip 200 already at the destination' "$MIG_OUT" ||
  { show "stdout" "$MIG_OUT"; fail "f: the dry run into the full folder does not say 'skip 200'"; }
pass "f: a dry run into the full folder would copy nothing and skip 200"

# ---- b. a repository's .git/lfs/objects -> folder ---------------------------------
R="$E2E_ROOT/lfs-repo"
R_LIST="$E2E_ROOT/repo.manifest"
: >"$R_LIST"
# commit_lfs <path> <bytes> <message>: a random LFS file, committed; its
# object goes to the manifest.
commit_lfs() {
  random_file "$R/$1" "$2"
  echo "$(oid_of "$R/$1") $2" >>"$R_LIST"
  { git -C "$R" add -A && git -C "$R" commit -qm "$3"; } || fail "git commit in $R failed"
}
git init -q "$R"
(cd "$R" && git lfs install --local >/dev/null && git lfs track '*.bin' >/dev/null) ||
  fail "git lfs install --local / track failed in $R"
commit_lfs a.bin 1024 "a first version"
commit_lfs a.bin 2048 "a second version (the first lives only in history)"
git -C "$R" checkout -q -b side
commit_lfs "sub dir/side.bin" 70000 "an object on a side branch"
git -C "$R" checkout -q main
commit_lfs big.bin $((3 * 1024 * 1024 / 2)) "a larger object"
assert_objects "$R/.git/lfs/objects" "$R_LIST"
DB="$E2E_ROOT/b-dst"
run_migrate b1 60 --from "$R/.git/lfs/objects" --to "$DB" --report "$E2E_ROOT/b1.json"
expect_rc b1 0
assert_objects "$DB" "$R_LIST" exact
assert_same_objects "$R/.git/lfs/objects" "$DB" "$R_LIST"
assert_report "$E2E_ROOT/b1.json" "copied.objects == 4" "copied.bytes == $(manifest_bytes "$R_LIST")" \
  "outcome == complete"
pass "b: .git/lfs/objects -> folder: the 4 objects of both branches and the history arrived byte for byte"

# ---- c. folder -> LFS server -> folder ---------------------------------------------
start_sim
SIM_STORE="lfs+$(lfs_url migrate)"
run_migrate c1 60 --from "file://$DB" --to "$SIM_STORE" --report "$E2E_ROOT/c1.json"
expect_rc c1 0
assert_report "$E2E_ROOT/c1.json" "copied.objects == 4" "outcome == complete"
run_migrate c2 120 --from "file://$A" --to "$SIM_STORE" --transfers 4 --report "$E2E_ROOT/c2.json"
expect_rc c2 0
assert_report "$E2E_ROOT/c2.json" "copied.objects == 200" "copied.bytes == $A_BYTES" "outcome == complete"
cat "$A_LIST" "$R_LIST" >"$E2E_ROOT/c.manifest"
assert_objects "$SIM_ROOT" "$E2E_ROOT/c.manifest" exact
sim_puts "$E2E_ROOT/c.puts"
awk '{ print $1, 1 }' "$E2E_ROOT/c.manifest" | sort | cmp -s - "$E2E_ROOT/c.puts" ||
  { show "PUTs per oid" "$E2E_ROOT/c.puts"; fail "c: the sim did not get exactly one PUT per object"; }
pass "c: folder -> LFS server: all 204 objects stored with sha256 == oid, one PUT each"

CR="$E2E_ROOT/c-from-repo"
run_migrate c3 60 --from "$SIM_STORE" --to "$CR" --from-repo "$R" --report "$E2E_ROOT/c3.json"
expect_rc c3 0
assert_objects "$CR" "$R_LIST" exact
assert_same_objects "$R/.git/lfs/objects" "$CR" "$R_LIST"
assert_report "$E2E_ROOT/c3.json" "copied.objects == 4" "outcome == complete"
pass "c: LFS server -> folder with --from-repo: exactly the 4 objects the pointers name, byte for byte"

INVENTORY="$E2E_ROOT/inventory.txt"
{
  echo "# oid size, as listed by another tool"
  echo
  # One oid in upper case: the file may use either.
  head -n 1 "$A_LIST" | tr 'a-f' 'A-F'
  tail -n +2 "$A_LIST"
} >"$INVENTORY"
CI="$E2E_ROOT/c-from-inventory"
sim_stats "$E2E_ROOT/c4-before.json"
run_migrate c4 120 --from "$SIM_STORE" --to "$CI" --inventory "$INVENTORY" --report "$E2E_ROOT/c4.json"
expect_rc c4 0
sim_stats "$E2E_ROOT/c4-after.json"
# The 200 objects are read in pages of 100: one download batch request per
# page, not one per object.
C4_BATCHES=$(python3 -c '
import json, sys
count = [json.load(open(f)).get("requests", {}).get("batch", 0) for f in sys.argv[1:]]
print(count[1] - count[0])' "$E2E_ROOT/c4-before.json" "$E2E_ROOT/c4-after.json")
((C4_BATCHES <= 2)) || fail "c: reading 200 objects from the LFS server took $C4_BATCHES batch requests, not 2"
assert_objects "$CI" "$A_LIST" exact
assert_same_objects "$A" "$CI" "$A_LIST"
assert_report "$E2E_ROOT/c4.json" "copied.objects == 200" "copied.bytes == $A_BYTES" "outcome == complete"
pass "c: LFS server -> folder with --inventory FILE: all 200 objects byte for byte, $C4_BATCHES batch requests"

run_migrate c5 60 --from "$SIM_STORE" --to "$E2E_ROOT/c-unlisted"
[[ $MIG_RC -ne 0 ]] || fail "c: migrating from an LFS server without --from-repo or --inventory succeeded"
{ grep -q -- '--from-repo' "$MIG_ERR" && grep -q -- '--inventory' "$MIG_ERR"; } ||
  { show "stderr" "$MIG_ERR"; fail "c: the refusal does not name --from-repo and --inventory"; }
if [[ -e $E2E_ROOT/c-unlisted ]] && find "$E2E_ROOT/c-unlisted" -type f | grep -q .; then
  fail "c: the refused migration wrote objects"
fi
pass "c: an LFS server source without --from-repo or --inventory is refused (exit $MIG_RC), naming both"
stop_sim

# ---- d. corrupt and vanishing source objects, then --retry-failed ----------------
D="$E2E_ROOT/d-src"
D_LIST="$E2E_ROOT/d.manifest"
D_COUNT=15
make_objects "$D" "$D_LIST" "$D_COUNT" small
sort -o "$D_LIST" "$D_LIST"
# Copies start in oid order, at most 5 a second (--tps 5): the first object
# is corrupted before the run, the last vanishes once the listing is done,
# about 2.5 s before its turn.
read -r CORRUPT CORRUPT_SIZE < <(head -n 1 "$D_LIST")
read -r VANISH VANISH_SIZE < <(tail -n 1 "$D_LIST")
corrupt_object "$(object_path "$D" "$CORRUPT")"
DD="$E2E_ROOT/d-dst"
D_ARGS=(--from "file://$D" --to "file://$DD" --tps 5 --transfers 2 --report "$E2E_ROOT/d.json")
"$FERRY" migrate "${D_ARGS[@]}" >"$E2E_ROOT/d1.out" 2>"$E2E_ROOT/d1.err" &
D_PID=$!
track_pid "$D_PID"
# The first progress line comes once the listing is in the inventory.
listing_done() {
  kill -0 "$D_PID" 2>/dev/null || { show "stderr" "$E2E_ROOT/d1.err"; fail "d: ferry ended before its first progress line"; }
  grep -q "^ferry migrate: [0-9]*/$D_COUNT objects" "$E2E_ROOT/d1.err"
}
wait_for 30 "the first progress line of the slowed run" listing_done
mkdir -p "$E2E_ROOT/originals"
mv "$(object_path "$D" "$VANISH")" "$E2E_ROOT/originals/$VANISH"
kill -0 "$D_PID" 2>/dev/null || fail "d: ferry finished before the object could vanish"
d_ended() { ! kill -0 "$D_PID" 2>/dev/null; }
wait_for 60 "the slowed run to end" d_ended
MIG_RC=0
wait "$D_PID" || MIG_RC=$?
untrack_pid "$D_PID"
MIG_OUT="$E2E_ROOT/d1.out"
MIG_ERR="$E2E_ROOT/d1.err"
expect_rc d1 3
grep -v -e "^$VANISH " -e "^$CORRUPT " "$D_LIST" >"$E2E_ROOT/d-rest.manifest"
assert_objects "$DD" "$E2E_ROOT/d-rest.manifest" exact
{ grep -q "^copied $((D_COUNT - 2)) objects (.*), 0 already at the destination, 1 failed, 1 corrupt at source; " "$E2E_ROOT/d1.out" &&
  grep -q "^  corrupt $CORRUPT (.*): hash_mismatch: " "$E2E_ROOT/d1.out" &&
  grep -q "^  failed $VANISH (.*): not_found: " "$E2E_ROOT/d1.out"; } ||
  { show "stdout" "$E2E_ROOT/d1.out"; fail "d: the summary does not list the corrupt and the vanished object"; }
grep -q -- '--retry-failed' "$E2E_ROOT/d1.err" || { show "stderr" "$E2E_ROOT/d1.err"; fail "d: stderr does not point to --retry-failed"; }
assert_report "$E2E_ROOT/d.json" "copied.objects == $((D_COUNT - 2))" "failed.objects == 1" "corrupt.objects == 1" \
  "pending.objects == 0" "not_retried.objects == 0" "failures.length == 2" "outcome == completed_with_failures"
py_check "d: the report's failures: the corrupt one (hash_mismatch) and the vanished one (not_found)" '
import json, sys
doc = json.load(open(sys.argv[1]))
want = {sys.argv[2]: ("corrupt", "hash_mismatch", int(sys.argv[3])),
        sys.argv[4]: ("failed", "not_found", int(sys.argv[5]))}
for entry in doc["failures"]:
    state, code, size = want.pop(entry["oid"], (None, None, None))
    if state is None:
        raise SystemExit("unexpected failure %s" % entry)
    errors = entry["errors"]
    if entry["state"] != state or entry["size"] != size or entry["attempts"] < 1 or not errors:
        raise SystemExit("expected %s, %d bytes, with errors: %s" % (state, size, entry))
    last = errors[-1]
    if last["code"] != code or entry["oid"] not in last["message"] or last["at_ms"] <= 0:
        raise SystemExit("expected the last error to be %s naming the oid: %s" % (code, last))
    if len(entry.get("cid", "")) != 12 or entry["cid"].strip("0123456789abcdef"):
        raise SystemExit("expected the correlation id of its last copy: %s" % entry)
if want:
    raise SystemExit("missing from failures: %s" % sorted(want))
' "$E2E_ROOT/d.json" "$CORRUPT" "$CORRUPT_SIZE" "$VANISH" "$VANISH_SIZE"
pass "d: corrupt and vanished objects were reported, the other $((D_COUNT - 2)) copied, exit 3"

restore_object "$(object_path "$D" "$CORRUPT")"
restore_object "$(object_path "$D" "$VANISH")"
run_migrate d2 60 "${D_ARGS[@]}" --retry-failed
expect_rc d2 0
grep -q '^ferry migrate: 2 failed object(s) will be tried again' "$MIG_ERR" ||
  { show "stderr" "$MIG_ERR"; fail "d: --retry-failed did not say it takes the 2 failed objects again"; }
assert_objects "$DD" "$D_LIST" exact
# The counts are of this run: the two copied now, the rest found at the destination.
assert_report "$E2E_ROOT/d.json" "copied.objects == 2" "copied.bytes == $((CORRUPT_SIZE + VANISH_SIZE))" \
  "present.objects == $((D_COUNT - 2))" "failed.objects == 0" "corrupt.objects == 0" "not_retried.objects == 0" \
  "failures.length == 0" "moved_bytes == $((CORRUPT_SIZE + VANISH_SIZE))" "outcome == complete"
pass "d: after restoring them, --retry-failed copied just the 2 objects (moved $((CORRUPT_SIZE + VANISH_SIZE)) bytes), exit 0"

# ---- g. shards --------------------------------------------------------------------
SIM_ROOT="$E2E_ROOT/sim-shards"
start_sim
SIM_STORE="lfs+$(lfs_url shards)"
run_migrate g1 120 --from "file://$A" --to "$SIM_STORE" --shard 1/2 --report "$E2E_ROOT/g1.json"
expect_rc g1 0
G1_JOURNAL=$(journal_of "$MIG_ERR")
find "$SIM_ROOT" -type f -printf '%f\n' | sort >"$E2E_ROOT/g1.stored"
sim_puts "$E2E_ROOT/g1.puts"
SHARD1=$(wc -l <"$E2E_ROOT/g1.stored")
((SHARD1 > 0 && SHARD1 < 200)) || fail "g: shard 1/2 copied $SHARD1 of 200 objects"
awk '{ print $1 }' "$E2E_ROOT/g1.puts" | cmp -s "$E2E_ROOT/g1.stored" - ||
  fail "g: shard 1/2 sent PUTs for other objects than those it stored"
assert_report "$E2E_ROOT/g1.json" "copied.objects == $SHARD1" "outcome == complete"
run_migrate g2 120 --from "file://$A" --to "$SIM_STORE" --shard 2/2 --transfers auto \
  --report "$E2E_ROOT/g2.json"
expect_rc g2 0
[[ $(journal_of "$MIG_ERR") != "$G1_JOURNAL" ]] || fail "g: both shards used the journal $G1_JOURNAL"
assert_report "$E2E_ROOT/g2.json" "copied.objects == $((200 - SHARD1))" "present.objects == 0" \
  "outcome == complete"
assert_objects "$SIM_ROOT" "$A_LIST" exact
sim_puts "$E2E_ROOT/g.puts"
awk '{ print $1, 1 }' "$A_LIST" | sort | cmp -s - "$E2E_ROOT/g.puts" ||
  { show "PUTs per oid" "$E2E_ROOT/g.puts"; fail "g: the two shards did not PUT every object exactly once"; }
pass "g: --shard 1/2 ($SHARD1 objects) and 2/2 ($((200 - SHARD1)), --transfers auto) PUT each of the 200 objects exactly once"
stop_sim

# ---- e. faults at the LFS server ---------------------------------------------------
E="$E2E_ROOT/e-src"
E_LIST="$E2E_ROOT/e.manifest"
make_objects "$E" "$E_LIST" 40 medium
SCENARIO="$E2E_ROOT/migrate-faults.json"
# Spaced so that no more than one request in a row fails (a circuit opens
# after 5): the first batch request (the destination check for all 40) and
# the second fail, PUT numbers 1, 4, 7, 10 and 13 fail, and so does the
# third verify call.
cat >"$SCENARIO" <<'JSON'
{
  "name": "migrate-destination-faults",
  "comment": "5xx, 429 with Retry-After and connection resets for a migration into the server.",
  "rules": [
    {"name": "batch unavailable", "match": {"endpoint": "batch"}, "fault": {"status": 503}, "sequence": [true]},
    {"name": "batch rate limited", "match": {"endpoint": "batch"}, "fault": {"status": 429, "retry_after": "1"}, "sequence": [false, true]},
    {"name": "PUT server error", "match": {"endpoint": "upload"}, "fault": {"status": 500}, "sequence": [false, true, false, false, false, false, false, false, false, false, true]},
    {"name": "PUT connection reset", "match": {"endpoint": "upload"}, "fault": {"reset_after_bytes": 1000}, "sequence": [false, false, false, false, true, false, false, false, false, false, false, false, false, true]},
    {"name": "PUT rate limited", "match": {"endpoint": "upload"}, "fault": {"status": 429, "retry_after": "1"}, "sequence": [false, false, false, false, false, false, false, true]},
    {"name": "verify bad gateway", "match": {"endpoint": "verify"}, "fault": {"status": 502}, "sequence": [false, false, true]}
  ]
}
JSON
check_scenario "$SCENARIO"
SIM_ROOT="$E2E_ROOT/sim-faults"
start_sim "$SCENARIO"
run_migrate e1 120 --from "file://$E" --to "lfs+$(lfs_url faults)" --transfers 4 --report "$E2E_ROOT/e1.json"
expect_rc e1 0
assert_objects "$SIM_ROOT" "$E_LIST" exact
assert_report "$E2E_ROOT/e1.json" "copied.objects == 40" "failed.objects == 0" "outcome == complete"
assert_every_rule_fired "$SCENARIO"
expect_stats "fault_statuses.503 >= 1" "fault_statuses.429 >= 2" "fault_statuses.500 >= 2" \
  "fault_statuses.502 >= 1" "faults.retry_after >= 2" "faults.reset_after_bytes >= 2" \
  "events.hash_mismatch == 0" "events.size_mismatch == 0"
grep -q 'Retry-After' "$MIG_ERR" || { show "stderr" "$MIG_ERR"; fail "e: ferry did not say it waits for Retry-After"; }
((MIG_MS >= 1000)) || fail "e: the run took $MIG_MS ms: a 'Retry-After: 1' was not waited out"
pass "e: under 503/429/500/502 answers and resets, all 40 objects arrived intact, exit 0 ($MIG_MS ms)"
stop_sim
assert_objects "$SIM_ROOT" "$E_LIST" exact

# Many objects with a few transient failures spread among them: each object
# has its own retries, so none may fail however many the whole run meets.
R="$E2E_ROOT/r-src"
R_LIST="$E2E_ROOT/r.manifest"
make_objects "$R" "$R_LIST" 2000 small
cat >"$E2E_ROOT/scattered-503.json" <<'JSON'
{"seed": 5, "rules": [{"match": {"endpoint": "upload"}, "fault": {"status": 503}, "probability": 0.03}]}
JSON
SIM_ROOT="$E2E_ROOT/sim-scattered"
start_sim "$E2E_ROOT/scattered-503.json"
run_migrate e2 120 --from "file://$R" --to "lfs+$(lfs_url scattered)" --report "$E2E_ROOT/e2.json"
expect_rc e2 0
assert_objects "$SIM_ROOT" "$R_LIST" exact
assert_report "$E2E_ROOT/e2.json" "copied.objects == 2000" "failed.objects == 0" "outcome == complete"
expect_stats "fault_statuses.503 >= 30"
pass "e: 2,000 objects with 3% of PUTs answered 503: every one retried on its own and arrived, exit 0 ($MIG_MS ms)"
stop_sim

# ---- h. damaged destination objects -----------------------------------------------
# A new migration into the folder of (a) asks the folder with stat: a copy
# of the right size counts as present, so one with a byte changed is not
# noticed (as with S3's HEAD, see test_s3_migrate.sh) and stays.
read -r BAD1 _ < <(awk '$2 > 100' "$A_LIST" | head -n 1)
corrupt_object "$(object_path "$DA" "$BAD1")"
inode_list "$DA" >"$E2E_ROOT/h-files.before"
run_migrate h1 60 --from "file://$A" --to "file://$DA" --journal "$E2E_ROOT/h-journal" \
  --report "$E2E_ROOT/h1.json"
expect_rc h1 0
assert_report "$E2E_ROOT/h1.json" "copied.objects == 0" "present.objects == 200" "verified.objects == 0" \
  "moved_bytes == 0" "outcome == complete"
[[ $(oid_of "$(object_path "$DA" "$BAD1")") != "$BAD1" ]] ||
  fail "h: without --verify-existing the damaged copy of $BAD1 was replaced: the size-only check is not what ran"
inode_list "$DA" | cmp -s "$E2E_ROOT/h-files.before" - || fail "h: the new migration rewrote destination files"
pass "h: a new migration into the folder checked sizes only: the damaged copy (same size) stayed, nothing rewritten"

# The completed migration of (a), its own command again with --verify-existing:
# every copy is read back and hashed; the damaged one is replaced, the 199
# others are verified and left alone.
run_migrate h2 60 --from "file://$A" --to "file://$DA" --verify-existing --report "$E2E_ROOT/h2.json"
expect_rc h2 0
[[ $(oid_of "$(object_path "$DA" "$BAD1")") == "$BAD1" ]] ||
  { show "report" "$E2E_ROOT/h2.json"; fail "h: the completed migration's command with --verify-existing left the damaged copy of $BAD1 in place"; }
assert_objects "$DA" "$A_LIST" exact
assert_report "$E2E_ROOT/h2.json" "copied.objects == 1" "verified.objects == 199" "present.objects == 0" \
  "outcome == complete"
inode_list "$DA" | grep -v "$BAD1" >"$E2E_ROOT/h-files.after"
grep -v "$BAD1" "$E2E_ROOT/h-files.before" | cmp -s - "$E2E_ROOT/h-files.after" ||
  fail "h: --verify-existing rewrote intact objects"
pass "h: the completed migration's command with --verify-existing re-copied the damaged object and verified the 199 others"

# ---- u. usage errors ----------------------------------------------------------------
# usage_error <what> <args...>: ferry migrate refuses the command line with
# exit code 2 and a message, and creates nothing.
usage_error() {
  local what=$1
  shift
  run_migrate usage 30 "$@"
  [[ $MIG_RC -eq 2 && -s $MIG_ERR ]] ||
    { show "stderr" "$MIG_ERR"; fail "u: $what: exit $MIG_RC, expected 2 with a message"; }
  [[ ! -e $E2E_ROOT/u-dst ]] || fail "u: $what: the destination was created"
}
usage_error "--transfers 0" --from "file://$A" --to "file://$E2E_ROOT/u-dst" --transfers 0
usage_error "--shard 3/2" --from "file://$A" --to "file://$E2E_ROOT/u-dst" --shard 3/2
usage_error "--bwlimit fast" --from "file://$A" --to "file://$E2E_ROOT/u-dst" --bwlimit fast
usage_error "the same store twice" --from "file://$A" --to "$A"
usage_error "no --from" --to "file://$E2E_ROOT/u-dst"
usage_error "an unknown option" --from "file://$A" --to "file://$E2E_ROOT/u-dst" --bogus
usage_error "--from-repo with --inventory" --from "file://$A" --to "file://$E2E_ROOT/u-dst" \
  --from-repo "$R" --inventory "$INVENTORY"
pass "u: bad command lines exit with 2, say why and create nothing"

# ---- v. a bad inventory file ------------------------------------------------------------
# A malformed line, and an oid listed twice with two sizes, are usage errors:
# exit 2 with a message naming the problem, and nothing is copied.
read -r V_OID V_SIZE < <(head -n 1 "$A_LIST")
printf '%s %s\nnot a line\n' "$V_OID" "$V_SIZE" >"$E2E_ROOT/v-bad.txt"
run_migrate v1 30 --from "file://$A" --to "file://$E2E_ROOT/v-dst" --inventory "$E2E_ROOT/v-bad.txt"
[[ $MIG_RC -eq 2 ]] && grep -q "v-bad.txt line 2: expected '<sha256 oid> <size>'" "$MIG_ERR" ||
  { show "stderr" "$MIG_ERR"; fail "v: a malformed inventory line: exit $MIG_RC, expected 2 naming line 2"; }
printf '%s %s\n%s %s\n' "$V_OID" "$V_SIZE" "$V_OID" "$((V_SIZE + 1))" >"$E2E_ROOT/v-twice.txt"
run_migrate v2 30 --from "file://$A" --to "file://$E2E_ROOT/v-dst" --inventory "$E2E_ROOT/v-twice.txt"
[[ $MIG_RC -eq 2 ]] && grep -q "object $V_OID is listed twice, with sizes $V_SIZE and $((V_SIZE + 1))" "$MIG_ERR" ||
  { show "stderr" "$MIG_ERR"; fail "v: an oid listed with two sizes: exit $MIG_RC, expected 2 naming both sizes"; }
[[ -z $(find "$E2E_ROOT/v-dst" -type f 2>/dev/null) ]] || fail "v: a bad inventory file still copied objects"
pass "v: a malformed inventory line and an oid listed with two sizes exit with 2, say why and copy nothing"
