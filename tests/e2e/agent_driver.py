#!/usr/bin/env python3
"""Drives `ferry agent` over pipes, one request at a time (python3 stdlib only).

Usage:
    agent_driver.py --ferry PATH --cwd DIR [--timeout SECONDS] < script.jsonl > replies.jsonl

The script has one JSON object per line, each one step:
    {"label": "init", "json": {...}}          send the object, encoded as one line
    {"label": "junk", "raw": "text"}          send the text as one line, verbatim
    {"label": "bytes", "hex": "7b00ff"}       send these bytes as one line (NUL, invalid UTF-8)
    {"label": "big", "fill": "x", "count": N} send a line of N copies of "x"
    {"label": "bye", "json": {"event": "terminate"}, "exit": true}
                                              send, then expect the agent to exit
    {"label": "x", "json": {...}, "no_reply": true}
                                              send, do not wait for a reply
    {"label": "w", "wait_file": PATH, "min_size": N}
                                              poll until PATH has >= N bytes
    {"label": "k", "kill_when_open": [PATH, ...]}
                                              poll until the agent has one of
                                              the paths open, then SIGKILL it
                                              and end the session
A step may carry "meta" (anything): it is copied to the step's output.
Polling steps are bounded by --timeout too; on timeout the session ends.

For every step but an exit step the driver waits (bounded by --timeout) for
the agent's next line that is not a progress event: that is the step's reply.
Progress events seen meanwhile are kept with the step. When the reply names a
"path", the driver records what was at that path at that moment.

The output has one JSON object per step:
    {"label", "sent_bytes", "reply" (parsed object or null), "raw" (the reply
     line), "progress": [...], "path_info": {"exists", "size", "sha256"},
     "elapsed_ms", "timed_out", "meta"}
and a final {"label": "<exit>", "exit_code", "elapsed_ms", "timed_out",
"extra_lines", "stderr"}: exit_code is null when the agent did not exit in
time (it is then killed). A missing reply gives "reply": null, "raw": null,
"timed_out": true, and the driver stops the agent.
"""

import argparse
import hashlib
import json
import os
import queue
import subprocess
import sys
import threading
import tempfile
import time


def describe_path(path):
    info = {"path": path, "exists": os.path.isfile(path)}
    if info["exists"]:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        info["size"] = os.path.getsize(path)
        info["sha256"] = digest.hexdigest()
    return info


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ferry", required=True, help="path of the ferry binary")
    parser.add_argument("--cwd", required=True, help="directory to run the agent in")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per step")
    parser.add_argument("--arg", action="append", default=[], help="extra agent argument")
    parser.add_argument("--stderr", help="file for the agent's stderr (default: a temp file)")
    args = parser.parse_args()

    steps = [json.loads(line) for line in sys.stdin if line.strip()]

    if args.stderr:
        stderr_file = open(args.stderr, "w+b")
    else:
        stderr_file = tempfile.TemporaryFile()
    agent = subprocess.Popen(
        [args.ferry, "agent"] + args.arg,
        cwd=args.cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr_file,
    )

    lines = queue.Queue()

    def read_stdout():
        for raw in agent.stdout:
            lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        lines.put(None)  # end of output

    reader = threading.Thread(target=read_stdout, daemon=True)
    reader.start()

    def emit(obj):
        sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
        sys.stdout.flush()

    def send(data):
        try:
            agent.stdin.write(data)
            agent.stdin.flush()
            return None
        except (BrokenPipeError, OSError) as e:
            return str(e)

    def finish(label, started, timed_out):
        exit_code = None
        try:
            exit_code = agent.wait(timeout=max(0.1, args.timeout - (time.monotonic() - started)))
        except subprocess.TimeoutExpired:
            timed_out = True
            agent.kill()
            agent.wait()
        extra = []
        while not eof_seen:
            try:
                line = lines.get(timeout=2)
            except queue.Empty:
                break
            if line is None:
                break
            extra.append(line)
        stderr_file.flush()
        stderr_file.seek(0)
        stderr = stderr_file.read().decode("utf-8", "replace")
        stderr_file.close()
        emit({
            "label": label,
            "exit_code": exit_code,
            "timed_out": timed_out,
            "elapsed_ms": int((time.monotonic() - started) * 1000),
            "extra_lines": extra,
            "stderr": stderr[-4000:],
        })

    def has_open(paths):
        fd_dir = "/proc/%d/fd" % agent.pid
        try:
            names = os.listdir(fd_dir)
        except OSError:
            return False
        for name in names:
            try:
                if os.readlink(os.path.join(fd_dir, name)) in paths:
                    return True
            except OSError:
                continue
        return False

    def poll(condition):
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            if agent.poll() is not None:
                return condition()
            time.sleep(0.002)  # polling interval; the condition is re-checked
        return False

    def stop_session(started, timed_out=True):
        try:
            agent.stdin.close()
        except OSError:
            pass
        return finish("<exit>", started, timed_out)

    eof_seen = False
    for step in steps:
        label = step.get("label", "?")
        started = time.monotonic()
        if "wait_file" in step:
            path, size = step["wait_file"], int(step.get("min_size", 0))
            ok = poll(lambda: os.path.isfile(path) and os.path.getsize(path) >= size)
            emit({"label": label, "ok": ok, "meta": step.get("meta"),
                  "elapsed_ms": int((time.monotonic() - started) * 1000)})
            if not ok:
                return stop_session(started)
            continue
        if "kill_when_open" in step:
            paths = set(step["kill_when_open"])
            ok = poll(lambda: has_open(paths))
            if ok:
                agent.kill()
            emit({"label": label, "ok": ok, "killed": ok, "meta": step.get("meta"),
                  "elapsed_ms": int((time.monotonic() - started) * 1000)})
            return stop_session(started, not ok)
        if "json" in step:
            data = json.dumps(step["json"]).encode() + b"\n"
        elif "raw" in step:
            data = step["raw"].encode() + b"\n"
        elif "hex" in step:
            data = bytes.fromhex(step["hex"]) + b"\n"
        else:
            data = step["fill"].encode() * int(step["count"]) + b"\n"
        problem = send(data)
        if step.get("no_reply"):
            emit({"label": label, "sent_bytes": len(data), "no_reply": True,
                  "send_error": problem, "meta": step.get("meta")})
            continue
        if step.get("exit"):
            # stdin stays open: the agent must exit because of this line, not EOF.
            result = finish("<exit>", started, False)
            try:
                agent.stdin.close()
            except OSError:
                pass
            return result

        record = {"label": label, "sent_bytes": len(data), "progress": [], "reply": None,
                  "raw": None, "timed_out": False, "meta": step.get("meta")}
        if problem:
            record["send_error"] = problem
        deadline = started + args.timeout
        while True:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.001))
            except queue.Empty:
                record["timed_out"] = True
                break
            if line is None:  # the agent closed its output
                eof_seen = True
                record["agent_exit_code"] = agent.wait()
                break
            try:
                reply = json.loads(line)
            except ValueError:
                record["raw"] = line
                record["reply"] = {"<unparsable>": line}
                break
            if isinstance(reply, dict) and reply.get("event") == "progress":
                record["progress"].append(reply)
                continue
            record["raw"] = line
            record["reply"] = reply
            break
        record["elapsed_ms"] = int((time.monotonic() - started) * 1000)
        if isinstance(record["reply"], dict) and isinstance(record["reply"].get("path"), str):
            record["path_info"] = describe_path(record["reply"]["path"])
        emit(record)
        if record["reply"] is None:
            # The conversation is out of step; stop the agent and report.
            try:
                agent.stdin.close()
            except OSError:
                pass
            return finish("<exit>", started, True)

    # No explicit exit step: close stdin (EOF) and report how the agent ended.
    try:
        agent.stdin.close()
    except OSError:
        pass
    finish("<exit>", time.monotonic(), False)


if __name__ == "__main__":
    sys.exit(main())
