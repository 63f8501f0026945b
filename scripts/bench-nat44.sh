#!/usr/bin/env bash
# Measures NAT44 throughput through swiftnat and through the kernel's nftables masquerade (snat to the
# same pool address), side by side on the same namespaces: iperf3 TCP 1 and 4 streams, UDP 64-byte pps.
# Usage: sudo scripts/bench-nat44.sh [seconds per run, default 5]   (needs iperf3, nft, python3)
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-5}
P="snbench-$$-"
C=${P}client N=${P}nat S=${P}server
BIN=.build/release/swiftnat
DIR=$(mktemp -d)
PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.5
    for ns in $C $N $S; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
for t in iperf3 nft python3 ip; do command -v $t >/dev/null || { echo "needs $t" >&2; exit 1; }; done
[ -x $BIN ] || swift build -c release >/dev/null

for ns in $C $N $S; do ip netns add $ns; ip -n $ns link set lo up; done
ip link add eth0 netns $C type veth peer name in0 netns $N
ip link add out0 netns $N type veth peer name eth0 netns $S
ip -n $C addr add 100.64.0.2/24 dev eth0; ip -n $C link set eth0 up; ip -n $C route add default via 100.64.0.1
ip -n $N addr add 100.64.0.1/24 dev in0; ip -n $N addr add 203.0.113.1/24 dev out0
ip -n $N link set in0 up; ip -n $N link set out0 up; ip -n $N route add default via 203.0.113.2
ip -n $S addr add 203.0.113.2/24 dev eth0; ip -n $S link set eth0 up; ip -n $S route add 198.51.100.0/24 via 203.0.113.1

cat > $DIR/nat44.toml <<TOML
[tun]
name = "snat0"
[nat44]
inside = ["100.64.0.0/24"]
inside_interfaces = ["in0"]
outside_interface = "out0"
pool = ["198.51.100.1/32"]
behavior = "port-restricted-cone"
TOML

ip netns exec $S iperf3 -s -D -B 203.0.113.2 --pidfile $DIR/iperf.pid >/dev/null
sleep 0.5; PIDS+=("$(cat $DIR/iperf.pid)")

run_iperf() {  # $@: extra iperf3 args; prints the JSON
    timeout $((T + 15)) ip netns exec $C iperf3 -c 203.0.113.2 -t "$T" -J "$@" 2>/dev/null || echo '{}'
}
tcp_gbps() { python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.2f" % (d["end"]["sum_received"]["bits_per_second"]/1e9))' 2>/dev/null || echo 0; }
udp_stats() { python3 -c '
import json,sys
d=json.load(sys.stdin); s=d["end"]["sum"]
sent=s["packets"]; lost=s["lost_packets"]; secs=s["seconds"]
print("%.0f %.1f" % ((sent-lost)/secs/1e3, 100.0*lost/max(sent,1)))' 2>/dev/null || echo "0 100"; }

measure() {  # $1 label
    sleep 1
    local t1 t4 u
    t1=$(run_iperf | tcp_gbps)
    sleep 1
    t4=$(run_iperf -P 4 | tcp_gbps)
    sleep 1
    u=$(run_iperf -u -b 0 -l 64 | udp_stats)
    echo "$1 $t1 $t4 $u"
}

# swiftnat
ip netns exec $N $BIN run --config $DIR/nat44.toml > $DIR/daemon.log 2>&1 &
DPID=$!; PIDS+=("$DPID")
for _ in $(seq 50); do grep -q "ready:" $DIR/daemon.log && break; sleep 0.1; done
grep -q "ready:" $DIR/daemon.log || { cat $DIR/daemon.log; exit 1; }
ip netns exec $C ping -c 1 -W 2 203.0.113.2 >/dev/null
SW=$(measure swiftnat)
echo "$SW"
kill -TERM $DPID; wait $DPID || true

# kernel: nftables snat to the same pool address
ip netns exec $N sysctl -qw net.ipv4.ip_forward=1
ip netns exec $N nft -f - <<NFT
table ip snbench {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr 100.64.0.0/24 oifname "out0" snat to 198.51.100.1
  }
}
NFT
ip netns exec $C ping -c 1 -W 2 203.0.113.2 >/dev/null
KN=$(measure kernel)
echo "$KN"

python3 - "$SW" "$KN" <<'PY'
import sys
sw = sys.argv[1].split(); kn = sys.argv[2].split()
rows = [("TCP 1 stream (Gbit/s)", 1), ("TCP 4 streams (Gbit/s)", 2), ("UDP 64 B received (kpps)", 3), ("UDP 64 B loss (%)", 4)]
print("%-26s %12s %12s %8s" % ("", "swiftnat", "kernel nft", "ratio"))
for name, i in rows:
    a, b = float(sw[i]), float(kn[i])
    ratio = "%.2f" % (a / b) if b > 0 and i != 4 else "-"
    print("%-26s %12s %12s %8s" % (name, sw[i], kn[i], ratio))
PY
