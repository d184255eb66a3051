#!/bin/bash
# hosts-up.sh DIR N: N simulated hosts h1..hN as network namespaces on this machine, joined
# by a bridge that lives in its own namespace: every address exists only inside them
# (10.251.0.K/24 on eth0 of host hK). Writes into DIR:
#   hostfile   one line per host: "hK slots=S" (S: $HOSTS_SLOTS, default 2); names, not
#              addresses, so that mpirun names the host of a failed rank as a user would
#   nsrsh      the mpirun launch agent (plm_rsh_agent): runs a command "on" a host, i.e. in
#              its namespace with its own UTS namespace and hostname hK
#   mpirun-h1  runs its arguments on h1 (where mpirun itself must run)
#   namespaces the names created, for hosts-down.sh
# Names carry a per-run prefix (loom<pid>), so parallel test runs do not clash. Exit 1 with
# the reason when this machine cannot create namespaces (not root, no CAP_NET_ADMIN, no
# veth or bridge support). Recipe: ../shared/CLUSTER.md section 6.
set -euo pipefail
D=${1:?usage: hosts-up.sh DIR N}
N=${2:-2}
PREFIX=${HOSTS_PREFIX:-loom$$}
SLOTS=${HOSTS_SLOTS:-2}
PATH=$PATH:/usr/sbin:/sbin
mkdir -p "$D"
: > "$D/namespaces"
fail() { echo "hosts-up: $*" >&2; exit 1; }
command -v ip >/dev/null || fail "ip not found (apt-get install iproute2)"
command -v unshare >/dev/null || fail "unshare not found (util-linux)"

sw=${PREFIX}sw
ip netns add "$sw" 2>"$D/hosts-up.err" || fail "cannot create a network namespace: $(cat "$D/hosts-up.err")"
echo "$sw" >> "$D/namespaces"
ip -n "$sw" link set lo up
ip -n "$sw" link add br0 type bridge 2>"$D/hosts-up.err" || fail "cannot create a bridge: $(cat "$D/hosts-up.err")"
ip -n "$sw" link set br0 up
: > "$D/hostfile"
cases=""
for k in $(seq "$N"); do
  ns=${PREFIX}h$k
  ip netns add "$ns"
  echo "$ns" >> "$D/namespaces"
  ip -n "$sw" link add "p$k" type veth peer name eth0 netns "$ns" 2>"$D/hosts-up.err" \
    || fail "cannot create a veth pair: $(cat "$D/hosts-up.err")"
  ip -n "$sw" link set "p$k" master br0 up
  ip -n "$ns" addr add "10.251.0.$k/24" dev eth0
  ip -n "$ns" link set lo up
  ip -n "$ns" link set eth0 up
  echo "h$k slots=$SLOTS" >> "$D/hostfile"
  cases+="  10.251.0.$k|h$k) ns=$ns; name=h$k ;;"$'\n'
done

cat > "$D/nsrsh" <<AGENT
#!/bin/sh
# mpirun's launch agent for the simulated hosts: nsrsh HOST COMMAND...
host=\$1; shift
case "\$host" in
$cases  *) echo "nsrsh: unknown host \$host" >&2; exit 255 ;;
esac
exec ip netns exec "\$ns" unshare --uts /bin/sh -c "hostname \$name && \$*"
AGENT
cat > "$D/mpirun-h1" <<RUN
#!/bin/sh
# Runs its arguments on host h1 (its network and UTS namespaces, hostname h1).
exec ip netns exec ${PREFIX}h1 unshare --uts /bin/sh -c 'hostname h1 && exec "\$@"' sh "\$@"
RUN
chmod +x "$D/nsrsh" "$D/mpirun-h1"
rm -f "$D/hosts-up.err"
