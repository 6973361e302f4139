# shellcheck shell=bash
# Helpers for the tests of a store that cannot work (a bridge that is no
# bridge, an endpoint that is not S3, a missing bucket): the agent must say
# so in its answer to init, before any object. Source it after lib.sh.

# init_session <repo-dir> <name>: drives `ferry agent` in the repository with
# init (upload), one upload of a new file and terminate
# (tests/e2e/agent_driver.py). The replies are in $E2E_ROOT/<name>.jsonl,
# the agent's stderr next to them; sets SESSION to that file.
init_session() {
  local repo=$1 name=$2 file oid
  file="$repo/$name-session.bin"
  random_file "$file" 1234
  oid=$(oid_of "$file")
  SESSION="$E2E_ROOT/$name.jsonl"
  {
    echo '{"label":"init","json":{"event":"init","operation":"upload","remote":"origin","concurrent":false,"concurrenttransfers":1}}'
    printf '{"label":"upload","json":{"event":"upload","oid":"%s","size":1234,"path":"%s","action":null}}\n' "$oid" "$file"
    echo '{"label":"terminate","json":{"event":"terminate"},"exit":true}'
  } >"$E2E_ROOT/$name.script"
  python3 "$E2E_DIR/agent_driver.py" --ferry "$FERRY" --cwd "$repo" --timeout 60 \
    --stderr "$SESSION.stderr" <"$E2E_ROOT/$name.script" >"$SESSION" ||
    { show "driver output" "$SESSION"; fail "$name: agent_driver.py failed"; }
}

# init_refused <repo-dir> <name> <text>...: in an init_session, init is
# answered with an error whose message holds every <text>; the upload after
# it gets the same error without being tried (its journal stays empty), and
# the agent exits on terminate.
init_refused() {
  local repo=$1 name=$2
  shift 2
  init_session "$repo" "$name"
  py_check "$name: init is refused naming $*; the upload is refused alike; terminate ends the agent" '
import json, sys
records = {r["label"]: r for r in map(json.loads, open(sys.argv[1]))}
init, upload, end = records["init"], records["upload"], records["<exit>"]
error = (init["reply"] or {}).get("error")
if not error or set(init["reply"]) != {"error"}:
    raise SystemExit("init was answered %r, not with an error" % init["raw"])
missing = [text for text in sys.argv[2:] if text not in error.get("message", "")]
if missing:
    raise SystemExit("the init error does not name %s: %r" % (missing, error))
complete = upload["reply"] or {}
if complete.get("event") != "complete" or (complete.get("error") or {}).get("message") != error["message"]:
    raise SystemExit("the upload was answered %r" % upload["raw"])
if end["exit_code"] is None:
    raise SystemExit("the agent did not exit after terminate")
print("init in %d ms: [%d] %s" % (init["elapsed_ms"], error["code"], error["message"][:160]))
' "$SESSION" "$@"
  assert_no_transfer "$repo"
}

# assert_no_transfer <repo-dir>: ferry's journal in the repository records no
# transfer, active or finished.
assert_no_transfer() {
  status_json "$1" "$E2E_ROOT/status.json"
  py_check "no transfer was tried in $(basename "$1")" '
import json, sys
doc = json.load(open(sys.argv[1]))
if doc["active"] or doc["history"]:
    raise SystemExit("the journal holds %s" % (doc["active"] + doc["history"]))
' "$E2E_ROOT/status.json"
}

# push_refused <repo-dir> <name> <text>...: a new LFS file is committed and
# pushed; the push fails, git-lfs prints the agent's init error with every
# <text>, and no object was tried: no per-object error, an empty journal.
push_refused() {
  local repo=$1 name=$2 log="$E2E_ROOT/$2-push.log" text rc=0
  shift 2
  add_lfs_files "$repo" "$name.bin=2345"
  timed_git 60 "$log" -C "$repo" push origin main || rc=$?
  ((rc != 0)) || { show "git push" "$log"; fail "$name: git push succeeded although the store cannot work"; }
  grep -qi 'error initializing custom adapter "ferry"' "$log" ||
    { show "git push" "$log"; fail "$name: git-lfs did not report an init error of the agent"; }
  for text in "$@"; do
    grep -qF -- "$text" "$log" || { show "git push" "$log"; fail "$name: git's output does not name '$text'"; }
  done
  ! grep -q 'error transferring' "$log" ||
    { show "git push" "$log"; fail "$name: git-lfs reports per-object failures: an object was tried"; }
  assert_no_transfer "$repo"
  pass "$name: git push failed in $ELAPSED_MS ms with git-lfs showing the init error ($(grep -m1 -i 'error initializing' "$log" | cut -c1-200))"
}
