#!/usr/bin/env bash
# Drives 'ferry agent' directly (tests/e2e/agent_driver.py) with hostile and
# malformed requests: each gets the exact error reply, nothing lands in the
# store, and the agent keeps serving valid requests afterwards. Also covers
# the zero-size object, which git-lfs 3.3.0 never sends, at protocol level.
#
#   bash tests/e2e/test_hostile_input.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"

STORE="$E2E_ROOT/store"
REPO="$E2E_ROOT/repo"
EMPTY_OID=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
DRIVER="$E2E_DIR/agent_driver.py"

new_repo repo
install_ferry "$REPO" "$STORE"

# Valid sources: one per "does the agent still serve?" check, so each proves a
# fresh upload. Some live in the working tree, some in git-lfs's object dir.
GOOD=()
for i in $(seq 1 17); do
  if ((i % 2)); then
    f="$REPO/good/file-$i.bin"
    random_file "$f" $((1000 + i))
  else
    random_file "$E2E_ROOT/staging" $((2000 + i))
    oid=$(oid_of "$E2E_ROOT/staging")
    f="$REPO/.git/lfs/objects/${oid:0:2}/${oid:2:2}/$oid"
    mkdir -p "$(dirname "$f")"
    mv "$E2E_ROOT/staging" "$f"
  fi
  GOOD+=("$f")
done
: >"$REPO/empty.bin"
# wrong size: 100 bytes announced as 99 and as 101
random_file "$REPO/hundred.bin" 100
HUNDRED_OID=$(oid_of "$REPO/hundred.bin")
# content that does not match the oid it is announced under
random_file "$REPO/imposter.bin" 4096
random_file "$E2E_ROOT/claimed.bin" 4096
CLAIMED_OID=$(oid_of "$E2E_ROOT/claimed.bin")
# a symlink inside the working tree pointing outside it
ln -s /etc/passwd "$REPO/link-to-passwd"
# an object nobody uploaded
ABSENT_OID=$(printf 'absent' | sha256sum | cut -d' ' -f1)
PASSWD_OID=$(oid_of /etc/passwd)

next_good=0
# good_step <label>: the next valid upload, as one script line.
good_step() {
  local f=${GOOD[$next_good]}
  next_good=$((next_good + 1))
  printf '{"label":"%s","json":{"event":"upload","oid":"%s","size":%d,"path":"%s","action":null},"meta":{"oid":"%s","size":%d}}\n' \
    "$1" "$(oid_of "$f")" "$(stat -c %s "$f")" "$f" "$(oid_of "$f")" "$(stat -c %s "$f")"
}
hex_of() { # <text>: its bytes in hex, for a driver step of raw bytes
  printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'
}
upload_line() { # <label> <oid> <size> <path>
  printf '{"label":"%s","json":{"event":"upload","oid":"%s","size":%s,"path":"%s","action":null}}\n' "$@"
}
download_line() { # <label> <oid> <size>
  printf '{"label":"%s","json":{"event":"download","oid":"%s","size":%s,"action":null}}\n' "$@"
}

SCRIPT="$E2E_ROOT/upload-session.jsonl"
{
  upload_line before-init "$(oid_of "${GOOD[0]}")" "$(stat -c %s "${GOOD[0]}")" "${GOOD[0]}"
  echo '{"label":"init","json":{"event":"init","operation":"upload","remote":"origin","concurrent":false,"concurrenttransfers":1}}'
  good_step good-after-init
  upload_line outside "$PASSWD_OID" "$(stat -c %s /etc/passwd)" /etc/passwd
  good_step good-after-outside
  upload_line traversal-path "$PASSWD_OID" "$(stat -c %s /etc/passwd)" "$REPO/../../../../../../etc/passwd"
  good_step good-after-traversal-path
  upload_line symlink-out "$PASSWD_OID" "$(stat -c %s /etc/passwd)" "$REPO/link-to-passwd"
  good_step good-after-symlink
  upload_line bad-oid "../../../../etc/passwd" 100 "$REPO/hundred.bin"
  good_step good-after-bad-oid
  upload_line negative-size "$HUNDRED_OID" -1 "$REPO/hundred.bin"
  good_step good-after-negative-size
  echo '{"label":"not-json","raw":"this is not json {"}'
  good_step good-after-not-json
  echo '{"label":"huge-line","fill":"x","count":10000000}'
  good_step good-after-huge-line
  # {"event":"upl<NUL>oad","oid":"ab"}
  echo '{"label":"nul-byte","hex":"'"$(hex_of '{"event":"upl')00$(hex_of 'oad","oid":"ab"}')"'"}'
  good_step good-after-nul-byte
  # {"event":"upload","oid":"<FF FE>","size":1,"path":"x"}
  echo '{"label":"invalid-utf8","hex":"'"$(hex_of '{"event":"upload","oid":"')fffe$(hex_of '","size":1,"path":"x"}')"'"}'
  good_step good-after-invalid-utf8
  echo '{"label":"unknown-event","json":{"event":"self-destruct","oid":"'"$HUNDRED_OID"'"}}'
  good_step good-after-unknown-event
  upload_line size-too-small "$HUNDRED_OID" 99 "$REPO/hundred.bin"
  upload_line size-too-large "$HUNDRED_OID" 101 "$REPO/hundred.bin"
  good_step good-after-wrong-size
  upload_line wrong-content "$CLAIMED_OID" 4096 "$REPO/imposter.bin"
  good_step good-after-wrong-content
  upload_line zero-size "$EMPTY_OID" 0 "$REPO/empty.bin"
  good_step good-after-zero-size
  # A key given twice: last-wins would make this upload a terminate.
  echo '{"label":"repeated-event","raw":"{\"event\":\"upload\",\"oid\":\"'"$HUNDRED_OID"'\",\"size\":100,\"path\":\"'"$REPO"'/hundred.bin\",\"action\":null,\"event\":\"terminate\"}"}'
  good_step good-after-repeated-event
  echo '{"label":"second-init","json":{"event":"init","operation":"download","remote":"origin"}}'
  good_step good-after-second-init
  download_line download-in-upload "$HUNDRED_OID" 100
  good_step good-after-download-in-upload
  echo '{"label":"terminate","json":{"event":"terminate"},"exit":true}'
} >"$SCRIPT"

run_driver() { # <script> <replies>
  python3 "$DRIVER" --ferry "$FERRY" --cwd "$REPO" --timeout 20 --stderr "$2.stderr" <"$1" >"$2" ||
    { show "driver output" "$2"; fail "agent_driver.py failed"; }
}
REPLIES="$E2E_ROOT/upload-replies.jsonl"
run_driver "$SCRIPT" "$REPLIES"
note "upload session done ($(e2e_elapsed))"

# expect <replies> <label> <description> <python expression>: the expression
# sees `r` (the step record), `reply` (the agent's reply), `meta` (the step's
# meta), `env`, and the helpers complete_ok / complete_error / bare_error.
expect() {
  local file=$1 label=$2 what=$3 cond=$4
  local out
  out=$(python3 -c '
import json, os, sys
path, label, cond = sys.argv[1], sys.argv[2], sys.argv[3]
recs = [json.loads(l) for l in open(path)]
matches = [r for r in recs if r.get("label") == label]
if len(matches) != 1:
    raise SystemExit("no single reply recorded for step %r (conversation stopped early?): %s"
                     % (label, [r.get("label") for r in recs]))
r = matches[0]
reply = r.get("reply")
meta = r.get("meta")
env = os.environ

def complete_ok(oid):
    return reply == {"event": "complete", "oid": oid}

def complete_error(oid, code, *words):
    e = reply.get("error") or {}
    return (set(reply) == {"event", "oid", "error"} and reply["event"] == "complete"
            and reply["oid"] == oid and set(e) == {"code", "message"} and e["code"] == code
            and all(w in e["message"] for w in words))

def bare_error(code, *words):
    e = reply.get("error") or {}
    return (set(reply) == {"error"} and set(e) == {"code", "message"} and e["code"] == code
            and isinstance(e["message"], str) and all(w in e["message"] for w in words))

if r.get("timed_out"):
    raise SystemExit("no reply within the timeout: %s" % json.dumps(r))
try:
    ok = eval("(" + cond + ")")
except Exception as e:
    raise SystemExit("condition raised %r on reply %s" % (e, r.get("raw") or json.dumps(r)))
if not ok:
    raise SystemExit("unexpected reply: %s" % (r.get("raw") or json.dumps(r)))
' "$file" "$label" "$cond" 2>&1) || fail "$label: $what: $out"
  pass "$label: $what"
}
expect_py() { expect "$@"; }

export EMPTY_OID HUNDRED_OID CLAIMED_OID PASSWD_OID ABSENT_OID
expect_py "$REPLIES" before-init "a transfer before init is refused with 400" \
  "complete_error('$(oid_of "${GOOD[0]}")', 400, 'init')"
expect_py "$REPLIES" init "init is accepted with {}" "reply == {} and r['raw'] == '{}'"
expect_py "$REPLIES" outside "upload of /etc/passwd is refused: 400 'outside the repository'" \
  "complete_error(env['PASSWD_OID'], 400, 'outside the repository')"
expect_py "$REPLIES" traversal-path "upload via ../ out of the repository is refused with 400" \
  "complete_error(env['PASSWD_OID'], 400, 'outside the repository')"
expect_py "$REPLIES" symlink-out "upload through a symlink pointing outside is refused with 400" \
  "complete_error(env['PASSWD_OID'], 400, 'outside the repository')"
expect_py "$REPLIES" bad-oid "oid '../../../../etc/passwd' is refused with a bare 400 error" \
  "bare_error(400, 'oid')"
expect_py "$REPLIES" negative-size "a negative size is refused with 400 for that oid" \
  "complete_error(env['HUNDRED_OID'], 400, 'size')"
expect_py "$REPLIES" not-json "a non-JSON line gets {\"error\":{\"code\":400,...}}" \
  "bare_error(400, 'JSON')"
expect_py "$REPLIES" huge-line "a 10 MB line gets {\"error\":{\"code\":413,...}}" \
  "bare_error(413)"
expect_py "$REPLIES" nul-byte "a line with a NUL byte gets a 400 error saying so" \
  "bare_error(400, 'NUL byte')"
expect_py "$REPLIES" invalid-utf8 "a line that is not UTF-8 gets a 400 error saying so" \
  "bare_error(400, 'not valid UTF-8')"
expect_py "$REPLIES" unknown-event "an unknown event gets a 400 error naming it" \
  "bare_error(400, 'self-destruct')"
expect_py "$REPLIES" size-too-small "announcing 99 bytes for a 100-byte file is refused with 409" \
  "complete_error(env['HUNDRED_OID'], 409, 'nothing was stored')"
expect_py "$REPLIES" size-too-large "announcing 101 bytes for a 100-byte file is refused with 409" \
  "complete_error(env['HUNDRED_OID'], 409, 'nothing was stored')"
expect_py "$REPLIES" wrong-content "content that does not hash to the oid is refused with 409" \
  "complete_error(env['CLAIMED_OID'], 409, 'does not match')"
expect_py "$REPLIES" zero-size "the zero-size object uploads" "complete_ok(env['EMPTY_OID'])"
expect_py "$REPLIES" repeated-event "a line naming 'event' twice is refused with 400, not read as terminate" \
  "bare_error(400, \"'event' appears twice\")"
expect_py "$REPLIES" second-init "a second init is refused with 400" \
  "bare_error(400, 'init was already received')"
expect_py "$REPLIES" download-in-upload "a download in an upload session is refused with 400 for that oid" \
  "complete_error(env['HUNDRED_OID'], 400, 'initialised for upload')"
for label in $(python3 -c 'import json,sys; [print(json.loads(l)["label"]) for l in open(sys.argv[1])]' "$REPLIES" | grep '^good-'); do
  expect_py "$REPLIES" "$label" "a valid upload still completes" \
    "complete_ok(meta['oid']) and r['progress'] and r['progress'][-1]['bytesSoFar'] == meta['size']
     and all(p['oid'] == meta['oid'] for p in r['progress'])
     and sum(p['bytesSinceLast'] for p in r['progress']) == meta['size']"
done
expect "$REPLIES" "<exit>" "terminate: the agent exits with status 0 within 5 s, printing nothing more" \
  "r['exit_code'] == 0 and not r['timed_out'] and r['elapsed_ms'] < 5000 and r['extra_lines'] == []"

# Every valid upload, and only those, reached the store, intact.
for f in "${GOOD[@]}"; do assert_stored "$STORE" "$f"; done
pass "all ${#GOOD[@]} valid uploads are in the store and verified"
EMPTY_OBJ=$(store_object "$STORE" "$EMPTY_OID")
[[ -f $EMPTY_OBJ && ! -s $EMPTY_OBJ ]] || fail "the zero-size object is not stored as an empty file at $EMPTY_OBJ"
pass "the zero-size object is stored as an empty file"
for oid in "$HUNDRED_OID" "$CLAIMED_OID" "$PASSWD_OID"; do
  [[ ! -e $(store_object "$STORE" "$oid") ]] || fail "a refused upload stored $oid"
done
assert_no_partials "$STORE"
python3 - "$STORE" "$EMPTY_OID" "${GOOD[@]}" <<'EOF' || fail "the store holds unexpected files (see above)"
import hashlib, os, sys
store, empty, goods = sys.argv[1], sys.argv[2], sys.argv[3:]
want = {empty} | {hashlib.sha256(open(g, "rb").read()).hexdigest() for g in goods}
have = set()
for root, dirs, files in os.walk(store):
    for name in files:
        have.add(os.path.relpath(os.path.join(root, name), store))
expected = {"%s/%s/%s" % (o[:2], o[2:4], o) for o in want}
if have != expected:
    print("unexpected:", sorted(have - expected), "missing:", sorted(expected - have))
    sys.exit(1)
EOF
pass "refused uploads stored nothing: the store holds exactly the accepted objects"
[[ $(oid_of /etc/passwd) == "$PASSWD_OID" ]] || fail "/etc/passwd changed during the session"
[[ ! -e $E2E_ROOT/etc && ! -e $E2E_ROOT/passwd ]] || fail "a path outside the store was created"
pass "nothing outside the store was written (/etc/passwd unchanged)"

# Second session, as git-lfs runs it for a pull: downloads.
DOWN_GOOD=${GOOD[0]}
DOWN_OID=$(oid_of "$DOWN_GOOD")
SCRIPT="$E2E_ROOT/download-session.jsonl"
{
  echo '{"label":"init","json":{"event":"init","operation":"download","remote":"origin","concurrent":false,"concurrenttransfers":1}}'
  download_line zero-size "$EMPTY_OID" 0
  download_line absent "$ABSENT_OID" 5
  download_line refused-earlier "$CLAIMED_OID" 4096
  download_line good "$DOWN_OID" "$(stat -c %s "$DOWN_GOOD")"
  download_line wrong-size "$DOWN_OID" "$(($(stat -c %s "$DOWN_GOOD") + 1))"
  download_line bad-oid "../../../../etc/passwd" 5
  echo '{"label":"terminate","json":{"event":"terminate"},"exit":true}'
} >"$SCRIPT"
REPLIES="$E2E_ROOT/download-replies.jsonl"
run_driver "$SCRIPT" "$REPLIES"
export DOWN_OID DOWNLOAD_DIR="$REPO/.git/lfs/tmp/ferry"
expect_py "$REPLIES" init "download init is accepted with {}" "reply == {}"
expect_py "$REPLIES" zero-size "the zero-size object downloads to an empty file" \
  "set(reply) == {'event', 'oid', 'path'} and reply['event'] == 'complete' and reply['oid'] == env['EMPTY_OID']
   and r['path_info']['exists'] and r['path_info']['size'] == 0 and r['path_info']['sha256'] == env['EMPTY_OID']
   and reply['path'].startswith(env['DOWNLOAD_DIR'] + '/')"
expect_py "$REPLIES" absent "an object missing from the store gets 404" \
  "complete_error(env['ABSENT_OID'], 404)"
expect_py "$REPLIES" refused-earlier "the object refused at upload is absent: 404" \
  "complete_error(env['CLAIMED_OID'], 404)"
expect_py "$REPLIES" good "a stored object downloads to a verified file in .git/lfs/tmp/ferry" \
  "set(reply) == {'event', 'oid', 'path'} and reply['oid'] == env['DOWN_OID'] and r['path_info']['exists']
   and r['path_info']['sha256'] == env['DOWN_OID'] and reply['path'].startswith(env['DOWNLOAD_DIR'] + '/')
   and r['progress'] and r['progress'][-1]['bytesSoFar'] == r['path_info']['size']"
expect_py "$REPLIES" wrong-size "a download announcing the wrong size gets 409" \
  "complete_error(env['DOWN_OID'], 409)"
expect_py "$REPLIES" bad-oid "a download with a path as oid gets a bare 400" "bare_error(400, 'oid')"
expect "$REPLIES" "<exit>" "terminate: the agent exits with status 0 within 5 s" \
  "r['exit_code'] == 0 and not r['timed_out'] and r['elapsed_ms'] < 5000 and r['extra_lines'] == []"
python3 -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; print([x for x in r if x["label"]=="good"][0]["reply"]["path"])' "$REPLIES" >"$E2E_ROOT/good-path"
cmp "$DOWN_GOOD" "$(cat "$E2E_ROOT/good-path")" || fail "the downloaded file differs from the uploaded one"
pass "the downloaded file is byte-identical to the uploaded one"

# Closing stdin without terminate (git-lfs crashing) must also end the agent.
printf '{"label":"init","json":{"event":"init","operation":"upload","remote":"origin"}}\n' >"$E2E_ROOT/eof.jsonl"
run_driver "$E2E_ROOT/eof.jsonl" "$E2E_ROOT/eof-replies.jsonl"
expect "$E2E_ROOT/eof-replies.jsonl" "<exit>" "end of input without terminate: the agent exits within 5 s" \
  "r['exit_code'] is not None and not r['timed_out'] and r['elapsed_ms'] < 5000"

# 1,000 requests written at once, none of the replies read until all are
# written (a client that reads late): the agent keeps reading its input while
# its replies wait, so the writer is never blocked, and every request is
# answered.
BURST_OID=$(oid_of "${GOOD[0]}")
py_check "1,000 uploads written before any reply is read: all written at once, all complete" '
import json, subprocess, sys, threading
ferry, repo, oid, path = sys.argv[1:5]
size = __import__("os").path.getsize(path)
lines = [{"event": "init", "operation": "upload", "remote": "origin"}]
lines += [{"event": "upload", "oid": oid, "size": size, "path": path, "action": None}] * 1000
lines.append({"event": "terminate"})
data = "".join(json.dumps(l) + "\n" for l in lines).encode()
agent = subprocess.Popen([ferry, "agent"], cwd=repo, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
def write():
    agent.stdin.write(data)
    agent.stdin.close()
writer = threading.Thread(target=write)
writer.start()
writer.join(timeout=30)
if writer.is_alive():
    agent.kill()
    raise SystemExit("the agent stopped reading: %d bytes of requests not taken in 30 s" % len(data))
replies = [json.loads(l) for l in agent.stdout.read().decode().splitlines()]
code = agent.wait(timeout=30)
done = [r for r in replies if r.get("event") == "complete"]
failed = [r for r in done if "error" in r]
if code != 0 or len(done) != 1000 or failed:
    raise SystemExit("exit %s, %d completes, %d failed: %s" % (code, len(done), len(failed), failed[:1]))
print("1000 completes, exit 0")' "$FERRY" "$REPO" "$BURST_OID" "${GOOD[0]}"

# Input closed in the middle of an upload (git-lfs killed): the agent ends
# within 5 s and the store holds the object whole or not at all.
random_file "$REPO/large.bin" $((96 << 20))
LARGE_OID=$(oid_of "$REPO/large.bin")
py_check "input closed during an upload: the agent exits within 5 s" '
import json, subprocess, sys, time
ferry, repo, oid, path = sys.argv[1:5]
size = __import__("os").path.getsize(path)
agent = subprocess.Popen([ferry, "agent"], cwd=repo, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
for request in ({"event": "init", "operation": "upload", "remote": "origin"},
                {"event": "upload", "oid": oid, "size": size, "path": path, "action": None}):
    agent.stdin.write((json.dumps(request) + "\n").encode())
agent.stdin.flush()
if agent.stdout.readline().strip() != b"{}":
    raise SystemExit("init was not accepted")
first = json.loads(agent.stdout.readline())
if first.get("event") != "progress":
    raise SystemExit("expected progress before the upload ends, got %s" % first)
closed = time.monotonic()
agent.stdin.close()
agent.stdout.read()
code = agent.wait(timeout=30)
elapsed = time.monotonic() - closed
if elapsed > 5:
    raise SystemExit("the agent took %.1f s to exit after its input closed" % elapsed)
print("exit %s, %.0f ms after the input closed" % (code, elapsed * 1000))' "$FERRY" "$REPO" "$LARGE_OID" "$REPO/large.bin"
if [[ -e $(store_object "$STORE" "$LARGE_OID") ]]; then
  assert_stored "$STORE" "$REPO/large.bin"
  pass "the interrupted upload is in the store whole"
else
  pass "the interrupted upload left no object in the store"
fi
