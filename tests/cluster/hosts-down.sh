#!/bin/bash
# hosts-down.sh DIR: ends every process still inside the namespaces hosts-up.sh DIR created
# (ranks, orted) and deletes the namespaces (their veth ends and the bridge go with them).
# Safe to run twice or after a start that failed halfway.
D=${1:?usage: hosts-down.sh DIR}
PATH=$PATH:/usr/sbin:/sbin
[ -f "$D/namespaces" ] || exit 0
while read -r ns; do
  [ -n "$ns" ] || continue
  for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
  ip netns del "$ns" 2>/dev/null
done < "$D/namespaces"
rm -f "$D/namespaces"
exit 0
