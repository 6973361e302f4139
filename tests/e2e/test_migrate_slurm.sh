#!/usr/bin/env bash
# `ferry migrate --shard auto` as a real Slurm job array: the test starts its
# own munged, slurmctld and slurmd (Debian's packages munge, slurmctld,
# slurmd) with a slurm.conf of its own in the sandbox: one node on
# 127.0.0.1, free ports, no cgroups, no accounting. Then:
#
#   a. 20,000 small objects, folder -> folder, as `sbatch --array=1-8%2`
#      (squeue polled until it is done), each task `ferry migrate --shard
#      auto --report-dir R --journal J/$SLURM_ARRAY_TASK_ID`: every task
#      exits 0 and says it is shard I/8 from SLURM_ARRAY_TASK_ID; never more
#      than 2 tasks ran at once; the 8 logs copied each object exactly once,
#      each task exactly its share; the destination holds every object,
#      intact (sha256 == oid), and nothing else; `ferry report merge R`
#      exits 0 with copied == 20,000.
#   b. the same migration into a fresh destination (each task at --tps 500,
#      so that it runs for seconds): task 2 is cancelled with `scancel
#      <job>_2` once its log shows 200 copies. Resubmitted as `sbatch
#      --array=2` alone, the task is an array of one task (Slurm knows no
#      other count) and `--shard auto` refuses it: exit 2, naming
#      FERRY_SHARD, the destination unchanged. Resubmitted with FERRY_SHARD=2/8 (as
#      docs/migrate.md says), it finishes: its report counts as present
#      exactly the share's objects the cancelled task had stored and copies
#      only the rest; no file of the destination from before the rerun is
#      written again (inode and mtime unchanged); the destination holds
#      every object, intact, and nothing else; the merge exits 0.
#
# Skipped (exit 77) when not run as root (slurmd runs the jobs as root here)
# or when slurmctld, slurmd, munged or the Slurm commands are not installed.
#
#   bash tests/e2e/test_migrate_slurm.sh <path-to-ferry>
set -euo pipefail
if [[ $(id -u) -ne 0 ]]; then
  echo "test_migrate_slurm: SKIPPED: needs root (the test's slurmd runs its jobs as SlurmUser=root)"
  exit 77
fi
for tool in munged slurmctld slurmd sbatch squeue sinfo scancel scontrol; do
  if ! command -v "$tool" >/dev/null && [[ ! -x /usr/sbin/$tool ]]; then
    echo "test_migrate_slurm: SKIPPED: needs $tool (packages munge, slurmctld, slurmd)"
    exit 77
  fi
done
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/migrate_lib.sh"
e2e_init "$@"
PATH=$PATH:/usr/sbin
# No Slurm of the caller's may be asked, and no orchestrator may choose a shard.
unset JOB_COMPLETION_INDEX SLURM_ARRAY_TASK_ID SLURM_ARRAY_TASK_COUNT SLURM_ARRAY_TASK_MIN \
  SLURM_ARRAY_TASK_MAX SLURM_ARRAY_TASK_STEP SLURM_JOB_ID SLURM_CONF SLURM_CLUSTERS

SRC="$E2E_ROOT/src"
LIST="$E2E_ROOT/src.manifest"
OBJECTS=20000
TASKS=8
make_objects "$SRC" "$LIST" "$OBJECTS" small

# ---- a single-node Slurm on 127.0.0.1 ----------------------------------------
# slurm_cleanup: on exit, cancels every job of this test's Slurm and waits
# (bounded) until none is left, so that no task outlives the test; then
# lib.sh's cleanup stops the daemons and removes the sandbox.
slurm_cleanup() {
  local status=$? deadline=$((SECONDS + 30))
  if [[ -n ${SLURMCTLD_PID:-} ]] && kill -0 "$SLURMCTLD_PID" 2>/dev/null; then
    timeout 10 scancel --partition=e2e 2>/dev/null || true
    while [[ -n $(timeout 10 squeue -h -o %i 2>/dev/null || echo unknown) ]] && ((SECONDS < deadline)); do
      sleep 0.1 # polling interval, not synchronisation: the loop re-checks squeue
    done
  fi
  e2e_cleanup "$status"
}
trap slurm_cleanup EXIT

SLURM="$E2E_ROOT/slurm"
MUNGE_SOCKET="$SLURM/munge/munge.socket"
NODE=ferry-e2e
mkdir -p "$SLURM/munge" "$SLURM/state" "$SLURM/spool" "$SLURM/log"
chmod 700 "$SLURM/munge"
mungekey --create --keyfile="$SLURM/munge/munge.key" >"$SLURM/log/mungekey.out" 2>&1 ||
  { show "mungekey" "$SLURM/log/mungekey.out"; fail "mungekey could not create a key"; }
# --force: munged wants every user to reach its socket, and only root may
# enter the sandbox (root is the only client here).
munged --foreground --force --socket="$MUNGE_SOCKET" --key-file="$SLURM/munge/munge.key" \
  --pid-file="$SLURM/munge/munged.pid" --log-file="$SLURM/log/munged.log" \
  --seed-file="$SLURM/munge/munged.seed" >"$SLURM/log/munged.out" 2>&1 &
track_pid $!
munge_ready() { [[ -S $MUNGE_SOCKET ]]; }
wait_for 20 "munged's socket" munge_ready

CTLD_PORT=$(free_port)
SLURMD_PORT=$(free_port)
while ((SLURMD_PORT == CTLD_PORT)); do SLURMD_PORT=$(free_port); done
export SLURM_CONF="$SLURM/slurm.conf"
cat >"$SLURM_CONF" <<CONF
ClusterName=ferry-e2e
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$SLURM/state
SlurmdSpoolDir=$SLURM/spool
SlurmctldPidFile=$SLURM/slurmctld.pid
SlurmdPidFile=$SLURM/slurmd.pid
SlurmctldLogFile=$SLURM/log/slurmctld.log
SlurmdLogFile=$SLURM/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
KillWait=5
MpiDefault=none
MailProg=/bin/true
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=e2e Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
slurmctld -D -i >"$SLURM/log/slurmctld.out" 2>&1 &
SLURMCTLD_PID=$!
track_pid "$SLURMCTLD_PID"
slurmd -D -N "$NODE" >"$SLURM/log/slurmd.out" 2>&1 &
SLURMD_PID=$!
track_pid "$SLURMD_PID"
node_idle() {
  kill -0 "$SLURMCTLD_PID" 2>/dev/null || { show "slurmctld log" "$SLURM/log/slurmctld.log"; fail "slurmctld exited"; }
  kill -0 "$SLURMD_PID" 2>/dev/null || { show "slurmd log" "$SLURM/log/slurmd.log"; fail "slurmd exited"; }
  [[ $(sinfo -h -n "$NODE" -o %T 2>/dev/null) == idle ]]
}
# Slurm is polled every 0.25 s: each check is a process, a munge credential and
# an RPC to slurmctld, which every 10 ms would take the CPUs the tasks need.
wait_for_every 0.25 60 "node $NODE to be idle in sinfo" node_idle
note "slurm $(sinfo -V) on 127.0.0.1: node $NODE idle with $(nproc) CPUs"

# The array task: one shard of the migration into $1, report in $2, journal
# $3/<task>, more ferry flags after them. It records when it ran (for the
# "2 at a time" check).
TASK_SCRIPT="$E2E_ROOT/ferry-task.sbatch"
cat >"$TASK_SCRIPT" <<SCRIPT
#!/bin/bash
set -euo pipefail
dst=\$1 reports=\$2 journals=\$3
shift 3
echo "start \$(date +%s%N)" >"\$journals/times-\$SLURM_ARRAY_TASK_ID"
rc=0
"$FERRY" migrate --from "file://$SRC" --to "file://\$dst" --shard auto --report-dir "\$reports" \\
  --journal "\$journals/\$SLURM_ARRAY_TASK_ID" "\$@" || rc=\$?
echo "end \$(date +%s%N)" >>"\$journals/times-\$SLURM_ARRAY_TASK_ID"
exit \$rc
SCRIPT

# submit <run> <sbatch flags...> -- <task args...>: sbatch in the sandbox
# (it returns once the job is queued), each task's output in
# <run>/task-<id>.out/.err; the job id in JOB.
submit() {
  local run=$1 flags=()
  shift
  while [[ $1 != -- ]]; do
    flags+=("$1")
    shift
  done
  shift
  mkdir -p "$E2E_ROOT/$run"
  timeout --kill-after=10 60 sbatch --parsable --job-name="ferry-$run" --cpus-per-task=1 \
    --chdir="$E2E_ROOT" --output="$E2E_ROOT/$run/task-%a.out" --error="$E2E_ROOT/$run/task-%a.err" \
    "${flags[@]}" "$TASK_SCRIPT" "$@" >"$E2E_ROOT/$run/sbatch.out" 2>"$E2E_ROOT/$run/sbatch.err" ||
    { show "sbatch stderr" "$E2E_ROOT/$run/sbatch.err"; fail "$run: sbatch ${flags[*]} failed"; }
  JOB=$(head -n 1 "$E2E_ROOT/$run/sbatch.out")
  JOB=${JOB%%;*}
  [[ $JOB =~ ^[0-9]+$ ]] || { show "sbatch stdout" "$E2E_ROOT/$run/sbatch.out"; fail "$run: sbatch printed no job id"; }
}

# job_done: every task of JOB has left the queue (squeue answered and
# listed none).
job_done() {
  local queued
  queued=$(squeue -h -j "$JOB" -o %i 2>/dev/null) || return 1
  [[ -z $queued ]]
}

# run_array <run> <sbatch flags...> -- <task args...>: submit, then wait
# (bounded) until the job has finished. (`sbatch --wait` polls at up to 32 s.)
run_array() {
  submit "$@"
  wait_for_every 0.25 240 "job $JOB ($1) to finish" job_done
}

# task_result <job>_<task>: "<state> <exit code>" in slurmctld, e.g.
# "COMPLETED 0", "FAILED 2", "CANCELLED 0".
task_result() {
  scontrol show job "$1" 2>/dev/null | tr ' ' '\n' |
    sed -n 's/^JobState=//p; s/^ExitCode=\([0-9]*\):.*/\1/p' | paste -sd ' '
}

# expect_task <run> <job>_<task> <result>: the task ended with <result>.
expect_task() {
  local got task=${2#*_}
  got=$(task_result "$2")
  [[ $got == "$3" ]] ||
    { show "task $task stderr" "$E2E_ROOT/$1/task-$task.err"; fail "$1: task $2 ended as '$got', expected '$3'"; }
}

# copies <journal>: how many "copy: done" lines its log has.
copies() {
  if [[ -f $1/ferry.log ]]; then grep -c 'msg="copy: done"' "$1/ferry.log" || true; else echo 0; fi
}

# assert_task <run> <task>: the task said which shard it took, from where.
assert_task() {
  grep -q "^ferry migrate: shard $2/$TASKS from SLURM_ARRAY_TASK_ID=$2, SLURM_ARRAY_TASK_COUNT=$TASKS, " \
    "$E2E_ROOT/$1/task-$2.err" ||
    { show "task $2 stderr" "$E2E_ROOT/$1/task-$2.err"; fail "$1: task $2 did not say it is shard $2/$TASKS from SLURM_ARRAY_TASK_ID"; }
}

# ---- a. 8 tasks, 2 at a time --------------------------------------------------
DST="$E2E_ROOT/dst"
REPORTS="$E2E_ROOT/reports"
JOURNALS="$E2E_ROOT/journals"
mkdir -p "$JOURNALS"
run_array run-a --array=1-$TASKS%2 -- "$DST" "$REPORTS" "$JOURNALS"
for ((i = 1; i <= TASKS; i++)); do
  assert_task run-a "$i"
  expect_task run-a "${JOB}_$i" "COMPLETED 0"
  read -r objects bytes <<<"$(shard_share "$i" "$TASKS" "$LIST")"
  ((objects > 0)) || fail "a: shard $i of $TASKS has no object of the $OBJECTS (the test needs some)"
  assert_report "$REPORTS/report-shard-$i-of-$TASKS.json" "shard.index == $i" "shard.count == $TASKS" \
    "copied.objects == $objects" "copied.bytes == $bytes" "present.objects == 0" "outcome == complete"
done
py_check "a: never more than 2 of the $TASKS tasks ran at once" '
import glob, sys
events = []
for path in glob.glob(sys.argv[1] + "/times-*"):
    stamps = dict(line.split() for line in open(path))
    events += [(int(stamps["start"]), 1), (int(stamps["end"]), -1)]
if len(events) != 2 * int(sys.argv[2]):
    raise SystemExit("%d start/end times, expected %d" % (len(events), 2 * int(sys.argv[2])))
running = peak = 0
for _, step in sorted(events):
    running += step
    peak = max(peak, running)
if peak > 2:
    raise SystemExit("%d tasks ran at once" % peak)
print("at most %d at once" % peak)
' "$JOURNALS" "$TASKS"
py_check "a: the $TASKS tasks' logs copied each of the $OBJECTS objects exactly once, each task only its share" '
import collections, re, sys
count = int(sys.argv[2])
want = set(line.split()[0] for line in open(sys.argv[3]))
seen = collections.Counter()
for task in range(1, count + 1):
    for line in open("%s/%d/ferry.log" % (sys.argv[1], task)):
        m = re.search(r" oid=([0-9a-f]{64}) msg=\"copy: done\"", line)
        if m:
            oid = m.group(1)
            if int(oid[:8], 16) % count != task - 1:
                raise SystemExit("task %d copied %s of another shard" % (task, oid))
            seen[oid] += 1
twice = [oid for oid, n in seen.items() if n > 1]
if twice or set(seen) != want:
    raise SystemExit("%d copied twice, %d never, %d not in the source"
                     % (len(twice), len(want - set(seen)), len(set(seen) - want)))
' "$JOURNALS" "$TASKS" "$LIST"
assert_objects "$DST" "$LIST" exact
run_ferry report merge-a 60 merge "$REPORTS" --json "$E2E_ROOT/merged-a.json"
expect_rc "a: ferry report merge" 0
assert_report "$E2E_ROOT/merged-a.json" "shard_count == $TASKS" "missing_shards.length == 0" \
  "copied.objects == $OBJECTS" "copied.bytes == $(manifest_bytes "$LIST")" "present.objects == 0" \
  "failed.objects == 0" "corrupt.objects == 0" "pending.objects == 0" "outcome == complete"
pass "a: sbatch --array=1-$TASKS%2: each task its shard from SLURM_ARRAY_TASK_ID, all $OBJECTS objects copied once, merge complete ($(e2e_elapsed))"

# ---- b. a task cancelled mid-run, then resubmitted ----------------------------
DST="$E2E_ROOT/dst-b"
REPORTS="$E2E_ROOT/reports-b"
JOURNALS="$E2E_ROOT/journals-b"
KILLED=2
mkdir -p "$JOURNALS"
submit run-b --array=1-$TASKS%2 -- "$DST" "$REPORTS" "$JOURNALS" --tps 500
ARRAY_JOB=$JOB
killed_copied_some() {
  local state
  state=$(task_result "${ARRAY_JOB}_$KILLED")
  [[ -z $state || $state == PENDING* || $state == RUNNING* ]] ||
    fail "b: task $KILLED ended as '$state' before it could be cancelled"
  (($(copies "$JOURNALS/$KILLED") >= 200))
}
wait_for_every 0.25 60 "task $KILLED's log to show 200 copies" killed_copied_some
scancel "${ARRAY_JOB}_$KILLED"
wait_for_every 0.25 240 "the rest of the array to finish" job_done
[[ $(task_result "${ARRAY_JOB}_$KILLED") == CANCELLED* ]] ||
  fail "b: task $KILLED ended as '$(task_result "${ARRAY_JOB}_$KILLED")' after scancel, not CANCELLED"
for ((i = 1; i <= TASKS; i++)); do
  ((i == KILLED)) && continue
  expect_task run-b "${ARRAY_JOB}_$i" "COMPLETED 0"
done
read -r share_objects _ <<<"$(shard_share "$KILLED" "$TASKS" "$LIST")"
# What the cancelled task stored: its share's objects now at the destination.
stored=$(python3 -c '
import os, sys
shard, count, dst = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
print(sum(1 for line in open(sys.argv[4])
          if int(line[:8], 16) % count == shard - 1
          and os.path.exists(os.path.join(dst, line[:2], line[2:4], line.split()[0]))))
' "$KILLED" "$TASKS" "$DST" "$LIST")
((stored >= 200 && stored < share_objects)) ||
  fail "b: the cancelled task stored $stored of its $share_objects objects; the test needs it stopped mid-run"
run_ferry report merge-b-missing 60 merge "$REPORTS"
expect_rc "b: merge before the cancelled task is rerun" 1
grep -q "shard $KILLED of $TASKS is missing" "$MIG_ERR" ||
  { show "stderr" "$MIG_ERR"; fail "b: the merge does not name the missing shard $KILLED"; }
note "b: task $KILLED cancelled after storing $stored of its $share_objects objects; the merge names it missing"

inode_list "$DST" | grep -v '/\.' >"$E2E_ROOT/dst-b.before" || true
run_array run-b-alone --array=$KILLED -- "$DST" "$REPORTS" "$JOURNALS"
expect_task run-b-alone "${JOB}_$KILLED" "FAILED 2"
grep -q "is an array of one task.*FERRY_SHARD=I/N" "$E2E_ROOT/run-b-alone/task-$KILLED.err" ||
  { show "task stderr" "$E2E_ROOT/run-b-alone/task-$KILLED.err"; fail "b: the task resubmitted alone is not refused as an array of one task"; }
inode_list "$DST" | grep -v '/\.' | cmp -s - "$E2E_ROOT/dst-b.before" || fail "b: the refused task changed the destination"
pass "b: resubmitted as sbatch --array=$KILLED alone (an array of one task), --shard auto refuses it: exit 2, nothing written"

run_array run-b-rerun --array=$KILLED --export=ALL,FERRY_SHARD=$KILLED/$TASKS -- "$DST" "$REPORTS" "$JOURNALS"
expect_task run-b-rerun "${JOB}_$KILLED" "COMPLETED 0"
grep -q "^ferry migrate: shard $KILLED/$TASKS from FERRY_SHARD=$KILLED/$TASKS" "$E2E_ROOT/run-b-rerun/task-$KILLED.err" ||
  { show "task stderr" "$E2E_ROOT/run-b-rerun/task-$KILLED.err"; fail "b: the resubmitted task did not take shard $KILLED/$TASKS from FERRY_SHARD"; }
assert_report "$REPORTS/report-shard-$KILLED-of-$TASKS.json" "shard.index == $KILLED" \
  "present.objects == $stored" "copied.objects == $((share_objects - stored))" "outcome == complete"
inode_list "$DST" >"$E2E_ROOT/dst-b.after"
resent=$(comm -23 "$E2E_ROOT/dst-b.before" "$E2E_ROOT/dst-b.after" | wc -l)
((resent == 0)) ||
  { comm -23 "$E2E_ROOT/dst-b.before" "$E2E_ROOT/dst-b.after" | head -n 10 >&2; fail "b: the rerun wrote $resent files again that were at the destination"; }
assert_objects "$DST" "$LIST" exact
run_ferry report merge-b 60 merge "$REPORTS" --json "$E2E_ROOT/merged-b.json"
expect_rc "b: ferry report merge after the rerun" 0
assert_report "$E2E_ROOT/merged-b.json" "shard_count == $TASKS" "missing_shards.length == 0" \
  "present.objects == $stored" "copied.objects == $((OBJECTS - stored))" "failed.objects == 0" \
  "pending.objects == 0" "outcome == complete"
assert_counts_add_up "$E2E_ROOT/merged-b.json" "$OBJECTS" "$(manifest_bytes "$LIST")"
pass "b: task $KILLED cancelled with scancel after $stored of $share_objects objects and resubmitted with FERRY_SHARD=$KILLED/$TASKS: $stored present, the rest copied, no file written twice, merge complete"
