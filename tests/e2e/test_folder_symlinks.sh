#!/usr/bin/env bash
# Whoever can write into a shared folder store must not be able to make a
# pulling agent read files outside it. Two attacks with symbolic links to
# /etc/passwd (any file the pulling user can read would do):
#  - a link named by the file's real oid, behind a pointer committed for it:
#    following it would copy the file into .git/lfs and check it out;
#  - a link in place of a stored object of the same size: following it would
#    name the file's sha256 in the hash-mismatch error.
# Both pulls must fail for that object only, saying it is a symbolic link,
# with the file's content nowhere in the clone and its hash in no output.
#
#   bash tests/e2e/test_folder_symlinks.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"

target=/etc/passwd
[[ -r $target ]] || fail "$target is not readable"
target_oid=$(oid_of "$target")
target_size=$(stat -c %s "$target")

store="$E2E_ROOT/store" repo="$E2E_ROOT/repo"
new_repo repo
install_ferry "$repo" "$store"
random_file "$repo/a.bin" 10000
random_file "$repo/same-size.bin" "$target_size"
(cd "$repo" && git add -A && git commit -qm "two objects") || fail "commit failed"
(cd "$repo" && git push origin main) >"$E2E_ROOT/push.log" 2>&1 ||
  { show "git push" "$E2E_ROOT/push.log"; fail "git push failed"; }
assert_stored "$store" "$repo/a.bin"
assert_stored "$store" "$repo/same-size.bin"
pass "2 objects pushed into the store"

# Attack 1: a link in place of a stored object of the target's size.
replaced_oid=$(oid_of "$repo/same-size.bin")
replaced_link=$(store_object "$store" "$replaced_oid")
rm "$replaced_link"
ln -s "$target" "$replaced_link"
pass "the store's copy of same-size.bin is now a link to $target"

# pull_fails <name>: a fresh clone and git lfs pull, which must fail while
# a.bin still arrives; output in $E2E_ROOT/<name>-pull.log.
pull_fails() {
  local name=$1 rc=0
  clone_and_pull "$E2E_ROOT/repo.git" "$E2E_ROOT/$name" "$store" "$E2E_ROOT/$name-pull.log" || rc=$?
  [[ $rc -ne 0 ]] || { show "git lfs pull" "$E2E_ROOT/$name-pull.log"; fail "$name: git lfs pull succeeded through a link"; }
  cmp "$repo/a.bin" "$E2E_ROOT/$name/a.bin" || fail "$name: a.bin was not checked out"
  pass "$name: git lfs pull failed (exit $rc); the intact a.bin was checked out"
  status_json "$E2E_ROOT/$name" "$E2E_ROOT/$name-status.json"
}

# assert_link_refused <name> <oid> <link>: the pull named the link as a
# symbolic link, and the journal records a not_found failure, tried once.
assert_link_refused() {
  local name=$1 oid=$2 link=$3
  grep -qF "$link is a symbolic link" "$E2E_ROOT/$name-pull.log" ||
    { show "git lfs pull" "$E2E_ROOT/$name-pull.log"; fail "$name: the pull does not say $link is a symbolic link"; }
  assert_history "$E2E_ROOT/$name-status.json" download failed "$oid"
  py_check "$name: the failure is a not_found error naming the link, tried once" '
import json, sys
doc = json.load(open(sys.argv[1]))
rec = [r for r in doc["history"] if r["oid"] == sys.argv[2] and r["direction"] == "download"][0]
last = rec["errors"][-1]
if last.get("code") != "not_found" or sys.argv[3] + " is a symbolic link" not in last.get("message", ""):
    raise SystemExit("last error is %s" % last)
if rec["attempts"] != 1:
    raise SystemExit("tried %d times" % rec["attempts"])
' "$E2E_ROOT/$name-status.json" "$oid" "$link"
}

# assert_not_copied <name>: the target's content is nowhere in the clone.
assert_not_copied() {
  local clone="$E2E_ROOT/$1" found
  found=$(find "$clone" -type f -exec cmp -s {} "$target" \; -print)
  [[ -z $found ]] || fail "$1: $target was copied into the clone: $found"
  pass "$1: $target is nowhere in the clone (.git/lfs nor working tree)"
}

pull_fails replaced
assert_link_refused replaced "$replaced_oid" "$replaced_link"
assert_not_copied replaced
is_pointer "$E2E_ROOT/replaced/same-size.bin" || fail "same-size.bin in the clone is no longer a pointer"
leaks=$(grep -rlF "$target_oid" "$E2E_ROOT/replaced-pull.log" "$E2E_ROOT/replaced-status.json" \
  "$E2E_ROOT/replaced/.git/lfs" 2>/dev/null || true)
[[ -z $leaks ]] || fail "$target's sha256 appears in: $leaks"
pass "replaced: $target's sha256 appears in no output, log or journal"

# Attack 2: a pointer for the target's real oid, committed without its
# object (this repository never had it; --no-verify skips git-lfs's pre-push
# upload), and a link under that oid.
printf 'version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %s\n' \
  "$target_oid" "$target_size" >"$repo/stolen.bin"
(cd "$repo" && git add stolen.bin && git commit -qm "a pointer to $target's oid" &&
  git push -q --no-verify origin main) >"$E2E_ROOT/pointer.log" 2>&1 ||
  { show "commit and push of the pointer" "$E2E_ROOT/pointer.log"; fail "could not commit the pointer"; }
stolen_link=$(store_object "$store" "$target_oid")
mkdir -p "$(dirname "$stolen_link")"
ln -s "$target" "$stolen_link"
pass "the store holds a link to $target under its own oid"

pull_fails stolen
assert_link_refused stolen "$target_oid" "$stolen_link"
assert_not_copied stolen
is_pointer "$E2E_ROOT/stolen/stolen.bin" || fail "stolen.bin in the clone is no longer a pointer"
[[ ! -e $E2E_ROOT/stolen/.git/lfs/objects/${target_oid:0:2}/${target_oid:2:2}/$target_oid ]] ||
  fail "the clone's LFS cache holds $target's oid"

[[ -L $stolen_link && -L $replaced_link ]] || fail "the pulls changed the links in the store"
pass "the links in the store were left as they were"
