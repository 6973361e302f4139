#!/usr/bin/env bash
# Proves ferry-lfs-sim is a conforming Git LFS server by driving it with the
# real git-lfs client and its basic transfer adapter (ferry is not involved):
#
#   0. the sim's accept queue holds at least 128 connections (ss).
#   1. healthy: git push uploads LFS files (one of 5 MiB) through the Batch
#      API, the sim's root holds each at <oid[0:2]>/<oid[2:4]>/<oid> with
#      sha256 == oid, and a fresh clone's git lfs pull gets them back byte for
#      byte; git-lfs forwards the action headers and calls verify.
#   2. protocol edges, by hand: malformed and invalid batch bodies get 400/422
#      JSON errors, hostile storage paths and content are refused, Range gets
#      206/416, and the sim keeps serving; SIGTERM stops it cleanly.
#   3. flaky: a scenario injects 503s, resets, a 500 on verify, a 429 with
#      Retry-After, expired actions, 500s on storage GETs and a corrupted
#      download. git-lfs retries its way through (resuming the reset download
#      with a Range request); corrupt bytes are never checked out, and /stats
#      counts every injected fault.
#
#   FERRY_LFS_SIM=<ferry-lfs-sim> bash tests/e2e/test_lfs_sim.sh [<ferry>]
# The ferry argument (passed by ctest to every e2e script) is not used.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in git git-lfs python3 sha256sum; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done

e2e_sandbox
sim_init
# Short backoff between git-lfs's own retries keeps the flaky phase quick.
git config --global lfs.transfer.maxretrydelay 1
note "sandbox $E2E_ROOT, sim $SIM, $(git lfs version)"

# ---- the example scenarios parse ----------------------------------------------
count=0
for f in "$SCENARIOS"/*.json; do
  [[ -e $f ]] || continue
  # sim-* and soak-* are ferry-sim's scenarios (simulations/README.md).
  case $(basename "$f") in sim-* | soak-*) continue ;; esac
  "$SIM" --check --scenario "$f" >"$E2E_ROOT/check.out" 2>&1 ||
    { show "--check" "$E2E_ROOT/check.out"; fail "example scenario $f does not parse"; }
  count=$((count + 1))
done
((count > 0)) || fail "no example scenarios in $SCENARIOS"
printf '{"rules": [{"match": {"endpoint": "batch"}, "fault": {"statuss": 500}}]}' >"$E2E_ROOT/typo.json"
if "$SIM" --check --scenario "$E2E_ROOT/typo.json" >"$E2E_ROOT/check.out" 2>&1; then
  fail "a scenario with a misspelt fault key was accepted"
fi
grep -q 'rules\[0\].fault.statuss: unknown key' "$E2E_ROOT/check.out" ||
  { show "--check" "$E2E_ROOT/check.out"; fail "the scenario error does not name the bad key"; }
pass "$count example scenarios parse; a misspelt key is rejected by name"

# ---- phase 1: healthy round trip ------------------------------------------------
start_sim
pass "sim listening on $SIM_URL"
# Clients opening 64 connections at once must not overflow its accept queue
# (cpp-httplib's own backlog of 5 made the kernel reset some of them).
backlog=$(ss -Hltn "sport = :$SIM_PORT" | awk '{print $3}')
[[ $backlog =~ ^[0-9]+$ ]] && ((backlog >= 128)) ||
  fail "the sim listens with a backlog of '$backlog', not at least 128"
pass "the sim's accept queue holds $backlog connections"

REPO="$E2E_ROOT/repo"
git init -q --bare "$E2E_ROOT/repo.git"
git init -q "$REPO"
cd "$REPO"
git remote add origin "file://$E2E_ROOT/repo.git"
git config lfs.url "$(lfs_url)"
git lfs track '*.bin' >/dev/null
declare -A SIZES=(
  ["small.bin"]=1024
  ["mid.bin"]=307200
  ["big.bin"]=$((5 * 1024 * 1024))
  ["dir with space/odd name.bin"]=65537
)
for f in "${!SIZES[@]}"; do random_file "$REPO/$f" "${SIZES[$f]}"; done
cp "$REPO/small.bin" "$REPO/small-copy.bin" # same oid twice: one upload
git add -A
git commit -qm "LFS files"
git push -q origin main >"$E2E_ROOT/push1.log" 2>&1 ||
  { show "git push" "$E2E_ROOT/push1.log"; show "sim log" "$SIM_LOG"; fail "git push to the sim failed"; }
for f in "${!SIZES[@]}"; do assert_stored "$SIM_ROOT" "$REPO/$f"; done
assert_root_clean
pass "git push stored ${#SIZES[@]} objects under the sim root with sha256 == oid"
checks=()
for f in "${!SIZES[@]}"; do checks+=("puts.$(oid_of "$REPO/$f") == 1"); done
expect_stats "${checks[@]}" "requests.upload == ${#SIZES[@]}" "requests.verify == ${#SIZES[@]}" \
  "events.verify_ok == ${#SIZES[@]}" "events.stored == ${#SIZES[@]}" "requests.batch >= 1"
pass "/stats: one PUT per oid (the duplicate file was not sent twice), verify called for each"

CLONE="$E2E_ROOT/clone1"
GIT_LFS_SKIP_SMUDGE=1 git clone -q "file://$E2E_ROOT/repo.git" "$CLONE" 2>"$E2E_ROOT/clone1.log" ||
  { show "git clone" "$E2E_ROOT/clone1.log"; fail "git clone failed"; }
cd "$CLONE"
git config lfs.url "$(lfs_url)"
is_pointer "$CLONE/big.bin" || fail "the clone was smudged although GIT_LFS_SKIP_SMUDGE=1"
git lfs pull >"$E2E_ROOT/pull1.log" 2>&1 ||
  { show "git lfs pull" "$E2E_ROOT/pull1.log"; show "sim log" "$SIM_LOG"; fail "git lfs pull from the sim failed"; }
for f in "${!SIZES[@]}" small-copy.bin; do
  cmp -s "$REPO/$f" "$CLONE/$f" || fail "$f differs after git lfs pull"
done
expect_stats "requests.download == ${#SIZES[@]}" "events.missing_action_header == 0"
pass "fresh clone + git lfs pull: every file byte-identical; git-lfs sent the action headers"

# ---- phase 2: protocol edges ----------------------------------------------------
B="$E2E_ROOT/body"
O="$E2E_ROOT/answer"
LFS_JSON="Content-Type: application/vnd.git-lfs+json"
BATCH="$(lfs_url)/objects/batch"

# expect_error <status> <what> <method> <url> <body|-> [header...]: the answer
# has that status and a JSON body with a "message".
expect_error() {
  local want=$1 what=$2 got
  shift 2
  got=$(http "$1" "$2" "$3" "$O" "${@:4}")
  [[ $got == "$want" ]] || { show "answer" "$O"; fail "$what: status $got, expected $want"; }
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert isinstance(d.get("message"), str)' "$O" 2>/dev/null ||
    { show "answer" "$O"; fail "$what: the $want answer is not a JSON error with a message"; }
}

printf '{"operation": "download", "objects": [' >"$B"
expect_error 400 "truncated batch JSON" POST "$BATCH" "$B" "$LFS_JSON"
printf '\xff\xfe{}' >"$B"
expect_error 400 "binary batch body" POST "$BATCH" "$B" "$LFS_JSON"
printf '{"operation": "delete", "objects": []}' >"$B"
expect_error 422 "unknown operation" POST "$BATCH" "$B" "$LFS_JSON"
printf '{"operation": "download", "objects": {"oid": 1}}' >"$B"
expect_error 422 "objects not an array" POST "$BATCH" "$B" "$LFS_JSON"
printf '{"oid": "../../etc/passwd", "size": 1}' >"$B"
expect_error 422 "verify with a hostile oid" POST "$(lfs_url)/verify" "$B" "$LFS_JSON"
printf 'x' >"$B"
expect_error 404 "PUT to an encoded ../ path" PUT "$(lfs_url)/storage/..%2F..%2Fescape" "$B"
expect_error 400 "PUT with an upper-case oid" PUT "$(lfs_url)/storage/$(printf 'A%.0s' {1..64})" "$B"
pass "malformed and invalid requests get 400/404/422 JSON errors"

# Per-object validation: bad oid and negative size fail alone, the good one is served.
SMALL_OID=$(oid_of "$REPO/small.bin")
printf '{"operation":"download","objects":[{"oid":"../x","size":1},{"oid":"%s","size":-1},{"oid":"%s","size":1024}]}' \
  "$SMALL_OID" "$SMALL_OID" >"$B"
[[ $(http POST "$BATCH" "$B" "$O" "$LFS_JSON") == 200 ]] || { show "answer" "$O"; fail "mixed batch was not answered with 200"; }
py_check "per-object errors for invalid objects, actions for the valid one" '
import json, sys
objs = json.load(open(sys.argv[1]))["objects"]
codes = [o.get("error", {}).get("code") for o in objs]
if codes[:2] != [422, 422] or "download" not in objs[2].get("actions", {}):
    raise SystemExit("unexpected answer: %s" % objs)' "$O"

# Content that does not hash to the oid it is PUT under is refused and not kept.
random_file "$B" 4096
IMPOSTER=$(printf 'imposter' | sha256sum | cut -d' ' -f1)
[[ $(http PUT "$(lfs_url)/storage/$IMPOSTER" "$B" "$O") == 422 ]] || fail "a PUT with the wrong content was not refused with 422"
[[ ! -e $(store_object "$SIM_ROOT" "$IMPOSTER") ]] || fail "the sim kept content that does not match its oid"
assert_root_clean
pass "a PUT whose content does not hash to its oid gets 422 and leaves nothing behind"

BIG_OID=$(oid_of "$REPO/big.bin")
BIG_SIZE=${SIZES[big.bin]}
[[ $(http GET "$(lfs_url)/storage/$BIG_OID" - "$O" "Range: bytes=100-199") == 206 ]] || fail "Range request was not answered with 206"
grep -qx "content-range: bytes 100-199/$BIG_SIZE" "$O.headers" || { show "headers" "$O.headers"; fail "wrong Content-Range"; }
cmp -s "$O" <(tail -c +101 "$REPO/big.bin" | head -c 100) || fail "the 206 body is not bytes 100-199"
[[ $(http GET "$(lfs_url)/storage/$BIG_OID" - "$O" "Range: bytes=$((BIG_SIZE - 10))-") == 206 ]] || fail "open-ended Range was not answered with 206"
cmp -s "$O" <(tail -c 10 "$REPO/big.bin") || fail "the open-ended 206 body is not the last 10 bytes"
[[ $(http GET "$(lfs_url)/storage/$BIG_OID" - "$O" "Range: bytes=$BIG_SIZE-") == 416 ]] || fail "unsatisfiable Range was not answered with 416"
grep -qx "content-range: bytes \*/$BIG_SIZE" "$O.headers" || { show "headers" "$O.headers"; fail "416 without Content-Range: bytes */size"; }
pass "Range: 206 with the right Content-Range and bytes, 416 when unsatisfiable"

# hrefs_at <port>: the batch answer in $O points its actions at 127.0.0.1:<port>.
hrefs_at() {
  python3 -c '
import json, sys
objs = json.load(open(sys.argv[1]))["objects"]
hrefs = [a["href"] for o in objs for a in o.get("actions", {}).values()]
want = "http://127.0.0.1:%s/" % sys.argv[2]
if not hrefs or any(not h.startswith(want) for h in hrefs):
    raise SystemExit("hrefs %s, expected them at %s" % (hrefs, want))' "$O" "$1"
}
printf '{"operation":"download","objects":[{"oid":"%s","size":1024}]}' "$SMALL_OID" >"$B"
[[ $(http POST "$BATCH" "$B" "$O" "$LFS_JSON" "Host: 127.0.0.1:4242") == 200 ]] || { show "answer" "$O"; fail "batch with another Host was not answered with 200"; }
hrefs_at "$SIM_PORT" || fail "without --hrefs-follow-host the hrefs follow the Host header"

sim_healthy || fail "the sim stopped answering /health after the malformed requests"
stop_sim
pass "the sim still served after bad input and stopped cleanly on SIGTERM"

# With --hrefs-follow-host the hrefs take the Host header's port (a client
# behind a proxy keeps going through it), and the sim's own without one.
start_sim "" --hrefs-follow-host
BATCH="$(lfs_url)/objects/batch"
[[ $(http POST "$BATCH" "$B" "$O" "$LFS_JSON" "Host: 127.0.0.1:4242") == 200 ]] || { show "answer" "$O"; fail "batch was not answered with 200"; }
hrefs_at 4242 || fail "with --hrefs-follow-host the hrefs do not take the Host header's port"
[[ $(http POST "$BATCH" "$B" "$O" "$LFS_JSON" "Host: 127.0.0.1") == 200 ]] || { show "answer" "$O"; fail "batch was not answered with 200"; }
hrefs_at "$SIM_PORT" || fail "a Host without a port did not fall back to the sim's own port"
stop_sim
pass "--hrefs-follow-host points the hrefs at the Host header's port"

# ---- phase 3: flaky server ------------------------------------------------------
cd "$REPO"
random_file "$REPO/new1.bin" 200000
random_file "$REPO/new2.bin" 300000
git add -A
git commit -qm "more LFS files"
NEW1=$(oid_of "$REPO/new1.bin")
NEW2=$(oid_of "$REPO/new2.bin")
MID_OID=$(oid_of "$REPO/mid.bin")
SCENARIO="$E2E_ROOT/flaky.json"
cat >"$SCENARIO" <<EOF
{
  "rules": [
    {"match": {"endpoint": "upload", "oid": "$NEW1"}, "fault": {"status": 503}, "times": 1},
    {"match": {"endpoint": "upload", "oid": "$NEW2"}, "fault": {"reset_after_bytes": 65536}, "times": 1},
    {"match": {"endpoint": "verify"}, "fault": {"status": 500}, "times": 1},
    {"match": {"endpoint": "batch", "operation": "download"}, "fault": {"status": 429, "retry_after": "1"}, "times": 1},
    {"match": {"endpoint": "batch", "operation": "download"}, "fault": {"expired_actions": true}, "sequence": [false, true]},
    {"match": {"endpoint": "download", "oid": "$SMALL_OID"}, "fault": {"status": 500}, "times": 2},
    {"match": {"endpoint": "download", "oid": "$BIG_OID"}, "fault": {"reset_after_bytes": 1048576}, "times": 1},
    {"match": {"endpoint": "download", "oid": "$MID_OID"}, "fault": {"corrupt_byte_at": 1000}, "times": 1}
  ]
}
EOF
check_scenario "$SCENARIO"
start_sim "$SCENARIO" --seed 42
git config lfs.url "$(lfs_url)"
git push -q origin main >"$E2E_ROOT/push2.log" 2>&1 ||
  { show "git push" "$E2E_ROOT/push2.log"; show "sim log" "$SIM_LOG"; fail "git push through upload faults failed"; }
assert_stored "$SIM_ROOT" "$REPO/new1.bin"
assert_stored "$SIM_ROOT" "$REPO/new2.bin"
expect_stats "puts.$NEW1 == 2" "puts.$NEW2 == 2" "faults.reset_after_bytes == 1" "fault_statuses.503 == 1" \
  "fault_statuses.500 == 1"
pass "git push retried through a 503, a reset upload and a failed verify"

CLONE="$E2E_ROOT/clone2"
GIT_LFS_SKIP_SMUDGE=1 git clone -q "file://$E2E_ROOT/repo.git" "$CLONE" 2>"$E2E_ROOT/clone2.log" ||
  { show "git clone" "$E2E_ROOT/clone2.log"; fail "second git clone failed"; }
cd "$CLONE"
git config lfs.url "$(lfs_url)"
FILES=("${!SIZES[@]}" small-copy.bin new1.bin new2.bin)
# check_tree: every file is byte-identical to the original or still a
# pointer; prints how many are still pointers. Corrupt content fails.
check_tree() {
  local f pointers=0
  for f in "${FILES[@]}"; do
    if cmp -s "$REPO/$f" "$CLONE/$f"; then
      continue
    elif is_pointer "$CLONE/$f"; then
      pointers=$((pointers + 1))
    else
      fail "$f was checked out with content that differs from the original"
    fi
  done
  echo "$pointers"
}
attempt=0
while :; do
  attempt=$((attempt + 1))
  rc=0
  git lfs pull >"$E2E_ROOT/pull2.$attempt.log" 2>&1 || rc=$?
  left=$(check_tree)
  note "git lfs pull attempt $attempt: exit $rc, $left file(s) still pointers"
  [[ $rc -ne 0 || $left -ne 0 ]] || break
  ((attempt < 3)) || { show "git lfs pull" "$E2E_ROOT/pull2.$attempt.log"; fail "git lfs pull did not finish in 3 attempts"; }
done
git lfs fsck >"$E2E_ROOT/fsck.log" 2>&1 || { show "git lfs fsck" "$E2E_ROOT/fsck.log"; fail "git lfs fsck found corrupt objects"; }
pass "git lfs pull through the faults: everything byte-identical in $attempt attempt(s), never corrupt"

# 503 upload, 500 verify, 429 batch, two 500 GETs; big.bin's reset download
# must have been resumed with a Range request.
expect_stats "faults.status == 5" "fault_statuses.500 == 3" "fault_statuses.429 == 1" \
  "faults.retry_after == 1" "faults.reset_after_bytes == 2" "faults.expired_actions >= 1" \
  "faults.corrupt_byte_at == 1" "gets.$SMALL_OID >= 3" "events.range_requests >= 1"
pass "/stats counted every injected fault; git-lfs resumed the reset download with Range"
stop_sim
assert_root_clean
pass "sim stopped cleanly; its root holds only verified objects ($(e2e_elapsed))"
