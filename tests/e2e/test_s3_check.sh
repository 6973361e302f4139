#!/usr/bin/env bash
# `ferry migrate` reruns and `ferry check` against an S3 bucket (the radosgw
# of the ctest fixture), end to end:
#
#   1. folder -> S3, 30 objects: exit 0, boto3 reads every key back with
#      sha256 == oid.
#   2. boto3 deletes 2 keys; the same command again PUTs exactly those 2
#      (copied 2, present 28), exit 0. It asks the bucket with one walk of
#      its listing (ListObjectsV2), not a HEAD per object: radosgw's request
#      log shows a listing request and no HEAD of the 28 keys it found.
#   3. boto3 deletes every key: the same command copies all 30 again
#      (copied 30, present 0), exit 0, every key intact.
#   4. ferry check folder vs bucket: equal -> exit 0, 'the stores match',
#      extra 0 (a bucket can list). Then boto3 deletes one key (missing),
#      puts a valid object only the bucket has (extra), overwrites one key
#      with a shorter body (size_differs) and one with other bytes of the
#      same size: exit 3 with missing, extra and size_differs each reported
#      once; with --hash also content_differs for the same-size one.
#      radosgw's log shows no PUT, POST or DELETE from any of the checks.
#
#   ctest -R e2e.test_s3_check   (the radosgw fixture sets FERRY_S3_* and FERRY_RADOSGW_LOG)
set -euo pipefail
# Before lib.sh: its sandbox unsets every FERRY_* variable.
source "$(dirname "${BASH_SOURCE[0]}")/../s3/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/migrate_lib.sh"
s3_e2e_init ferry-e2e-check "$@"
# ferry check keeps its listing in a scratch directory under $TMPDIR.
export TMPDIR="$E2E_ROOT/tmp"
mkdir -p "$TMPDIR"

COUNT=30
PREFIX=checked/lfs
SRC="$E2E_ROOT/src"
LIST="$E2E_ROOT/objects.manifest"
make_objects "$SRC" "$LIST" "$COUNT" medium
sort -o "$LIST" "$LIST"
BYTES=$(manifest_bytes "$LIST")
BUCKET_STORE=$(s3_store_url "$PREFIX")
ARGS=(--from "file://$SRC" --to "$BUCKET_STORE")

# assert_bucket_holds <what>: the bucket holds the manifest's objects intact.
assert_bucket_holds() {
  s3_bucket_holds "$S3_BUCKET" "$PREFIX" "$LIST" || fail "$1: the bucket does not hold the $COUNT objects intact"
}

# delete_keys <oid>...: boto3 deletes those objects' keys.
delete_keys() {
  s3_py '
prefix = sys.argv[2]
for oid in sys.argv[3:]:
    s3.delete_object(Bucket=sys.argv[1], Key="%s/%s/%s/%s" % (prefix, oid[:2], oid[2:4], oid))
' "$S3_BUCKET" "$PREFIX" "$@" || fail "boto3 could not delete keys"
}

# put_key <oid> <file>: boto3 writes <file> as that object's key.
put_key() {
  s3_interop put "$S3_BUCKET" "$(s3_nested_key "$PREFIX" "$1")" "$2" || fail "boto3 could not write the key of $1"
}

# ---- 1. folder -> S3 --------------------------------------------------------------------
run_migrate up 120 "${ARGS[@]}" --report "$E2E_ROOT/up.json"
expect_rc up 0
assert_report "$E2E_ROOT/up.json" "copied.objects == $COUNT" "copied.bytes == $BYTES" "outcome == complete"
assert_bucket_holds up
pass "1: folder -> S3: all $COUNT objects in the bucket with sha256 == oid"

# ---- 2. two keys deleted ------------------------------------------------------------------
read -r GONE1 GONE1_SIZE < <(sed -n 3p "$LIST")
read -r GONE2 GONE2_SIZE < <(sed -n 17p "$LIST")
delete_keys "$GONE1" "$GONE2"
MARK=$(s3_log_lines)
run_migrate again 120 "${ARGS[@]}" --report "$E2E_ROOT/again.json"
expect_rc again 0
assert_report "$E2E_ROOT/again.json" "copied.objects == 2" "copied.bytes == $((GONE1_SIZE + GONE2_SIZE))" \
  "present.objects == $((COUNT - 2))" "moved_bytes == $((GONE1_SIZE + GONE2_SIZE))" "outcome == complete"
assert_counts_add_up "$E2E_ROOT/again.json" "$COUNT" "$BYTES"
assert_bucket_holds again
s3_requests_since "$MARK" "$E2E_ROOT/again-requests.tsv"
awk -F'\t' '$1 == "PUT" { print $2 }' "$E2E_ROOT/again-requests.tsv" | sort >"$E2E_ROOT/again-puts"
printf '%s\n' "$(s3_nested_key "$PREFIX" "$GONE1")" "$(s3_nested_key "$PREFIX" "$GONE2")" | sort |
  cmp -s - "$E2E_ROOT/again-puts" ||
  { show "PUT keys" "$E2E_ROOT/again-puts"; fail "2: the rerun did not PUT exactly the 2 deleted keys once each"; }
pass "2: boto3 deleted 2 keys; the same command PUT exactly those 2 again (copied 2, present $((COUNT - 2)))"
py_check "2: the rerun asked the bucket with its listing, not a HEAD per object" '
import sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
gone = set(sys.argv[2:])
# max-keys=1 is the check when the store is opened, not the walk.
listings = [r for r in rows if r[0] == "GET" and not r[1] and "list-type=2" in r[2] and "max-keys=1" not in r[2]]
heads = [r for r in rows if r[0] == "HEAD"]
found_heads = [r for r in heads if r[1] not in gone]
if not listings:
    raise SystemExit("no ListObjectsV2 request in the rerun: %s" % sorted(set(r[0] for r in rows)))
if found_heads:
    raise SystemExit("%d HEADs of keys the listing found, e.g. %s" % (len(found_heads), found_heads[0][1]))
print("%d listing request(s), %d HEAD(s) in all" % (len(listings), len(heads)))
' "$E2E_ROOT/again-requests.tsv" "$(s3_nested_key "$PREFIX" "$GONE1")" "$(s3_nested_key "$PREFIX" "$GONE2")"

# ---- 3. every key deleted -------------------------------------------------------------------
mapfile -t ALL < <(cut -d' ' -f1 "$LIST")
delete_keys "${ALL[@]}"
[[ -z $(s3_interop ls "$S3_BUCKET" "$PREFIX/") ]] || fail "3: the bucket still lists keys under $PREFIX/"
run_migrate wiped 120 "${ARGS[@]}" --report "$E2E_ROOT/wiped.json"
expect_rc wiped 0
assert_report "$E2E_ROOT/wiped.json" "copied.objects == $COUNT" "copied.bytes == $BYTES" "present.objects == 0" \
  "moved_bytes == $BYTES" "outcome == complete"
assert_counts_add_up "$E2E_ROOT/wiped.json" "$COUNT" "$BYTES"
grep -q "^copied $COUNT objects (.*), 0 already at the destination, 0 failed, 0 corrupt at source; " "$MIG_OUT" ||
  { show "stdout" "$MIG_OUT"; fail "3: the summary does not say 'copied $COUNT objects, 0 already at the destination'"; }
assert_bucket_holds wiped
pass "3: after every key was deleted, the same command copied all $COUNT again, exit 0"

# ---- 4. ferry check ---------------------------------------------------------------------------
CHECK_MARK=$(s3_log_lines)
run_check same 60 "${ARGS[@]}" --report "$E2E_ROOT/same.json"
expect_rc same 0
expect_findings same "$E2E_ROOT/same.json"
assert_report "$E2E_ROOT/same.json" "outcome == match" "source_objects.objects == $COUNT" \
  "matched.objects == $COUNT" "extra.objects == 0" "findings.length == 0"
run_check same-hash 60 "${ARGS[@]}" --hash --report "$E2E_ROOT/same-hash.json"
expect_rc same-hash 0
assert_report "$E2E_ROOT/same-hash.json" "outcome == match" "hashed.objects == $COUNT" "extra.objects == 0"
s3_requests_since "$CHECK_MARK" "$E2E_ROOT/check1-requests.tsv"
pass "4: folder and bucket match (exit 0, extra 0), with and without --hash"

read -r MISSING MISSING_SIZE < <(sed -n 5p "$LIST")
read -r SHORT SHORT_SIZE < <(sed -n 9p "$LIST")
read -r OTHER OTHER_SIZE < <(sed -n 21p "$LIST")
delete_keys "$MISSING"
head -c $((SHORT_SIZE / 2)) "$(object_path "$SRC" "$SHORT")" >"$E2E_ROOT/short-body"
put_key "$SHORT" "$E2E_ROOT/short-body"
random_file "$E2E_ROOT/other-body" "$OTHER_SIZE"
put_key "$OTHER" "$E2E_ROOT/other-body"
random_file "$E2E_ROOT/extra.bin" 4321
EXTRA=$(oid_of "$E2E_ROOT/extra.bin")
put_key "$EXTRA" "$E2E_ROOT/extra.bin"

CHECK_MARK2=$(s3_log_lines)
run_check differ 60 "${ARGS[@]}" --report "$E2E_ROOT/differ.json"
expect_rc differ 3
expect_findings differ "$E2E_ROOT/differ.json" "missing:$MISSING:$MISSING_SIZE" "extra:$EXTRA:4321" \
  "size_differs:$SHORT:$SHORT_SIZE:$((SHORT_SIZE / 2))"
assert_report "$E2E_ROOT/differ.json" "outcome == differ" "source_objects.objects == $COUNT" \
  "matched.objects == $((COUNT - 2))" "missing.objects == 1" "extra.objects == 1" "extra.bytes == 4321" \
  "size_differs.objects == 1" "content_differs.objects == 0" "unreadable.objects == 0"
pass "4: a missing, an extra and a short key: each reported once, the same-size overwrite not seen (exit 3)"
run_check differ-hash 60 "${ARGS[@]}" --hash --report "$E2E_ROOT/differ-hash.json"
expect_rc differ-hash 3
expect_findings differ-hash "$E2E_ROOT/differ-hash.json" "missing:$MISSING:$MISSING_SIZE" "extra:$EXTRA:4321" \
  "size_differs:$SHORT:$SHORT_SIZE:$((SHORT_SIZE / 2))" "content_differs:$OTHER:$OTHER_SIZE"
assert_report "$E2E_ROOT/differ-hash.json" "outcome == differ" "matched.objects == $((COUNT - 3))" \
  "hashed.objects == $((COUNT - 3))" "content_differs.objects == 1" "corrupt_at_source.objects == 0"
pass "4: with --hash the key overwritten with other bytes of the same size is content_differs"

# The checks wrote nothing: no PUT, POST or DELETE in radosgw's log, in
# the two windows that hold only the checks (not the boto3 changes).
s3_requests_since "$CHECK_MARK2" "$E2E_ROOT/check2-requests.tsv"
cat "$E2E_ROOT/check1-requests.tsv" "$E2E_ROOT/check2-requests.tsv" >"$E2E_ROOT/check-requests.tsv"
py_check "4: radosgw saw no PUT, POST or DELETE from the checks" '
import collections, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
writes = [r for r in rows if r[0] not in ("GET", "HEAD")]
if writes:
    raise SystemExit("%d requests that are not reads, e.g. %s" % (len(writes), writes[:3]))
if not rows:
    raise SystemExit("no request of the checks in the log")
print("requests: %s" % dict(collections.Counter(r[0] for r in rows)))
' "$E2E_ROOT/check-requests.tsv"
! find "$TMPDIR" -mindepth 1 | grep -q . || fail "4: ferry check left scratch files in $TMPDIR"
