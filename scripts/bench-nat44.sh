#!/usr/bin/env bash
# Measures NAT44 throughput through swiftnat and through the kernel's nftables NAT (snat to the same pool
# address), side by side on the same namespaces:
#   - iperf3 TCP, 1 stream and 4 streams (Gbit/s);
#   - UDP 64-byte blast (iperf3 -u -b 0 -l 64): received kpps and loss (this measures the receiver as
#     much as the NAT);
#   - UDP 64-byte highest rate with < 1 % loss: a short search over the offered rate (iperf3 -u -b R -l 64)
#     for the highest rate whose loss stays under 1 %; reports the received kpps at that rate. These probes
#     ask for a 4 MB receive buffer (iperf3 -w, UDP_WINDOW) so that the receiving iperf3 being descheduled
#     for a moment on a busy machine does not decide the result: the loss is then the NAT's.
# The systems alternate within each repeat (the order flips every repeat); the table shows medians over
# the repeats and each swiftnat variant's ratio to the kernel. Before every measurement it waits (up to
# IDLE_WAIT seconds) for the machine's CPUs to be at least IDLE_PCT % idle, and prints the load seen.
#
# Usage: sudo scripts/bench-nat44.sh [seconds per TCP/blast run, default 5] [repeats, default 3] [systems]
#   systems: space-separated, default "swiftnat kernel". swiftnat variants: swiftnat-q<N> (N queues),
#   swiftnat-nooffload, swiftnat-txq<N> (TUN txqueuelen), swiftnat-noqueue (no qdisc on the TUN device),
#   swiftnat-scrape (a Prometheus scrape of the metrics endpoint every 100 ms during the runs),
#   swiftnat-base (the binary at $BASE_BIN, an earlier build to compare with: no [control]/[metrics]),
#   combinable: swiftnat-q2-nooffload.
# Environment: UDP_PROBE (seconds per search probe, default 3), UDP_STEPS (bisection steps, default 6),
#   UDP_WINDOW (socket buffers for the probes, default 4M; net.core.rmem_max caps it),
#   LOSS_PCT (loss bound, default 1), IDLE_PCT (default 80), IDLE_WAIT (default 120), SKIP_BUILD=1.
#   kernel-gro, swiftnat-gro: GRO and UDP GRO forwarding on the inside interface (see set_gro below).
# Needs iperf3, nft, python3, ip (and ethtool for the -gro variants).
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-5}
REPEATS=${2:-3}
SYSTEMS=${3:-"swiftnat kernel"}
UDP_PROBE=${UDP_PROBE:-3}
UDP_STEPS=${UDP_STEPS:-6}
LOSS_PCT=${LOSS_PCT:-1}
UDP_WINDOW=${UDP_WINDOW:-4M}
IDLE_PCT=${IDLE_PCT:-80}
IDLE_WAIT=${IDLE_WAIT:-120}
P="snbench-$$-"
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
for t in iperf3 nft python3 ip; do command -v $t >/dev/null || { echo "needs $t" >&2; exit 1; }; done
if [ "${SKIP_BUILD:-0}" != 1 ]; then swift build -c release --product swiftnat >/dev/null; fi
[ -x $BIN ] || { echo "no $BIN" >&2; exit 1; }

for ns in $C $N $S; do ip netns add $ns; ip -n $ns link set lo up; done
ip link add eth0 netns $C type veth peer name in0 netns $N
ip link add out0 netns $N type veth peer name eth0 netns $S
ip -n $C addr add 100.64.0.2/24 dev eth0; ip -n $C link set eth0 up; ip -n $C route add default via 100.64.0.1
ip -n $N addr add 100.64.0.1/24 dev in0; ip -n $N addr add 203.0.113.1/24 dev out0
ip -n $N link set in0 up; ip -n $N link set out0 up; ip -n $N route add default via 203.0.113.2
ip -n $S addr add 203.0.113.2/24 dev eth0; ip -n $S link set eth0 up; ip -n $S route add 198.51.100.0/24 via 203.0.113.1
ip netns exec $N sysctl -qw net.ipv4.ip_forward=1

ip netns exec $S iperf3 -s -D -B 203.0.113.2 --pidfile $DIR/iperf.pid >/dev/null
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
    timeout $((t + 15)) ip netns exec $C iperf3 -c 203.0.113.2 -t "$t" -J "$@" 2>/dev/null || echo '{}'
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

start_swiftnat() {  # $1 variant name (swiftnat[-qN][-nooffload][-txqN])
    # One host's peak is measured here: the per-host packet budget (README "Holding the load") is a
    # protection that would cap it, and the kernel's NAT has none, so it is off (equal settings).
    local budget="fair_queue_rate = 0"
    local q=1 off=true txq="" noq=0 gro="gro_interfaces = []" scrape=0 bin=$BIN
    local plane="[control]
socket = \"$DIR/control.sock\"
state_file = \"\"
sessions_file = \"\"
[metrics]
listen = \"127.0.0.1:9770\""
    for part in ${1//-/ }; do
        case $part in
            noqueue) noq=1 ;;
            q[0-9]*) q=${part#q} ;;
            nooffload) off=false ;;
            txq[0-9]*) txq="txqueuelen = ${part#txq}" ;;
            gro) gro="gro_flush_timeout_us = $GRO_FLUSH_US" ;;
            scrape) scrape=1 ;;
            base) bin=$BASE_BIN; plane=""; budget="" ;;
        esac
    done
    cat > $DIR/nat44.toml <<TOML
[tun]
name = "snat0"
queues = $q
offload = $off
$budget
$txq
[routing]
$gro
[nat44]
inside = ["100.64.0.0/24"]
inside_interfaces = ["in0"]
outside_interface = "out0"
pool = ["198.51.100.1/32"]
behavior = "port-restricted-cone"
$plane
TOML
    ip netns exec $N $bin run --config $DIR/nat44.toml > $DIR/daemon.log 2>&1 &
    DPID=$!
    for _ in $(seq 50); do grep -q "ready:" $DIR/daemon.log && break; sleep 0.1; done
    grep -q "ready:" $DIR/daemon.log || { cat $DIR/daemon.log; exit 1; }
    [ $noq = 1 ] && ip netns exec $N tc qdisc replace dev snat0 root noqueue
    ip netns exec $C ping -c 1 -W 2 203.0.113.2 >/dev/null
    if [ $scrape = 1 ]; then
        # A Prometheus scrape every 100 ms for as long as the daemon runs (bounded: at most an hour).
        ip netns exec $N timeout 3600 sh -c 'while :; do curl -s -o /dev/null -m 2 http://127.0.0.1:9770/metrics; sleep 0.1; done' &
        SCRAPER=$!
        PIDS+=("$SCRAPER")
    fi
}

stop_swiftnat() {
    [ -n "${SCRAPER:-}" ] && { kill "$SCRAPER" 2>/dev/null || true; wait "$SCRAPER" 2>/dev/null || true; SCRAPER=""; }
    kill -TERM "$DPID"; wait "$DPID" || true; DPID=""
}

start_kernel() {
    ip netns exec $N nft -f - <<NFT
table ip snbench {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr 100.64.0.0/24 oifname "out0" snat to 198.51.100.1
  }
}
NFT
    ip netns exec $C ping -c 1 -W 2 203.0.113.2 >/dev/null
}

stop_kernel() {
    ip netns exec $N nft delete table ip snbench
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
def base(s):  # the kernel run a variant is compared with: kernel-gro for -gro variants when it ran
    return "kernel-gro" if "-gro" in s and "kernel-gro" in systems else "kernel"
cols = systems + [s + "/" + base(s) for s in sw if base(s) in systems]
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
        for s in sw:
            if base(s) not in systems: continue
            k = vals[base(s)]
            line += "%*s" % (width[s + "/" + base(s)], "%.2f" % (vals[s] / k) if k > 0 else "-")
    print(line)
PY
