# shellcheck shell=bash
# Helpers for the end-to-end tests of transfers through the per-user daemon
# (`ferry daemon`). Source it after lib.sh; the test then turns the daemon
# on (unset FERRY_DAEMON), and it serves from FERRY_DAEMON_DIR, the
# sandbox's own:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   source "$(dirname "${BASH_SOURCE[0]}")/daemon_lib.sh"
#   e2e_init "$@"
#   unset FERRY_DAEMON

# served_in <dir>: how many agents the daemon served with <dir> as their cwd.
served_in() { grep -c "agent (pid [0-9]*) in $1\$" "$FERRY_DAEMON_DIR/daemon.log" || true; }

# engines_started_in <repo-dir>: engines the daemon started for that repository.
engines_started_in() { grep -c "engine started in $1 (" "$FERRY_DAEMON_DIR/daemon.log" || true; }

# engines_in_agents <repo-dir>: agents of that repository that ran the
# engine in their own process (its log says so for each).
engines_in_agents() {
  local log="$1/.git/lfs/ferry/ferry.log"
  [[ -f $log ]] || { echo 0; return; }
  grep -c "agent started in" "$log" || true
}

# assert_one_engine <repo-dir> <what>: the agents of <what> in that repository
# shared one engine: one was started, and no agent took a journal slot.
assert_one_engine() {
  local started
  started=$(engines_started_in "$1")
  [[ ! -e $1/.git/lfs/ferry/slots ]] ||
    { show "daemon log" "$FERRY_DAEMON_DIR/daemon.log"; fail "agents of $2 took journal slots of their own ($1/.git/lfs/ferry/slots exists)"; }
  ((started == 1)) ||
    { show "daemon log" "$FERRY_DAEMON_DIR/daemon.log"; fail "the daemon started $started engine(s) for $2, expected 1"; }
}

# assert_daemon_served <repo-dir> <what>: several agents of <what> in that
# repository were served by the daemon, and none ran the engine itself.
# Sets SERVED (how many agents the daemon served there).
assert_daemon_served() {
  SERVED=$(served_in "$1")
  ((SERVED > 1)) ||
    { show "daemon log" "$FERRY_DAEMON_DIR/daemon.log"; fail "the daemon served $SERVED agent(s) of $2, expected several"; }
  (($(engines_in_agents "$1") == 0)) ||
    { show "ferry log" "$1/.git/lfs/ferry/ferry.log"; fail "agents of $2 ran the engine in their own process"; }
}

daemon_pid() { cat "$FERRY_DAEMON_DIR/daemon.pid" 2>/dev/null || fail "no daemon ran ($FERRY_DAEMON_DIR/daemon.pid is missing)"; }
