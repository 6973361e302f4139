#!/usr/bin/env bash
# Two users' daemons do not see each other. User A is the test's own (root);
# user B is an unused uid (65533) the test runs commands as with `setpriv
# --reuid --regid --clear-groups`, with a HOME of its own and its daemon
# directory found through its own XDG_RUNTIME_DIR, all under the test root.
#
#   1. each user's `ferry daemon start` starts a daemon of its own, run by
#      that uid; each user's `ferry daemon status` names its own daemon
#      (different pids, its own directory).
#   2. B cannot enter A's daemon directory; B's ferry pointed at it
#      (FERRY_DAEMON_DIR) refuses it for its owner; a raw connect to A's
#      socket is denied by the file system.
#   3. the peer check behind the directory: with A's directory and socket
#      opened to everyone on purpose, B's connection reaches A's daemon,
#      which closes it unanswered (SO_PEERCRED) and logs the refusal with
#      B's uid and pid; A's daemon still serves A. The other way round, root
#      (who passes any file mode) reaches B's socket and B's daemon refuses
#      and logs it the same way.
#
# Skipped (exit 77) when not run as root or when setpriv is missing.
#
#   bash tests/e2e/test_daemon_two_users.sh <path-to-ferry>
set -euo pipefail
if [[ $(id -u) -ne 0 ]]; then
  echo "test_daemon_two_users: SKIPPED: needs root to run commands as a second uid (setpriv)"
  exit 77
fi
if ! command -v setpriv >/dev/null; then
  echo "test_daemon_two_users: SKIPPED: needs setpriv (package util-linux)"
  exit 77
fi
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"

UID_B=65533
! getent passwd "$UID_B" >/dev/null || fail "uid $UID_B is a user of this system; the test needs an unused uid"
[[ -z $(ps -o pid= -u "$UID_B" 2>/dev/null) ]] || fail "uid $UID_B runs processes; the test needs an unused uid"

A_DIR=$FERRY_DAEMON_DIR
A_LOG="$A_DIR/daemon.log"
# B reaches its own files through the test root, and nothing else in it.
chmod 0711 "$E2E_ROOT"
B_ROOT="$E2E_ROOT/user-b"
B_HOME="$B_ROOT/home"
B_RUN="$B_ROOT/run"
B_DIR="$B_RUN/ferry"
B_LOG="$B_DIR/daemon.log"
mkdir -p "$B_HOME" "$B_RUN"
chown -R "$UID_B:$UID_B" "$B_ROOT"
chmod 0700 "$B_HOME" "$B_RUN"

# as_b <command...>: runs as uid B with no supplementary group and an
# environment of B's own (so its daemon directory is $B_RUN/ferry).
as_b() {
  setpriv --reuid="$UID_B" --regid="$UID_B" --clear-groups \
    env -i HOME="$B_HOME" XDG_RUNTIME_DIR="$B_RUN" PATH="$PATH" LC_ALL=C GIT_CONFIG_NOSYSTEM=1 "$@"
}
as_b test -x "$FERRY" || fail "uid $UID_B cannot run $FERRY (a directory above it is closed to others)"

owner_of() { stat -c %u "/proc/$1"; }
status_pid() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get("pid"))' "$1"; }

# connect_as <who> <socket> <out>: as root or B, connects to <socket>, sends
# a ping hello and writes "pid <its pid>" and then the reply, "closed" when
# the daemon closed the connection unanswered (before or after the hello), or "denied: <error>" when the
# connect itself failed.
connect_as() {
  local runner=()
  [[ $1 == root ]] || runner=(as_b)
  "${runner[@]}" python3 -c '
import json, os, socket, sys
print("pid", os.getpid(), flush=True)
client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
client.settimeout(10)
try:
    client.connect(sys.argv[1])
except OSError as e:
    print("denied:", e.strerror)
    sys.exit(0)
hello = {"proto": 1, "build": sys.argv[2], "pid": os.getpid(), "kind": "ping"}
reply = b""
try:
    client.sendall(json.dumps(hello).encode() + b"\n")
    while not reply.endswith(b"\n"):
        chunk = client.recv(4096)
        if not chunk:
            break
        reply += chunk
except (BrokenPipeError, ConnectionResetError):
    pass  # closed before or while the hello went out
print(reply.decode().strip() or "closed")
' "$2" "$BUILD" >"$3"
}
BUILD=$("$FERRY" --version | awk '{print $2}')

# ---- 1. a daemon per user --------------------------------------------------------
"$FERRY" daemon start >"$E2E_ROOT/start-a.out" 2>&1 || { show "start as A" "$E2E_ROOT/start-a.out"; fail "ferry daemon start as A failed"; }
PID_A=$(cat "$A_DIR/daemon.pid")
track_pid "$PID_A"
as_b "$FERRY" daemon start >"$E2E_ROOT/start-b.out" 2>&1 || { show "start as B" "$E2E_ROOT/start-b.out"; fail "ferry daemon start as B failed"; }
[[ -f $B_DIR/daemon.pid ]] || fail "B's daemon is not in $B_DIR (its XDG_RUNTIME_DIR)"
PID_B=$(cat "$B_DIR/daemon.pid")
track_pid "$PID_B"
[[ $PID_A != "$PID_B" ]] || fail "both users name the same daemon (pid $PID_A)"
[[ $(owner_of "$PID_A") == 0 && $(owner_of "$PID_B") == "$UID_B" ]] ||
  fail "daemon $PID_A runs as uid $(owner_of "$PID_A") and daemon $PID_B as uid $(owner_of "$PID_B")"
"$FERRY" daemon status --json >"$E2E_ROOT/status-a.json" || fail "ferry daemon status as A failed"
as_b "$FERRY" daemon status --json >"$E2E_ROOT/status-b.json" || fail "ferry daemon status as B failed"
py_check "each user's ferry daemon status names its own daemon" '
import json, sys
for path, pid, directory in ((sys.argv[1], sys.argv[2], sys.argv[3]), (sys.argv[4], sys.argv[5], sys.argv[6])):
    status = json.load(open(path))
    if status.get("pid") != int(pid) or status.get("directory") != directory:
        raise SystemExit("%s: pid %s in %s, expected pid %s in %s"
                         % (path, status.get("pid"), status.get("directory"), pid, directory))
print("A: pid %s in %s; B: pid %s in %s" % tuple(sys.argv[2:4] + sys.argv[5:7]))
' "$E2E_ROOT/status-a.json" "$PID_A" "$A_DIR" "$E2E_ROOT/status-b.json" "$PID_B" "$B_DIR"

# ---- 2. B cannot reach A's daemon -------------------------------------------------
if as_b ls "$A_DIR" >"$E2E_ROOT/ls.out" 2>&1; then fail "uid $UID_B listed A's daemon directory"; fi
grep -q "Permission denied" "$E2E_ROOT/ls.out" || { show ls "$E2E_ROOT/ls.out"; fail "ls of A's directory as B did not fail for permission"; }
if as_b env FERRY_DAEMON_DIR="$A_DIR" "$FERRY" daemon status >"$E2E_ROOT/b-in-a.out" 2>&1; then
  show status "$E2E_ROOT/b-in-a.out"
  fail "B's ferry daemon status used A's directory"
fi
grep -qF "the daemon directory $A_DIR is owned by uid 0, not by uid $UID_B" "$E2E_ROOT/b-in-a.out" ||
  { show status "$E2E_ROOT/b-in-a.out"; fail "B's ferry did not refuse A's directory for its owner"; }
connect_as b "$A_DIR/daemon.sock" "$E2E_ROOT/b-to-a.out"
grep -q "^denied: Permission denied" "$E2E_ROOT/b-to-a.out" ||
  { show connect "$E2E_ROOT/b-to-a.out"; fail "B's connect to A's socket was not denied by the file system"; }
! grep -q "refused a connection" "$A_LOG" || { show "A's log" "$A_LOG"; fail "a connection of B reached A's daemon"; }
pass "B cannot enter A's directory; B's ferry refuses it ($(cat "$E2E_ROOT/b-in-a.out")); a raw connect is denied"

# ---- 3. the peer check behind the directory ---------------------------------------
# refused_in <log> <uid> <pid>: the daemon logged the refusal of that peer.
refused_in() { grep -qF "refused a connection from uid $2 (pid $3): not this user" "$1"; }
chmod 0711 "$A_DIR"
chmod 0777 "$A_DIR/daemon.sock"
connect_as b "$A_DIR/daemon.sock" "$E2E_ROOT/b-to-a-open.out"
chmod 0700 "$A_DIR/daemon.sock" "$A_DIR"
client=$(awk 'NR == 1 {print $2}' "$E2E_ROOT/b-to-a-open.out")
[[ $(sed -n 2p "$E2E_ROOT/b-to-a-open.out") == closed ]] ||
  { show connect "$E2E_ROOT/b-to-a-open.out"; fail "A's daemon did not close B's connection unanswered"; }
wait_for 10 "A's daemon to log the refusal" refused_in "$A_LOG" "$UID_B" "$client"
"$FERRY" daemon status --json >"$E2E_ROOT/status-a2.json" || fail "A's daemon stopped serving A after the refusal"
[[ $(status_pid "$E2E_ROOT/status-a2.json") == "$PID_A" ]] || fail "another daemon answers A: $(cat "$E2E_ROOT/status-a2.json")"
pass "with its directory opened, A's daemon refused B's connection (SO_PEERCRED) and logged uid $UID_B, pid $client"

if FERRY_DAEMON_DIR=$B_DIR "$FERRY" daemon status >"$E2E_ROOT/a-in-b.out" 2>&1; then
  show status "$E2E_ROOT/a-in-b.out"
  fail "A's ferry daemon status used B's directory"
fi
grep -qF "the daemon directory $B_DIR is owned by uid $UID_B, not by uid 0" "$E2E_ROOT/a-in-b.out" ||
  { show status "$E2E_ROOT/a-in-b.out"; fail "A's ferry did not refuse B's directory for its owner"; }
connect_as root "$B_DIR/daemon.sock" "$E2E_ROOT/root-to-b.out"
client=$(awk 'NR == 1 {print $2}' "$E2E_ROOT/root-to-b.out")
[[ $(sed -n 2p "$E2E_ROOT/root-to-b.out") == closed ]] ||
  { show connect "$E2E_ROOT/root-to-b.out"; fail "B's daemon did not close root's connection unanswered"; }
wait_for 10 "B's daemon to log the refusal" refused_in "$B_LOG" 0 "$client"
as_b "$FERRY" daemon status --json >"$E2E_ROOT/status-b2.json" || fail "B's daemon stopped serving B after the refusal"
[[ $(status_pid "$E2E_ROOT/status-b2.json") == "$PID_B" ]] || fail "another daemon answers B: $(cat "$E2E_ROOT/status-b2.json")"
pass "root reached B's socket past its file mode; B's daemon refused it (SO_PEERCRED) and logged uid 0, pid $client"

as_b "$FERRY" daemon stop >/dev/null || fail "ferry daemon stop as B failed"
"$FERRY" daemon stop >/dev/null || fail "ferry daemon stop as A failed"
untrack_pid "$PID_A"
untrack_pid "$PID_B"
