#!/usr/bin/env bash
# ferry-sim (simulations/README.md), end to end:
#
#   - every small scenario, simulations/scenarios/sim-*.json, passes with
#     every invariant held;
#   - the same seed twice gives the same result.json apart from "timings";
#     another seed gives another kill schedule;
#   - the harness catches damage done behind Ferry's back through its
#     --after-run hook: a destination object deleted, a byte flipped in
#     another, a partial file left under an object's final name; each run
#     exits 1 naming the right invariant with the oid in its evidence; and a
#     request sent to ferry-lfs-sim during a Retry-After cooldown fails the
#     run naming no_request_during_cooldown with that request;
#   - ferry-lfs-sim injected every fault kind the small scenarios ask for
#     (status, Retry-After, reset, truncation, bit flips, stalls, expired
#     actions), from its /stats;
#   - network faults (sim-push-network-faults.json): the transfers go through
#     the fault proxy, its fault windows are in events.jsonl, and the same
#     seed gives the same result.json apart from "timings";
#   - disk faults (sim-migrate-disk-full.json, as root only: it mounts a
#     tmpfs): the runs before the disk grows stop with no space, the one
#     after finishes, and the tmpfs is unmounted at the end;
#   - every run directory gets a report.html (with gnuplot installed), and
#     `ferry-sim report DIR` writes it again (exit 2 without result.json);
#   - Proton Drive through ferry-bridge-sim (sim-push-bridge-faults.json):
#     the bridge's faults fired (a hung bridge was killed at Ferry's time
#     limit and the upload tried again), the uploads were counted from its
#     log, the objects are checked in its Drive folder (an object deleted
#     there is named missing); a CAPTCHA fails the push honestly, asking for
#     a login, after one upload;
#   - S3 on a private radosgw (sim-migrate-radosgw-kills.json, on free
#     loopback ports; a radosgw that cannot start fails the test with the
#     reason): every object was PUT, the harness read each back through its
#     own S3 client, and radosgw is stopped at the end;
#   - a scenario with a bad field, or bad rules for ferry-lfs-sim or
#     ferry-bridge-sim, exits 2 naming the field and creates no run directory.
#
#   FERRY_SIM=<ferry-sim> FERRY_LFS_SIM=<ferry-lfs-sim> FERRY_BRIDGE_SIM=<ferry-bridge-sim> \
#     bash tests/e2e/test_sim_harness.sh <path-to-ferry>
# shellcheck disable=SC2016 # the hooks' text expands in ferry-sim's shell, not here
set -euo pipefail
FERRY_SIM_BIN=${FERRY_SIM:-}
BRIDGE_SIM_BIN=${FERRY_BRIDGE_SIM:-}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"
sim_init
[[ -n $FERRY_SIM_BIN && -x $FERRY_SIM_BIN ]] || fail "set FERRY_SIM to the ferry-sim binary (got '$FERRY_SIM_BIN')"
[[ -n $BRIDGE_SIM_BIN && -x $BRIDGE_SIM_BIN ]] || fail "set FERRY_BRIDGE_SIM to the ferry-bridge-sim binary (got '$BRIDGE_SIM_BIN')"
KILLS="$SCENARIOS/sim-migrate-kills.json"

# sim <name> <expected-exit> <ferry-sim run args...>: runs ferry-sim, output
# in $E2E_ROOT/<name>.log, run directory $E2E_ROOT/<name>.
sim() {
  local name=$1 want=$2 rc=0
  shift 2
  timeout --kill-after=10 300 "$FERRY_SIM_BIN" run --ferry "$FERRY" --lfs-sim "$SIM" \
    --bridge-sim "$BRIDGE_SIM_BIN" --out "$E2E_ROOT/$name" "$@" >"$E2E_ROOT/$name.log" 2>&1 || rc=$?
  [[ $rc -eq $want ]] || { show "ferry-sim output" "$E2E_ROOT/$name.log"; fail "$name: ferry-sim exited $rc, expected $want"; }
}

# invariants <name> <check>...: each check is "<invariant> passed|failed
# [text]"; a failed one must have <text> in its evidence. Without checks:
# every invariant passed.
invariants() {
  local name=$1
  shift
  py_check "$name: $(if (($#)); then echo "$*"; else echo "every invariant held"; fi)" '
import json, sys
doc = json.load(open(sys.argv[1]))
got = {i["name"]: i for i in doc["invariants"]}
checks = sys.argv[2:]
if not checks:
    bad = [n for n, i in got.items() if not i["passed"]]
    if bad or doc["verdict"] != "pass":
        raise SystemExit("verdict %s, failed: %s" % (doc["verdict"], {n: got[n]["evidence"] for n in bad}))
    print(", ".join(sorted(got)))
for check in checks:
    parts = check.split(" ", 2)
    name, state = parts[0], parts[1]
    if name not in got:
        raise SystemExit("no invariant %s in %s" % (name, sorted(got)))
    inv = got[name]
    if inv["passed"] != (state == "passed"):
        raise SystemExit("%s is %s: %s" % (name, "passed" if inv["passed"] else "failed", inv["evidence"]))
    if len(parts) > 2 and not any(parts[2] in line for line in inv["evidence"]):
        raise SystemExit("%s evidence lacks %r: %s" % (name, parts[2], inv["evidence"]))
    if state == "failed" and doc["verdict"] != "fail":
        raise SystemExit("verdict is %s" % doc["verdict"])
' "$E2E_ROOT/$name/result.json" "$@"
}

DISK=sim-migrate-disk-full
RAN=()
for scenario in "$SCENARIOS"/sim-*.json; do
  name=$(basename "$scenario" .json)
  if [[ $name == "$DISK" && $(id -u) -ne 0 ]]; then
    note "not root: $name (it mounts a tmpfs) is left out"
    continue
  fi
  sim "$name" 0 "$scenario" --seed 1
  RAN+=("$name")
  invariants "$name"
  # A full disk adds freed_after_run runs to 1 + kills.
  py_check "$name: every planned kill happened" '
import json, sys
doc = json.load(open(sys.argv[1]))
c, disk = doc["counts"], doc["scenario"]["faults"]["disk"]
if c["kills"] != c["kills_planned"] or c["runs"] != c["kills"] + 1 + (disk["freed_after_run"] if disk else 0):
    raise SystemExit(str(c))
print("%d kills, %d runs" % (c["kills"], c["runs"]))' "$E2E_ROOT/$name/result.json"
  py_check "$name: Ferry's own attempt events are in events.jsonl" '
import json, sys
doc = json.load(open(sys.argv[2]))
events = [json.loads(line) for line in open(sys.argv[1])]
done = [e for e in events if e["ev"] == "done"]
if not done or not any(e["ev"] == "start" for e in events):
    raise SystemExit("no start or done events of Ferry")
for e in done:
    if not all(k in e for k in ("oid", "size", "cid", "attempt", "bytes", "ms", "dir")):
        raise SystemExit("a done event lacks a field: %s" % e)
if len({e["oid"] for e in done}) > doc["counts"]["objects"]:
    raise SystemExit("done events of %d objects, the workload has %d" % (len({e["oid"] for e in done}), doc["counts"]["objects"]))
print("%d done events" % len(done))' "$E2E_ROOT/$name/events.jsonl" "$E2E_ROOT/$name/result.json"
done

if [[ -e $E2E_ROOT/$DISK/result.json ]]; then
  py_check "$DISK: the runs stopped with no space until the disk grew, then one finished" '
import json, os, sys
run_dir = sys.argv[1]
doc = json.load(open(os.path.join(run_dir, "result.json")))
freed = doc["scenario"]["faults"]["disk"]["freed_after_run"]
rcs = [r["rc"] for r in doc["timings"]["runs"]]
if rcs != [1] * freed + [0]:
    raise SystemExit("exit codes %s" % rcs)
for k in range(1, freed + 1):
    if "no_space" not in open(os.path.join(run_dir, "runs", "run%d.err" % k)).read():
        raise SystemExit("run %d does not say no_space" % k)
events = [json.loads(line) for line in open(os.path.join(run_dir, "events.jsonl"))]
disk = [e["ev"] for e in events if e.get("kind") == "disk_full"]
if disk != ["fault_start", "fault_end"]:
    raise SystemExit("disk_full events: %s" % disk)
print("exit codes %s" % rcs)' "$E2E_ROOT/$DISK"
  ! grep -q " $E2E_ROOT/$DISK/" /proc/mounts || fail "$DISK: the tmpfs is still mounted"
  pass "$DISK: the tmpfs is unmounted at the end"
fi

# fired <name> <kind>...: ferry-lfs-sim injected each fault kind (its /stats
# "faults") in the run <name>.
fired() {
  local name=$1
  shift
  py_check "$name: ferry-lfs-sim injected $*" '
import json, sys
faults = json.load(open(sys.argv[1]))["faults"]
missing = [kind for kind in sys.argv[2:] if not faults.get(kind)]
if missing:
    raise SystemExit("no %s fault: %s" % (", ".join(missing), faults))
print(faults)' "$E2E_ROOT/$name/lfs-sim-stats.json" "$@"
}
fired sim-push-lfs-faults status retry_after stall_ms expired_actions
fired sim-pull-mixed-sizes status reset_after_bytes truncate_at stall_ms corrupt_byte_at expired_actions

NETWORK=sim-push-network-faults
py_check "$NETWORK: the transfers went through the fault proxy, its windows are in events.jsonl" '
import json, sys
doc = json.load(open(sys.argv[1]))
net = doc["timings"]["network"]
if net["bytes_to_target"] < doc["counts"]["bytes"]:
    raise SystemExit("the proxy carried %d bytes to the peer, the objects have %d" % (net["bytes_to_target"], doc["counts"]["bytes"]))
events = [json.loads(line) for line in open(sys.argv[2])]
starts = {e["kind"]: e["t"] for e in events if e["ev"] == "fault_start"}
ends = {e["kind"]: e["t"] for e in events if e["ev"] == "fault_end"}
for kind in ("latency", "bandwidth", "reset", "blackhole"):
    if kind not in starts or kind not in ends:
        raise SystemExit("no fault_start/fault_end of %s: %s" % (kind, sorted(starts)))
window = doc["schedule"]["blackholes"][0]
took = ends["blackhole"] - starts["blackhole"]
if abs(took - (window["end_ms"] - window["start_ms"])) > 200:
    raise SystemExit("the blackhole lasted %d ms, scheduled %s" % (took, window))
print("%d bytes to the peer over %d connections, blackhole of %d ms" % (net["bytes_to_target"], net["connections"], took))
' "$E2E_ROOT/$NETWORK/result.json" "$E2E_ROOT/$NETWORK/events.jsonl"
sim network-again 0 "$SCENARIOS/$NETWORK.json" --seed 1
py_check "$NETWORK: the same seed gives the same result.json apart from timings" '
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for doc in (a, b):
    doc.pop("timings")
if a != b:
    raise SystemExit("%s\n!=\n%s" % (json.dumps(a, sort_keys=True), json.dumps(b, sort_keys=True)))
' "$E2E_ROOT/$NETWORK/result.json" "$E2E_ROOT/network-again/result.json"

BRIDGE=sim-push-bridge-faults
py_check "$BRIDGE: the bridge's faults fired (a hang too) and its uploads were counted" '
import collections, json, sys
doc = json.load(open(sys.argv[1]))
events = [json.loads(line) for line in open(sys.argv[2])]
fired = collections.Counter(e["fault"] for e in events if e["event"] == "end" and e["fault"])
for kind in ("bad_gateway", "server_error", "crash", "rate_limited", "noise"):
    if not fired[kind]:
        raise SystemExit("no %s fault fired: %s" % (kind, dict(fired)))
names = [i["name"] for i in doc["invariants"]]
if "sent_at_most_once_plus_kills" not in names:
    raise SystemExit("uploads not counted: %s" % names)
# The hung bridge writes no end line: Ferry killed it at its time limit
# (ferry.proton.timeout 3s in the sandbox) and tried again.
ferry_events = [json.loads(line) for line in open(sys.argv[3])]
hung = [e for e in ferry_events if e["ev"] == "retry" and e.get("ms", 0) >= 3000]
if not hung:
    raise SystemExit("no upload retried after the time limit of a hung bridge")
print(dict(fired), "hang: retried after %d ms" % hung[0]["ms"])
' "$E2E_ROOT/$BRIDGE/result.json" "$E2E_ROOT/$BRIDGE/bridge-sim.log" "$E2E_ROOT/$BRIDGE/events.jsonl"

RGW=sim-migrate-radosgw-kills
py_check "$RGW: every object was PUT to radosgw and read back by the harness's S3 client" '
import json, re, sys
doc = json.load(open(sys.argv[1]))
log = open(sys.argv[2]).read()
put = set(re.findall(r"\"PUT /ferry-sim/sim/../../([0-9a-f]{64}) HTTP", log))
got = set(re.findall(r"\"GET /ferry-sim/sim/../../([0-9a-f]{64}) HTTP/1.1\" 200 .*Boto3", log))
n = doc["counts"]["objects"]
if len(put) != n or got != put:
    raise SystemExit("%d objects, %d PUT, %d read back" % (n, len(put), len(got)))
print("%d objects PUT and read back" % n)
' "$E2E_ROOT/$RGW/result.json" "$E2E_ROOT/$RGW/radosgw.log"
[[ ! -e $E2E_ROOT/$RGW/work/radosgw ]] || fail "$RGW: radosgw's folder is still there (not stopped)"
pass "$RGW: radosgw was stopped at the end"

if command -v gnuplot >/dev/null; then
  for name in "${RAN[@]}"; do
    grep -q '<svg' "$E2E_ROOT/$name/report.html" || fail "$name: no report.html with plots"
  done
  rm "$E2E_ROOT/$NETWORK/report.html"
  rc=0
  "$FERRY_SIM_BIN" report "$E2E_ROOT/$NETWORK" >"$E2E_ROOT/report.log" 2>&1 || rc=$?
  [[ $rc -eq 0 ]] || { show "ferry-sim report" "$E2E_ROOT/report.log"; fail "ferry-sim report exited $rc"; }
  grep -q '<svg' "$E2E_ROOT/$NETWORK/report.html" || fail "ferry-sim report wrote no report.html"
  pass "every run directory has a report.html; ferry-sim report writes it again"
else
  grep -q 'report.html not written: .*gnuplot' "$E2E_ROOT/$NETWORK.log" ||
    { show "ferry-sim output" "$E2E_ROOT/$NETWORK.log"; fail "without gnuplot, ferry-sim does not say why there is no report"; }
  note "gnuplot is not installed: no report.html (and ferry-sim says so)"
fi
mkdir -p "$E2E_ROOT/not-a-run"
rc=0
"$FERRY_SIM_BIN" report "$E2E_ROOT/not-a-run" >"$E2E_ROOT/not-a-run.log" 2>&1 || rc=$?
[[ $rc -eq 2 ]] || fail "ferry-sim report of a directory without result.json exited $rc, expected 2"
grep -q 'result.json' "$E2E_ROOT/not-a-run.log" || fail "ferry-sim report does not name result.json"
pass "ferry-sim report of a directory without result.json exits 2 naming it"

sim again 0 "$KILLS" --seed 1
py_check "the same seed gives the same result.json apart from timings" '
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for doc in (a, b):
    doc.pop("timings")
if a != b:
    raise SystemExit("%s\n!=\n%s" % (json.dumps(a, sort_keys=True), json.dumps(b, sort_keys=True)))
' "$E2E_ROOT/sim-migrate-kills/result.json" "$E2E_ROOT/again/result.json"
sim other-seed 0 "$KILLS" --seed 2
py_check "another seed gives another kill schedule" '
import json, sys
a, b = (json.load(open(p))["schedule"] for p in sys.argv[1:3])
if a == b:
    raise SystemExit("both seeds: %s" % a)
' "$E2E_ROOT/sim-migrate-kills/result.json" "$E2E_ROOT/other-seed/result.json"

# hook <name> <action>: an --after-run command that, after the last run,
# picks the first object (by name) at the destination as $f, writes its oid
# to $E2E_ROOT/<name>.oid and runs <action> on it.
hook() {
  printf '%s\n' '[ "$FERRY_SIM_LAST" = 1 ] || exit 0' \
    'f=$(find "$FERRY_SIM_DESTINATION" -type f -name "[0-9a-f]*" | sort | head -n 1)' \
    '[ -n "$f" ] || exit 1' \
    "basename \"\$f\" >'$E2E_ROOT/$1.oid'" \
    "$2"
}
flip='python3 -c "import sys; f = open(sys.argv[1], \"r+b\"); b = f.read(1); f.seek(0); f.write(bytes([b[0] ^ 0xff]))" "$f"'
truncate_half='truncate -s $(($(stat -c %s "$f") / 2)) "$f"'

sim deleted 1 "$KILLS" --after-run "$(hook deleted 'rm "$f"')"
invariants deleted "all_objects_intact failed $(cat "$E2E_ROOT/deleted.oid"): missing at the destination" \
  "honest_exit_codes passed" "no_partial_visible passed"

sim flipped 1 "$KILLS" --after-run "$(hook flipped "$flip")"
invariants flipped "all_objects_intact failed $(cat "$E2E_ROOT/flipped.oid"): content hashes to" \
  "honest_exit_codes passed"

sim partial 1 "$KILLS" --after-run "$(hook partial "$truncate_half")"
invariants partial "no_partial_visible failed $(cat "$E2E_ROOT/partial.oid"): " \
  "all_objects_intact failed $(cat "$E2E_ROOT/partial.oid"): has"

sim bridge-deleted 1 "$SCENARIOS/$BRIDGE.json" --after-run "$(hook bridge-deleted 'rm "$f"')"
invariants bridge-deleted "all_objects_intact failed $(cat "$E2E_ROOT/bridge-deleted.oid"): missing at the destination" \
  "honest_exit_codes passed"

# A CAPTCHA makes Ferry stop and ask for a login: the push fails, which is
# honest, the objects are missing, and no further upload was tried.
cat >"$E2E_ROOT/captcha.json" <<'JSON'
{"workload": {"objects": 5, "sizes": {"fixed": 1000}, "mode": "push"},
 "peer": {"kind": "bridge-sim", "rules": [{"command": "upload", "times": 1, "fault": "captcha"}]}}
JSON
sim captcha 1 "$E2E_ROOT/captcha.json"
invariants captcha "all_objects_intact failed : missing at the destination" "honest_exit_codes passed" \
  "sent_at_most_once_plus_kills passed"
grep -q 'run: proton-drive login' "$E2E_ROOT/captcha/runs/run1.err" ||
  { show "run 1's stderr" "$E2E_ROOT/captcha/runs/run1.err"; fail "captcha: the push does not ask for proton-drive login"; }
uploads=$(grep '"command":"upload"' "$E2E_ROOT/captcha/bridge-sim.log" | grep -c '"event":"start"' || true)
[[ $uploads -eq 1 ]] || fail "captcha: $uploads uploads tried, expected only the one answered with the CAPTCHA"
pass "captcha: the push fails asking for a login, after one upload"

# A request behind Ferry's back during a cooldown: after the migration (which
# only uploads), the hook asks for a download batch, which the scenario
# answers 429 with Retry-After: 5, and sends a GET 0.2 s later (past the 50 ms
# allowed for requests already on the wire, well inside the cooldown).
cat >"$E2E_ROOT/cooldown.json" <<'JSON'
{"workload": {"objects": 5, "sizes": {"fixed": 1000}, "mode": "migrate"},
 "peer": {"kind": "lfs-sim", "rules": [
   {"match": {"endpoint": "batch", "operation": "download"}, "fault": {"status": 429, "retry_after": "5"}}]}}
JSON
tamper='[ "$FERRY_SIM_LAST" = 1 ] || exit 0
batch="$FERRY_SIM_LFS_URL/objects/batch"
curl -s -o /dev/null -H "Content-Type: application/vnd.git-lfs+json" \
  -d "{\"operation\": \"download\", \"objects\": []}" "$batch"
sleep 0.2
curl -s -o /dev/null "$batch"'
sim cooldown 1 "$E2E_ROOT/cooldown.json" --after-run "$tamper"
invariants cooldown "no_request_during_cooldown failed GET /sim.git/info/lfs/objects/batch arrived at" \
  "all_objects_intact passed" "honest_exit_codes passed"
py_check "cooldown: only the hook's GET arrived during the cooldown" '
import json, sys
got = {i["name"]: i for i in json.load(open(sys.argv[1]))["invariants"]}
evidence = got["no_request_during_cooldown"]["evidence"]
if len(evidence) != 1 or "answered 429 with Retry-After: 5" not in evidence[0]:
    raise SystemExit("evidence: %s" % evidence)
' "$E2E_ROOT/cooldown/result.json"

cat >"$E2E_ROOT/bad.json" <<'JSON'
{"workload": {"objects": 10, "sizes": {"uniform": [100, 10]}}}
JSON
sim bad 2 "$E2E_ROOT/bad.json"
[[ ! -e $E2E_ROOT/bad ]] || fail "a rejected scenario left a run directory behind"
grep -q 'workload.sizes.uniform\[1\]' "$E2E_ROOT/bad.log" || { show "ferry-sim output" "$E2E_ROOT/bad.log"; fail "the error does not name workload.sizes.uniform[1]"; }
pass "a bad scenario exits 2 naming the field"

cat >"$E2E_ROOT/bad-rules.json" <<'JSON'
{"workload": {"objects": 10, "sizes": {"fixed": 100}},
 "peer": {"kind": "lfs-sim", "rules": [{"fault": {"statuss": 500}}]}}
JSON
sim bad-rules 2 "$E2E_ROOT/bad-rules.json"
grep -q 'peer.rules\[0\].fault.statuss: unknown key' "$E2E_ROOT/bad-rules.log" ||
  { show "ferry-sim output" "$E2E_ROOT/bad-rules.log"; fail "the error does not name peer.rules[0].fault.statuss"; }
[[ ! -e $E2E_ROOT/bad-rules ]] || fail "a rejected scenario left a run directory behind"
pass "bad peer rules exit 2 naming the field, before anything is created"

cat >"$E2E_ROOT/bad-bridge-rules.json" <<'JSON'
{"workload": {"objects": 10, "sizes": {"fixed": 100}, "mode": "push"},
 "peer": {"kind": "bridge-sim", "rules": [{"command": "upload", "fault": "melt"}]}}
JSON
sim bad-bridge-rules 2 "$E2E_ROOT/bad-bridge-rules.json"
grep -q 'peer.rules\[0\].fault: unknown fault kind: melt' "$E2E_ROOT/bad-bridge-rules.log" ||
  { show "ferry-sim output" "$E2E_ROOT/bad-bridge-rules.log"; fail "the error does not name peer.rules[0].fault"; }
[[ ! -e $E2E_ROOT/bad-bridge-rules ]] || fail "a rejected scenario left a run directory behind"
pass "bad bridge-sim rules exit 2 naming the field, before anything is created"

cat >"$E2E_ROOT/bad-network.json" <<'JSON'
{"workload": {"objects": 10, "sizes": {"fixed": 100}, "mode": "push"},
 "peer": {"kind": "lfs-sim"}, "faults": {"network": {"latency_ms": 5, "jitter_ms": 9}}}
JSON
sim bad-network 2 "$E2E_ROOT/bad-network.json"
grep -q 'faults.network.jitter_ms: must not exceed latency_ms' "$E2E_ROOT/bad-network.log" ||
  { show "ferry-sim output" "$E2E_ROOT/bad-network.log"; fail "the error does not name faults.network.jitter_ms"; }
[[ ! -e $E2E_ROOT/bad-network ]] || fail "a rejected scenario left a run directory behind"
pass "bad network faults exit 2 naming the field, before anything is created"
