#!/usr/bin/env python3
"""Records the command line and environment of every process of ferry's tree.

Usage:
    proc_watch.py --ferry PATH --out RECORDS --hold-dir DIR

Walks /proc over and over until SIGTERM. A process whose argv[0] is PATH is a
ferry process; it and everything below it (children, their children, ...)
is recorded: one JSON line per distinct (pid, start time, argv, environ):
    {"pid", "ppid", "start", "ferry", "ferry_start": pid and start time of
     the nearest ferry process at or above it, "argv": [...], "env": [...]}
Unreadable or vanished processes are skipped.

A short-lived child can end between two walks. A helper program that must
not be missed writes an empty file DIR/<its pid> and waits for DIR/<its
pid>.seen: the watcher creates that after a complete walk that began once
the file was there, so the helper and all its ancestors were read while it
waited. (Pids that are not in ferry's tree are released the same way.)
"""

import argparse
import json
import os
import signal
import sys


def read(path):
    with open(path, "rb") as f:
        return f.read()


def stat_of(pid):
    """(ppid, start time) from /proc/<pid>/stat; the name may hold spaces."""
    text = read("/proc/%s/stat" % pid).decode("ascii", "replace")
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), int(fields[19])


def split_nul(data):
    return [part.decode("utf-8", "surrogateescape") for part in data.split(b"\0") if part]


def read_record(pid):
    """A process's record, read until two readings agree: bash, starting,
    briefly writes a NUL over the '=' of each environment entry it parses,
    so one reading can show a value as an entry of its own. Raises OSError
    for a process that does not hold still (the next walk reads it again)."""
    def reading():
        ppid, start = stat_of(pid)
        return {"pid": int(pid), "ppid": ppid, "start": start,
                "argv": split_nul(read("/proc/%s/cmdline" % pid)),
                "env": split_nul(read("/proc/%s/environ" % pid))}
    last = reading()
    for _ in range(20):
        again = reading()
        if again == last:
            return last
        last = again
    raise OSError("pid %s changed while it was read" % pid)


def walk(ferry, seen, out):
    parents, argv0 = {}, {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            parents[name] = stat_of(name)[0]
            first = read("/proc/%s/cmdline" % name).split(b"\0", 1)[0]
        except (OSError, ValueError):
            continue
        argv0[name] = first.decode("utf-8", "surrogateescape")
    # Each process under the nearest ferry process at or above it.
    groups = {}
    for pid in parents:
        cursor, depth = pid, 0
        while cursor in parents and depth < 64:
            if argv0.get(cursor) == ferry:
                groups.setdefault(cursor, []).append(pid)
                break
            cursor, depth = str(parents[cursor]), depth + 1
    for root, members in groups.items():
        # The root first: its environment is what ferry was given. A root
        # that is gone, or has meanwhile become another program (a child
        # between fork and exec), is read again in the next walk.
        try:
            top = read_record(root)
        except (OSError, ValueError):
            continue
        if top["argv"][:1] != [ferry]:
            continue
        records = [top]
        for pid in members:
            if pid == root:
                continue
            try:
                records.append(read_record(pid))
            except (OSError, ValueError):
                continue
        for record in records:
            record["ferry"], record["ferry_start"] = top["pid"], top["start"]
            key = json.dumps(record, sort_keys=True)
            if key not in seen:
                seen.add(key)
                out.write(key + "\n")
                out.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ferry", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--hold-dir", required=True)
    args = parser.parse_args()
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    seen = set()
    with open(args.out, "a") as out:
        while not stop:
            held = [n for n in os.listdir(args.hold_dir) if n.isdigit()]
            walk(args.ferry, seen, out)
            for name in held:
                open(os.path.join(args.hold_dir, name + ".seen"), "w").close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
