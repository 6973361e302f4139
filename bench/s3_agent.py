#!/usr/bin/env python3
"""Upload and download through a loopback Ceph radosgw (S3): Ferry as git-lfs's
standalone agent with an s3:// store, against `rclone copy` to and from the
same radosgw with the same concurrency.

    python3 bench/s3_agent.py <path-to-ferry> [--runs 3]

It starts its own radosgw (tests/s3/radosgw.sh, memstore OSD: data in RAM) on
--rgw-port / --mon-port in a throw-away directory and stops it at the end.
Two workloads, each in its own repository: many small objects (1000 x 4 KiB)
and a few large ones (10 x 100 MiB). Each run and each client gets a fresh
bucket and times:

  upload    ferry: `git lfs push origin main` of every object;
            rclone: `rclone copy` of the repository's .git/lfs/objects into
            the bucket (the same bytes under the same keys);
  download  ferry: `git lfs fetch` in a fresh clone (GIT_LFS_SKIP_SMUDGE=1),
            i.e. every object into .git/lfs/objects, verified by SHA-256;
            rclone: `rclone copy` of the bucket into a fresh local folder.

Both move one object at a time: git-lfs hands its one Ferry agent
(lfs.customtransfer.ferry.concurrent=false) one object and waits for it, and
rclone gets --transfers 1. Inside an object both use --streams connections:
Ferry's ferry.s3.uploadConcurrency parts and ferry.parallelStreams ranges,
rclone's --s3-upload-concurrency and --multi-thread-streams, with the same
32 MiB multipart/multi-stream threshold and 8 MiB parts.

Each timed command must succeed, and the bucket (upload) or the local copy
(download) must then hold every object with its size, otherwise the benchmark
stops. After each run the bucket is deleted and radosgw's garbage collector
run, so the RAM store holds at most one workload at a time. Prints one line
per run, then the medians, the ratio Ferry / rclone (target: <= 1.0) and the
peak RSS of each client. Works in a throw-away directory under $TMPDIR with its
own HOME; the S3 keys travel only in the environment. On-demand only, not part
of the test suite.
"""

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading

# The same repositories and the same quiet runner as the LFS server bench.
from lfs_agent import make_workload, run, workloads

HERE = os.path.dirname(os.path.abspath(__file__))
RADOSGW_SCRIPT = os.path.normpath(os.path.join(HERE, "..", "tests", "s3", "radosgw.sh"))

# Ferry / rclone ratio to stay at or below, for every (workload, operation).
TARGET = 1.0
# Objects of at least this size go up in parts and come down in parallel
# ranges (Ferry's default ferry.s3.multipartThreshold and
# ferry.parallelThreshold); PART_MIB is Ferry's default ferry.s3.partSize.
THRESHOLD_MIB = 32
PART_MIB = 8
# The bench deletes each bucket before the next run, but the RAM store must
# still hold one whole workload next to radosgw's own data.
MAX_WORKLOAD_BYTES = 2560 << 20
PREFIX = "lfs"


class PeakRss:
    """Watches, while a command runs, every process of this benchmark's
    process tree that runs `binary`, and keeps the largest VmHWM (the
    kernel's own peak RSS of a process) seen. Polls /proc; the bench's own
    process only sleeps in between."""

    INTERVAL = 0.05

    def __init__(self, binary):
        self.binary = os.path.realpath(binary)
        self.peak_kib = 0
        # How many processes running `binary` it found.
        self.seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *_):
        self._stop.set()
        self._thread.join()

    def _ours(self, pid):
        """True when `pid` descends from this process."""
        me = os.getpid()
        while pid > 1:
            if pid == me:
                return True
            try:
                with open("/proc/%d/stat" % pid) as f:
                    pid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                return False
        return False

    def _watch(self):
        known = set()
        while True:
            for entry in os.listdir("/proc"):
                if not entry.isdigit() or int(entry) in known:
                    continue
                try:
                    exe = os.readlink("/proc/%s/exe" % entry)
                except OSError:
                    continue
                if exe == self.binary and self._ours(int(entry)):
                    known.add(int(entry))
            for pid in known:
                try:
                    with open("/proc/%d/status" % pid) as f:
                        for line in f:
                            if line.startswith("VmHWM:"):
                                self.peak_kib = max(self.peak_kib, int(line.split()[1]))
                except OSError:
                    pass  # it has exited; its last reading stays
            self.seen = len(known)
            # A final scan after the command ended would find nothing new.
            if self._stop.wait(self.INTERVAL):
                return


class Radosgw:
    """A radosgw of our own (tests/s3/radosgw.sh), with fresh random keys."""

    def __init__(self, script, root, rgw_port, mon_port, memstore_bytes):
        self.script = script
        self.dir = os.path.join(root, "radosgw")
        self.endpoint = "http://127.0.0.1:%d" % rgw_port
        self.access_key = "BENCH" + secrets.token_hex(8).upper()
        self.secret_key = secrets.token_urlsafe(30)
        self.env = dict(os.environ, FERRY_RADOSGW_ACCESS_KEY=self.access_key,
                        FERRY_RADOSGW_SECRET_KEY=self.secret_key,
                        FERRY_RADOSGW_MEMSTORE_BYTES=str(memstore_bytes))
        print("starting radosgw on %s (a few seconds)" % self.endpoint, flush=True)
        done = subprocess.run(["bash", self.script, "start", self.dir, str(rgw_port),
                               str(mon_port)], env=self.env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            self.stop()
            sys.exit("radosgw did not start:\n%s" % done.stdout[-4000:])

    def collect_garbage(self):
        """Frees deleted objects now rather than after rgw's gc delay: the
        memstore OSD keeps them in RAM until then."""
        run(["radosgw-admin", "-c", os.path.join(self.dir, "ceph.conf"), "gc", "process",
             "--include-all"], env=self.env)

    def osd_peak_mib(self):
        """The OSD's peak RSS: what the RAM store held at most, plus its
        own memory; None when it cannot be read."""
        try:
            with open(os.path.join(self.dir, "run", "osd.0.pid")) as f:
                pid = int(f.read())
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except (OSError, ValueError):
            pass
        return None

    def cpu_seconds(self):
        """CPU (user + system) the radosgw and its Ceph daemons have used so
        far, from /proc/<pid>/stat; daemons that cannot be read count 0."""
        total = 0
        ticks = os.sysconf("SC_CLK_TCK")
        run_dir = os.path.join(self.dir, "run")
        for name in os.listdir(run_dir) if os.path.isdir(run_dir) else ():
            if not name.endswith(".pid"):
                continue
            try:
                with open(os.path.join(run_dir, name)) as f:
                    pid = int(f.read())
                with open("/proc/%d/stat" % pid) as f:
                    # Fields after the command's closing parenthesis; utime
                    # and stime are the 14th and 15th of the whole line.
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except (OSError, ValueError, IndexError):
                pass
        return total / ticks

    def stop(self):
        subprocess.run(["bash", self.script, "stop", self.dir], env=self.env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       stdin=subprocess.DEVNULL)


def rclone_env(base, rgw):
    """rclone with one remote, "rgw:", configured only by the environment
    (as tests/s3/lib.sh does): no config file, keys on no command line."""
    env = dict(base)
    env.update(RCLONE_CONFIG="/dev/null", RCLONE_CONFIG_RGW_TYPE="s3",
               RCLONE_CONFIG_RGW_PROVIDER="Ceph", RCLONE_CONFIG_RGW_ENV_AUTH="false",
               RCLONE_CONFIG_RGW_ACCESS_KEY_ID=rgw.access_key,
               RCLONE_CONFIG_RGW_SECRET_ACCESS_KEY=rgw.secret_key,
               RCLONE_CONFIG_RGW_ENDPOINT=rgw.endpoint, RCLONE_CONFIG_RGW_REGION="us-east-1",
               RCLONE_CONFIG_RGW_FORCE_PATH_STYLE="true")
    return env


def ferry_env(base, rgw, streams):
    """git-lfs and the Ferry agent it starts: keys in the AWS variables,
    multipart and parallel-range settings pinned to what rclone gets."""
    env = dict(base)
    env.update(AWS_ACCESS_KEY_ID=rgw.access_key, AWS_SECRET_ACCESS_KEY=rgw.secret_key,
               FERRY_S3_MULTIPART_THRESHOLD="%dMiB" % THRESHOLD_MIB,
               FERRY_S3_PART_SIZE="%dMiB" % PART_MIB,
               FERRY_S3_UPLOAD_CONCURRENCY=str(streams),
               FERRY_PARALLEL_THRESHOLD="%dMiB" % THRESHOLD_MIB,
               FERRY_PARALLEL_STREAMS=str(streams))
    return env


def rclone_flags(args):
    return ["--transfers", str(args.rclone_transfers), "--fast-list", "--s3-no-check-bucket",
            "--s3-upload-cutoff", "%dMi" % THRESHOLD_MIB, "--s3-chunk-size", "%dMi" % PART_MIB,
            "--s3-upload-concurrency", str(args.streams),
            "--multi-thread-cutoff", "%dMi" % THRESHOLD_MIB,
            "--multi-thread-streams", str(args.streams)]


def local_objects(folder):
    """{"<oid[0:2]>/<oid[2:4]>/<oid>": size} of the files under `folder`."""
    found = {}
    for directory, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(directory, name)
            found[os.path.relpath(path, folder)] = os.path.getsize(path)
    return found


def bucket_objects(bucket, env):
    """{key below PREFIX: size} of every object in the bucket."""
    _, listed = run(["rclone", "lsjson", "-R", "--files-only", "--fast-list",
                     "rgw:%s" % bucket], env=env)
    found = {}
    for entry in json.loads(listed.stdout):
        key = entry["Path"]
        if key.startswith(PREFIX + "/"):
            key = key[len(PREFIX) + 1:]
        found[key] = entry["Size"]
    return found


def check_holds(what, found, expected):
    """Stops the benchmark unless `found` is exactly `expected` (key: size)."""
    if found == expected:
        return
    missing = [key for key in expected if found.get(key) != expected[key]]
    extra = [key for key in found if key not in expected]
    sys.exit("%s: %d of %d objects missing or of the wrong size (e.g. %s), %d unexpected (e.g. %s)"
             % (what, len(missing), len(expected), missing[:2], len(extra), extra[:2]))


def timed(cmd, cwd, env, binary):
    """Runs a timed command; returns (seconds, peak RSS of `binary` in MiB,
    or None when the process ended before the watcher saw it)."""
    with PeakRss(binary) as watch:
        seconds, _ = run(cmd, cwd, env)
    return seconds, (watch.peak_kib / 1024 if watch.seen else None)


def mib(value):
    return "%4.0f MiB" % value if value is not None else "   ? MiB"


def median_mib(values):
    seen = [value for value in values if value is not None]
    return mib(statistics.median(seen) if seen else None)


def ferry_run(ctx, workload, repo, bare, expected, bucket, n):
    """Times Ferry's push and fetch; returns ((up_s, up_rss), (down_s, down_rss))."""
    env = ferry_env(ctx.env, ctx.rgw, ctx.args.streams)
    store = "s3://%s/%s?endpoint=%s" % (bucket, PREFIX, ctx.rgw.endpoint)
    # Every run starts as a first push: no journal history from earlier runs.
    shutil.rmtree(os.path.join(repo, ".git", "lfs", "ferry"), ignore_errors=True)
    run([ctx.ferry, "install", "--store", store], repo, env)
    upload = timed(["git", "lfs", "push", "origin", "main"], repo, env, ctx.ferry)
    check_holds("ferry upload", bucket_objects(bucket, ctx.rclone_env), expected)

    clone = os.path.join(ctx.root, "clone-%s-%d" % (workload, n))
    try:
        run(["git", "clone", "-q", bare, clone], env=dict(env, GIT_LFS_SKIP_SMUDGE="1"))
        run([ctx.ferry, "install", "--store", store], clone, env)
        download = timed(["git", "lfs", "fetch"], clone, env, ctx.ferry)
        check_holds("ferry download", local_objects(os.path.join(clone, ".git", "lfs", "objects")),
                    expected)
    finally:
        shutil.rmtree(clone, ignore_errors=True)
    return upload, download


def rclone_run(ctx, workload, repo, expected, bucket, n):
    """Times rclone's upload and download; returns the same as ferry_run."""
    env = ctx.rclone_env
    rclone = shutil.which("rclone", path=env.get("PATH"))
    remote = "rgw:%s/%s" % (bucket, PREFIX)
    upload = timed(["rclone", "copy", os.path.join(repo, ".git", "lfs", "objects"), remote]
                   + rclone_flags(ctx.args), ctx.root, env, rclone)
    check_holds("rclone upload", bucket_objects(bucket, env), expected)

    target = os.path.join(ctx.root, "rclone-%s-%d" % (workload, n))
    try:
        download = timed(["rclone", "copy", remote, target] + rclone_flags(ctx.args),
                         ctx.root, env, rclone)
        check_holds("rclone download", local_objects(target), expected)
    finally:
        shutil.rmtree(target, ignore_errors=True)
    return upload, download


def one_run(ctx, workload, repo, bare, expected, client, n):
    """One client's upload and download into a fresh bucket, deleted after."""
    bucket = "bench-%s-%s-%d-%s" % (workload, client, n, secrets.token_hex(3))
    run(["rclone", "mkdir", "rgw:" + bucket], env=ctx.rclone_env)
    try:
        if client == "ferry":
            return ferry_run(ctx, workload, repo, bare, expected, bucket, n)
        return rclone_run(ctx, workload, repo, expected, bucket, n)
    finally:
        run(["rclone", "purge", "rgw:" + bucket], env=ctx.rclone_env, check=False)
        ctx.rgw.collect_garbage()


class Context:
    """What every run needs: args, ferry, root, env (the throw-away HOME),
    rgw and rclone_env."""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("ferry")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--small-count", type=int, default=1000)
    parser.add_argument("--small-kib", type=int, default=4)
    parser.add_argument("--large-count", type=int, default=10)
    parser.add_argument("--large-mib", type=int, default=100)
    parser.add_argument("--streams", type=int, default=4,
                        help="connections inside one large object, for both clients (default 4)")
    parser.add_argument("--rclone-transfers", type=int, default=1,
                        help="rclone's --transfers (default 1: Ferry under git-lfs moves one "
                        "object at a time)")
    parser.add_argument("--rgw-port", type=int, default=17780)
    parser.add_argument("--mon-port", type=int, default=17089)
    parser.add_argument("--radosgw-script", default=RADOSGW_SCRIPT,
                        help="what starts and stops the radosgw, with the interface of "
                        "tests/s3/radosgw.sh (the default)")
    parser.add_argument("--memstore-gib", type=int, default=3,
                        help="RAM the radosgw's OSD may use (default 3)")
    args = parser.parse_args()
    ferry = os.path.abspath(args.ferry)
    if not os.access(ferry, os.X_OK):
        sys.exit("not an executable: %s" % ferry)
    for tool in ("rclone", "git-lfs", "radosgw", "radosgw-admin"):
        if not shutil.which(tool):
            sys.exit("'%s' is not installed (.ci/install-deps installs it)" % tool)
    largest = max(args.small_count * (args.small_kib << 10),
                  args.large_count * (args.large_mib << 20))
    if largest > MAX_WORKLOAD_BYTES or largest > (args.memstore_gib << 30) - (512 << 20):
        sys.exit("a workload of %d MiB does not fit the radosgw's RAM store" % (largest >> 20))

    root = tempfile.mkdtemp(prefix="ferry-bench-s3-", dir=os.environ.get("TMPDIR"))
    home = os.path.join(root, "home")
    os.makedirs(home)
    # Nothing of the caller's git, Ferry, AWS or rclone setup, and no proxy.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GIT_", "FERRY_", "AWS_", "RCLONE_")) and k.lower() not in
           ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env.update(HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"), GIT_CONFIG_NOSYSTEM="1",
               GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    rgw = None
    try:
        for key, value in (("user.name", "Ferry bench"), ("user.email", "bench@example.invalid"),
                           ("init.defaultBranch", "main")):
            run(["git", "config", "--global", key, value], env=env)
        run(["git", "lfs", "install", "--skip-repo"], env=env)
        rgw = Radosgw(os.path.abspath(args.radosgw_script), root, args.rgw_port, args.mon_port,
                      args.memstore_gib << 30)
        ctx = Context()
        ctx.args, ctx.ferry, ctx.root, ctx.env, ctx.rgw = args, ferry, root, env, rgw
        ctx.rclone_env = rclone_env(env, rgw)
        print("concurrency: one object at a time for both (ferry: one agent, git-lfs waits for "
              "each object; rclone --transfers %d); %d connections per object >= %d MiB (ferry "
              "ferry.s3.uploadConcurrency and ferry.parallelStreams, rclone "
              "--s3-upload-concurrency and --multi-thread-streams), %d MiB parts"
              % (args.rclone_transfers, args.streams, THRESHOLD_MIB, PART_MIB), flush=True)

        results = {}
        for workload, label, count, size in workloads(args):
            repo, bare = make_workload(root, workload, count, size, env)
            expected = local_objects(os.path.join(repo, ".git", "lfs", "objects"))
            if len(expected) != count:
                sys.exit("the %s repository holds %d LFS objects, not %d"
                         % (workload, len(expected), count))
            times = {}
            for n in range(args.runs):
                # Alternate who goes first so neither always meets a warmer cache.
                clients = ("rclone", "ferry") if n % 2 == 0 else ("ferry", "rclone")
                for client in clients:
                    upload, download = one_run(ctx, workload, repo, bare, expected, client, n)
                    times.setdefault((client, "upload"), []).append(upload)
                    times.setdefault((client, "download"), []).append(download)
                    print("  %s run %d/%d %-6s upload %6.2f s (peak RSS %s)  "
                          "download %6.2f s (peak RSS %s)"
                          % (label, n + 1, args.runs, client, upload[0], mib(upload[1]),
                             download[0], mib(download[1])), flush=True)
            results[label] = times
            shutil.rmtree(repo, ignore_errors=True)
            shutil.rmtree(bare, ignore_errors=True)

        print()
        print("rclone copy vs ferry (standalone agent, s3:// store), the same loopback radosgw, "
              "medians of %d runs" % args.runs)
        print("%-14s %-9s %9s %9s %13s  %-18s %s" % ("workload", "op", "rclone", "ferry",
                                                     "ferry/rclone", "target", "peak RSS r/f"))
        for label, times in results.items():
            for op in ("upload", "download"):
                theirs = statistics.median(t for t, _ in times[("rclone", op)])
                mine = statistics.median(t for t, _ in times[("ferry", op)])
                ratio = mine / theirs
                verdict = "<= %.2f: %s" % (TARGET, "met" if ratio <= TARGET else "MISSED")
                print("%-14s %-9s %8.2fs %8.2fs %13.2f  %-18s %s / %s"
                      % (label, op, theirs, mine, ratio, verdict,
                         median_mib(r for _, r in times[("rclone", op)]).strip(),
                         median_mib(r for _, r in times[("ferry", op)]).strip()))
        osd_peak = rgw.osd_peak_mib()
        if osd_peak is not None:
            print("peak RSS of the radosgw's memstore OSD: %.0f MiB" % osd_peak)
    finally:
        if rgw:
            rgw.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
