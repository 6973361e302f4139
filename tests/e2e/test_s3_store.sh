#!/usr/bin/env bash
# An S3 bucket as ferry's store, end to end: the real git-lfs hands every
# transfer to `ferry agent`, which talks to the radosgw of the ctest fixture
# (`ferry install --store 's3://bucket/prefix?endpoint=…'`, keys in
# AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).
#
#   1. push, fresh clone, pull of 0 B, 1 B, 4 KiB, 5 MiB + 1 B and 40 MiB - 1 B
#      files, byte for byte; boto3 reads every object back at
#      <prefix>/<oid[0:2]>/<oid[2:4]>/<oid> with its size and sha256 == oid;
#      radosgw's request log shows the small ones went up in one PUT, the
#      larger ones as multipart uploads of 2 and 8 parts (5 MiB parts), and
#      the 40 MiB download came as ranged GETs that tile the object, several
#      at once.
#   2. objects only boto3 wrote (one PUT, one multipart) at the keys of the
#      layout, their pointers pushed without git-lfs's pre-push hook, are
#      downloaded by ferry into a fresh clone and match.
#   3. layout=flat: an object lands at <prefix>/<oid> and comes back.
#   4. no multipart upload is left in progress in the bucket.
#   5. a bad secret: pull and push fail, git's output names
#      SignatureDoesNotMatch, and no secret shows up in any output, log or
#      journal; nothing is stored.
#
#   ctest -R e2e.test_s3_store   (the radosgw fixture sets FERRY_S3_* and FERRY_RADOSGW_LOG)
set -euo pipefail
# Before lib.sh: its sandbox unsets every FERRY_* variable.
source "$(dirname "${BASH_SOURCE[0]}")/../s3/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
s3_e2e_init ferry-e2e-store "$@"

MIB=$((1 << 20))
PREFIX=team/lfs
# Multipart from 5 MiB on, in 5 MiB parts: 5 MiB + 1 B takes 2 parts, 40 MiB - 1 B takes 8.
export FERRY_S3_MULTIPART_THRESHOLD=5MiB FERRY_S3_PART_SIZE=5MiB FERRY_S3_UPLOAD_CONCURRENCY=4
# Downloads from 8 MiB on use parallel ranges (global: clones get it too).
git config --global ferry.parallelThreshold 8MiB
git config --global ferry.parallelStreams 4

use_s3_store() { install_ferry_url "$1" "$(s3_store_url "$PREFIX")"; }

# assert_in_bucket <key> <file>: boto3 lists <key> with the file's size and
# reads it back with sha256 == the file's oid.
assert_in_bucket() {
  local key=$1 file=$2 listed got
  listed=$(s3_interop ls "$S3_BUCKET" "$key") || fail "boto3 could not list $key"
  [[ $listed == "$key $(stat -c %s "$file")" ]] ||
    fail "boto3 lists '$listed' under $key, expected '$key $(stat -c %s "$file")'"
  got=$(s3_interop sha256 "$S3_BUCKET" "$key") || fail "boto3 could not read $key"
  [[ $got == "$(oid_of "$file")" ]] || fail "boto3 reads $key with sha256 $got, expected its oid $(oid_of "$file")"
}

# ---- 1. round trip ---------------------------------------------------------------
FILES=(empty.bin=0 one-byte.bin=1 "sub dir/four-kib.bin=4096" five-mib-plus-one.bin=$((5 * MIB + 1))
  forty-mib.bin=$((40 * MIB - 1)))
REPO="$E2E_ROOT/repo"
CLONE="$E2E_ROOT/repo-clone"
new_repo repo
use_s3_store "$REPO"
add_lfs_files "$REPO" "${FILES[@]}"
NAMES=()
for spec in "${FILES[@]}"; do NAMES+=("${spec%=*}"); done
mapfile -t OIDS < <(lfs_oids "$REPO" "${NAMES[@]}")
((${#OIDS[@]} == 4)) || fail "expected 4 LFS objects, got ${#OIDS[@]}"

MARK=$(s3_log_lines)
must_git 120 "$E2E_ROOT/push.log" -C "$REPO" push origin main
PUSH_MS=$ELAPSED_MS
for name in "${NAMES[@]}"; do
  [[ -s $REPO/$name ]] || continue
  assert_in_bucket "$(s3_nested_key "$PREFIX" "$(oid_of "$REPO/$name")")" "$REPO/$name"
done
[[ $(s3_interop ls "$S3_BUCKET" "" | wc -l) -eq 4 ]] ||
  { s3_interop ls "$S3_BUCKET" "" >"$E2E_ROOT/ls.out"; show "bucket" "$E2E_ROOT/ls.out"; fail "the bucket holds other keys than the 4 objects"; }
pass "one git push stored 4 objects at <prefix>/ab/cd/<oid>; boto3 reads each with its size and sha256 == oid ($PUSH_MS ms)"

s3_requests_since "$MARK" "$E2E_ROOT/push-requests.tsv"
py_check "radosgw's log: single PUTs below 5 MiB, multipart uploads of 2 and 8 parts above" '
import collections, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
prefix, spec = sys.argv[2], sys.argv[3:]
report = []
for oid, size, parts in zip(spec[0::3], map(int, spec[1::3]), map(int, spec[2::3])):
    key = "%s/%s/%s/%s" % (prefix, oid[:2], oid[2:4], oid)
    puts = [r for r in rows if r[0] == "PUT" and r[1] == key and r[3] == "200"]
    starts = [r for r in rows if r[0] == "POST" and r[1] == key and r[2] == "uploads"]
    numbers = collections.Counter(q.split("&")[0] for q in (r[2] for r in puts) if q)
    if parts == 0:
        if len(puts) != 1 or puts[0][2] or starts:
            raise SystemExit("%d-byte object: expected one plain PUT, got %s" % (size, puts + starts))
    else:
        want = ["partNumber=%d" % n for n in range(1, parts + 1)]
        plain = [r for r in puts if not r[2]]
        if len(starts) != 1 or sorted(numbers) != sorted(want) or plain or set(numbers.values()) != {1}:
            raise SystemExit("%d-byte object: expected one multipart upload of parts 1..%d, got %s %s"
                             % (size, parts, starts, dict(numbers)))
        done = [r for r in rows if r[0] == "POST" and r[1] == key and r[2].startswith("uploadId=") and r[3] == "200"]
        if len(done) != 1:
            raise SystemExit("%d-byte object: %d successful CompleteMultipartUpload requests" % (size, len(done)))
    report.append("%d B: %s" % (size, "%d parts" % parts if parts else "1 PUT"))
print(", ".join(report))
' "$E2E_ROOT/push-requests.tsv" "$PREFIX" \
  "$(oid_of "$REPO/one-byte.bin")" 1 0 "$(oid_of "$REPO/sub dir/four-kib.bin")" 4096 0 \
  "$(oid_of "$REPO/five-mib-plus-one.bin")" $((5 * MIB + 1)) 2 \
  "$(oid_of "$REPO/forty-mib.bin")" $((40 * MIB - 1)) 8

clone_pointers "$E2E_ROOT/repo.git" "$CLONE" "$E2E_ROOT/clone.log"
use_s3_store "$CLONE"
MARK=$(s3_log_lines)
must_git 120 "$E2E_ROOT/pull.log" -C "$CLONE" lfs pull
PULL_MS=$ELAPSED_MS
assert_checkout "$REPO" "$CLONE" "${NAMES[@]}"
must_git 60 "$E2E_ROOT/fsck.log" -C "$CLONE" lfs fsck
pass "git lfs pull in a fresh clone: all ${#NAMES[@]} files byte-identical, sha256 == oid ($PULL_MS ms)"

BIG_OID=$(oid_of "$REPO/forty-mib.bin")
s3_requests_since "$MARK" "$E2E_ROOT/pull-requests.tsv"
py_check "the 40 MiB object came as ranged GETs that tile it, several at once" '
import sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
key, size = sys.argv[2], int(sys.argv[3])
gets = [r for r in rows if r[0] == "GET" and r[1] == key]
if any(r[3] != "206" or not r[4].startswith("bytes=") for r in gets):
    raise SystemExit("GETs that are not answered ranges: %s" % gets)
spans = sorted(tuple(int(x) for x in r[4][len("bytes="):].split("-")) for r in gets)
end = 0
for first, last in spans:
    if first != end:
        raise SystemExit("the ranges do not tile the object at byte %d: %s" % (end, spans))
    end = last + 1
if end != size or len(spans) < 2:
    raise SystemExit("%d ranges up to byte %d of %d: %s" % (len(spans), end, size, spans))
times = sorted((int(r[5]), int(r[5]) + int(r[6])) for r in gets)
overlapping = sum(1 for a, b in zip(times, times[1:]) if b[0] < a[1])
if overlapping == 0:
    raise SystemExit("the %d ranges were fetched one after the other: %s" % (len(spans), times))
print("%d ranges, %d started while another was running" % (len(spans), overlapping))
' "$E2E_ROOT/pull-requests.tsv" "$(s3_nested_key "$PREFIX" "$BIG_OID")" $((40 * MIB - 1))

status_json "$REPO" "$E2E_ROOT/push-status.json"
assert_history "$E2E_ROOT/push-status.json" upload "done" "${OIDS[@]}"
status_json "$CLONE" "$E2E_ROOT/pull-status.json"
assert_history "$E2E_ROOT/pull-status.json" download "done" "${OIDS[@]}"

# ---- 2. objects written by boto3 ---------------------------------------------------
# One below boto3's multipart threshold (8 MiB), one above it.
random_file "$E2E_ROOT/boto/small.bin" 3000
random_file "$E2E_ROOT/boto/large.bin" $((9 * MIB + 7))
BOTO_OIDS=()
for name in small.bin large.bin; do
  oid=$(oid_of "$E2E_ROOT/boto/$name")
  BOTO_OIDS+=("$oid")
  s3_interop put "$S3_BUCKET" "$(s3_nested_key "$PREFIX" "$oid")" "$E2E_ROOT/boto/$name" ||
    fail "boto3 could not upload $name"
  cp "$E2E_ROOT/boto/$name" "$REPO/boto-$name"
done
(cd "$REPO" && git add -A && git commit -qm "objects boto3 uploaded") || fail "git commit failed"
MARK=$(s3_log_lines)
# --no-verify skips git-lfs's pre-push hook: only the pointers go to the remote.
must_git 60 "$E2E_ROOT/push-boto.log" -C "$REPO" push --no-verify origin main
s3_requests_since "$MARK" "$E2E_ROOT/push-boto-requests.tsv"
[[ ! -s $E2E_ROOT/push-boto-requests.tsv ]] ||
  { show "requests" "$E2E_ROOT/push-boto-requests.tsv"; fail "git push --no-verify sent requests to the bucket"; }

BOTO_CLONE="$E2E_ROOT/boto-clone"
clone_pointers "$E2E_ROOT/repo.git" "$BOTO_CLONE" "$E2E_ROOT/boto-clone.log"
use_s3_store "$BOTO_CLONE"
must_git 120 "$E2E_ROOT/pull-boto.log" -C "$BOTO_CLONE" lfs pull
assert_checkout "$REPO" "$BOTO_CLONE" boto-small.bin boto-large.bin "${NAMES[@]}"
status_json "$BOTO_CLONE" "$E2E_ROOT/pull-boto-status.json"
assert_history "$E2E_ROOT/pull-boto-status.json" download "done" "${BOTO_OIDS[@]}"
s3_requests_since 0 "$E2E_ROOT/all-requests.tsv"
for oid in "${BOTO_OIDS[@]}"; do
  ! awk -F'\t' -v key="$(s3_nested_key "$PREFIX" "$oid")" '$1 == "PUT" && $2 == key && $8 == "ferry"' \
    "$E2E_ROOT/all-requests.tsv" | grep -q . || fail "ferry sent a PUT for $oid, which only boto3 was to write"
done
pass "objects only boto3 wrote (one PUT, one multipart) were downloaded by ferry in a fresh clone and match"

# ---- 3. layout=flat ----------------------------------------------------------------
FLAT_PREFIX=flat/objects
use_flat_store() { install_ferry_url "$1" "$(s3_store_url "$FLAT_PREFIX" layout=flat)"; }
new_repo flat
use_flat_store "$E2E_ROOT/flat"
add_lfs_files "$E2E_ROOT/flat" flat.bin=7777
FLAT_OID=$(oid_of "$E2E_ROOT/flat/flat.bin")
must_git 60 "$E2E_ROOT/push-flat.log" -C "$E2E_ROOT/flat" push origin main
assert_in_bucket "$(s3_flat_key "$FLAT_PREFIX" "$FLAT_OID")" "$E2E_ROOT/flat/flat.bin"
[[ $(s3_interop ls "$S3_BUCKET" "$FLAT_PREFIX/") == "$FLAT_PREFIX/$FLAT_OID 7777" ]] ||
  fail "the flat store holds more than $FLAT_PREFIX/$FLAT_OID: $(s3_interop ls "$S3_BUCKET" "$FLAT_PREFIX/")"
clone_pointers "$E2E_ROOT/flat.git" "$E2E_ROOT/flat-clone" "$E2E_ROOT/flat-clone.log"
use_flat_store "$E2E_ROOT/flat-clone"
must_git 60 "$E2E_ROOT/pull-flat.log" -C "$E2E_ROOT/flat-clone" lfs pull
assert_checkout "$E2E_ROOT/flat" "$E2E_ROOT/flat-clone" flat.bin
pass "layout=flat: the object is stored at $FLAT_PREFIX/<oid> and comes back byte-identical"

# ---- 4. nothing left in progress -----------------------------------------------------
s3_interop uploads "$S3_BUCKET" "" >"$E2E_ROOT/uploads.out" || fail "boto3 could not list multipart uploads"
[[ ! -s $E2E_ROOT/uploads.out ]] || { show "uploads in progress" "$E2E_ROOT/uploads.out"; fail "multipart uploads were left in progress"; }
pass "no multipart upload is left in progress in $S3_BUCKET"

# ---- 5. a bad secret -------------------------------------------------------------------
BAD_SECRET="bad-secret-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
# assert_no_secrets <file>...: neither the bad nor the real secret is in them.
assert_no_secrets() {
  local f
  for f in "$@"; do
    [[ -f $f ]] || fail "$f is missing"
    ! grep -qF -e "$BAD_SECRET" -e "$FERRY_S3_SECRET_KEY" "$f" || fail "a secret access key appears in $f"
  done
}
# expect_signature_error <what> <log>: git failed and its output names the S3 code.
expect_signature_error() {
  grep -q 'SignatureDoesNotMatch' "$2" ||
    { show "$1" "$2"; fail "$1 with a bad secret: git's output does not name SignatureDoesNotMatch"; }
}

BAD_CLONE="$E2E_ROOT/bad-clone"
clone_pointers "$E2E_ROOT/repo.git" "$BAD_CLONE" "$E2E_ROOT/bad-clone.log"
use_s3_store "$BAD_CLONE"
rc=0
AWS_SECRET_ACCESS_KEY=$BAD_SECRET timed_git 60 "$E2E_ROOT/pull-bad.log" -C "$BAD_CLONE" lfs pull || rc=$?
((rc != 0)) || { show "git lfs pull" "$E2E_ROOT/pull-bad.log"; fail "git lfs pull with a bad secret succeeded"; }
is_pointer "$BAD_CLONE/one-byte.bin" || fail "one-byte.bin was checked out although the keys are wrong"
expect_signature_error "git lfs pull" "$E2E_ROOT/pull-bad.log"
status_json "$BAD_CLONE" "$E2E_ROOT/pull-bad-status.json"
assert_no_secrets "$E2E_ROOT/pull-bad.log" "$BAD_CLONE/.git/lfs/ferry/ferry.log" "$E2E_ROOT/pull-bad-status.json"
pass "pull with a bad secret failed in $ELAPSED_MS ms naming SignatureDoesNotMatch; no secret in git's output, ferry.log or the journal"

add_lfs_files "$REPO" refused.bin=2000
REFUSED_KEY=$(s3_nested_key "$PREFIX" "$(oid_of "$REPO/refused.bin")")
rc=0
AWS_SECRET_ACCESS_KEY=$BAD_SECRET timed_git 60 "$E2E_ROOT/push-bad.log" -C "$REPO" push origin main || rc=$?
((rc != 0)) || { show "git push" "$E2E_ROOT/push-bad.log"; fail "git push with a bad secret succeeded"; }
[[ -z $(s3_interop ls "$S3_BUCKET" "$REFUSED_KEY") ]] || fail "$REFUSED_KEY was stored with a bad secret"
status_json "$REPO" "$E2E_ROOT/push-bad-status.json"
assert_no_secrets "$E2E_ROOT/push-bad.log" "$REPO/.git/lfs/ferry/ferry.log" "$E2E_ROOT/push-bad-status.json"
expect_signature_error "git push" "$E2E_ROOT/push-bad.log"
pass "push with a bad secret failed in $ELAPSED_MS ms naming SignatureDoesNotMatch; nothing stored, no secret in any output"
