import Testing
import NATCore
import NATWire
@testable import NAT64

/// SIIT's fast path (an unfragmented TCP or UDP packet mapped by the same stateless rules, everything
/// else the full way) against the full path alone: a random mixed stream in both directions gives the
/// same verdicts, bytes, generated packets and counters.
@Suite struct SIITFastPathTests {
    typealias RNG = FuzzTests.SplitMix64

    @Test(arguments: [UInt64(11), 12, 13])
    func rfc7915_fastPathEqualsTheFullPath(seed: UInt64) throws {
        var fast = makeTranslator({ $0.ipv4MTU = 1400; $0.lowestIPv6MTU = 1280 })
        var full = makeTranslator({ $0.ipv4MTU = 1400; $0.lowestIPv6MTU = 1280 })
        full.fastPathEnabled = false
        var rng = RNG(state: seed)
        let v6Sources = [host6, peer6, IPv6Address("2001:db8:6::77")!, router6Untranslatable, IPv6Address("fe80::1")!]
        let v6Destinations = [server6, router6, peer6, IPv6Address("64:ff9b::10.0.0.1")!, IPv6Address("2001:db8:99::1")!]
        let v4Sources = [server4, router4, IPv4Address("127.0.0.1")!, IPv4Address("198.51.100.9")!]
        let v4Destinations = [host4, peer4, IPv4Address("198.51.100.200")!, IPv4Address("192.0.2.99")!]
        func payload() -> [UInt8] {
            let n = rng.below(8) == 0 ? 1300 + rng.below(300) : rng.below(100)
            return (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        }
        func flags() -> TCPFlags { TCPFlags(rawValue: UInt8(truncatingIfNeeded: rng.next())) }
        var forwardedFast = 0
        for i in 0..<3000 {
            var p: [UInt8]
            let sp = UInt16(1 + rng.below(65535)), dp = UInt16(1 + rng.below(65535))
            if rng.below(2) == 0 {
                let s = v6Sources[rng.below(v6Sources.count)], d = v6Destinations[rng.below(v6Destinations.count)]
                let hop = rng.below(10) == 0 ? UInt8(rng.below(2)) : 64
                p = rng.below(2) == 0
                    ? PacketBuilder.udp6(source: s, sourcePort: sp, destination: d, destinationPort: dp, payload: payload(), hopLimit: hop)
                    : PacketBuilder.tcp6(source: s, sourcePort: sp, destination: d, destinationPort: dp, flags: flags(),
                                         payload: payload(), hopLimit: hop)
            } else {
                let s = v4Sources[rng.below(v4Sources.count)], d = v4Destinations[rng.below(v4Destinations.count)]
                let ttl = rng.below(10) == 0 ? UInt8(rng.below(2)) : 64
                p = rng.below(2) == 0
                    ? PacketBuilder.udp4(source: s, sourcePort: sp, destination: d, destinationPort: dp, payload: payload(),
                                         ttl: ttl, dontFragment: rng.below(2) == 0, checksum: rng.below(10) != 0)
                    : PacketBuilder.tcp4(source: s, sourcePort: sp, destination: d, destinationPort: dp, flags: flags(),
                                         payload: payload(), ttl: ttl)
            }
            // Now and then a damaged one: a flipped byte or a cut.
            switch rng.below(12) {
            case 0: p[rng.below(p.count)] ^= UInt8(1 + rng.below(255))
            case 1: p = Array(p.prefix(rng.below(p.count)))
            default: break
            }
            let a = run(&fast, p), b = run(&full, p)
            #expect(a.verdict == b.verdict && a.bytes == b.bytes, "packet \(i): \(a.verdict) vs \(b.verdict), \(diff(a.bytes, b.bytes))")
            #expect(a.generated.map(\.bytes) == b.generated.map(\.bytes), "packet \(i): generated packets differ")
            if a.verdict.isForwarded { forwardedFast += 1 }
        }
        #expect(fast.counters == full.counters)
        #expect(forwardedFast > 500, "too few packets were translated to mean anything: \(forwardedFast)")
    }
}
