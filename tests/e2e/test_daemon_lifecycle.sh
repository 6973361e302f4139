#!/usr/bin/env bash
# The per-user daemon's lifecycle: 16 starts at once give one daemon;
# status and stop; a daemon killed with -9 leaves a stale socket that the
# next start replaces; idle exit counts connected clients; a removed socket
# ends the daemon; an unsafe directory is refused; a client of another
# protocol or build gets a readable error and the daemon drains.
#
#   bash tests/e2e/test_daemon_lifecycle.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"

export FERRY_DAEMON_DIR="$E2E_ROOT/daemon"
SOCK="$FERRY_DAEMON_DIR/daemon.sock"
LOG="$FERRY_DAEMON_DIR/daemon.log"
BUILD=$("$FERRY" --version | awk '{print $2}')

# gone <pid>: the process has exited (a zombie not yet reaped by init counts).
gone() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0
  [[ $state == Z ]]
}
daemon_pid() { cat "$FERRY_DAEMON_DIR/daemon.pid"; }

# lock_holders <file>: the pids with <file> open, one a line.
lock_holders() {
  python3 - "$1" <<'EOF'
import os, sys
want = os.path.realpath(sys.argv[1])
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        continue
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == want:
                print(pid)
                break
        except OSError:
            pass
EOF
}

# hello <json> [release-fifo]: sends one hello line and prints the reply
# line; with a fifo, keeps the connection open until a line is written there.
# python3 replaces the shell: call it only in $(...) or with &, where a
# background hello is then one process to track.
hello() {
  exec python3 -c '
import socket, sys
client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
client.settimeout(10)
client.connect(sys.argv[1])
client.sendall(sys.argv[2].encode() + b"\n")
reply = b""
while not reply.endswith(b"\n"):
    chunk = client.recv(4096)
    if not chunk:
        break
    reply += chunk
print(reply.decode().strip(), flush=True)
if sys.argv[3]:
    open(sys.argv[3]).read()
' "$SOCK" "$1" "${2:-}"
}

# ---- 16 starts at the same instant: one daemon --------------------------------
pids=()
for i in $(seq 1 16); do
  "$FERRY" daemon start >"$E2E_ROOT/start.$i.out" 2>&1 &
  pids+=($!)
done
for i in $(seq 1 16); do
  wait "${pids[$((i - 1))]}" || { show "start $i" "$E2E_ROOT/start.$i.out"; fail "ferry daemon start $i failed"; }
done
FIRST=$(daemon_pid)
track_pid "$FIRST"
answers=$(cat "$E2E_ROOT"/start.*.out | sort -u)
[[ $answers == "ferry daemon: running, pid $FIRST" ]] ||
  fail "the 16 starts did not all answer with pid $FIRST: $answers"
holders=$(lock_holders "$FERRY_DAEMON_DIR/daemon.pid")
[[ $holders == "$FIRST" ]] || fail "daemon.pid is held by '$holders', expected $FIRST alone"
[[ $(grep -c ': serving ' "$LOG") -eq 1 ]] || { show log "$LOG"; fail "more than one daemon served"; }
pass "16 simultaneous starts: one daemon (pid $FIRST)"

# ---- status --------------------------------------------------------------------
"$FERRY" daemon status >"$E2E_ROOT/status.out" || fail "ferry daemon status failed"
for want in "pid:       $FIRST" "build:     $BUILD" "clients:   0" "directory: $FERRY_DAEMON_DIR" "uptime:"; do
  grep -qF "$want" "$E2E_ROOT/status.out" || { show status "$E2E_ROOT/status.out"; fail "status lacks '$want'"; }
done
"$FERRY" daemon status --json >"$E2E_ROOT/status.json" || fail "ferry daemon status --json failed"
py_check "status --json names the daemon" '
import json, sys
reply = json.load(open(sys.argv[1]))
want = {"proto": 1, "build": sys.argv[2], "pid": int(sys.argv[3]), "clients": 0, "directory": sys.argv[4]}
for key, value in want.items():
    if reply.get(key) != value:
        raise SystemExit(f"{key}: {reply.get(key)!r}, expected {value!r}")
' "$E2E_ROOT/status.json" "$BUILD" "$FIRST" "$FERRY_DAEMON_DIR"

# ---- kill -9: the stale socket is replaced by the next start --------------------
kill -9 "$FIRST"
wait_for 10 "the killed daemon to go" gone "$FIRST"
[[ -S $SOCK ]] || fail "kill -9 left no socket file (nothing to test)"
if "$FERRY" daemon status >"$E2E_ROOT/stale.out" 2>&1; then fail "status found a daemon after kill -9"; fi
grep -q "not running" "$E2E_ROOT/stale.out" || { show status "$E2E_ROOT/stale.out"; fail "status did not say 'not running'"; }
"$FERRY" daemon start >"$E2E_ROOT/restart.out" 2>&1 || { show start "$E2E_ROOT/restart.out"; fail "start after kill -9 failed"; }
SECOND=$(daemon_pid)
track_pid "$SECOND"
[[ $SECOND != "$FIRST" ]] || fail "daemon.pid still names the killed daemon"
grep -qF "pid $SECOND" "$E2E_ROOT/restart.out" || fail "start did not answer with the new pid $SECOND"
[[ $(hello '{"proto":1,"build":"'"$BUILD"'","pid":1,"kind":"ping"}') == *"\"pid\":$SECOND"* ]] ||
  fail "the socket does not reach the new daemon"
pass "kill -9 left a stale socket; the next start replaced it (pid $SECOND)"

# ---- stop ------------------------------------------------------------------------
"$FERRY" daemon stop >"$E2E_ROOT/stop.out" 2>&1 || { show stop "$E2E_ROOT/stop.out"; fail "ferry daemon stop failed"; }
gone "$SECOND" || fail "ferry daemon stop returned before the daemon exited"
[[ ! -e $SOCK ]] || fail "the stopped daemon left its socket"
grep -q "stopped by 'ferry daemon stop'" "$LOG" || { show log "$LOG"; fail "the log does not say why it stopped"; }
"$FERRY" daemon stop >"$E2E_ROOT/stop2.out" 2>&1 || fail "stop without a daemon failed"
grep -q "not running" "$E2E_ROOT/stop2.out" || fail "stop without a daemon did not say 'not running'"
pass "ferry daemon stop waits until the daemon has exited"

# ---- stop waits for the daemon's process, not only for its answer ------------------
# A stand-in daemon answers the stop with the pid of a process that the test
# ends only after stop has hung up: stop must still be waiting then.
sleep 300 &
STANDIN=$!
track_pid "$STANDIN"
python3 - "$SOCK" "$BUILD" "$STANDIN" "$E2E_ROOT/standin" <<'PY' &
import json, os, socket, sys
path, build, pid, marks = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
server.listen(1)
open(marks + ".listening", "w").close()
client, _ = server.accept()
client.settimeout(10)
while not client.recv(4096).endswith(b"\n"):
    pass
client.sendall(json.dumps({"proto": 1, "build": build, "pid": pid}).encode() + b"\n")
while client.recv(4096):
    pass
os.unlink(path)
open(marks + ".hung-up", "w").close()
PY
SERVER=$!
track_pid "$SERVER"
listening() { [[ -e $E2E_ROOT/standin.listening ]]; }
hung_up() { [[ -e $E2E_ROOT/standin.hung-up ]]; }
wait_for 10 "the stand-in daemon to listen" listening
"$FERRY" daemon stop >"$E2E_ROOT/stop3.out" 2>&1 &
STOPPER=$!
track_pid "$STOPPER"
wait_for 10 "stop to hang up on the stand-in" hung_up
kill -0 "$STOPPER" 2>/dev/null || fail "ferry daemon stop returned while the daemon's process was still there"
kill "$STANDIN"
wait "$STOPPER" || { show stop "$E2E_ROOT/stop3.out"; fail "stop failed once the process ended"; }
grep -qF "stopped pid $STANDIN" "$E2E_ROOT/stop3.out" || { show stop "$E2E_ROOT/stop3.out"; fail "stop did not name the pid"; }
wait "$SERVER" || fail "the stand-in daemon failed"
untrack_pid "$STOPPER"
untrack_pid "$SERVER"
untrack_pid "$STANDIN"
pass "ferry daemon stop waits until the daemon's process has ended"

# ---- idle exit, counting connected clients -----------------------------------------
# 5 s: long enough that a loaded machine connects the client below before
# the daemon, idle until then, exits.
FERRY_DAEMON_IDLE_TIMEOUT=5s "$FERRY" daemon start >/dev/null || fail "start with an idle timeout failed"
IDLE=$(daemon_pid)
track_pid "$IDLE"
mkfifo "$E2E_ROOT/release"
hello '{"proto":1,"build":"'"$BUILD"'","pid":1,"kind":"ping"}' "$E2E_ROOT/release" >"$E2E_ROOT/held.out" &
HOLDER=$!
track_pid "$HOLDER"
held() { [[ -s $E2E_ROOT/held.out ]]; }
wait_for 10 "the held client's reply" held
"$FERRY" daemon status >"$E2E_ROOT/status2.out" || fail "status with a held client failed"
grep -qF "clients:   1" "$E2E_ROOT/status2.out" || { show status "$E2E_ROOT/status2.out"; fail "status does not count the held client"; }
# Held past the idle timeout, the client keeps the daemon alive.
uptime_past_timeout() {
  local uptime
  uptime=$("$FERRY" daemon status | awk '/uptime:/ {print $2}') || return 1
  ((uptime >= 6))
}
wait_for 15 "the daemon's uptime to pass its idle timeout" uptime_past_timeout
echo done >"$E2E_ROOT/release"
wait "$HOLDER"
untrack_pid "$HOLDER"
wait_for 15 "the idle daemon to exit" gone "$IDLE"
grep -q "exiting: idle for 5 s" "$LOG" || { show log "$LOG"; fail "the log does not say it exited when idle"; }
[[ ! -e $SOCK ]] || fail "the idle daemon left its socket"
pass "an idle daemon exits after ferry.daemon.idleTimeout; a connected client counts"

# ---- the socket removed: the daemon exits ----------------------------------------------
"$FERRY" daemon start >/dev/null || fail "start failed"
ORPHAN=$(daemon_pid)
track_pid "$ORPHAN"
rm "$SOCK"
wait_for 15 "the daemon to notice its socket is gone" gone "$ORPHAN"
grep -q "was removed or replaced" "$LOG" || { show log "$LOG"; fail "the log does not say the socket went"; }
pass "a daemon whose socket was removed exits"

# ---- another protocol or build: a readable error, then the daemon drains --------------
for other in '{"proto":2,"build":"'"$BUILD"'","pid":1,"kind":"hover"}' \
  '{"proto":1,"build":"0.0.0-other","pid":1,"kind":"ping"}'; do
  "$FERRY" daemon start >/dev/null || fail "start failed"
  SKEW=$(daemon_pid)
  track_pid "$SKEW"
  reply=$(hello "$other")
  py_check "a client of another protocol or build is refused: $other" '
import json, sys
reply = json.loads(sys.argv[1])
error = reply.get("error", "")
if "cannot serve a client of build" not in error or reply.get("pid") != int(sys.argv[2]):
    raise SystemExit(f"reply {reply!r}")
print(error)
' "$reply" "$SKEW"
  wait_for 15 "the refusing daemon to drain and exit" gone "$SKEW"
  grep -q "exiting: drained" "$LOG" || { show log "$LOG"; fail "the log does not say it drained"; }
done

# ---- an unsafe directory is refused ---------------------------------------------------
OPEN="$E2E_ROOT/open"
mkdir -m 0755 "$OPEN"
if FERRY_DAEMON_DIR=$OPEN "$FERRY" daemon start >"$E2E_ROOT/unsafe.out" 2>&1; then
  fail "start used a directory others may enter"
fi
grep -qF "the daemon directory $OPEN has unsafe permissions 0755" "$E2E_ROOT/unsafe.out" &&
  grep -qF "chmod 0700 $OPEN" "$E2E_ROOT/unsafe.out" ||
  { show start "$E2E_ROOT/unsafe.out"; fail "the refusal does not name the directory and the fix"; }
[[ ! -e $OPEN/daemon.sock && ! -e $OPEN/daemon.pid ]] || fail "something was made in the unsafe directory"
pass "a directory with unsafe permissions is refused: $(cat "$E2E_ROOT/unsafe.out")"
