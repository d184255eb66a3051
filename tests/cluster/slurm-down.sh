#!/bin/bash
# slurm-down.sh DIR: stops the cluster slurm-up.sh started in DIR. Cancels its jobs, stops
# slurmd, slurmctld and munged by pid, then ends any process still carrying this cluster's
# SLURM_CONF (job steps of a test that failed midway). Safe to run twice or on a DIR whose
# start failed halfway.
D=${1:?usage: slurm-down.sh DIR}
export SLURM_CONF=$D/slurm.conf
PATH=$PATH:/usr/sbin:/sbin

if [ -f "$D/run/slurmctld.fg.pid" ] && [ -f "$SLURM_CONF" ]; then
  timeout 5 scancel --full --quiet --signal=KILL $(timeout 5 squeue -h -o %i 2>/dev/null) 2>/dev/null
  for _ in $(seq 30); do [ -z "$(timeout 5 squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.1; done
fi

alive() {   # running and not a zombie
  local s; s=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [ -n "$s" ] && [ "${s:0:1}" != Z ]
}
for n in slurmd slurmctld munged; do
  f="$D/run/$n.fg.pid"; [ -f "$f" ] || continue
  p=$(cat "$f"); kill "$p" 2>/dev/null
  for _ in $(seq 50); do alive "$p" || break; sleep 0.1; done
  alive "$p" && kill -9 "$p" 2>/dev/null
  rm -f "$f"
done

# Leftovers: slurmstepd and tasks of this cluster (their environment names our slurm.conf).
ancestors=" "; a=$$
while [ -n "$a" ] && [ "$a" -gt 1 ]; do
  ancestors+="$a "; a=$(ps -o ppid= -p "$a" 2>/dev/null | tr -d ' ')
done
for e in /proc/[0-9]*/environ; do
  p=${e#/proc/}; p=${p%/environ}
  case "$ancestors" in *" $p "*) continue ;; esac   # this script and whoever called it
  if grep -qzxF "SLURM_CONF=$SLURM_CONF" "$e" 2>/dev/null; then
    kill -9 "$p" 2>/dev/null
  fi
done
exit 0
