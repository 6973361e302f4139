#!/usr/bin/env bash
# What Ferry reports as copied or complete survives `kill -9`, checked from
# the outside with the test's own hashing:
#
#   1. `ferry migrate` of 3,000 small objects, folder -> folder, killed with
#      SIGKILL once ferry.log names 300 objects as copied ('oid=<oid>
#      msg="copy: done"'). Every object ferry.log or a progress line on stderr reported
#      before the kill is at the destination, complete and intact; every
#      file under an object's final name is complete and intact (anything
#      else is a hidden temporary). Running the same command again finishes:
#      every object present and intact, and the report counts the objects
#      the killed run left as present and the rest as copied.
#   2. `ferry agent` uploading into a folder store, driven over git-lfs's
#      custom transfer protocol as git-lfs does (one request at a time),
#      killed with SIGKILL right after the 20th `complete` and the 21st
#      upload request: the 20 objects are in the store, intact, and a new
#      agent then uploads all 40.
#
#   bash tests/e2e/test_durability_kill.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/migrate_lib.sh"
e2e_init "$@"

# assert_reported_intact <store> <reported-oids-file> <manifest>: every
# reported object is at its layout path with its size and sha256 == oid;
# every file named like an object (64 hex digits) is at its layout path and
# intact, and every other file is hidden (a temporary, name starting with
# "."). Prints how many objects the store holds.
assert_reported_intact() {
  python3 - "$@" 2>&1 <<'PY'
import hashlib, os, re, sys
store, reported_file, manifest = sys.argv[1:4]
sizes = dict((oid, int(size)) for oid, size in (line.split() for line in open(manifest)))
reported = open(reported_file).read().split()
bad = []
def intact(oid, path):
    try:
        data = open(path, "rb").read()
    except OSError as e:
        return "%s: %s" % (path, e.strerror)
    if oid not in sizes:
        return "%s is not an object of the source" % path
    if len(data) != sizes[oid]:
        return "%s has %d bytes, expected %d" % (path, len(data), sizes[oid])
    if hashlib.sha256(data).hexdigest() != oid:
        return "%s does not hash to its oid" % path
    return None
for oid in reported:
    problem = intact(oid, os.path.join(store, oid[:2], oid[2:4], oid))
    if problem:
        bad.append("reported " + problem)
held = 0
for folder, _, names in os.walk(store):
    for name in names:
        path = os.path.join(folder, name)
        if re.fullmatch(r"[0-9a-f]{64}", name):
            if path != os.path.join(store, name[:2], name[2:4], name):
                bad.append("%s is not at its layout path" % path)
                continue
            problem = intact(name, path)
            if problem:
                bad.append("under its final name: " + problem)
            held += 1
        elif not name.startswith("."):
            bad.append("unexpected visible file %s" % path)
if bad:
    raise SystemExit("%d problem(s): %s" % (len(bad), "; ".join(bad[:10])))
print(held)
PY
}

# ---- 1. ferry migrate, folder -> folder --------------------------------------------

COUNT=3000
KILL_AFTER=300
SRC="$E2E_ROOT/src"
DEST="$E2E_ROOT/dest"
LIST="$E2E_ROOT/objects.manifest"
JOURNAL="$E2E_ROOT/journal"
LOG="$JOURNAL/ferry.log"
make_objects "$SRC" "$LIST" "$COUNT" small
# --tps paces the copies (3,000 take at least 3 s), so the run is still
# going when the watcher below sees the kill point.
ARGS=(--from "file://$SRC" --to "file://$DEST" --transfers 8 --tps 1000 --journal "$JOURNAL"
  --report "$E2E_ROOT/report.json")

# reported_copied <out>: the oids ferry.log names as copied, one per line.
reported_copied() {
  { sed -n 's/.* oid=\([0-9a-f]\{64\}\) msg="copy: done"$/\1/p' "$LOG" 2>/dev/null || true; } | sort -u >"$1"
}
RUN_ERR="$E2E_ROOT/killed.err"
enough_reported() {
  kill -0 "$RUN_PID" 2>/dev/null ||
    { show "stderr" "$RUN_ERR"; fail "ferry migrate ended before $KILL_AFTER objects were reported copied"; }
  local copied
  copied=$(grep -c ' oid=[0-9a-f]\{64\} msg="copy: done"$' "$LOG" 2>/dev/null || true)
  ((${copied:-0} >= KILL_AFTER))
}

"$FERRY" migrate "${ARGS[@]}" >"$E2E_ROOT/killed.out" 2>"$RUN_ERR" &
RUN_PID=$!
track_pid "$RUN_PID"
wait_for 120 "ferry.log to report $KILL_AFTER objects copied" enough_reported
kill -9 "$RUN_PID"
rc=0
{ wait "$RUN_PID"; } 2>/dev/null || rc=$?
untrack_pid "$RUN_PID"
((rc == 137)) || { show "stderr" "$RUN_ERR"; fail "ferry migrate exited with $rc before SIGKILL reached it"; }

# Everything the log says, including lines written after the kill point was
# seen and before SIGKILL landed.
reported_copied "$E2E_ROOT/reported"
REPORTED=$(wc -l <"$E2E_ROOT/reported")
((REPORTED >= KILL_AFTER && REPORTED < COUNT)) ||
  fail "ferry.log names $REPORTED objects as copied; the kill should land between $KILL_AFTER and $COUNT"
# The last progress line on stderr ("D/T objects, ...") counts objects done.
SHOWN=$(sed -n 's/^ferry migrate: \([0-9]*\)\/[0-9]* objects, .*/\1/p' "$RUN_ERR" | tail -n 1)
note "killed after ferry.log reported $REPORTED objects copied (stderr's last progress line: ${SHOWN:-none} done)"

HELD=$(assert_reported_intact "$DEST" "$E2E_ROOT/reported" "$LIST") ||
  { show "stderr" "$RUN_ERR"; fail "after the kill: $HELD"; }
((HELD >= ${SHOWN:-0})) || fail "stderr showed ${SHOWN} objects done, but the destination holds only $HELD"
pass "all $REPORTED objects reported copied are at the destination and intact; $HELD objects are there in all, each intact under its final name"

run_migrate rerun 180 "${ARGS[@]}"
expect_rc rerun 0
assert_objects "$DEST" "$LIST" exact
pass "the rerun finished: all $COUNT objects at the destination, intact, no temporary file left ($MIG_MS ms)"
assert_report "$E2E_ROOT/report.json" "outcome == complete" "pending.objects == 0" "failed.objects == 0" \
  "corrupt.objects == 0" "present.objects == $HELD" "copied.objects == $((COUNT - HELD))"
assert_counts_add_up "$E2E_ROOT/report.json" "$COUNT" "$(manifest_bytes "$LIST")"

# ---- 2. ferry agent, uploads into a folder store -----------------------------------

UPLOADS=40
COMPLETE_BEFORE_KILL=20
STORE="$E2E_ROOT/store"
new_repo repo
install_ferry "$E2E_ROOT/repo" "$STORE"
# Where git-lfs keeps the objects it hands its agent.
FILES="$E2E_ROOT/repo/.git/lfs/objects"
make_objects "$FILES" "$E2E_ROOT/uploads.manifest" "$UPLOADS" small

# upload_session <kill-after|all> <reported-out>: one `ferry agent` in the
# repository, sent init and then one upload at a time, each after the
# previous `complete`, as git-lfs sends them. With a number, the agent gets
# SIGKILL right after that many `complete` messages and the next upload
# request; otherwise it uploads everything and gets `terminate`. Writes the
# oids the agent reported complete, including any it wrote before it died.
upload_session() {
  python3 - "$FERRY" "$E2E_ROOT/repo" "$FILES" "$E2E_ROOT/uploads.manifest" "$@" \
    "$E2E_ROOT/agent.err" <<'PY'
import json, os, subprocess, sys
ferry, repo, files, manifest, kill_after, reported_out, stderr_path = sys.argv[1:8]
objects = [line.split() for line in open(manifest)]
kill_after = None if kill_after == "all" else int(kill_after)
agent = subprocess.Popen([ferry, "agent"], cwd=repo, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=open(stderr_path, "ab"))
reported = []
def send(message):
    agent.stdin.write((json.dumps(message) + "\n").encode())
    agent.stdin.flush()
def reply():
    # The next line that is not a progress event; None once the agent ended.
    for raw in agent.stdout:
        message = json.loads(raw)
        if message.get("event") != "progress":
            return message
    return None
def take_complete(message, oid):
    if message is None or message.get("event") != "complete" or message.get("oid") != oid:
        raise SystemExit("expected complete of %s, got %r" % (oid, message))
    if "error" in message:
        raise SystemExit("the upload of %s failed: %r" % (oid, message["error"]))
    reported.append(oid)
send({"event": "init", "operation": "upload", "remote": "origin", "concurrent": False,
      "concurrenttransfers": 1})
if reply() != {}:
    raise SystemExit("init was not answered with {}")
for i, (oid, size) in enumerate(objects):
    send({"event": "upload", "oid": oid, "size": int(size), "action": None,
          "path": os.path.join(files, oid[:2], oid[2:4], oid)})
    if i == kill_after:
        agent.kill()
        # What the agent wrote before it died counts as reported too.
        message = reply()
        while message is not None:
            take_complete(message, oid)
            message = reply()
        break
    take_complete(reply(), oid)
else:
    send({"event": "terminate"})
code = agent.wait()
if kill_after is None and code != 0:
    raise SystemExit("the agent exited with %d after terminate" % code)
with open(reported_out, "w") as out:
    out.write("".join(oid + "\n" for oid in reported))
PY
}

upload_session "$COMPLETE_BEFORE_KILL" "$E2E_ROOT/uploaded" ||
  { show "agent stderr" "$E2E_ROOT/agent.err"; fail "the killed upload session went wrong"; }
UPLOADED=$(wc -l <"$E2E_ROOT/uploaded")
((UPLOADED >= COMPLETE_BEFORE_KILL)) || fail "the agent reported $UPLOADED uploads complete before the kill"
HELD=$(assert_reported_intact "$STORE" "$E2E_ROOT/uploaded" "$E2E_ROOT/uploads.manifest") ||
  fail "after killing the agent: $HELD"
pass "killed the agent after $UPLOADED complete: each of them is in the store and intact ($HELD objects there in all)"

upload_session all "$E2E_ROOT/uploaded-again" ||
  { show "agent stderr" "$E2E_ROOT/agent.err"; fail "the second upload session failed"; }
assert_objects "$STORE" "$E2E_ROOT/uploads.manifest" exact
pass "a new agent uploaded all $UPLOADS objects: each in the store, intact, no temporary file left"
