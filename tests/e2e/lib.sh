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
  if [[ -f $file ]]; then sed -e 's/^/    /' "$file" | head -n 60 >&2; else echo "    (missing)" >&2; fi
}

e2e_elapsed() {
  local now
  now=$(date +%s%N)
  echo "$(((now - E2E_STARTED) / 1000000)) ms"
}

# ---- sandbox --------------------------------------------------------------------

e2e_cleanup() {
  local status=$?
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
  local repo=$1 store=$2
  (cd "$repo" && "$FERRY" install --store "file://$store") >"$E2E_ROOT/install.out" 2>&1 ||
    { show "ferry install output" "$E2E_ROOT/install.out"; fail "ferry install in $repo failed"; }
}

# clone_and_pull <remote.git> <clone-dir> <store-dir> <log>: a fresh clone
# without smudging, ferry installed, then git lfs pull. Returns git lfs pull's
# exit status (output in <log>), so callers decide whether it must succeed.
clone_and_pull() {
  local remote=$1 dir=$2 store=$3 log=$4
  GIT_LFS_SKIP_SMUDGE=1 git clone -q "$remote" "$dir" >"$log" 2>&1 ||
    { show "git clone" "$log"; fail "git clone $remote failed"; }
  install_ferry "$dir" "$store"
  local rc=0
  (cd "$dir" && git lfs pull) >"$log" 2>&1 || rc=$?
  return "$rc"
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

# assert_stored <store-dir> <original-file>: the store holds the file's
# object at the layout path, with the same size and a sha256 equal to its oid.
assert_stored() {
  local store=$1 file=$2
  local oid path size
  oid=$(oid_of "$file")
  path=$(store_object "$store" "$oid")
  [[ -f $path ]] || fail "object $oid ($file) is not in the store at $path"
  size=$(stat -c %s "$path")
  [[ $size -eq $(stat -c %s "$file") ]] || fail "stored $path has $size bytes, $file has $(stat -c %s "$file")"
  [[ $(oid_of "$path") == "$oid" ]] || fail "stored $path does not hash to its oid $oid"
  cmp -s "$path" "$file" || fail "stored $path differs from $file"
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
wait_for() {
  local limit=$1 what=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@"; do
    ((SECONDS < deadline)) || fail "timed out after ${limit}s waiting for $what"
    sleep 0.01 # polling interval, not synchronisation: the loop re-checks the condition
  done
}
