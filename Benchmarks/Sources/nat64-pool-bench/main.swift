// nat64-pool-bench: release-mode measurements of protomask's 1:1 pool mode (AddressPoolMapping) under the
// NAT64 translator.
//
//   1. IPv6 → IPv4: 64-byte UDP from 1 000 IPv6 hosts holding reservations (hash probe + refresh)
//   2. IPv4 → IPv6: the replies (offset into the slot table + refresh)
//   3. new reservations: 1 000 new IPv6 hosts per round after the previous 1 000 expired
// Each with heap allocations per packet (must be 0).
//
//   swift build -c release --package-path Benchmarks && taskset -c 1 Benchmarks/.build/release/nat64-pool-bench

import CMallocCounter
import NAT64
import NATCore
import NATWire

#if canImport(Glibc)
import Glibc
#endif

let quick = CommandLine.arguments.contains("--quick")
let rounds = quick ? 200 : 2000
let trials = quick ? 3 : 11
let n = 1000
let size = 64

func fail(_ m: String) -> Never { print("FAILED: \(m)"); exit(1) }
func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[s.count / 2] }
func fmt(_ x: Double) -> String { String(Double(Int((x * 100).rounded())) / 100) }

if mc_allowed_cpu_count() != 1 { print("note: pin it for stable numbers: taskset -c 1 \(CommandLine.arguments[0])") }

let prefix = try! NAT64Prefix("2001:db8:64::/96")
func makeTranslator(idle: UInt32) -> NAT64Translator<AddressPoolMapping> {
    var c = NAT64Configuration()
    c.identificationSeed = 1
    let pool = try! AddressPool(configuration: AddressPoolConfiguration(prefixes: [IPv4Prefix("198.51.100.0/22")!], maxIdleSeconds: idle))
    return try! NAT64Translator(configuration: c, mapping: try! AddressPoolMapping(pool: pool, prefix: prefix))
}
let server4 = IPv4Address(203, 0, 113, 2)
let server6 = prefix.embedUnchecked(server4)
func host6(_ i: Int, generation: Int = 0) -> IPv6Address { IPv6Address(high: 0x2001_0db8_0001_0000 | UInt64(generation), low: UInt64(i) &+ 1) }

func packets6(generation: Int) -> UnsafeMutableRawPointer {
    let p = UnsafeMutableRawPointer.allocate(byteCount: n * size, alignment: 64)
    for i in 0..<n {
        let b = PacketBuilder.udp6(source: host6(i, generation: generation), sourcePort: UInt16(10_000 + i), destination: server6,
                                   destinationPort: 5000, payload: [UInt8](repeating: 0xA5, count: size - 48))
        b.withUnsafeBytes { (p + i * size).copyMemory(from: $0.baseAddress!, byteCount: size) }
    }
    return p
}
let output = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_600, alignment: 64)

// Resident hosts: reserve once, then collect the IPv4 replies' packets from the pool's own answers.
var t = makeTranslator(idle: 7200)
let out6 = packets6(generation: 0)
let in4 = UnsafeMutableRawPointer.allocate(byteCount: n * size, alignment: 64)
for i in 0..<n {
    let r = t.process(UnsafeRawBufferPointer(start: out6 + i * size, count: size), into: output, now: .seconds(1))
    guard r.verdict == .toOutside else { fail("host \(i): \(r.verdict)") }
    let mine = IPv4Address(UInt32(output[12]) << 24 | UInt32(output[13]) << 16 | UInt32(output[14]) << 8 | UInt32(output[15]))
    let b = PacketBuilder.udp4(source: server4, sourcePort: 5000, destination: mine, destinationPort: UInt16(10_000 + i),
                               payload: [UInt8](repeating: 0x5A, count: size - 28), identification: UInt16(i), dontFragment: true)
    b.withUnsafeBytes { (in4 + i * size).copyMemory(from: $0.baseAddress!, byteCount: size) }
}

@inline(never)
func loop(_ t: inout NAT64Translator<AddressPoolMapping>, _ base: UnsafeMutableRawPointer, now: Timestamp,
          output: UnsafeMutableRawBufferPointer) -> (UInt64, Int) {
    var bad = 0
    let start = mc_thread_cpu_ns()
    for _ in 0..<rounds {
        var p = base
        for _ in 0..<n {
            if !t.process(UnsafeRawBufferPointer(start: p, count: size), into: output, now: now).verdict.isForwarded { bad += 1 }
            p += size
        }
    }
    return (mc_thread_cpu_ns() - start, bad)
}

nonisolated(unsafe) var clock = 2.0

func measure(_ t: inout NAT64Translator<AddressPoolMapping>, _ name: String, _ base: UnsafeMutableRawPointer,
             output: UnsafeMutableRawBufferPointer) {
    var mpps: [Double] = []
    var allocs: UInt64 = 0
    var second = clock
    defer { clock = second }
    _ = loop(&t, base, now: .seconds(second), output: output)
    for _ in 0..<trials {
        second += 1  // a new second each trial: every reservation is refreshed (moved in the idle list) once
        let a0 = mc_allocations()
        let (ns, bad) = loop(&t, base, now: .seconds(second), output: output)
        allocs += mc_allocations() - a0
        if bad != 0 { fail("\(name): \(bad) packets not forwarded") }
        mpps.append(Double(rounds * n) / Double(ns) * 1e3)
    }
    print("\(name) median \(fmt(median(mpps))) Mpps (\(fmt(1e3 / median(mpps))) ns/packet); mallocs/packet \(Double(allocs) / Double(rounds * n * trials)) \(allocs == 0 ? "PASS" : "FAIL")")
}

do {
    let r = t.process(UnsafeRawBufferPointer(start: in4, count: size), into: output, now: .seconds(1))
    guard r.verdict == .toInside(tenant: 0) else { fail("reply 0: \(r.verdict)") }
}
print("nat64-pool-bench: \(n) IPv6 hosts with reservations in a /22 pool, 64-byte UDP, \(rounds) rounds × \(trials) trials")
measure(&t, "IPv6 → IPv4 (resident reservation):", out6, output: output)
measure(&t, "IPv4 → IPv6 (resident reservation):", in4, output: output)

// New reservations: each round a new generation of 1 000 hosts, after the previous one expired.
do {
    var fresh = makeTranslator(idle: 1)
    let gens = quick ? 20 : 200
    let bufs = (0..<2).map { packets6(generation: $0 + 1) }
    var total: UInt64 = 0
    var allocs: UInt64 = 0
    for g in 0..<gens {
        let now = Timestamp.seconds(Double(10 + 2 * g))
        let base = bufs[g % 2]
        // The previous generation is idle for 2 s ≥ max_idle (1 s): reclaimed on demand, no sweep.
        let a0 = mc_allocations()
        let start = mc_thread_cpu_ns()
        var p = base
        for _ in 0..<n {
            if !fresh.process(UnsafeRawBufferPointer(start: p, count: size), into: output, now: now).verdict.isForwarded { fail("new reservation refused") }
            p += size
        }
        total += mc_thread_cpu_ns() - start
        allocs += mc_allocations() - a0
    }
    let made = fresh.mapping.pool.reservationsMade
    print("new reservations (reclaiming expired ones): \(fmt(Double(gens * n) / Double(total) * 1e3)) M/s (\(fmt(Double(total) / Double(gens * n))) ns each), \(made) made; mallocs/packet \(Double(allocs) / Double(gens * n)) \(allocs == 0 ? "PASS" : "FAIL")")
}
