#!/usr/bin/env bash
# Ferry quick-start demo: a complete Git LFS round trip through a folder store.
#
#   simulations/roundtrip.sh [path-to-ferry]      (default: ferry on PATH)
#
# It builds a throw-away playground under ${TMPDIR:-/tmp}: a bare "remote", a
# repository with LFS files of different sizes, and a folder store. It installs
# ferry as the repository's git-lfs transfer agent, pushes, makes a fresh clone,
# pulls the files back, and prints a table comparing the originals with the
# clone's copies. Your own git configuration is not touched: the demo uses its
# own HOME inside the playground. The playground is left behind for you to
# explore; its path is printed at the end. Exits non-zero if anything differs.
set -euo pipefail

FERRY=${1:-$(command -v ferry || true)}
if [[ -z $FERRY || ! -x $FERRY ]]; then
  echo "usage: $0 <path-to-ferry>   (no ferry binary found${1:+ at '$1'})" >&2
  exit 2
fi
FERRY="$(cd "$(dirname "$FERRY")" && pwd)/$(basename "$FERRY")"
for tool in git git-lfs sha256sum; do
  command -v "$tool" >/dev/null || { echo "$0: '$tool' is required" >&2; exit 2; }
done

if [[ -t 1 ]]; then B=$'\033[1m' R=$'\033[31m' N=$'\033[0m'; else B='' R='' N=''; fi
bold() { printf '\n%s== %s%s\n' "$B" "$*" "$N"; }
step() { printf '   $ %s\n' "$*"; }
die() { printf '\n%sDEMO FAILED: %s%s\n(playground kept at %s)\n' "$R" "$*" "$N" "$DEMO" >&2; exit 1; }

DEMO="$(mktemp -d "${TMPDIR:-/tmp}/ferry-demo.XXXXXX")"
DEMO="$(cd "$DEMO" && pwd -P)"
REMOTE="$DEMO/remote.git"
REPO="$DEMO/my-project"
CLONE="$DEMO/fresh-clone"
STORE="$DEMO/lfs-store"

# A private git environment for the demo: nothing outside $DEMO is written.
export HOME="$DEMO/home"
export GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0
# git-lfs's agents are thin clients of a per-user daemon; the demo's own,
# stopped at the end, never one the user already runs.
export FERRY_DAEMON_DIR="$DEMO/daemon"
unset FERRY_DAEMON
trap '"$FERRY" daemon stop >/dev/null 2>&1 || true' EXIT
unset GIT_DIR GIT_WORK_TREE GIT_LFS_SKIP_SMUDGE
mkdir -p "$HOME"
git config --global user.name "Ferry Demo"
git config --global user.email "demo@ferry.invalid"
git config --global init.defaultBranch main
git lfs install --skip-repo >/dev/null

bold "Ferry round-trip demo  ($("$FERRY" --version), $(git lfs version | cut -d' ' -f1))"
echo "   playground: $DEMO"

bold "1. A bare remote and a project that tracks *.bin with Git LFS"
step "git init --bare remote.git && git init my-project && git lfs track '*.bin'"
git init -q --bare "$REMOTE"
git init -q "$REPO"
cd "$REPO"
git remote add origin "$REMOTE"
git lfs track '*.bin' >/dev/null

bold "2. Install ferry with a folder store"
step "ferry install --store file://$STORE"
"$FERRY" install --store "file://$STORE" | sed 's/^/   /'

bold "3. Add LFS files of different sizes"
declare -a NAMES=(empty.bin small-1KiB.bin medium-1MiB.bin large-64MiB.bin)
declare -a BYTES=(0 1024 1048576 67108864)
for i in "${!NAMES[@]}"; do
  head -c "${BYTES[$i]}" /dev/urandom >"${NAMES[$i]}"
  printf '   %-18s %10d bytes\n' "${NAMES[$i]}" "${BYTES[$i]}"
done
echo "   (git-lfs 3.x stores an empty file as a plain empty file, not as an LFS object)"
git add -A
git commit -qm "Add LFS files"

bold "4. Push: git-lfs hands every object to 'ferry agent'"
step "git push origin main"
git push origin main 2>&1 | sed 's/^/   /' || die "git push failed"

bold "5. A fresh clone pulls the objects back through ferry"
step "GIT_LFS_SKIP_SMUDGE=1 git clone remote.git fresh-clone"
GIT_LFS_SKIP_SMUDGE=1 git clone -q "$REMOTE" "$CLONE"
cd "$CLONE"
step "ferry install --store file://$STORE && git lfs pull"
"$FERRY" install --store "file://$STORE" >/dev/null
git lfs pull 2>&1 | sed 's/^/   /' || die "git lfs pull failed"

bold "6. Originals vs. clone"
printf '   %-18s %10s  %-18s %-18s %s\n' FILE BYTES "ORIGINAL sha256" "CLONE sha256" RESULT
status=0
for name in "${NAMES[@]}"; do
  a=$(sha256sum "$REPO/$name" | cut -d' ' -f1)
  b=$(sha256sum "$CLONE/$name" 2>/dev/null | cut -d' ' -f1 || true)
  if [[ -n $b && $a == "$b" ]] && cmp -s "$REPO/$name" "$CLONE/$name"; then
    verdict="identical"
  else
    verdict="DIFFERENT"
    status=1
  fi
  printf '   %-18s %10d  %-18s %-18s %s\n' "$name" "$(stat -c %s "$REPO/$name")" "${a:0:16}.." "${b:0:16}.." "$verdict"
done

bold "7. The store (<oid[0:2]>/<oid[2:4]>/<oid>)"
echo "   $STORE"
(cd "$STORE" && find . -type f -printf '   %P  %s bytes\n' | sort)
for name in "${NAMES[@]:1}"; do
  oid=$(sha256sum "$REPO/$name" | cut -d' ' -f1)
  obj="$STORE/${oid:0:2}/${oid:2:2}/$oid"
  if [[ ! -f $obj ]] || [[ $(sha256sum "$obj" | cut -d' ' -f1) != "$oid" ]]; then
    echo "   MISSING OR DAMAGED in the store: $name ($oid)"
    status=1
  fi
done

bold "8. ferry status in the clone (the journal of the downloads)"
step "ferry status"
"$FERRY" status | sed 's/^/   /'

bold "9. The daemon git-lfs's agents went through (it exits when idle; stopped here)"
step "ferry daemon status"
"$FERRY" daemon status | sed 's/^/   /'

bold "Result"
if [[ $status -eq 0 ]]; then
  echo "   All ${#NAMES[@]} files came back byte for byte."
else
  echo "   Some files differ: see the table above."
fi
echo "   Explore the playground: cd $DEMO   (remove it with: rm -rf $DEMO)"
exit "$status"
