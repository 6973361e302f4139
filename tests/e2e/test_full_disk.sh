#!/usr/bin/env bash
# A disk that fills up, end to end, on small tmpfs mounts made by the test
# (it needs root, or CAP_SYS_ADMIN, as CI has; without it the test fails
# saying so):
#
#   a. folder -> folder, about 5 MiB of objects onto a 2 MiB tmpfs, the
#      journal on a disk with space: exit 1 with a message naming no space,
#      every object file at the destination whole (sha256 == oid; partial
#      files only under their hidden names), nothing dead-lettered. The same
#      command again, still full, opens its journal and stops the same way.
#      After the tmpfs grows (mount -o remount), the same command exits 0
#      and ferry check --hash finds both stores equal.
#   b. the same with the journal on the full tmpfs too: whichever write
#      finds the disk full, the run stops with exit 1 naming no space (not
#      a crash), the journal opens again, and after the remount the same
#      command finishes.
#   c. git lfs pull into a clone whose .git/lfs is a 1 MiB tmpfs, of objects
#      that do not all fit: the agent answers every object, those that fit
#      are checked out, each other one fails with a message naming no
#      space; after the remount the same pull checks everything out.
#
#   bash tests/e2e/test_full_disk.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/migrate_lib.sh"
e2e_init "$@"

# ---- small disks ------------------------------------------------------------------

SMALL_DISKS=()

# full_disk_cleanup: on exit, unmounts this test's tmpfs mounts (lazily if
# something still holds one), then lib.sh's cleanup removes the sandbox.
full_disk_cleanup() {
  local status=$? disk
  for disk in "${SMALL_DISKS[@]}"; do
    umount "$disk" 2>/dev/null || umount -l "$disk" 2>/dev/null || true
  done
  e2e_cleanup "$status"
}
trap full_disk_cleanup EXIT

# small_disk <dir> <size>: a tmpfs of <size> (e.g. 2m) mounted at <dir>.
small_disk() {
  mkdir -p "$1"
  mount -t tmpfs -o "size=$2,mode=0755" ferry-full-disk "$1" 2>"$E2E_ROOT/mount.err" ||
    fail "cannot mount a $2 tmpfs at $1 ($(cat "$E2E_ROOT/mount.err")): this test needs" \
      "root or CAP_SYS_ADMIN to make a disk that fills up"
  SMALL_DISKS+=("$1")
}

# grow_disk <dir> <size>: the tmpfs at <dir> gets <size>; what it holds stays.
grow_disk() {
  mount -o "remount,size=$2" "$1" || fail "cannot remount the tmpfs at $1 with size $2"
}

# assert_whole_objects <store-dir>: every file named like an object (64 hex
# digits) is at its layout path and hashes to its name; prints how many
# objects and hidden partial files the store holds. Sets WHOLE_OBJECTS.
assert_whole_objects() {
  local out
  out=$(python3 - "$1" 2>&1 <<'PY'
import hashlib, os, re, sys
root = sys.argv[1]
objects = partials = 0
bad = []
for folder, _, files in os.walk(root):
    for name in files:
        path = os.path.join(folder, name)
        if name.startswith("."):
            partials += 1
            continue
        if not re.fullmatch(r"[0-9a-f]{64}", name):
            bad.append("unexpected file %s" % path)
        elif path != os.path.join(root, name[:2], name[2:4], name):
            bad.append("%s is not at its layout path" % path)
        elif hashlib.sha256(open(path, "rb").read()).hexdigest() != name:
            bad.append("%s does not hash to its name" % path)
        else:
            objects += 1
if bad:
    raise SystemExit("; ".join(bad[:10]))
print(objects, partials)
PY
  ) || fail "a half-written object is visible in $1: $out"
  WHOLE_OBJECTS=${out% *}
  note "$1 holds $WHOLE_OBJECTS whole objects and ${out#* } hidden partial files"
}

# expect_no_space <name> <text>...: the last run stopped with exit 1, and
# its stderr says that the disk is full and each <text>.
expect_no_space() {
  local name=$1 text
  expect_rc "$name" 1
  shift
  for text in 'No space left on device' "$@"; do
    grep -qF "$text" "$MIG_ERR" || {
      show "$name stderr" "$MIG_ERR"
      fail "$name: ferry migrate did not say '$text'"
    }
  done
}

SRC="$E2E_ROOT/source"
LIST="$E2E_ROOT/source.manifest"
make_objects "$SRC" "$LIST" 40 medium
COUNT=$(wc -l <"$LIST")
BYTES=$(manifest_bytes "$LIST")
note "the source holds $COUNT objects, $BYTES bytes"
((BYTES > 4 << 20)) || fail "the source holds too little to fill a 2 MiB disk"

# full_migration <name> <mount> <destination> <journal>: the runs of a. and b.
full_migration() {
  local name=$1 disk=$2 dst=$3 journal=$4
  local args=(--from "file://$SRC" --to "file://$dst" --journal "$journal")
  small_disk "$disk" 2m

  run_migrate "$name-full" 120 "${args[@]}" --report "$E2E_ROOT/$name-full.json"
  expect_no_space "$name-full" 'Free some space, then run the same command again'
  assert_whole_objects "$dst"
  assert_report "$E2E_ROOT/$name-full.json" "failed.objects == 0" "corrupt.objects == 0" \
    "outcome == incomplete" "pending.objects >= 1"
  assert_counts_add_up "$E2E_ROOT/$name-full.json" "$COUNT" "$BYTES"
  pass "$name: a full disk stops the migration with exit 1 naming no space; no object is half there, none dead-lettered"

  # A journal on the full disk may have no room to open in (RocksDB starts
  # new files then); one with room must open and stop at the first copy.
  run_migrate "$name-still-full" 120 "${args[@]}"
  if [[ $journal == "$disk"/* ]] && grep -qF "cannot open journal $journal" "$MIG_ERR"; then
    expect_no_space "$name-still-full"
    pass "$name: the same command on the still full disk says the journal has no room to open in"
  else
    expect_no_space "$name-still-full" "(journal $journal)" 'Free some space'
    pass "$name: the same command on the still full disk opens the journal and stops the same way"
  fi
  assert_whole_objects "$dst"

  grow_disk "$disk" 64m
  run_migrate "$name-grown" 120 "${args[@]}" --report "$E2E_ROOT/$name-grown.json"
  expect_rc "$name-grown" 0
  assert_objects "$dst" "$LIST" exact
  assert_report "$E2E_ROOT/$name-grown.json" "outcome == complete" "failed.objects == 0" \
    "pending.objects == 0"
  run_check "$name-check" 120 --from "file://$SRC" --to "file://$dst" --hash
  expect_rc "$name-check" 0
  pass "$name: with space again the same command finishes (exit 0), and ferry check --hash finds the stores equal"
}

# ---- a. the destination fills up ---------------------------------------------------
full_migration a "$E2E_ROOT/disk-a" "$E2E_ROOT/disk-a/store" "$E2E_ROOT/journal-a"

# ---- b. the destination and the journal fill up -------------------------------------
full_migration b "$E2E_ROOT/disk-b" "$E2E_ROOT/disk-b/store" "$E2E_ROOT/disk-b/journal"

# ---- c. git lfs pull into a full .git/lfs --------------------------------------------
STORE="$E2E_ROOT/c-store"
new_repo c
install_ferry "$E2E_ROOT/c" "$STORE"
PULL_FILES=(a.bin=300000 b.bin=300001 c.bin=300002 d.bin=300003 e.bin=300004 f.bin=300005)
add_lfs_files "$E2E_ROOT/c" "${PULL_FILES[@]}"
must_git 120 "$E2E_ROOT/c-push.log" -C "$E2E_ROOT/c" push origin main
CLONE="$E2E_ROOT/c-clone"
clone_pointers "$E2E_ROOT/c.git" "$CLONE" "$E2E_ROOT/c-clone.log"
small_disk "$CLONE/.git/lfs" 1m
install_ferry "$CLONE" "$STORE"
rc=0
timed_git 120 "$E2E_ROOT/c-full.log" -C "$CLONE" lfs pull || rc=$?
((rc != 0)) || fail "git lfs pull into a full .git/lfs succeeded"
py_check "c: each object that did not fit failed naming no space, the others were checked out" '
import hashlib, os, sys
clone, log = sys.argv[1], open(sys.argv[2]).read()
names = sys.argv[3:]
fitted = [n for n in names if not open(os.path.join(clone, n), "rb").read().startswith(b"version https://git-lfs")]
for n in fitted:
    data = open(os.path.join(clone, n), "rb").read()
    oid = hashlib.sha256(data).hexdigest()
    if not os.path.exists(os.path.join(clone, ".git/lfs/objects", oid[:2], oid[2:4], oid)):
        raise SystemExit("%s was checked out without its object in .git/lfs" % n)
failed = len(names) - len(fitted)
said = log.count("No space left on device")
if failed == 0 or said < failed:
    raise SystemExit("%d of %d objects did not fit, and %d messages name no space:\n%s"
                     % (failed, len(names), said, log[-3000:]))
print("%d checked out, %d failed naming no space" % (len(fitted), failed))
' "$CLONE" "$E2E_ROOT/c-full.log" "${PULL_FILES[@]%=*}"

grow_disk "$CLONE/.git/lfs" 64m
must_git 120 "$E2E_ROOT/c-grown.log" -C "$CLONE" lfs pull
assert_checkout "$E2E_ROOT/c" "$CLONE" "${PULL_FILES[@]%=*}"
pass "c: with space again the same git lfs pull checks out every file intact"
