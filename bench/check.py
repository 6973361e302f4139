#!/usr/bin/env python3
"""`ferry check` against `rclone check`, folder against folder, in time and
peak memory.

    python3 bench/check.py [--ferry build/ferry] [--objects 100000] [--runs 3] [--keep]

Makes --objects objects of 1 B to 1 KiB in git-lfs's layout
(<oid[0:2]>/<oid[2:4]>/<oid>) in a source folder and hard-links them into a
destination folder, so the two stores are equal. Then, --runs times each,
taking turns going first:

  ferry   ferry check --from SRC --to DST               (sizes, one walk)
  rclone  rclone check SRC DST --size-only --checkers 8  (sizes, both walks)

Every run must report the stores equal (exit 0). Prints one line per run
(seconds and the process's peak RSS from os.wait4), then medians, the ratio
Ferry / rclone (below 1.0: Ferry is faster) and whether Ferry's median peak
RSS stays within the 128 MiB the issue sets for 100,000 objects.

Works in a throw-away directory under $TMPDIR with its own HOME, removed at
the end unless --keep. On-demand only, not part of the test suite.
"""

import argparse
import hashlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_FERRY = os.path.normpath(os.path.join(HERE, "..", "build", "ferry"))
RSS_LIMIT_MIB = 128


def make_stores(source, destination, count):
    rng = random.Random(count)
    for i in range(count):
        data = rng.randbytes(rng.randint(1, 1024)) + i.to_bytes(8, "little")
        oid = hashlib.sha256(data).hexdigest()
        parts = (oid[:2], oid[2:4])
        for root in (source, destination):
            os.makedirs(os.path.join(root, *parts), exist_ok=True)
        path = os.path.join(source, *parts, oid)
        with open(path, "wb") as out:
            out.write(data)
        os.link(path, os.path.join(destination, *parts, oid))


def timed(cmd, env, log_path):
    """Runs cmd; returns (seconds, peak RSS in MiB). Exit 0 is required."""
    with open(log_path, "wb") as log:
        start = time.monotonic()
        process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.monotonic() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit("%s failed (exit %d); see %s" % (cmd[0], os.waitstatus_to_exitcode(status),
                                                  log_path))
    return seconds, usage.ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ferry", default=DEFAULT_FERRY)
    parser.add_argument("--objects", type=int, default=100000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    ferry = os.path.abspath(args.ferry)
    if shutil.which("rclone") is None:
        sys.exit("rclone is not installed (apt-get install rclone)")

    root = tempfile.mkdtemp(prefix="ferry-bench-check-")
    try:
        env = dict(os.environ, HOME=os.path.join(root, "home"), TMPDIR=root)
        os.makedirs(env["HOME"])
        source, destination = os.path.join(root, "src"), os.path.join(root, "dst")
        print("making %d objects ..." % args.objects, flush=True)
        make_stores(source, destination, args.objects)
        commands = {
            "ferry": [ferry, "check", "--from", source, "--to", destination],
            "rclone": ["rclone", "check", source, destination, "--size-only", "--checkers", "8",
                       "--config", "/dev/null"],
        }
        results = {name: [] for name in commands}
        for n in range(args.runs):
            order = list(commands) if n % 2 == 0 else list(reversed(commands))
            for name in order:
                subprocess.run(["sync"], check=True)
                log = os.path.join(root, "%s-%d.log" % (name, n))
                seconds, rss = timed(commands[name], env, log)
                results[name].append((seconds, rss))
                print("run %d %-6s %7.2f s  peak RSS %6.1f MiB" % (n + 1, name, seconds, rss),
                      flush=True)
        medians = {name: (statistics.median(s for s, _ in runs),
                          statistics.median(r for _, r in runs))
                   for name, runs in results.items()}
        for name, (seconds, rss) in medians.items():
            print("median %-6s %7.2f s  peak RSS %6.1f MiB" % (name, seconds, rss))
        print("ferry / rclone: %.2f" % (medians["ferry"][0] / medians["rclone"][0]))
        print("ferry peak RSS %.1f MiB for %d objects: %s %d MiB" %
              (medians["ferry"][1], args.objects,
               "within" if medians["ferry"][1] <= RSS_LIMIT_MIB else "OVER", RSS_LIMIT_MIB))
    finally:
        if args.keep:
            print("kept", root)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
