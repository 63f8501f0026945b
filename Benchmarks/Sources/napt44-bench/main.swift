// napt44-bench: release-mode measurements of the NAPT44 engine (see Benchmarks/README.md).
//
//   1. established translation, packets/s, outbound and inbound, 64-byte UDP over 100 000 sessions
//   2. new sessions/s
//   3. bytes of memory per session (table accounting and RSS)
//   4. heap allocations per forwarded packet (counted by the CMallocCounter interposer)
//
// Every timed loop restores the packet from a pristine copy (64-byte memcpy) before translating it;
// the same loop without the translate call is timed too, so the engine's own rate can be given.

import CMallocCounter
import NAPT44
import NATCore
import NATWire

#if canImport(Glibc)
import Glibc
#endif

// MARK: Parameters

struct Options {
    var sessions = 100_000
    var capacity = 131_072
    var bigSessions = 1_048_576
    var rounds = 10          // passes over all sessions per trial of the established loops
    var trials = 15
    var newSessionTrials = 10
    var traceAllocations = false
    var quick = false
    /// Run one loop only, for a profiler: outbound, inbound, resident-outbound, resident-inbound, new.
    var profile: String? = nil

    init(_ args: [String]) {
        var i = 1
        while i < args.count {
            switch args[i] {
            case "--quick": quick = true; rounds = 5; trials = 3; newSessionTrials = 3; bigSessions = 262_144
            case "--trace-allocations": traceAllocations = true
            case "--rounds": i += 1; rounds = Int(args[i])!
            case "--trials": i += 1; trials = Int(args[i])!
            case "--profile": i += 1; profile = args[i]
            case "--sessions": i += 1; sessions = Int(args[i])!; capacity = max(capacity, sessions + sessions / 4)
            case "-h", "--help":
                print("""
                usage: napt44-bench [--quick] [--rounds N] [--trials N] [--sessions N] [--trace-allocations] [--profile LOOP]
                  --profile LOOP       run one loop for a few seconds and exit (for perf record):
                                       outbound, inbound, resident-outbound, resident-inbound, new
                  --trace-allocations  print a backtrace for every allocation made inside a timed loop
                Pin it to one core: taskset -c 1 napt44-bench
                """)
                exit(0)
            default: print("unknown argument \(args[i])"); exit(2)
            }
            i += 1
        }
    }
}

let options = Options(CommandLine.arguments)
let packetSize = 64
let udpPayload = [UInt8](repeating: 0xA5, count: packetSize - 20 - 8)
let remoteServers = 4
let remoteBase: UInt32 = 0xCB00_7100  // 203.0.113.0
let insideBase: UInt32 = 0x6440_0000  // 100.64.0.0
let portsPerHost = 100

func ipv4(_ v: UInt32) -> IPv4Address { IPv4Address(rawValue: v) }

/// Inside endpoint `i`: 100.64.0.0 + 256 + i / 100 (hosts from 100.64.1.0 on), source port 10000 + i % 100;
/// remote 203.0.113.(1 + i % 4), port 5000 + i % 4.
func flow(_ i: Int) -> (inside: UInt32, insidePort: UInt16, remote: UInt32, remotePort: UInt16) {
    (insideBase &+ 256 &+ UInt32(i / portsPerHost), UInt16(10_000 + i % portsPerHost),
     remoteBase &+ 1 &+ UInt32(i % remoteServers), UInt16(5000 + i % remoteServers))
}

func configuration(capacity: Int) -> NAPT44Configuration {
    var c = NAPT44Configuration(pool: [IPv4Prefix("198.51.100.0/24")!])
    c.setBehavior(.portRestrictedCone)
    c.maxSessions = capacity
    c.hashSeed = 42
    return c
}

/// `count` packets of `packetSize` bytes, back to back in one 64-byte aligned allocation.
struct PacketArray: ~Copyable {
    let base: UnsafeMutableRawPointer
    let count: Int
    init(count: Int) {
        self.count = count
        base = .allocate(byteCount: count * packetSize, alignment: 64)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: count * packetSize)
    }
    deinit { base.deallocate() }
    @inline(__always) func packet(_ i: Int) -> UnsafeMutableRawPointer { base + i * packetSize }
    func set(_ i: Int, _ bytes: [UInt8]) {
        precondition(bytes.count == packetSize, "packet is \(bytes.count) bytes, want \(packetSize)")
        bytes.withUnsafeBytes { packet(i).copyMemory(from: $0.baseAddress!, byteCount: packetSize) }
    }
}

func outboundPackets(_ n: Int) -> PacketArray {
    let a = PacketArray(count: n)
    for i in 0..<n {
        let f = flow(i)
        a.set(i, PacketBuilder.udp4(source: ipv4(f.inside), sourcePort: f.insidePort,
                                    destination: ipv4(f.remote), destinationPort: f.remotePort, payload: udpPayload))
    }
    return a
}

@inline(__always) func load32(_ p: UnsafeMutableRawPointer, _ o: Int) -> UInt32 {
    UInt32(p.load(fromByteOffset: o, as: UInt8.self)) << 24 | UInt32(p.load(fromByteOffset: o + 1, as: UInt8.self)) << 16
        | UInt32(p.load(fromByteOffset: o + 2, as: UInt8.self)) << 8 | UInt32(p.load(fromByteOffset: o + 3, as: UInt8.self))
}
@inline(__always) func load16(_ p: UnsafeMutableRawPointer, _ o: Int) -> UInt16 {
    UInt16(p.load(fromByteOffset: o, as: UInt8.self)) << 8 | UInt16(p.load(fromByteOffset: o + 1, as: UInt8.self))
}

/// Whether the IPv4 header checksum and the UDP checksum of the packet at `p` verify (RFC 1071).
func checksumsValid(_ p: UnsafeMutableRawPointer) -> Bool {
    guard Checksum.fold(Checksum.sum(UnsafeRawPointer(p), count: 20)) == 0xFFFF else { return false }
    let ph = Checksum.pseudoHeaderSum(source: IPv4Address(rawValue: load32(p, 12)), destination: IPv4Address(rawValue: load32(p, 16)),
                                      protocol: 17, length: packetSize - 20)
    return Checksum.fold(Checksum.sum(UnsafeRawPointer(p + 20), count: packetSize - 20, initial: ph)) == 0xFFFF
}

func fail(_ message: String) -> Never {
    print("FAILED: \(message)")
    exit(1)
}

func fmt(_ x: Double, _ decimals: Int = 2) -> String {
    if decimals == 0 { return "\(Int(x.rounded()))" }
    var p = 1.0
    for _ in 0..<decimals { p *= 10 }
    let r = (x * p).rounded() / p
    var s = "\(r)"
    if let dot = s.firstIndex(of: ".") {
        let have = s.distance(from: dot, to: s.endIndex) - 1
        if have < decimals { s += String(repeating: "0", count: decimals - have) }
    } else if decimals > 0 { s += "." + String(repeating: "0", count: decimals) }
    return s
}
func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s : s + String(repeating: " ", count: w - s.count) }
func lpad(_ s: String, _ w: Int) -> String { s.count >= w ? s : String(repeating: " ", count: w - s.count) + s }

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

// MARK: Setup

if mc_allowed_cpu_count() != 1 {
    print("note: running on \(mc_allowed_cpu_count()) CPUs; pin it for stable numbers: taskset -c 1 \(CommandLine.arguments[0])")
}
do {
    let before = mc_allocations()
    let probe = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 16)
    probe.deallocate()
    let arrayProbe = [UInt32](repeating: 7, count: 1000 + Int(before % 3))
    precondition(arrayProbe.count > 0)
    if mc_allocations() < before + 2 { fail("the malloc interposer is not counting Swift allocations") }
}

let n = options.sessions
let now0 = Timestamp.seconds(1000)
print("napt44-bench: \(n) UDP sessions, \(packetSize)-byte packets, table capacity \(options.capacity), CPU \(mc_first_allowed_cpu()) (\(mc_allowed_cpu_count()) allowed)")

let pristineOut = outboundPackets(n)
let pristineIn = PacketArray(count: n)
let work = UnsafeMutableRawPointer.allocate(byteCount: 2048, alignment: 64)
work.initializeMemory(as: UInt8.self, repeating: 0, count: 2048)
let workBuffer = UnsafeMutableRawBufferPointer(start: work, count: packetSize)

// MARK: Session setup (first pass) — also measures memory per session

let rssBeforeEngine = mc_rss_bytes()
let initAllocsBefore = mc_allocations()
var engine = try! NAPT44Engine(configuration: configuration(capacity: options.capacity))
let initAllocs = mc_allocations() - initAllocsBefore
let rssAfterEngine = mc_rss_bytes()
let tableBytes = engine.table.memoryBytes

var setupNotForwarded = 0
let setupAllocsBefore = mc_allocations()
let setupStart = mc_thread_cpu_ns()
for i in 0..<n {
    work.copyMemory(from: pristineOut.packet(i), byteCount: packetSize)
    let v = engine.translateOutbound(workBuffer, tenant: 0, now: now0)
    if case .toOutside = v {} else { setupNotForwarded += 1 }
}
let setupNanos = mc_thread_cpu_ns() - setupStart
let setupAllocs = mc_allocations() - setupAllocsBefore
let rssAfterSessions = mc_rss_bytes()
if setupNotForwarded != 0 { fail("\(setupNotForwarded) of the first \(n) outbound packets were not forwarded: \(DropReason.allCases.filter { engine.counters.dropped($0) > 0 }.map { "\($0.name)=\(engine.counters.dropped($0))" })") }
if engine.sessionCount != n { fail("engine has \(engine.sessionCount) sessions, want \(n)") }

// Replies: translate each pristine packet once more (established now) and read the outside tuple.
for i in 0..<n {
    work.copyMemory(from: pristineOut.packet(i), byteCount: packetSize)
    guard case .toOutside = engine.translateOutbound(workBuffer, tenant: 0, now: now0) else { fail("re-translation \(i) not forwarded") }
    let f = flow(i)
    let outsideAddress = load32(work, 12), outsidePort = load16(work, 20)
    if load32(work, 16) != f.remote || load16(work, 22) != f.remotePort { fail("destination rewritten for flow \(i)") }
    if !checksumsValid(work) { fail("translated outbound packet \(i) has a bad IPv4 or UDP checksum") }
    pristineIn.set(i, PacketBuilder.udp4(source: ipv4(f.remote), sourcePort: f.remotePort,
                                         destination: ipv4(outsideAddress), destinationPort: outsidePort, payload: udpPayload))
}
// Check every reply comes back to its inside endpoint.
for i in 0..<n {
    work.copyMemory(from: pristineIn.packet(i), byteCount: packetSize)
    let v = engine.translateInbound(workBuffer, now: now0)
    guard case .toInside = v else { fail("reply \(i) not forwarded: \(v)") }
    let f = flow(i)
    if load32(work, 16) != f.inside || load16(work, 22) != f.insidePort { fail("reply \(i) went to the wrong inside endpoint") }
    if !checksumsValid(work) { fail("translated reply \(i) has a bad IPv4 or UDP checksum") }
}
print("checked: all \(n) outbound packets and their \(n) replies translate with valid IPv4 and UDP checksums")
let distinctOutside = Set(engine.sessions(limit: n).map { UInt64($0.outside.0.rawValue) << 16 | UInt64($0.outside.1) }).count
if distinctOutside != n { fail("\(distinctOutside) distinct outside endpoints for \(n) sessions") }

// MARK: Hash index quality (diagnostic)

/// Chain statistics of the hash indexes for the live sessions. The session indexes hash with the table's
/// own public `sessionHash` functions; the mapping index with `KeyHash.hash` and the key layout of
/// `SessionTable.outsideHash` (mirrored here: keep in step with Sources/NATCore/SessionTable.swift).
/// Bucket count as `HashIndex(capacity:)` picks it.
struct ChainStats { var used = 0; var maxChain = 0; var probesPerHit = 0.0; var buckets = 0 }
func chainStats(_ hashes: [UInt32], capacity: Int) -> ChainStats {
    var nb = 16
    while nb < capacity { nb <<= 1 }
    var b = [Int](repeating: 0, count: nb)
    for h in hashes { b[Int(h & UInt32(nb - 1))] += 1 }
    var st = ChainStats()
    st.buckets = nb
    st.used = b.lazy.filter { $0 > 0 }.count
    st.maxChain = b.max() ?? 0
    st.probesPerHit = Double(b.reduce(0) { $0 + $1 * ($1 + 1) / 2 }) / Double(max(hashes.count, 1))
    return st
}
let liveSessions = engine.sessions(limit: n)
let insideHashes = liveSessions.map { s in
    engine.table.sessionHash(insideWire: WireKey.pair(s.inside.0.rawValue, s.via.0.rawValue), ports: WireKey.pair(s.inside.1, s.via.1),
                             tenant: s.tenant, proto: s.proto)
}
let outsideHashes = liveSessions.map { s in
    engine.table.sessionHash(outsideWire: WireKey.pair(s.remote.0.rawValue, s.outside.0.rawValue), ports: WireKey.pair(s.remote.1, s.outside.1),
                             proto: s.proto)
}
let insideChains = chainStats(insideHashes, capacity: options.capacity)
let outsideChains = chainStats(outsideHashes, capacity: options.capacity)
let mappingOutsideChains = chainStats(liveSessions.map { s in KeyHash.hash(UInt64(s.outside.0.rawValue) << 32, UInt64(s.outside.1) << 48 | UInt64(s.proto), seed: ~UInt64(42)) },
                                      capacity: options.capacity)
let distinctOutsideAddresses = Set(liveSessions.map { $0.outside.0.rawValue }).count

// MARK: Timed loops

enum Direction { case outbound, inbound, copyOnly, outboundBurst, inboundBurst }

/// Burst loops hand the engine this many packets per call (its prefetch depth).
let burstSize = NAPT44Engine.preferredBurst
nonisolated(unsafe) let burstBuffers = UnsafeMutablePointer<UnsafeMutableRawBufferPointer>.allocate(capacity: burstSize)
nonisolated(unsafe) let burstVerdicts = UnsafeMutablePointer<Verdict>.allocate(capacity: burstSize)
burstVerdicts.initialize(repeating: .toOutside, count: burstSize)

struct LoopResult { var nanos: UInt64; var cpuNanos: UInt64; var packets: Int; var notForwarded: Int; var allocations: UInt64 }

/// One trial: `rounds` passes over all packets. The engine is passed inout; the loop body is
/// memcpy(64) + one translate call + a verdict check.
@inline(never)
func runLoop(_ engine: inout NAPT44Engine, _ dir: Direction, packets: borrowing PacketArray, work: UnsafeMutableRawPointer,
             rounds: Int, round0: Int, limit: Int = .max, trace: Bool = false) -> LoopResult {
    let workBuffer = UnsafeMutableRawBufferPointer(start: work, count: packetSize)
    let count = min(packets.count, limit)
    let base = packets.base
    var bad = 0
    var sink: UInt8 = 0
    if trace { mc_set_trace(1) }
    let a0 = mc_allocations()
    let c0 = mc_thread_cpu_ns()
    let t0 = mc_now_ns()
    for r in 0..<rounds {
        // Time moves on by 1 ms per pass (sessions stay well inside their 300 s UDP timeout).
        let now = Timestamp(nanoseconds: now0.nanoseconds &+ UInt64(round0 + r) &* 1_000_000)
        var p = base
        switch dir {
        case .outbound:
            for _ in 0..<count {
                mc_prefetch(p + 8 * packetSize)
                work.copyMemory(from: p, byteCount: packetSize)
                mc_clobber(work)
                if case .toOutside = engine.translateOutbound(workBuffer, tenant: 0, now: now) {} else { bad &+= 1 }
                p += packetSize
            }
        case .inbound:
            for _ in 0..<count {
                mc_prefetch(p + 8 * packetSize)
                work.copyMemory(from: p, byteCount: packetSize)
                mc_clobber(work)
                if case .toInside = engine.translateInbound(workBuffer, now: now) {} else { bad &+= 1 }
                p += packetSize
            }
        case .outboundBurst, .inboundBurst:
            // `work` holds burstSize slots of packetSize bytes.
            for k in 0..<burstSize { burstBuffers[k] = UnsafeMutableRawBufferPointer(start: work + k * packetSize, count: packetSize) }
            var done = 0
            while done < count {
                let m = min(burstSize, count - done)
                for k in 0..<m {
                    mc_prefetch(p + (k + burstSize) * packetSize)
                    (work + k * packetSize).copyMemory(from: p + k * packetSize, byteCount: packetSize)
                }
                mc_clobber(work)
                if dir == .outboundBurst {
                    engine.translateOutbound(burst: burstBuffers, count: m, verdicts: burstVerdicts, tenant: 0, now: now)
                    for k in 0..<m { if case .toOutside = burstVerdicts[k] {} else { bad &+= 1 } }
                } else {
                    engine.translateInbound(burst: burstBuffers, count: m, verdicts: burstVerdicts, now: now)
                    for k in 0..<m { if case .toInside = burstVerdicts[k] {} else { bad &+= 1 } }
                }
                p += m * packetSize
                done += m
            }
        case .copyOnly:
            for _ in 0..<count {
                mc_prefetch(p + 8 * packetSize)
                work.copyMemory(from: p, byteCount: packetSize)
                mc_clobber(work)
                sink &+= work.load(fromByteOffset: 23, as: UInt8.self)
                p += packetSize
            }
        }
    }
    let t1 = mc_now_ns()
    let c1 = mc_thread_cpu_ns()
    let a1 = mc_allocations()
    mc_set_trace(0)
    if sink == 0x5A && bad < 0 { print("") }  // keep `sink` alive
    return LoopResult(nanos: t1 - t0, cpuNanos: c1 - c0, packets: count * rounds, notForwarded: bad, allocations: a1 - a0)
}

struct Stats {
    /// Thread CPU time per packet (what the table shows: other processes on the core do not count).
    var nsPerPacket: [Double] = []
    /// Wall-clock time per packet.
    var wallNsPerPacket: [Double] = []
    var packets = 0
    var notForwarded = 0
    var allocations: UInt64 = 0
    var best: Double { nsPerPacket.min() ?? .nan }
    var med: Double { median(nsPerPacket) }
}

var roundClock = 0
@MainActor func measure(_ dir: Direction, _ packets: borrowing PacketArray, limit: Int = .max) -> Stats {
    var s = Stats()
    // A small working set makes more passes, so that each trial translates about as many packets.
    let rounds = limit >= packets.count ? options.rounds : options.rounds * packets.count / limit
    _ = runLoop(&engine, dir, packets: packets, work: work, rounds: 2, round0: roundClock, limit: limit)  // warm-up
    roundClock += 2
    for _ in 0..<options.trials {
        let r = runLoop(&engine, dir, packets: packets, work: work, rounds: rounds, round0: roundClock, limit: limit,
                        trace: options.traceAllocations)
        roundClock += rounds
        s.nsPerPacket.append(Double(r.cpuNanos) / Double(r.packets))
        s.wallNsPerPacket.append(Double(r.nanos) / Double(r.packets))
        s.packets += r.packets
        s.notForwarded += r.notForwarded
        s.allocations += r.allocations
    }
    return s
}

if let loop = options.profile {
    let t0 = mc_now_ns()
    var packets = 0
    while mc_now_ns() - t0 < 5_000_000_000 {
        switch loop {
        case "outbound": packets += runLoop(&engine, .outbound, packets: pristineOut, work: work, rounds: 10, round0: 0).packets
        case "inbound": packets += runLoop(&engine, .inbound, packets: pristineIn, work: work, rounds: 10, round0: 0).packets
        case "resident-outbound": packets += runLoop(&engine, .outbound, packets: pristineOut, work: work, rounds: 1000, round0: 0, limit: 1024).packets
        case "burst-outbound": packets += runLoop(&engine, .outboundBurst, packets: pristineOut, work: work, rounds: 10, round0: 0).packets
        case "burst-inbound": packets += runLoop(&engine, .inboundBurst, packets: pristineIn, work: work, rounds: 10, round0: 0).packets
        case "resident-inbound": packets += runLoop(&engine, .inbound, packets: pristineIn, work: work, rounds: 1000, round0: 0, limit: 1024).packets
        case "new":
            var e = try! NAPT44Engine(configuration: configuration(capacity: options.capacity))
            for i in 0..<n {
                work.copyMemory(from: pristineOut.packet(i), byteCount: packetSize)
                _ = e.translateOutbound(UnsafeMutableRawBufferPointer(start: work, count: packetSize), tenant: 0, now: now0)
            }
            packets += n
        default: fail("unknown --profile loop \(loop)")
        }
    }
    print("\(loop): \(packets) packets in \(fmt(Double(mc_now_ns() - t0) / 1e9)) s")
    exit(0)
}

let countersBefore = engine.counters
let copyOut = measure(.copyOnly, pristineOut)
let outbound = measure(.outbound, pristineOut)
let copyIn = measure(.copyOnly, pristineIn)
let inbound = measure(.inbound, pristineIn)
let residentFlows = 1024
let residentOut = measure(.outbound, pristineOut, limit: residentFlows)
let residentIn = measure(.inbound, pristineIn, limit: residentFlows)
let burstOut = measure(.outboundBurst, pristineOut)
let burstIn = measure(.inboundBurst, pristineIn)
let countersAfter = engine.counters

// Drop path after a counters snapshot: a copy of `engine.counters` that is still alive (a metrics scrape,
// a stats reply) must not make the next drop allocate (the drop counts are stored inline).
let dropPacket = PacketBuilder.udp4(source: ipv4(remoteBase + 99), sourcePort: 9, destination: ipv4(0xC633_6401), destinationPort: 1,
                                    payload: udpPayload)
func dropAllocations(_ engine: inout NAPT44Engine, work: UnsafeMutableRawPointer, snapshot: Bool, trace: Bool = false) -> (UInt64, Bool) {
    dropPacket.withUnsafeBytes { work.copyMemory(from: $0.baseAddress!, byteCount: packetSize) }
    let snap: Counters? = snapshot ? engine.counters : nil
    if trace { mc_set_trace(1) }
    let a0 = mc_allocations()
    let v = engine.translateInbound(UnsafeMutableRawBufferPointer(start: work, count: packetSize), now: now0)
    let a = mc_allocations() - a0
    mc_set_trace(0)
    withExtendedLifetime(snap) {}
    if case .drop = v { return (a, true) }
    return (a, false)
}
// (countersBefore/countersAfter above are live copies too, so the first drop pays the copy; measure the next.)
let (dropAllocsFirst, dropped0) = dropAllocations(&engine, work: work, snapshot: false)
let (dropAllocsPlain, dropped1) = dropAllocations(&engine, work: work, snapshot: false)
let (dropAllocsSnapshot, dropped2) = dropAllocations(&engine, work: work, snapshot: true, trace: options.traceAllocations)
if !dropped0 || !dropped1 || !dropped2 { fail("the unsolicited probe packet was not dropped") }
let establishedSessions = engine.sessionCount
let tableBytesPerSession = Double(tableBytes) / Double(options.capacity)
let rssPerSession = Double(Int(rssAfterSessions) - Int(rssAfterEngine)) / Double(n)
let rssEngineBytes = Double(Int(rssAfterSessions) - Int(rssBeforeEngine))
let sessionsInfo = (sessions: engine.sessionCount, mappings: engine.table.mappingCount)
// (the established engine stays alive; its memory was measured above)

// MARK: New sessions

/// Fills fresh engines of `capacity` with `perEngine` new flows each, `trials` times; only the
/// translate calls (and their 64-byte restores) are timed, in thread CPU time.
struct NewSessionResult { var nsPerSession: [Double] = []; var copyNs: [Double] = []; var sessions = 0; var bad = 0; var allocations: UInt64 = 0
    var best: Double { nsPerSession.min() ?? .nan }
    var med: Double { median(nsPerSession) }
    var copy: Double { copyNs.min() ?? .nan }
}
func newSessions(capacity: Int, packets: borrowing PacketArray, work: UnsafeMutableRawPointer, perEngine: Int, trials: Int) -> NewSessionResult {
    let workBuffer = UnsafeMutableRawBufferPointer(start: work, count: packetSize)
    var res = NewSessionResult()
    for _ in 0..<trials {
        var e = try! NAPT44Engine(configuration: configuration(capacity: capacity))
        let a0 = mc_allocations()
        let t0 = mc_thread_cpu_ns()
        var p = packets.base
        var bad = 0
        for _ in 0..<perEngine {
            mc_prefetch(p + 8 * packetSize)
            work.copyMemory(from: p, byteCount: packetSize)
            mc_clobber(work)
            if case .toOutside = e.translateOutbound(workBuffer, tenant: 0, now: now0) {} else { bad &+= 1 }
            p += packetSize
        }
        let t1 = mc_thread_cpu_ns()
        res.allocations += mc_allocations() - a0
        res.nsPerSession.append(Double(t1 - t0) / Double(perEngine))
        res.bad += bad
        if e.sessionCount != perEngine { fail("new-session engine has \(e.sessionCount) sessions, want \(perEngine)") }
        res.sessions += perEngine
        // The same restores alone.
        let c0 = mc_thread_cpu_ns()
        var q = packets.base
        var sink: UInt8 = 0
        for _ in 0..<perEngine {
            mc_prefetch(q + 8 * packetSize)
            work.copyMemory(from: q, byteCount: packetSize)
            mc_clobber(work)
            sink &+= work.load(fromByteOffset: 23, as: UInt8.self)
            q += packetSize
        }
        res.copyNs.append(Double(mc_thread_cpu_ns() - c0) / Double(perEngine))
        if sink == 0x5A && bad < 0 { print("") }
    }
    return res
}

let fill100k = newSessions(capacity: options.capacity, packets: pristineOut, work: work, perEngine: n, trials: options.newSessionTrials)
let bigN = options.bigSessions
let bigPackets = outboundPackets(bigN)
let bigCapacity = max(bigN + bigN / 4, 1 << 20)
let fillBig = newSessions(capacity: bigCapacity, packets: bigPackets, work: work, perEngine: bigN, trials: 1)

// MARK: Report

func mpps(_ ns: Double) -> Double { 1000.0 / ns }

let line = String(repeating: "-", count: 104)
print("")
print("NAPT44 engine, release build, one core (CPU \(mc_first_allowed_cpu())), \(n) established UDP sessions, \(packetSize)-byte packets")
print("each timed trial: \(options.rounds) passes x \(n) packets; \(options.trials) trials; best (median) of the trials shown;")
print("rates from thread CPU time (CLOCK_THREAD_CPUTIME_ID), so time stolen by other processes is not counted")
print(line)
print(pad("measurement", 44) + lpad("result", 26) + lpad("target", 14) + lpad("status", 10))
print(line)

func row(_ name: String, _ value: String, _ target: String, _ ok: Bool?) {
    let status = ok.map { $0 ? "PASS" : "FAIL" } ?? ""
    print(pad(name, 44) + lpad(value, 26) + lpad(target, 14) + lpad(status, 10))
}

func engineNs(_ s: Stats, _ copy: Stats) -> (best: Double, med: Double) {
    (s.best - copy.best, s.med - copy.med)
}

for (name, s, copy) in [("outbound", outbound, copyOut), ("inbound", inbound, copyIn)] {
    let net = engineNs(s, copy)
    row("established \(name), one packet per call", "\(fmt(mpps(s.best))) (\(fmt(mpps(s.med)))) Mpps", ">= 20 Mpps", mpps(s.best) >= 20)
    row("  ns/packet memcpy+translate", "\(fmt(s.best)) (\(fmt(s.med))) ns", "", nil)
    row("  ns/packet memcpy(64) loop alone", "\(fmt(copy.best)) (\(fmt(copy.med))) ns", "", nil)
    row("  engine alone (net of memcpy)", "\(fmt(mpps(net.best))) (\(fmt(mpps(net.med)))) Mpps", ">= 20 Mpps", mpps(net.best) >= 20)
    row("  ns/packet engine alone", "\(fmt(net.best)) (\(fmt(net.med))) ns", "", nil)
    row("  wall-clock memcpy+translate", "\(fmt(mpps(s.wallNsPerPacket.min()!))) (\(fmt(mpps(median(s.wallNsPerPacket))))) Mpps", "", nil)
    row("  packets timed / not forwarded", "\(s.packets) / \(s.notForwarded)", "0 dropped", s.notForwarded == 0)
    row("  mallocs per packet", "\(fmt(Double(s.allocations) / Double(s.packets), 4)) (\(s.allocations) in \(s.packets))", "0", s.allocations == 0)
}
for (name, s, copy) in [("outbound", burstOut, copyOut), ("inbound", burstIn, copyIn)] {
    let net = engineNs(s, copy)
    row("established \(name), bursts of \(burstSize)", "\(fmt(mpps(s.best))) (\(fmt(mpps(s.med)))) Mpps", ">= 20 Mpps", mpps(s.best) >= 20)
    row("  engine alone (net of memcpy)", "\(fmt(mpps(net.best))) (\(fmt(mpps(net.med)))) Mpps", ">= 20 Mpps", mpps(net.best) >= 20)
    row("  ns/packet memcpy+translate / engine alone", "\(fmt(s.best)) / \(fmt(net.best)) ns", "", nil)
    row("  packets timed / not forwarded / mallocs", "\(s.packets) / \(s.notForwarded) / \(s.allocations)", "0 / 0", s.notForwarded == 0 && s.allocations == 0)
}
for (name, s) in [("outbound", residentOut), ("inbound", residentIn)] {
    row("cache-resident \(name) (\(residentFlows) of the sessions)", "\(fmt(mpps(s.best))) (\(fmt(mpps(s.med)))) Mpps", "", nil)
    row("  ns/packet memcpy+translate / not fwd / mallocs", "\(fmt(s.best)) ns / \(s.notForwarded) / \(s.allocations)", "", s.notForwarded == 0 && s.allocations == 0)
}
// The target applies at the benchmark's scale (n sessions); the million-session fill is a scale check.
for (name, r, target) in [("\(n) into fresh \(options.capacity)-slot tables x\(options.newSessionTrials)", fill100k, true),
                          ("\(bigN) into a \(bigCapacity)-slot table", fillBig, false)] {
    row("new sessions/s (\(name))", "\(fmt(1000 / r.best, 3)) (\(fmt(1000 / r.med, 3))) M/s",
        target ? ">= 2 M/s" : "scale check", target ? 1000 / r.best >= 2 : nil)
    row("  ns/new session (memcpy alone)", "\(fmt(r.best)) (\(fmt(r.med))) ns (\(fmt(r.copy)) ns)", "", nil)
    row("  net of memcpy", "\(fmt(1000 / (r.best - r.copy), 3)) M/s", target ? ">= 2 M/s" : "", target ? 1000 / (r.best - r.copy) >= 2 : nil)
    row("  not forwarded / mallocs per new session", "\(r.bad) / \(fmt(Double(r.allocations) / Double(r.sessions), 4))", "0 / 0", r.bad == 0 && r.allocations == 0)
}
row("mallocs per dropped packet (no_mapping)", "\(dropAllocsPlain)", "0", dropAllocsPlain == 0)
row("  same, while a copy of counters lives", "\(dropAllocsSnapshot) (first drop after copies: \(dropAllocsFirst))", "0", dropAllocsSnapshot == 0)
row("bytes/session: table.memoryBytes / capacity", "\(fmt(tableBytesPerSession, 1)) (\(tableBytes) / \(options.capacity))", "<= 128", tableBytesPerSession <= 128)
row("  records: session (hot+links)/mapping/host stride", "\(MemoryLayout<SessionRecord>.stride)+\(MemoryLayout<SessionLinks>.stride)/\(MemoryLayout<MappingRecord>.stride)/\(MemoryLayout<HostRecord>.stride) B", "", nil)
row("  + 5 hash indexes (bucket + link)", "\(fmt(tableBytesPerSession - Double(MemoryLayout<SessionRecord>.stride + MemoryLayout<SessionLinks>.stride + MemoryLayout<MappingRecord>.stride + MemoryLayout<HostRecord>.stride), 1)) B/slot", "", nil)
row("  per live session at this load (\(n) of \(options.capacity))", fmt(Double(tableBytes) / Double(n), 1), "", nil)
row("RSS delta (new engine + \(n) sessions) / capacity", "\(fmt(rssEngineBytes / Double(options.capacity), 1))", "", nil)
row("  of which outside the table (fragments, SYNs, outbox)", "\(Int(rssEngineBytes) - tableBytes) B", "", nil)
row("  of which engine creation (tables pre-touched)", "\(Int(rssAfterEngine) - Int(rssBeforeEngine)) B", "", nil)
row("  RSS delta of the \(n) sessions alone / \(n)", fmt(rssPerSession, 1), "", nil)
row("  mallocs in NAPT44Engine.init (counter sees the engine)", "\(initAllocs)", "", initAllocs > 0)
row("  first pass: \(n) new sessions", "\(fmt(Double(setupNanos) / Double(n))) ns each, \(setupAllocs) mallocs", "", nil)
print(line)

print("")
print("session hash indexes (\(n) live sessions, \(insideChains.buckets) buckets, \(distinctOutsideAddresses) outside addresses in use):")
print("  by inside tuple : \(insideChains.used) buckets used, longest chain \(insideChains.maxChain), \(fmt(insideChains.probesPerHit)) records probed per hit")
print("  by outside tuple: \(outsideChains.used) buckets used, longest chain \(outsideChains.maxChain), \(fmt(outsideChains.probesPerHit)) records probed per hit")
print("  mappings by outside endpoint: \(mappingOutsideChains.used) buckets used, longest chain \(mappingOutsideChains.maxChain), \(fmt(mappingOutsideChains.probesPerHit)) records probed per hit")
print("  (a uniform hash gives ~\(fmt(Double(insideChains.buckets) * (1 - Glibc.exp(-Double(n) / Double(insideChains.buckets))), 0)) buckets used and ~\(fmt(1 + Double(n) / Double(2 * insideChains.buckets))) probes per hit)")
print("")
print("engine counters (established phase only: delta over the timed loops)")
let dOut = countersAfter.outboundPackets - countersBefore.outboundPackets
let dIn = countersAfter.inboundPackets - countersBefore.inboundPackets
let dDrop = countersAfter.totalDropped - countersBefore.totalDropped  // before the two drop probes
let expectOut = outbound.packets + 2 * n + residentOut.packets + 2 * residentFlows + burstOut.packets + 2 * n
let expectIn = inbound.packets + 2 * n + residentIn.packets + 2 * residentFlows + burstIn.packets + 2 * n
print("  outboundPackets +\(dOut)  (timed \(outbound.packets + residentOut.packets + burstOut.packets) + warm-up \(4 * n + 2 * residentFlows) = \(expectOut))")
print("  inboundPackets  +\(dIn)  (timed \(inbound.packets + residentIn.packets + burstIn.packets) + warm-up \(4 * n + 2 * residentFlows) = \(expectIn))")
print("  sessionsCreated +\(countersAfter.sessionsCreated - countersBefore.sessionsCreated)  sessionsExpired +\(countersAfter.sessionsExpired - countersBefore.sessionsExpired)  dropped +\(dDrop)")
print("  sessions \(sessionsInfo.sessions), mappings \(sessionsInfo.mappings), live sessions at end \(establishedSessions)")
print("engine counters (totals): outboundPackets \(countersAfter.outboundPackets), inboundPackets \(countersAfter.inboundPackets), sessionsCreated \(countersAfter.sessionsCreated), mappingsCreated \(countersAfter.mappingsCreated), dropped \(countersAfter.totalDropped)")
for r in DropReason.allCases where countersAfter.dropped(r) != 0 { print("  drop \(r): \(countersAfter.dropped(r))") }

let ok = outbound.notForwarded == 0 && inbound.notForwarded == 0 && burstOut.notForwarded == 0 && burstIn.notForwarded == 0 && residentOut.notForwarded == 0 && residentIn.notForwarded == 0
    && dOut == UInt64(expectOut) && dIn == UInt64(expectIn) && dDrop == 0
print(ok ? "verdicts: every timed packet was forwarded" : "verdicts: SOME TIMED PACKETS WERE NOT FORWARDED")
if !ok { exit(1) }
