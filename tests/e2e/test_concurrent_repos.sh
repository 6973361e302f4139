#!/usr/bin/env bash
# Two independent repositories push at the same time, each through its own
# ferry agent and journal: first with a store each, then sharing ONE store
# (including an identical object both push at once). Every object must arrive
# intact, and pulls from fresh clones must give back the same bytes.
# Variant 3 makes the shared-object race deterministic with agent_driver.py:
# a second agent starts the same object while the first is mid-way, and is
# killed right after opening it; the store must still never publish an
# object whose bytes do not hash to its oid.
#
#   bash tests/e2e/test_concurrent_repos.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"

MIB=$((1024 * 1024))

# fill_repo <name> <shared-file-or-empty>: four files of its own (one 48 MiB,
# so both pushes overlap) plus, optionally, a copy of a shared file.
fill_repo() {
  local name=$1 shared=$2 repo="$E2E_ROOT/$1"
  random_file "$repo/own-small.bin" 777
  random_file "$repo/own-medium.bin" $((300 * 1024))
  random_file "$repo/dir/own-nested.bin" 4096
  random_file "$repo/own-large.bin" $((48 * MIB))
  [[ -z $shared ]] || cp "$shared" "$repo/shared.bin"
  (cd "$repo" && git add -A && git commit -qm "objects of $name") || fail "commit in $name failed"
}

# push_both <repo-a> <repo-b>: both git pushes run at once; both must succeed.
push_both() {
  local a=$1 b=$2 pid_a pid_b rc_a=0 rc_b=0
  (cd "$E2E_ROOT/$a" && exec git push origin main) >"$E2E_ROOT/$a-push.log" 2>&1 &
  pid_a=$!
  track_pid "$pid_a"
  (cd "$E2E_ROOT/$b" && exec git push origin main) >"$E2E_ROOT/$b-push.log" 2>&1 &
  pid_b=$!
  track_pid "$pid_b"
  wait "$pid_a" || rc_a=$?
  wait "$pid_b" || rc_b=$?
  [[ $rc_a -eq 0 ]] || { show "git push in $a" "$E2E_ROOT/$a-push.log"; show "ferry log" "$E2E_ROOT/$a/.git/lfs/ferry/ferry.log"; fail "concurrent push of $a failed (exit $rc_a)"; }
  [[ $rc_b -eq 0 ]] || { show "git push in $b" "$E2E_ROOT/$b-push.log"; show "ferry log" "$E2E_ROOT/$b/.git/lfs/ferry/ferry.log"; fail "concurrent push of $b failed (exit $rc_b)"; }
  pass "$a and $b pushed at the same time; both succeeded ($(e2e_elapsed))"
}

# verify_repo <name> <store>: objects in the store, journal says done, and a
# fresh clone pulls identical bytes.
verify_repo() {
  local name=$1 store=$2 repo="$E2E_ROOT/$1" f oids=()
  local files=(own-small.bin own-medium.bin dir/own-nested.bin own-large.bin)
  [[ -f $repo/shared.bin ]] && files+=(shared.bin)
  for f in "${files[@]}"; do
    assert_stored "$store" "$repo/$f"
    oids+=("$(oid_of "$repo/$f")")
  done
  pass "$name: all ${#files[@]} objects are in $(basename "$store") and hash to their oids"
  status_json "$repo" "$E2E_ROOT/$name-status.json"
  assert_history "$E2E_ROOT/$name-status.json" upload "done" "${oids[@]}"
  py_check "$name: its journal holds only its own uploads, none active" '
import json, sys
doc = json.load(open(sys.argv[1]))
if doc["active"]:
    raise SystemExit("active transfers remain: %s" % doc["active"])
extra = sorted({r["oid"] for r in doc["history"]} - set(sys.argv[3:]))
if extra:
    raise SystemExit("records of other objects: %s" % extra)
if doc["journal"] != sys.argv[2]:
    raise SystemExit("journal %r, expected %r" % (doc["journal"], sys.argv[2]))
' "$E2E_ROOT/$name-status.json" "$repo/.git/lfs/ferry" "${oids[@]}"
}

# pull_both <name-a> <name-b> <store-a> <store-b>: fresh clones pull at once.
pull_both() {
  local a=$1 b=$2 sa=$3 sb=$4 pid_a pid_b rc_a=0 rc_b=0 name f
  for name in "$a" "$b"; do
    GIT_LFS_SKIP_SMUDGE=1 git clone -q "$E2E_ROOT/$name.git" "$E2E_ROOT/$name-clone" ||
      fail "git clone of $name failed"
  done
  install_ferry "$E2E_ROOT/$a-clone" "$sa"
  install_ferry "$E2E_ROOT/$b-clone" "$sb"
  (cd "$E2E_ROOT/$a-clone" && exec git lfs pull) >"$E2E_ROOT/$a-pull.log" 2>&1 &
  pid_a=$!
  track_pid "$pid_a"
  (cd "$E2E_ROOT/$b-clone" && exec git lfs pull) >"$E2E_ROOT/$b-pull.log" 2>&1 &
  pid_b=$!
  track_pid "$pid_b"
  wait "$pid_a" || rc_a=$?
  wait "$pid_b" || rc_b=$?
  [[ $rc_a -eq 0 ]] || { show "git lfs pull in $a-clone" "$E2E_ROOT/$a-pull.log"; fail "concurrent pull of $a failed"; }
  [[ $rc_b -eq 0 ]] || { show "git lfs pull in $b-clone" "$E2E_ROOT/$b-pull.log"; fail "concurrent pull of $b failed"; }
  for name in "$a" "$b"; do
    while IFS= read -r -d '' f; do
      f=${f#"$E2E_ROOT/$name/"}
      cmp "$E2E_ROOT/$name/$f" "$E2E_ROOT/$name-clone/$f" || fail "$name-clone/$f differs from the original"
    done < <(find "$E2E_ROOT/$name" -path "$E2E_ROOT/$name/.git" -prune -o -name '*.bin' -type f -print0)
  done
  pass "fresh clones of $a and $b pulled at the same time; every file is byte-identical"
}

variant_separate_stores() {
  note "variant 1: two repositories, a store each"
  new_repo alpha
  new_repo beta
  install_ferry "$E2E_ROOT/alpha" "$E2E_ROOT/store-alpha"
  install_ferry "$E2E_ROOT/beta" "$E2E_ROOT/store-beta"
  fill_repo alpha ""
  fill_repo beta ""
  push_both alpha beta
  verify_repo alpha "$E2E_ROOT/store-alpha"
  verify_repo beta "$E2E_ROOT/store-beta"
  for pair in "alpha beta" "beta alpha"; do
    set -- $pair
    for f in own-small.bin own-large.bin; do
      [[ ! -e $(store_object "$E2E_ROOT/store-$2" "$(oid_of "$E2E_ROOT/$1/$f")") ]] ||
        fail "$1's $f leaked into store-$2"
    done
  done
  [[ $(find "$E2E_ROOT/store-alpha" -type f | wc -l) -eq 4 && $(find "$E2E_ROOT/store-beta" -type f | wc -l) -eq 4 ]] ||
    fail "each store should hold exactly its repository's 4 objects"
  pass "the stores stayed separate (4 objects each, nothing leaked)"
  assert_no_partials "$E2E_ROOT/store-alpha"
  assert_no_partials "$E2E_ROOT/store-beta"
  pull_both alpha beta "$E2E_ROOT/store-alpha" "$E2E_ROOT/store-beta"
}

variant_shared_store() {
  note "variant 2: two repositories sharing one store, with one identical 64 MiB object"
  SHARED_STORE="$E2E_ROOT/store-shared"
  random_file "$E2E_ROOT/shared-source.bin" $((64 * MIB))
  new_repo gamma
  new_repo delta
  install_ferry "$E2E_ROOT/gamma" "$SHARED_STORE"
  install_ferry "$E2E_ROOT/delta" "$SHARED_STORE"
  fill_repo gamma "$E2E_ROOT/shared-source.bin"
  fill_repo delta "$E2E_ROOT/shared-source.bin"
  push_both gamma delta
  verify_repo gamma "$SHARED_STORE"
  verify_repo delta "$SHARED_STORE"
  count=$(find "$SHARED_STORE" -type f | wc -l)
  [[ $count -eq 9 ]] || fail "the shared store holds $count files, expected 9 (4 + 4 + 1 shared): $(find "$SHARED_STORE" -type f)"
  assert_no_partials "$SHARED_STORE"
  pass "the shared store holds the 9 distinct objects and no partial files"
  pull_both gamma delta "$SHARED_STORE" "$SHARED_STORE"
}

variant_same_object_race() {
  note "variant 3: a second agent asks for the same object while the first is writing it"
  RACE_STORE="$E2E_ROOT/store-race"
  new_repo epsilon
  new_repo zeta
  install_ferry "$E2E_ROOT/epsilon" "$RACE_STORE"
  install_ferry "$E2E_ROOT/zeta" "$RACE_STORE"
  RACE_SIZE=$((256 * MIB))
  random_file "$E2E_ROOT/epsilon/race.bin" "$RACE_SIZE"
  cp "$E2E_ROOT/epsilon/race.bin" "$E2E_ROOT/zeta/race.bin"
  RACE_OID=$(oid_of "$E2E_ROOT/epsilon/race.bin")
  RACE_FINAL=$(store_object "$RACE_STORE" "$RACE_OID")
  RACE_PARTIAL=$(store_partial "$RACE_STORE" "$RACE_OID")
  upload_json() { # <repo>
    printf '{"event":"upload","oid":"%s","size":%d,"path":"%s","action":null}' \
      "$RACE_OID" "$RACE_SIZE" "$E2E_ROOT/$1/race.bin"
  }
  INIT='{"event":"init","operation":"upload","remote":"origin","concurrent":false,"concurrenttransfers":1}'
  cat >"$E2E_ROOT/race-a.jsonl" <<JSONL
{"label":"init","json":$INIT}
{"label":"upload","json":$(upload_json epsilon)}
{"label":"terminate","json":{"event":"terminate"},"exit":true}
JSONL
  # The second agent starts once the first is well into the object.
  cat >"$E2E_ROOT/race-b.jsonl" <<JSONL
{"label":"init","json":$INIT}
{"label":"wait","wait_file":"$RACE_PARTIAL","min_size":$((64 * MIB))}
{"label":"upload","json":$(upload_json zeta)}
{"label":"terminate","json":{"event":"terminate"},"exit":true}
JSONL
  python3 "$E2E_DIR/agent_driver.py" --ferry "$FERRY" --cwd "$E2E_ROOT/zeta" --timeout 120 \
    --stderr "$E2E_ROOT/race-b.stderr" <"$E2E_ROOT/race-b.jsonl" >"$E2E_ROOT/race-b.out" &
  PID_B=$!
  track_pid "$PID_B"
  python3 "$E2E_DIR/agent_driver.py" --ferry "$FERRY" --cwd "$E2E_ROOT/epsilon" --timeout 120 \
    --stderr "$E2E_ROOT/race-a.stderr" <"$E2E_ROOT/race-a.jsonl" >"$E2E_ROOT/race-a.out" &
  PID_A=$!
  track_pid "$PID_A"
  wait "$PID_A" || fail "agent_driver.py for epsilon failed"
  wait "$PID_B" || fail "agent_driver.py for zeta failed"
  py_check "both agents completed the same object: the second waited for the first" '
import json, sys
oid = sys.argv[3]
a = {r["label"]: r for r in map(json.loads, open(sys.argv[1]))}
b = {r["label"]: r for r in map(json.loads, open(sys.argv[2]))}
if not b.get("wait", {}).get("ok"):
    raise SystemExit("the first agent never reached 64 MiB: %s" % b)
for name, run in (("first", a), ("second", b)):
    reply = run.get("upload", {}).get("reply")
    if reply != {"event": "complete", "oid": oid}:
        raise SystemExit("the %s agent replied %s" % (name, reply))
  ' "$E2E_ROOT/race-a.out" "$E2E_ROOT/race-b.out" "$RACE_OID"
  [[ -f $RACE_FINAL ]] || fail "$RACE_FINAL was not published"
  got=$(oid_of "$RACE_FINAL")
  [[ $got == "$RACE_OID" ]] || fail "the store published a CORRUPT object: $RACE_FINAL hashes to $got, not $RACE_OID"
  pass "the published object hashes to its oid"
  assert_no_partials "$RACE_STORE"
  pass "no partial files remain"
  status_json "$E2E_ROOT/zeta" "$E2E_ROOT/race-zeta.json"
  py_check "the second agent found the object stored and verified, and sent none of it" '
import json, sys
doc = json.load(open(sys.argv[1]))
oid, size = sys.argv[2], int(sys.argv[3])
r = [r for r in doc["history"] if r["oid"] == oid and r["direction"] == "upload"][0]
if r["state"] != "done":
    raise SystemExit("state %r: %s" % (r["state"], r))
if r["resumed_from"] != size:
    raise SystemExit("resumed_from=%r: the second agent wrote bytes itself: %s" % (r["resumed_from"], r))
print("attempts %d" % r["attempts"])
  ' "$E2E_ROOT/race-zeta.json" "$RACE_OID" "$RACE_SIZE"
}

# Each variant runs in its own subshell so a failure in one (a ferry bug)
# does not hide the results of the others; the test fails if any failed.
FAILED=()
run_variant() {
  local rc
  set +e
  (
    set -e
    "$1"
  )
  rc=$?
  set -e
  if ((rc != 0)); then
    FAILED+=("$1")
    printf '%s: variant %s FAILED\n' "$E2E_NAME" "$1" >&2
  fi
}
run_variant variant_separate_stores
run_variant variant_shared_store
run_variant variant_same_object_race
((${#FAILED[@]} == 0)) || fail "failed variants: ${FAILED[*]}"
