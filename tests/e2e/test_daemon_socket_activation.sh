#!/usr/bin/env bash
# The per-user daemon started by systemd's socket activation, with the units
# of docs/systemd/ and systemd-socket-activate standing in for systemd: it
# listens on the socket ferry.socket names and, at the first connection,
# runs ferry.service's command with that socket as descriptor 3
# (LISTEN_FDS=1).
#
#   1. systemd-analyze verify accepts the units; the socket is where agents
#      look for the daemon ($XDG_RUNTIME_DIR/ferry/daemon.sock);
#   2. a push at git-lfs's defaults (8 agents) stores every object intact,
#      served by the activated daemon (the pid systemd-socket-activate ran
#      it as): no agent started a daemon of its own, and the socket file is
#      still the manager's (same inode);
#   3. `ferry daemon stop` ends it and leaves the manager's socket file;
#   4. a socket passed for another path is refused, naming both paths, and
#      the daemon exits 1.
#
#   bash tests/e2e/test_daemon_socket_activation.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"
UNITS="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../docs/systemd" && pwd)"
command -v systemd-socket-activate >/dev/null || fail "systemd-socket-activate is not installed (package systemd)"
# The daemon on, in its default directory under a runtime directory of this
# test's own.
unset FERRY_DAEMON FERRY_DAEMON_DIR
export XDG_RUNTIME_DIR="$E2E_ROOT/run"
mkdir -m 700 "$XDG_RUNTIME_DIR"
DIR="$XDG_RUNTIME_DIR/ferry"

# ---- 1. the units ----------------------------------------------------------------------
# ferry.service runs the packaged binary; this test runs its own build.
mkdir "$E2E_ROOT/units"
cp "$UNITS/ferry.socket" "$E2E_ROOT/units/"
sed "s|^ExecStart=/usr/bin/ferry |ExecStart=$FERRY |" "$UNITS/ferry.service" >"$E2E_ROOT/units/ferry.service"
grep -qx "ExecStart=$FERRY daemon run" "$E2E_ROOT/units/ferry.service" ||
  { show "ferry.service" "$UNITS/ferry.service"; fail "ferry.service does not run '/usr/bin/ferry daemon run'"; }
(cd "$E2E_ROOT/units" && systemd-analyze verify --user ./ferry.socket ./ferry.service) >"$E2E_ROOT/verify.out" 2>&1 ||
  { show "systemd-analyze verify" "$E2E_ROOT/verify.out"; fail "systemd-analyze verify rejects the units"; }
[[ ! -s $E2E_ROOT/verify.out ]] ||
  { show "systemd-analyze verify" "$E2E_ROOT/verify.out"; fail "systemd-analyze verify has remarks about the units"; }
listen=$(sed -n 's/^ListenStream=//p' "$UNITS/ferry.socket")
SOCK=${listen//%t/$XDG_RUNTIME_DIR}
[[ $SOCK == "$DIR/daemon.sock" ]] || fail "ferry.socket listens on $SOCK, not where agents look ($DIR/daemon.sock)"
pass "systemd-analyze verify accepts the units; the socket is where agents look"

# start_manager <socket> <log>: systemd-socket-activate listening on
# <socket> (in a directory made as ferry.socket's DirectoryMode says), to
# run ferry.service's command; sets MANAGER.
start_manager() {
  local mode variables=() var run
  mode=$(sed -n 's/^DirectoryMode=//p' "$UNITS/ferry.socket")
  mkdir -m "$mode" "$(dirname "$1")"
  for var in HOME PATH XDG_RUNTIME_DIR XDG_CONFIG_HOME GIT_CONFIG_NOSYSTEM LC_ALL; do variables+=(-E "$var"); done
  read -r -a run < <(sed -n 's/^ExecStart=//p' "$E2E_ROOT/units/ferry.service")
  systemd-socket-activate -l "$1" "${variables[@]}" "${run[@]}" >"$2" 2>&1 &
  MANAGER=$!
  track_pid "$MANAGER"
  wait_for 10 "systemd-socket-activate to listen on $1" test -S "$1"
}

# ---- 2. a push served by the activated daemon ------------------------------------------
start_manager "$SOCK" "$E2E_ROOT/manager.log"
INODE=$(stat -c %i "$SOCK")
REPO="$E2E_ROOT/repo"
STORE="$E2E_ROOT/store"
new_repo repo
(cd "$REPO" && "$FERRY" install --store "file://$STORE") >"$E2E_ROOT/install.out" 2>&1 ||
  { show "ferry install" "$E2E_ROOT/install.out"; fail "ferry install in $REPO failed"; }
add_mixed_lfs_files "$REPO" 20
must_git 300 "$E2E_ROOT/push.log" -C "$REPO" push origin main
for f in "${FILES[@]}"; do assert_stored "$STORE" "$REPO/$f"; done
assert_no_partials "$STORE"
pass "git push at git-lfs's defaults stored all ${#FILES[@]} objects intact"
[[ $(cat "$DIR/daemon.pid" 2>/dev/null) == "$MANAGER" ]] ||
  { show "manager log" "$E2E_ROOT/manager.log"; fail "the daemon is not the one systemd-socket-activate ran (pid $MANAGER)"; }
grep -q ": serving $SOCK (socket activation)" "$E2E_ROOT/manager.log" ||
  { show "manager log" "$E2E_ROOT/manager.log"; fail "the daemon did not serve the socket it was passed"; }
# An agent that starts a daemon logs it to daemon.log; the manager's daemon logs to its output.
[[ ! -e $DIR/daemon.log ]] || { show "daemon.log" "$DIR/daemon.log"; fail "an agent started a daemon of its own"; }
served=$(grep -c "agent (pid [0-9]*) in $REPO\$" "$E2E_ROOT/manager.log" || true)
((served > 1)) || { show "manager log" "$E2E_ROOT/manager.log"; fail "the daemon served $served agent(s), expected several"; }
[[ $(stat -c %i "$SOCK") == "$INODE" ]] || fail "the socket file $SOCK was replaced during the push"
pass "the activated daemon (pid $MANAGER) served all $served agents on the manager's socket"

# ---- 3. stop -----------------------------------------------------------------------------
"$FERRY" daemon stop >"$E2E_ROOT/stop.out" 2>&1 || { show "ferry daemon stop" "$E2E_ROOT/stop.out"; fail "ferry daemon stop failed"; }
grep -qx "ferry daemon: stopped pid $MANAGER" "$E2E_ROOT/stop.out" || { show "ferry daemon stop" "$E2E_ROOT/stop.out"; fail "ferry daemon stop did not stop pid $MANAGER"; }
wait "$MANAGER" || fail "the activated daemon exited with $?"
untrack_pid "$MANAGER"
[[ -S $SOCK && $(stat -c %i "$SOCK") == "$INODE" ]] || fail "the daemon removed or replaced the manager's socket $SOCK"
pass "ferry daemon stop ended the activated daemon and left the manager's socket"

# ---- 4. a socket for another path ------------------------------------------------------
OTHER="$E2E_ROOT/elsewhere/other.sock"
start_manager "$OTHER" "$E2E_ROOT/other.log"
# Connecting wakes the manager; the connection ends when the daemon exits.
python3 - "$OTHER" <<'PY' || fail "no answer on $OTHER"
import socket, sys
connection = socket.socket(socket.AF_UNIX)
connection.connect(sys.argv[1])
connection.settimeout(60)
try:
    connection.recv(1)
except ConnectionResetError:
    pass
PY
rc=0
wait "$MANAGER" || rc=$?
untrack_pid "$MANAGER"
((rc == 1)) || { show "manager log" "$E2E_ROOT/other.log"; fail "the daemon given a socket for another path exited with $rc, expected 1"; }
grep -qF "is bound to '$OTHER'; the daemon's socket is $SOCK" "$E2E_ROOT/other.log" ||
  { show "manager log" "$E2E_ROOT/other.log"; fail "the refusal does not name both sockets"; }
pass "a socket passed for another path is refused, naming both paths"
