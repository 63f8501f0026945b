// nptv6-bench: release-mode measurements of the NPTv6 translator (RFC 6296, stateless and
// checksum-neutral), one packet per call, in place:
//
//   1. inside → outside: 64-byte UDP from 1 000 inside hosts (/48 prefixes: the subnet word is adjusted)
//   2. outside → inside: the replies
//   3. the same with /56 prefixes (§3.5: the first IID word that is not 0xFFFF is adjusted)
//   4. ICMPv6 errors outside → inside (Destination Unreachable quoting a translated datagram: the quoted
//      source is mapped too)
// Each packet is restored from a pristine copy with a 64-byte memcpy before it is translated (the
// translation works in place); the memcpy loop alone is timed too and subtracted for "engine alone".
// Heap allocations per packet must be 0.
//
//   swift build -c release --package-path Benchmarks && taskset -c 1 Benchmarks/.build/release/nptv6-bench

import CMallocCounter
import NATCore
import NATWire
import NPTv6

#if canImport(Glibc)
import Glibc
#endif

let quick = CommandLine.arguments.contains("--quick")
let rounds = quick ? 200 : 2000
let trials = quick ? 3 : 11
let n = 1000

func fail(_ m: String) -> Never { print("FAILED: \(m)"); exit(1) }
func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[s.count / 2] }
func fmt(_ x: Double) -> String { String(Double(Int((x * 100).rounded())) / 100) }

if mc_allowed_cpu_count() != 1 { print("note: pin it for stable numbers: taskset -c 1 \(CommandLine.arguments[0])") }

let remote = IPv6Address("2001:db8:beef::1")!

/// `n` packets of `size` bytes each, contiguous.
func pack(_ make: (Int) -> [UInt8]) -> (UnsafeMutableRawPointer, Int) {
    let first = make(0)
    let size = first.count
    let p = UnsafeMutableRawPointer.allocate(byteCount: n * size, alignment: 64)
    for i in 0..<n {
        let b = make(i)
        guard b.count == size else { fail("packet sizes differ") }
        b.withUnsafeBytes { (p + i * size).copyMemory(from: $0.baseAddress!, byteCount: size) }
    }
    return (p, size)
}

nonisolated(unsafe) let work = UnsafeMutableRawPointer.allocate(byteCount: 2048, alignment: 64)

@inline(never)
func loop(_ t: inout NPTv6Translator, _ base: UnsafeMutableRawPointer, size: Int, translate: Bool) -> (UInt64, Int) {
    var bad = 0
    let buffer = UnsafeMutableRawBufferPointer(start: work, count: size)
    let start = mc_thread_cpu_ns()
    for _ in 0..<rounds {
        var p = base
        for _ in 0..<n {
            work.copyMemory(from: p, byteCount: size)
            if translate {
                if !t.process(buffer, now: .zero).isForwarded { bad += 1 }
            } else if work.load(as: UInt8.self) == 0 {
                bad += 1
            }
            p += size
        }
    }
    return (mc_thread_cpu_ns() - start, bad)
}

nonisolated(unsafe) var allPass = true

func measure(_ t: inout NPTv6Translator, _ name: String, _ packets: (UnsafeMutableRawPointer, Int)) {
    let (base, size) = packets
    var mpps: [Double] = [], copyOnly: [Double] = []
    var allocs: UInt64 = 0
    _ = loop(&t, base, size: size, translate: true)
    for _ in 0..<trials {
        let a0 = mc_allocations()
        let (ns, bad) = loop(&t, base, size: size, translate: true)
        allocs += mc_allocations() - a0
        if bad != 0 { fail("\(name): \(bad) packets not forwarded") }
        mpps.append(Double(rounds * n) / Double(ns) * 1e3)
        let (cns, _) = loop(&t, base, size: size, translate: false)
        copyOnly.append(Double(cns) / Double(rounds * n))
    }
    let perPacket = 1e3 / median(mpps)
    let engine = max(0.01, perPacket - median(copyOnly))
    let ok = allocs == 0
    allPass = allPass && ok
    print("\(name) \(fmt(median(mpps))) Mpps with the restore (\(fmt(perPacket)) ns/packet); engine alone \(fmt(1e3 / engine)) Mpps (\(fmt(engine)) ns); \(size)-byte packets; mallocs/packet \(Double(allocs) / Double(rounds * n * trials)) \(ok ? "PASS" : "FAIL")")
}

func translator(_ inside: String, _ outside: String) -> NPTv6Translator {
    try! NPTv6Translator(configuration: NPTv6Configuration(insidePrefix: IPv6Prefix(inside)!, outsidePrefix: IPv6Prefix(outside)!))
}

print("nptv6-bench: \(n) inside hosts, \(rounds) rounds × \(trials) trials per row, one packet per call, in place")

for (label, inside, outside) in [("/48", "fd01:203:405::/48", "2001:db8:1::/48"), ("/56", "fd01:203:405:600::/56", "2001:db8:1:100::/56")] {
    var t = translator(inside, outside)
    let insideHigh = IPv6Prefix(inside)!.address.high
    func host(_ i: Int) -> IPv6Address { IPv6Address(high: insideHigh | UInt64(i % 200 + 1), low: UInt64(i) &+ 0x1000) }
    let out = pack { i in
        PacketBuilder.udp6(source: host(i), sourcePort: UInt16(10_000 + i), destination: remote, destinationPort: 5000,
                           payload: [UInt8](repeating: 0xA5, count: 64 - 48))
    }
    let replies = pack { i in
        PacketBuilder.udp6(source: remote, sourcePort: 5000, destination: try! t.outsideAddress(for: host(i)),
                           destinationPort: UInt16(10_000 + i), payload: [UInt8](repeating: 0x5A, count: 64 - 48))
    }
    measure(&t, "\(label) inside → outside:", out)
    measure(&t, "\(label) outside → inside:", replies)
    if label == "/48" {
        let errors = pack { i in
            var sent = PacketBuilder.udp6(source: host(i), sourcePort: UInt16(10_000 + i), destination: remote, destinationPort: 5000,
                                          payload: [UInt8](repeating: 0xA5, count: 16))
            guard t.process(&sent, now: .zero) == .toOutside else { fail("quoted packet") }
            return PacketBuilder.icmp6Error(source: IPv6Address("2001:db8:beef::fe")!, destination: try! t.outsideAddress(for: host(i)),
                                            type: ICMPv6Type.destinationUnreachable, code: ICMPv6UnreachableCode.port, original: sent)
        }
        measure(&t, "\(label) ICMPv6 error outside → inside:", errors)
    }
    let c = t.counters
    print("  counters \(label): outbound=\(c.outboundPackets) inbound=\(c.inboundPackets) icmp_errors_translated=\(c.icmpErrorsTranslated) dropped=\(c.totalDropped)")
    if c.totalDropped != 0 { fail("drops") }
}
exit(allPass ? 0 : 1)
