#!/usr/bin/env bash
# Proton Drive as ferry's store, end to end: the real git-lfs hands every
# transfer to `ferry agent` (`ferry install --store proton://LFS`), which runs
# the bridge simulator as its ferry.proton.command, one process per call.
#
#   1. push of 0 B, 1 B, 1 KiB, 1 MiB and 20 MiB files: every object is in the
#      Drive at LFS/<oid[0:2]>/<oid[2:4]>/<oid> with sha256 == oid and nothing
#      else is there; each agent ran auth-state, then init once, and asked
#      batch-exists about an object before uploading it from a staging file
#      under .git/lfs/tmp/ferry-proton, which is empty afterwards.
#   2. a second push of the same objects (git lfs push --all) asks
#      batch-exists and uploads nothing.
#   3. a fresh clone pulls every file byte for byte; each object came through
#      one bridge download into .git/lfs/tmp/ferry-proton.
#   4. objects another bridge client wrote into the Drive layout (as
#      proton-lfs-cli does) are read by ferry in a fresh clone; ferry never
#      uploaded them.
#   5. the bridge got only the variables of its allow-list: no FERRY_* or
#      AWS_* variable, no secret value; PROTON_* and LFS_* passed.
#   6. a session that needs a login: ferry install warns, the push fails and
#      git's output names "proton-drive login"; only auth-state ran. A bridge
#      that cannot be started fails the push naming ferry.proton.command.
#   7. a push that starts with an expired session: refresh renews it once and
#      the push succeeds; a refresh that fails (invalid refresh token) fails
#      the push naming "proton-drive login", after one refresh.
#   8. every request ferry sent passed the bridge's field rules.
#
#   FERRY_BRIDGE_SIM=<ferry-bridge-sim> bash tests/e2e/test_proton_store.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/proton_lib.sh"
e2e_init "$@"
proton_init

# Secret-looking variables the bridge must never see, and two it must see.
SECRET="e2e-secret-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export AWS_SECRET_ACCESS_KEY=$SECRET AWS_SESSION_TOKEN=$SECRET FERRY_E2E_TOKEN=$SECRET
export FERRY_LOG_LEVEL=debug # a setting ferry itself reads
export PROTON_E2E_VISIBLE=yes LFS_E2E_VISIBLE=yes

MIB=$((1 << 20))
FILES=(empty.bin=0 one-byte.bin=1 "sub dir/one-kib.bin=1024" "one-mib.bin=$MIB"
  twenty-mib.bin=$((20 * MIB + 3)))
REPO="$E2E_ROOT/repo"
CLONE="$E2E_ROOT/repo-clone"
NAMES=()
for spec in "${FILES[@]}"; do NAMES+=("${spec%=*}"); done

# scratch_empty <repo-dir>: ferry's Proton scratch folder holds no file.
scratch_empty() {
  local dir="$1/.git/lfs/tmp/ferry-proton" left
  [[ -d $dir ]] || return 0
  left=$(find "$dir" -type f)
  [[ -z $left ]] || fail "ferry left files in $dir: $left"
}

# ---- 1. push ------------------------------------------------------------------------
new_repo repo
use_proton "$REPO"
add_lfs_files "$REPO" "${FILES[@]}"
mapfile -t OIDS < <(lfs_oids "$REPO" "${NAMES[@]}")
((${#OIDS[@]} == 4)) || fail "expected 4 LFS objects, got ${#OIDS[@]}"

MARK=$(bridge_mark)
must_git 120 "$E2E_ROOT/push.log" -C "$REPO" push origin main
PUSH_MS=$ELAPSED_MS
for name in "${NAMES[@]}"; do
  [[ ! -s $REPO/$name ]] || assert_in_drive "$REPO/$name"
done
STORED=$(find "$DRIVE" -path "$DRIVE/.sim" -prune -o -type f -print | sort)
EXPECTED=$(for oid in "${OIDS[@]}"; do drive_object "$oid"; done | sort)
[[ $STORED == "$EXPECTED" ]] || fail "the Drive holds other files than the 4 objects: $STORED"
scratch_empty "$REPO"
pass "one git push stored the 4 objects at LFS/ab/cd/<oid> with sha256 == oid, nothing else ($PUSH_MS ms)"

bridge_check "the agent ran auth-state, init once, and batch-exists before each upload from .git/lfs/tmp/ferry-proton" \
  "$MARK" '
oids, scratch = set(sys.argv[3:-1]), sys.argv[-1] + "/"
starts = [e for e in events if e["event"] == "start"]
cmds = [e["command"] for e in starts]
if cmds[:2] != ["auth-state", "init"] or cmds.count("init") != 1 or cmds.count("auth-state") != 1:
    raise SystemExit("expected auth-state, then init, once each, first: %s" % cmds)
asked, uploaded = set(), []
for e in starts:
    r = e["request"]
    if e["command"] == "batch-exists":
        asked.update(r["oids"])
    elif e["command"] == "upload":
        if r["oid"] not in asked:
            raise SystemExit("upload of %s before batch-exists asked about it" % r["oid"])
        if not r["path"].startswith(scratch):
            raise SystemExit("upload from %s, not from a staging file in %s" % (r["path"], scratch))
        uploaded.append(r["oid"])
    elif e["command"] not in ("auth-state", "init"):
        raise SystemExit("unexpected bridge command %s" % e["command"])
if sorted(uploaded) != sorted(oids):
    raise SystemExit("uploads %s, expected each of %s once" % (uploaded, sorted(oids)))
print("%d processes: %s" % (len(cmds), " ".join(cmds)))' "${OIDS[@]}" "$REPO/.git/lfs/tmp/ferry-proton"

status_json "$REPO" "$E2E_ROOT/push-status.json"
assert_history "$E2E_ROOT/push-status.json" upload "done" "${OIDS[@]}"

# ---- 2. a second push uploads nothing ---------------------------------------------------
MARK=$(bridge_mark)
must_git 60 "$E2E_ROOT/push-again.log" -C "$REPO" lfs push --all origin main
bridge_check "a second push of the same objects asked batch-exists and uploaded nothing" "$MARK" '
oids = set(sys.argv[3:])
cmds = commands()
asked = set(o for e in events if e["event"] == "start" and e["command"] == "batch-exists"
            for o in e["request"]["oids"])
if "upload" in cmds:
    raise SystemExit("the second push uploaded again: %s" % cmds)
if not oids <= asked:
    raise SystemExit("batch-exists never asked about %s: %s" % (sorted(oids - asked), cmds))
print(" ".join(cmds))' "${OIDS[@]}"

# ---- 3. fresh clone and pull ----------------------------------------------------------------
clone_pointers "$E2E_ROOT/repo.git" "$CLONE" "$E2E_ROOT/clone.log"
use_proton "$CLONE"
MARK=$(bridge_mark)
must_git 120 "$E2E_ROOT/pull.log" -C "$CLONE" lfs pull
PULL_MS=$ELAPSED_MS
assert_checkout "$REPO" "$CLONE" "${NAMES[@]}"
must_git 60 "$E2E_ROOT/fsck.log" -C "$CLONE" lfs fsck
scratch_empty "$CLONE"
pass "git lfs pull in a fresh clone: all ${#NAMES[@]} files byte-identical, sha256 == oid ($PULL_MS ms)"
bridge_check "each object came through one bridge download into .git/lfs/tmp/ferry-proton" "$MARK" '
oids, scratch = sorted(sys.argv[3:-1]), sys.argv[-1] + "/"
downloads = [e["request"] for e in events if e["event"] == "start" and e["command"] == "download"]
if sorted(r["oid"] for r in downloads) != oids:
    raise SystemExit("downloads of %s, expected each of %s once" % ([r["oid"] for r in downloads], oids))
outside = [r["outputPath"] for r in downloads if not r["outputPath"].startswith(scratch)]
if outside:
    raise SystemExit("downloads written outside %s: %s" % (scratch, outside))
if "upload" in commands():
    raise SystemExit("a pull uploaded: %s" % commands())
print("%d downloads" % len(downloads))' "${OIDS[@]}" "$CLONE/.git/lfs/tmp/ferry-proton"
status_json "$CLONE" "$E2E_ROOT/pull-status.json"
assert_history "$E2E_ROOT/pull-status.json" download "done" "${OIDS[@]}"

# ---- 4. a Drive written by another bridge client -------------------------------------------
OTHER_MARK=$(bridge_mark)
OTHER_OIDS=()
for spec in other-small.bin=3000 other-large.bin=$((3 * MIB + 11)); do
  name=${spec%=*}
  random_file "$E2E_ROOT/other/$name" "${spec##*=}"
  oid=$(oid_of "$E2E_ROOT/other/$name")
  OTHER_OIDS+=("$oid")
  mkdir -p "$(dirname "$(drive_object "$oid")")"
  cp "$E2E_ROOT/other/$name" "$(drive_object "$oid")"
  cp "$E2E_ROOT/other/$name" "$REPO/$name"
done
(cd "$REPO" && git add -A && git commit -qm "objects another tool uploaded") || fail "git commit failed"
# --no-verify skips git-lfs's pre-push hook: only the pointers go to the remote.
must_git 60 "$E2E_ROOT/push-other.log" -C "$REPO" push --no-verify origin main
OTHER_CLONE="$E2E_ROOT/other-clone"
clone_pointers "$E2E_ROOT/repo.git" "$OTHER_CLONE" "$E2E_ROOT/other-clone.log"
use_proton "$OTHER_CLONE"
must_git 120 "$E2E_ROOT/pull-other.log" -C "$OTHER_CLONE" lfs pull
assert_checkout "$REPO" "$OTHER_CLONE" other-small.bin other-large.bin "${NAMES[@]}"
bridge_check "ferry downloaded the objects only the other tool wrote and never uploaded them" "$OTHER_MARK" '
oids = set(sys.argv[3:])
starts = [e for e in events if e["event"] == "start"]
uploaded = [e["request"]["oid"] for e in starts if e["command"] == "upload"]
fetched = set(e["request"]["oid"] for e in starts if e["command"] == "download")
if uploaded:
    raise SystemExit("ferry uploaded %s" % uploaded)
if not oids <= fetched:
    raise SystemExit("never downloaded %s" % sorted(oids - fetched))
print("%d downloads" % len(fetched))' "${OTHER_OIDS[@]}"
pass "objects placed in the Drive layout by another client were pulled by ferry in a fresh clone and match"

# ---- 5. the bridge's environment ----------------------------------------------------------------
py_check "every bridge process got only allow-listed variables, none of ferry's or AWS's, no secret" '
import os, sys
folder, secret = sys.argv[1], sys.argv[2]
names = {"PATH", "HOME", "USER", "SHELL", "LANG", "TERM", "NODE_ENV", "NODE_OPTIONS", "NODE_PATH",
         "NODE_BIN", "TMPDIR", "TMP", "TEMP", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME",
         "XDG_RUNTIME_DIR"}
prefixes = ("LC_", "MOCK_BRIDGE_", "PROTON_", "LFS_", "SDK_")
files = sorted(os.listdir(folder))
if len(files) < 10:
    raise SystemExit("only %d bridge environments were recorded" % len(files))
for pid in files:
    text = open(os.path.join(folder, pid)).read()
    got = [line.split("=", 1)[0] for line in text.splitlines() if "=" in line]
    stray = [n for n in got if n not in names and not n.startswith(prefixes)]
    if stray:
        raise SystemExit("bridge %s got %s" % (pid, stray))
    if secret in text:
        raise SystemExit("bridge %s got the secret value" % pid)
    for wanted in ("PROTON_E2E_VISIBLE", "LFS_E2E_VISIBLE", "PATH", "HOME"):
        if wanted not in got:
            raise SystemExit("bridge %s lacks %s (allow-listed): %s" % (pid, wanted, got))
print("%d processes" % len(files))' "$BRIDGE_ENVS" "$SECRET"
for f in "$E2E_ROOT"/push*.log "$E2E_ROOT"/pull*.log "$REPO/.git/lfs/ferry/ferry.log" "$CLONE/.git/lfs/ferry/ferry.log"; do
  ! grep -qF "$SECRET" "$f" || fail "the secret value appears in $f"
done
pass "the secret value appears in no git output or ferry log"

# ---- 6. a session that needs a login ---------------------------------------------------------
LOCKED="$E2E_ROOT/locked"
new_repo locked
use_proton "$LOCKED" "$(proton_scenario needs-login '{"auth_state": "needs_login"}')"
must_mention "ferry install with a session that needs a login" "$E2E_ROOT/install.out" "proton-drive login"
pass "ferry install warned that the session needs 'proton-drive login'"
add_lfs_files "$LOCKED" locked.bin=5000
MARK=$(bridge_mark)
rc=0
timed_git 60 "$E2E_ROOT/push-locked.log" -C "$LOCKED" push origin main || rc=$?
git_failed "git push with a session that needs a login" "$E2E_ROOT/push-locked.log" "$rc"
must_mention "git push with a session that needs a login" "$E2E_ROOT/push-locked.log" "proton-drive login"
[[ ! -e $(drive_object "$(oid_of "$LOCKED/locked.bin")") ]] || fail "locked.bin was stored without a session"
bridge_check "with no session only auth-state ran (no init, exists or upload)" "$MARK" '
cmds = commands()
if not cmds or set(cmds) != {"auth-state"}:
    raise SystemExit("bridge commands: %s" % cmds)
print(" ".join(cmds))'
pass "the push failed in $ELAPSED_MS ms naming 'proton-drive login'; nothing was stored"

# A bridge that cannot be started: the push fails naming the setting.
BROKEN="$E2E_ROOT/broken"
new_repo broken
git -C "$BROKEN" config ferry.proton.command "'$E2E_ROOT/no-such-node' /opt/proton-drive-cli/dist/index.js"
install_ferry_url "$BROKEN" proton://LFS
add_lfs_files "$BROKEN" broken.bin=100
rc=0
timed_git 60 "$E2E_ROOT/push-broken.log" -C "$BROKEN" push origin main || rc=$?
git_failed "git push with a bridge that cannot start" "$E2E_ROOT/push-broken.log" "$rc"
must_mention "git push with a bridge that cannot start" "$E2E_ROOT/push-broken.log" "ferry.proton.command"
must_mention "git push with a bridge that cannot start" "$E2E_ROOT/push-broken.log" "$E2E_ROOT/no-such-node"
pass "a bridge that cannot be started: the push failed naming ferry.proton.command and the program"

# ---- 7. an expired session: refresh renews it, or fails ------------------------------------------
# Installed with a ready session; each push starts with an expired one.
RENEWED="$E2E_ROOT/renewed"
new_repo renewed
use_proton "$RENEWED"
git -C "$RENEWED" config ferry.proton.command "$(proton_command "$(proton_scenario expired-renews \
  '{"auth_state": "session_expired", "refresh": "renews"}')")"
add_lfs_files "$RENEWED" renewed.bin=4000
MARK=$(bridge_mark)
must_git 60 "$E2E_ROOT/push-renewed.log" -C "$RENEWED" push origin main
assert_in_drive "$RENEWED/renewed.bin"
bridge_check "the push refreshed the expired session once, before any Drive command" "$MARK" '
cmds = commands()
if cmds.count("refresh") != 1 or "upload" not in cmds or cmds.index("refresh") > cmds.index("init"):
    raise SystemExit("expected one refresh before init and an upload: %s" % cmds)
print(" ".join(cmds))'
must_mention "ferry.log of the push with an expired session" "$RENEWED/.git/lfs/ferry/ferry.log" \
  "Proton Drive session expired; refreshed it"
pass "a push that started with an expired session refreshed it once and stored the object ($ELAPSED_MS ms)"

DEAD="$E2E_ROOT/dead"
new_repo dead
use_proton "$DEAD"
git -C "$DEAD" config ferry.proton.command "$(proton_command "$(proton_scenario expired-dead \
  '{"auth_state": "session_expired", "refresh": "invalid_token"}')")"
add_lfs_files "$DEAD" dead.bin=4000
MARK=$(bridge_mark)
rc=0
timed_git 60 "$E2E_ROOT/push-dead.log" -C "$DEAD" push origin main || rc=$?
git_failed "git push with a session whose refresh fails" "$E2E_ROOT/push-dead.log" "$rc"
must_mention "git push with a session whose refresh fails" "$E2E_ROOT/push-dead.log" "run: proton-drive login"
must_mention "git push with a session whose refresh fails" "$E2E_ROOT/push-dead.log" "Invalid refresh token"
[[ ! -e $(drive_object "$(oid_of "$DEAD/dead.bin")") ]] || fail "dead.bin was stored without a session"
bridge_check "the refresh was tried once and no Drive command ran" "$MARK" '
cmds = commands()
if cmds.count("refresh") != 1 or set(cmds) != {"auth-state", "refresh"}:
    raise SystemExit("bridge commands: %s" % cmds)
print(" ".join(cmds))'
pass "a push whose refresh fails stopped in $ELAPSED_MS ms naming 'proton-drive login'; one refresh, nothing stored"

# ---- 8. every request was valid -----------------------------------------------------------------
assert_bridge_valid "0 0"
no_live_bridges || fail "bridge processes still run: $(live_bridges)"
pass "no bridge process is left running"
