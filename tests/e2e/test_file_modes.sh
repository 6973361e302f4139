#!/usr/bin/env bash
# What ferry keeps for itself (journals, logs, reports, RocksDB files, its
# download folder) is private whatever the umask; what it makes for others
# keeps the modes it always had: a folder store is shared on purpose, and
# git-lfs takes the downloaded objects into .git/lfs/objects.
# Everything runs under umask 000, where nothing but ferry's own choice
# keeps a file from being world-writable.
#
#   bash tests/e2e/test_file_modes.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"
umask 000

# assert_private <what> <path>...: neither the paths nor anything below them
# can be read, written or entered by group or others.
assert_private() {
  local what=$1 open
  shift
  local path
  for path in "$@"; do [[ -e $path ]] || fail "$what: $path is missing"; done
  open=$(find "$@" -perm /077 -printf '%m %p\n')
  [[ -z $open ]] || fail "$what: open to group or others: $open"
  pass "$what: $(find "$@" | wc -l) files and folders, none open to group or others"
}

# assert_mode <octal> <path>...: each path has exactly that mode.
assert_mode() {
  local want=$1 path
  shift
  for path in "$@"; do
    [[ $(stat -c %a "$path") == "$want" ]] || fail "$path has mode $(stat -c %a "$path"), expected $want"
  done
}

# assert_store_modes <store-dir> <what>: the modes a folder store got before
# ferry set its own umask, under umask 000: its folder and any parents it
# created 777 (std::filesystem::create_directories asks for 0777), the two
# shard levels 755 (mkdir with 0755) and objects 644 (open with 0644).
assert_store_modes() {
  local store=$1 what=$2 objects
  assert_mode 777 "$store"
  mapfile -t objects < <(find "$store" -type f)
  ((${#objects[@]} > 0)) || fail "$what: the store holds no objects"
  local obj
  for obj in "${objects[@]}"; do
    assert_mode 644 "$obj"
    assert_mode 755 "$(dirname "$obj")" "$(dirname "$(dirname "$obj")")"
  done
  pass "$what: store folder 777, shard folders 755, ${#objects[@]} objects 644, as before"
}

store="$E2E_ROOT/shared/store" repo="$E2E_ROOT/repo" clone="$E2E_ROOT/clone"
new_repo repo
install_ferry "$repo" "$store"
assert_mode 777 "$E2E_ROOT/shared"
random_file "$repo/a.bin" 10000
random_file "$repo/b.bin" 200000
(cd "$repo" && git add -A && git commit -qm "two objects") || fail "commit failed"
(cd "$repo" && git push origin main) >"$E2E_ROOT/push.log" 2>&1 ||
  { show "git push" "$E2E_ROOT/push.log"; fail "git push failed"; }
assert_stored "$store" "$repo/a.bin"
assert_stored "$store" "$repo/b.bin"
assert_store_modes "$store" "push"
assert_private "push: the journal, its RocksDB files and ferry.log" "$repo/.git/lfs/ferry"
[[ -f $repo/.git/lfs/ferry/ferry.log && -f $repo/.git/lfs/ferry/CURRENT ]] ||
  fail "the journal lacks ferry.log or RocksDB's CURRENT"

rc=0
clone_and_pull "$E2E_ROOT/repo.git" "$clone" "$store" "$E2E_ROOT/pull.log" || rc=$?
[[ $rc -eq 0 ]] || { show "git lfs pull" "$E2E_ROOT/pull.log"; fail "git lfs pull failed"; }
assert_checkout "$repo" "$clone" a.bin b.bin
assert_private "pull: the journal and ferry's download folder" "$clone/.git/lfs/ferry" \
  "$clone/.git/lfs/tmp/ferry"
# Ferry hands downloads to git-lfs, which moves them into .git/lfs/objects:
# they were created 0644 less the umask, 644 here.
for oid in $(lfs_oids "$repo" a.bin b.bin); do
  assert_mode 644 "$clone/.git/lfs/objects/${oid:0:2}/${oid:2:2}/$oid"
done
pass "pull: the objects git-lfs took from ferry are 644, as before"

copy="$E2E_ROOT/copies/store"
"$FERRY" migrate --from "$store" --to "$copy" --report "$E2E_ROOT/migrate.json" \
  >"$E2E_ROOT/migrate.out" 2>&1 || { show "ferry migrate" "$E2E_ROOT/migrate.out"; fail "ferry migrate failed"; }
assert_mode 777 "$E2E_ROOT/copies"
assert_store_modes "$copy" "migrate"
state="$HOME/.local/state/ferry"
[[ -n $(find "$state/migrations" -name CURRENT) && -n $(find "$state/migrations" -name ferry.log) ]] ||
  fail "no RocksDB files or ferry.log under $state/migrations"
assert_private "migrate: its journal and inventory folders, RocksDB files, ferry.log" "$state"
assert_private "migrate: the report" "$E2E_ROOT/migrate.json"

"$FERRY" check --from "$store" --to "$copy" --report "$E2E_ROOT/check.json" \
  >"$E2E_ROOT/check.out" 2>&1 || { show "ferry check" "$E2E_ROOT/check.out"; fail "ferry check failed"; }
assert_private "check: the report" "$E2E_ROOT/check.json"
