#!/usr/bin/env bash
# The Debian package that `cpack` makes in the build directory:
#
#   1. two cpack runs of the same build give byte-identical .deb files
#      (SOURCE_DATE_EPOCH, gzip -n, stripped .comment); a third with
#      SOURCE_DATE_EPOCH set dates every entry of both archives with it;
#   2. lintian reports no error and no warning;
#   3. `cmake --install --prefix` writes the binary, man pages, completions
#      and docs; the package's Depends name the runtime libraries (RocksDB,
#      curl, CAF), it holds the binary, a man page per command and both
#      completions, and its bash completion completes a command and an
#      option;
#   4. as root, on a machine without another ferry package: dpkg -i installs
#      it; /usr/bin/ferry is this build's version, `man -w` finds every
#      page, the README's demo (simulations/roundtrip.sh) passes with the
#      installed binary; dpkg -r removes it all again.
#
#   bash tests/packaging/test_package.sh <path-to-ferry> <build-dir>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
BUILD=$(cd "$2" && pwd)
SOURCE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
e2e_init "$1"

for tool in cpack dpkg-deb lintian; do
  command -v "$tool" >/dev/null || fail "$tool is missing (.ci/install-deps installs it)"
done

# ---- 1. the package, twice -----------------------------------------------------------
for n in 1 2; do
  (cd "$BUILD" && cpack -B "$E2E_ROOT/deb$n") >"$E2E_ROOT/cpack$n.log" 2>&1 ||
    { show "cpack" "$E2E_ROOT/cpack$n.log"; fail "cpack failed"; }
done
DEB=$(ls "$E2E_ROOT"/deb1/ferry_*_amd64.deb)
[[ -f $DEB ]] || fail "cpack made no ferry_*_amd64.deb"
cmp -s "$DEB" "$E2E_ROOT/deb2/$(basename "$DEB")" || fail "two cpack runs of one build differ"
pass "cpack made $(basename "$DEB") twice, byte for byte the same"
# SOURCE_DATE_EPOCH, when given, dates every entry of both archives.
(cd "$BUILD" && SOURCE_DATE_EPOCH=1234567890 cpack -B "$E2E_ROOT/deb3") >"$E2E_ROOT/cpack3.log" 2>&1 ||
  { show "cpack" "$E2E_ROOT/cpack3.log"; fail "cpack with SOURCE_DATE_EPOCH failed"; }
DEB3="$E2E_ROOT/deb3/$(basename "$DEB")"
for part in --fsys-tarfile --ctrl-tarfile; do
  dpkg-deb "$part" "$DEB3" >"$E2E_ROOT/part.tar" || fail "dpkg-deb $part failed"
  py_check "dpkg-deb $part: every entry is dated SOURCE_DATE_EPOCH" '
import sys, tarfile
dates = {m.name: m.mtime for m in tarfile.open(sys.argv[1])}
wrong = {name: t for name, t in dates.items() if t != 1234567890}
if not dates or wrong:
    raise SystemExit("entries not dated 1234567890: %s" % sorted(wrong.items())[:5])' "$E2E_ROOT/part.tar"
done

# ---- 2. lintian ----------------------------------------------------------------------
lintian --pedantic "$DEB" >"$E2E_ROOT/lintian.out" 2>&1 || true
if grep -E '^(E|W): ' "$E2E_ROOT/lintian.out" >"$E2E_ROOT/lintian.bad"; then
  show "lintian" "$E2E_ROOT/lintian.bad"
  fail "lintian reports errors or warnings"
fi
grep -q '^ferry' <(dpkg-deb -f "$DEB" Package) || fail "the package is not named ferry"
pass "lintian: no error, no warning"

# ---- 3. what `cmake --install` and the package hold --------------------------------------
PREFIX="$E2E_ROOT/prefix"
cmake --install "$BUILD" --prefix "$PREFIX" >"$E2E_ROOT/install.log" 2>&1 ||
  { show "cmake --install" "$E2E_ROOT/install.log"; fail "cmake --install failed"; }
for want in bin/ferry share/man/man1/ferry.1.gz share/man/man1/ferry-migrate.1.gz \
  share/bash-completion/completions/ferry share/zsh/vendor-completions/_ferry share/doc/ferry/README.md \
  share/doc/ferry/docs/operations.md; do
  [[ -f $PREFIX/$want ]] || fail "cmake --install wrote no $want"
done
pass "cmake --install --prefix wrote the binary, man pages, both completions and the docs"
depends=$(dpkg-deb -f "$DEB" Depends)
for lib in librocksdb libcurl4 libcaf-core libssl3; do
  grep -q "$lib" <<<"$depends" || fail "Depends lacks $lib: $depends"
done
dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's#^\./#/#' >"$E2E_ROOT/contents"
PAGES=(ferry)
while read -r command; do
  PAGES+=("ferry-$command")
done < <("$FERRY" --help | sed -n '/^Subcommands:/,$p' | awk 'NR > 1 && NF {print $1}')
((${#PAGES[@]} > 5)) || fail "ferry --help lists only ${#PAGES[@]} commands"
for want in /usr/bin/ferry /usr/share/bash-completion/completions/ferry \
  /usr/share/zsh/vendor-completions/_ferry /usr/share/doc/ferry/copyright \
  /usr/share/doc/ferry/README.md /usr/share/doc/ferry/docs/migrate.md \
  /usr/share/doc/ferry/docs/deploy/slurm/ferry-migrate.sbatch \
  /usr/share/doc/ferry/docs/deploy/kubernetes/ferry-migrate-job.yaml \
  /usr/lib/systemd/user/ferry.socket /usr/lib/systemd/user/ferry.service \
  "${PAGES[@]/#//usr/share/man/man1/}"; do
  [[ $want == /usr/share/man/* ]] && want=$want.1.gz
  grep -qx "$want" "$E2E_ROOT/contents" || fail "the package lacks $want"
done
pass "Depends names RocksDB, curl, CAF and OpenSSL; the binary, ${#PAGES[@]} man pages, completions, docs, the deploy examples and the systemd user units are in"
# The packaged bash completion completes commands and their options.
dpkg-deb -x "$DEB" "$E2E_ROOT/unpacked" || fail "dpkg-deb -x failed"
complete_words() {
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _ferry; echo "${COMPREPLY[*]}"' \
    _ "$E2E_ROOT/unpacked/usr/share/bash-completion/completions/ferry" "$@"
}
[[ $(complete_words ferry mig) == migrate ]] || fail "bash completes 'ferry mig' to '$(complete_words ferry mig)'"
[[ $(complete_words ferry migrate --metr) == "--metrics --metrics-allow-remote" ]] ||
  fail "bash completes 'ferry migrate --metr' to '$(complete_words ferry migrate --metr)'"
[[ $(head -1 "$E2E_ROOT/unpacked/usr/share/zsh/vendor-completions/_ferry") == "#compdef ferry" ]] ||
  fail "the zsh completion does not start with #compdef ferry"
pass "the bash completion completes commands and options; the zsh one declares itself for ferry"

# ---- 4. installed ------------------------------------------------------------------
if (($(id -u) != 0)); then
  note "not root: dpkg -i is left out"
  exit 0
fi
if dpkg-query -W -f='${Status}' ferry 2>/dev/null | grep -q "install ok installed"; then
  note "a ferry package is already installed here; it is left alone and dpkg -i left out"
  exit 0
fi
remove_package() { dpkg -r ferry >/dev/null 2>&1 || true; }
trap 'status=$?; remove_package; e2e_cleanup "$status"' EXIT
dpkg -i "$DEB" >"$E2E_ROOT/dpkg.log" 2>&1 || { show "dpkg -i" "$E2E_ROOT/dpkg.log"; fail "dpkg -i failed"; }
[[ $(/usr/bin/ferry --version) == "$("$FERRY" --version)" ]] ||
  fail "/usr/bin/ferry says $(/usr/bin/ferry --version), the build $("$FERRY" --version)"
for page in "${PAGES[@]}"; do
  man -w "$page" >/dev/null 2>&1 || fail "man -w $page finds no page"
done
pass "dpkg -i installed ferry $(/usr/bin/ferry --version | awk '{print $2}'); man finds all ${#PAGES[@]} pages"
TMPDIR="$E2E_ROOT" bash "$SOURCE/simulations/roundtrip.sh" /usr/bin/ferry >"$E2E_ROOT/demo.log" 2>&1 ||
  { show "the demo" "$E2E_ROOT/demo.log"; fail "the demo failed with the installed ferry"; }
pass "the demo passes with /usr/bin/ferry"
dpkg -r ferry >"$E2E_ROOT/dpkg-r.log" 2>&1 || { show "dpkg -r" "$E2E_ROOT/dpkg-r.log"; fail "dpkg -r failed"; }
[[ ! -e /usr/bin/ferry && ! -e /usr/share/man/man1/ferry.1.gz ]] || fail "dpkg -r left files behind"
pass "dpkg -r removed it"
