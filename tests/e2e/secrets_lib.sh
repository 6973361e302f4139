# shellcheck shell=bash
# Helpers for the tests that look for leaked secrets, one per store
# (test_secrets_lfs.sh, test_s3_secrets.sh, test_secrets_proton.sh). Source
# it after lib.sh and e2e_init:
#
#   random_secret <prefix>        a fresh secret string
#   add_secret <secret>...        strings that must not leak (16+ characters)
#   watch_start / watch_stop      proc_watch.py records the argv and
#                                 environment of every process of ferry's tree;
#                                 every git ferry runs waits until it is read
#   hold_for_watch                shell lines for a helper script: wait until
#                                 the watcher has read it and its ancestors
#   assert_no_secret_in_files <what> <path>... [--exclude <path>]...
#   assert_no_secret_in_processes [--bridge TEXT] [--expect TEXT]...
#   assert_scan_finds_planted     the two checks above find each secret in
#                                 every form it could leak in (so they can fail)
#
# Every check covers all the secrets, in each form secret_scan.py looks for:
# as written, URL-encoded, JSON-escaped, base64 (e.g. in a Basic header).

SECRETS_FILE=""
WATCH_PID=""

# random_secret <prefix>: <prefix>-<24 random hex digits>, unlike anything
# else in the sandbox.
random_secret() {
  echo "$1-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
}

# add_secret <secret>...: adds secrets to look for.
add_secret() {
  SECRETS_FILE="$E2E_ROOT/secrets/list"
  mkdir -p "$E2E_ROOT/secrets"
  printf '%s\n' "$@" >>"$SECRETS_FILE"
}

# watch_start: proc_watch.py records ferry's process tree in WATCH_RECORDS
# from now on; returns once it has completed a walk. Every git that ferry
# starts waits until the watcher has read it (watch_git).
watch_start() {
  WATCH_RECORDS="$E2E_ROOT/secrets/processes.jsonl"
  WATCH_HOLD="$E2E_ROOT/watch-hold"
  : >"$WATCH_RECORDS"
  mkdir -p "$WATCH_HOLD"
  watch_git
  python3 "$E2E_DIR/proc_watch.py" --ferry "$FERRY" --out "$WATCH_RECORDS" --hold-dir "$WATCH_HOLD" \
    2>"$E2E_ROOT/watch.err" &
  WATCH_PID=$!
  track_pid "$WATCH_PID"
  : >"$WATCH_HOLD/$BASHPID"
  wait_for 20 "the process watcher's first walk" watch_released "$BASHPID"
  rm -f "$WATCH_HOLD/$BASHPID" "$WATCH_HOLD/$BASHPID.seen"
}

watch_released() {
  kill -0 "$WATCH_PID" 2>/dev/null || { show "watcher" "$E2E_ROOT/watch.err"; fail "the process watcher exited"; }
  [[ -e $WATCH_HOLD/$1.seen ]]
}

# watch_stop: ends the watcher (SIGTERM; it must exit 0) and the holds.
watch_stop() {
  kill -TERM "$WATCH_PID"
  local rc=0
  wait "$WATCH_PID" || rc=$?
  untrack_pid "$WATCH_PID"
  rm -rf "$WATCH_HOLD"
  ((rc == 0)) || { show "watcher" "$E2E_ROOT/watch.err"; fail "the process watcher exited with $rc"; }
  [[ -s $WATCH_RECORDS ]] || fail "the process watcher recorded no process"
}

# watch_git: ferry runs "git" from its PATH, which git puts its exec path
# (GIT_EXEC_PATH) in front of for what it runs, git-lfs and so ferry agent
# included. Both get a folder whose "git" waits for the watcher when ferry
# started it (its parent's argv[0] is $FERRY), then execs the real git with
# the same pid, argv and environment; the rest of git's exec path is linked.
watch_git() {
  local dir="$E2E_ROOT/git-exec" real
  [[ ! -d $dir ]] || return 0
  real="$(git --exec-path)/git"
  mkdir -p "$dir"
  ln -s "$(git --exec-path)"/* "$dir/"
  rm "$dir/git"
  {
    echo '#!/bin/bash'
    echo "if IFS= read -r -d '' parent </proc/\$PPID/cmdline 2>/dev/null && [[ \$parent == '$FERRY' ]]; then"
    hold_for_watch
    echo 'fi'
    echo "exec '$real' \"\$@\""
  } >"$dir/git"
  chmod 755 "$dir/git"
  export GIT_EXEC_PATH="$dir" PATH="$dir:$PATH"
}

# hold_for_watch: sh lines that make the script running them wait (at most
# 10 s) until the watcher has walked /proc while it ran, so its argv and
# environment, and those of the processes that started it, are recorded
# however short-lived they are.
hold_for_watch() {
  cat <<HOLD
if [ -d '$E2E_ROOT/watch-hold' ]; then
  : >'$E2E_ROOT/watch-hold'/\$\$
  i=0
  while [ ! -e '$E2E_ROOT/watch-hold'/\$\$.seen ] && [ \$i -lt 1000 ]; do sleep 0.01; i=\$((i + 1)); done
  rm -f '$E2E_ROOT/watch-hold'/\$\$ '$E2E_ROOT/watch-hold'/\$\$.seen
fi
HOLD
}

# assert_no_secret_in_files <what> <path>... [--exclude <path>]...: no file
# at or below the paths holds a secret in any form.
assert_no_secret_in_files() {
  local what=$1 out
  shift
  out=$(python3 "$E2E_DIR/secret_scan.py" "$SECRETS_FILE" files "$@" 2>&1) || fail "$what: $out"
  pass "$what: no secret in any form ($out)"
}

# assert_no_secret_in_processes [options]: see secret_scan.py (processes).
assert_no_secret_in_processes() {
  local out
  out=$(python3 "$E2E_DIR/secret_scan.py" "$SECRETS_FILE" processes "$WATCH_RECORDS" \
    --ferry "$FERRY" "$@" 2>&1) || fail "processes: $out"
  pass "no secret in the argv of any process of ferry's tree, none added to an environment ($out)"
}

# assert_scan_finds_planted [processes options]: each secret planted in a
# file (as written, in a URL, in a Basic header) and in the argv and the
# environment of a recorded child of ferry is found, so the checks above
# would fail on a leak.
# shellcheck disable=SC2120 # the options are optional
assert_scan_finds_planted() {
  local dir="$E2E_ROOT/secrets/planted" secret n=0 out file secrets
  mkdir -p "$dir"
  mapfile -t secrets <"$SECRETS_FILE"
  for secret in "${secrets[@]}"; do
    n=$((n + 1))
    printf 'log line: key %s\n' "$secret" >"$dir/raw-$n"
    printf 'GET http://127.0.0.1/x?token=%s\n' "$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$secret")" >"$dir/url-$n"
    printf 'Authorization: Basic %s\n' "$(printf 'user:%s' "$secret" | base64 -w0)" >"$dir/basic-$n"
    for file in raw url basic; do
      out=$(python3 "$E2E_DIR/secret_scan.py" "$SECRETS_FILE" files "$dir/$file-$n" 2>&1) &&
        fail "the file check missed a secret planted in $dir/$file-$n"
    done
    python3 - "$FERRY" "$secret" "$dir/argv-$n.jsonl" "$dir/env-$n.jsonl" <<'PY'
import json, sys
ferry, secret, argv_file, env_file = sys.argv[1:]
parent = {"pid": 10, "ppid": 1, "start": 1, "ferry": 10, "ferry_start": 1, "argv": [ferry, "agent"],
          "env": ["HOME=/h"]}
child = {"pid": 11, "ppid": 10, "start": 2, "ferry": 10, "ferry_start": 1,
         "argv": ["git", "credential", "fill"], "env": ["HOME=/h"]}
with open(argv_file, "w") as f:
    for r in (parent, dict(child, argv=["git", "credential", "fill", "--password=" + secret])):
        f.write(json.dumps(r) + "\n")
with open(env_file, "w") as f:
    for r in (parent, dict(child, env=["HOME=/h", "LEAKED=" + secret])):
        f.write(json.dumps(r) + "\n")
PY
    for file in argv env; do
      out=$(python3 "$E2E_DIR/secret_scan.py" "$SECRETS_FILE" processes "$dir/$file-$n.jsonl" \
        --ferry "$FERRY" "$@" 2>&1) && fail "the process check missed a secret planted in a child's $file"
    done
  done
  ((n > 0)) || fail "no secrets to look for"
  pass "the checks find each of the $n secrets planted in a file (as written, URL-encoded, in a Basic header) and in a child's argv and environment"
}
