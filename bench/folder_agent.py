#!/usr/bin/env python3
"""`ferry agent` on a folder store, against baselines measured in the same run.

1. One large object, uploaded and downloaded through a fresh agent, against
   `cat SRC | tee DST | sha256sum` plus fsync of DST (the least any verified
   copy has to do).
2. `git push` of many small objects (git-lfs starts the agents), Ferry
   against bench/trivial_agent.c, a custom agent that only copies (no hash,
   no fsync): the floor git-lfs itself sets. Both one agent at a time
   (concurrent=false, as `ferry install` sets it) and at git-lfs's default
   (concurrent=true, lfs.concurrenttransfers 8 agents).

    python3 bench/folder_agent.py <path-to-ferry> [--size-mib 512] [--runs 5]
                                  [--small-count 1000] [--small-kib 4]
                                  [--daemon true|false]

Prints the median of each and the ratio to its baseline (below 1.0 means
ferry is faster). Works in a throw-away directory under $TMPDIR with its own
HOME; on-demand only, not part of the test suite. --size-mib 0 or
--small-count 0 leaves that part out. --daemon sets ferry.daemon for
every agent (FERRY_DAEMON); with true they are thin clients of a daemon
of this run's own (FERRY_DAEMON_DIR in the throw-away directory), started by
the first push and stopped at the end.
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


def git(repo, *args):
    subprocess.run(["git"] + list(args), cwd=repo, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def git_config_unset(repo, key):
    subprocess.run(["git", "config", "--unset-all", key], cwd=repo, check=False)


def store_sizes(store):
    """{oid: size} of the objects under a folder store."""
    found = {}
    for parent, _, names in os.walk(store):
        for name in names:
            found[name] = os.path.getsize(os.path.join(parent, name))
    return found


# The push's clients: agent, then lfs.customtransfer.<agent>.concurrent.
CLIENTS = ("trivial false", "ferry false", "trivial true", "ferry true")


def small_push(ferry, root, runs, count, size):
    """Times `git push` of `count` new objects of `size` bytes by each of
    CLIENTS; returns {client: [seconds]}."""
    trivial = os.path.join(root, "trivial-agent")
    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "trivial_agent.c")
    subprocess.run(["cc", "-O2", "-o", trivial, source], check=True)
    repo = os.path.join(root, "small")
    git(root, "init", "-q", "-b", "main", repo)
    git(repo, "lfs", "track", "*.bin")
    expected = {}
    for i in range(count):
        data = os.urandom(size)
        with open(os.path.join(repo, "f%05d.bin" % i), "wb") as f:
            f.write(data)
        expected[hashlib.sha256(data).hexdigest()] = size
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "small objects")

    def configure(client, store):
        for key in ("lfs.standalonetransferagent", "lfs.customtransfer.trivial.path",
                    "lfs.customtransfer.trivial.args", "lfs.customtransfer.trivial.concurrent",
                    "lfs.customtransfer.ferry.concurrent"):
            git_config_unset(repo, key)
        # A fresh journal: nothing known from the run before.
        for leftover in (os.path.join(repo, ".git", "lfs", "ferry"),
                         os.path.join(repo, ".git", "lfs", "tmp", "ferry")):
            shutil.rmtree(leftover, ignore_errors=True)
        agent, concurrent = client.split()
        if agent == "trivial":
            git(repo, "config", "lfs.standalonetransferagent", "trivial")
            git(repo, "config", "lfs.customtransfer.trivial.path", trivial)
            git(repo, "config", "lfs.customtransfer.trivial.args", store)
            git(repo, "config", "lfs.customtransfer.trivial.concurrent", concurrent)
        else:
            subprocess.run([ferry, "install", "--store", "file://" + store], cwd=repo,
                           check=True, stdout=subprocess.DEVNULL)
            git(repo, "config", "lfs.customtransfer.ferry.concurrent", concurrent)

    times = {client: [] for client in CLIENTS}
    for n in range(runs):
        # Each client goes first in turn.
        first = n % len(CLIENTS)
        for client in CLIENTS[first:] + CLIENTS[:first]:
            store = os.path.join(root, "small-store")
            remote = os.path.join(root, "small-remote.git")
            for old in (store, remote):
                shutil.rmtree(old, ignore_errors=True)
            os.makedirs(store)
            git(root, "init", "-q", "--bare", remote)
            configure(client, store)
            git_config_unset(repo, "remote.origin.url")
            git(repo, "config", "remote.origin.url", remote)
            started = time.perf_counter()
            git(repo, "push", "-q", "origin", "main")
            times[client].append(time.perf_counter() - started)
            if store_sizes(store) != expected:
                sys.exit("%s: the store does not hold the %d objects after the push"
                         % (client, count))
            print("  push run %d/%d %-13s concurrent=%-5s %6.2f s" % (n + 1, runs, *client.split(), times[client][-1]),
                  flush=True)
    return times


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("ferry")
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--small-count", type=int, default=1000)
    parser.add_argument("--small-kib", type=int, default=4)
    parser.add_argument("--daemon", choices=("true", "false"))
    args = parser.parse_args()
    ferry = os.path.abspath(args.ferry)

    root = tempfile.mkdtemp(prefix="ferry-bench-", dir=os.environ.get("TMPDIR"))
    env_home = os.path.join(root, "home")
    os.makedirs(env_home)
    os.environ["HOME"] = env_home
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    for key, value in (("user.name", "bench"), ("user.email", "bench@example.com")):
        git(root, "config", "--global", key, value)
    git(root, "lfs", "install", "--skip-repo")
    if args.daemon:
        os.environ["FERRY_DAEMON"] = args.daemon
        daemon_dir = os.path.join(root, "daemon")
        os.makedirs(daemon_dir, mode=0o700)
        os.environ["FERRY_DAEMON_DIR"] = daemon_dir
    try:
        measure(ferry, root, args)
    finally:
        if args.daemon == "true":
            subprocess.run([ferry, "daemon", "stop"], check=False, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        shutil.rmtree(root, ignore_errors=True)


def measure(ferry, root, args):
    if args.small_count > 0:
        times = small_push(ferry, root, args.runs, args.small_count, args.small_kib << 10)
        print("git push of %d x %d KiB into a folder store, medians of %d runs "
              "(baseline: the trivial agent at the same concurrency)"
              % (args.small_count, args.small_kib, args.runs))
        for concurrent in ("false", "true"):
            floor = statistics.median(times["trivial " + concurrent])
            mine = statistics.median(times["ferry " + concurrent])
            print("  concurrent=%-5s trivial %7.3f s  ferry %7.3f s  ratio %.2f"
                  % (concurrent, floor, mine, mine / floor))
    if args.size_mib <= 0:
        return
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


if __name__ == "__main__":
    main()
