#!/usr/bin/env bash
# A damaged object in the store must never reach a working tree: git lfs pull
# fails and names the object, the intact objects still arrive, and the journal
# records why. Two variants: a flipped byte (same size, hash mismatch) and a
# truncated object (size mismatch).
#
#   bash tests/e2e/test_corrupt_store.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"

# flip_byte <file> <offset>: inverts one byte in place; the size stays.
flip_byte() {
  python3 - "$1" "$2" <<'EOF'
import os, sys
path, at = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(at)
    b = f.read(1)
    f.seek(at)
    f.write(bytes([b[0] ^ 0xFF]))
EOF
}

# run_variant <name> <damage: flip|truncate> <expected error code> <expected words>
run_variant() {
  local name=$1 damage=$2 code=$3 why=$4
  local store="$E2E_ROOT/store-$name" repo="$E2E_ROOT/$name" clone="$E2E_ROOT/$name-clone"
  note "variant $name: $damage the store's copy of b.bin"
  new_repo "$name"
  install_ferry "$repo" "$store"
  random_file "$repo/a.bin" 10000
  random_file "$repo/b.bin" 300000
  random_file "$repo/c.bin" 20000
  (cd "$repo" && git add -A && git commit -qm "three objects") || fail "commit failed"
  (cd "$repo" && git push origin main) >"$E2E_ROOT/$name-push.log" 2>&1 ||
    { show "git push" "$E2E_ROOT/$name-push.log"; fail "$name: git push failed"; }
  local f
  for f in a b c; do assert_stored "$store" "$repo/$f.bin"; done
  pass "$name: 3 objects pushed and verified in the store"

  local bad good_a good_c obj
  bad=$(oid_of "$repo/b.bin")
  good_a=$(oid_of "$repo/a.bin")
  good_c=$(oid_of "$repo/c.bin")
  obj=$(store_object "$store" "$bad")
  if [[ $damage == flip ]]; then
    flip_byte "$obj" 150001
    [[ $(stat -c %s "$obj") -eq 300000 ]] || fail "flipping a byte changed the size of $obj"
  else
    truncate -s 299999 "$obj"
  fi
  [[ $(oid_of "$obj") != "$bad" ]] || fail "damaging $obj did not change its hash"
  cp "$obj" "$E2E_ROOT/$name-damaged-copy"
  pass "$name: damaged the store's copy of b.bin ($bad)"

  local rc=0
  clone_and_pull "$E2E_ROOT/$name.git" "$clone" "$store" "$E2E_ROOT/$name-pull.log" || rc=$?
  [[ $rc -ne 0 ]] || { show "git lfs pull" "$E2E_ROOT/$name-pull.log"; fail "$name: git lfs pull succeeded despite a damaged object"; }
  pass "$name: git lfs pull failed (exit $rc)"
  grep -q "$bad" "$E2E_ROOT/$name-pull.log" ||
    { show "git lfs pull" "$E2E_ROOT/$name-pull.log"; fail "$name: git lfs pull output does not name the damaged object $bad"; }
  pass "$name: git lfs pull output names the damaged object"
  grep -qF "[409] $code" "$E2E_ROOT/$name-pull.log" ||
    { show "git lfs pull" "$E2E_ROOT/$name-pull.log"; fail "$name: git lfs pull output lacks ferry's reason '[409] $code'"; }
  grep -qF "$why" "$E2E_ROOT/$name-pull.log" ||
    { show "git lfs pull" "$E2E_ROOT/$name-pull.log"; fail "$name: git lfs pull output does not explain '$why'"; }
  pass "$name: the user sees ferry's reason ([409] $code: ...$why...)"

  cmp "$repo/a.bin" "$clone/a.bin" || fail "$name: a.bin was not checked out correctly"
  cmp "$repo/c.bin" "$clone/c.bin" || fail "$name: c.bin was not checked out correctly"
  pass "$name: the two intact files were checked out byte for byte"

  ! cmp -s "$clone/b.bin" "$E2E_ROOT/$name-damaged-copy" || fail "$name: the damaged content was checked out as b.bin"
  is_pointer "$clone/b.bin" || fail "$name: b.bin in the clone is neither a pointer nor the original: $(head -c 200 "$clone/b.bin" | od -c | head -3)"
  [[ ! -e $clone/.git/lfs/objects/${bad:0:2}/${bad:2:2}/$bad ]] || fail "$name: the damaged object entered the clone's LFS cache"
  local stray
  stray=$(find "$clone/.git/lfs/tmp/ferry" -type f -name "$bad*" 2>/dev/null || true)
  [[ -z $stray ]] || fail "$name: damaged download data left behind: $stray"
  pass "$name: b.bin stays a pointer; the damaged bytes are nowhere in the clone"

  [[ $(oid_of "$obj") == "$(oid_of "$E2E_ROOT/$name-damaged-copy")" ]] || fail "$name: the pull modified the store's copy"
  pass "$name: the store's copy was left untouched for inspection"

  status_json "$clone" "$E2E_ROOT/$name-status.json"
  assert_history "$E2E_ROOT/$name-status.json" download "done" "$good_a" "$good_c"
  assert_history "$E2E_ROOT/$name-status.json" download failed "$bad"
  py_check "$name: the failed download records a $code error" '
import json, sys
doc = json.load(open(sys.argv[1]))
oid, code = sys.argv[2], sys.argv[3]
rec = [r for r in doc["history"] if r["oid"] == oid and r["direction"] == "download"][0]
codes = [e.get("code") for e in rec["errors"]]
if not rec["errors"] or rec["errors"][-1].get("code") != code:
    raise SystemExit("errors of %s are %s, expected the last to be %r" % (oid, rec["errors"], code))
for e in rec["errors"]:
    if not isinstance(e.get("at_ms"), int) or not e.get("message"):
        raise SystemExit("malformed error entry %s" % e)
if rec["committed"] == rec["size"]:
    raise SystemExit("failed record claims all bytes committed: %s" % rec)
if doc["active"]:
    raise SystemExit("active transfers remain: %s" % doc["active"])
' "$E2E_ROOT/$name-status.json" "$bad" "$code"

  # The repair docs/operations.md gives: push the object again from a
  # repository that has it intact, then pull again.
  must_git 60 "$E2E_ROOT/$name-repair.log" -C "$repo" lfs push --object-id origin "$bad"
  assert_stored "$store" "$repo/b.bin"
  must_git 60 "$E2E_ROOT/$name-repull.log" -C "$clone" lfs pull
  cmp "$repo/b.bin" "$clone/b.bin" || fail "$name: b.bin was not checked out after the repair"
  pass "$name: git lfs push --object-id from the original replaced the damaged copy; the pull then checked b.bin out"
}

run_variant flipped flip hash_mismatch "is corrupt"
run_variant truncated truncate size_mismatch "has 299999 bytes, expected 300000"
