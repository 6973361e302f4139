#!/usr/bin/env bash
# `kill -9` of `ferry migrate` at several points of a 2,000-object migration
# into an LFS server (ferry-lfs-sim), each time followed by the same command:
#
#   - kill 1 right after the run names its journal (while it lists the
#     source or just after), kills 2 to 4 once 10%, 50% and 90% of the
#     objects are stored at the server (the destination's count, polled);
#     then the same command runs to the end and exits 0.
#   - Nothing lost: the server holds exactly the 2,000 objects, each with
#     sha256 == oid, and (once stopped) no temporary file.
#   - Nothing sent twice, counted by the server's PUTs per oid (/stats):
#     an object the server had stored when ferry was killed never gets
#     another PUT. The only objects PUT again are those in flight at a
#     kill: PUT at least once but not stored when ferry died. At each kill
#     there are at most --transfers (8) of them, and each gets at most one
#     more PUT per kill that caught it in flight.
#   - The final report counts the last run only: present are the objects
#     the server held when it started (asked again, whatever the killed runs
#     had recorded), copied the rest; none pending, failed or corrupt;
#     outcome complete.
#
#   FERRY_LFS_SIM=<ferry-lfs-sim> bash tests/e2e/test_migrate_kill.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/migrate_lib.sh"
e2e_init "$@"
sim_init

COUNT=2000
TRANSFERS=8
SRC="$E2E_ROOT/src"
LIST="$E2E_ROOT/objects.manifest"
make_objects "$SRC" "$LIST" "$COUNT" small
start_sim ""
# At most 250 requests a second (a copy is a PUT and a verify call), so
# that each kill point is seen in time.
ARGS=(--from "file://$SRC" --to "lfs+$(lfs_url kill)" --transfers "$TRANSFERS" --tps 250
  --report "$E2E_ROOT/report.json")

# stored_count: objects the server has stored so far (temporary files
# start with a dot).
stored_count() {
  find "$SIM_ROOT" -type f -name '[0-9a-f]*' 2>/dev/null | wc -l
}

# The run being killed, and the condition that says when.
RUN_PID=""
RUN_ERR=""
KILL_AT=0
run_alive() {
  kill -0 "$RUN_PID" 2>/dev/null ||
    { show "stderr" "$RUN_ERR"; fail "ferry migrate ended before the kill point was reached"; }
}
journal_named() { run_alive && grep -q '(journal ' "$RUN_ERR"; }
enough_stored() { run_alive && (($(stored_count) >= KILL_AT)); }

# sim_settled: every PUT the server began has been answered (the killed
# client's unfinished bodies end with a 400) and no upload's temporary
# file is left, so the counts below are final for the killed run.
sim_settled() {
  python3 - "$SIM_PORT" "$SIM_LOG" "$SIM_LOG_MARK" "$SIM_ROOT" <<'PY'
import http.client, json, os, sys
conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=20)
conn.request("GET", "/stats")
started = json.loads(conn.getresponse().read())["requests"]["upload"]
lines = open(sys.argv[2], errors="replace").readlines()[int(sys.argv[3]):]
answered = sum(1 for line in lines if " PUT " in line and " -> " in line)
temporary = [n for _, _, names in os.walk(sys.argv[4]) for n in names if n.startswith(".")]
sys.exit(0 if answered == started and not temporary else 1)
PY
}

# kill_run <n> <what> <condition>: starts the migration, waits (bounded)
# for <condition>, kills it with SIGKILL, waits until the server settled and
# keeps what the server had then: kill<n>.stored (oids stored) and
# kill<n>.puts ("oid count").
kill_run() {
  local n=$1 what=$2 condition=$3 rc=0
  RUN_ERR="$E2E_ROOT/run$n.err"
  "$FERRY" migrate "${ARGS[@]}" >"$E2E_ROOT/run$n.out" 2>"$RUN_ERR" &
  RUN_PID=$!
  track_pid "$RUN_PID"
  wait_for 120 "$what" "$condition"
  kill -9 "$RUN_PID"
  { wait "$RUN_PID"; } 2>/dev/null || rc=$?
  untrack_pid "$RUN_PID"
  ((rc == 137)) || { show "stderr" "$RUN_ERR"; fail "kill $n: ferry exited with $rc before SIGKILL reached it"; }
  wait_for 30 "the server to answer the killed run's last requests" sim_settled
  find "$SIM_ROOT" -type f -name '[0-9a-f]*' -printf '%f\n' | sort >"$E2E_ROOT/kill$n.stored"
  sim_puts "$E2E_ROOT/kill$n.puts"
  note "kill $n ($what): $(wc -l <"$E2E_ROOT/kill$n.stored") objects stored"
}

kill_run 1 "the run to name its journal" journal_named
KILL_AT=$((COUNT / 10))
kill_run 2 "10% of the objects at the server" enough_stored
KILL_AT=$((COUNT / 2))
kill_run 3 "50% of the objects at the server" enough_stored
KILL_AT=$((COUNT * 9 / 10))
kill_run 4 "90% of the objects at the server" enough_stored
KILLS=4
pass "ferry migrate was killed with SIGKILL $KILLS times: after naming its journal, at 10%, 50% and 90%"

run_migrate final 180 "${ARGS[@]}"
expect_rc final 0
assert_objects "$SIM_ROOT" "$LIST" exact
pass "after the last run all $COUNT objects are at the server with sha256 == oid, nothing else ($MIG_MS ms)"
sim_puts "$E2E_ROOT/final.puts"

py_check "no object stored at a kill was PUT again; only objects in flight at a kill (<= $TRANSFERS per kill) were PUT once more per such kill" '
import sys
count, transfers, kills, root = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def puts(path):
    return {oid: int(n) for oid, n in (line.split() for line in open(path))}
oids = [line.split()[0] for line in open(sys.argv[5])]
final = puts(root + "/final.puts")
allowed = {oid: 1 for oid in oids}
in_flight_per_kill = []
for k in range(1, kills + 1):
    stored = set(open("%s/kill%d.stored" % (root, k)).read().split())
    at_kill = puts("%s/kill%d.puts" % (root, k))
    # Stored when ferry died: no PUT may follow.
    for oid in stored:
        if final.get(oid, 0) != at_kill.get(oid, 0):
            raise SystemExit("%s was stored at kill %d (%d PUTs) but got %d PUTs in all"
                             % (oid, k, at_kill.get(oid, 0), final.get(oid, 0)))
    # PUT but not stored when ferry died: in flight.
    in_flight = [oid for oid in at_kill if oid not in stored]
    if len(in_flight) > transfers:
        raise SystemExit("%d objects in flight at kill %d, more than --transfers %d: %s"
                         % (len(in_flight), k, transfers, in_flight))
    for oid in in_flight:
        allowed[oid] += 1
    in_flight_per_kill.append(len(in_flight))
unknown = sorted(set(final) - set(allowed))
if unknown:
    raise SystemExit("PUTs of objects that are not in the source: %s" % unknown[:5])
for oid, limit in allowed.items():
    if not 1 <= final.get(oid, 0) <= limit:
        raise SystemExit("%s got %d PUTs, allowed 1 to %d" % (oid, final.get(oid, 0), limit))
again = sum(final.values()) - count
print("%d PUTs for %d objects: %d sent again, each in flight at a kill (in flight per kill: %s)"
      % (sum(final.values()), count, again, ", ".join(map(str, in_flight_per_kill))))
' "$COUNT" "$TRANSFERS" "$KILLS" "$E2E_ROOT" "$LIST"

HELD=$(wc -l <"$E2E_ROOT/kill$KILLS.stored")
assert_report "$E2E_ROOT/report.json" "pending.objects == 0" "failed.objects == 0" "corrupt.objects == 0" \
  "failures.length == 0" "outcome == complete" "present.objects == $HELD" "copied.objects == $((COUNT - HELD))"
py_check "the final report counts all $COUNT objects as copied (now) or present (held by the server when the run began)" '
import json, sys
doc = json.load(open(sys.argv[1]))
total = doc["copied"]["objects"] + doc["present"]["objects"]
size = sum(int(line.split()[1]) for line in open(sys.argv[3]))
if total != int(sys.argv[2]) or doc["copied"]["bytes"] + doc["present"]["bytes"] != size:
    raise SystemExit("copied %s + present %s is not %s objects of %d bytes" % (doc["copied"], doc["present"], sys.argv[2], size))
print("%d copied, %d present (stored by the killed runs)"
      % (doc["copied"]["objects"], doc["present"]["objects"]))
' "$E2E_ROOT/report.json" "$COUNT" "$LIST"
stop_sim
assert_objects "$SIM_ROOT" "$LIST" exact
pass "the stopped server's folder holds the $COUNT objects and no temporary file"
