# shellcheck shell=bash
# Helpers for the `ferry migrate` end-to-end tests (test_migrate*.sh,
# test_s3_migrate.sh). Source it after lib.sh and e2e_init.
#
#   make_objects DIR MANIFEST COUNT MIX    random objects in the folder layout
#   assert_objects DIR MANIFEST [exact]    each one there, sha256 == oid
#   run_migrate NAME LIMIT ARGS...         ferry migrate, bounded; MIG_RC
#   run_check NAME LIMIT ARGS...           ferry check, bounded; MIG_RC
#   assert_report FILE CHECK...            fields of a JSON report
#   assert_counts_add_up FILE OBJECTS BYTES  each listed object counted once
#   expect_findings NAME REPORT KIND:OID:SIZE...  what ferry check found
#
# A MANIFEST is a file of "oid size" lines, one per object.

# make_objects <dir> <manifest> <count> <mix>: <count> objects of random
# bytes stored at <dir>/<oid[0:2]>/<oid[2:4]>/<oid>, listed in <manifest>.
# <mix> "mixed": one of 0 B, three of 1 to 3 MiB, the rest 1 B to 64 KiB;
# "small": 100 B to 4 KiB each; "medium": 2 KiB to 256 KiB each; "large":
# one of 0 B, one of 33 MiB + 3 B (multipart above a 32MiB S3 threshold), the
# rest 1 B to 128 KiB.
make_objects() {
  python3 - "$@" <<'PY' || fail "could not create $3 objects in $1"
import hashlib, os, random, sys
root, manifest, count, mix = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
sizes = random.Random(count)
def size_of(i):
    if mix == "small":
        return sizes.randint(100, 4096)
    if mix == "medium":
        return sizes.randint(2048, 256 * 1024)
    if mix == "large":
        return [0, 33 * (1 << 20) + 3][i] if i < 2 else sizes.randint(1, 128 * 1024)
    if i == 0:
        return 0
    if i <= 3:
        return i * (1 << 20) + i * 7
    return sizes.randint(1, 64 * 1024)
with open(manifest, "w") as out:
    for i in range(count):
        data = os.urandom(size_of(i))
        oid = hashlib.sha256(data).hexdigest()
        folder = os.path.join(root, oid[:2], oid[2:4])
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, oid), "wb") as f:
            f.write(data)
        out.write("%s %d\n" % (oid, len(data)))
PY
  [[ $(wc -l <"$2") -eq $3 ]] || fail "the manifest $2 does not list $3 objects"
}

# shard_share <I> <N> <manifest>: "objects bytes" of the oids shard I of N
# takes (the first 8 hex digits of the oid modulo N).
shard_share() {
  python3 -c '
import sys
shard, count, objects, size = int(sys.argv[1]), int(sys.argv[2]), 0, 0
for line in open(sys.argv[3]):
    oid, bytes_ = line.split()
    if int(oid[:8], 16) % count == shard - 1:
        objects, size = objects + 1, size + int(bytes_)
print(objects, size)
' "$@"
}

# manifest_bytes <manifest>: the objects' total size.
manifest_bytes() {
  awk '{ n += $2 } END { print n + 0 }' "$1"
}

# object_path <dir> <oid>: where a folder store keeps an object.
object_path() {
  echo "$1/${2:0:2}/${2:2:2}/$2"
}

# assert_objects <dir> <manifest> [exact]: every object of the manifest is at
# its layout path in <dir> with its size and sha256 == oid. With "exact",
# <dir> holds nothing else (no other objects, no partial files).
assert_objects() {
  local out
  out=$(python3 - "$@" 2>&1 <<'PY'
import hashlib, os, sys
root, manifest = sys.argv[1], sys.argv[2]
exact = len(sys.argv) > 3 and sys.argv[3] == "exact"
want = {}
for line in open(manifest):
    oid, size = line.split()
    want[oid] = int(size)
bad = []
for oid, size in sorted(want.items()):
    path = os.path.join(root, oid[:2], oid[2:4], oid)
    try:
        data = open(path, "rb").read()
    except OSError as e:
        bad.append("%s: %s" % (oid, e.strerror))
        continue
    if len(data) != size:
        bad.append("%s has %d bytes, expected %d" % (oid, len(data), size))
    elif hashlib.sha256(data).hexdigest() != oid:
        bad.append("%s does not hash to its oid" % oid)
if exact:
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if name not in want or path != os.path.join(root, name[:2], name[2:4], name):
                bad.append("unexpected file %s" % path)
if bad:
    raise SystemExit("%d problem(s) in %s: %s" % (len(bad), root, "; ".join(bad[:10])))
print("%d objects" % len(want))
PY
  ) || fail "$out"
}

# assert_same_objects <dir-a> <dir-b> <manifest>: both folders hold every
# object of the manifest with the same bytes.
assert_same_objects() {
  local a=$1 b=$2 oid size
  while read -r oid size; do
    cmp -s "$(object_path "$a" "$oid")" "$(object_path "$b" "$oid")" ||
      fail "object $oid ($size B) in $b differs from the one in $a"
  done <"$3"
}

# corrupt_object <file>: changes one byte in the middle, keeping the size;
# keeps the original next to the test's other files as <file>.orig (in
# $E2E_ROOT/originals) so restore_object can put it back.
corrupt_object() {
  local file=$1 size keep
  size=$(stat -c %s "$file")
  ((size > 0)) || fail "cannot corrupt the empty object $file"
  keep="$E2E_ROOT/originals/$(basename "$file")"
  mkdir -p "$E2E_ROOT/originals"
  cp -p "$file" "$keep"
  python3 - "$file" <<'PY'
import os, sys
with open(sys.argv[1], "r+b") as f:
    size = os.fstat(f.fileno()).st_size
    f.seek(size // 2)
    byte = f.read(1)
    f.seek(size // 2)
    f.write(bytes([byte[0] ^ 0x5a]))
PY
  [[ $(stat -c %s "$file") -eq $size ]] || fail "corrupting $file changed its size"
  [[ $(oid_of "$file") != "$(basename "$file")" ]] || fail "corrupting $file left its hash unchanged"
}

# restore_object <file>: puts back what corrupt_object or a deletion took.
restore_object() {
  local keep
  keep="$E2E_ROOT/originals/$(basename "$1")"
  mkdir -p "$(dirname "$1")"
  cp -p "$keep" "$1"
  [[ $(oid_of "$1") == "$(basename "$1")" ]] || fail "restoring $1 did not give back its object"
}

# inode_list <dir>: "path inode mtime" of every file, sorted (to show that a
# run rewrote nothing).
inode_list() {
  find "$1" -type f -printf '%P %i %T@\n' | sort
}

# run_ferry <command> <name> <seconds> <args...>: `ferry <command> <args>`,
# killed after <seconds> so a hang fails the test; stdout in
# $E2E_ROOT/<name>.out, stderr in <name>.err. Sets MIG_RC, MIG_OUT, MIG_ERR,
# MIG_MS and MIG_COMMAND.
run_ferry() {
  local command=$1 name=$2 limit=$3 start
  shift 3
  MIG_COMMAND=$command
  MIG_OUT="$E2E_ROOT/$name.out"
  MIG_ERR="$E2E_ROOT/$name.err"
  start=$(date +%s%N)
  MIG_RC=0
  timeout --kill-after=10 "$limit" "$FERRY" "$command" "$@" >"$MIG_OUT" 2>"$MIG_ERR" || MIG_RC=$?
  # shellcheck disable=SC2034 # for the sourcing script
  MIG_MS=$((($(date +%s%N) - start) / 1000000))
  ((MIG_RC != 124 && MIG_RC != 137)) ||
    { show "ferry $command stderr" "$MIG_ERR"; fail "$name: ferry $command $* did not finish within ${limit}s"; }
}

# run_migrate <name> <seconds> <args...>: run_ferry migrate.
run_migrate() {
  run_ferry migrate "$@"
}

# run_check <name> <seconds> <args...>: run_ferry check (`ferry check`
# compares two stores; exit 0 match, 3 differ).
run_check() {
  run_ferry check "$@"
}

# expect_rc <name> <code>: the last run_migrate or run_check exited with <code>.
expect_rc() {
  [[ $MIG_RC -eq $2 ]] && return 0
  show "$1 stdout" "$MIG_OUT"
  show "$1 stderr" "$MIG_ERR"
  fail "$1: ferry ${MIG_COMMAND:-migrate} exited with $MIG_RC, expected $2"
}

# assert_report <file> <check>...: each check is "<path> <op> <value>" with a
# dotted path into the JSON report (copied.objects, outcome, failures.length),
# op == or >= or <=; values are numbers, true/false or strings.
assert_report() {
  local file=$1
  shift
  py_check "report $(basename "$file"): $*" '
import json, sys
doc = json.load(open(sys.argv[1]))
bad = []
for check in sys.argv[2:]:
    path, op, want = check.split(" ", 2)
    got = doc
    for part in path.split("."):
        got = len(got) if part == "length" else got[part]
    if isinstance(got, bool):
        want = want == "true"
    elif isinstance(got, (int, float)):
        want = int(want)
    ok = {"==": got == want, ">=": got >= want, "<=": got <= want}[op]
    if not ok:
        bad.append("%s is %r, expected %s %r" % (path, got, op, want))
if bad:
    raise SystemExit("; ".join(bad) + "\n" + json.dumps(doc, indent=1)[:3000])
' "$file" "$@"
}

# assert_counts_add_up <report> <objects> <bytes>: a migration report counts
# each of the <objects> listed objects (<bytes> in all) in exactly one of
# copied, present, verified, failed, corrupt and pending, and not_retried is
# a part of failed + corrupt.
assert_counts_add_up() {
  py_check "report $(basename "$1"): copied + present + verified + failed + corrupt + pending == $2 objects, $3 bytes" '
import json, sys
doc = json.load(open(sys.argv[1]))
keys = ("copied", "present", "verified", "failed", "corrupt", "pending")
objects = sum(doc[k]["objects"] for k in keys)
size = sum(doc[k]["bytes"] for k in keys)
if (objects, size) != (int(sys.argv[2]), int(sys.argv[3])):
    raise SystemExit("the counts add up to %d objects, %d bytes: %s"
                     % (objects, size, {k: doc[k] for k in keys}))
stale = doc["not_retried"]
if stale["objects"] > doc["failed"]["objects"] + doc["corrupt"]["objects"]:
    raise SystemExit("not_retried %s is more than failed + corrupt" % stale)
' "$@"
}

# expect_findings <name> <report> <kind:oid:size[:destination size]>...: the
# last run_check's stdout has exactly these difference lines ('<kind> <oid> <size>[
# destination <size>][: detail]'), each once, then a summary and 'the stores
# differ' (or 'match' when none are given) as its last line; the report's
# findings are the same.
expect_findings() {
  local name=$1 report=$2
  shift 2
  py_check "$name: the difference lines and the report's findings are exactly: ${*:-none}" '
import collections, json, re, sys
out, report = sys.argv[1], sys.argv[2]
want = collections.Counter()
for spec in sys.argv[3:]:
    parts = spec.split(":")
    want[(parts[0], parts[1], int(parts[2]), int(parts[3]) if len(parts) > 3 else None)] += 1
kinds = "missing|extra|size_differs|content_differs|corrupt_at_source|unreadable"
line_re = re.compile(r"^(%s) ([0-9a-f]{64}) (\d+)(?: destination (\d+))?(?:: (.+))?$" % kinds)
lines = open(out).read().splitlines()
seen = collections.Counter()
for line in lines:
    if re.match(r"^(%s) " % kinds, line):
        m = line_re.match(line)
        if not m:
            raise SystemExit("malformed difference line: %r" % line)
        kind, oid, size, dsize, _ = m.groups()
        if kind in ("size_differs",) and dsize is None:
            raise SystemExit("a size_differs line without the destination size: %r" % line)
        if kind != "size_differs":
            dsize = None
        seen[(kind, oid, int(size), int(dsize) if dsize else None)] += 1
if seen != want:
    raise SystemExit("stdout has %s, expected %s" % (sorted(seen.items()), sorted(want.items())))
verdict = "the stores differ" if want else "the stores match"
if not lines or lines[-1] != verdict:
    raise SystemExit("the last line is %r, expected %r" % (lines[-1] if lines else None, verdict))
if len([l for l in lines if not line_re.match(l)]) != 2:
    raise SystemExit("expected one summary line and the verdict besides the differences: %r" % lines)
doc = json.load(open(report))
got = collections.Counter()
for f in doc["findings"]:
    dsize = f.get("destination_size") if f["kind"] == "size_differs" else None
    got[(f["kind"], f["oid"], f["size"], dsize)] += 1
if got != want:
    raise SystemExit("the report has %s, expected %s" % (sorted(got.items()), sorted(want.items())))
if doc["findings_left_out"] != 0:
    raise SystemExit("findings_left_out is %r" % doc["findings_left_out"])
' "$MIG_OUT" "$report" "$@"
}

# journal_of <stderr-file>: the journal directory a run named on stderr.
journal_of() {
  sed -n 's/^ferry migrate: .* (journal \(.*\))$/\1/p' "$1" | head -n 1
}

# sim_puts <out-file>: the sim's PUTs per oid as "oid count" lines (sorted).
sim_puts() {
  sim_stats "$1.json"
  python3 -c '
import json, sys
for oid, n in sorted(json.load(open(sys.argv[1]))["puts"].items()):
    print(oid, n)' "$1.json" >"$1"
}
