#!/usr/bin/env bash
# One Retry-After cooldown holds across repositories through the per-user
# daemon (ferry.daemon=true): two repositories whose store is the same
# LFS server (ferry-lfs-sim, `lfs+http://127.0.0.1:PORT/<repo>.git/info/lfs`)
# push at once, each with git-lfs's default 8 agents, all served by one
# daemon. Uploads are slowed to 8 KiB/s (2 s an object) so both pushes are in
# flight when the server answers one verify call with 429 and Retry-After: 3
# (the 10th, when both have uploads running). From the server's own
# request log (the time each request arrived):
#
#   - after that answer, no request of either repository arrives until the
#     Retry-After has passed (50 ms either side for requests already on the
#     wire and the log's clock), although both repositories had requests
#     before the 429 and after the cooldown;
#   - both pushes complete and the server holds every object intact;
#   - while the cooldown holds, `ferry daemon status` shows it on the
#     server's host, with the host's circuit closed and transfers in flight.
#
# Two cooldowns of the daemon hold them: the HTTP engine's for the host
# (verify calls of uploads that end during it) and the shared RATE LIMITER's
# (new transfers). With ferry.daemon=false every agent is a process with
# cooldowns of its own and the check fails; so it does with the engine's
# cooldown taken out (verify calls get through).
#
#   FERRY_LFS_SIM=<ferry-lfs-sim> bash tests/e2e/test_daemon_shared_cooldown.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/daemon_lib.sh"
e2e_init "$@"
sim_init

export FERRY_DAEMON=true
RETRY_AFTER=3
TOLERANCE_MS=50
COUNT=12

cat >"$E2E_ROOT/cooldown.json" <<JSON
{"rules": [
  {"name": "slow uploads keep both pushes in flight", "match": {"endpoint": "upload"},
   "fault": {"bandwidth_bytes_per_s": 8192}},
  {"name": "one 429 with Retry-After", "match": {"endpoint": "verify"},
   "fault": {"status": 429, "retry_after": $RETRY_AFTER},
   "sequence": [false, false, false, false, false, false, false, false, false, true]}
]}
JSON
check_scenario "$E2E_ROOT/cooldown.json"
start_sim "$E2E_ROOT/cooldown.json"

# sim_repo <name> <prefix>: a repository whose store is the sim, at git-lfs's
# default concurrency, with COUNT objects of 16 KiB (2 s each to upload).
sim_repo() {
  local name=$1 prefix=$2 i specs=()
  new_repo "$name"
  install_ferry_url "$E2E_ROOT/$name" "lfs+$(lfs_url "$name")"
  git -C "$E2E_ROOT/$name" config --unset lfs.customtransfer.ferry.concurrent
  for i in $(seq 1 "$COUNT"); do specs+=("$prefix$i.bin=$((16 * 1024 + i))"); done
  add_lfs_files "$E2E_ROOT/$name" "${specs[@]}"
}
sim_repo repo-a a
sim_repo repo-b b

timed_git 120 "$E2E_ROOT/push-a.log" -C "$E2E_ROOT/repo-a" push origin main &
pid_a=$!
timed_git 120 "$E2E_ROOT/push-b.log" -C "$E2E_ROOT/repo-b" push origin main &
pid_b=$!
# status_in_cooldown: the daemon's status shows the sim's host cooling down.
status_in_cooldown() {
  "$FERRY" daemon status --json >"$E2E_ROOT/status.json" 2>/dev/null || return 1
  python3 -c '
import json, sys
doc = json.load(open(sys.argv[1]))
hosts = [h for h in doc.get("hosts", []) if h.get("host") == sys.argv[2]]
sys.exit(0 if hosts and hosts[0].get("cooldown", 0) > 0 else 1)
' "$E2E_ROOT/status.json" "127.0.0.1:$SIM_PORT"
}
wait_for_every 0.05 60 "ferry daemon status to show the cooldown" status_in_cooldown
"$FERRY" daemon status >"$E2E_ROOT/status.txt" || fail "ferry daemon status failed"
py_check "ferry daemon status during the cooldown: the host's cooldown, its closed circuit, transfers in flight" '
import json, sys
doc = json.load(open(sys.argv[1]))
host = [h for h in doc["hosts"] if h["host"] == sys.argv[2]][0]
if not 0 < host["cooldown"] <= float(sys.argv[3]):
    raise SystemExit("cooldown %s s, expected up to %s s" % (host["cooldown"], sys.argv[3]))
if host["circuit"] != "closed":
    raise SystemExit("circuit %r, expected closed" % host["circuit"])
if doc["in_flight"] < 1:
    raise SystemExit("%d transfers in flight" % doc["in_flight"])
print("cooldown %.1f s left, %d in flight" % (host["cooldown"], doc["in_flight"]))
' "$E2E_ROOT/status.json" "127.0.0.1:$SIM_PORT" "$RETRY_AFTER"
grep -q "127.0.0.1:$SIM_PORT: circuit closed.*cooldown [0-9.]* s left" "$E2E_ROOT/status.txt" ||
  { show "ferry daemon status" "$E2E_ROOT/status.txt"; fail "ferry daemon status does not show the host's cooldown"; }
await_both "$pid_a" "$E2E_ROOT/push-a.log" "the push of repo-a" "$pid_b" "$E2E_ROOT/push-b.log" "the push of repo-b"
for name in repo-a repo-b; do
  for f in "$E2E_ROOT/$name"/*.bin; do assert_stored "$SIM_ROOT" "$f"; done
done
assert_root_clean running
pass "both pushes completed: all $((2 * COUNT)) objects intact in the server"

track_pid "$(daemon_pid)"
for name in repo-a repo-b; do
  (($(served_in "$E2E_ROOT/$name") > 0)) || { show "daemon log" "$FERRY_DAEMON_DIR/daemon.log"; fail "the daemon served no agent of $name"; }
  (($(engines_in_agents "$E2E_ROOT/$name") == 0)) || fail "agents of $name ran the engine in their own process"
done
pass "one daemon served the agents of both repositories; none ran an engine itself"

sim_log_this_run "$E2E_ROOT/sim-run.log"
py_check "no request of either repository reached the server during the 429's Retry-After" '
import datetime, re, sys
log, tolerance = sys.argv[1], int(sys.argv[2])
line = re.compile(r"^(\S+) ([A-Z]+) (\S+) -> ([0-9]+) arrived_ms=([0-9]+)(?: retry_after=([0-9]+))?$")
requests = []
for text in open(log, errors="replace"):
    m = line.match(text.rstrip("\n"))
    if not m or m[3] in ("/health", "/stats"):
        continue
    answered = datetime.datetime.strptime(m[1], "%Y-%m-%dT%H:%M:%S.%fZ")
    answered = answered.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000
    requests.append({"answered": round(answered), "method": m[2], "path": m[3], "status": int(m[4]),
                     "arrived": int(m[5]), "retry_after": int(m[6] or 0), "repo": m[3].split("/")[1]})
cooldowns = [r for r in requests if r["status"] == 429 and r["retry_after"] > 0]
if len(cooldowns) != 1:
    raise SystemExit("expected one 429 with Retry-After in the log, found %d" % len(cooldowns))
answer = cooldowns[0]
start, end = answer["answered"], answer["answered"] + 1000 * answer["retry_after"]
def shown(r):
    return "%s %s arrived %+d ms after the 429" % (r["method"], r["path"][:40], r["arrived"] - start)
inside = [r for r in requests if start + tolerance < r["arrived"] < end - tolerance]
if inside:
    counts = ", ".join("%s: %d" % (repo, sum(r["repo"] == repo for r in inside)) for repo in ("repo-a.git", "repo-b.git"))
    raise SystemExit("%d request(s) inside the cooldown of %d ms (%s): %s" % (
        len(inside), end - start, counts, "; ".join(map(shown, sorted(inside, key=lambda r: r["arrived"])[:6]))))
# The check means something only if both pushes were in flight across the cooldown.
held = []
for repo in ("repo-a.git", "repo-b.git"):
    ours = [r for r in requests if r["repo"] == repo]
    before = [r for r in ours if r["arrived"] < start]
    after = sorted((r for r in ours if r["arrived"] >= end - tolerance), key=lambda r: r["arrived"])
    if not before or not after:
        raise SystemExit("%s had %d request(s) before the 429 and %d after its cooldown: its push did not span it"
                         % (repo, len(before), len(after)))
    held.append("%s: %d before, next %s" % (repo, len(before), shown(after[0])))
print("429 on %s %s, Retry-After %d s; %s" % (answer["method"], answer["path"][:30], answer["retry_after"],
                                              "; ".join(held)))
' "$E2E_ROOT/sim-run.log" "$TOLERANCE_MS"
stop_sim
