#!/usr/bin/env bash
# A multipart upload to S3 survives kill -9 and resumes without sending its
# completed parts again; `ferry cleanup` aborts what nothing will resume.
#
#   1. git lfs push of a 60 MiB object (12 parts of 5 MiB, 2 at a time)
#      through a loopback proxy that passes 8 MiB/s to the radosgw, so the
#      upload takes several seconds. Once ferry's journal records at least
#      3 completed parts, the agent is killed with SIGKILL. The push fails;
#      no object is visible at the key; the multipart upload the journal
#      names is in progress on the server with those parts.
#   2. git lfs push again at full speed: it succeeds, boto3 reads the object
#      with sha256 == oid, no upload is left in progress, and radosgw's
#      request log shows that the parts the journal recorded were sent
#      exactly once (in the killed run): the second run asked ListParts of
#      the same upload, sent only the other parts and completed it.
#   3. ferry cleanup --older-than 0s [--dry-run] --store URL lists, then
#      aborts, a multipart upload boto3 started at an object key of the
#      store, and leaves alone uploads of keys that are not the store's.
#
#   ctest -R e2e.test_s3_kill_resume   (the radosgw fixture sets FERRY_S3_* and FERRY_RADOSGW_LOG)
set -euo pipefail
# Before lib.sh: its sandbox unsets every FERRY_* variable.
source "$(dirname "${BASH_SOURCE[0]}")/../s3/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
s3_e2e_init ferry-e2e-resume "$@"

SIZE=$((60 << 20))
PART=$((5 << 20))
PARTS=$((SIZE / PART))
PREFIX=resume/lfs
export FERRY_S3_MULTIPART_THRESHOLD=5MiB FERRY_S3_PART_SIZE=5MiB FERRY_S3_UPLOAD_CONCURRENCY=2
# ferry.maxBytesPerSecond paces when transfers start, not the bytes of one
# transfer, so the proxy is what makes this upload take a while.
s3_proxy_start $((8 << 20))
# shellcheck disable=SC2034 # read by s3_store_url
S3_STORE_ENDPOINT=$S3_PROXY_ENDPOINT

REPO="$E2E_ROOT/repo"
new_repo repo
install_ferry_url "$REPO" "$(s3_store_url "$PREFIX")"
random_file "$REPO/huge.bin" "$SIZE"
(cd "$REPO" && git add -A && git commit -qm "a 60 MiB object") || fail "commit failed"
OID=$(oid_of "$REPO/huge.bin")
KEY=$(s3_nested_key "$PREFIX" "$OID")
FERRY_REAL=$(readlink -f "$FERRY")

# agent_pid: the `ferry agent` git-lfs started in $REPO (nothing if none).
agent_pid() {
  local pid found=()
  for pid in $(pgrep -x ferry || true); do
    [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$FERRY_REAL" ]] || continue
    [[ $(readlink "/proc/$pid/cwd" 2>/dev/null) == "$REPO" ]] || continue
    [[ $(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | sed -n 2p) == agent ]] || continue
    found+=("$pid")
  done
  ((${#found[@]} <= 1)) || fail "more than one ferry agent runs in $REPO: ${found[*]}"
  echo "${found[@]:-}"
}

# The multipart state of the journal's active upload of $OID in <status.json>:
# "<upload id> <parts kept on resume> <bytes committed>" (kept: the leading
# run of completed parts, 1, 2, 3, ...), or nothing.
JOURNAL_STATE_PY='
import json, sys
doc = json.load(open(sys.argv[1]))
for r in doc["active"]:
    if r["oid"] == sys.argv[2] and r["direction"] == "upload" and r.get("store_state"):
        state = json.loads(r["store_state"])
        numbers = sorted(p[0] for p in state["parts"])
        kept = 0
        while kept < len(numbers) and numbers[kept] == kept + 1:
            kept += 1
        print(state["upload_id"], kept, r["committed"])
'
journal_state() {
  python3 -c "$JOURNAL_STATE_PY" "$1" "$OID"
}

# ---- 1. kill -9 in the middle of the multipart upload --------------------------------
MARK=$(s3_log_lines)
(cd "$REPO" && exec git lfs push origin main) >"$E2E_ROOT/push1.log" 2>&1 &
PUSH_PID=$!
track_pid "$PUSH_PID"
journal_has_3_parts() {
  kill -0 "$PUSH_PID" 2>/dev/null ||
    { show "git lfs push" "$E2E_ROOT/push1.log"; fail "the push ended before the journal recorded 3 parts"; }
  status_json "$REPO" "$E2E_ROOT/status-polled.json"
  local state
  state=$(journal_state "$E2E_ROOT/status-polled.json")
  [[ -n $state ]] && (($(cut -d' ' -f2 <<<"$state") >= 3))
}
wait_for 45 "the journal to record 3 completed parts" journal_has_3_parts
AGENT=$(agent_pid)
[[ -n $AGENT ]] || fail "no 'ferry agent' process runs in $REPO during the push"
kill -9 "$AGENT"
note "killed agent $AGENT ($(e2e_elapsed)); the journal showed: $(journal_state "$E2E_ROOT/status-polled.json")"
rc=0
wait "$PUSH_PID" || rc=$?
untrack_pid "$PUSH_PID"
((rc != 0)) || { show "git lfs push" "$E2E_ROOT/push1.log"; fail "git lfs push reported success although its agent was killed"; }
pass "the push whose agent was killed failed (exit $rc)"

[[ -z $(s3_interop ls "$S3_BUCKET" "$KEY") ]] ||
  fail "the kill came too late: $KEY is already in the bucket (the upload completed)"
status_json "$REPO" "$E2E_ROOT/status-killed.json"
read -r UPLOAD_ID KEPT COMMITTED <<<"$(journal_state "$E2E_ROOT/status-killed.json")"
[[ -n ${UPLOAD_ID:-} ]] ||
  { show "ferry status --json" "$E2E_ROOT/status-killed.json"; fail "the journal kept no multipart state for the killed upload"; }
((KEPT >= 3 && KEPT < PARTS)) || fail "the journal records $KEPT leading parts, expected 3 to $((PARTS - 1))"
((COMMITTED > 0 && COMMITTED <= KEPT * PART)) ||
  fail "the journal says $COMMITTED bytes are durable, but its $KEPT leading parts hold $((KEPT * PART))"
IN_PROGRESS=$(s3_interop parts "$S3_BUCKET" "$KEY") || fail "boto3 could not list the uploads of $KEY"
read -r LISTED_ID LISTED_PARTS <<<"$IN_PROGRESS"
[[ $(wc -l <<<"$IN_PROGRESS") -eq 1 && $LISTED_ID == "$UPLOAD_ID" ]] ||
  fail "uploads in progress for $KEY: '$IN_PROGRESS', expected only the journal's $UPLOAD_ID"
((LISTED_PARTS >= KEPT)) || fail "the server lists $LISTED_PARTS parts of $UPLOAD_ID, the journal recorded $KEPT"
pass "nothing at $KEY; upload $UPLOAD_ID is in progress with $LISTED_PARTS parts listed, $KEPT of them in the journal"

# ---- 2. resume ------------------------------------------------------------------------
s3_proxy_unlimit
MARK2=$(s3_log_lines)
must_git 120 "$E2E_ROOT/push2.log" -C "$REPO" lfs push origin main
pass "the second git lfs push succeeded ($ELAPSED_MS ms)"

# radosgw writes its log lines asynchronously: wait for the completion's.
completion_logged() {
  s3_requests_since "$MARK" "$E2E_ROOT/requests.tsv"
  awk -F'\t' -v key="$KEY" -v q="uploadId=$UPLOAD_ID" '$1 == "POST" && $2 == key && $3 == q && $4 == 200' \
    "$E2E_ROOT/requests.tsv" | grep -q .
}
wait_for 20 "radosgw's log line of the CompleteMultipartUpload of $UPLOAD_ID" completion_logged
s3_requests_since "$MARK2" "$E2E_ROOT/requests-resumed.tsv"
py_check "radosgw's log: the $KEPT parts in the journal went up once; the resumed run sent only parts $((KEPT + 1))..$PARTS" '
import collections, sys
def load(path):
    return [line.rstrip("\n").split("\t") for line in open(path)]
every, resumed = load(sys.argv[1]), load(sys.argv[2])
key, upload_id, kept, parts = sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
def part_puts(rows):
    """part number -> statuses of the UploadPart requests for this upload"""
    sent = collections.defaultdict(list)
    for r in rows:
        if r[0] == "PUT" and r[1] == key:
            query = dict(kv.split("=", 1) for kv in r[2].split("&") if "=" in kv)
            if query.get("uploadId") != upload_id:
                raise SystemExit("a PUT of %s outside upload %s: %s" % (key, upload_id, r))
            sent[int(query["partNumber"])].append(r[3])
    return sent
everything, again = part_puts(every), part_puts(resumed)
for n in range(1, kept + 1):
    if everything[n] != ["200"]:
        raise SystemExit("part %d (in the journal) was sent %d times: statuses %s" % (n, len(everything[n]), everything[n]))
if sorted(again) != list(range(kept + 1, parts + 1)) or any(s != ["200"] for s in again.values()):
    raise SystemExit("the resumed run sent parts %s, expected %d..%d once each" % (dict(again), kept + 1, parts))
starts = [r for r in resumed if r[0] == "POST" and r[1] == key and r[2] == "uploads"]
listed = [r for r in resumed if r[0] == "GET" and r[1] == key and "uploadId=" + upload_id in r[2].split("&")]
done = [r for r in resumed if r[0] == "POST" and r[1] == key and r[2] == "uploadId=" + upload_id and r[3] == "200"]
if starts or not listed or len(done) != 1:
    raise SystemExit("the resumed run: %d new uploads, %d ListParts, %d completions of %s" % (len(starts), len(listed), len(done), upload_id))
killed = sum(len(v) for n, v in everything.items()) - sum(len(v) for v in again.values())
print("killed run: %d UploadPart requests; resumed run: ListParts, parts %d..%d, Complete" % (killed, kept + 1, parts))
' "$E2E_ROOT/requests.tsv" "$E2E_ROOT/requests-resumed.tsv" "$KEY" "$UPLOAD_ID" "$KEPT" "$PARTS"

[[ $(s3_interop ls "$S3_BUCKET" "$KEY") == "$KEY $SIZE" ]] || fail "boto3 does not list $KEY with $SIZE bytes"
[[ $(s3_interop sha256 "$S3_BUCKET" "$KEY") == "$OID" ]] || fail "boto3 reads $KEY with a sha256 other than its oid"
[[ -z $(s3_interop uploads "$S3_BUCKET" "") ]] || fail "multipart uploads are left in progress: $(s3_interop uploads "$S3_BUCKET" "")"
pass "boto3 reads the object with sha256 == oid; no multipart upload is left in progress"

status_json "$REPO" "$E2E_ROOT/status-done.json"
assert_history "$E2E_ROOT/status-done.json" upload "done" "$OID"
py_check "the journal shows the upload resumed after the $KEPT kept parts" '
import json, sys
doc = json.load(open(sys.argv[1]))
r = [r for r in doc["history"] if r["oid"] == sys.argv[2] and r["direction"] == "upload"][0]
if doc["active"] or r["resumed_from"] != int(sys.argv[3]) or r["attempts"] < 2:
    raise SystemExit("expected resumed_from %s and attempts >= 2, no active records: %s" % (sys.argv[3], doc))
print("resumed_from %d, attempts %d" % (r["resumed_from"], r["attempts"]))
' "$E2E_ROOT/status-done.json" "$OID" $((KEPT * PART))

# The object is no longer needed; it takes the radosgw's memory.
s3_py 's3.delete_object(Bucket=sys.argv[1], Key=sys.argv[2])' "$S3_BUCKET" "$KEY" || fail "could not delete $KEY"

# ---- 3. ferry cleanup ------------------------------------------------------------------
STALE_OID=$(head -c 32 /dev/urandom | sha256sum | cut -d' ' -f1)
STALE_KEY=$(s3_nested_key "$PREFIX" "$STALE_OID")
# Not the store's: a key under the prefix that is no object key, and an
# object key under another prefix.
FOREIGN_KEYS=("$PREFIX/notes.txt" "$(s3_nested_key other "$STALE_OID")")
STALE_ID=$(s3_start_upload "$S3_BUCKET" "$STALE_KEY") || fail "boto3 could not start an upload"
for key in "${FOREIGN_KEYS[@]}"; do s3_start_upload "$S3_BUCKET" "$key" >/dev/null || fail "boto3 could not start an upload"; done
uploads_now() { s3_interop uploads "$S3_BUCKET" "" | sort; }
BEFORE=$(uploads_now)
[[ $(wc -l <<<"$BEFORE") -eq 3 ]] || fail "expected 3 uploads in progress, boto3 lists: $BEFORE"

# Outside any repository, with the store on the command line (the radosgw itself).
STORE_URL="s3://$S3_BUCKET/$PREFIX?endpoint=$FERRY_S3_ENDPOINT"
run_cleanup() {
  (cd "$E2E_ROOT" && "$FERRY" cleanup --store "$STORE_URL" "$@") >"$E2E_ROOT/cleanup.out" 2>&1 ||
    { show "ferry cleanup $*" "$E2E_ROOT/cleanup.out"; fail "ferry cleanup $* failed"; }
}
run_cleanup --older-than 24h --dry-run
grep -q "^0 multipart upload" "$E2E_ROOT/cleanup.out" ||
  { show "ferry cleanup" "$E2E_ROOT/cleanup.out"; fail "ferry cleanup --older-than 24h found a fresh upload"; }
run_cleanup --older-than 0s --dry-run
if [[ $(grep -c "^would abort " "$E2E_ROOT/cleanup.out") -ne 1 ]] ||
  ! grep -qF "would abort $STALE_KEY (upload $STALE_ID)" "$E2E_ROOT/cleanup.out"; then
  show "ferry cleanup --dry-run" "$E2E_ROOT/cleanup.out"
  fail "ferry cleanup --dry-run does not list exactly $STALE_KEY (upload $STALE_ID)"
fi
[[ $(uploads_now) == "$BEFORE" ]] || fail "ferry cleanup --dry-run changed the uploads in progress"
pass "ferry cleanup --older-than 0s --dry-run lists only the store's upload and aborts nothing"
run_cleanup --older-than 0s
grep -qF "aborting $STALE_KEY (upload $STALE_ID)" "$E2E_ROOT/cleanup.out" ||
  { show "ferry cleanup" "$E2E_ROOT/cleanup.out"; fail "ferry cleanup does not report aborting $STALE_KEY"; }
[[ -z $(s3_interop parts "$S3_BUCKET" "$STALE_KEY") ]] || fail "the upload of $STALE_KEY is still in progress"
[[ $(uploads_now | cut -d' ' -f1) == "$(printf '%s\n' "${FOREIGN_KEYS[@]}" | sort)" ]] ||
  fail "after ferry cleanup, boto3 lists: $(uploads_now); expected only the uploads of ${FOREIGN_KEYS[*]}"
pass "ferry cleanup --older-than 0s aborted the store's stale upload and left the other keys' uploads alone"
