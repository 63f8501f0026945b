import Testing
import NATCore
import NATWire
@testable import NAT64

/// Random and mutated packets never trap, every non-forwarded packet is dropped with a reason and
/// counted, and whatever comes out (translated or generated) is a well-formed IP packet.
@Suite struct FuzzTests {
    struct SplitMix64 {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }
    }

    static func seeds() -> [[UInt8]] {
        let tcp = TCPHeader(sourcePort: 1, destinationPort: 2, flags: [.syn], options: [2, 4, 5, 0xB4])
        let inner4 = PacketBuilder.udp4(source: host4, sourcePort: 5, destination: server4, destinationPort: 6, payload: payload(40))
        let inner6 = PacketBuilder.udp6(source: server6, sourcePort: 6, destination: host6, destinationPort: 5, payload: payload(40))
        var frag4 = IPv4Header(protocolNumber: IPProtocol.udp, source: server4, destination: host4, identification: 3)
        frag4.moreFragments = true
        var opts4 = IPv4Header(protocolNumber: IPProtocol.udp, source: server4, destination: host4)
        opts4.options = [131, 7, 4, 1, 2, 3, 4, 1]
        return [
            PacketBuilder.udp6(source: host6, sourcePort: 1, destination: server6, destinationPort: 2, payload: payload(30)),
            PacketBuilder.udp6(source: host6, sourcePort: 1, destination: server6, destinationPort: 2, payload: payload(1300)),
            PacketBuilder.tcp6(source: host6, destination: server6, header: tcp, payload: payload(10)),
            PacketBuilder.echo6(source: host6, destination: server6, identifier: 9),
            PacketBuilder.icmp6Error(source: host6, destination: server6, type: 2, code: 0, restOfHeader: 1400, original: inner6),
            PacketBuilder.icmp6Error(source: host6, destination: server6, type: 4, code: 0, restOfHeader: 6, original: inner6),
            PacketBuilder.udp6(source: host6, sourcePort: 1, destination: server6, destinationPort: 2, payload: payload(30),
                               extensionHeaders: [.hopByHop(options: []), .routing(type: 0, segmentsLeft: 1, data: payload(16)),
                                                  .fragment(offset: 0, moreFragments: true, identification: 7)]),
            PacketBuilder.udp6(source: host6, sourcePort: 1, destination: IPv6Address("64:ff9b::198.51.100.6")!,
                               destinationPort: 2, payload: payload(30)),
            PacketBuilder.udp4(source: server4, sourcePort: 2, destination: host4, destinationPort: 1, payload: payload(30)),
            PacketBuilder.udp4(source: server4, sourcePort: 2, destination: host4, destinationPort: 1, payload: payload(1472)),
            PacketBuilder.udp4(source: server4, sourcePort: 2, destination: host4, destinationPort: 1, payload: payload(30),
                               checksum: false),
            PacketBuilder.tcp4(source: server4, destination: host4, header: tcp, payload: payload(10)),
            PacketBuilder.echo4(source: server4, destination: host4, identifier: 9),
            PacketBuilder.icmp4Error(source: router4, destination: host4, type: 3, code: 4, restOfHeader: 0, original: inner4),
            PacketBuilder.icmp4Error(source: router4, destination: host4, type: 12, code: 0, restOfHeader: 9 << 24, original: inner4),
            PacketBuilder.ipv4(frag4, payload: payload(64)),
            PacketBuilder.ipv4(opts4, payload: Array(PacketBuilder.udp4(source: server4, sourcePort: 2, destination: host4,
                                                                        destinationPort: 1)[20...])),
        ]
    }

    /// Checks that `bytes` is one well-formed IPv4 or IPv6 packet.
    static func wellFormed(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { b -> Bool in
            guard let first = b.first else { return false }
            if first >> 4 == 4 {
                guard let ip = try? IPv4View(validating: b) else { return false }
                return ip.count == b.count && ip.isChecksumValid && ip.headerLength == 20
            }
            guard let ip = try? IPv6View(validating: b) else { return false }
            return ip.count == b.count
        }
    }

    @Test func fuzz_randomAndMutatedPacketsNeverTrapAndAreCounted() {
        var rng = SplitMix64(state: 0x5EED_64)
        var t = makeTranslator { $0.ipv4MTU = 1000 }
        let seeds = Self.seeds()
        var drops: UInt64 = 0
        var forwarded = 0
        for i in 0..<30_000 {
            var p: [UInt8]
            if i % 4 == 0 {
                p = (0..<rng.below(160)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                if !p.isEmpty { p[0] = (rng.below(2) == 0 ? 0x40 : 0x60) | p[0] & 0x0F }
            } else {
                p = seeds[rng.below(seeds.count)]
                for _ in 0..<(1 + rng.below(4)) where !p.isEmpty {
                    let at = rng.below(min(p.count, rng.below(3) == 0 ? p.count : 64))
                    p[at] = UInt8(truncatingIfNeeded: rng.next())
                }
                switch rng.below(6) {
                case 0: p = Array(p.prefix(rng.below(p.count + 1)))
                case 1: p += (0..<rng.below(20)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                default: break
                }
            }
            let r = run(&t, p)
            switch r.verdict {
            case .drop:
                drops += 1
                #expect(r.bytes.isEmpty)
            case .toOutside, .toInside:
                forwarded += 1
                #expect(Self.wellFormed(r.bytes), "input \(p)")
            case .held:
                Issue.record("the translator never holds")
            }
            for g in r.generated {
                #expect(Self.wellFormed(g.bytes), "generated from \(p)")
                #expect(g.bytes.count <= 1280)
            }
        }
        let c = t.counters
        // Rate-limited generated errors are counted as drops too (their packet was dropped for its reason).
        #expect(c.totalDropped == drops + c.dropped(.icmpRateLimited))
        #expect(forwarded > 1000)
        #expect(drops > 1000)
    }

    @Test func fuzz_everyByteOfEverySeedFlipped() {
        var t = makeTranslator()
        for seed in Self.seeds() {
            for i in 0..<min(seed.count, 120) {
                for v: UInt8 in [0x00, 0xFF, seed[i] ^ 0x80] {
                    var p = seed
                    p[i] = v
                    let r = run(&t, p)
                    if r.verdict.isForwarded { #expect(Self.wellFormed(r.bytes)) }
                    for g in r.generated { #expect(Self.wellFormed(g.bytes)) }
                }
            }
        }
    }
}
