#!/usr/bin/env bash
# A throw-away single-node Ceph cluster with its S3 gateway (radosgw) on
# loopback, for the tests: one monitor, one memstore OSD (data in RAM, gone on
# stop) and radosgw with the beast frontend.
#
#   bash tests/s3/radosgw.sh start DIR RGW_PORT MON_PORT
#   bash tests/s3/radosgw.sh stop DIR
#
# start builds a fresh cluster in DIR (stopping daemons a crashed earlier run
# left there), waits until a signed S3 request with the test keys succeeds,
# and writes DIR/env, shell lines to source:
#   FERRY_S3_ENDPOINT    http://127.0.0.1:RGW_PORT (path-style, region us-east-1)
#   FERRY_S3_ACCESS_KEY  FERRY_S3_SECRET_KEY: fixed test-only keys
#   FERRY_RADOSGW_LOG    the request log: one line containing "beast:" per request,
#                        with method, path, query and status
#   FERRY_RADOSGW_CONF   the cluster's ceph.conf, for radosgw-admin -c
# stop stops the daemons by their pid files (TERM, then KILL) and removes DIR.
#
# Environment: FERRY_RADOSGW_ACCESS_KEY and FERRY_RADOSGW_SECRET_KEY override
# the keys; FERRY_RADOSGW_START_TIMEOUT (seconds, default 180) bounds start,
# FERRY_RADOSGW_MEMSTORE_BYTES (default 3 GiB) caps the OSD's RAM store.
# Needs: radosgw ceph-mon ceph-osd uuid-runtime curl python3 (.ci/install-deps).
#
# The OSD keeps every object in RAM: once the tests have stored about as much
# as the memstore holds, radosgw answers writes with 408 after a minute. Two
# starts on the same DIR at once are not supported: the second stops the first.
set -euo pipefail

readonly ACCESS_KEY=${FERRY_RADOSGW_ACCESS_KEY:-FERRYTESTKEY}
readonly SECRET_KEY=${FERRY_RADOSGW_SECRET_KEY:-ferry-test-secret-loopback-only}
readonly START_TIMEOUT=${FERRY_RADOSGW_START_TIMEOUT:-180}
readonly MEMSTORE_BYTES=${FERRY_RADOSGW_MEMSTORE_BYTES:-$((3 * 1024 * 1024 * 1024))}
# A daemon gets this long to exit after SIGTERM before it is killed.
readonly TERM_GRACE=15
# Marks a directory this script made; stop never touches one without it.
readonly MARKER=.ferry-radosgw
# In the order they stop.
readonly DAEMONS=(client.rgw.a osd.0 mon.a)

PROG=radosgw.sh
STARTED_NS=$(date +%s%N)

say() { printf '%s: %s\n' "$PROG" "$*"; }

elapsed() { echo "$((($(date +%s%N) - STARTED_NS) / 1000000)) ms"; }

usage() {
  echo "usage: bash $0 start DIR RGW_PORT MON_PORT | stop DIR" >&2
  exit 2
}

# ---- daemons -------------------------------------------------------------------

# The pids of the daemons recorded in DIR/run whose command line names this
# DIR's ceph.conf (so a pid reused by an unrelated process is left alone).
recorded_pids() {
  local dir=$1 name pid
  for name in "${DAEMONS[@]}"; do
    [[ -f $dir/run/$name.pid ]] || continue
    pid=$(<"$dir/run/$name.pid")
    [[ $pid =~ ^[0-9]+$ ]] || continue
    if tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "-c $dir/ceph.conf "; then
      echo "$pid"
    fi
  done
}

# True while the process runs. A zombie counts as gone: the daemons were
# reparented to init, which may reap them late.
alive() {
  local stat
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

# wait_gone SECONDS PID: polls until the process has exited; false on timeout.
wait_gone() {
  local deadline=$(($(date +%s) + $1))
  while alive "$2"; do
    (($(date +%s) < deadline)) || return 1
    sleep 0.05
  done
}

# Stops the daemons recorded in DIR one by one, radosgw first and the monitor
# last (a daemon whose monitor is gone waits minutes for it): SIGTERM, then
# SIGKILL when it still runs after TERM_GRACE seconds.
stop_daemons() {
  local dir=$1 pid
  for pid in $(recorded_pids "$dir"); do
    say "stopping $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | cut -d' ' -f1) (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || continue
    wait_gone "$TERM_GRACE" "$pid" && continue
    say "daemon $pid still runs ${TERM_GRACE}s after SIGTERM, killing it"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone 10 "$pid" || { say "daemon $pid survived SIGKILL" >&2; return 1; }
  done
}

# Refuses any DIR this script did not make, so a typo cannot stop someone
# else's cluster or remove an unrelated directory.
check_ours() {
  local dir=$1
  [[ -e $dir/$MARKER ]] && return 0
  if [[ -d $dir && -n $(ls -A "$dir") ]]; then
    say "$dir exists and was not made by $PROG (no $MARKER in it); refusing to touch it" >&2
    exit 1
  fi
  [[ ! -e $dir || -d $dir ]] || { say "$dir is not a directory" >&2; exit 1; }
}

# ---- start -----------------------------------------------------------------------

# Prints the last lines of every log in DIR/log, to explain a failed start.
show_logs() {
  local file
  for file in "$RUN_DIR"/log/*; do
    [[ -s $file ]] || continue
    printf '%s: ---- last lines of %s ----\n' "$PROG" "$file" >&2
    tail -n 25 "$file" | sed -e 's/^/    /' >&2
  done
}

# die MESSAGE: explains a failed start, stops what it started, exits 1. DIR
# stays (with its logs) until the next start or stop.
die() {
  say "FAILED after $(elapsed): $*" >&2
  show_logs
  stop_daemons "$RUN_DIR" >&2 || true
  exit 1
}

# Seconds left until the start deadline (at least 1, so a last try is bounded).
remaining() {
  local left=$((DEADLINE - $(date +%s)))
  echo $((left > 0 ? left : 1))
}

# True when nothing listens on 127.0.0.1:PORT (bound with SO_REUSEADDR, as the
# daemons bind, so connections in TIME_WAIT do not count).
port_free() {
  python3 - "$1" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
PY
}

# Runs a Ceph command-line tool on this cluster, bounded by the deadline,
# with its output in DIR/log/<label>.out.
ceph_tool() {
  local label=$1
  shift
  timeout "$(remaining)" "$@" -c "$RUN_DIR/ceph.conf" >"$RUN_DIR/log/$label.out" 2>&1 </dev/null
}

# Starts a daemon that detaches itself. Its standard streams go to a file and
# every other inherited descriptor is closed: a daemon holding the caller's
# pipe (ctest's, a `| tail`) would keep the caller waiting until it exits.
launch() {
  local label=$1
  shift
  (
    for fd in "/proc/$BASHPID"/fd/*; do
      fd=${fd##*/}
      ((fd > 2)) && eval "exec $fd>&-"
    done
    # Bounded too: a daemon's launcher waits until the daemon is ready.
    exec timeout "$(remaining)" "$@" -c "$RUN_DIR/ceph.conf"
  ) >"$RUN_DIR/log/$label.stdout" 2>&1 </dev/null
}

# wait_for WHAT COMMAND...: polls COMMAND until it succeeds or the deadline
# passes (then the start fails naming WHAT, and LAST_ANSWER when COMMAND set
# it). Fails at once when a daemon that has written its pid file has died.
wait_for() {
  local what=$1 name pid
  shift
  LAST_ANSWER=""
  until "$@"; do
    for name in "${DAEMONS[@]}"; do
      [[ -f $RUN_DIR/run/$name.pid ]] || continue
      pid=$(<"$RUN_DIR/run/$name.pid")
      alive "$pid" || die "$name (pid $pid) exited while waiting for $what"
    done
    (($(date +%s) < DEADLINE)) || die "timed out after ${START_TIMEOUT}s waiting for $what${LAST_ANSWER:+ (last answer: $LAST_ANSWER)}"
    sleep 0.2
  done
}

has_pid_file() { [[ -s $RUN_DIR/run/$1.pid ]]; }

osd_up() {
  # Bounded per try, so that wait_for soon notices a monitor that died.
  ceph_tool osd-stat ceph --connect-timeout 5 osd stat &&
    grep -q ' 1 up' "$RUN_DIR/log/osd-stat.out"
}

# True once radosgw answers a request signed with the test keys with 200
# (ListBuckets). The keys reach curl on stdin, never on its command line.
# curl does not send the payload hash S3 requires; it signs the one given.
s3_ready() {
  local code empty_sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
  code=$(printf 'user = "%s:%s"\n' "$ACCESS_KEY" "$SECRET_KEY" |
    curl -K - -s -o /dev/null -w '%{http_code}' --noproxy '*' --max-time 5 \
      --aws-sigv4 "aws:amz:us-east-1:s3" -H "x-amz-content-sha256: $empty_sha256" \
      "$ENDPOINT/" 2>/dev/null) || true
  [[ $code == 000 ]] || LAST_ANSWER="HTTP $code"
  [[ $code == 200 ]]
}

write_conf() {
  local fsid=$1 d=$RUN_DIR
  cat >"$d/ceph.conf" <<CONF
# Written by $PROG: a throw-away single-node cluster for the tests.
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$MON_PORT
mon initial members = a
# v1 only: the monmap carries an explicit v1 address (see start).
ms bind msgr2 = false
public addr = 127.0.0.1
cluster addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
# radosgw creates its pools one by one at start; with the default 1 s
# between monitor proposals that alone takes about 10 s.
paxos propose interval = 0.1
osd crush chooseleaf type = 0
# start places osd.0 in the CRUSH map itself: when the OSD does it while it
# boots, the monitor can refuse its command ("wrong fsid") and the OSD exits.
osd crush update on start = false
osd class update on start = false
run dir = $d/run
log file = $d/log/\$name.log
pid file = $d/run/\$name.pid
crash dir = $d/crash
# No admin sockets: nothing here uses them, and a socket path longer than
# 107 bytes (a deep build directory) cannot be bound.
admin socket =
# Nothing is written outside DIR.
mon cluster log to file = false
osd objectstore = memstore
memstore device bytes = $MEMSTORE_BYTES
[mon.a]
mon data = $d/mon.a
[osd.0]
osd data = $d/osd.0
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw data = $d/rgw
# Level 1 logs one "beast:" line per request: the tests count requests there.
debug rgw = 1
# Deleted and aborted data is freed after a minute, not two hours: the
# memstore OSD holds everything in RAM.
rgw gc obj min wait = 60
rgw gc processor period = 60
# A full memstore (writes beyond memstore device bytes) would hold every
# write forever; this turns that into an error answer.
rados osd op timeout = 60
# No lifecycle rules or multisite here; their threads only slow down shutdown.
rgw enable lc threads = false
rgw run sync thread = false
CONF
}

# radosgw-admin takes keys only as arguments; metadata put reads the user
# from stdin instead, so the secret never appears on a command line.
create_user() {
  timeout "$(remaining)" radosgw-admin -c "$RUN_DIR/ceph.conf" metadata put user:ferry-test \
    >"$RUN_DIR/log/user-create.out" 2>&1 <<JSON
{
  "key": "user:ferry-test",
  "ver": {"tag": "", "ver": 0},
  "mtime": "2024-01-01 00:00:00.000000Z",
  "data": {
    "user_id": "ferry-test",
    "display_name": "ferry tests",
    "keys": [{"user": "ferry-test", "access_key": "$ACCESS_KEY", "secret_key": "$SECRET_KEY"}],
    "max_buckets": 100000,
    "op_mask": "read, write, delete",
    "type": "rgw"
  }
}
JSON
}

start() {
  local rgw_port=$2 mon_port=$3
  [[ $rgw_port =~ ^[0-9]+$ && $mon_port =~ ^[0-9]+$ && $rgw_port != "$mon_port" ]] ||
    { say "RGW_PORT and MON_PORT must be two different port numbers" >&2; usage; }
  RUN_DIR=$(realpath -m "$1")
  RGW_PORT=$rgw_port MON_PORT=$mon_port
  ENDPOINT="http://127.0.0.1:$RGW_PORT"
  DEADLINE=$(($(date +%s) + START_TIMEOUT))
  local tool
  for tool in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph uuidgen curl python3; do
    command -v "$tool" >/dev/null ||
      { say "'$tool' is not installed (run .ci/install-deps)" >&2; exit 1; }
  done

  check_ours "$RUN_DIR"
  if [[ -e $RUN_DIR/$MARKER ]]; then
    stop_daemons "$RUN_DIR" || exit 1
    rm -rf "$RUN_DIR"
  fi
  local port
  for port in "$RGW_PORT" "$MON_PORT"; do
    port_free "$port" || {
      say "port $port on 127.0.0.1 is in use (another radosgw?); choose other ports" \
        "(cmake -DFERRY_RADOSGW_PORT=... -DFERRY_RADOSGW_MON_PORT=...)" >&2
      exit 1
    }
  done
  mkdir -p "$RUN_DIR"/{run,log,mon.a,osd.0,rgw,crash}
  touch "$RUN_DIR/$MARKER"

  local fsid osd_uuid
  fsid=$(uuidgen)
  osd_uuid=$(uuidgen)
  write_conf "$fsid"
  # A plain "127.0.0.1:PORT" would become a v2 address that the v1-only
  # daemons cannot reach.
  monmaptool --create --addv a "[v1:127.0.0.1:$MON_PORT]" --fsid "$fsid" "$RUN_DIR/monmap" \
    >"$RUN_DIR/log/monmap.out" 2>&1 || die "monmaptool failed"
  ceph_tool mon-mkfs ceph-mon --mkfs -i a --monmap "$RUN_DIR/monmap" || die "ceph-mon --mkfs failed"
  launch mon ceph-mon -i a || die "ceph-mon did not start"
  wait_for "the monitor's pid file" has_pid_file mon.a
  # Registers osd.0; the monitor's answer also proves it is up. A monitor
  # still forming its quorum refuses the command, so it is asked again (the
  # same uuid always gets the same id).
  wait_for "the monitor to register osd.0 (see $RUN_DIR/log/osd-new.out)" \
    ceph_tool osd-new ceph --connect-timeout 10 osd new "$osd_uuid"
  say "monitor up on 127.0.0.1:$MON_PORT after $(elapsed)"
  # The next command can still be refused while the monitor settles ("problem
  # getting command descriptions from mon"), so it is asked again too; adding
  # osd.0 where it already is succeeds.
  wait_for "the monitor to place osd.0 in the CRUSH map (see $RUN_DIR/log/crush-add.out)" \
    ceph_tool crush-add ceph --connect-timeout 10 osd crush add osd.0 1.0 root=default
  ceph_tool osd-mkfs ceph-osd -i 0 --mkfs --osd-uuid "$osd_uuid" || die "ceph-osd --mkfs failed"
  launch osd ceph-osd -i 0 || die "ceph-osd did not start"
  wait_for "osd.0 to be up" osd_up
  say "osd.0 up after $(elapsed)"
  launch rgw radosgw -n client.rgw.a || die "radosgw did not start"
  wait_for "radosgw's pid file" has_pid_file client.rgw.a
  create_user || die "creating the S3 user failed"
  wait_for "radosgw to accept the test keys on $ENDPOINT" s3_ready

  local log=$RUN_DIR/log/client.rgw.a.log
  {
    echo "# radosgw started by $PROG; source this file."
    printf 'export FERRY_S3_ENDPOINT=%q\n' "$ENDPOINT"
    printf 'export FERRY_S3_ACCESS_KEY=%q\n' "$ACCESS_KEY"
    printf 'export FERRY_S3_SECRET_KEY=%q\n' "$SECRET_KEY"
    printf 'export FERRY_RADOSGW_LOG=%q\n' "$log"
    printf 'export FERRY_RADOSGW_CONF=%q\n' "$RUN_DIR/ceph.conf"
  } >"$RUN_DIR/env"
  say "radosgw up on $ENDPOINT after $(elapsed) (pids $(recorded_pids "$RUN_DIR" | xargs)," \
    "settings in $RUN_DIR/env)"
}

stop() {
  RUN_DIR=$(realpath -m "$1")
  check_ours "$RUN_DIR"
  if [[ -e $RUN_DIR/$MARKER ]]; then
    stop_daemons "$RUN_DIR" || exit 1
    rm -rf "$RUN_DIR"
  fi
  say "stopped, $RUN_DIR removed after $(elapsed)"
}

case ${1:-} in
  start) (($# == 4)) || usage; start "$2" "$3" "$4" ;;
  stop) (($# == 2)) || usage; stop "$2" ;;
  *) usage ;;
esac
