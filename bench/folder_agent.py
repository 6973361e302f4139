#!/usr/bin/env python3
"""Upload and download throughput of `ferry agent` on a folder store, against
a baseline measured in the same run: `cat SRC | tee DST | sha256sum` plus
fsync of DST (the least any verified copy has to do).

    python3 bench/folder_agent.py <path-to-ferry> [--size-mib 512] [--runs 5]

Prints the median of each and the ratio ferry / baseline (below 1.0 means
ferry is faster than the baseline). Works in a throw-away directory under
$TMPDIR with its own HOME; on-demand only, not part of the test suite.
"""

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def agent_transfer(ferry, repo, request):
    """Runs one upload or download through a fresh agent; returns seconds."""
    p = subprocess.Popen([ferry, "agent"], cwd=repo, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE)

    def send(obj):
        p.stdin.write((json.dumps(obj) + "\n").encode())
        p.stdin.flush()

    send({"event": "init", "operation": request["event"], "remote": "origin",
          "concurrent": False, "concurrenttransfers": 1})
    if json.loads(p.stdout.readline()) != {}:
        sys.exit("agent refused init")
    started = time.perf_counter()
    send(request)
    while True:
        reply = json.loads(p.stdout.readline())
        if reply.get("event") == "complete":
            break
    elapsed = time.perf_counter() - started
    if "error" in reply:
        sys.exit("transfer failed: %s" % reply["error"])
    send({"event": "terminate"})
    p.wait(timeout=30)
    return elapsed, reply


def baseline_copy(src, dst):
    started = time.perf_counter()
    subprocess.run("cat '%s' | tee '%s' | sha256sum > /dev/null" % (src, dst),
                   shell=True, check=True)
    fd = os.open(dst, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("ferry")
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    ferry = os.path.abspath(args.ferry)

    root = tempfile.mkdtemp(prefix="ferry-bench-", dir=os.environ.get("TMPDIR"))
    env_home = os.path.join(root, "home")
    os.makedirs(env_home)
    os.environ["HOME"] = env_home
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    repo = os.path.join(root, "repo")
    store = os.path.join(root, "store")
    subprocess.run(["git", "init", "-q", repo], check=True)
    subprocess.run([ferry, "install", "--store", "file://" + store], cwd=repo, check=True,
                   stdout=subprocess.DEVNULL)
    src = os.path.join(repo, "object.bin")
    size = args.size_mib << 20
    digest = hashlib.sha256()
    with open(src, "wb") as f:
        for _ in range(args.size_mib):
            chunk = os.urandom(1 << 20)
            digest.update(chunk)
            f.write(chunk)
    oid = digest.hexdigest()

    upload, download, baseline = [], [], []
    for _ in range(args.runs):
        shutil.rmtree(store, ignore_errors=True)
        secs, _ = agent_transfer(ferry, repo, {"event": "upload", "oid": oid, "size": size,
                                               "path": src, "action": None})
        upload.append(secs)
        secs, reply = agent_transfer(ferry, repo, {"event": "download", "oid": oid,
                                                   "size": size, "action": None})
        download.append(secs)
        os.remove(reply["path"])
        copy = os.path.join(root, "baseline.bin")
        baseline.append(baseline_copy(src, copy))
        os.remove(copy)

    base = statistics.median(baseline)
    print("object: %d MiB, runs: %d, medians (baseline: cat | tee | sha256sum + fsync)"
          % (args.size_mib, args.runs))
    for name, values in (("ferry upload", upload), ("ferry download", download),
                         ("baseline copy", baseline)):
        median = statistics.median(values)
        print("  %-15s %7.3f s  %8.1f MiB/s  ratio to baseline %.2f"
              % (name, median, args.size_mib / median, median / base))
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
