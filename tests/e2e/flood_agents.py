#!/usr/bin/env python3
"""Floods the daemon: starts AGENTS `ferry agent` processes in a repository,
each told `init` (upload), then writes all of its share of COUNT upload
requests at once, without waiting for answers (git-lfs sends one at a time;
this is the worst a client can do). Each object is a small random file
under <repo>/flood-objects.

Usage:
    flood_agents.py FERRY REPO COUNT AGENTS PROGRESS

PROGRESS gets the number of answers received so far, rewritten as they
come (a test reads it to know how far the flood is). Exits 0 when every
request was answered complete without an error, else 1 with the first
errors on stderr.
"""

import hashlib
import json
import os
import subprocess
import sys
import threading


def main():
    ferry, repo, count, agents, progress = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    objects = os.path.join(repo, "flood-objects")
    os.makedirs(objects, exist_ok=True)
    requests = []
    for i in range(count):
        data = os.urandom(512 + i % 997)
        oid = hashlib.sha256(data).hexdigest()
        path = os.path.join(objects, oid)
        with open(path, "wb") as f:
            f.write(data)
        requests.append({"event": "upload", "oid": oid, "size": len(data), "path": path, "action": None})

    init = {"event": "init", "operation": "upload", "remote": "origin", "concurrent": True,
            "concurrenttransfers": agents}
    procs = []
    for _ in range(agents):
        proc = subprocess.Popen([ferry, "agent"], cwd=repo, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        proc.stdin.write((json.dumps(init) + "\n").encode())
        proc.stdin.flush()
        if json.loads(proc.stdout.readline()) != {}:
            sys.exit("an agent refused init")
        procs.append(proc)

    lock = threading.Lock()
    answered = [0]
    errors = []

    # Readers first: an agent whose answers nobody reads stops reading
    # requests, and the flood would wait on itself.
    def read_answers(proc, expected):
        while expected > 0:
            line = proc.stdout.readline()
            if not line:
                errors.append("an agent ended with %d answers missing" % expected)
                return
            answer = json.loads(line)
            if answer.get("event") == "progress":
                continue
            expected -= 1
            with lock:
                answered[0] += 1
                if answer.get("event") != "complete" or answer.get("error"):
                    errors.append(line.decode().strip())
                with open(progress + ".tmp", "w") as f:
                    f.write(str(answered[0]))
                os.replace(progress + ".tmp", progress)

    readers = []
    for n, proc in enumerate(procs):
        reader = threading.Thread(target=read_answers, args=(proc, len(requests[n::agents])))
        reader.start()
        readers.append(reader)
    for n, proc in enumerate(procs):
        proc.stdin.write("".join(json.dumps(r) + "\n" for r in requests[n::agents]).encode())
        proc.stdin.flush()
    for reader in readers:
        reader.join()
    for proc in procs:
        proc.stdin.write(b'{"event":"terminate"}\n')
        proc.stdin.close()
    for proc in procs:
        proc.wait(timeout=60)
    if errors or answered[0] != count:
        sys.stderr.write("%d of %d answered; errors: %s\n" % (answered[0], count, errors[:3]))
        sys.exit(1)


if __name__ == "__main__":
    main()
