#!/usr/bin/env python3
"""Checks the shipped orchestrator examples offline (no cluster, no Slurm):

docs/deploy/slurm/ferry-migrate.sbatch: bash syntax, a job array of 16 tasks 4 at
a time, and `ferry migrate --shard auto --report-dir`.

docs/deploy/kubernetes/ferry-migrate-job.yaml: an Indexed batch/v1 Job whose
FERRY_SHARD_COUNT equals its completions, whose pods are never restarted in
place (podFailurePolicy needs restartPolicy Never), which runs `ferry migrate
--shard auto --report-dir`, and whose podFailurePolicy maps Ferry's exit
codes as docs/migrate.md says: 2 FailJob, 3 FailIndex (with
backoffLimitPerIndex), 1 Count.

Exit 77 (skipped) without PyYAML (Debian: python3-yaml).

  python3 tests/checks/deploy_examples.py <source-dir>
"""
import os
import re
import subprocess
import sys


def fail(message):
    print("deploy_examples: FAIL: " + message, file=sys.stderr)
    sys.exit(1)


def check_sbatch(path):
    text = open(path).read()
    if subprocess.run(["bash", "-n", path]).returncode != 0:
        fail(path + " is not valid bash")
    arrays = re.findall(r"^#SBATCH --array=(\S+)$", text, re.M)
    if arrays != ["1-16%4"]:
        fail("%s: #SBATCH --array is %r, expected 1-16%%4" % (path, arrays))
    # Slurm reads #SBATCH lines only before the first command.
    first_command = re.search(r"^[^#\s].*$", text, re.M)
    last_directive = list(re.finditer(r"^#SBATCH .*$", text, re.M))[-1]
    if first_command and first_command.start() < last_directive.start():
        fail(path + ": an #SBATCH line follows a command, so Slurm ignores it")
    command = re.search(r"^exec ferry migrate((?:.*\\\n)*.*)$", text, re.M)
    if not command:
        fail(path + " does not exec ferry migrate")
    args = command.group(1).replace("\\\n", " ").split()
    for want in (["--shard", "auto"], ["--report-dir"]):
        if not any(args[i:i + len(want)] == want for i in range(len(args))):
            fail("%s: ferry migrate lacks %s" % (path, " ".join(want)))


def check_job(path):
    try:
        import yaml
    except ImportError:
        print("deploy_examples: skipped: no PyYAML (python3-yaml)")
        sys.exit(77)
    job = yaml.safe_load(open(path))
    spec = job.get("spec", {})
    if job.get("apiVersion") != "batch/v1" or job.get("kind") != "Job":
        fail(path + " is not a batch/v1 Job")
    if spec.get("completionMode") != "Indexed":
        fail(path + ": completionMode is not Indexed")
    completions = spec.get("completions")
    if not isinstance(completions, int) or not 1 <= completions <= 4096:
        fail(path + ": completions is not a shard count from 1 to 4096")
    if not isinstance(spec.get("parallelism"), int) or spec["parallelism"] < 1:
        fail(path + ": no parallelism")
    pod = spec.get("template", {}).get("spec", {})
    if pod.get("restartPolicy") != "Never":
        fail(path + ": restartPolicy must be Never for a podFailurePolicy")
    containers = [c for c in pod.get("containers", []) if c.get("name") == "ferry"]
    if len(containers) != 1:
        fail(path + ": no container named ferry")
    ferry = containers[0]
    argv = ferry.get("command", []) + ferry.get("args", [])
    if argv[:2] != ["ferry", "migrate"]:
        fail("%s: the container runs %r, not ferry migrate" % (path, argv[:2]))
    for want in (["--shard", "auto"], ["--report-dir"]):
        if not any(argv[i:i + len(want)] == want for i in range(len(argv))):
            fail("%s: ferry migrate lacks %s" % (path, " ".join(want)))
    env = {e["name"]: e.get("value") for e in ferry.get("env", [])}
    if env.get("FERRY_SHARD_COUNT") != str(completions):
        fail("%s: FERRY_SHARD_COUNT is %r, not the completions %d"
             % (path, env.get("FERRY_SHARD_COUNT"), completions))
    actions = {}
    for rule in spec.get("podFailurePolicy", {}).get("rules", []):
        codes = rule.get("onExitCodes")
        if not codes:
            continue
        if codes.get("operator") != "In" or codes.get("containerName") != "ferry":
            fail(path + ": a rule on exit codes is not 'In' on the ferry container")
        for code in codes.get("values", []):
            if code in actions:
                fail("%s: exit code %d has two rules" % (path, code))
            actions[code] = rule.get("action")
    want = {2: "FailJob", 3: "FailIndex", 1: "Count"}
    if actions != want:
        fail("%s: the podFailurePolicy maps exit codes %r, expected %r" % (path, actions, want))
    if not isinstance(spec.get("backoffLimitPerIndex"), int):
        fail(path + ": FailIndex needs backoffLimitPerIndex")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    root = sys.argv[1]
    check_sbatch(os.path.join(root, "docs/deploy/slurm/ferry-migrate.sbatch"))
    check_job(os.path.join(root, "docs/deploy/kubernetes/ferry-migrate-job.yaml"))
    print("deploy_examples: ok: the Slurm script and the Kubernetes Job match docs/migrate.md")


if __name__ == "__main__":
    main()
