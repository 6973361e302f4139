#!/usr/bin/env bash
# One rate budget for a sharded `ferry migrate`, end to end against an LFS
# server (ferry-lfs-sim):
#
#   a. four shards run at once as processes (--shard 1/4 .. 4/4), 1,200
#      small objects from a folder into one server, with --tps-total 200
#      --concurrent-shards 4: each says it takes 50 requests/s; in the
#      server's log (arrived_ms) no 1 s window holds more than 224 requests
#      of any kind (batch, PUT, verify: each HTTP request takes a token; the
#      tolerance: 4 for the one token each shard's bucket may start with,
#      and 10% for arrival times that stray from the moment each request was
#      let go: requests are let go 5 ms apart, but a process or the server
#      held up for a moment on a busy machine sends or stamps the held ones
#      together); every object arrives, each PUT exactly once. The same run
#      with --tps 200 per shard instead puts several hundred requests into
#      some second: the check sees the difference.
#   c. the same four shards with --concurrent-shards 1, wrong on purpose
#      (each would take all 200 a second), and --rate-limiter
#      redis://127.0.0.1:PORT/KEY at a redis-server the test starts: Redis
#      holds the total, and the same check holds.
#   d. --rate-limiter at a port where no Redis listens, --concurrent-shards
#      4: each shard warns once and keeps to its share; the check holds.
#   b. a server answering 10% of PUTs with 429: the shard's rate drops
#      (ferry.log: "asked to slow down", at info) and every object arrives.
#   u. --tps with --tps-total, --concurrent-shards 0 or without a total,
#      --rate-limiter without --tps-total or not a redis:// URL: usage
#      errors (exit 2), nothing copied.
#
#   FERRY_LFS_SIM=<ferry-lfs-sim> bash tests/e2e/test_migrate_rate_budget.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/migrate_lib.sh"
e2e_init "$@"
sim_init
ferry_quick_retries

SRC="$E2E_ROOT/src"
LIST="$E2E_ROOT/src.manifest"
make_objects "$SRC" "$LIST" 1200 small

# busiest_second <sim-log> [<method>]: the most requests (of <method>, or of
# any kind: every line with an arrival time) whose arrival times
# (arrived_ms) fall within one window of 1 s, over the log.
busiest_second() {
  python3 - "$1" "${2:-}" <<'PY'
import re, sys
line = re.compile(r"^\S+ ([A-Z]+) .* arrived_ms=([0-9]+)")
times = sorted(int(m.group(2)) for m in map(line.match, open(sys.argv[1]))
               if m and sys.argv[2] in ("", m.group(1)))
most, first = 0, 0
for last, t in enumerate(times):
    while t - times[first] >= 1000:
        first += 1
    most = max(most, last - first + 1)
print(most)
PY
}

# run_shards <name> <args...>: ferry migrate --shard I/4 for I = 1..4, all
# at once, into the running sim; each must exit 0 within 120 s.
run_shards() {
  local name=$1 i pids=() rc
  shift
  for i in 1 2 3 4; do
    timeout --kill-after=10 120 "$FERRY" migrate --from "file://$SRC" --to "lfs+$(lfs_url budget)" \
      --shard "$i/4" --journal "$E2E_ROOT/$name-journal-$i" --report "$E2E_ROOT/$name-$i.json" "$@" \
      >"$E2E_ROOT/$name-$i.out" 2>"$E2E_ROOT/$name-$i.err" &
    pids+=($!)
    track_pid "${pids[-1]}"
  done
  for i in 1 2 3 4; do
    rc=0
    wait "${pids[i - 1]}" || rc=$?
    untrack_pid "${pids[i - 1]}"
    ((rc == 0)) || { show "shard $i/4 stderr" "$E2E_ROOT/$name-$i.err"; fail "$name: shard $i/4 exited with $rc"; }
  done
}

# ---- a. four shards share --tps-total 200 -----------------------------------------
SIM_ROOT="$E2E_ROOT/sim-a"
start_sim
run_shards a --tps-total 200 --concurrent-shards 4
for i in 1 2 3 4; do
  grep -q "^ferry migrate: rate budget split over 4 shard(s) at once: this shard takes 50 requests/s of --tps-total 200\$" \
    "$E2E_ROOT/a-$i.err" || { show "shard $i/4 stderr" "$E2E_ROOT/a-$i.err"; fail "a: shard $i/4 did not print its share"; }
done
assert_objects "$SIM_ROOT" "$LIST" exact
sim_puts "$E2E_ROOT/a.puts"
awk '{ print $1, 1 }' "$LIST" | sort | cmp -s - "$E2E_ROOT/a.puts" ||
  { show "PUTs per oid" "$E2E_ROOT/a.puts"; fail "a: the four shards did not PUT every object exactly once"; }
sim_log_this_run "$E2E_ROOT/a.log"
A_ALL=$(busiest_second "$E2E_ROOT/a.log")
A_PUTS=$(busiest_second "$E2E_ROOT/a.log" PUT)
# The budget, 200, plus the tolerance stated above.
BUDGET_LIMIT=224
((A_ALL <= BUDGET_LIMIT)) || fail "a: $A_ALL requests arrived within one second, over the budget of 200 (at most $BUDGET_LIMIT allowed)"
((A_ALL >= 150)) || fail "a: at most $A_ALL requests a second: the shards did not use the budget"
stop_sim
pass "a: 4 shards with --tps-total 200 copied all 1200 objects, each once; busiest second: $A_ALL requests ($A_PUTS of them PUTs)"

# The same shards, each with the whole budget: the check above would see it.
SIM_ROOT="$E2E_ROOT/sim-a2"
start_sim
run_shards a2 --tps 200
assert_objects "$SIM_ROOT" "$LIST" exact
sim_log_this_run "$E2E_ROOT/a2.log"
A2_ALL=$(busiest_second "$E2E_ROOT/a2.log")
((A2_ALL > BUDGET_LIMIT)) || fail "a: with --tps 200 per shard the busiest second held only $A2_ALL requests: the check cannot tell"
stop_sim
pass "a: with --tps 200 per shard instead, the busiest second held $A2_ALL requests"

# ---- c. Redis holds the total for uneven shares ----------------------------------
command -v redis-server >/dev/null || fail "redis-server is not installed (Debian package redis-server, see .ci/install-deps)"
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$E2E_ROOT" >"$E2E_ROOT/redis.out" 2>&1 &
REDIS_PID=$!
track_pid "$REDIS_PID"
redis_up() { [[ $(redis-cli -p "$REDIS_PORT" PING 2>/dev/null) == PONG ]]; }
wait_for 10 "redis-server to answer PING" redis_up
SIM_ROOT="$E2E_ROOT/sim-c"
start_sim
run_shards c --tps-total 200 --concurrent-shards 1 --rate-limiter "redis://127.0.0.1:$REDIS_PORT/ferry:budget"
for i in 1 2 3 4; do
  grep -q "^ferry migrate: all shards together keep to --tps-total 200 through Redis at 127.0.0.1:$REDIS_PORT/ferry:budget\$" \
    "$E2E_ROOT/c-$i.err" || { show "shard $i/4 stderr" "$E2E_ROOT/c-$i.err"; fail "c: shard $i/4 did not name the Redis limit"; }
  ! grep -q 'warning' "$E2E_ROOT/c-$i.err" || { show "shard $i/4 stderr" "$E2E_ROOT/c-$i.err"; fail "c: shard $i/4 warned"; }
done
assert_objects "$SIM_ROOT" "$LIST" exact
sim_log_this_run "$E2E_ROOT/c.log"
C_ALL=$(busiest_second "$E2E_ROOT/c.log")
((C_ALL <= BUDGET_LIMIT)) || fail "c: $C_ALL requests arrived within one second, over the budget of 200 (at most $BUDGET_LIMIT allowed)"
((C_ALL >= 150)) || fail "c: at most $C_ALL requests a second: the shards did not use the budget"
[[ -n $(redis-cli -p "$REDIS_PORT" EXISTS ferry:budget) ]] || fail "c: Redis holds no key ferry:budget"
stop_sim
kill -TERM "$REDIS_PID"
wait "$REDIS_PID" || true
untrack_pid "$REDIS_PID"
pass "c: 4 shards each allowed 200/s (--concurrent-shards 1) held to $C_ALL requests in the busiest second by Redis"

# ---- d. Redis unreachable: the static split, with one warning ---------------------
SIM_ROOT="$E2E_ROOT/sim-d"
start_sim
run_shards d --tps-total 200 --concurrent-shards 4 --rate-limiter "redis://127.0.0.1:$REDIS_PORT/ferry:budget"
for i in 1 2 3 4; do
  [[ $(grep -c "warning: the shared rate limit in Redis (127.0.0.1:$REDIS_PORT/ferry:budget) is unreachable: cannot connect to 127.0.0.1:$REDIS_PORT: Connection refused; this process keeps to its own share" "$E2E_ROOT/d-$i.err") == 1 ]] ||
    { show "shard $i/4 stderr" "$E2E_ROOT/d-$i.err"; fail "d: shard $i/4 did not warn exactly once that Redis is unreachable"; }
done
assert_objects "$SIM_ROOT" "$LIST" exact
sim_log_this_run "$E2E_ROOT/d.log"
D_ALL=$(busiest_second "$E2E_ROOT/d.log")
((D_ALL <= BUDGET_LIMIT)) || fail "d: $D_ALL requests arrived within one second, over the budget of 200 (at most $BUDGET_LIMIT allowed)"
stop_sim
pass "d: Redis stopped: each shard warned once and kept to 50/s; busiest second $D_ALL requests, every object arrived"

# ---- b. 429s cut the shard's own rate -----------------------------------------------
B="$E2E_ROOT/b-src"
B_LIST="$E2E_ROOT/b.manifest"
make_objects "$B" "$B_LIST" 200 small
cat >"$E2E_ROOT/throttle.json" <<'JSON'
{"seed": 3, "rules": [{"match": {"endpoint": "upload"}, "fault": {"status": 429}, "probability": 0.1}]}
JSON
check_scenario "$E2E_ROOT/throttle.json"
SIM_ROOT="$E2E_ROOT/sim-b"
start_sim "$E2E_ROOT/throttle.json"
run_migrate b1 120 --from "file://$B" --to "lfs+$(lfs_url throttled)" --tps-total 100 \
  --journal "$E2E_ROOT/b-journal" --report "$E2E_ROOT/b1.json"
expect_rc b1 0
assert_objects "$SIM_ROOT" "$B_LIST" exact
assert_report "$E2E_ROOT/b1.json" "copied.objects == 200" "failed.objects == 0" "outcome == complete"
expect_stats "fault_statuses.429 >= 5"
B_LOG="$E2E_ROOT/b-journal/ferry.log"
grep -q "127.0.0.1:$SIM_PORT asked to slow down (HTTP 429 or 503): rate to it cut to 50 requests/s, back to the full 100 requests/s step by step" "$B_LOG" ||
  { show "ferry.log" "$B_LOG"; fail "b: the first 429 did not halve the rate to 50 requests/s"; }
CUTS=$(grep -c 'asked to slow down' "$B_LOG")
# At most one cut a second, however many 429s came: the log is not per request.
((CUTS <= MIG_MS / 1000 + 1)) || fail "b: $CUTS rate cuts logged in $MIG_MS ms, more than one a second"
! grep -q 'asked to slow down' "$MIG_ERR" || { show "stderr" "$MIG_ERR"; fail "b: the rate cuts went to stderr"; }
stop_sim
pass "b: 429s on 10% of PUTs: $CUTS rate cut(s) logged at info (the first to 50 of 100 requests/s), all 200 objects arrived ($MIG_MS ms)"

# ---- u. usage errors ----------------------------------------------------------------
DU="$E2E_ROOT/u-dst"
expect_usage() {
  local name=$1 message=$2
  shift 2
  run_migrate "$name" 30 --from "file://$B" --to "file://$DU" "$@"
  expect_rc "$name" 2
  grep -qF "ferry migrate: $message" "$MIG_ERR" || { show "stderr" "$MIG_ERR"; fail "$name: no '$message' on stderr"; }
  [[ ! -e $DU ]] || fail "$name: a refused command created $DU"
}
expect_usage u1 "give --tps (this shard's limit) or --tps-total (the whole migration's), not both" \
  --tps 10 --tps-total 200
expect_usage u2 "--concurrent-shards '0' is not a number from 1 to 4096" --tps-total 200 --concurrent-shards 0
expect_usage u3 "--concurrent-shards splits --tps-total and --bwlimit-total; give one of them" \
  --shard 1/2 --concurrent-shards 2
expect_usage u4 "--bwlimit-total 'lots' is not a size per second such as 200MiB" --bwlimit-total lots
expect_usage u5 "give --bwlimit (this shard's limit) or --bwlimit-total (the whole migration's), not both" \
  --bwlimit 1MiB --bwlimit-total 4MiB
expect_usage u6 "--rate-limiter holds --tps-total for all shards; give --tps-total" \
  --tps 10 --rate-limiter redis://127.0.0.1:1/k
expect_usage u7 "--rate-limiter 'redis://127.0.0.1:1' names no key (expected redis://host:port/key)" \
  --tps-total 10 --rate-limiter redis://127.0.0.1:1
pass "u: --tps with --tps-total, --concurrent-shards 0 or without a total, a bad --bwlimit-total or --rate-limiter: exit 2, nothing created"
