#!/usr/bin/env bash
# `ferry migrate` into and out of an S3 bucket (the radosgw of the ctest
# fixture), end to end:
#
#   1. folder -> S3, 50 objects (0 B, 1 B to 128 KiB, one of 33 MiB + 3 B):
#      exit 0; boto3 lists exactly the 50 keys <prefix>/<oid[0:2]>/<oid[2:4]>/<oid>
#      with their sizes and reads each back with sha256 == oid; radosgw's
#      request log shows one PUT per small object and a multipart upload
#      of 5 parts (8 MiB each) for the large one; the report counts them.
#   2. The same command again asks the bucket again about every object
#      (the report counts this run: copied 0, present 50), sends no PUT or
#      POST and moves 0 bytes.
#   3. S3 -> folder (the bucket listed with ListObjectsV2): all 50 objects
#      arrive byte for byte; exit 0.
#   4. boto3 overwrites one object with other bytes of the same size: a new
#      migration takes the bucket's sizes at their word (all present); a new
#      one with --verify-existing reads the copies back and PUTs only the
#      damaged one again (copied 1, verified 49, present 0), which then
#      reads back intact.
#   5. No multipart upload is left in progress.
#   6. Into an empty prefix, a run (listing walked: every object missing,
#      copied without a HEAD) is killed after its first copies; boto3 then
#      stores one object the run had not copied. The next run lists the
#      source again (every object pending again) and walks the destination's
#      listing again rather than trust the killed run's: it does not PUT
#      that object, and ends with all of them there.
#
#   ctest -R e2e.test_s3_migrate   (the radosgw fixture sets FERRY_S3_* and FERRY_RADOSGW_LOG)
set -euo pipefail
# Before lib.sh: its sandbox unsets every FERRY_* variable.
source "$(dirname "${BASH_SOURCE[0]}")/../s3/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/migrate_lib.sh"
s3_e2e_init ferry-e2e-migrate "$@"
# The 33 MiB object goes up as a multipart upload of 8 MiB parts.
export FERRY_S3_MULTIPART_THRESHOLD=32MiB

COUNT=50
PREFIX=migrated/lfs
SRC="$E2E_ROOT/src"
LIST="$E2E_ROOT/objects.manifest"
make_objects "$SRC" "$LIST" "$COUNT" large
BYTES=$(manifest_bytes "$LIST")
BUCKET_STORE=$(s3_store_url "$PREFIX")
read -r BIG_OID BIG_SIZE < <(sort -k2,2n "$LIST" | tail -n 1)

# ---- 1. folder -> S3 -----------------------------------------------------------------
MARK=$(s3_log_lines)
run_migrate up 180 --from "file://$SRC" --to "$BUCKET_STORE" --report "$E2E_ROOT/up.json"
expect_rc up 0
assert_report "$E2E_ROOT/up.json" "copied.objects == $COUNT" "copied.bytes == $BYTES" \
  "failed.objects == 0" "corrupt.objects == 0" "pending.objects == 0" "moved_bytes == $BYTES" \
  "outcome == complete"
s3_bucket_holds "$S3_BUCKET" "$PREFIX" "$LIST" || fail "boto3 does not find the migrated objects intact"
pass "folder -> S3: boto3 lists exactly the $COUNT keys with their sizes and reads each with sha256 == oid ($MIG_MS ms)"

s3_requests_since "$MARK" "$E2E_ROOT/up-requests.tsv"
py_check "radosgw's log: one PUT per small object, a multipart upload of 5 parts for the $BIG_SIZE-byte one" '
import collections, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
prefix, big, manifest = sys.argv[2], sys.argv[3], sys.argv[4]
key = lambda oid: "%s/%s/%s/%s" % (prefix, oid[:2], oid[2:4], oid)
plain = collections.Counter(r[1] for r in rows if r[0] == "PUT" and not r[2] and r[3] == "200")
for line in open(manifest):
    oid = line.split()[0]
    if oid != big and plain[key(oid)] != 1:
        raise SystemExit("%d PUTs of %s" % (plain[key(oid)], key(oid)))
starts = [r for r in rows if r[0] == "POST" and r[1] == key(big) and r[2] == "uploads"]
parts = collections.Counter(r[2].split("&")[0] for r in rows
                            if r[0] == "PUT" and r[1] == key(big) and "partNumber=" in r[2] and r[3] == "200")
done = [r for r in rows if r[0] == "POST" and r[1] == key(big) and r[2].startswith("uploadId=") and r[3] == "200"]
want = {"partNumber=%d" % n: 1 for n in range(1, 6)}
if len(starts) != 1 or dict(parts) != want or len(done) != 1 or plain[key(big)]:
    raise SystemExit("large object: %d starts, parts %s, %d completions, %d plain PUTs"
                     % (len(starts), dict(parts), len(done), plain[key(big)]))
print("%d single PUTs, 1 multipart upload of %d parts" % (sum(plain.values()), len(parts)))
' "$E2E_ROOT/up-requests.tsv" "$PREFIX" "$BIG_OID" "$LIST"

# ---- 2. the same command again ---------------------------------------------------------
MARK=$(s3_log_lines)
run_migrate up-again 120 --from "file://$SRC" --to "$BUCKET_STORE" --report "$E2E_ROOT/up.json"
expect_rc up-again 0
assert_report "$E2E_ROOT/up.json" "copied.objects == 0" "present.objects == $COUNT" "present.bytes == $BYTES" \
  "moved_bytes == 0" "outcome == complete"
s3_requests_since "$MARK" "$E2E_ROOT/again-requests.tsv"
! awk -F'\t' '$1 == "PUT" || $1 == "POST"' "$E2E_ROOT/again-requests.tsv" | grep -q . ||
  { show "requests" "$E2E_ROOT/again-requests.tsv"; fail "the rerun wrote to the bucket"; }
pass "the same command again found all $COUNT in the bucket (copied 0), sent no PUT or POST and moved 0 bytes"

# ---- 3. S3 -> folder ---------------------------------------------------------------------
BACK="$E2E_ROOT/back"
run_migrate down 180 --from "$BUCKET_STORE" --to "file://$BACK" --report "$E2E_ROOT/down.json"
expect_rc down 0
assert_objects "$BACK" "$LIST" exact
assert_same_objects "$SRC" "$BACK" "$LIST"
assert_report "$E2E_ROOT/down.json" "copied.objects == $COUNT" "copied.bytes == $BYTES" \
  "pending.objects == 0" "outcome == complete"
pass "S3 -> folder: all $COUNT objects (the bucket's listing) arrived byte for byte ($MIG_MS ms)"

# ---- 4. --verify-existing ---------------------------------------------------------------
# boto3 overwrites one object with other bytes of the same size. A new
# migration takes the bucket at its word (its listing or HEAD: the key is
# there with its size); with --verify-existing it reads every copy back,
# finds the one damaged and copies that object again.
read -r BAD_OID BAD_SIZE < <(awk '$2 > 1000 && $2 < 1048576' "$LIST" | head -n 1)
BAD_KEY=$(s3_nested_key "$PREFIX" "$BAD_OID")
random_file "$E2E_ROOT/other-bytes" "$BAD_SIZE"
s3_interop put "$S3_BUCKET" "$BAD_KEY" "$E2E_ROOT/other-bytes" || fail "boto3 could not overwrite $BAD_KEY"
run_migrate trusting 120 --from "file://$SRC" --to "$BUCKET_STORE" --journal "$E2E_ROOT/journal-trusting" \
  --report "$E2E_ROOT/trusting.json"
expect_rc trusting 0
assert_report "$E2E_ROOT/trusting.json" "copied.objects == 0" "present.objects == $COUNT"
[[ $(s3_interop sha256 "$S3_BUCKET" "$BAD_KEY") != "$BAD_OID" ]] ||
  fail "without --verify-existing the damaged $BAD_KEY was replaced: the check is not telling"
MARK=$(s3_log_lines)
run_migrate verify 120 --from "file://$SRC" --to "$BUCKET_STORE" --journal "$E2E_ROOT/journal-verify" \
  --verify-existing --report "$E2E_ROOT/verify.json"
expect_rc verify 0
assert_report "$E2E_ROOT/verify.json" "copied.objects == 1" "copied.bytes == $BAD_SIZE" \
  "verified.objects == $((COUNT - 1))" "present.objects == 0" "outcome == complete"
[[ $(s3_interop sha256 "$S3_BUCKET" "$BAD_KEY") == "$BAD_OID" ]] ||
  fail "--verify-existing left the damaged $BAD_KEY in the bucket"
s3_requests_since "$MARK" "$E2E_ROOT/verify-requests.tsv"
awk -F'\t' '$1 == "PUT" { print $2 }' "$E2E_ROOT/verify-requests.tsv" | sort -u >"$E2E_ROOT/verify-puts"
[[ $(cat "$E2E_ROOT/verify-puts") == "$BAD_KEY" ]] ||
  { show "PUT keys" "$E2E_ROOT/verify-puts"; fail "--verify-existing wrote other keys than $BAD_KEY"; }
pass "--verify-existing found the damaged $BAD_KEY (the bucket's HEAD alone does not) and wrote only it again"

# ---- 5. nothing left in progress -----------------------------------------------------------
s3_interop uploads "$S3_BUCKET" "" >"$E2E_ROOT/uploads.out" || fail "boto3 could not list multipart uploads"
[[ ! -s $E2E_ROOT/uploads.out ]] || { show "uploads in progress" "$E2E_ROOT/uploads.out"; fail "multipart uploads were left in progress"; }
pass "no multipart upload is left in progress in $S3_BUCKET"

# ---- 6. an earlier run's listing is not taken at its word ----------------------------------
STALE_PREFIX=stale/lfs
STALE_STORE=$(s3_store_url "$STALE_PREFIX")
STALE_JOURNAL="$E2E_ROOT/stale-journal"
MARK=$(s3_log_lines)
"$FERRY" migrate --from "file://$SRC" --to "$STALE_STORE" --journal "$STALE_JOURNAL" --transfers 1 \
  --tps 20 >"$E2E_ROOT/stale1.out" 2>"$E2E_ROOT/stale1.err" &
STALE_PID=$!
track_pid "$STALE_PID"
copied_some() { [[ $(grep -c 'oid=[0-9a-f]* msg="copy: done"' "$STALE_JOURNAL/ferry.log" 2>/dev/null) -ge 3 ]]; }
wait_for 120 "the first run to copy 3 objects" copied_some
kill -9 "$STALE_PID"
{ wait "$STALE_PID"; } 2>/dev/null || true
untrack_pid "$STALE_PID"
s3_requests_since "$MARK" "$E2E_ROOT/stale1-requests.tsv"
# The HEAD that confirms a completed multipart upload (it follows the
# Complete POST in the log, which is in order of completion) is the upload's
# own check, not a question about presence.
py_check "the first run asked no HEAD of the objects its listing walk found missing" '
import sys
completed, heads = set(), []
for r in (line.rstrip("\n").split("\t") for line in open(sys.argv[1])):
    if not r[1].startswith(sys.argv[2] + "/"):
        continue
    if r[0] == "POST" and "uploadId=" in r[2]:
        completed.add(r[1])
    elif r[0] == "HEAD" and r[1] not in completed:
        heads.append(r)
if heads:
    raise SystemExit("%d HEADs, e.g. %s" % (len(heads), heads[0][1]))
' "$E2E_ROOT/stale1-requests.tsv" "$STALE_PREFIX"
# An object the killed run had not copied (the run copies in oid order).
LATE_OID=$(awk '{print $1}' "$LIST" | sort | tail -n 1)
grep -q "oid=$LATE_OID msg=\"copy: done\"" "$STALE_JOURNAL/ferry.log" && fail "the killed run already copied $LATE_OID"
LATE_KEY="$STALE_PREFIX/${LATE_OID:0:2}/${LATE_OID:2:2}/$LATE_OID"
s3_interop put "$S3_BUCKET" "$LATE_KEY" "$(object_path "$SRC" "$LATE_OID")" || fail "boto3 could not store $LATE_KEY"
MARK=$(s3_log_lines)
run_migrate stale2 180 --from "file://$SRC" --to "$STALE_STORE" --journal "$STALE_JOURNAL"
expect_rc stale2 0
s3_requests_since "$MARK" "$E2E_ROOT/stale2-requests.tsv"
! awk -F'\t' -v key="$LATE_KEY" '$1 == "PUT" && $2 == key' "$E2E_ROOT/stale2-requests.tsv" | grep -q . ||
  fail "the rerun PUT $LATE_KEY, which another client stored after the killed run walked the listing"
s3_bucket_holds "$S3_BUCKET" "$STALE_PREFIX" "$LIST" || fail "the rerun did not leave every object intact in $STALE_PREFIX"
pass "a rerun walks the listing again: the object stored meanwhile was not PUT, and all $COUNT are there"
