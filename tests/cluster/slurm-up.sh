#!/bin/bash
# slurm-up.sh DIR [PORT]: a private single-node SLURM cluster in DIR (munged, slurmctld,
# slurmd in the foreground, stopped by slurm-down.sh DIR). Touches nothing outside DIR:
# no /etc/slurm, /etc/munge or /run. PORT (slurmctld; slurmd uses PORT+1) defaults to a
# free pair derived from this shell's pid, so parallel test runs do not clash.
# Prints `export SLURM_CONF=DIR/slurm.conf` on success; exit 1 with the logs' tails if a
# daemon does not come up. Recipe: ../shared/CLUSTER.md section 5.
set -euo pipefail
D=${1:?usage: slurm-up.sh DIR [PORT]}
PORT=${2:-}

port_free() {   # nothing listens on 127.0.0.1:$1
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
if [ -z "$PORT" ]; then
  PORT=$((20000 + ($$ % 2000) * 2))
  for _ in $(seq 200); do
    port_free "$PORT" && port_free $((PORT + 1)) && break
    PORT=$((PORT + 2)); [ "$PORT" -lt 24000 ] || PORT=20000
  done
fi

for tool in munged mungekey slurmctld slurmd sinfo; do
  command -v "$tool" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin
  command -v "$tool" >/dev/null 2>&1 || { echo "slurm-up: $tool not found (apt-get install slurm-wlm munge)" >&2; exit 1; }
done

mkdir -p "$D"/{state,spool,log,run,munge,tmp}
D=$(cd "$D" && pwd)
# munged refuses a socket whose directories are not all searchable by everyone.
a=$D
while [ "$a" != / ]; do
  [ "$(( $(stat -c %#a "$a") & 0111 ))" = 73 ] || [ "$a" = "$D" ] || {
    echo "slurm-up: $a is not searchable by all; munged needs every directory above its socket to be (chmod go+x $a)" >&2; exit 1; }
  a=$(dirname "$a")
done
chmod 755 "$D" "$D/munge"                  # munged: the socket directory must be o+x
[ -f "$D/munge/munge.key" ] || mungekey -c -k "$D/munge/munge.key"
cat > "$D/slurm.conf" <<CONF
ClusterName=loomtest
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$D/munge/munge.sock,cred_expire=10
MailProg=/bin/true
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
# Job ids of their own (PORT is unique among the clusters of this machine): Open MPI's shared
# memory segments (vader, under /dev/shm) are named by the job and step, so two private
# clusters both running their job 2 (two test runs side by side) corrupted each other's
# segments, and the ranks of both crashed in MPI_Allreduce (SIGSEGV in vader's poll).
FirstJobId=$((PORT * 1000))
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
KillWait=5
# The steps' scratch (PMIx's spmix_appdir_UID_JOB.STEP among it) in this cluster's own
# directory: under /tmp, two private clusters on one machine (two test runs side by side)
# collide on job 1 step 0's directory ("File exists") and srun's launch fails.
TmpFS=$D/tmp
MinJobAge=300
SchedulerParameters=sched_interval=1
# debug2 logs each time-limit pass ("Testing job time limits"): the tests time a
# --signal=SIG@N job against those passes.
SlurmctldDebug=debug2
# A job in partition urgent preempts (requeues) the jobs of partition debug.
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO PriorityTier=1
PartitionName=urgent Nodes=localhost MaxTime=INFINITE State=UP OverSubscribe=NO PriorityTier=2
CONF
export SLURM_CONF=$D/slurm.conf

munged -F --key-file="$D/munge/munge.key" --socket="$D/munge/munge.sock" \
       --pid-file="$D/munge/munged.pid" --log-file="$D/munge/munged.log" \
       --seed-file="$D/munge/munged.seed" >"$D/log/munged.out" 2>&1 &
echo $! > "$D/run/munged.fg.pid"
for _ in $(seq 50); do [ -S "$D/munge/munge.sock" ] && break; sleep 0.1; done
[ -S "$D/munge/munge.sock" ] || { echo "slurm-up: munged did not start:" >&2; tail -n 5 "$D/log/munged.out" >&2; exit 1; }
slurmctld -D -i -f "$SLURM_CONF" >"$D/log/slurmctld.out" 2>&1 &
echo $! > "$D/run/slurmctld.fg.pid"
slurmd -D -f "$SLURM_CONF" >"$D/log/slurmd.out" 2>&1 &
echo $! > "$D/run/slurmd.fg.pid"
for _ in $(seq 100); do [ "$(timeout 2 sinfo -h -o %t 2>/dev/null)" = idle ] && break; sleep 0.1; done
if [ "$(timeout 2 sinfo -h -o %t 2>/dev/null)" != idle ]; then
  echo "slurm-up: the node did not become idle within 15 s; logs in $D/log:" >&2
  tail -n 5 "$D"/log/*.log "$D"/log/*.out "$D/munge/munged.log" >&2 2>/dev/null || true
  exit 1
fi
echo "export SLURM_CONF=$SLURM_CONF"
