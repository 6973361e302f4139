#!/usr/bin/env python3
"""`ferry migrate` against `rclone copy`, store to store, and `ferry migrate`
into a Git LFS server 50 ms away.

    python3 bench/migrate.py [--ferry build/ferry] [--runs 3] [--only WORKLOAD] [--keep]

Workloads (--only, repeatable; default: all but million):

  small-folder  10,000 x 4 KiB, folder -> folder
  small-s3      10,000 x 4 KiB, folder -> radosgw (S3)
  large-folder  10 x 100 MiB,   folder -> folder
  large-s3      10 x 100 MiB,   folder -> radosgw (S3)
  latency       2,000 x 4 KiB,  folder -> ferry-lfs-sim answering every
                request after 50 ms; `ferry migrate` alone, with
                --transfers 8, 16, 64 and auto, in objects/s against the ideal
  million       1,000,000 objects of 1 B to 1 KiB, folder -> folder
                (--million-count); only when named with --only

The source is a folder in git-lfs's layout (<oid[0:2]>/<oid[2:4]>/<oid>),
made once per workload. Every run gets a fresh destination (a new folder, a new
bucket, a new server root) and Ferry a fresh journal. Ferry runs
`ferry migrate --transfers 8`, rclone `rclone copy --transfers 8 --checkers 8`
(plus --fast-list towards S3, so it lists the empty bucket once rather than
once per folder), each at its defaults otherwise. The two take turns going
first. After every run the destination must hold every object with its size
(and Ferry's report must say it copied them all); after the first Ferry run
of a workload, a sample of objects is hashed too. Before each run the page
cache is written back (sync); the small workloads' destinations are removed
only after their last run (see DEFER_CLEANUP_BYTES).

Prints one line per run (seconds, the peak RSS of the process from os.wait4,
for S3 the requests radosgw logged by method, for the latency workload the
server's request counts and the most connections it had open at once), then
the medians, the ratio Ferry / rclone (below 1.0: Ferry is faster), the
median peak RSS, the requests per object, and the latency table.

The S3 workloads start their own radosgw (tests/s3/radosgw.sh, memstore OSD)
on --rgw-port / --mon-port with fresh random keys, which reach the clients only
through the environment, and stop it at the end. Works in a throw-away
directory under $TMPDIR with its own HOME, removed at the end unless --keep.
On-demand only, not part of the test suite.
"""

import argparse
import contextlib
import hashlib
import json
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
from collections import Counter, namedtuple

# The same quiet runner and simulator wrapper as the agent benches, and the
# same radosgw, rclone configuration and listing checks as the S3 bench.
from lfs_agent import Sim, run
from s3_agent import RADOSGW_SCRIPT, Radosgw, bucket_objects, check_holds, local_objects, \
    rclone_env

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_FERRY = os.path.normpath(os.path.join(HERE, "..", "build", "ferry"))

TRANSFERS = 8
# Ferry / rclone ratio asked for each workload compared with rclone.
TARGETS = {"small-folder": 0.9, "small-s3": 0.9, "large-folder": 0.8, "large-s3": 0.9}
# Objects hashed after the first Ferry run of a workload.
SPOT_SMALL = 16
SPOT_LARGE = 3
# --transfers values of the latency workload, and auto's ceiling
# (cli/migrate.cpp).
LATENCY_TRANSFERS = ("8", "16", "64", "auto")
AUTO_CEILING = 64
# Each storage request of an upload (PUT, then verify) waits this long, and
# so does each batch request (one per 100 objects).
LATENCY_MS = 50
# Storage requests one object needs in sequence on the LFS path.
REQUESTS_IN_SEQUENCE = 2
# The S3 bucket prefix, as in s3_agent.py.
PREFIX = "lfs"

WORKLOADS = ("small-folder", "small-s3", "large-folder", "large-s3", "latency", "million")
# Workloads run only when --only names them (they take long).
ON_DEMAND = ("million",)
# Object sizes of the million workload, in bytes (uniform).
MILLION_SIZES = (1, 1024)
# Peak RSS the issue allows Ferry for the million workload.
MILLION_RSS_MIB = 256

# Destinations of a workload whose runs together write at most this much
# are removed only after its last run. ext4 passes over inodes freed in the
# last minute when it allocates new ones, reading each, so deleting 10,000
# files just before a run makes that run's file creation several times
# slower (rclone's 10,000 x 4 KiB copy: 2 s after no deletion, 8 to 12 s
# right after one).
DEFER_CLEANUP_BYTES = 1 << 30

# The benchmark's own rclone calls (bucket creation, checks, purge) carry
# this user agent, so the radosgw's request log tells them from the runs'.
CHECK_AGENT = "ferry-bench-check"
# A request line of radosgw's log: method, status and user agent.
RGW_REQUEST = re.compile(r'beast: .*"([A-Z]+) \S+ HTTP/[\d.]+" (\d+) \S+ \S+ "([^"]*)"')

# One timed run: wall seconds, peak RSS in MiB, and for S3 the requests the
# radosgw received from the client by method (else None).
# What timed() measures of one command: wall time, peak RSS, CPU (user + system).
Measured = namedtuple("Measured", "seconds rss cpu")
# One run: the command's Measured, radosgw's requests and CPU during it (S3 only).
Run = namedtuple("Run", "seconds rss cpu requests server_cpu")
# One latency run: objects/s, PUT + verify requests per object, batch
# requests, the most connections the server had open at once, peak RSS MiB.
LatencyRun = namedtuple("LatencyRun", "rate per_object batches connections rss")


def make_source(folder, count, size):
    """`count` random objects of `size` bytes under `folder`, named by their
    SHA-256 in git-lfs's layout; returns {"<aa>/<bb>/<oid>": size}."""
    expected = {}
    scratch = os.path.join(folder, "incoming")
    os.makedirs(folder)
    for _ in range(count):
        digest = hashlib.sha256()
        with open(scratch, "wb") as f:
            left = size
            while left > 0:
                piece = os.urandom(min(left, 8 << 20))
                digest.update(piece)
                f.write(piece)
                left -= len(piece)
        oid = digest.hexdigest()
        key = "%s/%s/%s" % (oid[:2], oid[2:4], oid)
        os.makedirs(os.path.join(folder, oid[:2], oid[2:4]), exist_ok=True)
        os.rename(scratch, os.path.join(folder, key))
        expected[key] = size
    return expected


def make_many_source(folder, count, low, high):
    """`count` random objects of `low` to `high` bytes under `folder` in
    git-lfs's layout, written with plain system calls (fast enough for a
    million); returns {"<aa>/<bb>/<oid>": size}."""
    expected = {}
    sizes = random.Random(count)
    for first in range(256):
        for second in range(256):
            os.makedirs(os.path.join(folder, "%02x" % first, "%02x" % second))
    while len(expected) < count:
        data = sizes.randbytes(sizes.randint(low, high))
        oid = hashlib.sha256(data).hexdigest()
        key = "%s/%s/%s" % (oid[:2], oid[2:4], oid)
        if key in expected:
            continue  # tiny objects repeat (there are 256 of 1 byte)
        fd = os.open(os.path.join(folder, key), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        expected[key] = len(data)
    return expected


def sha256_of(stream):
    digest = hashlib.sha256()
    for piece in iter(lambda: stream.read(8 << 20), b""):
        digest.update(piece)
    return digest.hexdigest()


def spot_keys(expected, how_many):
    """A reproducible sample of the keys."""
    return random.Random(len(expected)).sample(sorted(expected), min(how_many, len(expected)))


def spot_check_folder(what, folder, keys):
    for key in keys:
        with open(os.path.join(folder, key), "rb") as f:
            if sha256_of(f) != os.path.basename(key):
                sys.exit("%s: %s does not hash to its oid" % (what, key))


def spot_check_bucket(what, bucket, keys, env):
    for key in keys:
        cat = subprocess.Popen(["rclone", "cat", "rgw:%s/%s/%s" % (bucket, PREFIX, key)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        digest = sha256_of(cat.stdout)
        if cat.wait() != 0 or digest != os.path.basename(key):
            sys.exit("%s: %s cannot be read back or does not hash to its oid" % (what, key))


def timed(cmd, env, log_path):
    """Runs `cmd` with its output in `log_path`; returns its Measured. Peak
    RSS (MiB) and CPU seconds are the process's own, from os.wait4."""
    with open(log_path, "ab") as log:
        started = time.perf_counter()
        child = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT)
        _, wait_status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
    # Reaped here, so Popen must not wait for it again.
    child.returncode = os.waitstatus_to_exitcode(wait_status)
    if child.returncode != 0:
        with open(log_path, errors="replace") as log:
            sys.exit("%s failed with %d:\n%s" % (" ".join(cmd), child.returncode,
                                                 log.read()[-3000:]))
    return Measured(seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime)


def rgw_requests(log, offset):
    """{method: count} of the requests in radosgw's log after `offset`,
    other than the benchmark's own; None without a log."""
    try:
        with open(log, errors="replace") as f:
            f.seek(offset)
            lines = f.readlines()
    except OSError:
        return None
    counted = Counter()
    for line in lines:
        found = RGW_REQUEST.search(line)
        if found and found.group(3) != CHECK_AGENT:
            counted[found.group(1)] += 1
    return counted


def requests_text(requests, per=1):
    return ", ".join("%s %s" % (("%d" if per == 1 else "%.3g") % (count / per), method)
                     for method, count in sorted(requests.items()))


def established(port):
    """How many established TCP connections a loopback server on `port` has
    (its side of them, from /proc/net/tcp)."""
    local = ":%04X" % port
    with open("/proc/net/tcp") as f:
        next(f)
        # Fields: sl, local address, remote address, state (01: established).
        return sum(1 for fields in map(str.split, f)
                   if fields[1].endswith(local) and fields[3] == "01")


@contextlib.contextmanager
def connection_peak(port, interval=0.05):
    """While the block runs, samples established(port) every `interval` s;
    yields a namespace whose `peak` is the largest count seen."""
    seen = types.SimpleNamespace(peak=0)
    stop = threading.Event()

    def sample():
        while True:
            seen.peak = max(seen.peak, established(port))
            if stop.wait(interval):
                return

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield seen
    finally:
        stop.set()
        sampler.join()


def check_report(path, count):
    """Stops the benchmark unless Ferry's JSON report says it copied all."""
    with open(path) as f:
        report = json.load(f)
    if report["outcome"] != "complete" or report["copied"]["objects"] != count:
        sys.exit("ferry's report %s: outcome %s, %d of %d objects copied"
                 % (path, report["outcome"], report["copied"]["objects"], count))


class Bench:
    """The work directory, the environments and the radosgw (started when
    the first S3 run needs it)."""

    def __init__(self, args, root):
        self.args = args
        self.ferry = os.path.abspath(args.ferry)
        self.sim = os.path.abspath(args.sim or os.path.join(os.path.dirname(self.ferry),
                                                            "ferry-lfs-sim"))
        self.root = root
        home = os.path.join(root, "home")
        os.makedirs(home)
        for sub in ("logs", "journals", "dest"):
            os.makedirs(os.path.join(root, sub))
        # Nothing of the caller's git, Ferry, AWS (AWS_CA_BUNDLE among
        # them) or rclone setup, and no proxy.
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("GIT_", "FERRY_", "AWS_", "RCLONE_")) and
                    k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
        self.env.update(HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
                        XDG_STATE_HOME=os.path.join(home, ".local", "state"),
                        GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0", LC_ALL="C",
                        RCLONE_CONFIG="/dev/null")
        self.rgw = None
        self.sources = {}
        # Removals put off until the workload's last run (see
        # DEFER_CLEANUP_BYTES), and whether the current workload defers.
        self.cleanups = []
        self.defer = False
        self.sync_seconds = 0.0

    def settle(self):
        """Writes back what earlier runs left dirty, so it does not land in
        the next run's time."""
        started = time.monotonic()
        os.sync()
        self.sync_seconds += time.monotonic() - started

    def dispose(self, remove):
        """Calls `remove` now, or after the workload's last run."""
        if self.defer:
            self.cleanups.append(remove)
        else:
            remove()

    def end_workload(self):
        for remove in self.cleanups:
            remove()
        self.cleanups = []

    def source(self, name, count, size):
        """The source folder of `name` and its {key: size}, made once.
        `size` is a number of bytes, or (low, high) for sizes in between."""
        if name not in self.sources:
            folder = os.path.join(self.root, "src-" + name)
            began = time.monotonic()
            if isinstance(size, tuple):
                print("making the source %s: %d x %d to %d bytes" % ((name, count) + size),
                      flush=True)
                expected = make_many_source(folder, count, *size)
            else:
                print("making the source %s: %d x %d bytes" % (name, count, size), flush=True)
                expected = make_source(folder, count, size)
            print("  made in %.0f s" % (time.monotonic() - began), flush=True)
            self.sources[name] = (folder, expected)
        return self.sources[name]

    def drop_source(self, name):
        folder, _ = self.sources.pop(name)
        shutil.rmtree(folder, ignore_errors=True)

    def radosgw(self):
        if not self.rgw:
            self.rgw = Radosgw(os.path.abspath(self.args.radosgw_script), self.root,
                               self.args.rgw_port, self.args.mon_port,
                               self.args.memstore_gib << 30)
            self.rclone_s3_env = rclone_env(self.env, self.rgw)
            self.check_env = dict(self.rclone_s3_env, RCLONE_USER_AGENT=CHECK_AGENT)
            self.rgw_log = os.path.join(self.rgw.dir, "log", "client.rgw.a.log")
            self.ferry_s3_env = dict(self.env, AWS_ACCESS_KEY_ID=self.rgw.access_key,
                                     AWS_SECRET_ACCESS_KEY=self.rgw.secret_key)
        return self.rgw

    def names(self, workload, client, n):
        """(log file, journal dir, report file) of one run."""
        base = "%s-%s-%d" % (workload, client, n)
        return (os.path.join(self.root, "logs", base + ".log"),
                os.path.join(self.root, "journals", base),
                os.path.join(self.root, "logs", base + ".report.json"))

    def ferry_migrate(self, workload, n, source, target, env, transfers, count):
        log, journal, report = self.names(workload, "ferry", n)
        measured = timed([self.ferry, "migrate", "--from", source, "--to", target,
                          "--transfers", transfers, "--journal", journal, "--report", report],
                         env, log)
        check_report(report, count)
        if not self.args.keep:
            shutil.rmtree(journal, ignore_errors=True)
        return measured

    def rclone_copy(self, workload, n, source, target, env, extra=()):
        log, _, _ = self.names(workload, "rclone", n)
        return timed(["rclone", "copy", source, target, "--transfers", str(TRANSFERS),
                      "--checkers", str(TRANSFERS)] + list(extra), env, log)

    def folder_run(self, workload, source, expected, client, n, spot):
        """One run into a fresh folder; returns (seconds, peak RSS MiB)."""
        target = os.path.join(self.root, "dest", "%s-%s-%d" % (workload, client, n))
        self.settle()
        if client == "ferry":
            measured = self.ferry_migrate(workload, n, source, target, self.env,
                                          str(TRANSFERS), len(expected))
        else:
            measured = self.rclone_copy(workload, n, source, target, self.env)
        check_holds("%s %s run %d" % (workload, client, n + 1), local_objects(target), expected)
        if spot:
            spot_check_folder("%s %s" % (workload, client), target, spot)
        if not (self.args.keep and n == self.args.runs - 1):
            self.dispose(lambda: shutil.rmtree(target, ignore_errors=True))
        return Run(*measured, None, None)

    def drop_bucket(self, bucket):
        run(["rclone", "purge", "rgw:" + bucket, "--checkers", "16", "--transfers", "16"],
            env=self.check_env, check=False)
        # The memstore OSD keeps deleted objects in RAM until collected.
        self.rgw.collect_garbage()

    def s3_run(self, workload, source, expected, client, n, spot):
        """One run into a fresh bucket, deleted afterwards."""
        rgw = self.radosgw()
        bucket = "bench-%s-%s-%d-%s" % (workload, client, n, secrets.token_hex(3))
        run(["rclone", "mkdir", "rgw:" + bucket], env=self.check_env)
        logged = os.path.getsize(self.rgw_log) if os.path.exists(self.rgw_log) else 0
        try:
            self.settle()
            server_cpu = rgw.cpu_seconds()
            if client == "ferry":
                target = "s3://%s/%s?endpoint=%s" % (bucket, PREFIX, rgw.endpoint)
                measured = self.ferry_migrate(workload, n, source, target, self.ferry_s3_env,
                                              str(TRANSFERS), len(expected))
            else:
                measured = self.rclone_copy(workload, n, source,
                                            "rgw:%s/%s" % (bucket, PREFIX), self.rclone_s3_env,
                                            ["--fast-list"])
            server_cpu = rgw.cpu_seconds() - server_cpu
            check_holds("%s %s run %d" % (workload, client, n + 1),
                        bucket_objects(bucket, self.check_env), expected)
            if spot:
                spot_check_bucket("%s %s" % (workload, client), bucket, spot, self.check_env)
            # Read after the checks, so radosgw has logged the run's last
            # requests.
            requests = rgw_requests(self.rgw_log, logged)
        finally:
            self.dispose(lambda: self.drop_bucket(bucket))
        return Run(*measured, requests, server_cpu)

    def compare(self, workload, kind, destination, count, size):
        """Ferry and rclone, --runs each, copying the source `kind` (see
        source()) into a folder or a bucket; returns {client: [Run]}."""
        source, expected = self.source(kind, count, size)
        one_run = self.folder_run if destination == "folder" else self.s3_run
        spot_count = SPOT_LARGE if kind == "large" else SPOT_SMALL
        total = sum(expected.values())
        self.defer = 2 * self.args.runs * total <= DEFER_CLEANUP_BYTES
        results = {"rclone": [], "ferry": []}
        for n in range(self.args.runs):
            # Alternate who goes first so neither always meets a warmer cache.
            for client in (("rclone", "ferry") if n % 2 == 0 else ("ferry", "rclone")):
                spot = spot_keys(expected, spot_count) if client == "ferry" and n == 0 else None
                measured = one_run(workload, source, expected, client, n, spot)
                results[client].append(measured)
                print("  %-12s run %d/%d %-6s %7.2f s  peak RSS %5.0f MiB  CPU %5.2f s%s%s%s"
                      % (workload, n + 1, self.args.runs, client, measured.seconds, measured.rss,
                         measured.cpu,
                         "  radosgw CPU %5.2f s" % measured.server_cpu
                         if measured.server_cpu is not None else "",
                         "  radosgw: " + requests_text(measured.requests)
                         if measured.requests else "",
                         "  (%d objects hashed: ok)" % len(spot) if spot else ""), flush=True)
        self.end_workload()
        return results

    def latency(self, count, size):
        """`ferry migrate` into a server that answers every request after
        LATENCY_MS; returns {transfers: [LatencyRun]}."""
        source, expected = self.source("latency", count, size)
        scenario = os.path.join(self.root, "latency.json")
        with open(scenario, "w") as f:
            json.dump({"name": "latency-%dms" % LATENCY_MS,
                       "rules": [{"name": "every request waits",
                                  "fault": {"stall_ms": LATENCY_MS}}]}, f)
        self.defer = len(LATENCY_TRANSFERS) * self.args.runs * count * size <= DEFER_CLEANUP_BYTES
        results = {}
        for n in range(self.args.runs):
            for transfers in LATENCY_TRANSFERS:
                server_root = os.path.join(self.root, "dest", "latency-%s-%d" % (transfers, n))
                sim = Sim(self.sim, server_root, self.root, scenario)
                try:
                    self.settle()
                    with connection_peak(int(sim.url.rsplit(":", 1)[1])) as connections:
                        seconds, rss, _ = self.ferry_migrate(
                            "latency-%s" % transfers, n, source,
                            "lfs+" + sim.lfs_url(), self.env, transfers, count)
                    stats = sim.stats()
                finally:
                    sim.stop()
                check_holds("latency --transfers %s run %d" % (transfers, n + 1),
                            local_objects(server_root), expected)
                if n == 0 and transfers == LATENCY_TRANSFERS[0]:
                    spot_check_folder("latency", server_root, spot_keys(expected, SPOT_SMALL))
                if not (self.args.keep and n == self.args.runs - 1):
                    self.dispose(lambda root=server_root: shutil.rmtree(root, ignore_errors=True))
                requests = stats["requests"]
                per_object = (requests["upload"] + requests["verify"]) / count
                rate = count / seconds
                results.setdefault(transfers, []).append(
                    LatencyRun(rate, per_object, requests["batch"], connections.peak, rss))
                print("  latency      run %d/%d --transfers %-4s %7.2f s  %6.1f objects/s  "
                      "%d batch, %d PUT, %d verify  %d connections at most  peak RSS %4.0f MiB"
                      % (n + 1, self.args.runs, transfers, seconds, rate, requests["batch"],
                         requests["upload"], requests["verify"], connections.peak, rss),
                      flush=True)
        self.end_workload()
        return results

    def close(self):
        if self.rgw:
            self.rgw.stop()


def print_comparison(compared, runs):
    print()
    print("ferry migrate --transfers %d vs rclone copy --transfers %d --checkers %d, "
          "medians of %d runs" % (TRANSFERS, TRANSFERS, TRANSFERS, runs))
    width = max(32, max(len(label) for _, label, _, _ in compared))
    print("%-*s %9s %9s %13s  %-17s %s" % (width, "workload", "rclone", "ferry", "ferry/rclone",
                                           "target", "peak RSS rclone / ferry"))
    for workload, label, count, results in compared:
        theirs = statistics.median(r.seconds for r in results["rclone"])
        mine = statistics.median(r.seconds for r in results["ferry"])
        ratio = mine / theirs
        target = TARGETS.get(workload)
        verdict = ("<= %.1f: %s" % (target, "met" if ratio <= target else "MISSED")
                   if target else "none")
        print("%-*s %8.2fs %8.2fs %13.2f  %-17s %.0f / %.0f MiB"
              % (width, label, theirs, mine, ratio, verdict,
                 statistics.median(r.rss for r in results["rclone"]),
                 statistics.median(r.rss for r in results["ferry"])))
    for workload, label, count, results in compared:
        if workload == "million":
            peak = max(r.rss for r in results["ferry"])
            print("%s: ferry's highest peak RSS %.0f MiB, target <= %d MiB: %s"
                  % (label, peak, MILLION_RSS_MIB, "met" if peak <= MILLION_RSS_MIB else "MISSED"))
    # Both sides of the work: a client that leaves checks to the server
    # makes the server spend the CPU instead.
    for _, label, count, results in compared:
        line = []
        for client in ("rclone", "ferry"):
            text = "%s %.2f s" % (client, statistics.median(r.cpu for r in results[client]))
            served = [r.server_cpu for r in results[client] if r.server_cpu is not None]
            if served:
                text += " + radosgw %.2f s" % statistics.median(served)
            line.append(text)
        print("CPU per run (medians), %s: %s" % (label, "; ".join(line)))
    for _, label, count, results in compared:
        for client in ("rclone", "ferry"):
            counted = [r.requests for r in results[client] if r.requests]
            if counted:
                # The request counts of the first run; they hardly vary.
                print("radosgw requests per object, %s, %s: %s"
                      % (label, client, requests_text(counted[0], count)))


def print_latency(results, count, runs):
    per_copy = REQUESTS_IN_SEQUENCE * LATENCY_MS / 1000
    print()
    print("ferry migrate, %d x 4 KiB, folder -> LFS server answering every request after %d ms,"
          " medians of %d runs" % (count, LATENCY_MS, runs))
    print("a copy is a PUT, then a verify: %d requests in sequence, so N copies in flight move "
          "at most N / %.2f s objects/s; one batch request per 100 objects"
          % (REQUESTS_IN_SEQUENCE, per_copy))
    print("%-11s %9s %12s %8s %12s %14s %8s %7s %9s"
          % ("--transfers", "objects/s", "ideal N/%.2fs" % per_copy, "of it", "connections",
             "ideal at those", "of it", "batches", "peak RSS"))
    for transfers, runs_of in results.items():
        rate = statistics.median(r.rate for r in runs_of)
        wanted = AUTO_CEILING if transfers == "auto" else int(transfers)
        ideal = wanted / per_copy
        connections = statistics.median(r.connections for r in runs_of)
        # One request per connection at a time: what the connections allow.
        possible = connections / per_copy
        print("%-11s %9.1f %12.0f %7.0f%% %12.0f %14.0f %7.0f%% %7.0f %5.0f MiB"
              % (transfers if transfers != "auto" else "auto (<=%d)" % AUTO_CEILING, rate, ideal,
                 100 * rate / ideal, connections, possible, 100 * rate / possible,
                 statistics.median(r.batches for r in runs_of),
                 statistics.median(r.rss for r in runs_of)))
    print("requests per object: %.2f PUT + verify (plus the batches)"
          % statistics.median(r.per_object for runs_of in results.values() for r in runs_of))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ferry", default=DEFAULT_FERRY,
                        help="the ferry binary (default: build/ferry)")
    parser.add_argument("--sim", help="ferry-lfs-sim (default: next to ferry)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", action="append", choices=WORKLOADS,
                        help="run only this workload (repeatable; default: all)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory: sources, logs, Ferry's journals and "
                        "the last run's folder destinations")
    parser.add_argument("--small-count", type=int, default=10000)
    parser.add_argument("--small-kib", type=int, default=4)
    parser.add_argument("--large-count", type=int, default=10)
    parser.add_argument("--large-mib", type=int, default=100)
    parser.add_argument("--latency-count", type=int, default=2000)
    parser.add_argument("--million-count", type=int, default=1000000,
                        help="objects of the million workload (default 1,000,000)")
    parser.add_argument("--rgw-port", type=int, default=17790)
    parser.add_argument("--mon-port", type=int, default=17099)
    parser.add_argument("--radosgw-script", default=RADOSGW_SCRIPT,
                        help="what starts and stops the radosgw, with the interface of "
                        "tests/s3/radosgw.sh (the default)")
    parser.add_argument("--memstore-gib", type=int, default=3,
                        help="RAM the radosgw's OSD may use (default 3)")
    args = parser.parse_args()
    chosen = args.only or [w for w in WORKLOADS if w not in ON_DEMAND]
    if args.runs < 1:
        sys.exit("--runs must be at least 1")
    if not os.access(args.ferry, os.X_OK):
        sys.exit("not an executable: %s (build it, or name it with --ferry)" % args.ferry)
    needed = ["rclone"] if any(w != "latency" for w in chosen) else []
    if any(w.endswith("-s3") for w in chosen):
        needed += ["radosgw", "radosgw-admin"]
    for tool in needed:
        if not shutil.which(tool):
            sys.exit("'%s' is not installed (.ci/install-deps installs it)" % tool)
    if args.large_count * (args.large_mib << 20) > (args.memstore_gib << 30) - (512 << 20):
        sys.exit("the large workload does not fit the radosgw's RAM store (--memstore-gib)")

    root = tempfile.mkdtemp(prefix="ferry-bench-migrate-", dir=os.environ.get("TMPDIR"))
    bench = Bench(args, root)
    if "latency" in chosen and not os.access(bench.sim, os.X_OK):
        sys.exit("not an executable: %s (build ferry-lfs-sim, or name it with --sim)"
                 % bench.sim)
    started = time.monotonic()
    compared = []
    latency = None
    try:
        sizes = {"small": (args.small_count, args.small_kib << 10, "%d x %d KiB"
                           % (args.small_count, args.small_kib)),
                 "large": (args.large_count, args.large_mib << 20, "%d x %d MiB"
                           % (args.large_count, args.large_mib)),
                 "million": (args.million_count, MILLION_SIZES, "{:,} x {} B to {} KiB".format(
                     args.million_count, MILLION_SIZES[0], MILLION_SIZES[1] >> 10))}
        order = [workload for workload in WORKLOADS if workload in chosen]
        for i, workload in enumerate(order):
            print("%s (load average %.1f)" % (workload, os.getloadavg()[0]), flush=True)
            began, synced = time.monotonic(), bench.sync_seconds
            if workload == "latency":
                latency = bench.latency(args.latency_count, 4 << 10)
            else:
                kind, destination = (workload.split("-") if "-" in workload
                                     else (workload, "folder"))
                count, size, label = sizes[kind]
                results = bench.compare(workload, kind, destination, count, size)
                compared.append((workload, "%s, folder -> %s" % (label, "folder" if destination == "folder"
                                                        else "radosgw"), count, results))
                # A source no later workload reads gives its disk space back.
                if not args.keep and not any(w.startswith(kind + "-") for w in order[i + 1:]):
                    bench.drop_source(kind)
            print("  took %.0f s (%.0f s of it in sync)"
                  % (time.monotonic() - began, bench.sync_seconds - synced), flush=True)
        if compared:
            print_comparison(compared, args.runs)
        if latency:
            print_latency(latency, args.latency_count, args.runs)
        print()
        print("total %.0f s" % (time.monotonic() - started))
    finally:
        bench.close()
        if args.keep:
            print("kept %s" % root)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
