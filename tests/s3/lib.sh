# shellcheck shell=bash
# Helpers for tests and benchmarks that talk to a radosgw started by
# tests/s3/radosgw.sh. Source it:
#
#   source "<repo>/tests/s3/lib.sh"
#   s3_env "$DIR"                 # the settings of the radosgw running in DIR
#   rclone_rgw lsf rgw:bucket/    # rclone, with the remote "rgw:" for that radosgw
#   s3_interop sha256 bucket key  # tests/s3/interop.py (boto3)
#
# Under ctest, the tests that require the radosgw fixture get its settings in
# FERRY_S3_ENDPOINT, FERRY_S3_ACCESS_KEY, FERRY_S3_SECRET_KEY and
# FERRY_RADOSGW_LOG. Sourcing this file records the fixture's directory in
# S3_RADOSGW_DIR, so a test can restore them with `s3_env "$S3_RADOSGW_DIR"`
# after something (tests/e2e/lib.sh's sandbox) has unset every FERRY_* variable.

S3_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# radosgw.sh puts the request log at DIR/log/client.rgw.a.log.
# shellcheck disable=SC2034 # for the scripts that source this file
S3_RADOSGW_DIR=${FERRY_RADOSGW_LOG:+${FERRY_RADOSGW_LOG%/log/client.rgw.a.log}}

# s3_env DIR: exports FERRY_S3_ENDPOINT, FERRY_S3_ACCESS_KEY,
# FERRY_S3_SECRET_KEY and FERRY_RADOSGW_LOG from DIR/env.
s3_env() {
  local file=${1:?usage: s3_env DIR}/env
  if [[ ! -f $file ]]; then
    echo "s3_env: $file is missing: no radosgw was started in $1 (tests/s3/radosgw.sh start)" >&2
    return 1
  fi
  # shellcheck source=/dev/null
  source "$file"
}

# rclone_rgw ARGS...: runs rclone with one remote, "rgw:", for the radosgw of
# FERRY_S3_* (path style, region us-east-1). The whole configuration travels
# in the environment: no config file is read or written, and the keys are on
# no command line. AWS_CA_BUNDLE is dropped: with it, rclone 1.60 refuses
# every S3 remote ("LoadCustomCABundleError").
rclone_rgw() {
  (
    unset AWS_CA_BUNDLE
    export RCLONE_CONFIG=/dev/null
    export RCLONE_CONFIG_RGW_TYPE=s3
    export RCLONE_CONFIG_RGW_PROVIDER=Ceph
    export RCLONE_CONFIG_RGW_ENV_AUTH=false
    export RCLONE_CONFIG_RGW_ACCESS_KEY_ID=${FERRY_S3_ACCESS_KEY:?run s3_env first}
    export RCLONE_CONFIG_RGW_SECRET_ACCESS_KEY=${FERRY_S3_SECRET_KEY:?run s3_env first}
    export RCLONE_CONFIG_RGW_ENDPOINT=${FERRY_S3_ENDPOINT:?run s3_env first}
    export RCLONE_CONFIG_RGW_REGION=us-east-1
    export RCLONE_CONFIG_RGW_FORCE_PATH_STYLE=true
    exec rclone "$@"
  )
}

# s3_interop COMMAND ARGS...: tests/s3/interop.py (boto3) on the radosgw of
# FERRY_S3_*; see that file for the commands.
s3_interop() {
  /usr/bin/python3 "$S3_LIB_DIR/interop.py" "$@"
}

# s3_py CODE ARGS...: runs python CODE (boto3) with `s3`, a client of
# tests/s3/interop.py for the radosgw of FERRY_S3_*, and ARGS in sys.argv[1:].
s3_py() {
  local prelude='import sys
sys.path.insert(0, sys.argv.pop(1))
import interop
s3 = interop.client()
'
  /usr/bin/python3 -c "$prelude$1" "$S3_LIB_DIR" "${@:2}"
}

# s3_start_upload BUCKET KEY: starts a multipart upload of KEY with boto3 (and
# leaves it in progress); prints its upload id.
s3_start_upload() {
  s3_py 'print(s3.create_multipart_upload(Bucket=sys.argv[1], Key=sys.argv[2])["UploadId"])' "$@"
}

# s3_remove_bucket BUCKET: aborts its multipart uploads, deletes its objects
# and then the bucket itself (which frees the radosgw's memory).
s3_remove_bucket() {
  s3_py '
bucket = sys.argv[1]
for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
    for upload in page.get("Uploads", []):
        s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
    for entry in page.get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=entry["Key"])
s3.delete_bucket(Bucket=bucket)' "$1"
}

# ---- end-to-end tests (tests/e2e/test_s3_*.sh) ------------------------------------
#
# Source this file BEFORE tests/e2e/lib.sh (whose sandbox unsets FERRY_*), then
# call s3_e2e_init instead of e2e_init. The helpers below use that library's
# fail, wait_for, track_pid and e2e_cleanup.

# s3_e2e_init NAME PATH-TO-FERRY: e2e_init PATH-TO-FERRY, then restores the
# fixture's settings, hands its keys to git (and so to the ferry agent it
# starts) in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and creates the
# bucket S3_BUCKET (NAME plus a random suffix), which is removed with
# everything in it when the test exits.
s3_e2e_init() {
  e2e_init "${@:2}"
  [[ -n ${S3_RADOSGW_DIR:-} ]] ||
    fail "FERRY_RADOSGW_LOG is not set: run this test with ctest (fixture radosgw) or export what tests/s3/radosgw.sh writes to DIR/env"
  s3_env "$S3_RADOSGW_DIR" || fail "no radosgw settings in $S3_RADOSGW_DIR"
  unset AWS_SESSION_TOKEN AWS_PROFILE AWS_SHARED_CREDENTIALS_FILE AWS_CONFIG_FILE
  export AWS_ACCESS_KEY_ID=$FERRY_S3_ACCESS_KEY
  export AWS_SECRET_ACCESS_KEY=$FERRY_S3_SECRET_KEY
  S3_BUCKET="$1-$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  s3_interop mkbucket "$S3_BUCKET" || fail "boto3 could not create bucket $S3_BUCKET at $FERRY_S3_ENDPOINT"
  trap s3_e2e_exit EXIT
}

# The EXIT trap of s3_e2e_init: removes the bucket, then e2e_cleanup (which
# reads the test's exit status from $?).
s3_e2e_exit() {
  local status=$?
  s3_remove_bucket "$S3_BUCKET" >/dev/null 2>&1 ||
    echo "$E2E_NAME: warning: could not remove bucket $S3_BUCKET" >&2
  s3_exit_status "$status" || e2e_cleanup
  e2e_cleanup
}
s3_exit_status() { return "$1"; }

# s3_store_url PREFIX [PARAMETERS]: the store URL of S3_BUCKET/PREFIX with
# more &PARAMETERS, at S3_STORE_ENDPOINT if set (a proxy), else at the radosgw.
s3_store_url() {
  echo "s3://$S3_BUCKET/$1?endpoint=${S3_STORE_ENDPOINT:-$FERRY_S3_ENDPOINT}${2:+&$2}"
}

# s3_nested_key PREFIX OID / s3_flat_key PREFIX OID: where a store keeps it.
s3_nested_key() { echo "$1/${2:0:2}/${2:2:2}/$2"; }
s3_flat_key() { echo "$1/$2"; }

# s3_log_lines: how many lines the radosgw request log has now (a mark).
s3_log_lines() {
  wc -l <"$FERRY_RADOSGW_LOG"
}

# s3_requests_since MARK OUT: the requests to S3_BUCKET (other tests share the
# radosgw) that the request log has after line MARK, one per line with tab
# separated fields: method, key, query, status, range (or -), start (ms since
# the epoch), latency (ms), user agent. The log's "beast:" lines look like
#   ... beast: 0x..: 127.0.0.1 - user [22/Nov/2026:04:40:32.796 +0000]
#   "PUT /bucket/key?partNumber=3&uploadId=2~x HTTP/1.1" 200 5242880 - "ferry"
#   bytes=0-8388607 latency=0.052000005s
s3_requests_since() {
  tail -n +"$(($1 + 1))" "$FERRY_RADOSGW_LOG" | /usr/bin/python3 -c '
import datetime, re, sys
line_re = re.compile(r"beast: .*\[([^]]+)\] \"(\S+) /([^/?\s]+)/?([^?\s]*)\??(\S*) HTTP/[0-9.]+\" "
                     r"(\d+) \S+ \S+ \"([^\"]*)\" (\S+) latency=([0-9.]+)s")
for line in sys.stdin:
    m = line_re.search(line)
    if not m or m.group(3) != sys.argv[1]:
        continue
    when, method, _, key, query, status, agent, byte_range, latency = m.groups()
    start = datetime.datetime.strptime(when, "%d/%b/%Y:%H:%M:%S.%f %z").timestamp()
    print("\t".join([method, key, query, status, byte_range, str(round(start * 1000)),
                     str(round(float(latency) * 1000)), agent]))
' "$S3_BUCKET" >"$2"
}

# s3_proxy_start BYTES_PER_SECOND: a TCP proxy on 127.0.0.1 in front of the
# radosgw that passes at most BYTES_PER_SECOND towards it (all connections
# together), so that an upload takes a predictable time. SigV4 signs the Host
# header the client sends, which the proxy passes on unchanged. Sets
# S3_PROXY_PID and S3_PROXY_ENDPOINT; s3_proxy_unlimit lifts the limit.
s3_proxy_start() {
  local port_file="$E2E_ROOT/s3-proxy.port"
  rm -f "$port_file"
  /usr/bin/python3 - "${FERRY_S3_ENDPOINT#http://}" "$1" "$port_file" >"$E2E_ROOT/s3-proxy.out" 2>&1 <<'PY' &
import os, signal, socket, sys, threading, time

target_host, _, target_port = sys.argv[1].partition(":")
limit = {"rate": float(sys.argv[2]), "next": time.monotonic()}
lock = threading.Lock()
signal.signal(signal.SIGUSR1, lambda *_: limit.update(rate=0.0))

def pace(n):
    """Holds a chunk back until the shared budget allows it."""
    with lock:
        if limit["rate"] <= 0:
            return
        now = time.monotonic()
        limit["next"] = max(now, limit["next"]) + n / limit["rate"]
        wait = limit["next"] - now
    time.sleep(wait)

def pump(src, dst, paced):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                dst.shutdown(socket.SHUT_WR)
                return
            if paced:
                pace(len(data))
            dst.sendall(data)
    except OSError:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

def serve(client):
    upstream = socket.create_connection((target_host, int(target_port)))
    threading.Thread(target=pump, args=(upstream, client, False), daemon=True).start()
    pump(client, upstream, True)

listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(64)
with open(sys.argv[3] + ".tmp", "w") as f:
    f.write(str(listener.getsockname()[1]))
os.rename(sys.argv[3] + ".tmp", sys.argv[3])
while True:
    connection, _ = listener.accept()
    threading.Thread(target=serve, args=(connection,), daemon=True).start()
PY
  S3_PROXY_PID=$!
  track_pid "$S3_PROXY_PID"
  wait_for 10 "the throttling proxy's port file" s3_proxy_ready "$port_file"
  # shellcheck disable=SC2034 # for the sourcing script
  S3_PROXY_ENDPOINT="http://127.0.0.1:$(cat "$port_file")"
}

# s3_proxy_ready PORT_FILE: the proxy has written its port (fails the test if
# it exited).
s3_proxy_ready() {
  kill -0 "$S3_PROXY_PID" 2>/dev/null ||
    { show "proxy output" "$E2E_ROOT/s3-proxy.out"; fail "the throttling proxy exited"; }
  [[ -s $1 ]]
}

# s3_proxy_unlimit: the proxy passes bytes at full speed from now on.
s3_proxy_unlimit() {
  kill -USR1 "$S3_PROXY_PID"
}

# s3_bucket_holds <bucket> <prefix> <manifest>: boto3 lists exactly the
# manifest's objects under <prefix>/ (nested layout), each with its size,
# and reads each back with sha256 == oid.
s3_bucket_holds() {
  s3_py 'import hashlib
bucket, prefix, manifest = sys.argv[1], sys.argv[2], sys.argv[3]
want = {}
for line in open(manifest):
    oid, size = line.split()
    want["%s/%s/%s/%s" % (prefix, oid[:2], oid[2:4], oid)] = (oid, int(size))
listed = {}
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
    for entry in page.get("Contents", []):
        listed[entry["Key"]] = entry["Size"]
if sorted(listed) != sorted(want):
    raise SystemExit("keys in the bucket differ: missing %s, unexpected %s"
                     % (sorted(set(want) - set(listed))[:5], sorted(set(listed) - set(want))[:5]))
for key, (oid, size) in want.items():
    if listed[key] != size:
        raise SystemExit("%s is listed with %d bytes, expected %d" % (key, listed[key], size))
    digest = hashlib.sha256()
    for chunk in s3.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(1 << 20):
        digest.update(chunk)
    if digest.hexdigest() != oid:
        raise SystemExit("%s reads back with sha256 %s" % (key, digest.hexdigest()))
' "$@"
}
