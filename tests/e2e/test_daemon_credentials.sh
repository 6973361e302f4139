#!/usr/bin/env bash
# One SESSION per LFS store in the per-user daemon: two clones of one
# repository (one LFS endpoint on ferry-lfs-sim, which answers 401 to every
# request without credentials) push through one daemon, and git's credential
# helper is asked for the credentials once.
#
#   1. Clone A pushes. Its helper answers `get`, and its `store` (git
#      credential approve, sent once A's first authenticated request
#      succeeded) holds until the test lets it go: A's engine, and with it
#      the endpoint's session, stay up.
#   2. Meanwhile clone B pushes: its store's 401 is answered with the
#      session's credentials, B's push completes, and the helper saw one
#      `get` and one `store` in all.
#   3. Released, A's push completes; the server holds every object of both.
#
# With each repository's store keeping its own credentials (no session),
# B's helper is asked too and step 2 fails. What a refusal does to a shared
# session is in tests/unit/actors_session.cpp.
#
#   FERRY_LFS_SIM=<ferry-lfs-sim> bash tests/e2e/test_daemon_credentials.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/daemon_lib.sh"
e2e_init "$@"
sim_init

export FERRY_DAEMON=true
CALLS="$E2E_ROOT/helper-calls.txt"
STORED="$E2E_ROOT/stored.fifo"
RELEASE="$E2E_ROOT/release.fifo"
mkfifo "$STORED" "$RELEASE"
: >"$CALLS"

# The helper records each action. The first `store` tells the test (STORED)
# and waits for it (RELEASE); later ones return at once.
HELPER="$E2E_ROOT/bin/git-credential-counted"
mkdir -p "$(dirname "$HELPER")"
cat >"$HELPER" <<HELPER
#!/bin/sh
cat >/dev/null
echo "\$1" >>'$CALLS'
case "\$1" in
  get) printf 'username=e2e\npassword=e2e-password\n' ;;
  store)
    if mkdir '$E2E_ROOT/held' 2>/dev/null; then
      echo stored >'$STORED'
      read -r _ <'$RELEASE'
    fi ;;
esac
HELPER
chmod 700 "$HELPER"
git config --global credential.helper "$HELPER"

cat >"$E2E_ROOT/auth.json" <<'JSON'
{"rules": [{"name": "401 until the client sends credentials",
            "fault": {"status": 401, "then_success": true}}]}
JSON
check_scenario "$E2E_ROOT/auth.json"
start_sim "$E2E_ROOT/auth.json"
ENDPOINT="lfs+$(lfs_url shared)"

# clone <name> <prefix>: a repository on the shared endpoint at git-lfs's
# default concurrency, with 6 objects.
clone() {
  local name=$1 prefix=$2 i specs=()
  new_repo "$name"
  install_ferry_url "$E2E_ROOT/$name" "$ENDPOINT"
  git -C "$E2E_ROOT/$name" config --unset lfs.customtransfer.ferry.concurrent
  for i in $(seq 1 6); do specs+=("$prefix$i.bin=$((4096 + i))"); done
  add_lfs_files "$E2E_ROOT/$name" "${specs[@]}"
}
clone clone-a a
clone clone-b b

# count <action>: how often the helper was asked for it.
count() { grep -cx "$1" "$CALLS" || true; }

# ---- 1. A holds the session open ---------------------------------------------------
timed_git 300 "$E2E_ROOT/push-a.log" -C "$E2E_ROOT/clone-a" push origin main &
pid_a=$!
track_pid "$pid_a"
read -t 120 -r _ <>"$STORED" ||
  { show "push of clone-a" "$E2E_ROOT/push-a.log"; fail "clone-a's push never told git its credentials worked"; }
(($(count get) == 1)) || fail "the helper was asked $(count get) times for clone-a's credentials, expected 1"

# ---- 2. B's push uses the session's credentials -----------------------------------------
must_git 300 "$E2E_ROOT/push-b.log" -C "$E2E_ROOT/clone-b" push origin main
for f in "$E2E_ROOT/clone-b"/*.bin; do assert_stored "$SIM_ROOT" "$f"; done
(($(count get) == 1)) ||
  { show "helper calls" "$CALLS"; fail "clone-b's push asked the helper for credentials again ($(count get) gets in all)"; }
(($(count store) == 1)) ||
  { show "helper calls" "$CALLS"; fail "git was told $(count store) times that the credentials work, expected once"; }
pass "clone-b's push used the credentials clone-a's helper gave: one get, one store"

# ---- 3. A completes ------------------------------------------------------------------
echo go >"$RELEASE"
wait "$pid_a" || { show "push of clone-a" "$E2E_ROOT/push-a.log"; fail "clone-a's push failed"; }
for f in "$E2E_ROOT/clone-a"/*.bin; do assert_stored "$SIM_ROOT" "$f"; done
for name in clone-a clone-b; do
  (($(served_in "$E2E_ROOT/$name") > 0 && $(engines_in_agents "$E2E_ROOT/$name") == 0)) ||
    { show "daemon log" "$FERRY_DAEMON_DIR/daemon.log"; fail "the daemon did not serve $name's agents"; }
done
pass "both pushes completed through one daemon; the server holds all 12 objects"
