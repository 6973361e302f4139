#!/usr/bin/env bash
# Transfers through the per-user daemon (ferry.daemon=true, the
# default), with git-lfs's own default concurrency (8 agents per
# repository), every agent a thin client of one daemon of this test's own
# (FERRY_DAEMON_DIR):
#
#   1. push of 40 objects into a folder store, with the settings `ferry
#      install` leaves and nothing else: every object intact, no
#      partial file; the first agent started the daemon and every agent was
#      served by it (daemon.log), and each agent's own process ran no engine.
#      The agents shared one engine: one journal (no journal slot was
#      made), started once. The push ran with GIT_TRACE set to a file: the
#      repository's own ferry.log says each object was done, and the trace
#      has ferry's lines about each object, as without the daemon.
#   2. a fresh clone pulls them all through the same daemon, byte for byte,
#      on one engine too.
#   2b. one repository, two commands at once, both through one engine: two
#      `git lfs push --all` of the same objects into a new store, then two
#      `git lfs fetch` of them in a new clone; every object intact.
#   3. two repositories push at once through the one daemon; the second
#      names its store only in its push's environment (FERRY_STORE), which
#      the daemon (started without it) must take from the agents' session.
#   4. the transfer an LFS server offers (ferry-lfs-sim --offer-transfer
#      ferry), push and pull through the daemon.
#   5. `kill -9` of the daemon in the middle of a push: the agents connect
#      to a new daemon and send it the transfers in flight again, so the
#      push completes; a second push completes too, and every object is
#      intact in the store with no partial file visible.
#   6. a daemon directory that cannot be used, and a daemon that cannot
#      start: each agent says so once and runs the engine in its own
#      process; the push completes.
#   7. an LFS store that needs credentials the helper gives only in the
#      agent's own environment: the daemon has the agent run git credential.
#
#   FERRY_LFS_SIM=<ferry-lfs-sim> bash tests/e2e/test_daemon_transfers.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/daemon_lib.sh"
e2e_init "$@"

# lib.sh turns the daemon off for the other tests; here it is left at its
# default.
unset FERRY_DAEMON
DLOG="$FERRY_DAEMON_DIR/daemon.log"

COUNT=40

# ---- 1. push with 8 agents through the daemon ----------------------------------------
REPO="$E2E_ROOT/origin-repo"
STORE="$E2E_ROOT/store"
new_repo origin-repo
(cd "$REPO" && "$FERRY" install --store "file://$STORE") >"$E2E_ROOT/install.out" 2>&1 ||
  { show "ferry install" "$E2E_ROOT/install.out"; fail "ferry install in $REPO failed"; }
add_mixed_lfs_files "$REPO" "$COUNT"
[[ ! -e $FERRY_DAEMON_DIR/daemon.sock ]] || fail "a daemon runs before the first push"
GIT_TRACE="$E2E_ROOT/push-trace.log" must_git 300 "$E2E_ROOT/push.log" -C "$REPO" push origin main
for f in "${FILES[@]}"; do assert_stored "$STORE" "$REPO/$f"; done
assert_no_partials "$STORE"
FIRST=$(daemon_pid)
track_pid "$FIRST"
pass "git push at git-lfs's default concurrency through the daemon stored all $COUNT objects intact"
served=$(served_in "$REPO")
((served > 1)) || { show "daemon log" "$DLOG"; fail "the daemon served $served agent(s) of the push, expected several"; }
((${#FILES[@]} > 0 && $(engines_in_agents "$REPO") == 0)) ||
  { show "ferry log" "$REPO/.git/lfs/ferry/ferry.log"; fail "agents of the push ran the engine in their own process"; }
[[ $(grep -c ': serving ' "$DLOG") -eq 1 ]] || { show "daemon log" "$DLOG"; fail "more than one daemon served"; }
pass "one daemon (pid $FIRST) served all $served agents of the push; no agent ran an engine itself"
assert_one_engine "$REPO" "the push"
pass "the $served agents of the push shared one engine: one journal, no journal slot"
for f in "${FILES[@]}"; do
  oid=$(oid_of "$REPO/$f")
  grep -q "oid=$oid msg=\"upload: done\"" "$REPO/.git/lfs/ferry/ferry.log" ||
    { show "ferry log" "$REPO/.git/lfs/ferry/ferry.log"; fail "the repository's ferry.log does not say $f ($oid) was uploaded"; }
  grep -q "trace ferry: .* oid=$oid" "$E2E_ROOT/push-trace.log" ||
    { show "trace" "$E2E_ROOT/push-trace.log"; fail "git-lfs's trace has no ferry line about $f ($oid)"; }
done
pass "the repository's ferry.log and git-lfs's trace have the daemon's lines about each of the push's objects"
"$FERRY" daemon status --json >"$E2E_ROOT/status.json" || fail "ferry daemon status failed"
py_check "ferry daemon status: no agent left once the push is done" '
import json, sys
doc = json.load(open(sys.argv[1]))
if doc.get("agents") != 0 or doc.get("repositories") != 0:
    raise SystemExit("agents %s in %s repositories still served" % (doc.get("agents"), doc.get("repositories")))
' "$E2E_ROOT/status.json"

# ---- 2. pull through the daemon ---------------------------------------------------------
CLONE="$E2E_ROOT/clone"
clone_pointers "$E2E_ROOT/origin-repo.git" "$CLONE" "$E2E_ROOT/clone.log"
git_lfs_defaults "$CLONE" "$STORE"
must_git 300 "$E2E_ROOT/pull.log" -C "$CLONE" lfs pull
assert_checkout "$REPO" "$CLONE" "${FILES[@]}"
((served = $(served_in "$CLONE"), served > 1)) || { show "daemon log" "$DLOG"; fail "the daemon served $served agent(s) of the pull"; }
[[ $(daemon_pid) == "$FIRST" ]] || fail "another daemon ($(daemon_pid)) served the pull"
pass "git lfs pull through the same daemon ($served agents) restored all $COUNT files byte for byte"
assert_one_engine "$CLONE" "the pull"

# ---- 2b. one repository, two commands at once, one engine ---------------------------------
# Both pushes send every object (a new store), so each object is asked for
# by two agents of the one engine at once; so is each download of the two
# fetches.
TWICE_STORE="$E2E_ROOT/store-twice"
twice() {
  local what=$1 dir=$2 rc_1=0 rc_2=0 pid_1 pid_2
  shift 2
  FERRY_STORE="file://$TWICE_STORE" timed_git 300 "$E2E_ROOT/$what-1.log" -C "$dir" "$@" &
  pid_1=$!
  FERRY_STORE="file://$TWICE_STORE" timed_git 300 "$E2E_ROOT/$what-2.log" -C "$dir" "$@" &
  pid_2=$!
  wait "$pid_1" || rc_1=$?
  wait "$pid_2" || rc_2=$?
  ((rc_1 == 0)) || { show "first git $*" "$E2E_ROOT/$what-1.log"; show "ferry log" "$FERRY_DAEMON_DIR/ferry.log"; fail "the first of two git $* at once failed (exit $rc_1)"; }
  ((rc_2 == 0)) || { show "second git $*" "$E2E_ROOT/$what-2.log"; show "ferry log" "$FERRY_DAEMON_DIR/ferry.log"; fail "the second of two git $* at once failed (exit $rc_2)"; }
}
engines_before=$(engines_started_in "$REPO")
twice push-twice "$REPO" lfs push --all origin
for f in "${FILES[@]}"; do assert_stored "$TWICE_STORE" "$REPO/$f"; done
assert_no_partials "$TWICE_STORE"
[[ ! -e $REPO/.git/lfs/ferry/slots ]] || { show "daemon log" "$DLOG"; fail "two pushes at once took journal slots"; }
pass "two git lfs push --all of one repository at once ($(($(engines_started_in "$REPO") - engines_before)) engine(s) in turn): every object intact, one journal"
TWICE="$E2E_ROOT/clone-twice"
clone_pointers "$E2E_ROOT/origin-repo.git" "$TWICE" "$E2E_ROOT/clone-twice.log"
git_lfs_defaults "$TWICE" "$STORE"
twice fetch-twice "$TWICE" lfs fetch
must_git 300 "$E2E_ROOT/checkout-twice.log" -C "$TWICE" lfs checkout
assert_checkout "$REPO" "$TWICE" "${FILES[@]}"
[[ ! -e $TWICE/.git/lfs/ferry/slots ]] || { show "daemon log" "$DLOG"; fail "two fetches at once took journal slots"; }
pass "two git lfs fetch of one repository at once: every file byte for byte, one journal"

# ---- 3. two repositories at once, one daemon --------------------------------------------
STORE_A="$E2E_ROOT/store-a"
STORE_B="$E2E_ROOT/store-b"
new_repo repo-a
new_repo repo-b
git_lfs_defaults "$E2E_ROOT/repo-a" "$STORE_A"
# repo-b's git config names store-a as well; its push's environment overrides it.
git_lfs_defaults "$E2E_ROOT/repo-b" "$STORE_A"
A_SPECS=() B_SPECS=() A_FILES=() B_FILES=()
for i in $(seq 1 24); do
  A_SPECS+=("a$i.bin=$((i * 4099))") A_FILES+=("a$i.bin")
  B_SPECS+=("b$i.bin=$((i * 4111))") B_FILES+=("b$i.bin")
done
add_lfs_files "$E2E_ROOT/repo-a" "${A_SPECS[@]}"
add_lfs_files "$E2E_ROOT/repo-b" "${B_SPECS[@]}"
timed_git 300 "$E2E_ROOT/push-a.log" -C "$E2E_ROOT/repo-a" push origin main &
pid_a=$!
FERRY_STORE="file://$STORE_B" timed_git 300 "$E2E_ROOT/push-b.log" -C "$E2E_ROOT/repo-b" push origin main &
pid_b=$!
await_both "$pid_a" "$E2E_ROOT/push-a.log" "the push of repo-a" "$pid_b" "$E2E_ROOT/push-b.log" "the push of repo-b"
for f in "${A_FILES[@]}"; do assert_stored "$STORE_A" "$E2E_ROOT/repo-a/$f"; done
for f in "${B_FILES[@]}"; do assert_stored "$STORE_B" "$E2E_ROOT/repo-b/$f"; done
for f in "${B_FILES[@]}"; do
  [[ ! -e $(store_object "$STORE_A" "$(oid_of "$E2E_ROOT/repo-b/$f")") ]] ||
    fail "repo-b's $f went to the store of its git config, not the one of its push's environment"
done
[[ $(daemon_pid) == "$FIRST" ]] || fail "another daemon ($(daemon_pid)) served the two pushes"
((served_a = $(served_in "$E2E_ROOT/repo-a"), served_b = $(served_in "$E2E_ROOT/repo-b"), served_a > 0 && served_b > 0)) ||
  { show "daemon log" "$DLOG"; fail "the daemon served $served_a agent(s) of repo-a and $served_b of repo-b"; }
pass "two repositories pushed at once through one daemon ($served_a + $served_b agents), each with its own context"

# ---- 4. the transfer an LFS server offers -----------------------------------------------
sim_init
sim_credentials
start_sim "" --offer-transfer ferry
SERVER_FILES=()
for i in $(seq 1 16); do SERVER_FILES+=("s$i.bin=$((i * 1031))"); done
round_trip offered server_offered "${SERVER_FILES[@]}"
((served = $(served_in "$E2E_ROOT/offered") + $(served_in "$E2E_ROOT/offered-clone"), served > 2)) ||
  { show "daemon log" "$DLOG"; fail "the daemon served $served agent(s) of the server-offered round trip"; }
((${#SERVER_FILES[@]} > 0 && $(engines_in_agents "$E2E_ROOT/offered") == 0)) || fail "server-offered agents ran the engine themselves"
pass "server-offered: push and pull through the daemon ($served agents)"
stop_sim

# ---- 5. kill -9 of the daemon in the middle of a push -----------------------------------
KREPO="$E2E_ROOT/kill-repo"
KSTORE="$E2E_ROOT/kill-store"
new_repo kill-repo
git_lfs_defaults "$KREPO" "$KSTORE"
K_SPECS=() K_FILES=()
for i in $(seq 1 32); do K_SPECS+=("k$i.bin=$((12 * 1024 * 1024 + i))") K_FILES+=("k$i.bin"); done
add_lfs_files "$KREPO" "${K_SPECS[@]}"
timed_git 300 "$E2E_ROOT/kill-push.log" -C "$KREPO" push origin main &
push_pid=$!
stored_some() { [[ -n $(find "$KSTORE" -type f -name '[0-9a-f]*' -print -quit 2>/dev/null) ]]; }
wait_for 120 "an object in the store" stored_some
victim=$(daemon_pid)
kill -0 "$push_pid" 2>/dev/null || fail "the push ended before the daemon could be killed in its middle"
stored_at_kill=$(find "$KSTORE" -type f -name '[0-9a-f]*' | wc -l)
kill -9 "$victim"
note "killed the daemon (pid $victim) with $stored_at_kill of 32 objects stored"
((stored_at_kill < 32)) || fail "every object was stored before the kill"
rc=0
wait "$push_pid" || rc=$?
((rc == 0)) || { show "push across the kill" "$E2E_ROOT/kill-push.log"; show "ferry log" "$KREPO/.git/lfs/ferry/ferry.log"; fail "the push across the daemon's kill failed (exit $rc)"; }
grep -q "went away with" "$KREPO/.git/lfs/ferry/ferry.log" ||
  { show "ferry log" "$KREPO/.git/lfs/ferry/ferry.log"; fail "no agent saw its daemon go away"; }
[[ $(daemon_pid) != "$victim" ]] || fail "no new daemon took over"
track_pid "$(daemon_pid)"
pass "kill -9 of the daemon mid-push: the agents moved to a new daemon (pid $(daemon_pid)) and the push completed"
must_git 300 "$E2E_ROOT/kill-push2.log" -C "$KREPO" push origin main
for f in "${K_FILES[@]}"; do assert_stored "$KSTORE" "$KREPO/$f"; done
assert_no_partials "$KSTORE"
pass "a second push completes; all 32 objects are intact in the store, no partial file"

# ---- 6. no daemon to be had: the engine runs in each agent ------------------------------
"$FERRY" daemon stop >/dev/null || fail "ferry daemon stop failed"
# fallback_push <name> <why>: a push of 12 objects with the daemon unusable
# as set up by the caller; each agent must say so once and run the engine.
fallback_push() {
  local name=$1 why=$2 f fell_back ran
  local repo="$E2E_ROOT/$name" store="$E2E_ROOT/$name-store" specs=() files=()
  new_repo "$name"
  git_lfs_defaults "$repo" "$store"
  for i in $(seq 1 12); do specs+=("g$i.bin=$((i * 2003))") files+=("g$i.bin"); done
  add_lfs_files "$repo" "${specs[@]}"
  must_git 300 "$E2E_ROOT/$name-push.log" -C "$repo" push origin main
  for f in "${files[@]}"; do assert_stored "$store" "$repo/$f"; done
  fell_back=$(grep -c "running the engine in this process" "$repo/.git/lfs/ferry/ferry.log" || true)
  ran=$(engines_in_agents "$repo")
  ((fell_back > 0 && fell_back == ran)) ||
    { show "ferry log" "$repo/.git/lfs/ferry/ferry.log"; fail "$why: $ran agent(s) ran the engine, $fell_back said why"; }
  [[ ! -e $FERRY_DAEMON_DIR/daemon.sock ]] || fail "$why: yet a daemon serves $FERRY_DAEMON_DIR"
  pass "$why: each of $ran agents said so once, ran the engine itself, and the push completed"
}
export FERRY_DAEMON_DIR="$E2E_ROOT/open-dir"
mkdir -m 0755 "$FERRY_DAEMON_DIR"
fallback_push fallback-unsafe "a daemon directory others may enter"
# The daemon cannot start when its log cannot be opened.
export FERRY_DAEMON_DIR="$E2E_ROOT/no-log-dir"
mkdir -m 0700 "$FERRY_DAEMON_DIR"
mkdir "$FERRY_DAEMON_DIR/daemon.log"
fallback_push fallback-no-start "a daemon that cannot start"

# ---- 7. git credential runs in the agent's own context ----------------------------------
# The LFS store (ferry-lfs-sim) answers 401 to a batch without credentials;
# the credential helper answers only in an environment that has
# E2E_AGENT_ONLY, a variable no session carries to the daemon.
export FERRY_DAEMON_DIR="$E2E_ROOT/daemon-credentials"
cat >"$E2E_ROOT/auth.json" <<'JSON'
{"rules": [{"name": "401 until the client sends credentials", "match": {"endpoint": "batch"},
            "fault": {"status": 401, "then_success": true}}]}
JSON
cat >"$E2E_ROOT/bin/git-credential-agent-only" <<'HELPER'
#!/bin/sh
cat >/dev/null
[ "$1" = get ] || exit 0
[ "${E2E_AGENT_ONLY:-}" = yes ] || exit 0
printf 'username=e2e\npassword=only-the-agent-knows\n'
HELPER
chmod 700 "$E2E_ROOT/bin/git-credential-agent-only"
git config --global credential.helper "$E2E_ROOT/bin/git-credential-agent-only"
start_sim "$E2E_ROOT/auth.json"
CREPO="$E2E_ROOT/cred-repo"
new_repo cred-repo
install_ferry_url "$CREPO" "lfs+$(lfs_url cred-repo)"
git -C "$CREPO" config --unset lfs.customtransfer.ferry.concurrent
C_SPECS=() C_FILES=()
for i in $(seq 1 10); do C_SPECS+=("c$i.bin=$((i * 3001))") C_FILES+=("c$i.bin"); done
add_lfs_files "$CREPO" "${C_SPECS[@]}"
E2E_AGENT_ONLY=yes must_git 300 "$E2E_ROOT/cred-push.log" -C "$CREPO" push origin main
for f in "${C_FILES[@]}"; do assert_stored "$SIM_ROOT" "$CREPO/$f"; done
((served = $(served_in "$CREPO"), served > 0 && $(engines_in_agents "$CREPO") == 0)) ||
  { show "daemon log" "$FERRY_DAEMON_DIR/daemon.log"; fail "the push's agents were not served by the daemon"; }
pass "an LFS store's credential came from git credential run by the agent ($served agents through the daemon)"
stop_sim

# ---- 8. init is answered before the daemon has taken the session -----------------------
# git-lfs starts its agents one after another, each once the one before has
# answered init. A stand-in daemon takes an agent's hello and session and
# never answers the session: the agent answers git-lfs's init anyway (it
# answers before it connects), and still hands the daemon its session.
SLOW_DIR="$E2E_ROOT/slow-daemon"
mkdir -m 700 "$SLOW_DIR"
BUILD=$("$FERRY" --version | awk '{print $2}')
py_check "an agent answers init while its daemon has not yet taken the session" '
import json, os, select, socket, subprocess, sys, threading
ferry, repo, sock_path, build = sys.argv[1:5]
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(sock_path)
server.listen(1)
held = threading.Event()
def stand_in():
    client, _ = server.accept()
    lines = client.makefile("rb")
    lines.readline()
    client.sendall(json.dumps({"proto": 1, "build": build, "pid": os.getpid()}).encode() + b"\n")
    if lines.readline():
        held.set()
    try:
        lines.read()  # the session stays unanswered while the agent lives
    except OSError:
        pass
threading.Thread(target=stand_in, daemon=True).start()
env = dict(os.environ, FERRY_DAEMON_DIR=os.path.dirname(sock_path))
agent = subprocess.Popen([ferry, "agent"], cwd=repo, env=env, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
try:
    agent.stdin.write(b"{\"event\":\"init\",\"operation\":\"upload\",\"remote\":\"origin\",\"concurrent\":true,\"concurrenttransfers\":8}\n")
    agent.stdin.flush()
    ready, _, _ = select.select([agent.stdout], [], [], 30)
    if not ready:
        raise SystemExit("no answer to init within 30 s while the daemon held the session")
    reply = agent.stdout.readline()
    if json.loads(reply) != {}:
        raise SystemExit("init was answered with %r" % reply)
    # Answered through the daemon path, not by an agent that gave up on it.
    if not held.wait(30):
        raise SystemExit("the agent never handed the daemon its session")
finally:
    agent.kill()
    agent.wait()
' "$FERRY" "$REPO" "$SLOW_DIR/daemon.sock" "$BUILD"
pass "an agent answers git-lfs's init at once, before its daemon has taken the session"
