#!/usr/bin/env bash
# Measures NPTv6 (RFC 6296, stateless IPv6 prefix translation 2001:db8:1::/48 <-> 2001:db8:2::/48)
# through swiftnat and through the kernel's own equivalents, side by side on the same namespaces:
#   kernel:        ip6tables SNPT/DNPT (the kernel's RFC 6296 targets, ip6t_NPT: stateless and
#                  checksum-neutral, the same mapping as swiftnat's), mangle POSTROUTING/PREROUTING;
#   kernel-netmap: nftables `snat ip6 prefix to` / `dnat ip6 prefix to` (NETMAP through conntrack:
#                  stateful, keeps the host bits and rewrites the transport checksums instead).
# What is measured (as scripts/bench-nat44.sh, over IPv6):
#   - iperf3 TCP, 1 stream and 4 streams (Gbit/s);
#   - UDP blast with 64-byte payloads (iperf3 -u -b 0 -l 64; 112-byte IPv6 packets): received kpps, loss;
#   - UDP 64-byte highest rate with < 1 % loss (a short search over the offered rate, 4 MB receive buffer).
# The systems alternate within each repeat (the order flips every repeat); the table shows medians over
# the repeats and swiftnat's ratio to each kernel variant. Before every measurement it waits (up to
# IDLE_WAIT seconds) for the CPUs to be at least IDLE_PCT % idle.
#
# Usage: sudo scripts/bench-nat66.sh [seconds per TCP/blast run, default 5] [repeats, default 3] [systems]
#   systems: default "swiftnat kernel kernel-netmap"; swiftnat-nooffload runs swiftnat without TUN offloads;
#   swiftnat-gro / kernel-gro / kernel-netmap-gro: GRO and UDP GRO forwarding with a GRO_FLUSH_US (50) µs
#   flush timeout on the inside interface (the daemon sets it up through [routing] for swiftnat, the
#   script for the kernel), as in bench-nat44.sh.
# Environment: UDP_PROBE, UDP_STEPS, UDP_WINDOW, LOSS_PCT, IDLE_PCT, IDLE_WAIT, SKIP_BUILD=1 (as bench-nat44.sh).
# Needs iperf3, ip6tables (SNPT/DNPT), nft, python3, ip.
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-5}
REPEATS=${2:-3}
SYSTEMS=${3:-"swiftnat kernel kernel-netmap"}
UDP_PROBE=${UDP_PROBE:-3}
UDP_STEPS=${UDP_STEPS:-6}
LOSS_PCT=${LOSS_PCT:-1}
UDP_WINDOW=${UDP_WINDOW:-4M}
IDLE_PCT=${IDLE_PCT:-80}
IDLE_WAIT=${IDLE_WAIT:-120}
P="snbench66-$$-"
C=${P}client N=${P}nat S=${P}server
BIN=.build/release/swiftnat
BASE_BIN=${BASE_BIN:-}
DIR=$(mktemp -d)
PIDS=()
DPID=""

cleanup() {
    [ -n "$DPID" ] && kill -TERM "$DPID" 2>/dev/null && sleep 0.5
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.5
    for ns in $C $N $S; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
for t in iperf3 ip6tables nft python3 ip; do command -v $t >/dev/null || { echo "needs $t" >&2; exit 1; }; done
if [ "${SKIP_BUILD:-0}" != 1 ]; then swift build -c release --product swiftnat >/dev/null; fi
[ -x $BIN ] || { echo "no $BIN" >&2; exit 1; }

for ns in $C $N $S; do ip netns add $ns; ip -n $ns link set lo up; done
ip link add eth0 netns $C type veth peer name in0 netns $N
ip link add out0 netns $N type veth peer name eth0 netns $S
for ns in $C $N $S; do ip netns exec $ns sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0; done
ip -n $C addr add 2001:db8:1::2/64 dev eth0 nodad; ip -n $C link set eth0 up
ip -n $N addr add 2001:db8:1::1/64 dev in0 nodad; ip -n $N addr add 2001:db8:100::1/64 dev out0 nodad
ip -n $N link set in0 up; ip -n $N link set out0 up
ip -n $S addr add 2001:db8:100::2/64 dev eth0 nodad; ip -n $S link set eth0 up
ip netns exec $N sysctl -qw net.ipv6.conf.all.forwarding=1
mac() { ip -n "$1" -o link show "$2" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p'; }
ip -n $C -6 neigh replace 2001:db8:1::1 lladdr "$(mac $N in0)" dev eth0 nud permanent
ip -n $N -6 neigh replace 2001:db8:1::2 lladdr "$(mac $C eth0)" dev in0 nud permanent
ip -n $N -6 neigh replace 2001:db8:100::2 lladdr "$(mac $S eth0)" dev out0 nud permanent
ip -n $S -6 neigh replace 2001:db8:100::1 lladdr "$(mac $N out0)" dev eth0 nud permanent
ip -n $C -6 route add default via 2001:db8:1::1 dev eth0
ip -n $N -6 route add default via 2001:db8:100::2 dev out0
# The outside router routes the outside prefix to the nat (as DHCPv6 prefix delegation would).
ip -n $S -6 route add 2001:db8:2::/48 via 2001:db8:100::1 dev eth0

ip netns exec $S iperf3 -s -D -B 2001:db8:100::2 --pidfile $DIR/iperf.pid >/dev/null
sleep 0.5; PIDS+=("$(cat $DIR/iperf.pid)")

# Waits until the CPUs are IDLE_PCT % idle over one second (or IDLE_WAIT seconds pass); prints the idle %.
wait_idle() {
    timeout $((IDLE_WAIT + 5)) python3 - "$IDLE_PCT" "$IDLE_WAIT" <<'PY' || echo "?"
import sys, time
want, limit = float(sys.argv[1]), float(sys.argv[2])
def sample():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[3] + v[4], sum(v)
end = time.time() + limit
while True:
    i0, t0 = sample(); time.sleep(1); i1, t1 = sample()
    idle = 100.0 * (i1 - i0) / max(t1 - t0, 1)
    if idle >= want or time.time() >= end:
        print("%.0f" % idle); break
PY
}

run_iperf() {  # $1 seconds, rest: extra iperf3 args; prints the JSON
    local t=$1; shift
    timeout $((t + 15)) ip netns exec $C iperf3 -6 -c 2001:db8:100::2 -t "$t" -J "$@" 2>/dev/null || echo '{}'
}
tcp_gbps() { python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.2f" % (d["end"]["sum_received"]["bits_per_second"]/1e9))' 2>/dev/null || echo 0; }
udp_stats() { python3 -c '
import json,sys
d=json.load(sys.stdin); s=d["end"]["sum"]
sent=s["packets"]; lost=s["lost_packets"]; secs=s["seconds"]
print("%.1f %.2f" % ((sent-lost)/secs/1e3, 100.0*lost/max(sent,1)))' 2>/dev/null || echo "0 100"; }

# The highest offered rate (kpps of 64-byte datagrams) whose loss stays under LOSS_PCT: from the blast's
# received rate, grow until a probe fails, then bisect. Prints "received_kpps offered_kpps probes".
udp_search() {  # $1: blast received kpps
    local lo=0 hi="" r probes=0 best="0 0" out kpps loss
    r=$(python3 -c "print(max(10, int(float('$1') * 0.9)))")
    while :; do
        out=$(run_iperf "$UDP_PROBE" -u -w "$UDP_WINDOW" -l 64 -b $((r * 1000 * 64 * 8)) | udp_stats); probes=$((probes + 1))
        read -r kpps loss <<<"$out"
        if python3 -c "import sys; sys.exit(0 if float('$loss') < $LOSS_PCT else 1)"; then
            lo=$r; best="$kpps $r"
            [ -n "$hi" ] && break
            [ $probes -ge 3 ] && break
            r=$((r * 3 / 2))
        else
            hi=$r; break
        fi
        sleep 0.5
    done
    if [ -n "$hi" ]; then
        for _ in $(seq "$UDP_STEPS"); do
            [ $((hi - lo)) -le 2 ] && break
            r=$(((lo + hi) / 2))
            [ "$r" -lt 1 ] && break
            sleep 0.5
            out=$(run_iperf "$UDP_PROBE" -u -w "$UDP_WINDOW" -l 64 -b $((r * 1000 * 64 * 8)) | udp_stats); probes=$((probes + 1))
            read -r kpps loss <<<"$out"
            if python3 -c "import sys; sys.exit(0 if float('$loss') < $LOSS_PCT else 1)"; then lo=$r; best="$kpps $r"; else hi=$r; fi
        done
    fi
    echo "$best $probes"
}

measure() {  # $1 label; prints "label tcp1 tcp4 blast_kpps blast_loss max_kpps offered_kpps idle1 idle2 idle3 idle4"
    local t1 t4 u s i1 i2 i3 i4
    i1=$(wait_idle); t1=$(run_iperf "$T" | tcp_gbps)
    i2=$(wait_idle); t4=$(run_iperf "$T" -P 4 | tcp_gbps)
    i3=$(wait_idle); u=$(run_iperf "$T" -u -b 0 -l 64 | udp_stats)
    i4=$(wait_idle); s=$(udp_search "${u%% *}")
    echo "$1 $t1 $t4 $u ${s% *} $i1 $i2 $i3 $i4"
}

start_swiftnat() {  # $1 variant name (swiftnat[-nooffload][-gro])
    local off=true gro="gro_interfaces = []"
    case $1 in *nooffload*) off=false ;; esac
    case $1 in *-gro*) gro="gro_flush_timeout_us = $GRO_FLUSH_US" ;; esac
    cat > $DIR/nptv6.toml <<TOML
[tun]
name = "snat0"
offload = $off
[routing]
$gro
[nptv6]
inside_interface = "in0"
outside_interface = "out0"
inside_prefix = "2001:db8:1::/48"
outside_prefix = "2001:db8:2::/48"
[control]
socket = "$DIR/control.sock"
state_file = ""
TOML
    ip netns exec $N $BIN run --config $DIR/nptv6.toml > $DIR/daemon.log 2>&1 &
    DPID=$!
    for _ in $(seq 50); do grep -q "ready:" $DIR/daemon.log && break; sleep 0.1; done
    grep -q "ready:" $DIR/daemon.log || { cat $DIR/daemon.log; exit 1; }
    ip netns exec $C ping -6 -c 1 -W 2 2001:db8:100::2 >/dev/null
}

stop_swiftnat() {
    [ -n "${SCRAPER:-}" ] && { kill "$SCRAPER" 2>/dev/null || true; wait "$SCRAPER" 2>/dev/null || true; SCRAPER=""; }
    kill -TERM "$DPID"; wait "$DPID" || true; DPID=""
}

start_kernel() {  # the kernel's RFC 6296 targets: stateless, checksum-neutral
    ip netns exec $N ip6tables -t mangle -A POSTROUTING -s 2001:db8:1::/48 -o out0 -j SNPT --src-pfx 2001:db8:1::/48 --dst-pfx 2001:db8:2::/48
    ip netns exec $N ip6tables -t mangle -A PREROUTING -d 2001:db8:2::/48 -i out0 -j DNPT --src-pfx 2001:db8:2::/48 --dst-pfx 2001:db8:1::/48
    ip netns exec $C ping -6 -c 1 -W 2 2001:db8:100::2 >/dev/null
}

stop_kernel() {
    ip netns exec $N ip6tables -t mangle -F POSTROUTING
    ip netns exec $N ip6tables -t mangle -F PREROUTING
}

start_netmap() {  # nftables prefix NAT (NETMAP semantics, through conntrack)
    ip netns exec $N nft -f - <<NFT
table ip6 snbench66 {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip6 saddr 2001:db8:1::/48 oifname "out0" snat ip6 prefix to ip6 saddr map { 2001:db8:1::/48 : 2001:db8:2::/48 }
  }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    ip6 daddr 2001:db8:2::/48 iifname "out0" dnat ip6 prefix to ip6 daddr map { 2001:db8:2::/48 : 2001:db8:1::/48 }
  }
}
NFT
    ip netns exec $C ping -6 -c 1 -W 2 2001:db8:100::2 >/dev/null
}

stop_netmap() {
    ip netns exec $N nft delete table ip6 snbench66
}

# "-gro" in a system's name: GRO and UDP GRO forwarding on the inside interface (in0) for that run, and
# a GRO flush timeout of GRO_FLUSH_US microseconds (default 50) on it: a veth link hands packets over one
# at a time, so without the timeout nothing would be merged. The kernel then coalesces a burst of one
# flow's datagrams into one UDP GSO super-packet before forwarding it (to nftables, or into the TUN
# device). For kernel-gro the script sets this up; for swiftnat-gro the daemon does ([routing]
# gro_interfaces, which default to the inside interfaces, and gro_flush_timeout_us) and undoes it at
# stop. Other swiftnat variants run with gro_interfaces = [] (GRO off, the veth default).
GRO_FLUSH_US=${GRO_FLUSH_US:-50}
set_gro() {
    local on=off us=0
    case "-$1-" in *-gro-*) [ "${1%%-*}" = kernel ] && on=on && us=$GRO_FLUSH_US ;; esac
    ip netns exec $N ethtool -K in0 gro $on rx-udp-gro-forwarding $on >/dev/null 2>&1 || true
    ip netns exec $N sh -c "echo $((us * 1000)) > /sys/class/net/in0/gro_flush_timeout" 2>/dev/null || true
}

RESULTS=$DIR/results.txt
: > $RESULTS
read -r -a SYS <<<"$SYSTEMS"
for rep in $(seq "$REPEATS"); do
    order=("${SYS[@]}")
    if [ $((rep % 2)) = 0 ]; then  # flip the order every other repeat
        order=(); for ((i=${#SYS[@]}-1; i>=0; i--)); do order+=("${SYS[$i]}"); done
    fi
    for s in "${order[@]}"; do
        set_gro "$s"
        case $s in
            kernel|kernel-gro) start_kernel; line=$(measure "$s"); stop_kernel ;;
            kernel-netmap|kernel-netmap-gro) start_netmap; line=$(measure "$s"); stop_netmap ;;
            swiftnat*) start_swiftnat "$s"; line=$(measure "$s"); stop_swiftnat ;;
            *) echo "unknown system $s" >&2; exit 1 ;;
        esac
        echo "repeat $rep: $line" >&2
        echo "$line" >> $RESULTS
    done
done

echo
echo "load when finished: $(uptime)"
python3 - "$RESULTS" "$SYSTEMS" "$T" "$REPEATS" "$UDP_PROBE" "$LOSS_PCT" "$UDP_WINDOW" <<'PY'
import sys, statistics
path, systems, T, reps, probe, lossp, window = sys.argv[1], sys.argv[2].split(), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7]
rows = {}
for line in open(path):
    f = line.split()
    rows.setdefault(f[0], []).append([float(x) if x != "?" else float("nan") for x in f[1:]])
def med(s, i):
    v = [r[i] for r in rows.get(s, []) if r[i] == r[i]]
    return statistics.median(v) if v else float("nan")
metrics = [("TCP 1 stream (Gbit/s)", 0, "%.2f"), ("TCP 4 streams (Gbit/s)", 1, "%.2f"),
           ("UDP 64 B blast received (kpps)", 2, "%.1f"), ("UDP 64 B blast loss (%)", 3, "%.1f"),
           ("UDP 64 B max rate, loss < %s %% (kpps)" % lossp, 4, "%.1f"),
           ("  offered at that rate (kpps)", 5, "%.0f"),
           ("CPU idle before runs (%, median)", None, "%.0f")]
sw = [s for s in systems if not s.startswith("kernel")]
kernels = [k for k in systems if k.startswith("kernel")]
pairs = [(s, k) for s in sw for k in kernels if ("-gro" in s) == ("-gro" in k)] or [(s, k) for s in sw for k in kernels]
cols = systems + [s + "/" + k for s, k in pairs]
width = {c: max(12, len(c) + 2) for c in cols}
print("medians of %s repeats; TCP and blast runs %s s; UDP search probes %s s with a %s receive buffer" % (reps, T, probe, window))
print("%-40s" % "" + "".join("%*s" % (width[c], c) for c in cols))
for name, i, fmt in metrics:
    if i is None:
        vals = {s: statistics.median([x for r in rows.get(s, []) for x in r[6:10] if x == x] or [float("nan")]) for s in systems}
        print("%-40s" % name + "".join("%*s" % (width[s], fmt % vals[s]) for s in systems))
        continue
    vals = {s: med(s, i) for s in systems}
    line = "%-40s" % name + "".join("%*s" % (width[s], fmt % vals[s]) for s in systems)
    if i not in (3, 5):
        for s, kk in pairs:
            k = vals[kk]
            line += "%*s" % (width[s + "/" + kk], "%.2f" % (vals[s] / k) if k > 0 else "-")
    print(line)
PY
