#!/usr/bin/env python3
"""Push and fetch through a loopback Git LFS server (ferry-lfs-sim, no
faults): git-lfs's own `basic` adapter against Ferry as the standalone agent
whose store is the same server.

    python3 bench/lfs_agent.py <path-to-ferry> [--sim <ferry-lfs-sim>] [--runs 5]

Two workloads, each in its own repository: many small objects (1000 x 4 KiB)
and a few large ones (5 x 100 MiB). Each run and each client gets a fresh,
empty server root, then times:

  push   `git lfs push origin main` of every object;
  fetch  `git lfs fetch` in a fresh clone (GIT_LFS_SKIP_SMUDGE=1), i.e. the
         download of every object into .git/lfs/objects.

Each timed command must succeed and the server (push) or the clone (fetch)
must then hold every object, otherwise the benchmark stops. It prints the
median of each client and the ratio Ferry / basic (below 1.0: Ferry is
faster) next to the target. Works in a throw-away directory under $TMPDIR
with its own HOME; on-demand only, not part of the test suite.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

# Ferry / basic ratios to stay at or below, by (workload, operation).
TARGETS = {
    ("large", "fetch"): (1 / 1.5, "ferry >= 1.5x faster"),
    ("small", "push"): (1.2, "ferry within 1.2x"),
    ("small", "fetch"): (1.2, "ferry within 1.2x"),
}


def run(cmd, cwd=None, env=None, check=True):
    """Runs a command quietly; returns (seconds, CompletedProcess)."""
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    elapsed = time.perf_counter() - started
    if check and done.returncode != 0:
        sys.exit("%s (in %s) failed with %d:\n%s" % (" ".join(cmd), cwd, done.returncode,
                                                     done.stdout[-3000:]))
    return elapsed, done


class Sim:
    """One ferry-lfs-sim process on a free loopback port."""

    def __init__(self, binary, root, workdir, scenario=None):
        self.port_file = os.path.join(workdir, "sim.port")
        if os.path.exists(self.port_file):
            os.remove(self.port_file)
        command = [binary, "--root", root, "--port", "0", "--port-file", self.port_file]
        if scenario:
            command += ["--scenario", scenario]
        self.proc = subprocess.Popen(command,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not (os.path.exists(self.port_file) and os.path.getsize(self.port_file) > 0):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                sys.exit("ferry-lfs-sim did not start")
            time.sleep(0.01)  # polling interval; the loop re-checks the condition
        with open(self.port_file) as f:
            self.url = "http://127.0.0.1:%d" % int(f.read())

    def lfs_url(self):
        return self.url + "/bench.git/info/lfs"

    def stats(self):
        with urllib.request.urlopen(self.url + "/stats", timeout=20) as answer:
            return json.load(answer)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def use_client(repo, client, ferry, sim, env):
    """Points the repository's LFS transfers at the server through `client`."""
    run(["git", "config", "--unset-all", "lfs.standalonetransferagent"], repo, env, check=False)
    if client == "ferry":
        run([ferry, "install", "--store", "lfs+" + sim.lfs_url()], repo, env)
    else:
        run(["git", "config", "lfs.url", sim.lfs_url()], repo, env)


def workloads(args):
    """(name, label, count, size) of the small and the large workload."""
    return [
        ("small", "%d x %d KiB" % (args.small_count, args.small_kib), args.small_count,
         args.small_kib << 10),
        ("large", "%d x %d MiB" % (args.large_count, args.large_mib), args.large_count,
         args.large_mib << 20),
    ]


def make_workload(root, name, count, size, env):
    """A repository with `count` random files of `size` bytes, committed,
    and a bare copy of it as the remote (no remote-tracking refs, so git lfs
    push sends every object)."""
    repo = os.path.join(root, name)
    run(["git", "init", "-q", repo], env=env)
    run(["git", "lfs", "track", "*.bin"], repo, env)
    for i in range(count):
        path = os.path.join(repo, "f%04d.bin" % i)
        with open(path, "wb") as f:
            left = size
            while left > 0:
                piece = min(left, 8 << 20)
                f.write(os.urandom(piece))
                left -= piece
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-qm", "%d x %d bytes" % (count, size)], repo, env)
    bare = os.path.join(root, name + ".git")
    run(["git", "clone", "-q", "--bare", repo, bare], env=env)
    run(["git", "remote", "add", "origin", bare], repo, env)
    return repo, bare


def count_objects(clone):
    total = 0
    for _, _, files in os.walk(os.path.join(clone, ".git", "lfs", "objects")):
        total += len(files)
    return total


def one_run(args, ferry, root, env, workload, repo, bare, count, client, n):
    """Times one push and one fetch for `client`; returns (push_s, fetch_s)."""
    sim_root = os.path.join(root, "sim-root")
    shutil.rmtree(sim_root, ignore_errors=True)
    sim = Sim(args.sim, sim_root, root, args.scenario)
    clone = os.path.join(root, "clone-%s-%s-%d" % (workload, client, n))
    try:
        use_client(repo, client, ferry, sim, env)
        push_s, _ = run(["git", "lfs", "push", "origin", "main"], repo, env)
        stored = sim.stats()["events"]["stored"]
        if stored != count:
            sys.exit("%s push stored %d of %d objects" % (client, stored, count))

        clone_env = dict(env, GIT_LFS_SKIP_SMUDGE="1")
        run(["git", "clone", "-q", bare, clone], env=clone_env)
        use_client(clone, client, ferry, sim, env)
        fetch_s, _ = run(["git", "lfs", "fetch"], clone, env)
        got = count_objects(clone)
        if got != count:
            sys.exit("%s fetch got %d of %d objects" % (client, got, count))
        return push_s, fetch_s
    finally:
        sim.stop()
        shutil.rmtree(clone, ignore_errors=True)
        shutil.rmtree(sim_root, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("ferry")
    parser.add_argument("--sim", help="ferry-lfs-sim (default: next to ferry)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--small-count", type=int, default=1000)
    parser.add_argument("--small-kib", type=int, default=4)
    parser.add_argument("--large-count", type=int, default=5)
    parser.add_argument("--large-mib", type=int, default=100)
    parser.add_argument("--scenario", help="fault scenario for the server, e.g. a per-connection "
                        "bandwidth cap (simulations/scenarios/capped-connections.json)")
    args = parser.parse_args()
    ferry = os.path.abspath(args.ferry)
    args.sim = os.path.abspath(args.sim or os.path.join(os.path.dirname(ferry), "ferry-lfs-sim"))
    if args.scenario:
        args.scenario = os.path.abspath(args.scenario)
    for binary in (ferry, args.sim):
        if not os.access(binary, os.X_OK):
            sys.exit("not an executable: %s" % binary)

    root = tempfile.mkdtemp(prefix="ferry-bench-lfs-", dir=os.environ.get("TMPDIR"))
    home = os.path.join(root, "home")
    os.makedirs(home)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GIT_", "FERRY_")) and k.lower() not in
           ("http_proxy", "https_proxy", "all_proxy")}
    env.update(HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"), GIT_CONFIG_NOSYSTEM="1",
               GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    try:
        for key, value in (("user.name", "Ferry bench"), ("user.email", "bench@example.invalid"),
                           ("init.defaultBranch", "main")):
            run(["git", "config", "--global", key, value], env=env)
        run(["git", "lfs", "install", "--skip-repo"], env=env)

        results = {}
        for workload, label, count, size in workloads(args):
            repo, bare = make_workload(root, workload, count, size, env)
            times = {(c, op): [] for c in ("basic", "ferry") for op in ("push", "fetch")}
            for n in range(args.runs):
                # Alternate who goes first so neither always meets a warmer cache.
                clients = ("basic", "ferry") if n % 2 == 0 else ("ferry", "basic")
                for client in clients:
                    push_s, fetch_s = one_run(args, ferry, root, env, workload, repo, bare,
                                              count, client, n)
                    times[(client, "push")].append(push_s)
                    times[(client, "fetch")].append(fetch_s)
                    print("  %s run %d/%d %-5s push %6.2f s  fetch %6.2f s"
                          % (label, n + 1, args.runs, client, push_s, fetch_s), flush=True)
            results[(workload, label)] = times
            shutil.rmtree(repo, ignore_errors=True)
            shutil.rmtree(bare, ignore_errors=True)

        print()
        print("git-lfs basic vs ferry (standalone, store = the same loopback ferry-lfs-sim), "
              "medians of %d runs" % args.runs)
        print("%-14s %-6s %10s %10s %12s  %s" % ("workload", "op", "basic", "ferry",
                                                 "ferry/basic", "target"))
        for (workload, label), times in results.items():
            for op in ("push", "fetch"):
                basic = statistics.median(times[("basic", op)])
                mine = statistics.median(times[("ferry", op)])
                ratio = mine / basic
                target = TARGETS.get((workload, op))
                verdict = ""
                if target:
                    verdict = "<= %.2f (%s): %s" % (target[0], target[1],
                                                    "met" if ratio <= target[0] else "MISSED")
                print("%-14s %-6s %9.2fs %9.2fs %12.2f  %s" % (label, op, basic, mine, ratio,
                                                             verdict))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
