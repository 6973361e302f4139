#!/usr/bin/env bash
# An S3 store URL that cannot work is reported in the answer to init, before
# any object: `ferry agent` driven directly (tests/e2e/agent_driver.py) and
# the real git-lfs (git push shows 'error initializing custom adapter
# "ferry"' with ferry's message). The check is one ListObjectsV2 of at most
# one key.
#
#   1. endpoint= is a plain web server (python3's http.server): "is not an S3
#      endpoint"; the server saw no request for an object.
#   2. endpoint= is ferry-lfs-sim (an LFS server, not S3): the same, quoting
#      its answer.
#   3. a bucket that does not exist on the radosgw: the message names the
#      bucket and NoSuchBucket; the radosgw saw only the listing. ferry check
#      with that bucket as --to stops before it lists anything.
#   4. an access key the radosgw does not know: InvalidAccessKeyId.
#   5. nothing listens at the endpoint (connection refused): that may be an
#      outage, so init succeeds and the object fails naming the host (the
#      retries, ferry.maxRetryTime and the circuit breaker handle a dead host).
#
#   ctest -R e2e.test_s3_misconfig   (the radosgw fixture sets FERRY_S3_*)
set -euo pipefail
# Before lib.sh: its sandbox unsets every FERRY_* variable.
source "$(dirname "${BASH_SOURCE[0]}")/../s3/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/misconfig_lib.sh"
s3_e2e_init ferry-e2e-misconfig "$@"
sim_init

# s3_repo <name> <store-url>: a repository whose store is that S3 URL.
s3_repo() {
  new_repo "$1"
  install_ferry_url "$E2E_ROOT/$1" "$2"
}

# ---- 1. a plain web server ---------------------------------------------------------
WEB_ROOT="$E2E_ROOT/web"
WEB_LOG="$E2E_ROOT/web.log"
mkdir -p "$WEB_ROOT/bucket"
echo "<html><body>a web site</body></html>" >"$WEB_ROOT/index.html"
(cd "$WEB_ROOT" && exec python3 -c '
import http.server, os, sys
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(server.server_port))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
server.serve_forever()
' "$E2E_ROOT/web.port") 2>"$WEB_LOG" &
track_pid $!
wait_for 10 "the web server's port file" test -s "$E2E_ROOT/web.port"
WEB="http://127.0.0.1:$(cat "$E2E_ROOT/web.port")"
s3_repo web "s3://bucket/lfs?endpoint=$WEB"
init_refused "$E2E_ROOT/web" web "$WEB is not an S3 endpoint" "bucket 'bucket'" "set endpoint="
push_refused "$E2E_ROOT/web" web "$WEB is not an S3 endpoint"
py_check "the web server was asked only for the listing, never for an object" '
import re, sys
asked = re.findall(r"\"(\S+) (\S+) HTTP", open(sys.argv[1]).read())
if not asked:
    raise SystemExit("the web server logged no request")
other = [a for a in asked if a[0] != "GET" or not re.match(r"/bucket/?\?list-type=2&max-keys=1&", a[1])]
if other:
    raise SystemExit("requests other than the listing: %s" % other)
print("%d listing request(s)" % len(asked))' "$WEB_LOG"

# ---- 2. an LFS server ------------------------------------------------------------------
start_sim ""
s3_repo lfs-sim "s3://bucket/lfs?endpoint=$SIM_URL"
init_refused "$E2E_ROOT/lfs-sim" lfs-sim "$SIM_URL is not an S3 endpoint" "no such endpoint"
push_refused "$E2E_ROOT/lfs-sim" lfs-sim "$SIM_URL is not an S3 endpoint"
stop_sim

# ---- 3. a bucket that does not exist ----------------------------------------------------
MISSING_BUCKET="$S3_BUCKET-missing"
MISSING_URL=$(S3_BUCKET=$MISSING_BUCKET s3_store_url lfs)
MARK=$(s3_log_lines)
s3_repo no-bucket "$MISSING_URL"
init_refused "$E2E_ROOT/no-bucket" no-bucket "there is no bucket '$MISSING_BUCKET'" "NoSuchBucket" "create it"
push_refused "$E2E_ROOT/no-bucket" no-bucket "there is no bucket '$MISSING_BUCKET'" "NoSuchBucket"
S3_BUCKET=$MISSING_BUCKET s3_requests_since "$MARK" "$E2E_ROOT/no-bucket-requests.tsv"
py_check "the radosgw saw only listings of $MISSING_BUCKET" '
import sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
if not rows:
    raise SystemExit("no request for the bucket in the log")
other = [r for r in rows if r[0] != "GET" or r[1] or "list-type=2" not in r[2]]
if other:
    raise SystemExit("requests other than the listing: %s" % other)
print("%d listing request(s), answered %s" % (len(rows), sorted(set(r[3] for r in rows))))' \
  "$E2E_ROOT/no-bucket-requests.tsv"
mkdir -p "$E2E_ROOT/source-folder"
rc=0
"$FERRY" check --from "$E2E_ROOT/source-folder" --to "$MISSING_URL" >"$E2E_ROOT/check.out" 2>&1 || rc=$?
if ((rc == 0)) || ! grep -qF "there is no bucket '$MISSING_BUCKET'" "$E2E_ROOT/check.out"; then
  show "ferry check" "$E2E_ROOT/check.out"
  fail "ferry check --to a missing bucket: exit $rc without naming the bucket"
fi
pass "ferry check --to a missing bucket stopped at once (exit $rc) naming it"

# ---- 4. an unknown access key --------------------------------------------------------------
s3_repo bad-key "$(s3_store_url lfs)"
AWS_ACCESS_KEY_ID=FERRYUNKNOWNKEY init_refused "$E2E_ROOT/bad-key" bad-key "InvalidAccessKeyId"
AWS_ACCESS_KEY_ID=FERRYUNKNOWNKEY push_refused "$E2E_ROOT/bad-key" bad-key "InvalidAccessKeyId"

# ---- 5. connection refused: not a verdict ----------------------------------------------------
REFUSED_PORT=$(free_port)
s3_repo refused "s3://bucket/lfs?endpoint=http://127.0.0.1:$REFUSED_PORT"
git -C "$E2E_ROOT/refused" config ferry.maxAttempts 2
init_session "$E2E_ROOT/refused" refused
py_check "connection refused: init succeeds; the upload fails naming the host" '
import json, sys
records = {r["label"]: r for r in map(json.loads, open(sys.argv[1]))}
if records["init"]["reply"] != {}:
    raise SystemExit("init was answered %r" % records["init"]["raw"])
error = (records["upload"]["reply"] or {}).get("error") or {}
if "127.0.0.1:" + sys.argv[2] not in error.get("message", ""):
    raise SystemExit("the upload was answered %r" % records["upload"]["raw"])
print(error["message"][:160])' "$SESSION" "$REFUSED_PORT"
