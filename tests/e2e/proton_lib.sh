# shellcheck shell=bash
# Helpers for the end-to-end tests of the Proton Drive store: the real git-lfs
# hands transfers to `ferry agent`, which runs the bridge simulator
# (ferry-bridge-sim) as its `ferry.proton.command`. Source it after lib.sh:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   source "$(dirname "${BASH_SOURCE[0]}")/proton_lib.sh"
#   e2e_init "$@"
#   proton_init
#
# After proton_init:
#   BRIDGE_SIM   absolute path of ferry-bridge-sim (from $FERRY_BRIDGE_SIM)
#   BRIDGE       a wrapper (ferry's bridge command) that records every bridge
#                process, then execs the simulator with the same arguments
#   DRIVE        the folder playing the Drive: $DRIVE/LFS/<oid[0:2]>/<oid[2:4]>/<oid>
#   BRIDGE_LOG   the simulator's event log (JSON lines, start and end events)
#   BRIDGE_RUNS  the wrapper's record, one line per process:
#                <start ms since the epoch> <pid> <parent pid> <command>
#   BRIDGE_ENVS  a folder with one file per bridge process (named by its pid)
#                holding the environment ferry gave it, one NAME=value per line
#   SCENARIO_DIR where proton_scenario writes scenario files

# The sandbox unsets every FERRY_* variable; keep the simulator's path.
E2E_BRIDGE_SIM=${FERRY_BRIDGE_SIM:-}

proton_init() {
  BRIDGE_SIM=$E2E_BRIDGE_SIM
  [[ -n $BRIDGE_SIM && -x $BRIDGE_SIM && -f $BRIDGE_SIM ]] ||
    fail "set FERRY_BRIDGE_SIM to the ferry-bridge-sim binary (got '${BRIDGE_SIM}')"
  BRIDGE_SIM="$(cd "$(dirname "$BRIDGE_SIM")" && pwd)/$(basename "$BRIDGE_SIM")"
  DRIVE="$E2E_ROOT/drive"
  BRIDGE_LOG="$E2E_ROOT/bridge.log"
  BRIDGE_RUNS="$E2E_ROOT/bridge-runs.txt"
  BRIDGE_ENVS="$E2E_ROOT/bridge-env"
  SCENARIO_DIR="$E2E_ROOT/scenarios"
  BRIDGE="$E2E_ROOT/bin/bridge"
  mkdir -p "$DRIVE" "$BRIDGE_ENVS" "$SCENARIO_DIR" "$(dirname "$BRIDGE")"
  touch "$BRIDGE_LOG" "$BRIDGE_RUNS"
  # Builtins only until the exec, so the record costs the bridge no process.
  # The exec keeps the pid: the simulator stays ferry's direct child, which
  # is what ferry kills on a timeout and what dies with ferry.
  cat >"$BRIDGE" <<WRAPPER
#!/bin/bash
started=\${EPOCHREALTIME//[^0-9]/}
printf '%s %s %s %s\n' "\${started:0:-3}" "\$\$" "\$PPID" "\${*: -1}" >>'$BRIDGE_RUNS'
mapfile -d '' vars </proc/\$\$/environ
printf '%s\n' "\${vars[@]}" >'$BRIDGE_ENVS'/\$\$
exec '$BRIDGE_SIM' "\$@"
WRAPPER
  chmod 755 "$BRIDGE"
  trap proton_cleanup EXIT
}

# proton_cleanup: on exit, ends the simulator processes of this test that
# still run (a hung one, if ferry failed to end it), then lib.sh's cleanup.
proton_cleanup() {
  local status=$? pid
  for pid in $(live_bridges); do kill -9 "$pid" 2>/dev/null || true; done
  e2e_cleanup "$status"
}

# proton_scenario <name> <json>: writes $SCENARIO_DIR/<name>.json (checked to
# be JSON) and prints its path.
proton_scenario() {
  local file="$SCENARIO_DIR/$1.json"
  printf '%s\n' "$2" >"$file"
  python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$file" ||
    fail "scenario $1 is not valid JSON: $2"
  echo "$file"
}

# proton_command [scenario-file]: the ferry.proton.command line that runs the
# simulator on $DRIVE, logging to $BRIDGE_LOG, through the recording wrapper.
proton_command() {
  local line="'$BRIDGE' --drive '$DRIVE' --log '$BRIDGE_LOG'"
  [[ -z ${1:-} ]] || line+=" --scenario '$1'"
  echo "$line"
}

# use_proton <repo-dir> [scenario-file]: the repository's bridge is the
# simulator (with that scenario), then `ferry install --store proton://LFS`.
use_proton() {
  local repo=$1
  git -C "$repo" config ferry.proton.command "$(proton_command "${2:-}")"
  install_ferry_url "$repo" proton://LFS
}

# drive_object <oid>: where the simulated Drive keeps an object.
drive_object() {
  echo "$DRIVE/LFS/${1:0:2}/${1:2:2}/$1"
}

# assert_in_drive <file>: the Drive holds the file's object at the layout
# path, with the same size and a sha256 equal to its oid.
assert_in_drive() {
  local file=$1 oid path
  oid=$(oid_of "$file")
  path=$(drive_object "$oid")
  [[ -f $path ]] || fail "object $oid ($file) is not in the Drive at $path"
  [[ $(stat -c %s "$path") -eq $(stat -c %s "$file") ]] ||
    fail "$path has $(stat -c %s "$path") bytes, $file has $(stat -c %s "$file")"
  [[ $(oid_of "$path") == "$oid" ]] || fail "$path does not hash to its oid $oid"
}

# bridge_mark: the current length of the simulator's log and of the
# wrapper's record, "<log lines> <run lines>", to split them into phases.
bridge_mark() {
  echo "$(wc -l <"$BRIDGE_LOG") $(wc -l <"$BRIDGE_RUNS")"
}

# bridge_check <description> <mark> <python-code> [args...]: runs py_check
# with the simulator's events and the wrapper's runs since <mark> loaded as
# `events` (a list of dicts) and `runs` (dicts: at_ms, pid, ppid, command);
# the python code sees its own arguments as sys.argv[3:].
bridge_check() {
  local what=$1 mark=$2 code=$3
  shift 3
  py_check "$what" "
import json, sys
log_mark, runs_mark = (int(x) for x in sys.argv[1].split())
events = [json.loads(line) for line in open('$BRIDGE_LOG').read().splitlines()[log_mark:]]
runs = []
for line in open('$BRIDGE_RUNS').read().splitlines()[runs_mark:]:
    at_ms, pid, ppid, command = line.split(' ', 3)
    runs.append({'at_ms': int(at_ms), 'pid': int(pid), 'ppid': int(ppid), 'command': command})
def commands(kind='start'):
    return [e['command'] for e in events if e['event'] == kind]
$code
" "$mark" "" "$@"
}

# assert_bridge_valid <mark>: every request since <mark> passed the
# simulator's field rules (no 400 for a field, no malformed stdin).
assert_bridge_valid() {
  bridge_check "every bridge request since the mark passed the bridge's field rules" "$1" '
ends = [e for e in events if e["event"] == "end"]
bad = [e for e in ends if not e["valid"]]
if bad:
    raise SystemExit("invalid requests: %s" % bad)
if not ends:
    raise SystemExit("no bridge process ran")
print("%d requests" % len(ends))'
}

# process_gone <pid>: the process has exited (a zombie counts as gone).
process_gone() {
  local state
  state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null) || true
  [[ -z $state || $state == Z ]]
}

# live_bridges: the pids of simulator processes of this test that still run
# (found by their --drive argument under $E2E_ROOT), one per line.
live_bridges() {
  local dir pid args
  for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    mapfile -d '' args 2>/dev/null <"$dir/cmdline" || continue
    [[ " ${args[*]} " == *" --drive $DRIVE "* ]] || continue
    process_gone "$pid" || echo "$pid"
  done
}

no_live_bridges() {
  [[ -z $(live_bridges) ]]
}

# git_failed <what> <log> <rc>: git must have failed.
git_failed() {
  local what=$1 log=$2 rc=$3
  ((rc != 0)) || { show "$what" "$log"; fail "$what succeeded although it must fail"; }
}

# must_mention <what> <log> <text>: git's output contains <text>.
must_mention() {
  grep -qF -- "$3" "$2" || { show "$1" "$2"; fail "$1: the output does not mention '$3'"; }
}
