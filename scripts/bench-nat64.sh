#!/usr/bin/env bash
# Measures NAT64 throughput through swiftnat (protomask-style 1:1 pool, or SIIT with MODE=siit) and through
# TAYGA (its dynamic pool: also one IPv4 address per IPv6 host), side by side on the same namespaces:
# iperf3 TCP 1 and 4 streams, UDP 64-byte packets received per second and loss at full blast, and the
# highest UDP 64-byte rate with < 1 % loss (binary search on iperf3 -b). Prints both and the ratios.
#
#   client 2001:db8:1::2 ── in0 [nat: swiftnat | tayga] out0 203.0.113.1 ── server 203.0.113.2
#   prefix 2001:db8:64::/96 (network-specific: TAYGA refuses 64:ff9b::/96 with documentation IPv4),
#   pool 198.51.100.64/29; the server is 2001:db8:64::cb00:7102 for the client.
#
# Usage: sudo scripts/bench-nat64.sh [seconds per run, default 5] [rounds, default 1]
#        (needs iperf3, tayga, python3; MODE=siit to run swiftnat in SIIT mode instead of pool mode)
# Environment: GRO=1 turns on GRO and UDP GRO forwarding on the inside interface (in0) with a GRO flush
#   timeout of GRO_FLUSH_US microseconds (default 50), for both systems: swiftnat sets it up itself
#   ([routing] gro_interfaces, gro_flush_timeout_us), for TAYGA the script does. A veth link hands packets
#   over one at a time; the timeout lets the kernel merge a burst of one flow's datagrams into one UDP
#   GSO super-packet. TAYGA reads without offloads, so the kernel cuts those up again before TAYGA reads.
#   GRO=swiftnat: only for swiftnat's runs (TAYGA as it comes: GRO off, which suits it better).
#   UDP_WINDOW (default 4M): socket buffers for the < 1 % loss probes, so that a receiving iperf3 that is
#   descheduled for a moment does not decide the result.
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-5}
ROUNDS=${2:-1}
MODE=${MODE:-pool}
GRO=${GRO:-0}
GRO_FLUSH_US=${GRO_FLUSH_US:-50}
UDP_WINDOW=${UDP_WINDOW:-4M}
P="sn64b-$$-"
C=${P}client N=${P}nat S=${P}server
BIN=${BIN:-.build/release/swiftnat}
DIR=$(mktemp -d)
PIDS=()
SERVER6=2001:db8:64::cb00:7102

cleanup() {
    # Processes started inside $(...) record their ids in $DIR/pids.
    for p in "${PIDS[@]}" $(cat $DIR/pids 2>/dev/null); do kill "$p" 2>/dev/null || true; done
    sleep 0.5
    ip netns exec $N tayga --rmtun -c $DIR/tayga.conf >/dev/null 2>&1 || true
    for ns in $C $N $S; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
for t in iperf3 tayga python3 ip; do command -v $t >/dev/null || { echo "needs $t (apt-get install iperf3 tayga)" >&2; exit 1; }; done
[ -x $BIN ] || swift build -c release >/dev/null

for ns in $C $N $S; do
    ip netns add $ns; ip -n $ns link set lo up
    ip netns exec $ns sysctl -qw net.ipv6.conf.default.accept_dad=0
done
ip link add eth0 netns $C type veth peer name in0 netns $N
ip link add out0 netns $N type veth peer name eth0 netns $S
ip -n $C addr add 2001:db8:1::2/64 dev eth0 nodad; ip -n $C link set eth0 up
ip -n $C -6 route add default via 2001:db8:1::1 dev eth0
ip -n $N addr add 2001:db8:1::1/64 dev in0 nodad; ip -n $N addr add 203.0.113.1/24 dev out0
ip -n $N link set in0 up; ip -n $N link set out0 up; ip -n $N route add default via 203.0.113.2
ip -n $S addr add 203.0.113.2/24 dev eth0; ip -n $S link set eth0 up; ip -n $S route add 198.51.100.0/24 via 203.0.113.1

if [ "$MODE" = siit ]; then ADDR='eam = [{ v4 = "198.51.100.65", v6 = "2001:db8:1::2" }]'; else ADDR='pool = ["198.51.100.64/29"]'; fi
cat > $DIR/nat64.toml <<TOML
[tun]
name = "snat0"
mtu = 1500
[routing]
gro_interfaces = [$([ "$GRO" != 0 ] && echo '"in0"')]
gro_flush_timeout_us = $([ "$GRO" != 0 ] && echo $GRO_FLUSH_US || echo 0)
[nat64]
mode = "$MODE"
prefix = "2001:db8:64::/96"
$ADDR
TOML

cat > $DIR/tayga.conf <<CONF
tun-device tayga64
ipv4-addr 198.51.100.70
prefix 2001:db8:64::/96
dynamic-pool 198.51.100.64/29
data-dir $DIR/tayga
CONF
mkdir -p $DIR/tayga

ip netns exec $S iperf3 -s -D -B 203.0.113.2 --pidfile $DIR/iperf.pid >/dev/null
sleep 0.5; PIDS+=("$(cat $DIR/iperf.pid)")

run_iperf() {  # $1 seconds, rest: extra iperf3 args; prints the JSON
    local t=$1; shift
    timeout $((t + 15)) ip netns exec $C iperf3 -6 -c $SERVER6 -t "$t" -J "$@" 2>/dev/null || echo '{}'
}
tcp_gbps() { python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.2f" % (d["end"]["sum_received"]["bits_per_second"]/1e9))' 2>/dev/null || echo 0; }
udp_stats() { python3 -c '
import json,sys
d=json.load(sys.stdin); s=d["end"]["sum"]
sent=s["packets"]; lost=s["lost_packets"]; secs=s["seconds"]
print("%.0f %.1f %.0f" % ((sent-lost)/secs/1e3, 100.0*lost/max(sent,1), sent/secs/1e3))' 2>/dev/null || echo "0 100 0"; }

# Highest 64-byte UDP rate (kpps offered) with < 1 % loss: binary search between 0 and the full-blast send rate.
udp_search() {  # $1: upper bound in kpps
    local lo=0 hi=$1 mid loss
    for _ in 1 2 3 4 5 6; do
        mid=$(( (lo + hi) / 2 )); [ $mid -gt 0 ] || break
        sleep 0.5
        read -r _ loss _ < <(run_iperf 3 -u -w "$UDP_WINDOW" -l 64 -b $(( mid * 1000 * 64 * 8 )) | udp_stats)
        if python3 -c "import sys; sys.exit(0 if float('$loss') < 1.0 else 1)"; then lo=$mid; else hi=$mid; fi
    done
    echo $lo
}

measure() {  # $1 label; prints "label tcp1 tcp4 udp_kpps udp_loss max_kpps_under_1pct"
    local t1 t4 u rx loss tx best
    sleep 1
    t1=$(run_iperf "$T" | tcp_gbps)
    sleep 1
    t4=$(run_iperf "$T" -P 4 | tcp_gbps)
    sleep 1
    read -r rx loss tx < <(run_iperf "$T" -u -b 0 -l 64 | udp_stats)
    best=$(udp_search "${tx%.*}")
    echo "$1 $t1 $t4 $rx $loss $best"
}

load() { cut -d' ' -f1-3 /proc/loadavg; }

run_swiftnat() {
    ip netns exec $N $BIN run --config $DIR/nat64.toml > $DIR/daemon.log 2>&1 &
    local d=$!; echo $d >> $DIR/pids
    for _ in $(seq 50); do grep -q "ready:" $DIR/daemon.log && break; sleep 0.1; done
    grep -q "ready:" $DIR/daemon.log || { cat $DIR/daemon.log >&2; exit 1; }
    ip netns exec $C ping -6 -c 1 -W 2 $SERVER6 >/dev/null
    echo "load before swiftnat: $(load)" >&2
    measure swiftnat
    kill -TERM $d; wait $d || true
}

run_tayga() {
    ip netns exec $N tayga --mktun -c $DIR/tayga.conf >/dev/null
    ip -n $N link set tayga64 mtu 1520 up          # TAYGA: the IPv4 MTU + 20
    ip -n $N route add 198.51.100.64/29 dev tayga64
    ip -n $N -6 route add 2001:db8:64::/96 dev tayga64
    ip netns exec $N sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
    if [ "$GRO" = 1 ]; then
        ip netns exec $N ethtool -K in0 gro on rx-udp-gro-forwarding on >/dev/null
        ip netns exec $N sh -c "echo $((GRO_FLUSH_US * 1000)) > /sys/class/net/in0/gro_flush_timeout"
    fi
    ip netns exec $N tayga -c $DIR/tayga.conf --nodetach > $DIR/tayga.log 2>&1 &
    local t=$!; echo $t >> $DIR/pids
    sleep 0.5
    ip netns exec $C ping -6 -c 1 -W 2 $SERVER6 >/dev/null || { echo "TAYGA does not pass traffic:" >&2; cat $DIR/tayga.log >&2; exit 1; }
    echo "load before tayga: $(load)" >&2
    measure tayga
    kill -TERM $t; wait $t || true
    ip -n $N route del 198.51.100.64/29 dev tayga64 || true
    ip -n $N -6 route del 2001:db8:64::/96 dev tayga64 || true
    ip netns exec $N tayga --rmtun -c $DIR/tayga.conf >/dev/null
    ip netns exec $N ethtool -K in0 gro off rx-udp-gro-forwarding off >/dev/null 2>&1 || true
    ip netns exec $N sh -c "echo 0 > /sys/class/net/in0/gro_flush_timeout" 2>/dev/null || true
}

SW=() TG=()
for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then SW+=("$(run_swiftnat)"); TG+=("$(run_tayga)"); else TG+=("$(run_tayga)"); SW+=("$(run_swiftnat)"); fi
    echo "round $r: ${SW[-1]} | ${TG[-1]}" >&2
done
echo "load after: $(load) ($(nproc) cores, shared)" >&2

python3 - "$MODE" "${#SW[@]}" "${SW[@]}" "${TG[@]}" <<'PY'
import statistics, sys
mode, n = sys.argv[1], int(sys.argv[2])
rows = [l.split() for l in sys.argv[3:]]
sw, tg = rows[:n], rows[n:]
med = lambda rs, i: statistics.median(float(r[i]) for r in rs)
names = [("TCP 1 stream (Gbit/s)", 1), ("TCP 4 streams (Gbit/s)", 2), ("UDP 64 B received (kpps)", 3),
         ("UDP 64 B loss (%)", 4), ("UDP 64 B < 1 % loss (kpps)", 5)]
import os
gro = os.environ.get("GRO", "0")
if gro != "0": print("GRO and UDP GRO forwarding on in0, flush timeout %s us, for %s" % (os.environ.get("GRO_FLUSH_US", "50"), "both" if gro == "1" else "swiftnat only"))
print("%-28s %14s %12s %8s" % ("", "swiftnat " + mode, "tayga", "ratio"))
for name, i in names:
    a, b = med(sw, i), med(tg, i)
    ratio = "%.2f" % (a / b) if b > 0 and i != 4 else "-"
    print("%-28s %14g %12g %8s" % (name, a, b, ratio))
if n > 1: print("(medians of %d alternating rounds)" % n)
PY
