# shellcheck shell=bash
# Shared helpers for ferry's end-to-end tests. Source it from a test script:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   e2e_init "$@"          # checks the ferry binary, builds the sandbox
#
# After e2e_init:
#   FERRY      absolute path of the ferry binary under test
#   E2E_ROOT   a fresh temp dir (removed on exit) holding everything below
#   HOME       $E2E_ROOT/home, with a git identity and git-lfs's global filters
#   E2E_DIR    the directory holding this library (for agent_driver.py)
#
# Nothing outside E2E_ROOT is written: the real HOME, system git config and
# the network are never used.

set -euo pipefail

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export E2E_DIR
E2E_NAME="$(basename "$0" .sh)"
E2E_STARTED=$(date +%s%N)
E2E_PIDS=()
# The sandbox unsets every FERRY_* variable; keep the simulator's path for sim_init.
E2E_LFS_SIM=${FERRY_LFS_SIM:-}

# ---- reporting ----------------------------------------------------------------

fail() {
  printf '%s: FAIL: %s\n' "$E2E_NAME" "$*" >&2
  exit 1
}

pass() {
  printf '%s: ok: %s\n' "$E2E_NAME" "$*"
}

# note <text>: progress output that is not a check.
note() {
  printf '%s: -- %s\n' "$E2E_NAME" "$*"
}

# Prints a file's content to stderr (indented) to explain a failure.
show() {
  local label=$1 file=$2
  printf '%s: ---- %s (%s) ----\n' "$E2E_NAME" "$label" "$file" >&2
  # No pipe into head: under pipefail, sed's SIGPIPE on a long file would end
  # the test before the caller's fail message.
  if [[ -f $file ]]; then sed -n -e '1,60s/^/    /p' "$file" >&2; else echo "    (missing)" >&2; fi
}

e2e_elapsed() {
  local now
  now=$(date +%s%N)
  echo "$(((now - E2E_STARTED) / 1000000)) ms"
}

# ---- sandbox --------------------------------------------------------------------

e2e_cleanup() {
  # A trap of a test's own passes the status it saw as $1.
  local status=${1:-$?}
  local pid
  # Only processes this test started (their ids were recorded by track_pid).
  for pid in "${E2E_PIDS[@]}"; do
    kill -9 "$pid" 2>/dev/null || true
  done
  for pid in "${E2E_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [[ -n ${E2E_ROOT:-} && -d $E2E_ROOT ]]; then
    if [[ -n ${E2E_KEEP:-} ]]; then
      echo "$E2E_NAME: kept sandbox $E2E_ROOT" >&2
    else
      chmod -R u+rwX "$E2E_ROOT" 2>/dev/null || true
      rm -rf "$E2E_ROOT"
    fi
  fi
  if [[ $status -eq 0 ]]; then
    printf '%s: PASSED in %s\n' "$E2E_NAME" "$(e2e_elapsed)"
  else
    printf '%s: FAILED (exit %d) after %s\n' "$E2E_NAME" "$status" "$(e2e_elapsed)" >&2
  fi
  exit "$status"
}

# Remembers a background process so cleanup can stop it if the test fails.
track_pid() {
  E2E_PIDS+=("$1")
}

# e2e_init <path-to-ferry>: checks the binary, then builds the sandbox.
e2e_init() {
  [[ $# -ge 1 && -n $1 ]] || fail "usage: bash $0 <path-to-ferry>"
  [[ -x $1 && -f $1 ]] || fail "ferry binary '$1' is not an executable file"
  FERRY="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
  e2e_sandbox
  note "sandbox $E2E_ROOT, ferry $FERRY, $(git lfs version)"
}

# e2e_sandbox: a fresh temp root (removed on exit) with its own HOME, a git
# identity and git-lfs's global filters; nothing from the caller's
# environment steers git, git-lfs or ferry.
e2e_sandbox() {
  command -v git >/dev/null || fail "git is not installed"
  command -v git-lfs >/dev/null || fail "git-lfs is not installed"
  command -v python3 >/dev/null || fail "python3 is not installed"

  E2E_ROOT="$(mktemp -d "${TMPDIR:-/tmp}/ferry-e2e-$E2E_NAME.XXXXXX")"
  # Resolve symlinks (e.g. /tmp -> /private/tmp) so paths compare equal.
  E2E_ROOT="$(cd "$E2E_ROOT" && pwd -P)"
  trap e2e_cleanup EXIT
  trap 'exit 130' INT TERM

  export HOME="$E2E_ROOT/home"
  export XDG_CONFIG_HOME="$HOME/.config"
  export GIT_CONFIG_NOSYSTEM=1
  export GIT_TERMINAL_PROMPT=0
  export LC_ALL=C
  # Nothing from the caller's environment may steer git or ferry.
  unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY GIT_CONFIG_GLOBAL \
    GIT_CONFIG_PARAMETERS GIT_CONFIG_COUNT GIT_LFS_SKIP_SMUDGE GIT_TRACE GIT_CEILING_DIRECTORIES
  local var
  for var in $(compgen -e | grep '^FERRY_' || true); do unset "$var"; done
  # Never walk up out of the sandbox looking for a repository.
  export GIT_CEILING_DIRECTORIES="$E2E_ROOT"
  # A daemon of this test's own, never another test's or the user's; and
  # agents run the engine in their own process unless a test turns the
  # daemon on (FERRY_DAEMON=true), as the daemon tests do.
  export FERRY_DAEMON_DIR="$E2E_ROOT/daemon"
  export FERRY_DAEMON=false
  # Loopback traffic must not be sent to a proxy.
  unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
  mkdir -p "$HOME"
  git config --global user.name "Ferry E2E"
  git config --global user.email "ferry-e2e@example.invalid"
  git config --global init.defaultBranch main
  git config --global advice.detachedHead false
  git config --global protocol.file.allow always
  git lfs install --skip-repo >/dev/null || fail "git lfs install --skip-repo failed"
  git config --global --get filter.lfs.clean >/dev/null || fail "git-lfs global filter missing"
}

# ---- repositories ----------------------------------------------------------------

# new_repo <name>: a bare remote $E2E_ROOT/<name>.git and a working repository
# $E2E_ROOT/<name> with 'origin' pointing at it and *.bin tracked by LFS.
new_repo() {
  local name=$1
  git init -q --bare "$E2E_ROOT/$name.git"
  git init -q "$E2E_ROOT/$name"
  (
    cd "$E2E_ROOT/$name"
    git remote add origin "$E2E_ROOT/$name.git"
    git lfs track '*.bin' >/dev/null # also installs the pre-push hook
    [[ -x .git/hooks/pre-push ]] || fail "git lfs track did not install the pre-push hook"
    git add .gitattributes
    git commit -qm "track *.bin with LFS"
  )
}

# install_ferry <repo-dir> <store-dir>: ferry install --store file://<store-dir>
install_ferry() {
  install_ferry_url "$1" "file://$2"
}

# install_ferry_url <repo-dir> <store-url>: ferry install --store <store-url>,
# with one agent at a time (one_agent_at_a_time).
install_ferry_url() {
  local repo=$1 url=$2
  (cd "$repo" && "$FERRY" install --store "$url") >"$E2E_ROOT/install.out" 2>&1 ||
    { show "ferry install output" "$E2E_ROOT/install.out"; fail "ferry install --store $url in $repo failed"; }
  one_agent_at_a_time "$repo"
}

# one_agent_at_a_time <repo-dir>: git-lfs runs one ferry agent per transfer,
# so that a test sees one journal and one log per repository. ferry install
# leaves git-lfs's default (8 agents at once), which git_lfs_defaults, the
# concurrency tests and the daemon tests use.
one_agent_at_a_time() {
  git -C "$1" config lfs.customtransfer.ferry.concurrent false
}

# clone_and_pull <remote.git> <clone-dir> <store-dir> <log>: a fresh clone
# without smudging, ferry installed, then git lfs pull. Returns git lfs pull's
# exit status (output in <log>), so callers decide whether it must succeed.
clone_and_pull() {
  local remote=$1 dir=$2 store=$3 log=$4
  clone_pointers "$remote" "$dir" "$log"
  install_ferry "$dir" "$store"
  local rc=0
  (cd "$dir" && git lfs pull) >"$log" 2>&1 || rc=$?
  return "$rc"
}

# clone_pointers <remote.git> <clone-dir> <log>: a fresh clone that keeps LFS
# files as pointers (GIT_LFS_SKIP_SMUDGE=1).
clone_pointers() {
  local remote=$1 dir=$2 log=$3
  GIT_LFS_SKIP_SMUDGE=1 git clone -q "$remote" "$dir" >"$log" 2>&1 ||
    { show "git clone" "$log"; fail "git clone $remote failed"; }
}

# free_port: a loopback port nothing listens on (bound, then closed).
free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# random_file <path> <bytes>
random_file() {
  local path=$1 bytes=$2
  mkdir -p "$(dirname "$path")"
  head -c "$bytes" /dev/urandom >"$path"
  local got
  got=$(stat -c %s "$path")
  [[ $got -eq $bytes ]] || fail "could not create $bytes random bytes in $path (got $got)"
}

# oid_of <file>: its sha256, which is its LFS oid.
oid_of() {
  sha256sum "$1" | cut -d' ' -f1
}

# store_object <store-dir> <oid>: where the folder store keeps an object.
store_object() {
  local store=$1 oid=$2
  echo "$store/${oid:0:2}/${oid:2:2}/$oid"
}

# store_partial <store-dir> <oid>: where an unfinished upload's bytes live.
store_partial() {
  local store=$1 oid=$2
  echo "$store/${oid:0:2}/${oid:2:2}/.$oid.ferry-partial"
}

# assert_stored <store-dir> <original-file>...: the store holds each file's
# object at the layout path, with the same size and a sha256 equal to its oid.
assert_stored() {
  local out
  out=$(python3 "$E2E_DIR/lfs_files.py" stored "$@" 2>&1) || fail "$out"
}

# assert_no_partials <store-dir>
assert_no_partials() {
  local store=$1 leftovers
  leftovers=$(find "$store" -name '*.ferry-partial' -print)
  [[ -z $leftovers ]] || fail "partial files remain in the store: $leftovers"
}

# assert_pointer <file>: the working-tree file is still an LFS pointer.
is_pointer() {
  head -c 200 "$1" | grep -q '^version https://git-lfs.github.com/spec/v1'
}

# ---- JSON -----------------------------------------------------------------------

# status_json <repo-dir> <out-file>: ferry status --json --limit 1000
status_json() {
  local repo=$1 out=$2
  (cd "$repo" && "$FERRY" status --json --limit 1000) >"$out" 2>"$out.err" ||
    { show "ferry status stderr" "$out.err"; fail "ferry status --json failed in $repo"; }
  python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$out" 2>/dev/null ||
    { show "ferry status --json" "$out"; fail "ferry status --json did not print valid JSON"; }
}

# py_check <description> <python-code> [args...]: runs python code that
# raises SystemExit(message) on failure; passes with <description> otherwise.
py_check() {
  local what=$1 code=$2
  shift 2
  local out
  if ! out=$(python3 -c "$code" "$@" 2>&1); then
    fail "$what: $out"
  fi
  pass "$what${out:+ ($out)}"
}

# assert_history <status.json> <direction> <state> <oid>...: every oid has a
# history record with that direction and state.
assert_history() {
  local file=$1 dir=$2 state=$3
  shift 3
  py_check "ferry status lists $# ${dir}(s) as $state" '
import json, sys
doc = json.load(open(sys.argv[1]))
want_dir, want_state = sys.argv[2], sys.argv[3]
for key in ("journal", "active", "history"):
    if key not in doc:
        raise SystemExit("status JSON lacks %r: %s" % (key, sorted(doc)))
for oid in sys.argv[4:]:
    recs = [r for r in doc["history"] if r.get("oid") == oid and r.get("direction") == want_dir]
    if not recs:
        raise SystemExit("no %s record for %s in history" % (want_dir, oid))
    r = recs[0]  # newest first
    if r.get("state") != want_state:
        raise SystemExit("%s %s is %r, expected %r: %s" % (want_dir, oid, r.get("state"), want_state, r))
    if r.get("v") != 1:
        raise SystemExit("record version is %r: %s" % (r.get("v"), r))
    if want_state == "done" and r.get("committed") != r.get("size"):
        raise SystemExit("done %s %s committed %r of %r bytes" % (want_dir, oid, r.get("committed"), r.get("size")))
' "$file" "$dir" "$state" "$@"
}

# wait_for <seconds> <description> <command...>: polls (bounded) until the
# command succeeds; fails the test on timeout.
wait_for() { wait_for_every 0.01 "$@"; }

# await_both <pid> <log> <what> <pid> <log> <what>: waits for two commands
# started in the background (both, before judging either); fails with the
# log of the first that did not succeed.
await_both() {
  local rc_a=0 rc_b=0
  wait "$1" || rc_a=$?
  wait "$4" || rc_b=$?
  ((rc_a == 0)) || { show "$3" "$2"; fail "$3 failed (exit $rc_a)"; }
  ((rc_b == 0)) || { show "$6" "$5"; fail "$6 failed (exit $rc_b)"; }
}

# wait_for_every <interval> <seconds> <description> <command...>: wait_for
# polling every <interval> seconds, for checks that cost a process or more.
wait_for_every() {
  local interval=$1 limit=$2 what=$3
  shift 3
  local deadline=$((SECONDS + limit))
  until "$@"; do
    ((SECONDS < deadline)) || fail "timed out after ${limit}s waiting for $what"
    sleep "$interval" # polling interval, not synchronisation: the loop re-checks the condition
  done
}

# ---- the LFS server simulator (ferry-lfs-sim) -------------------------------------
#
# sim_init (after e2e_init or e2e_sandbox) finds the simulator and sets:
#   SIM            absolute path of ferry-lfs-sim (from $FERRY_LFS_SIM)
#   SIM_ROOT       its object root, $E2E_ROOT/sim-root (a test may point it
#                  elsewhere before start_sim)
#   SIM_LOG        its request and fault log (appended across restarts)
#   SCENARIOS      simulations/scenarios in the source tree
# start_sim then sets SIM_PID, SIM_PORT, SIM_URL (http://127.0.0.1:PORT) and
# SIM_LOG_MARK (the log's length before this run, see sim_log_this_run).

sim_init() {
  SIM=$E2E_LFS_SIM
  [[ -n $SIM && -x $SIM && -f $SIM ]] || fail "set FERRY_LFS_SIM to the ferry-lfs-sim binary (got '${SIM}')"
  SIM="$(cd "$(dirname "$SIM")" && pwd)/$(basename "$SIM")"
  SIM_ROOT="$E2E_ROOT/sim-root"
  SIM_PORT_FILE="$E2E_ROOT/sim.port"
  SIM_LOG="$E2E_ROOT/sim.log"
  SIM_OUT="$E2E_ROOT/sim.out"
  SIM_PID=""
  SIM_PORT=""
  SIM_URL=""
  # shellcheck disable=SC2034 # for the sourcing script
  SCENARIOS="$(cd "$E2E_DIR/../../simulations/scenarios" && pwd)"
}

# http <method> <url> <body-file|-> <out-file> [header...]: one request (raw
# path, no redirects); prints the status code, writes the body to <out-file>
# and the response headers to <out-file>.headers.
http() {
  python3 - "$@" <<'PY'
import http.client, sys, urllib.parse
method, url, body_path, out_path = sys.argv[1:5]
headers = dict(h.split(": ", 1) for h in sys.argv[5:])
parts = urllib.parse.urlsplit(url)
body = None if body_path == "-" else open(body_path, "rb").read()
conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=20)
conn.request(method, parts.path, body=body, headers=headers)
resp = conn.getresponse()
open(out_path, "wb").write(resp.read())
with open(out_path + ".headers", "w") as f:
    for k, v in resp.getheaders():
        f.write("%s: %s\n" % (k.lower(), v))
print(resp.status)
PY
}

sim_port_file_ready() { [[ -s $SIM_PORT_FILE ]]; }
sim_healthy() { [[ $(http GET "$SIM_URL/health" - "$E2E_ROOT/health.out" 2>/dev/null) == 200 ]]; }
sim_exited() { ! kill -0 "$SIM_PID" 2>/dev/null; }

# check_scenario <file>: the sim accepts the scenario (--check).
check_scenario() {
  "$SIM" --check --scenario "$1" >"$E2E_ROOT/check.out" 2>&1 ||
    { show "ferry-lfs-sim --check" "$E2E_ROOT/check.out"; fail "the sim rejected the scenario $1"; }
}

# start_sim [scenario-file|""] [sim flags...]: starts the sim on a free port
# of 127.0.0.1 with root $SIM_ROOT and waits (bounded) until /health answers.
start_sim() {
  local scenario=${1:-}
  (($# == 0)) || shift
  rm -f "$SIM_PORT_FILE"
  touch "$SIM_LOG"
  SIM_LOG_MARK=$(wc -l <"$SIM_LOG")
  local args=(--root "$SIM_ROOT" --port 0 --port-file "$SIM_PORT_FILE" --log "$SIM_LOG")
  [[ -z $scenario ]] || args+=(--scenario "$scenario")
  "$SIM" "${args[@]}" "$@" >"$SIM_OUT" 2>&1 &
  SIM_PID=$!
  track_pid "$SIM_PID"
  wait_for 10 "the sim's port file" sim_port_file_ready
  SIM_PORT=$(cat "$SIM_PORT_FILE")
  [[ $SIM_PORT =~ ^[0-9]+$ ]] || fail "port file holds '$SIM_PORT'"
  SIM_URL="http://127.0.0.1:$SIM_PORT"
  wait_for 10 "GET /health" sim_healthy
  grep -q "^listening on $SIM_URL\$" "$SIM_OUT" ||
    { show "sim stdout" "$SIM_OUT"; fail "the sim did not print 'listening on $SIM_URL'"; }
}

# stop_sim: SIGTERM, then the sim must exit 0 within 10 s.
stop_sim() {
  kill -TERM "$SIM_PID"
  wait_for 10 "the sim to exit after SIGTERM" sim_exited
  local rc=0
  wait "$SIM_PID" || rc=$?
  untrack_pid "$SIM_PID" # reaped: the cleanup must not signal a reused pid
  [[ $rc -eq 0 ]] || { show "sim stdout" "$SIM_OUT"; fail "the sim exited with $rc after SIGTERM"; }
  [[ ! -e $SIM_PORT_FILE ]] || fail "the sim left its port file behind"
}

# untrack_pid <pid>: forgets a process that has been reaped.
untrack_pid() {
  local pid kept=()
  for pid in "${E2E_PIDS[@]}"; do
    [[ $pid == "$1" ]] || kept+=("$pid")
  done
  E2E_PIDS=("${kept[@]}")
}

# lfs_url [repo-name]: the sim's LFS endpoint for that repository (default
# "repo"), as git-lfs's lfs.url would name it.
# shellcheck disable=SC2120 # the argument is optional
lfs_url() {
  echo "$SIM_URL/${1:-repo}.git/info/lfs"
}

# sim_stats <out-file>: saves GET /stats.
sim_stats() {
  [[ $(http GET "$SIM_URL/stats" - "$1") == 200 ]] || { show "/stats" "$1"; fail "GET /stats failed"; }
}

# expect_stats <check>...: each check is "<group>.<key> <op> <number>" (op
# ==, >= or <=) against GET /stats; absent keys count as 0.
expect_stats() {
  local out
  out=$(python3 - "$SIM_PORT" "$@" <<'PY'
import http.client, json, sys
conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=20)
conn.request("GET", "/stats")
stats = json.loads(conn.getresponse().read())
bad = []
for check in sys.argv[2:]:
    path, op, want = check.split()
    group, _, key = path.partition(".")
    got = stats.get(group, {}).get(key, 0)
    if not {"==": got == int(want), ">=": got >= int(want), "<=": got <= int(want)}[op]:
        bad.append("%s is %s, expected %s %s" % (path, got, op, want))
if bad:
    print(json.dumps(stats, indent=1))
    print("; ".join(bad))
    sys.exit(1)
PY
  ) || fail "/stats: $out"
}

# assert_root_clean [running]: every file under $SIM_ROOT is an object at its
# layout path whose content hashes to its name: no temp files, nothing
# elsewhere. With "running", the hidden temp files of uploads the sim is
# still serving (.<oid>.sim-*.partial, e.g. one held by a stall a client gave
# up on) are allowed; once the sim has stopped none may remain.
# shellcheck disable=SC2120 # the argument is optional
assert_root_clean() {
  local f name
  while IFS= read -r -d '' f; do
    name=$(basename "$f")
    if [[ ${1:-} == running && $name =~ ^\.[0-9a-f]{64}\.sim-.*\.partial$ ]]; then
      continue
    fi
    [[ $f == "$SIM_ROOT/${name:0:2}/${name:2:2}/$name" ]] || fail "unexpected file in the sim root: $f"
    [[ $(oid_of "$f") == "$name" ]] || fail "$f does not hash to its name"
  done < <(find "$SIM_ROOT" -type f -print0)
}

# sim_credentials: a git credential helper in the sandbox's global config that
# answers every `get` with user "e2e" and a random password (E2E_SECRET), so
# both git-lfs and ferry can answer the sim's 401 challenges. The secret lives
# only in the helper's file; tests check it never shows up in logs or output.
sim_credentials() {
  E2E_SECRET="secret-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  local helper="$E2E_ROOT/bin/git-credential-e2e"
  mkdir -p "$(dirname "$helper")"
  cat >"$helper" <<HELPER
#!/bin/sh
# Reads the request from stdin; answers only 'get'.
cat >/dev/null
[ "\$1" = get ] || exit 0
printf 'username=e2e\npassword=%s\n' '$E2E_SECRET'
HELPER
  chmod 700 "$helper"
  git config --global credential.helper "$helper"
}

# assert_no_secret <file>...: none of the files contains E2E_SECRET.
assert_no_secret() {
  local f
  for f in "$@"; do
    [[ -f $f ]] || continue
    ! grep -qF "$E2E_SECRET" "$f" || fail "the credential's password appears in $f"
  done
}

# sim_log_this_run <out-file>: the sim log lines of the running sim only.
sim_log_this_run() {
  tail -n +"$((SIM_LOG_MARK + 1))" "$SIM_LOG" >"$1"
}

# sim_log_lines: how many lines the sim log has now (to split it into phases).
sim_log_lines() {
  wc -l <"$SIM_LOG"
}

# assert_every_rule_fired <scenario> [<line>]: every rule of the scenario
# injected its fault in the running sim, judged from the sim log ("fault
# <kind>=<detail> on <endpoint>"): each fault key of each rule (a status with
# its code) shows up on the rule's endpoint at least as often as rules ask
# for it. Given the log line (sim_log_lines) where a pull began after a push,
# rules about uploads (operation upload, endpoints upload and verify) must
# have fired before it and rules about downloads after it. Prints how often
# each fired.
assert_every_rule_fired() {
  local log="$E2E_ROOT/sim-run.log"
  sim_log_this_run "$log"
  py_check "every rule of $(basename "$1") injected its fault" '
import collections, json, re, sys
rules = json.load(open(sys.argv[1]))["rules"]
split = int(sys.argv[3]) - int(sys.argv[4]) if sys.argv[3] else None
seen = collections.Counter()  # (phase, kind, status code, endpoint)
for number, line in enumerate(open(sys.argv[2], errors="replace")):
    m = re.search(r" fault (\w+)(?:=(.*?))? on (batch|download|upload|verify)\b", line)
    if m:
        kind, detail, where = m.groups()
        phase = None if split is None else ("upload" if number < split else "download")
        seen[(phase, kind, detail if kind == "status" else None, where)] += 1
wanted = collections.Counter()
for rule in rules:
    match = rule.get("match", {})
    where = match.get("endpoint", "any")
    phase = match.get("operation") or {"upload": "upload", "verify": "upload",
                                       "download": "download"}.get(where)
    fault = rule["fault"]
    for kind in fault:
        if kind in ("then_success", "stall_after_bytes"):
            continue  # modifiers of another key
        if kind == "retry_after_date_in":
            kind = "retry_after"
        code = str(fault.get("status", 429)) if kind == "status" else None
        wanted[(phase if split is not None else None, kind, code, where)] += 1
def fired(key):
    phase, kind, code, where = key
    return sum(n for (p, k, c, w), n in seen.items()
               if k == kind and c == code and where in (w, "any") and phase in (p, None))
def name(key):
    phase, kind, code, where = key
    return "%s%s on %s%s" % (kind, "=" + code if code else "", where,
                             " (%s)" % phase if phase else "")
missing = [name(k) for k, n in wanted.items() if fired(k) < n]
if missing:
    raise SystemExit("never injected: %s; the sim log shows %s" % (", ".join(missing), dict(seen)))
print(", ".join("%s x%d" % (name(k), fired(k)) for k in sorted(wanted, key=str)))
' "$1" "$log" "${2:-}" "$SIM_LOG_MARK"
}

# ---- ferry with a Git LFS server (the sim) as its store or peer -------------------

# ferry_quick_retries: global git config (so clones get it too) that lets
# ferry ride out a fault scenario quickly: many attempts with short backoff,
# stalls detected after 2 s, Retry-After honoured up to 10 s.
ferry_quick_retries() {
  git config --global ferry.maxAttempts 10
  git config --global ferry.backoffBase 50ms
  git config --global ferry.backoffMax 500ms
  git config --global ferry.stallTimeout 2s
  git config --global ferry.maxRetryWait 10s
}

# add_lfs_files <repo-dir> <path>=<bytes>...: random files, committed. A 0
# byte file stays a plain empty file in git (git-lfs makes no pointer for it).
add_lfs_files() {
  local repo=$1 out
  shift
  out=$(python3 "$E2E_DIR/lfs_files.py" make "$repo" "$@" 2>&1) || fail "$out"
  (cd "$repo" && git add -A && git commit -qm "add $# files") || fail "git commit in $repo failed"
}

# assert_checkout <original-repo> <clone> <path>...: each file in the clone is
# byte-identical to the original, hashes to the oid its pointer names, and
# the clone's LFS cache holds a verified copy.
assert_checkout() {
  local out
  out=$(python3 "$E2E_DIR/lfs_files.py" checkout "$@" 2>&1) || fail "$out"
}

# lfs_oids <repo-dir> <path>...: the oids of the non-empty files, one per line.
lfs_oids() {
  local repo=$1 f
  shift
  for f in "$@"; do
    [[ ! -s $repo/$f ]] || oid_of "$repo/$f"
  done
}

# timed_git <seconds> <log> <git args...>: runs git, killed after <seconds>
# so a hang fails the test instead of stalling it; output in <log>. Sets
# ELAPSED_MS and returns git's exit status.
timed_git() {
  local limit=$1 log=$2 start rc=0
  shift 2
  start=$(date +%s%N)
  timeout --kill-after=10 "$limit" git "$@" >"$log" 2>&1 || rc=$?
  # shellcheck disable=SC2034 # for the caller
  ELAPSED_MS=$((($(date +%s%N) - start) / 1000000))
  ((rc != 124 && rc != 137)) || { show "git $*" "$log"; fail "git $* did not finish within ${limit}s"; }
  return "$rc"
}

# must_git <seconds> <log> [-C <dir>] <git args...>: timed_git that must
# succeed; on failure shows the end of its output, of the sim log and, with
# -C, of that repository's ferry log.
must_git() {
  local log=$2
  timed_git "$@" && return 0
  # The end says why (a GIT_TRACE log starts with pages of requests).
  tail -n 30 "$log" >"$log.tail"
  show "git ${*:3} (end)" "$log.tail"
  if [[ -n ${SIM_LOG:-} ]]; then
    tail -n 40 "$SIM_LOG" >"$log.sim-tail" 2>/dev/null || true
    show "sim log (end)" "$log.sim-tail"
  fi
  if [[ $3 == -C ]]; then
    tail -n 40 "$4/.git/lfs/ferry/ferry.log" >"$log.ferry-tail" 2>/dev/null || true
    show "ferry log (end)" "$log.ferry-tail"
  fi
  fail "git ${*:3} failed"
}

# The objects of a round trip: 0 B (git keeps it as a plain empty file), 1 KiB,
# 1 MiB and 64 MiB (enough for parallel ranges) ...
# shellcheck disable=SC2034 # for the sourcing script
ROUND_TRIP_FILES=(empty.bin=0 one-kib.bin=1024 "sub dir/one-mib.bin=1048576" big.bin=$((64 << 20)))
# ... and the 8 objects every-fault.json is made for.
FAULT_FILES=(tiny.bin=1024 k1.bin=102400 k2.bin=102401 k3.bin=102402 k4.bin=102403
  m1.bin=1048576 m2.bin=1048577 big.bin=$((64 << 20)))

# git_lfs_defaults <repo-dir> <store-dir>: ferry installed, then git-lfs's
# own default for concurrency (8 agents) back in place.
git_lfs_defaults() {
  git_lfs_defaults_url "$1" "file://$2"
}

# git_lfs_defaults_url <repo-dir> <store-url>: git_lfs_defaults for any store.
git_lfs_defaults_url() {
  install_ferry_url "$1" "$2"
  git -C "$1" config --unset lfs.customtransfer.ferry.concurrent
  [[ $(git -C "$1" config --get lfs.customtransfer.ferry.concurrent || echo unset) == unset ]] ||
    fail "lfs.customtransfer.ferry.concurrent is still set in $1"
}

# add_mixed_lfs_files <repo-dir> <count>: f1.bin..f<count>.bin, fi.bin of
# i x 97 bytes, but every tenth one of about 2 MiB, large enough for
# transfers to overlap. Sets FILES and SPECS.
add_mixed_lfs_files() {
  local i
  FILES=()
  SPECS=()
  for i in $(seq 1 "$2"); do
    FILES+=("f$i.bin")
    if ((i % 10 == 0)); then SPECS+=("f$i.bin=$((2 * 1024 * 1024 - i))"); else SPECS+=("f$i.bin=$((i * 97))"); fi
  done
  add_lfs_files "$1" "${SPECS[@]}"
}

# server_offered <repo-dir>: a round_trip configuration: the sim as the LFS
# server, ferry the transfer it offers, at git-lfs's default concurrency.
server_offered() {
  git -C "$1" config lfs.url "$(lfs_url "$(basename "$1")")"
  (cd "$1" && "$FERRY" install --server-offered) >"$E2E_ROOT/install.out" 2>&1 ||
    { show "ferry install --server-offered" "$E2E_ROOT/install.out"; fail "ferry install --server-offered in $1 failed"; }
}

# round_trip <name> <configure> <path>=<bytes>...: a new repository <name>
# (remote <name>.git) with those files, set up by `<configure> <repo-dir>`;
# one git push, then a fresh clone set up the same way and one git lfs pull,
# each bounded. Checks that the sim holds every object (sha256 == oid), that
# every file in the clone is byte-identical and hashes to its oid (git lfs
# fsck agrees), and that ferry's journals record every object as done in
# both directions. Sets REPO, CLONE, FILES, OIDS, PUSH_MS, PULL_MS and
# PULL_LINE (the sim log line where the pull began); git's output is in
# $E2E_ROOT/<name>-push.log and <name>-pull.log, with git-lfs's trace
# (GIT_TRACE) when TRACE_TRANSFERS=1.
round_trip() {
  local name=$1 configure=$2 f spec trace=${TRACE_TRANSFERS:-0}
  shift 2
  REPO="$E2E_ROOT/$name"
  CLONE="$E2E_ROOT/$name-clone"
  FILES=()
  for spec in "$@"; do FILES+=("${spec%=*}"); done
  new_repo "$name"
  "$configure" "$REPO"
  add_lfs_files "$REPO" "$@"
  mapfile -t OIDS < <(lfs_oids "$REPO" "${FILES[@]}")

  GIT_TRACE=$trace must_git 120 "$E2E_ROOT/$name-push.log" -C "$REPO" push origin main
  PUSH_MS=$ELAPSED_MS
  for f in "${FILES[@]}"; do
    [[ ! -s $REPO/$f ]] || assert_stored "$SIM_ROOT" "$REPO/$f"
  done
  assert_root_clean running
  pass "$name: one git push stored all ${#OIDS[@]} objects intact in the sim ($PUSH_MS ms)"

  clone_pointers "$E2E_ROOT/$name.git" "$CLONE" "$E2E_ROOT/$name-clone.log"
  "$configure" "$CLONE"
  PULL_LINE=$(sim_log_lines)
  GIT_TRACE=$trace must_git 120 "$E2E_ROOT/$name-pull.log" -C "$CLONE" lfs pull
  PULL_MS=$ELAPSED_MS
  assert_checkout "$REPO" "$CLONE" "${FILES[@]}"
  must_git 60 "$E2E_ROOT/$name-fsck.log" -C "$CLONE" lfs fsck
  pass "$name: one git lfs pull in a fresh clone: all ${#FILES[@]} files byte-identical, sha256 == oid ($PULL_MS ms)"

  status_json "$REPO" "$E2E_ROOT/$name-push-status.json"
  assert_history "$E2E_ROOT/$name-push-status.json" upload "done" "${OIDS[@]}"
  status_json "$CLONE" "$E2E_ROOT/$name-pull-status.json"
  assert_history "$E2E_ROOT/$name-pull-status.json" download "done" "${OIDS[@]}"
}

# fault_round_trip <scenario> <configure>: round_trip "faulty" of FAULT_FILES
# against the running sim (started with <scenario>), then: every rule fired
# in its phase, no push or pull waited out the scenario's 30 s stalls, the
# credential that answered the sim's 401s is in no log, journal or git
# output, and the journals show the retried attempts with their errors.
fault_round_trip() {
  local scenario=$1
  round_trip faulty "$2" "${FAULT_FILES[@]}"
  assert_every_rule_fired "$scenario" "$PULL_LINE"
  local bound=25000
  ((PUSH_MS < bound && PULL_MS < bound)) ||
    fail "push took $PUSH_MS ms and pull $PULL_MS ms: a 30 s stall was waited out instead of detected"
  pass "the 30 s stalls were detected and retried (push $PUSH_MS ms, pull $PULL_MS ms < $bound ms)"
  assert_no_secret "$REPO/.git/lfs/ferry/ferry.log" "$CLONE/.git/lfs/ferry/ferry.log" \
    "$E2E_ROOT/faulty-push.log" "$E2E_ROOT/faulty-pull.log" \
    "$E2E_ROOT/faulty-push-status.json" "$E2E_ROOT/faulty-pull-status.json"
  pass "the credential answering the 401s appears in no ferry log, journal or git output"
  py_check "the journals record the retried attempts and their errors" '
import json, sys
retried = []
for path in sys.argv[1:]:
    doc = json.load(open(path))
    retried += [r for r in doc["history"] if r["attempts"] > 1 and r["errors"]]
if len(retried) < 2:
    raise SystemExit("only %d transfers needed more than one attempt" % len(retried))
print("%d transfers retried, e.g. %s" % (len(retried), retried[0]["errors"][0]["message"][:100]))
' "$E2E_ROOT/faulty-push-status.json" "$E2E_ROOT/faulty-pull-status.json"
}
