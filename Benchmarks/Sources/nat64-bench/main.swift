// nat64-bench: release-mode measurements of the NAT64 translator (RFC 7915) with stateless SIIT addressing
// and with stateful NAPT64 (RFC 6146: established UDP sessions, 1 024 and --flows of them).
//
//   1. IPv6 → IPv4: 64-byte UDP packets per second, and heap allocations per packet
//   2. IPv4 → IPv6: 64-byte UDP packets per second, and heap allocations per packet
//
// The translator only reads its input and writes the translation into an output buffer, so the timed
// loops need no restore copy: each iteration translates the next of 1 024 pristine packets (1 024
// IPv6 hosts behind an EAM /22, toward 4 IPv4 servers under 64:ff9b::/96) into one output buffer.

import CMallocCounter
import NAT64
import NATCore
import NATWire

#if canImport(Glibc)
import Glibc
#endif

struct Options {
    var packets = 1024
    var rounds = 2000
    var trials = 11
    var statefulFlows = 65536
    init(_ args: [String]) {
        var i = 1
        while i < args.count {
            switch args[i] {
            case "--quick": rounds = 300; trials = 3
            case "--rounds": i += 1; rounds = Int(args[i])!
            case "--trials": i += 1; trials = Int(args[i])!
            case "--flows": i += 1; statefulFlows = Int(args[i])!
            case "-h", "--help":
                print("usage: nat64-bench [--quick] [--rounds N] [--trials N] [--flows N (stateful, default 65536)]   (pin it: taskset -c 1 nat64-bench)")
                exit(0)
            default: print("unknown argument \(args[i])"); exit(2)
            }
            i += 1
        }
    }
}

func fail(_ message: String) -> Never {
    print("FAILED: \(message)")
    exit(1)
}

func fmt(_ x: Double, _ d: Int = 2) -> String {
    var p = 1.0
    for _ in 0..<d { p *= 10 }
    let r = (x * p).rounded() / p
    var s = "\(r)"
    if let dot = s.firstIndex(of: ".") {
        let have = s.distance(from: dot, to: s.endIndex) - 1
        if have < d { s += String(repeating: "0", count: d - have) }
    }
    return s
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

let options = Options(CommandLine.arguments)
let packetSize = 64
let n = options.packets

if mc_allowed_cpu_count() != 1 {
    print("note: running on \(mc_allowed_cpu_count()) CPUs; pin it for stable numbers: taskset -c 1 \(CommandLine.arguments[0])")
}
do {
    let before = mc_allocations()
    let probe = [UInt32](repeating: 7, count: 1000 + Int(before % 3))
    precondition(probe.count > 0)
    if mc_allocations() < before + 1 { fail("the malloc interposer is not counting Swift allocations") }
}

// MARK: Translator

var siit = SIITConfiguration()
siit.prefix = try! NAT64Prefix("64:ff9b::/96", restrictsToGlobalIPv4: false)
siit.explicitMappings = [try! ExplicitAddressMapping(ipv4: "198.51.100.0/22", ipv6: "2001:db8:6::/118")]
var config = NAT64Configuration()
config.identificationSeed = 1
var translator = try! NAT64Translator(configuration: config, mapping: try! SIITMapping(siit))

// MARK: Packets

/// `count` packets of `packetSize` bytes back to back in one 64-byte aligned allocation.
let pristine6 = UnsafeMutableRawPointer.allocate(byteCount: n * packetSize, alignment: 64)
let pristine4 = UnsafeMutableRawPointer.allocate(byteCount: n * packetSize, alignment: 64)
let server4 = (0..<4).map { IPv4Address(192, 0, 2, UInt8(33 + $0)) }
func host6(_ i: Int) -> IPv6Address { IPv6Address(high: 0x2001_0db8_0006_0000, low: UInt64(i)) }
func host4(_ i: Int) -> IPv4Address { IPv4Address(0xC633_6400 + UInt32(i)) }  // 198.51.100.0 + i
for i in 0..<n {
    let s = server4[i % 4]
    let p6 = PacketBuilder.udp6(source: host6(i), sourcePort: UInt16(10_000 + i), destination: IPv6Address(high: 0x0064_ff9b_0000_0000, low: UInt64(s.rawValue)),
                                destinationPort: 5000, payload: [UInt8](repeating: 0xA5, count: packetSize - 48))
    let p4 = PacketBuilder.udp4(source: s, sourcePort: 5000, destination: host4(i), destinationPort: UInt16(10_000 + i),
                                payload: [UInt8](repeating: 0x5A, count: packetSize - 28), identification: UInt16(i),
                                dontFragment: true)
    precondition(p6.count == packetSize && p4.count == packetSize)
    p6.withUnsafeBytes { (pristine6 + i * packetSize).copyMemory(from: $0.baseAddress!, byteCount: packetSize) }
    p4.withUnsafeBytes { (pristine4 + i * packetSize).copyMemory(from: $0.baseAddress!, byteCount: packetSize) }
}
let output = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_600, alignment: 64)

// MARK: Correctness check (every packet once, exact bytes against the builders)

for i in 0..<n {
    let s = server4[i % 4]
    let r6 = translator.process(UnsafeRawBufferPointer(start: pristine6 + i * packetSize, count: packetSize), into: output, now: .zero)
    guard r6.verdict == .toOutside else { fail("IPv6 packet \(i): \(r6.verdict)") }
    let want4 = PacketBuilder.udp4(source: host4(i), sourcePort: UInt16(10_000 + i), destination: s, destinationPort: 5000,
                                   payload: [UInt8](repeating: 0xA5, count: packetSize - 48), ttl: 63,
                                   identification: UInt16(truncatingIfNeeded: i + 1))
    if Array(UnsafeRawBufferPointer(rebasing: output[0..<r6.length])) != want4 { fail("IPv6 packet \(i) translated wrongly") }
    let r4 = translator.process(UnsafeRawBufferPointer(start: pristine4 + i * packetSize, count: packetSize), into: output, now: .zero)
    guard r4.verdict == .toInside(tenant: 0) else { fail("IPv4 packet \(i): \(r4.verdict)") }
    let want6 = PacketBuilder.udp6(source: IPv6Address(high: 0x0064_ff9b_0000_0000, low: UInt64(s.rawValue)), sourcePort: 5000,
                                   destination: host6(i), destinationPort: UInt16(10_000 + i),
                                   payload: [UInt8](repeating: 0x5A, count: packetSize - 28), hopLimit: 63)
    if Array(UnsafeRawBufferPointer(rebasing: output[0..<r4.length])) != want6 { fail("IPv4 packet \(i) translated wrongly") }
}
print("nat64-bench: \(n) distinct 64-byte UDP packets each way, \(options.rounds) rounds × \(options.trials) trials, CPU \(mc_first_allowed_cpu()) (\(mc_allowed_cpu_count()) allowed)")
print("checked: every packet translates both ways to the exact bytes the builders make (checksums included)")

// MARK: Timed loops

struct Result { var mpps: [Double] = []; var allocs: UInt64 = 0; var packets: UInt64 = 0; var notForwarded = 0 }

@inline(never)
func loop<M: NAT64Mapping & ~Copyable>(_ translator: inout NAT64Translator<M>, _ base: UnsafeMutableRawPointer, rounds: Int, n: Int,
                                        output: UnsafeMutableRawBufferPointer) -> (nanos: UInt64, bad: Int) {
    var bad = 0
    let start = mc_thread_cpu_ns()
    for _ in 0..<rounds {
        var p = base
        for _ in 0..<n {
            let r = translator.process(UnsafeRawBufferPointer(start: p, count: 64), into: output, now: .zero)
            if !r.verdict.isForwarded { bad += 1 }
            p += 64
        }
    }
    return (mc_thread_cpu_ns() - start, bad)
}

/// The burst form: the same packets handed over `burst` at a time (``NAT64Translator/process(burst:count:into:verdicts:lengths:now:)``),
/// each into its own output slot.
struct BurstBuffers {
    let packets: UnsafeMutablePointer<UnsafeRawBufferPointer>
    let outputs: UnsafeMutablePointer<UnsafeMutableRawBufferPointer>
    let verdicts: UnsafeMutablePointer<Verdict>
    let lengths: UnsafeMutablePointer<Int>
    let burst: Int
    init(base: UnsafeMutableRawPointer, n: Int, burst: Int) {
        self.burst = burst
        packets = .allocate(capacity: n)
        for i in 0..<n { packets[i] = UnsafeRawBufferPointer(start: base + i * 64, count: 64) }
        outputs = .allocate(capacity: burst)
        let slab = UnsafeMutableRawPointer.allocate(byteCount: burst * 256, alignment: 64)
        for i in 0..<burst { outputs[i] = UnsafeMutableRawBufferPointer(start: slab + i * 256, count: 256) }
        verdicts = .allocate(capacity: burst)
        verdicts.initialize(repeating: .held, count: burst)
        lengths = .allocate(capacity: burst)
        lengths.initialize(repeating: 0, count: burst)
    }
}

@inline(never)
func loopBurst<M: NAT64Mapping & ~Copyable>(_ translator: inout NAT64Translator<M>, _ b: BurstBuffers, rounds: Int, n: Int)
    -> (nanos: UInt64, bad: Int) {
    var bad = 0
    let start = mc_thread_cpu_ns()
    for _ in 0..<rounds {
        var i = 0
        while i < n {
            let c = min(b.burst, n - i)
            translator.process(burst: b.packets + i, count: c, into: b.outputs, verdicts: b.verdicts, lengths: b.lengths, now: .zero)
            for k in 0..<c where !b.verdicts[k].isForwarded { bad += 1 }
            i += c
        }
    }
    return (mc_thread_cpu_ns() - start, bad)
}

/// Warm-up, then `options.trials` timed runs of `run(rounds)` (thread CPU ns, packets not forwarded).
func timed(options: Options, n: Int, _ run: (Int) -> (nanos: UInt64, bad: Int)) -> Result {
    var r = Result()
    _ = run(max(1, options.rounds / 10))  // warm up
    for _ in 0..<options.trials {
        let a0 = mc_allocations()
        let (ns, bad) = run(options.rounds)
        r.allocs += mc_allocations() - a0
        let count = UInt64(options.rounds * n)
        r.packets += count
        r.notForwarded += bad
        r.mpps.append(Double(count) / Double(ns) * 1e3)
    }
    return r
}

func measureBurst<M: NAT64Mapping & ~Copyable>(_ translator: inout NAT64Translator<M>, _ base: UnsafeMutableRawPointer,
                                                options: Options, n: Int, burst: Int = 32) -> Result {
    let b = BurstBuffers(base: base, n: n, burst: burst)
    return timed(options: options, n: n) { loopBurst(&translator, b, rounds: $0, n: n) }
}

func measure<M: NAT64Mapping & ~Copyable>(_ translator: inout NAT64Translator<M>, _ base: UnsafeMutableRawPointer,
                                           options: Options, n: Int, output: UnsafeMutableRawBufferPointer) -> Result {
    timed(options: options, n: n) { loop(&translator, base, rounds: $0, n: n, output: output) }
}

let r64 = measure(&translator, pristine6, options: options, n: n, output: output)
let r46 = measure(&translator, pristine4, options: options, n: n, output: output)

func row(_ name: String, _ r: Result) {
    let perPacket = Double(r.allocs) / Double(r.packets)
    let med = median(r.mpps)
    let ns = 1e3 / med
    print("\(name)  median \(fmt(med)) Mpps (\(fmt(ns, 1)) ns/packet), best \(fmt(r.mpps.max()!)) Mpps, worst \(fmt(r.mpps.min()!)) Mpps; mallocs/packet \(fmt(perPacket, 6)) (\(r.allocs) in \(r.packets))  \(med >= 10 && r.allocs == 0 ? "PASS" : "FAIL") (target ≥ 10 Mpps, 0 mallocs)")
    if r.notForwarded != 0 { fail("\(r.notForwarded) packets were not forwarded") }
}
row("IPv6 → IPv4 UDP 64 B:", r64)
row("IPv4 → IPv6 UDP 64 B:", r46)
row("IPv6 → IPv4 UDP 64 B, burst 32:", measureBurst(&translator, pristine6, options: options, n: n))
row("IPv4 → IPv6 UDP 64 B, burst 32:", measureBurst(&translator, pristine4, options: options, n: n))
let c = translator.counters
print("counters: outbound \(c.outboundPackets), inbound \(c.inboundPackets), dropped \(c.totalDropped)")
if c.totalDropped != 0 { fail("drops: \(DropReason.allCases.filter { c.dropped($0) > 0 }.map { "\($0.name)=\(c.dropped($0))" })") }

// MARK: Stateful NAT64 (RFC 6146): established UDP sessions, 64-byte packets both ways

/// Builds a stateful translator with `flows` UDP sessions (IPv6 hosts 2001:db8:6::/64 toward 4 servers,
/// pool 198.51.100.64/28), the packets of each flow both ways, and checks every packet's translation
/// against the builders; then times both directions as above.
@MainActor
func statefulRun(flows: Int) {
    var sc = NAPT64Configuration(prefix: try! NAT64Prefix("64:ff9b::/96", restrictsToGlobalIPv4: false),
                                 pool: [IPv4Prefix("198.51.100.64/28")!])
    sc.hashSeed = 0x6146
    sc.maxSessions = max(flows * 2, 1024)
    sc.maxHosts = max(flows, 1024)
    var st = try! NAT64Translator(configuration: config, mapping: try! NAPT64Mapping(configuration: sc))
    let out6 = UnsafeMutableRawPointer.allocate(byteCount: flows * packetSize, alignment: 64)
    let in4 = UnsafeMutableRawPointer.allocate(byteCount: flows * packetSize, alignment: 64)
    defer { out6.deallocate(); in4.deallocate() }
    func h6(_ i: Int) -> IPv6Address { IPv6Address(high: 0x2001_0db8_0006_0000, low: UInt64(i / 4 + 1)) }
    func port(_ i: Int) -> UInt16 { UInt16(1024 + (i % 4) * 8000 + (i / 4) % 8000) }
    var id: UInt16 = 1
    for i in 0..<flows {
        let s = server4[i % 4]
        let s6 = IPv6Address(high: 0x0064_ff9b_0000_0000, low: UInt64(s.rawValue))
        let p6 = PacketBuilder.udp6(source: h6(i), sourcePort: port(i), destination: s6, destinationPort: UInt16(5000 + i % 7),
                                    payload: [UInt8](repeating: 0xA5, count: packetSize - 48))
        p6.withUnsafeBytes { (out6 + i * packetSize).copyMemory(from: $0.baseAddress!, byteCount: packetSize) }
        // The first packet of each flow makes its BIB entry and session.
        let r = st.process(UnsafeRawBufferPointer(start: out6 + i * packetSize, count: packetSize), into: output, now: .zero)
        guard r.verdict == .toOutside else { fail("stateful flow \(i): \(r.verdict)") }
        guard let b = st.mapping.binding(.udp, ipv6: h6(i), port: port(i)) else { fail("stateful flow \(i): no BIB entry") }
        let want4 = PacketBuilder.udp4(source: b.ipv4, sourcePort: b.ipv4Port, destination: s, destinationPort: UInt16(5000 + i % 7),
                                       payload: [UInt8](repeating: 0xA5, count: packetSize - 48), ttl: 63, identification: id)
        id &+= 1
        if Array(UnsafeRawBufferPointer(rebasing: output[0..<r.length])) != want4 { fail("stateful flow \(i) translated wrongly") }
        let p4 = PacketBuilder.udp4(source: s, sourcePort: UInt16(5000 + i % 7), destination: b.ipv4, destinationPort: b.ipv4Port,
                                    payload: [UInt8](repeating: 0x5A, count: packetSize - 28), identification: UInt16(truncatingIfNeeded: i),
                                    dontFragment: true)
        p4.withUnsafeBytes { (in4 + i * packetSize).copyMemory(from: $0.baseAddress!, byteCount: packetSize) }
        let r4 = st.process(UnsafeRawBufferPointer(start: in4 + i * packetSize, count: packetSize), into: output, now: .zero)
        guard r4.verdict == .toInside(tenant: 0) else { fail("stateful flow \(i) back: \(r4.verdict)") }
        let want6 = PacketBuilder.udp6(source: s6, sourcePort: UInt16(5000 + i % 7), destination: h6(i), destinationPort: port(i),
                                       payload: [UInt8](repeating: 0x5A, count: packetSize - 28), hopLimit: 63)
        if Array(UnsafeRawBufferPointer(rebasing: output[0..<r4.length])) != want6 { fail("stateful flow \(i) back translated wrongly") }
    }
    guard st.mapping.sessionCount == flows else { fail("stateful: \(st.mapping.sessionCount) sessions for \(flows) flows") }
    print("stateful (RFC 6146): \(flows) established UDP sessions of \(st.mapping.hostCount) IPv6 hosts on 16 pool addresses; every packet checked both ways")
    var o = options
    o.rounds = max(1, options.rounds * 1024 / flows)  // about as many packets per trial as the 1 024-packet runs
    let a = measure(&st, out6, options: o, n: flows, output: output)
    let b = measure(&st, in4, options: o, n: flows, output: output)
    row("stateful IPv6 → IPv4 UDP 64 B, \(flows) sessions:", a)
    row("stateful IPv4 → IPv6 UDP 64 B, \(flows) sessions:", b)
    row("stateful IPv6 → IPv4 UDP 64 B, \(flows) sessions, burst 32:", measureBurst(&st, out6, options: o, n: flows))
    row("stateful IPv4 → IPv6 UDP 64 B, \(flows) sessions, burst 32:", measureBurst(&st, in4, options: o, n: flows))
    let sc2 = st.counters
    if sc2.totalDropped != 0 { fail("stateful drops: \(DropReason.allCases.filter { sc2.dropped($0) > 0 }.map { "\($0.name)=\(sc2.dropped($0))" })") }
    guard st.mapping.sessionCount == flows, st.mapping.counters.sessionsCreated == UInt64(flows) else { fail("stateful: sessions changed while timed") }
}
statefulRun(flows: n)
statefulRun(flows: options.statefulFlows)

// MARK: Stateful NAT64: new sessions (BIB entry + session per flow: the port allocator's path)

/// Fills fresh stateful translators with `flows` new UDP flows each (the first packet of each flow makes
/// its BIB entry, its IPv4 port, and its session), `trials` times; only the process calls are timed.
@MainActor
func statefulNewSessions(flows: Int, trials: Int) {
    var sc = NAPT64Configuration(prefix: try! NAT64Prefix("64:ff9b::/96", restrictsToGlobalIPv4: false),
                                 pool: [IPv4Prefix("198.51.100.64/28")!])
    sc.hashSeed = 0x6146
    sc.maxSessions = max(flows * 2, 1024)
    sc.maxHosts = max(flows, 1024)
    let out6 = UnsafeMutableRawPointer.allocate(byteCount: flows * packetSize, alignment: 64)
    defer { out6.deallocate() }
    for i in 0..<flows {
        let s = server4[i % 4]
        let p6 = PacketBuilder.udp6(source: IPv6Address(high: 0x2001_0db8_0006_0000, low: UInt64(i / 4 + 1)),
                                    sourcePort: UInt16(1024 + (i % 4) * 8000 + (i / 4) % 8000),
                                    destination: IPv6Address(high: 0x0064_ff9b_0000_0000, low: UInt64(s.rawValue)),
                                    destinationPort: UInt16(5000 + i % 7), payload: [UInt8](repeating: 0xA5, count: packetSize - 48))
        p6.withUnsafeBytes { (out6 + i * packetSize).copyMemory(from: $0.baseAddress!, byteCount: packetSize) }
    }
    var ns: [Double] = []
    var allocs: UInt64 = 0
    for _ in 0..<trials {
        var st = try! NAT64Translator(configuration: config, mapping: try! NAPT64Mapping(configuration: sc))
        let a0 = mc_allocations()
        let t0 = mc_thread_cpu_ns()
        var bad = 0
        for i in 0..<flows {
            if !st.process(UnsafeRawBufferPointer(start: out6 + i * packetSize, count: packetSize), into: output, now: .zero).verdict.isForwarded { bad += 1 }
        }
        let t1 = mc_thread_cpu_ns()
        allocs += mc_allocations() - a0
        if bad != 0 || st.mapping.sessionCount != flows { fail("stateful new sessions: \(bad) not forwarded, \(st.mapping.sessionCount) sessions for \(flows) flows") }
        ns.append(Double(t1 - t0) / Double(flows))
    }
    let med = median(ns)
    print("stateful new sessions (BIB entry + session), \(flows) flows per fresh translator:  median \(fmt(1e3 / med)) M/s (\(fmt(med, 1)) ns/session), best \(fmt(1e3 / ns.min()!)) M/s; mallocs/session \(fmt(Double(allocs) / Double(flows * trials), 6))")
}
statefulNewSessions(flows: options.statefulFlows, trials: options.trials)
