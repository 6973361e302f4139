#!/usr/bin/env bash
# Round trip through the real git-lfs: push (pre-push hook) into a folder store
# through ferry, then a fresh clone pulls every object back, byte for byte.
#
#   bash tests/e2e/test_roundtrip.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"

STORE="$E2E_ROOT/store"
REPO="$E2E_ROOT/origin-repo"
CLONE="$E2E_ROOT/clone"
BIG=$((256 * 1024 * 1024))

new_repo origin-repo
install_ferry "$REPO" "$STORE"
[[ -d $STORE ]] || fail "ferry install did not create the store folder $STORE"
pass "ferry install created the store folder"

# Tracked files: path -> size. The empty file stays a plain empty file in git
# (git-lfs 3.3.0 makes no pointer for it) but must survive the round trip.
declare -A SIZES=(
  ["empty.bin"]=0
  ["one-byte.bin"]=1
  ["one-kib.bin"]=1024
  ["hundred-kib.bin"]=102400
  ["sub dir/nested file.bin"]=4097
  ["big.bin"]=$BIG
)
for f in "${!SIZES[@]}"; do
  if [[ ${SIZES[$f]} -eq 0 ]]; then
    mkdir -p "$REPO/$(dirname "$f")"
    : >"$REPO/$f"
  else
    random_file "$REPO/$f" "${SIZES[$f]}"
  fi
done
note "generated ${#SIZES[@]} files ($(e2e_elapsed))"
(cd "$REPO" && git add -A && git commit -qm "add LFS files") || fail "git commit failed"

# Every non-empty file must be committed as a pointer, the empty one as is.
LFS_FILES=()
for f in "${!SIZES[@]}"; do
  blob=$(cd "$REPO" && git cat-file -p "HEAD:$f")
  if [[ ${SIZES[$f]} -eq 0 ]]; then
    [[ -z $blob ]] || fail "empty.bin was committed with content: $blob"
  else
    grep -q "^oid sha256:$(oid_of "$REPO/$f")\$" <<<"$blob" ||
      fail "$f was not committed as an LFS pointer with its oid: $blob"
    LFS_FILES+=("$f")
  fi
done
pass "${#LFS_FILES[@]} files committed as LFS pointers, empty file committed as an empty blob"

# Push through the pre-push hook: git-lfs starts 'ferry agent'.
(cd "$REPO" && git push origin main) >"$E2E_ROOT/push.log" 2>&1 ||
  { show "git push" "$E2E_ROOT/push.log"; fail "git push origin main failed"; }
grep -q "Uploading LFS objects: 100% (${#LFS_FILES[@]}/${#LFS_FILES[@]})" "$E2E_ROOT/push.log" ||
  { show "git push" "$E2E_ROOT/push.log"; fail "git-lfs did not report uploading ${#LFS_FILES[@]} objects"; }
pass "git push uploaded ${#LFS_FILES[@]} LFS objects through ferry ($(e2e_elapsed))"

OIDS=()
for f in "${LFS_FILES[@]}"; do
  assert_stored "$STORE" "$REPO/$f"
  OIDS+=("$(oid_of "$REPO/$f")")
done
pass "every object is in the store at <oid[0:2]>/<oid[2:4]>/<oid> and hashes to its oid"
assert_no_partials "$STORE"
count=$(find "$STORE" -type f | wc -l)
[[ $count -eq ${#LFS_FILES[@]} ]] || fail "store holds $count files, expected ${#LFS_FILES[@]}: $(find "$STORE" -type f)"
pass "the store holds exactly the ${#LFS_FILES[@]} objects and no partial files"

status_json "$REPO" "$E2E_ROOT/push-status.json"
assert_history "$E2E_ROOT/push-status.json" upload "done" "${OIDS[@]}"
py_check "push journal: nothing active, the upload of big.bin was not resumed" '
import json, sys
doc = json.load(open(sys.argv[1]))
if doc["active"]:
    raise SystemExit("active transfers remain: %s" % doc["active"])
if doc["journal"] != sys.argv[2]:
    raise SystemExit("journal is %r, expected %r" % (doc["journal"], sys.argv[2]))
big = [r for r in doc["history"] if r["oid"] == sys.argv[3]][0]
if big["size"] != int(sys.argv[4]) or big["resumed_from"] != 0 or big["errors"]:
    raise SystemExit("unexpected record for big.bin: %s" % big)
' "$E2E_ROOT/push-status.json" "$REPO/.git/lfs/ferry" "$(oid_of "$REPO/big.bin")" "$BIG"

# A fresh clone that does not smudge: it holds pointers until git lfs pull.
rc=0
GIT_LFS_SKIP_SMUDGE=1 git clone -q "$E2E_ROOT/origin-repo.git" "$CLONE" >"$E2E_ROOT/clone.log" 2>&1 || rc=$?
[[ $rc -eq 0 ]] || { show "git clone" "$E2E_ROOT/clone.log"; fail "git clone failed"; }
for f in "${LFS_FILES[@]}"; do
  is_pointer "$CLONE/$f" || fail "$f in the fresh clone is not a pointer before git lfs pull"
done
pass "fresh clone holds pointers only"
install_ferry "$CLONE" "$STORE"
# Leftovers of an earlier, interrupted agent: nothing will resume them.
LEFTOVERS="$CLONE/.git/lfs/tmp/ferry"
mkdir -p "$LEFTOVERS"
printf 'stale' >"$LEFTOVERS/$(printf 'c%.0s' {1..64})"
printf 'stale' >"$LEFTOVERS/$(printf 'd%.0s' {1..64}).part"
(cd "$CLONE" && git lfs pull) >"$E2E_ROOT/pull.log" 2>&1 ||
  { show "git lfs pull" "$E2E_ROOT/pull.log"; fail "git lfs pull failed"; }
pass "git lfs pull succeeded ($(e2e_elapsed))"
[[ -z $(ls -A "$LEFTOVERS") ]] || fail "the download directory still holds: $(ls -A "$LEFTOVERS")"
pass "the agent cleared leftovers of earlier runs from .git/lfs/tmp/ferry"

for f in "${!SIZES[@]}"; do
  [[ -f $CLONE/$f ]] || fail "$f is missing from the clone"
  cmp "$REPO/$f" "$CLONE/$f" || fail "$f differs between the original and the clone"
done
[[ $(stat -c %s "$CLONE/empty.bin") -eq 0 ]] || fail "empty.bin is not empty in the clone"
pass "all ${#SIZES[@]} files are byte-identical in the clone (empty file still empty)"

for oid in "${OIDS[@]}"; do
  obj="$CLONE/.git/lfs/objects/${oid:0:2}/${oid:2:2}/$oid"
  [[ -f $obj && $(oid_of "$obj") == "$oid" ]] || fail "clone's LFS cache lacks a verified $obj"
done
pass "the clone's LFS object cache holds every verified object"
(cd "$CLONE" && git status --porcelain) >"$E2E_ROOT/git-status.out"
[[ ! -s $E2E_ROOT/git-status.out ]] || { show "git status" "$E2E_ROOT/git-status.out"; fail "the clone's working tree is not clean"; }
pass "the clone's working tree is clean"

status_json "$CLONE" "$E2E_ROOT/pull-status.json"
assert_history "$E2E_ROOT/pull-status.json" download "done" "${OIDS[@]}"
py_check "pull journal: nothing active, no uploads, no errors" '
import json, sys
doc = json.load(open(sys.argv[1]))
if doc["active"]:
    raise SystemExit("active transfers remain: %s" % doc["active"])
bad = [r for r in doc["history"] if r["direction"] != "download" or r["errors"]]
if bad:
    raise SystemExit("unexpected records: %s" % bad)
' "$E2E_ROOT/pull-status.json"
# (git-lfs keeps its own numbered temp files in .git/lfs/tmp; ferry's are in tmp/ferry.)
leftovers=$(find "$CLONE/.git/lfs/tmp/ferry" -type f 2>/dev/null || true)
[[ -z $leftovers ]] || fail "ferry's temporary download files remain: $leftovers"
pass "no ferry download files remain in .git/lfs/tmp/ferry"
