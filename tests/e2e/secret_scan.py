#!/usr/bin/env python3
"""Looks for secrets in files and in the processes proc_watch.py recorded.

Usage:
    secret_scan.py SECRETS files PATH... [--exclude PATH]...
    secret_scan.py SECRETS processes RECORDS --ferry PATH [--bridge TEXT] [--expect TEXT]...

SECRETS is a file with one secret per line (16 characters or more). Each
secret is looked for as written, URL-encoded, JSON-escaped and in base64 and
base64url at each of the three alignments it can have inside a longer encoded
text (an "Authorization: Basic" header encodes "user:password").

files: every file at or below each PATH but the excluded ones. Prints what
it read; exits 1 naming each file and form found.

processes: no process's argv holds a secret. The environment of a process
below ferry may hold one only in an entry NAME=value that is exactly an
entry of the ferry process above it: ferry passes on what it was given, and
adds nothing. Processes whose argv holds TEXT (--bridge) may hold none at
all: their environment is an allow-list.
The environment of ferry itself is what its caller gave it, and is not
judged. Each --expect TEXT must be in the argv of at least one process below
ferry, so that the check saw the children that handle secrets.
"""

import base64
import json
import os
import sys
import urllib.parse


def forms(secret):
    """(name, bytes) of every form the secret could leak in."""
    raw = secret.encode()
    out = {"as written": raw, "URL-encoded": urllib.parse.quote(secret, safe="").encode(),
           "JSON-escaped": json.dumps(secret)[1:-1].encode()}
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw)
        # Skip the characters that also encode the neighbouring bytes.
        first = 0 if shift == 0 else 4
        middle = encoded[first:len(encoded) - 4]
        out["base64 (offset %d)" % shift] = middle
        out["base64url (offset %d)" % shift] = middle.replace(b"+", b"-").replace(b"/", b"_")
    named = {}
    for name, data in out.items():
        named.setdefault(data, name)
    return [(name, data) for data, name in named.items()]


def load_secrets(path):
    secrets = [line.rstrip("\n") for line in open(path) if line.strip()]
    for secret in secrets:
        if len(secret) < 16:
            raise SystemExit("secret %r is too short to be looked for safely" % secret)
    return [(secret, forms(secret)) for secret in secrets]


def found_in(data, secrets):
    return ["%s (%s)" % (secret, name) for secret, named in secrets
            for name, form in named if form in data]


def scan_files(secrets, paths, excluded):
    excluded = [os.path.realpath(p) for p in excluded]
    def skip(path):
        real = os.path.realpath(path)
        return any(real == e or real.startswith(e + "/") for e in excluded)
    hits, count = [], 0
    for top in paths:
        if not os.path.lexists(top):
            raise SystemExit("%s does not exist" % top)
        walked = [(os.path.dirname(top), [], [os.path.basename(top)])] if not os.path.isdir(top) \
            else os.walk(top)
        for folder, dirs, files in walked:
            dirs[:] = [d for d in dirs if not skip(os.path.join(folder, d))]
            for name in files:
                path = os.path.join(folder, name)
                if skip(path) or os.path.islink(path) or not os.path.isfile(path):
                    continue
                count += 1
                with open(path, "rb") as f:
                    data = f.read()
                hits += ["%s: %s" % (path, what) for what in found_in(data, secrets)]
    if hits:
        raise SystemExit("secrets found:\n  " + "\n  ".join(hits))
    print("%d files" % count)


def scan_processes(secrets, records_path, ferry, bridge, expect):
    records = [json.loads(line) for line in open(records_path)]
    # What each ferry process was given. A process read while it exits shows
    # an empty environment; its other readings still count.
    ferry_env = {}
    for r in records:
        if r["argv"][:1] == [ferry]:
            ferry_env.setdefault((r["pid"], r["start"]), set()).update(r["env"])
    hits, children, kinds = [], [], set()
    for r in records:
        argv = "\0".join(r["argv"]).encode("utf-8", "surrogateescape")
        where = "pid %d (%s)" % (r["pid"], " ".join(r["argv"])[:120])
        hits += ["%s: argv holds %s" % (where, what) for what in found_in(argv, secrets)]
        if r["argv"][:1] == [ferry]:
            continue  # ferry itself, or a child between fork and exec
        children.append(r)
        kinds.add(" ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(r["argv"][:3])))
        is_bridge = bridge is not None and bridge in " ".join(r["argv"])
        given = ferry_env.get((r["ferry"], r["ferry_start"]), set())
        for entry in r["env"]:
            what = found_in(entry.encode("utf-8", "surrogateescape"), secrets)
            if not what:
                continue
            name = entry.split("=", 1)[0]
            if not is_bridge and entry in given:
                continue  # inherited unchanged
            hits.append("%s: environment entry %s holds %s" % (where, name, ", ".join(what)))
    missing = [text for text in expect
               if not any(text in " ".join(r["argv"]) for r in children)]
    if missing:
        raise SystemExit("no process below ferry had %s in its argv; seen: %s" % (missing, sorted(kinds)))
    if hits:
        raise SystemExit("secrets found:\n  " + "\n  ".join(hits))
    print("%d ferry processes, %d below them: %s" % (len(ferry_env), len(children),
                                                    "; ".join(sorted(kinds))[:600]))


def main(argv):
    if len(argv) < 3:
        raise SystemExit(__doc__)
    secrets = load_secrets(argv[1])
    mode, rest = argv[2], argv[3:]
    options = {"--exclude": [], "--expect": [], "--bridge": [], "--ferry": []}
    positional = []
    while rest:
        word = rest.pop(0)
        if word in options:
            options[word].append(rest.pop(0))
        else:
            positional.append(word)
    if mode == "files":
        scan_files(secrets, positional, options["--exclude"])
    elif mode == "processes" and len(positional) == 1 and options["--ferry"]:
        scan_processes(secrets, positional[0], options["--ferry"][0],
                       (options["--bridge"] or [None])[0], options["--expect"])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
