#!/usr/bin/env python3
"""Fails when a source file includes a header from a higher layer.

The layers, lowest first (docs/architecture.md):

  0 protocol/        pure codecs and the status type
  1 store/os/        files, hashing, the process launcher, running git
  2 store/           the object-store interface, store/journal/, store/http/
  3 store/<backend>/ folder, lfs, s3, proton: never each other
  4 store/open_store the one place that knows every backend
  5 config/          git config, environment, settings
  6 actors/policy/   plain classes the actors call
  7 actors/          CAF actors
  8 cli/             parses, wires, prints

A file may include headers of its own layer or below. simulations/ (the
simulated peers) may use layers up to 4 and nobody outside tests may include
it.

  layers.py SOURCE_DIR              check the tree
  layers.py --self-test SOURCE_DIR  check that planted uphill includes are caught
"""

import re
import sys
from pathlib import Path

BACKENDS = ("store/folder/", "store/lfs/", "store/s3/", "store/proton/")
SIMULATIONS_MAX = 4
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer(path):
    """The layer of a path relative to the source root, or None when it has none."""
    if path.startswith("protocol/"):
        return 0
    if path.startswith("store/os/"):
        return 1
    if path.startswith(BACKENDS):
        return 3
    if path.startswith("store/open_store."):
        return 4
    if path.startswith("store/"):
        return 2
    if path.startswith("config/"):
        return 5
    if path.startswith("actors/policy/"):
        return 6
    if path.startswith("actors/"):
        return 7
    if path.startswith("cli/"):
        return 8
    return None


def backend(path):
    return next((b for b in BACKENDS if path.startswith(b)), None)


def violation(source, target):
    """Why `source` may not include `target`, or None when it may."""
    if target.startswith("simulations/"):
        if not source.startswith("simulations/"):
            return "only simulations/ and tests include simulations/"
        return None
    to = layer(target)
    if to is None:
        return None
    if source.startswith("simulations/"):
        if to > SIMULATIONS_MAX:
            return f"simulations/ uses layers up to {SIMULATIONS_MAX}, {target} is layer {to}"
        return None
    frm = layer(source)
    if frm is None:
        return None
    if to > frm:
        return f"layer {frm} includes layer {to}"
    if backend(source) and backend(target) and backend(source) != backend(target):
        return "one backend includes another; share through store/ or store/http/"
    return None


def sources(root):
    for folder in ("protocol", "store", "config", "actors", "cli", "simulations"):
        for path in sorted((root / folder).rglob("*")):
            if path.suffix in (".hpp", ".cpp"):
                yield path.relative_to(root).as_posix(), path.read_text(errors="replace")


def check(files):
    problems = []
    for source, text in files:
        for target in INCLUDE.findall(text):
            why = violation(source, target)
            if why:
                problems.append(f'{source}: #include "{target}": {why}')
    return problems


def self_test(root):
    files = list(sources(root))
    planted = [
        ("store/os/file_io.cpp", "actors/engine.hpp"),
        ("protocol/parsing.cpp", "store/os/sha256.hpp"),
        ("store/s3/s3_url.cpp", "store/lfs/lfs_store.hpp"),
        ("store/http/http_engine.cpp", "store/folder/folder_store.hpp"),
        ("store/journal/journal_db.cpp", "store/open_store.hpp"),
        ("actors/policy/backoff.cpp", "actors/engine.hpp"),
        ("store/http/git_credentials.cpp", "config/git_config.hpp"),
        ("protocol/status.cpp", "config/settings.hpp"),
        ("actors/engine.cpp", "cli/commands.hpp"),
        ("store/object_store.cpp", "simulations/bridge_sim/state.hpp"),
        ("simulations/lfs_server/server.cpp", "actors/engine.hpp"),
    ]
    allowed = [
        ("actors/engine.cpp", "store/os/sha256.hpp"),
        ("store/open_store.cpp", "store/s3/s3_store.hpp"),
        ("store/lfs/lfs_store.cpp", "store/http/http_engine.hpp"),
        ("config/git_config.cpp", "store/os/git_command.hpp"),
        ("simulations/lfs_server/server.cpp", "store/os/sha256.hpp"),
    ]
    failed = 0
    for source, target in planted + allowed:
        found = check(files + [(source, f'#include "{target}"\n')])
        expected = (source, target) in planted
        if bool(found) != expected:
            print(f"self-test: {source} -> {target}: expected "
                  f"{'a violation' if expected else 'no violation'}, got {found}")
            failed += 1
    print(f"self-test: {len(planted)} planted, {len(allowed)} allowed, {failed} wrong")
    return 1 if failed else 0


def main(argv):
    if len(argv) == 3 and argv[1] == "--self-test":
        return self_test(Path(argv[2]))
    if len(argv) != 2:
        print(__doc__)
        return 2
    root = Path(argv[1])
    problems = check(sources(root))
    for problem in problems:
        print(problem)
    count = sum(1 for _ in sources(root))
    print(f"{count} files checked, {len(problems)} uphill includes")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
