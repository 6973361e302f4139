#!/usr/bin/env bash
# `ferry check --from SRC --to DST` compares two stores without writing to
# either, end to end with folders and an LFS server (ferry-lfs-sim):
#
#   e. two equal folders (40 objects: 0 B, 1 B to 64 KiB, three of 1 to 3
#      MiB): exit 0, 'the stores match', no difference line, the report's
#      outcome 'match' with every object matched; with --hash too (every
#      object hashed on both sides).
#   d. at the destination one object deleted (missing), one valid object
#      added (extra), one truncated (size_differs), one with a byte changed
#      (same size); at the source one with a byte changed. Without --hash:
#      exit 3, 'the stores differ', exactly the missing, extra and
#      size_differs lines (the changed bytes are not seen), each once, and
#      the report agrees (counts, findings). With --hash: also
#      content_differs for the destination's damaged copy and
#      corrupt_at_source for the source's. Neither tree changes (paths,
#      sizes, inodes, mtimes), and the scratch directory under $TMPDIR is
#      removed.
#   n. --to a folder that does not exist: every object missing, exit 3, and
#      the folder is not created.
#   l. the LFS server as destination: equal -> exit 0 with 'extra' null in
#      the report (a server cannot list); one object lost -> exit 3 and a
#      missing line; a copy with a byte changed -> content_differs with
#      --hash. The server sees batch requests only (no PUT, no verify; no
#      download without --hash).
#   s. the LFS server as source: --from-repo (a repository's pointers) and
#      --inventory FILE name its objects (match, exit 0; with --hash every
#      object is read from the server and hashed); without either it is
#      refused.
#   u. bad command lines (no --from, the same store twice, --checkers 0,
#      --from-repo with --inventory, an unknown option) exit 2 and create
#      nothing.
#
#   FERRY_LFS_SIM=<ferry-lfs-sim> bash tests/e2e/test_check.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/migrate_lib.sh"
e2e_init "$@"
sim_init
ferry_quick_retries
# ferry check keeps its listing in a scratch directory under $TMPDIR.
export TMPDIR="$E2E_ROOT/tmp"
mkdir -p "$TMPDIR"

COUNT=40
SRC="$E2E_ROOT/src"
LIST="$E2E_ROOT/objects.manifest"
make_objects "$SRC" "$LIST" "$COUNT" mixed
sort -o "$LIST" "$LIST"
BYTES=$(manifest_bytes "$LIST")
DST="$E2E_ROOT/dst"
cp -a "$SRC" "$DST"

# tree_state <dir>: every file and folder under <dir> with its type, size,
# inode and mtime, sorted: equal before and after means nothing was written.
tree_state() {
  find "$1" -printf '%y %P %s %i %T@\n' | sort
}

# assert_scratch_removed <name>: ferry check left nothing under $TMPDIR.
assert_scratch_removed() {
  ! find "$TMPDIR" -mindepth 1 | grep -q . ||
    fail "$1: ferry check left its scratch files behind: $(find "$TMPDIR" -mindepth 1 | head -n 3)"
}

# ---- e. equal folders -------------------------------------------------------------------
tree_state "$SRC" >"$E2E_ROOT/src.before"
tree_state "$DST" >"$E2E_ROOT/dst.before"
run_check e1 60 --from "file://$SRC" --to "file://$DST" --report "$E2E_ROOT/e1.json"
expect_rc e1 0
expect_findings e1 "$E2E_ROOT/e1.json"
assert_report "$E2E_ROOT/e1.json" "outcome == match" "hash == false" \
  "source == file://$SRC" "destination == file://$DST" \
  "source_objects.objects == $COUNT" "source_objects.bytes == $BYTES" \
  "matched.objects == $COUNT" "matched.bytes == $BYTES" "hashed.objects == 0" \
  "missing.objects == 0" "size_differs.objects == 0" "content_differs.objects == 0" \
  "corrupt_at_source.objects == 0" "unreadable.objects == 0" "extra.objects == 0" "findings.length == 0"
run_check e2 120 --from "file://$SRC" --to "file://$DST" --hash --checkers 3 --report "$E2E_ROOT/e2.json"
expect_rc e2 0
expect_findings e2 "$E2E_ROOT/e2.json"
assert_report "$E2E_ROOT/e2.json" "outcome == match" "hash == true" "matched.objects == $COUNT" \
  "hashed.objects == $COUNT" "hashed.bytes == $BYTES" "extra.objects == 0"
assert_scratch_removed e
pass "e: two equal folders match (exit 0), with and without --hash"

# ---- d. differences ------------------------------------------------------------------------
# Four objects of more than 100 bytes, in oid order.
read -r MISSING MISSING_SIZE < <(awk '$2 > 100' "$LIST" | sed -n 1p)
read -r SHORT SHORT_SIZE < <(awk '$2 > 100' "$LIST" | sed -n 2p)
read -r FLIPPED FLIPPED_SIZE < <(awk '$2 > 100' "$LIST" | sed -n 3p)
read -r ROTTEN ROTTEN_SIZE < <(awk '$2 > 100' "$LIST" | sed -n 4p)
rm "$(object_path "$DST" "$MISSING")"
truncate -s $((SHORT_SIZE / 2)) "$(object_path "$DST" "$SHORT")"
corrupt_object "$(object_path "$DST" "$FLIPPED")"
corrupt_object "$(object_path "$SRC" "$ROTTEN")"
# A valid object that only the destination has.
random_file "$E2E_ROOT/extra.bin" 777
EXTRA=$(oid_of "$E2E_ROOT/extra.bin")
mkdir -p "$(dirname "$(object_path "$DST" "$EXTRA")")"
cp "$E2E_ROOT/extra.bin" "$(object_path "$DST" "$EXTRA")"
tree_state "$SRC" >"$E2E_ROOT/src.before"
tree_state "$DST" >"$E2E_ROOT/dst.before"

run_check d1 60 --from "file://$SRC" --to "file://$DST" --report "$E2E_ROOT/d1.json"
expect_rc d1 3
expect_findings d1 "$E2E_ROOT/d1.json" "missing:$MISSING:$MISSING_SIZE" "extra:$EXTRA:777" \
  "size_differs:$SHORT:$SHORT_SIZE:$((SHORT_SIZE / 2))"
assert_report "$E2E_ROOT/d1.json" "outcome == differ" "hash == false" \
  "source_objects.objects == $COUNT" "source_objects.bytes == $BYTES" \
  "matched.objects == $((COUNT - 2))" "matched.bytes == $((BYTES - MISSING_SIZE - SHORT_SIZE))" \
  "missing.objects == 1" "missing.bytes == $MISSING_SIZE" "extra.objects == 1" "extra.bytes == 777" \
  "size_differs.objects == 1" "size_differs.bytes == $SHORT_SIZE" "content_differs.objects == 0" \
  "corrupt_at_source.objects == 0" "unreadable.objects == 0" "hashed.objects == 0"
pass "d: without --hash: missing, extra and size_differs each reported once, the changed bytes not seen (exit 3)"

run_check d2 120 --from "file://$SRC" --to "file://$DST" --hash --report "$E2E_ROOT/d2.json"
expect_rc d2 3
expect_findings d2 "$E2E_ROOT/d2.json" "missing:$MISSING:$MISSING_SIZE" "extra:$EXTRA:777" \
  "size_differs:$SHORT:$SHORT_SIZE:$((SHORT_SIZE / 2))" "content_differs:$FLIPPED:$FLIPPED_SIZE" \
  "corrupt_at_source:$ROTTEN:$ROTTEN_SIZE"
assert_report "$E2E_ROOT/d2.json" "outcome == differ" "hash == true" \
  "matched.objects == $((COUNT - 4))" "hashed.objects == $((COUNT - 4))" \
  "missing.objects == 1" "extra.objects == 1" "size_differs.objects == 1" \
  "content_differs.objects == 1" "content_differs.bytes == $FLIPPED_SIZE" \
  "corrupt_at_source.objects == 1" "corrupt_at_source.bytes == $ROTTEN_SIZE" "unreadable.objects == 0"
pass "d: with --hash: also content_differs for the damaged destination copy and corrupt_at_source for the source's"

tree_state "$SRC" | cmp -s "$E2E_ROOT/src.before" - || fail "d: ferry check changed the source folder"
tree_state "$DST" | cmp -s "$E2E_ROOT/dst.before" - || fail "d: ferry check changed the destination folder"
assert_scratch_removed d
pass "d: neither folder changed (paths, sizes, inodes, mtimes) and no scratch files were left"

# Back to two equal folders for what follows.
restore_object "$(object_path "$SRC" "$ROTTEN")"
rm -rf "$DST"
cp -a "$SRC" "$DST"

# ---- n. a destination folder that does not exist ---------------------------------------------
run_check n1 60 --from "file://$SRC" --to "file://$E2E_ROOT/not-there/dst" --report "$E2E_ROOT/n1.json"
expect_rc n1 3
assert_report "$E2E_ROOT/n1.json" "outcome == differ" "missing.objects == $COUNT" "missing.bytes == $BYTES" \
  "matched.objects == 0" "findings.length == $COUNT"
[[ $(grep -c '^missing [0-9a-f]\{64\} [0-9]*$' "$MIG_OUT") -eq $COUNT ]] ||
  { show "stdout" "$MIG_OUT"; fail "n: not one 'missing' line per object"; }
[[ ! -e $E2E_ROOT/not-there ]] || fail "n: ferry check created $(find "$E2E_ROOT/not-there" | head -n 3)"
assert_scratch_removed n
pass "n: --to a folder that does not exist: all $COUNT objects missing (exit 3), the folder not created"

# ---- l. the LFS server as destination ------------------------------------------------------
mkdir -p "$SIM_ROOT"
cp -a "$SRC/." "$SIM_ROOT/"
start_sim ""
SIM_STORE="lfs+$(lfs_url check)"
# lfs_requests <out-file>: the requests the sim logged since the mark, "METHOD path".
lfs_requests() {
  tail -n +"$((L_MARK + 1))" "$SIM_LOG" | sed -n 's/^.* \(GET\|PUT\|POST\|HEAD\|DELETE\|PATCH\) \([^ ]*\) -> [0-9]*\( .*\)\?$/\1 \2/p' >"$1"
}
L_MARK=$(sim_log_lines)
sim_stats "$E2E_ROOT/l-before.json"
run_check l1 60 --from "file://$SRC" --to "$SIM_STORE" --report "$E2E_ROOT/l1.json"
expect_rc l1 0
expect_findings l1 "$E2E_ROOT/l1.json"
assert_report "$E2E_ROOT/l1.json" "outcome == match" "matched.objects == $COUNT" "source_objects.objects == $COUNT"
py_check "l: the report's extra is null (an LFS server cannot list its objects)" '
import json, sys
doc = json.load(open(sys.argv[1]))
if "extra" not in doc or doc["extra"] is not None:
    raise SystemExit("extra is %r" % doc.get("extra", "(absent)"))
' "$E2E_ROOT/l1.json"

read -r LOST LOST_SIZE < <(awk '$2 > 100' "$LIST" | sed -n 5p)
mkdir -p "$E2E_ROOT/originals"
mv "$(object_path "$SIM_ROOT" "$LOST")" "$E2E_ROOT/originals/$LOST"
run_check l2 60 --from "file://$SRC" --to "$SIM_STORE" --report "$E2E_ROOT/l2.json"
expect_rc l2 3
expect_findings l2 "$E2E_ROOT/l2.json" "missing:$LOST:$LOST_SIZE"
assert_report "$E2E_ROOT/l2.json" "outcome == differ" "missing.objects == 1" "matched.objects == $((COUNT - 1))"
lfs_requests "$E2E_ROOT/l-requests"
sim_stats "$E2E_ROOT/l-after.json"
py_check "l: without --hash the server saw batch requests only (no PUT, verify or download)" '
import json, sys
before, after = (json.load(open(p))["requests"] for p in sys.argv[1:3])
delta = {k: after[k] - before[k] for k in after}
if delta["batch"] < 2 or delta["upload"] or delta["verify"] or delta["download"]:
    raise SystemExit("requests during the checks: %s" % delta)
lines = open(sys.argv[3]).read().splitlines()
other = [l for l in lines if not (l.startswith("POST ") and l.endswith("/info/lfs/objects/batch"))
         and not l.startswith("GET /stats")]
if other:
    raise SystemExit("the sim log shows other requests: %s" % other[:5])
if len(lines) - len([l for l in lines if l.startswith("GET /stats")]) != delta["batch"]:
    raise SystemExit("the sim log has %d requests, /stats counts %d batch requests" % (len(lines), delta["batch"]))
print("%d batch requests" % delta["batch"])
' "$E2E_ROOT/l-before.json" "$E2E_ROOT/l-after.json" "$E2E_ROOT/l-requests"
restore_object "$(object_path "$SIM_ROOT" "$LOST")"

read -r DAMAGED DAMAGED_SIZE < <(awk '$2 > 100' "$LIST" | sed -n 6p)
corrupt_object "$(object_path "$SIM_ROOT" "$DAMAGED")"
sim_stats "$E2E_ROOT/l-before-hash.json"
run_check l3 120 --from "file://$SRC" --to "$SIM_STORE" --hash --report "$E2E_ROOT/l3.json"
expect_rc l3 3
expect_findings l3 "$E2E_ROOT/l3.json" "content_differs:$DAMAGED:$DAMAGED_SIZE"
assert_report "$E2E_ROOT/l3.json" "hashed.objects == $((COUNT - 1))" "content_differs.objects == 1"
expect_stats "requests.upload == 0" "requests.verify == 0"
restore_object "$(object_path "$SIM_ROOT" "$DAMAGED")"
assert_root_clean running
pass "l: against the LFS server: match (exit 0, extra null), a lost object missing (exit 3), a damaged copy content_differs with --hash; no PUT or verify"

# ---- s. the LFS server as source -------------------------------------------------------------
R="$E2E_ROOT/repo"
git init -q "$R"
(cd "$R" && git lfs install --local >/dev/null && git lfs track '*.bin' >/dev/null) ||
  fail "git lfs install --local / track failed in $R"
random_file "$R/one.bin" 1500
random_file "$R/sub/two.bin" 70000
{ git -C "$R" add -A && git -C "$R" commit -qm "two LFS files"; } || fail "git commit in $R failed"
random_file "$R/one.bin" 3000
{ git -C "$R" add -A && git -C "$R" commit -qm "a second version"; } || fail "git commit in $R failed"
[[ $(find "$R/.git/lfs/objects" -type f | wc -l) -eq 3 ]] || fail "s: the repository does not hold 3 LFS objects"
cp -a "$R/.git/lfs/objects/." "$SIM_ROOT/"
run_check s1 60 --from "$SIM_STORE" --to "file://$R/.git/lfs/objects" --from-repo "$R" --report "$E2E_ROOT/s1.json"
expect_rc s1 0
assert_report "$E2E_ROOT/s1.json" "outcome == match" "source_objects.objects == 3" "matched.objects == 3" \
  "extra.objects == 0"
run_check s2 60 --from "$SIM_STORE" --to "file://$DST" --inventory "$LIST" --report "$E2E_ROOT/s2.json"
expect_rc s2 0
assert_report "$E2E_ROOT/s2.json" "outcome == match" "source_objects.objects == $COUNT" \
  "source_objects.bytes == $BYTES" "matched.objects == $COUNT" "extra.objects == 0"
# With --hash the server's copies are read too (the inventory gives their sizes).
run_check s2-hash 120 --from "$SIM_STORE" --to "file://$DST" --inventory "$LIST" --hash \
  --report "$E2E_ROOT/s2-hash.json"
expect_rc s2-hash 0
assert_report "$E2E_ROOT/s2-hash.json" "outcome == match" "hashed.objects == $COUNT" "hashed.bytes == $BYTES" \
  "unreadable.objects == 0"
run_check s3 60 --from "$SIM_STORE" --to "file://$DST"
[[ $MIG_RC -ne 0 && $MIG_RC -ne 3 ]] || { show "stdout" "$MIG_OUT"; fail "s: an LFS source without --from-repo or --inventory was compared (exit $MIG_RC)"; }
{ grep -q -- '--from-repo' "$MIG_ERR" && grep -q -- '--inventory' "$MIG_ERR"; } ||
  { show "stderr" "$MIG_ERR"; fail "s: the refusal does not name --from-repo and --inventory"; }
expect_stats "requests.upload == 0" "requests.verify == 0"
pass "s: the LFS server as source: --from-repo (3 objects) and --inventory ($COUNT, also with --hash) match; without either it is refused (exit $MIG_RC)"
stop_sim

# ---- u. usage errors ---------------------------------------------------------------------------
# usage_error <what> <args...>: exit 2 with a message, nothing created.
usage_error() {
  local what=$1
  shift
  run_check usage 30 "$@"
  [[ $MIG_RC -eq 2 && -s $MIG_ERR ]] ||
    { show "stderr" "$MIG_ERR"; fail "u: $what: exit $MIG_RC, expected 2 with a message"; }
  [[ ! -e $E2E_ROOT/u-dst ]] || fail "u: $what: the destination was created"
}
usage_error "no --from" --to "file://$E2E_ROOT/u-dst"
usage_error "no --to" --from "file://$SRC"
usage_error "the same store twice" --from "file://$SRC" --to "$SRC"
usage_error "--checkers 0" --from "file://$SRC" --to "file://$E2E_ROOT/u-dst" --checkers 0
usage_error "--from-repo with --inventory" --from "file://$SRC" --to "file://$E2E_ROOT/u-dst" \
  --from-repo "$R" --inventory "$LIST"
usage_error "an unknown option" --from "file://$SRC" --to "file://$E2E_ROOT/u-dst" --bogus
pass "u: bad command lines exit with 2, say why and create nothing"
