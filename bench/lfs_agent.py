#!/usr/bin/env python3
"""Push and fetch through a loopback Git LFS server (ferry-lfs-sim, no
faults): git-lfs's own `basic` adapter against Ferry as the standalone agent
whose store is the same server.

    python3 bench/lfs_agent.py <path-to-ferry> [--sim <ferry-lfs-sim>] [--runs 5]
                               [--daemon true|false] [--capped-mib-s 32]

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

Ferry runs as `ferry install` sets it up, so both clients run at git-lfs's
defaults (8 transfers at once): its 8 agents are thin clients of a daemon of
this run's own (FERRY_DAEMON_DIR in the throw-away directory), stopped at
the end. --daemon false has each agent run the engine itself
(FERRY_DAEMON); --one-agent sets lfs.customtransfer.ferry.concurrent=false
(one agent at a time, as earlier versions installed Ferry). If the benchmark
fails, the daemon's logs are kept and their directory printed.

--capped-mib-s N adds a third operation to the large workload: after the
fetch, the server is started again on the same objects with every download
connection capped at N MiB/s, and a fresh clone fetches them all again.
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

# Ferry / basic ratios to stay at or below, by (workload, operation): with
# Ferry's one sequential agent (--one-agent)...
ONE_AGENT_TARGETS = {
    ("large", "fetch"): (1 / 1.5, "ferry >= 1.5x faster"),
    ("small", "push"): (1.2, "ferry within 1.2x"),
    ("small", "fetch"): (1.2, "ferry within 1.2x"),
}
# ...and with both clients at git-lfs's defaults.
TARGETS = {
    ("small", "push"): (1.0, "ferry as fast"),
    ("small", "fetch"): (1.0, "ferry as fast"),
    ("large", "fetch"): (1.0, "ferry as fast"),
    ("large", "fetch capped"): (0.5, "ferry >= 2x faster"),
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


def use_client(repo, client, ferry, sim, env, one_agent):
    """Points the repository's LFS transfers at the server through `client`;
    `one_agent` has git-lfs run one Ferry agent at a time instead of 8."""
    run(["git", "config", "--unset-all", "lfs.standalonetransferagent"], repo, env, check=False)
    if client == "ferry":
        run([ferry, "install", "--store", "lfs+" + sim.lfs_url()], repo, env)
        if one_agent:
            run(["git", "config", "lfs.customtransfer.ferry.concurrent", "false"], repo, env)
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


def timed_fetch(args, ferry, env, bare, count, client, sim, clone):
    """Times `git lfs fetch` of every object in a fresh clone of `bare`."""
    clone_env = dict(env, GIT_LFS_SKIP_SMUDGE="1")
    run(["git", "clone", "-q", bare, clone], env=clone_env)
    use_client(clone, client, ferry, sim, env, args.one_agent)
    fetch_s, _ = run(["git", "lfs", "fetch"], clone, env)
    got = count_objects(clone)
    if got != count:
        sys.exit("%s fetch got %d of %d objects" % (client, got, count))
    return fetch_s


def one_run(args, ferry, root, env, workload, repo, bare, count, client, n):
    """Times one push and one fetch for `client` (and, for the large workload
    with --capped-mib-s, a fetch from the capped server); returns
    {operation: seconds}."""
    sim_root = os.path.join(root, "sim-root")
    shutil.rmtree(sim_root, ignore_errors=True)
    sim = Sim(args.sim, sim_root, root, args.scenario)
    clone = os.path.join(root, "clone-%s-%s-%d" % (workload, client, n))
    times = {}
    try:
        use_client(repo, client, ferry, sim, env, args.one_agent)
        times["push"], _ = run(["git", "lfs", "push", "origin", "main"], repo, env)
        stored = sim.stats()["events"]["stored"]
        if stored != count:
            sys.exit("%s push stored %d of %d objects" % (client, stored, count))
        pushed_batches = sim.stats()["requests"].get("batch", 0)
        times["fetch"] = timed_fetch(args, ferry, env, bare, count, client, sim, clone)
        # Batch API calls: what a server that limits them sees of each client.
        print("%s %s run %d: %d batch requests for the push, %d for the fetch" % (
            workload, client, n, pushed_batches,
            sim.stats()["requests"].get("batch", 0) - pushed_batches), file=sys.stderr)
        if workload == "large" and args.capped_scenario:
            shutil.rmtree(clone, ignore_errors=True)
            sim.stop()
            sim = Sim(args.sim, sim_root, root, args.capped_scenario)
            times["fetch capped"] = timed_fetch(args, ferry, env, bare, count, client,
                                                sim, clone)
        return times
    finally:
        sim.stop()
        shutil.rmtree(clone, ignore_errors=True)
        shutil.rmtree(sim_root, ignore_errors=True)


def capped_scenario(path, mib_s):
    """Writes a scenario that caps every download connection at `mib_s` MiB/s."""
    with open(path, "w") as f:
        json.dump({"name": "bench-capped-downloads", "seed": 1, "rules": [
            {"name": "per-connection cap on downloads", "match": {"endpoint": "download"},
             "fault": {"bandwidth_bytes_per_s": mib_s << 20}}]}, f)
    return path


def keep_daemon_logs(daemon_dir):
    """Copies the daemon's logs, if it wrote any, out of the throw-away
    directory."""
    logs = [os.path.join(daemon_dir, name) for name in ("daemon.log", "ferry.log")
            if os.path.exists(os.path.join(daemon_dir, name))]
    if not logs:
        return
    kept = tempfile.mkdtemp(prefix="ferry-bench-lfs-logs-", dir=os.environ.get("TMPDIR"))
    for log in logs:
        shutil.copy(log, kept)
    print("the daemon's logs: %s" % kept, file=sys.stderr)


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
    parser.add_argument("--daemon", choices=("true", "false"), default="true",
                        help="ferry.daemon for Ferry's agents (default: true)")
    parser.add_argument("--one-agent", action="store_true",
                        help="git-lfs runs one Ferry agent at a time (concurrent=false)")
    parser.add_argument("--capped-mib-s", type=int, default=0,
                        help="also fetch the large objects from the server with each download "
                        "connection capped at this many MiB/s")
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
    args.capped_scenario = None
    if args.capped_mib_s > 0:
        args.capped_scenario = capped_scenario(os.path.join(root, "capped.json"),
                                               args.capped_mib_s)
    daemon_dir = os.path.join(root, "daemon")
    os.makedirs(daemon_dir, mode=0o700)
    env.update(FERRY_DAEMON=args.daemon, FERRY_DAEMON_DIR=daemon_dir)
    done = False
    try:
        for key, value in (("user.name", "Ferry bench"), ("user.email", "bench@example.invalid"),
                           ("init.defaultBranch", "main")):
            run(["git", "config", "--global", key, value], env=env)
        run(["git", "lfs", "install", "--skip-repo"], env=env)

        results = {}
        for workload, label, count, size in workloads(args):
            repo, bare = make_workload(root, workload, count, size, env)
            times = {}
            for n in range(args.runs):
                # Alternate who goes first so neither always meets a warmer cache.
                clients = ("basic", "ferry") if n % 2 == 0 else ("ferry", "basic")
                for client in clients:
                    got = one_run(args, ferry, root, env, workload, repo, bare, count, client, n)
                    for op, seconds in got.items():
                        times.setdefault(op, {}).setdefault(client, []).append(seconds)
                    print("  %s run %d/%d %-5s %s" % (label, n + 1, args.runs, client, "  ".join(
                        "%s %6.2f s" % (op, seconds) for op, seconds in got.items())), flush=True)
            results[(workload, label)] = times
            shutil.rmtree(repo, ignore_errors=True)
            shutil.rmtree(bare, ignore_errors=True)

        print()
        print("git-lfs basic vs ferry (standalone, store = the same loopback ferry-lfs-sim), "
              "medians of %d runs" % args.runs)
        print("ferry.daemon=%s, %s" % (args.daemon, "concurrent=false (one agent)"
                                            if args.one_agent else "8 agents"))
        if args.capped_scenario:
            print("fetch capped: every download connection capped at %d MiB/s"
                  % args.capped_mib_s)
        print("%-14s %-13s %10s %10s %12s  %s" % ("workload", "op", "basic", "ferry",
                                                  "ferry/basic", "target"))
        targets = ONE_AGENT_TARGETS if args.one_agent else TARGETS
        for (workload, label), times in results.items():
            for op, by_client in times.items():
                basic = statistics.median(by_client["basic"])
                mine = statistics.median(by_client["ferry"])
                ratio = mine / basic
                target = targets.get((workload, op))
                verdict = ""
                if target:
                    verdict = "<= %.2f (%s): %s" % (target[0], target[1],
                                                    "met" if ratio <= target[0] else "MISSED")
                print("%-14s %-13s %9.2fs %9.2fs %12.2f  %s" % (label, op, basic, mine, ratio,
                                                              verdict))
        done = True
    finally:
        if args.daemon == "true":
            run([ferry, "daemon", "stop"], env=env, check=False)
        if daemon_dir and not done:
            keep_daemon_logs(daemon_dir)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
