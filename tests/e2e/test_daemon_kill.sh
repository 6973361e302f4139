#!/usr/bin/env bash
# `kill -9` of the per-user daemon at random points of a 500-object push and
# of a 500-object pull, at git-lfs's default concurrency (8 agents, all thin
# clients of one daemon of this test's own), into an LFS server
# (ferry-lfs-sim as the store, `lfs+http://...`), paced at 150 requests/s so
# that each command spans all its kill points:
#
#   1. push: the daemon is killed three times, each once a random number of
#      objects has reached the server. Each time the agents start a new
#      daemon, which recovers the journal, and send it the transfers they
#      had in flight. The one push completes: no object failed, every object
#      is intact on the server, and it holds nothing else.
#   2. pull into a fresh clone: the same three kills, counted in objects that
#      reached the clone's LFS cache. The one pull completes; every file is
#      byte-identical and hashes to its oid (git lfs fsck agrees).
#
# The kill points come from a seed printed at the start; KILL_SEED=<n>
# repeats a run.
#
#   FERRY_LFS_SIM=<ferry-lfs-sim> bash tests/e2e/test_daemon_kill.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/daemon_lib.sh"
e2e_init "$@"
sim_init
start_sim

# lib.sh turns the daemon off for the other tests; here it is left at its
# default.
unset FERRY_DAEMON
DLOG="$FERRY_DAEMON_DIR/daemon.log"
COUNT=500
KILLS=3
# Each daemon reads it from the user's settings.
git config --global ferry.maxRequestsPerSecond 150
SEED=${KILL_SEED:-$((RANDOM * 32768 + RANDOM))}
RANDOM=$SEED
note "kill points from seed $SEED (KILL_SEED=$SEED repeats them)"

# current_daemon: the pid in daemon.pid, or nothing (daemon_pid fails then).
current_daemon() { cat "$FERRY_DAEMON_DIR/daemon.pid" 2>/dev/null || true; }
# Whatever daemon runs when the test ends goes with it.
end_daemon() {
  local status=$? pid
  pid=$(current_daemon)
  [[ -z $pid ]] || kill -9 "$pid" 2>/dev/null || true
  e2e_cleanup "$status"
}
trap end_daemon EXIT

# kill_points: sets POINTS to KILLS increasing object counts, spread over
# the first 90% of COUNT so that the last kill still has transfers after
# it. In this shell, not a subshell, so that the seed decides them.
kill_points() {
  local i points=()
  for ((i = 0; i < KILLS; i++)); do points+=($((1 + RANDOM % (COUNT * 9 / 10)))); done
  mapfile -t POINTS < <(printf '%s\n' "${points[@]}" | sort -n)
}

# kill_during <pid> <what> <counter>: while command <pid> runs, kills the
# daemon serving it each time `<counter>` (a function printing how many
# objects have arrived) reaches the next kill point, but only a daemon
# that is not the one already killed. Sets KILLED (how many were killed).
kill_during() {
  local pid=$1 what=$2 counter=$3 point victim=""
  KILLED=0
  kill_points
  note "the $what's kill points: ${POINTS[*]} objects"
  for point in "${POINTS[@]}"; do
    reached() { (($("$counter") >= point)) || ! kill -0 "$pid" 2>/dev/null; }
    wait_for 300 "$point objects of the $what" reached
    kill -0 "$pid" 2>/dev/null || break
    # The daemon that serves now: a new one once the last victim is gone.
    new_daemon() { local now; now=$(current_daemon); [[ -n $now && $now != "$victim" ]] || ! kill -0 "$pid" 2>/dev/null; }
    wait_for 60 "a new daemon during the $what" new_daemon
    kill -0 "$pid" 2>/dev/null || break
    victim=$(current_daemon)
    kill -9 "$victim" 2>/dev/null || continue
    KILLED=$((KILLED + 1))
    note "killed the daemon (pid $victim) of the $what with $("$counter") of $COUNT objects there"
  done
}

# across_kills <what> <counter> <repo-dir> <git args...>: runs the git
# command in <repo-dir>, killing the daemon at the kill points
# (kill_during); it must succeed across at least two kills, its agents all
# served by the daemon.
across_kills() {
  local what=$1 counter=$2 dir=$3 pid rc=0
  shift 3
  timed_git 600 "$E2E_ROOT/$what.log" -C "$dir" "$@" &
  pid=$!
  kill_during "$pid" "$what" "$counter"
  wait "$pid" || rc=$?
  ((rc == 0)) || { show "$what across the kills" "$E2E_ROOT/$what.log"; show "daemon log" "$DLOG"; fail "the $what across $KILLED kill(s) of the daemon failed (exit $rc)"; }
  ((KILLED >= 2)) || fail "the $what ended after $KILLED kill(s) of the daemon: the kill points came too late to test anything"
  assert_daemon_served "$dir" "the $what"
}

# ---- 1. a 500-object push across three kills -----------------------------------------------
REPO="$E2E_ROOT/repo"
new_repo repo
git_lfs_defaults_url "$REPO" "lfs+$(lfs_url repo)"
# Mostly small objects, every 25th of about 1 MiB, so that kills find
# transfers of both kinds in flight.
SPECS=() FILES=()
for i in $(seq 1 "$COUNT"); do
  FILES+=("o$i.bin")
  if ((i % 25 == 0)); then SPECS+=("o$i.bin=$((1024 * 1024 + i))"); else SPECS+=("o$i.bin=$((4096 + i * 13))"); fi
done
add_lfs_files "$REPO" "${SPECS[@]}"
in_store() { find "$SIM_ROOT" -type f -name '[0-9a-f]*' | wc -l; }

across_kills push in_store "$REPO" push origin main
assert_stored "$SIM_ROOT" "${FILES[@]/#/$REPO/}"
(($(in_store) == COUNT)) || fail "the server holds $(in_store) objects, expected the push's $COUNT"
pass "one git push of $COUNT objects completed across $KILLED kill -9 of the daemon; every object is intact on the server, nothing else there"

# ---- 2. a 500-object pull across three kills -----------------------------------------------
CLONE="$E2E_ROOT/clone"
clone_pointers "$E2E_ROOT/repo.git" "$CLONE" "$E2E_ROOT/clone.log"
git_lfs_defaults_url "$CLONE" "lfs+$(lfs_url repo)"
mkdir -p "$CLONE/.git/lfs/objects"
in_cache() { find "$CLONE/.git/lfs/objects" -type f | wc -l; }

across_kills pull in_cache "$CLONE" lfs pull
assert_checkout "$REPO" "$CLONE" "${FILES[@]}"
must_git 120 "$E2E_ROOT/fsck.log" -C "$CLONE" lfs fsck
pass "one git lfs pull of $COUNT objects completed across $KILLED kill -9 of the daemon; every file is byte-identical, sha256 == oid"

