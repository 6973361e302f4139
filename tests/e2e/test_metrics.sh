#!/usr/bin/env bash
# Prometheus metrics (docs/metrics.md), end to end:
#
#   a. a real Prometheus server on 127.0.0.1 (its own port and TSDB in the
#      sandbox, 1 s scrape interval) scrapes `ferry migrate --metrics
#      127.0.0.1:PORT` while it copies 40 objects folder -> folder (slowed by
#      --tps): the target is up, ferry_transfers_succeeded_total goes above 0
#      and never above 40, ferry_transfers_started_total is at least that.
#      The migration exits 0 and copies every object.
#   b. what the endpoint serves passes `promtool check metrics`, both
#      straight from it (curl -f) and through `ferry metrics --from ADDR`.
#   c. --metrics 127.0.0.1:0 picks a free port and prints it on stderr;
#      --metrics unix:/path serves on a Unix socket, removed at the end.
#   d. a non-loopback --metrics address is refused (exit 2) unless
#      --metrics-allow-remote; `ferry metrics --from` an address nothing
#      serves, and `ferry metrics` without a daemon, exit 1 with the reason.
#   e. `ferry metrics` reads the running daemon's metrics; promtool accepts them.
#
# Skipped (exit 77) when Prometheus (package prometheus: prometheus, promtool)
# is not installed.
#
#   bash tests/e2e/test_metrics.sh <path-to-ferry>
set -euo pipefail
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null ||
  ! command -v curl >/dev/null; then
  echo "test_metrics: SKIPPED: needs prometheus, promtool (package prometheus) and curl"
  exit 77
fi
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/migrate_lib.sh"
e2e_init "$@"
export FERRY_DAEMON_DIR="$E2E_ROOT/daemon"
COUNT=40

# promtool_accepts <name> <command...>: the command's output passes
# `promtool check metrics`; a failing command fails the check too.
promtool_accepts() {
  local name=$1
  shift
  (set -o pipefail && "$@" | tee "$E2E_ROOT/$name.txt" | promtool check metrics) \
    >"$E2E_ROOT/$name.promtool" 2>&1 ||
    { show "$name" "$E2E_ROOT/$name.txt"; show "promtool" "$E2E_ROOT/$name.promtool"; fail "$name: promtool check metrics refused it"; }
  grep -q '^ferry_build_info{version="' "$E2E_ROOT/$name.txt" || fail "$name: no ferry_build_info"
  pass "$name passes promtool check metrics"
}

# start_migration <name> <metrics-address> <args...>: `ferry migrate` in the
# background (RUN_PID), its stderr in $E2E_ROOT/<name>.err; waits until it
# names where it serves metrics and sets METRICS_AT to that address.
start_migration() {
  local name=$1 at=$2
  shift 2
  RUN_ERR="$E2E_ROOT/$name.err"
  RUN_OUT="$E2E_ROOT/$name.out"
  "$FERRY" migrate "$@" --metrics "$at" >"$RUN_OUT" 2>"$RUN_ERR" &
  RUN_PID=$!
  track_pid "$RUN_PID"
  metrics_named() { grep -q '^ferry migrate: metrics at ' "$RUN_ERR" || ! kill -0 "$RUN_PID" 2>/dev/null; }
  wait_for 30 "$name to name its metrics address" metrics_named
  METRICS_AT=$(sed -n 's/^ferry migrate: metrics at \([^ ]*\).*/\1/p' "$RUN_ERR")
  [[ -n $METRICS_AT ]] || { show "$name stderr" "$RUN_ERR"; fail "$name did not print its metrics address"; }
}

# finish_migration <name>: waits for the background run; it must exit 0.
finish_migration() {
  local rc=0
  wait "$RUN_PID" || rc=$?
  untrack_pid "$RUN_PID"
  [[ $rc -eq 0 ]] || { show "$1 stderr" "$RUN_ERR"; fail "$1: ferry migrate exited with $rc"; }
}

# ---- a. a real Prometheus scrapes a running migration ----------------------------
SRC="$E2E_ROOT/src"
LIST="$E2E_ROOT/src.manifest"
make_objects "$SRC" "$LIST" "$COUNT" small
PROM_PORT=$(free_port)
FERRY_PORT=$(free_port)
PROM_DIR="$E2E_ROOT/prometheus"
mkdir -p "$PROM_DIR"
cat >"$PROM_DIR/prometheus.yml" <<EOF
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: ferry
    static_configs: [{targets: ['127.0.0.1:$FERRY_PORT']}]
EOF
promtool check config "$PROM_DIR/prometheus.yml" >"$PROM_DIR/check.out" 2>&1 ||
  { show "promtool check config" "$PROM_DIR/check.out"; fail "the Prometheus config is invalid"; }
prometheus --config.file="$PROM_DIR/prometheus.yml" --storage.tsdb.path="$PROM_DIR/data" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn >"$PROM_DIR/log" 2>&1 &
PROM_PID=$!
track_pid "$PROM_PID"
PROM="http://127.0.0.1:$PROM_PORT"

# prom_value <promql>: the first result's value, or nothing.
prom_value() {
  curl -fsS -G "$PROM/api/v1/query" --data-urlencode "query=$1" 2>/dev/null |
    python3 -c 'import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if r else "")' 2>/dev/null || true
}
prom_ready() { curl -fsS -o /dev/null "$PROM/-/ready" 2>/dev/null; }
# Prometheus hands its targets to the scraper about 5 s after it starts:
# once `up` has a value (0: ferry is not there yet), scrapes are running.
prom_scrapes() { [[ -n $(prom_value 'up{job="ferry"}') ]]; }
wait_for 60 "Prometheus to be ready" prom_ready
wait_for 60 "Prometheus to scrape its target" prom_scrapes
note "Prometheus on 127.0.0.1:$PROM_PORT scrapes 127.0.0.1:$FERRY_PORT every second"

# 5 copies a second: the migration runs for several scrapes.
DST="$E2E_ROOT/dst"
start_migration a "127.0.0.1:$FERRY_PORT" --from "file://$SRC" --to "file://$DST" --tps 5 --transfers 2
[[ $METRICS_AT == "127.0.0.1:$FERRY_PORT" ]] || fail "a: metrics at '$METRICS_AT', not 127.0.0.1:$FERRY_PORT"

# ---- b. promtool accepts what it serves (while the migration runs) ----------------
promtool_accepts b-curl curl -fsS "http://$METRICS_AT/metrics"
promtool_accepts b-ferry "$FERRY" metrics --from "$METRICS_AT"
grep -q '^ferry_transfers_started_total{direction="copy",store="folder"} ' "$E2E_ROOT/b-ferry.txt" ||
  { show "ferry metrics" "$E2E_ROOT/b-ferry.txt"; fail "b: no ferry_transfers_started_total for folder copies"; }
grep -q '^ferry_journal_size_bytes [1-9]' "$E2E_ROOT/b-ferry.txt" || fail "b: no journal size"

succeeded_scraped() {
  local v
  v=$(prom_value 'max_over_time(ferry_transfers_succeeded_total{job="ferry",direction="copy",store="folder"}[10m])')
  [[ -n $v ]] && python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) > 0 else 1)' "$v"
}
wait_for 60 "Prometheus to scrape a succeeded transfer" succeeded_scraped
[[ $(prom_value 'up{job="ferry"}') == 1 ]] || fail "a: the target is not up"
finish_migration a
assert_objects "$DST" "$LIST" exact
SUCCEEDED=$(prom_value 'max_over_time(ferry_transfers_succeeded_total{job="ferry"}[10m])')
STARTED=$(prom_value 'max_over_time(ferry_transfers_started_total{job="ferry"}[10m])')
py_check "a: Prometheus scraped 0 < succeeded ($SUCCEEDED) <= started ($STARTED) <= $COUNT" '
import sys
succeeded, started, count = (float(x) for x in sys.argv[1:4])
sys.exit(0 if 0 < succeeded <= started <= count else 1)' "$SUCCEEDED" "$STARTED" "$COUNT"
kill "$PROM_PID"
wait "$PROM_PID" 2>/dev/null || true
untrack_pid "$PROM_PID"
pass "a: a real Prometheus scraped the migration (succeeded $SUCCEEDED of $COUNT at its last scrape)"

# ---- c. a free port, and a Unix socket ----------------------------------------------
rm -rf "$DST"
start_migration c1 127.0.0.1:0 --from "file://$SRC" --to "file://$DST" --tps 5 --transfers 2
[[ $METRICS_AT =~ ^127\.0\.0\.1:[1-9][0-9]*$ ]] || fail "c1: port 0 gave '$METRICS_AT'"
promtool_accepts c1 "$FERRY" metrics --from "$METRICS_AT"
finish_migration c1
rm -rf "$DST"
SOCKET="$E2E_ROOT/metrics.sock"
start_migration c2 "unix:$SOCKET" --from "file://$SRC" --to "file://$DST" --tps 5 --transfers 2
[[ $METRICS_AT == "unix:$SOCKET" ]] || fail "c2: metrics at '$METRICS_AT'"
[[ $(stat -c %a "$SOCKET") == 600 ]] || fail "c2: the socket is not private"
promtool_accepts c2 "$FERRY" metrics --from "unix:$SOCKET"
finish_migration c2
[[ ! -e $SOCKET ]] || fail "c2: the socket was left behind"
pass "c: port 0 and a Unix socket serve the same metrics"

# ---- d. what is refused ----------------------------------------------------------------
run_migrate d1 60 --from "file://$SRC" --to "file://$E2E_ROOT/d1" --metrics 0.0.0.0:0
expect_rc d1 2
grep -q -- '--metrics-allow-remote' "$MIG_ERR" || { show "d1 stderr" "$MIG_ERR"; fail "d1: the refusal does not name the opt-in"; }
[[ ! -e $E2E_ROOT/d1 ]] || fail "d1: the refused run created its destination"
run_migrate d2 60 --from "file://$SRC" --to "file://$E2E_ROOT/d2" --metrics 0.0.0.0:0 --metrics-allow-remote
expect_rc d2 0
grep -q '^ferry migrate: metrics at 0\.0\.0\.0:[1-9]' "$MIG_ERR" || { show "d2 stderr" "$MIG_ERR"; fail "d2: no metrics address"; }
run_ferry metrics d3 30 --from "127.0.0.1:$(free_port)"
expect_rc d3 1
grep -q 'no metrics at 127.0.0.1:' "$MIG_ERR" || { show "d3 stderr" "$MIG_ERR"; fail "d3: no reason given"; }
[[ ! -s $MIG_OUT ]] || fail "d3: printed something on stdout"
run_ferry metrics d4 30
expect_rc d4 1
grep -q 'no ferry daemon runs' "$MIG_ERR" || { show "d4 stderr" "$MIG_ERR"; fail "d4: no reason given"; }
pass "d: non-loopback addresses need the opt-in; no metrics is an error with its reason"

# ---- e. the daemon's metrics --------------------------------------------------------------
"$FERRY" daemon start >"$E2E_ROOT/daemon-start.out" 2>&1 ||
  { show "daemon start" "$E2E_ROOT/daemon-start.out"; fail "ferry daemon start failed"; }
track_pid "$(cat "$FERRY_DAEMON_DIR/daemon.pid")"
promtool_accepts e "$FERRY" metrics
grep -q '^ferry_daemon_clients 0$' "$E2E_ROOT/e.txt" || { show "metrics" "$E2E_ROOT/e.txt"; fail "e: no client count"; }
grep -q '^ferry_uptime_seconds ' "$E2E_ROOT/e.txt" || fail "e: no uptime"
"$FERRY" daemon stop >/dev/null 2>&1 || fail "ferry daemon stop failed"
pass "e: ferry metrics reads the daemon's"
