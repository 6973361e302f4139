#!/usr/bin/env bash
# ferry install / uninstall write and remove exactly the git config git-lfs
# needs; bad input fails clearly and writes nothing; the command-line help
# works; and a broken store setting surfaces through git-lfs with its reason.
#
#   bash tests/e2e/test_install.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"

REPO="$E2E_ROOT/repo"
STORE="$E2E_ROOT/store"
FERRY_REAL=$(readlink -f "$FERRY")
KEYS=(lfs.standalonetransferagent lfs.customtransfer.ferry.path lfs.customtransfer.ferry.args
  ferry.store)
# Left unset, so that git-lfs runs its default number of agents at once.
CONCURRENT=lfs.customtransfer.ferry.concurrent

# config_dump <scope-flag> <out>: git config --list for one scope, sorted.
config_dump() {
  (cd "${3:-$REPO}" && git config "$1" --list 2>/dev/null | LC_ALL=C sort) >"$2" || : >"$2"
}

# expect_keys <scope-flag> <store-url>: the four keys with their values, and
# no concurrent setting.
expect_keys() {
  local scope=$1 url=$2
  local -A want=(
    [lfs.standalonetransferagent]=ferry
    [lfs.customtransfer.ferry.path]=$FERRY_REAL
    [lfs.customtransfer.ferry.args]=agent
    [ferry.store]=$url
  )
  local key got
  for key in "${KEYS[@]}"; do
    got=$(cd "$REPO" && git config "$scope" --get "$key") || fail "$key is not set ($scope)"
    [[ $got == "${want[$key]}" ]] || fail "$key is '$got', expected '${want[$key]}' ($scope)"
  done
  if got=$(cd "$REPO" && git config "$scope" --get "$CONCURRENT"); then
    fail "$CONCURRENT is '$got' ($scope): git-lfs would not run its agents at once"
  fi
}

# expect_no_keys <scope-flag>
expect_no_keys() {
  local key
  for key in "${KEYS[@]}"; do
    if (cd "$REPO" && git config "$1" --get "$key" >/dev/null); then
      fail "$key is still set ($1)"
    fi
  done
}

new_repo repo

# ---- the command line ------------------------------------------------------------
out=$("$FERRY" --version) || fail "ferry --version failed"
[[ $out =~ ^ferry\ [0-9]+\.[0-9]+\.[0-9]+ ]] || fail "ferry --version printed '$out'"
pass "ferry --version prints '$out'"
out=$("$FERRY" --help) || fail "ferry --help failed"
for word in agent install uninstall status --version; do
  grep -q -- "$word" <<<"$out" || fail "ferry --help does not mention '$word': $out"
done
pass "ferry --help lists agent, install, uninstall, status"
declare -A SUB_HELP=(
  [agent]="--store --journal --max-attempts --log-level --log-file"
  [install]="--store --global"
  [uninstall]="--global"
  [status]="--json --limit --journal"
)
for sub in "${!SUB_HELP[@]}"; do
  out=$("$FERRY" "$sub" --help) || fail "ferry $sub --help failed"
  for word in ${SUB_HELP[$sub]}; do
    grep -q -- "$word" <<<"$out" || fail "ferry $sub --help does not mention $word: $out"
  done
  pass "ferry $sub --help documents ${SUB_HELP[$sub]}"
done
rc=0
"$FERRY" >"$E2E_ROOT/noargs.out" 2>&1 || rc=$?
[[ $rc -ne 0 && -s $E2E_ROOT/noargs.out ]] || fail "ferry without a command exited $rc with output '$(cat "$E2E_ROOT/noargs.out")'"
grep -q "install" "$E2E_ROOT/noargs.out" || fail "ferry without a command does not list the commands"
pass "ferry without a command fails (exit $rc) and lists the commands"
rc=0
"$FERRY" frobnicate >"$E2E_ROOT/bogus.out" 2>&1 || rc=$?
[[ $rc -ne 0 ]] && grep -q "frobnicate" "$E2E_ROOT/bogus.out" ||
  fail "ferry frobnicate exited $rc without naming the unknown command: '$(cat "$E2E_ROOT/bogus.out")'"
pass "ferry with an unknown command fails (exit $rc) and names it"
rc=0
(cd "$REPO" && "$FERRY" install) >"$E2E_ROOT/nostore.out" 2>&1 || rc=$?
[[ $rc -ne 0 ]] && grep -q -- "--store" "$E2E_ROOT/nostore.out" || fail "ferry install without --store: exit $rc, '$(cat "$E2E_ROOT/nostore.out")'"
expect_no_keys --local
pass "ferry install without --store fails, naming --store, and writes nothing"

# ---- install in a repository -------------------------------------------------------
config_dump --local "$E2E_ROOT/local-before"
config_dump --global "$E2E_ROOT/global-before"
(cd "$REPO" && "$FERRY" install --store "file://$STORE") >"$E2E_ROOT/install.out" 2>&1 ||
  { show "ferry install" "$E2E_ROOT/install.out"; fail "ferry install failed"; }
grep -qF "file://$STORE" "$E2E_ROOT/install.out" || fail "ferry install does not confirm the store: $(cat "$E2E_ROOT/install.out")"
expect_keys --local "file://$STORE"
pass "install set the four keys with the expected values, and no $CONCURRENT"
config_dump --local "$E2E_ROOT/local-after"
added=$(comm -13 "$E2E_ROOT/local-before" "$E2E_ROOT/local-after")
removed=$(comm -23 "$E2E_ROOT/local-before" "$E2E_ROOT/local-after")
expected=$(printf '%s\n' "lfs.standalonetransferagent=ferry" "lfs.customtransfer.ferry.path=$FERRY_REAL" \
  "lfs.customtransfer.ferry.args=agent" "ferry.store=file://$STORE" | LC_ALL=C sort)
[[ $added == "$expected" ]] || fail "install added other entries than expected:
$added
expected:
$expected"
[[ -z $removed ]] || fail "install removed or changed entries: $removed"
pass "install added exactly those four entries and changed nothing else"
config_dump --global "$E2E_ROOT/global-after"
cmp -s "$E2E_ROOT/global-before" "$E2E_ROOT/global-after" || fail "a repository install changed the global config"
pass "a repository install leaves the global config alone"
[[ -d $STORE ]] || fail "install did not create the store folder $STORE"
pass "install created the store folder"
# Running it again is harmless and keeps one value per key.
(cd "$REPO" && "$FERRY" install --store "file://$STORE") >/dev/null 2>&1 || fail "a second ferry install failed"
for key in "${KEYS[@]}"; do
  n=$(cd "$REPO" && git config --local --get-all "$key" | wc -l)
  [[ $n -eq 1 ]] || fail "after a second install $key has $n values"
done
pass "installing twice keeps exactly one value per key"

# Installing with another store points the repository there, and back (the
# last step of rolling back a migration, docs/operations.md).
(cd "$REPO" && "$FERRY" install --store "file://$E2E_ROOT/other-store") >/dev/null 2>&1 ||
  fail "ferry install with another store failed"
expect_keys --local "file://$E2E_ROOT/other-store"
(cd "$REPO" && "$FERRY" install --store "file://$STORE") >/dev/null 2>&1 || fail "ferry install back failed"
expect_keys --local "file://$STORE"
pass "installing with another store replaces ferry.store, and installing again restores it"

# ---- bad store URLs write nothing ------------------------------------------------
new_repo fresh
for url in "relative/store" "file://relative/store" "ftp://example.invalid/store" "" "file://"; do
  rc=0
  (cd "$E2E_ROOT/fresh" && "$FERRY" install --store "$url") >"$E2E_ROOT/bad.out" 2>&1 || rc=$?
  [[ $rc -ne 0 ]] || fail "ferry install --store '$url' succeeded"
  grep -qiE "absolute|unsupported|relative|no store|store" "$E2E_ROOT/bad.out" ||
    fail "ferry install --store '$url' gave no clear reason: $(cat "$E2E_ROOT/bad.out")"
  for key in "${KEYS[@]}"; do
    if (cd "$E2E_ROOT/fresh" && git config --get "$key" >/dev/null); then
      fail "ferry install --store '$url' failed but wrote $key"
    fi
  done
  [[ ! -e $E2E_ROOT/fresh/relative ]] || fail "ferry install --store '$url' created a relative folder"
  pass "install --store '$url' fails (exit $rc: $(head -n 1 "$E2E_ROOT/bad.out")) and writes nothing"
done

# ---- outside a repository ------------------------------------------------------------
mkdir -p "$E2E_ROOT/not-a-repo"
rc=0
(cd "$E2E_ROOT/not-a-repo" && "$FERRY" install --store "file://$E2E_ROOT/nowhere") >"$E2E_ROOT/outside.out" 2>&1 || rc=$?
[[ $rc -ne 0 ]] || fail "install outside a repository without --global succeeded"
grep -qi "repository" "$E2E_ROOT/outside.out" && grep -q -- "--global" "$E2E_ROOT/outside.out" ||
  fail "install outside a repository does not explain itself: $(cat "$E2E_ROOT/outside.out")"
[[ ! -e $E2E_ROOT/nowhere ]] || fail "install outside a repository created the store folder anyway"
config_dump --global "$E2E_ROOT/global-after2"
cmp -s "$E2E_ROOT/global-before" "$E2E_ROOT/global-after2" || fail "install outside a repository changed the global config"
pass "install outside a repository fails (exit $rc), names --global, writes nothing"

# ---- a broken store setting surfaces through git-lfs ----------------------------------
random_file "$REPO/data.bin" 3000
(cd "$REPO" && git add data.bin && git commit -qm data) || fail "commit failed"
check_broken_store() { # <value> <words expected in git's output>
  local value=$1 words=$2 rc=0
  (cd "$REPO" && git config ferry.store "$value")
  (cd "$REPO" && git push origin main) >"$E2E_ROOT/broken.out" 2>&1 || rc=$?
  [[ $rc -ne 0 ]] || { show "git push" "$E2E_ROOT/broken.out"; fail "git push succeeded with ferry.store='$value'"; }
  grep -qF "$words" "$E2E_ROOT/broken.out" ||
    { show "git push" "$E2E_ROOT/broken.out"; fail "git push with ferry.store='$value' does not say '$words'"; }
  [[ -z $(git ls-remote "$E2E_ROOT/repo.git" refs/heads/main) ]] || fail "the push reached the remote despite the broken store"
  pass "ferry.store='$value': git push fails and says \"$words\" (exit $rc)"
}
check_broken_store "ftp://example.invalid/store" "unsupported store URL scheme 'ftp'"
check_broken_store "relative/store" "is relative"
check_broken_store "file://relative/store" "does not name an absolute path"
(cd "$REPO" && git config ferry.store "file://$STORE")
(cd "$REPO" && git config ferry.maxAttempts 0)
rc=0
(cd "$REPO" && git lfs push origin main) >"$E2E_ROOT/broken.out" 2>&1 || rc=$?
[[ $rc -ne 0 ]] && grep -qF "ferry.maxAttempts" "$E2E_ROOT/broken.out" ||
  { show "git lfs push" "$E2E_ROOT/broken.out"; fail "ferry.maxAttempts=0 was not reported by git lfs push"; }
pass "ferry.maxAttempts=0: git lfs push fails and names the setting"
(cd "$REPO" && git config --unset ferry.maxAttempts)

# The agent itself answers init with the error (it does not just die).
(cd "$REPO" && git config ferry.store "ftp://example.invalid/store")
printf '%s\n' '{"label":"init","json":{"event":"init","operation":"upload","remote":"origin","concurrent":false,"concurrenttransfers":1}}' \
  '{"label":"terminate","json":{"event":"terminate"},"exit":true}' >"$E2E_ROOT/init.jsonl"
python3 "$E2E_DIR/agent_driver.py" --ferry "$FERRY" --cwd "$REPO" --timeout 20 \
  --stderr "$E2E_ROOT/init.stderr" <"$E2E_ROOT/init.jsonl" >"$E2E_ROOT/init.out" || fail "agent_driver.py failed"
py_check "with a broken ferry.store the agent answers init with an error naming the problem, then exits on terminate" '
import json, sys
recs = {r["label"]: r for r in map(json.loads, open(sys.argv[1]))}
reply = recs["init"]["reply"]
err = (reply or {}).get("error") or {}
if set(reply or {}) != {"error"} or not isinstance(err.get("code"), int) or "ftp" not in err.get("message", ""):
    raise SystemExit("init reply: %s" % recs["init"].get("raw"))
if recs["<exit>"]["timed_out"] or recs["<exit>"]["exit_code"] is None:
    raise SystemExit("agent did not exit after terminate: %s" % recs["<exit>"])
print("code %d" % err["code"])
' "$E2E_ROOT/init.out"
# Environment and command-line overrides win over git config.
(cd "$REPO" && FERRY_STORE="$STORE" git push origin main) >"$E2E_ROOT/env.out" 2>&1 ||
  { show "git push" "$E2E_ROOT/env.out"; fail "FERRY_STORE did not override the broken ferry.store"; }
assert_stored "$STORE" "$REPO/data.bin"
pass "FERRY_STORE overrides a broken ferry.store: the push succeeds"
(cd "$REPO" && git config ferry.store "file://$STORE")

# ---- uninstall ------------------------------------------------------------------
(cd "$REPO" && "$FERRY" uninstall) >"$E2E_ROOT/uninstall.out" 2>&1 ||
  { show "ferry uninstall" "$E2E_ROOT/uninstall.out"; fail "ferry uninstall failed"; }
expect_no_keys --local
config_dump --local "$E2E_ROOT/local-uninstalled"
cmp -s "$E2E_ROOT/local-before" "$E2E_ROOT/local-uninstalled" ||
  fail "after uninstall the local config differs from before install: $(diff "$E2E_ROOT/local-before" "$E2E_ROOT/local-uninstalled")"
pass "uninstall removed the four keys and restored the config exactly"
[[ -d $STORE && -n $(find "$STORE" -type f) ]] || fail "uninstall touched the store"
pass "uninstall leaves the store's objects alone"
rc=0
(cd "$REPO" && "$FERRY" uninstall) >"$E2E_ROOT/uninstall2.out" 2>&1 || rc=$?
[[ $rc -eq 0 ]] || fail "a second uninstall (nothing to remove) failed: $(cat "$E2E_ROOT/uninstall2.out")"
pass "uninstall with nothing installed succeeds"
# uninstall refuses to remove another agent's configuration.
(cd "$REPO" && "$FERRY" install --store "file://$STORE" >/dev/null && git config lfs.standalonetransferagent other-agent)
rc=0
(cd "$REPO" && "$FERRY" uninstall) >"$E2E_ROOT/uninstall3.out" 2>&1 || rc=$?
[[ $rc -ne 0 ]] && grep -q "other-agent" "$E2E_ROOT/uninstall3.out" || fail "uninstall over another agent: exit $rc, '$(cat "$E2E_ROOT/uninstall3.out")'"
[[ $(cd "$REPO" && git config --get lfs.standalonetransferagent) == other-agent ]] || fail "uninstall changed another agent's setting"
[[ $(cd "$REPO" && git config --get ferry.store) == "file://$STORE" ]] || fail "a refused uninstall still removed ferry.store"
pass "uninstall refuses (exit $rc) when lfs.standalonetransferagent is another agent, changing nothing"
(cd "$REPO" && git config lfs.standalonetransferagent ferry && "$FERRY" uninstall >/dev/null) || fail "cleanup uninstall failed"

# ---- --global ---------------------------------------------------------------------
GSTORE="$E2E_ROOT/global-store"
(cd "$E2E_ROOT/not-a-repo" && "$FERRY" install --global --store "file://$GSTORE") >"$E2E_ROOT/global.out" 2>&1 ||
  { show "ferry install --global" "$E2E_ROOT/global.out"; fail "ferry install --global failed outside a repository"; }
expect_keys --global "file://$GSTORE"
for key in "${KEYS[@]}"; do
  git config --file "$HOME/.gitconfig" --get "$key" >/dev/null || fail "$key is not in $HOME/.gitconfig"
done
expect_no_keys --local
pass "install --global wrote the four keys to \$HOME/.gitconfig, not the repository"
# The concurrent=false of an earlier install (one agent at a time) goes; one
# in another scope stays, and install says what still holds git-lfs back.
(cd "$REPO" && git config "$CONCURRENT" false && "$FERRY" install --store "file://$STORE") \
  >"$E2E_ROOT/reinstall.out" 2>&1 || { show "ferry install" "$E2E_ROOT/reinstall.out"; fail "ferry install over concurrent=false failed"; }
expect_keys --local "file://$STORE"
! grep -q "$CONCURRENT" "$E2E_ROOT/reinstall.out" || fail "install warned about a $CONCURRENT it removed: $(cat "$E2E_ROOT/reinstall.out")"
git config --global "$CONCURRENT" false
(cd "$REPO" && "$FERRY" install --store "file://$STORE") >"$E2E_ROOT/reinstall2.out" 2>&1 ||
  { show "ferry install" "$E2E_ROOT/reinstall2.out"; fail "ferry install under a global concurrent=false failed"; }
grep -q "note: $CONCURRENT is false in another git config" "$E2E_ROOT/reinstall2.out" ||
  fail "install did not point at the global $CONCURRENT=false: $(cat "$E2E_ROOT/reinstall2.out")"
git config --global --unset "$CONCURRENT"
(cd "$REPO" && "$FERRY" uninstall >/dev/null) || fail "cleanup uninstall failed"
pass "install removes an earlier install's $CONCURRENT=false, and names one set in another scope"
# A repository without local settings now pushes through ferry via the global ones.
random_file "$REPO/global.bin" 2222
(cd "$REPO" && git add global.bin && git commit -qm global && git push origin main) >"$E2E_ROOT/gpush.out" 2>&1 ||
  { show "git push" "$E2E_ROOT/gpush.out"; fail "push with the global install failed"; }
assert_stored "$GSTORE" "$REPO/global.bin"
pass "a push with only the global install goes through ferry into the global store"
(cd "$E2E_ROOT/not-a-repo" && "$FERRY" uninstall --global) >/dev/null 2>&1 || fail "ferry uninstall --global failed"
expect_no_keys --global
config_dump --global "$E2E_ROOT/global-final"
cmp -s "$E2E_ROOT/global-before" "$E2E_ROOT/global-final" ||
  fail "after uninstall --global the global config differs: $(diff "$E2E_ROOT/global-before" "$E2E_ROOT/global-final")"
pass "uninstall --global removed the keys and restored \$HOME/.gitconfig"

# ---- status output survives paths that are not UTF-8 ------------------------------
rc=0
FERRY_JOURNAL="$E2E_ROOT/journal-"$'\xff' "$FERRY" status --json >"$E2E_ROOT/status-latin1.json" 2>&1 || rc=$?
[[ $rc -eq 0 ]] || fail "ferry status --json with a non-UTF-8 journal path exited $rc: $(cat "$E2E_ROOT/status-latin1.json")"
py_check "ferry status --json prints valid JSON for a non-UTF-8 journal path" '
import json, sys
doc = json.load(open(sys.argv[1], encoding="utf-8"))
if doc["active"] != [] or doc["history"] != []:
    raise SystemExit("unexpected records: %s" % doc)
if not doc["journal"].startswith(sys.argv[2]):
    raise SystemExit("journal path %r does not start with %r" % (doc["journal"], sys.argv[2]))
' "$E2E_ROOT/status-latin1.json" "$E2E_ROOT/journal-"
