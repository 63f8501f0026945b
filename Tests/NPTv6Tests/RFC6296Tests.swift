import Testing
import NATCore
import NATWire
@testable import NPTv6

/// A seeded generator (SplitMix64), so that the "random" addresses are the same in every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func hex(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var i = s.startIndex
    while i < s.endIndex {
        let j = s.index(i, offsetBy: 2)
        out.append(UInt8(s[i..<j], radix: 16)!)
        i = j
    }
    return out
}

/// The one's complement sum of an address's eight words, with the two zeros (0x0000, 0xFFFF) made one.
func onesSum(_ a: IPv6Address) -> UInt16 {
    let f = Checksum.fold(a.wordSum)
    return f == 0xFFFF ? 0 : f
}

/// Whether the upper-layer checksum of an IPv6 packet without extension headers verifies (RFC 8200 §8.1).
func upperLayerChecksumVerifies(_ packet: [UInt8]) -> Bool {
    packet.withUnsafeBytes { b in
        let v = try! IPv6View(validating: b)
        let ph = Checksum.pseudoHeaderSum(source: v.source, destination: v.destination, nextHeader: v.nextHeader,
                                          length: v.payloadLength)
        return Checksum.fold(Checksum.sum(v.payloadPointer, count: v.payloadLength, initial: ph)) == 0xFFFF
    }
}

@Suite struct RFC6296Tests {
    // RFC 6296 §3.6's example.
    static let inside = IPv6Prefix("fd01:203:405::/48")!
    static let outside = IPv6Prefix("2001:db8:1::/48")!
    static let host = IPv6Address("fd01:203:405:1::1234")!
    static let hostOutside = IPv6Address("2001:db8:1:d550::1234")!
    static let remote = IPv6Address("2001:db8:beef::1")!
    static let router = IPv6Address("2001:db8:beef::fe")!

    static func example() throws -> NPTv6Translator {
        try NPTv6Translator(configuration: NPTv6Configuration(insidePrefix: inside, outsidePrefix: outside))
    }

    // MARK: RFC 6296 §3.6 example

    @Test("RFC 6296 §3.6: the example maps fd01:203:405:1::1234 to 2001:db8:1:d550::1234 and back") func rfc6296_3_6_exampleMapsHostToD550() throws {
        let t = try Self.example()
        #expect(try t.outsideAddress(for: Self.host) == Self.hostOutside)
        // Erratum 3033: the reply's destination 2001:db8:1:d550::1234 maps back to the host.
        #expect(try t.insideAddress(for: Self.hostOutside) == Self.host)
    }

    /// The §3.6 example as a golden packet pair: a UDP datagram from the inside host (checksum computed
    /// independently) leaves with only its source address changed; the UDP checksum bytes are the same.
    @Test("RFC 6296 §3.6: golden UDP packet pair, only the source changes, checksum bytes identical") func rfc6296_3_6_goldenUDPPacket() throws {
        var t = try Self.example()
        var packet = hex("60000000000d1140fd01020304050001000000000000123420010db8beef0000000000000000000113880035000dd1476e70747636")
        let expected = hex("60000000000d114020010db80001d550000000000000123420010db8beef0000000000000000000113880035000dd1476e70747636")
        #expect(t.process(&packet, now: .zero) == .toOutside)
        #expect(packet == expected)
        #expect(upperLayerChecksumVerifies(packet))
        #expect(t.counters.outboundPackets == 1)
        #expect(t.counters.outboundBytes == UInt64(expected.count))
    }

    @Test("RFC 6296 §3.6: the reply's destination maps back to the inside host") func rfc6296_3_6_inboundReplyMapsDestinationBack() throws {
        var t = try Self.example()
        var reply = PacketBuilder.udp6(source: Self.remote, sourcePort: 53, destination: Self.hostOutside,
                                       destinationPort: 5000, payload: Array("answer".utf8))
        let expected = PacketBuilder.udp6(source: Self.remote, sourcePort: 53, destination: Self.host,
                                          destinationPort: 5000, payload: Array("answer".utf8))
        #expect(t.process(&reply, now: .zero) == .toInside(tenant: 0))
        #expect(reply == expected)
        #expect(t.counters.inboundPackets == 1)
    }

    // MARK: RFC 6296 §3.1/§3.2 checksum neutrality

    static let lengths = [40, 48, 56, 60, 64]

    /// Random prefixes of each length (inside under fd00::/8, outside under 2001:db8::/32) and random
    /// hosts: the address's one's complement sum is the same before and after, and the mapping is undone.
    @Test("RFC 6296 §3.2: checksum-neutral and reversible on random prefixes and hosts", arguments: lengths)
    func rfc6296_3_2_checksumNeutralOnRandomAddresses(length: Int) throws {
        var rng = SplitMix64(state: UInt64(length) &* 7919)
        let (mask, _) = IPv6Prefix.mask(UInt8(length))
        var tested = 0
        for _ in 0..<200 {
            let insideHigh = (0xFD00_0000_0000_0000 | rng.next() >> 8) & mask
            let outsideHigh = (0x2001_0DB8_0000_0000 | rng.next() >> 32) & mask
            guard insideHigh != outsideHigh else { continue }
            let config = NPTv6Configuration(insidePrefix: IPv6Prefix(address: IPv6Address(high: insideHigh, low: 0), length: length)!,
                                            outsidePrefix: IPv6Prefix(address: IPv6Address(high: outsideHigh, low: 0), length: length)!)
            let t = try NPTv6Translator(configuration: config)
            for _ in 0..<20 {
                let a = IPv6Address(high: insideHigh | rng.next() & ~mask, low: rng.next())
                let b: IPv6Address
                do throws(DropReason) { b = try t.outsideAddress(for: a) } catch {
                    #expect(error == .adjustmentWordAllOnes)
                    continue
                }
                #expect(config.outsidePrefix.contains(b))
                #expect(onesSum(a) == onesSum(b), "\(a) → \(b)")
                #expect(try t.insideAddress(for: b) == a)
                tested += 1
            }
        }
        #expect(tested > 3000)
    }

    /// RFC 6296 §3.4: a sum of 0xFFFF is written as 0x0000 (both are zero), and maps back.
    @Test("RFC 6296 §3.4: a sum of 0xFFFF is written as 0x0000 and maps back") func rfc6296_3_4_minusZeroWrittenAsZero() throws {
        let t = try Self.example()
        // 0x2AB0 + 0xD54F (the example's adjustment) = 0xFFFF.
        let a = IPv6Address("fd01:203:405:2ab0::1")!
        let b = try t.outsideAddress(for: a)
        #expect(b == IPv6Address("2001:db8:1:0::1")!)
        #expect(try t.insideAddress(for: b) == a)
    }

    // MARK: RFC 6296 §3.5 the adjustment word 0xFFFF

    @Test("RFC 6296 §3.4: a subnet ID of 0xFFFF is not translated (adjustment_word_all_ones)") func rfc6296_3_4_subnetIDAllOnesRefused() throws {
        var t = try Self.example()
        var out = PacketBuilder.udp6(source: IPv6Address("fd01:203:405:ffff::1")!, sourcePort: 1, destination: Self.remote,
                                     destinationPort: 2)
        let before = out
        #expect(t.process(&out, now: .zero) == .drop(.adjustmentWordAllOnes))
        #expect(out == before)
        var inbound = PacketBuilder.udp6(source: Self.remote, sourcePort: 2, destination: IPv6Address("2001:db8:1:ffff::1")!,
                                         destinationPort: 1)
        #expect(t.process(&inbound, now: .zero) == .drop(.adjustmentWordAllOnes))
        #expect(t.counters.dropped(.adjustmentWordAllOnes) == 2)
        #expect(DropReason.adjustmentWordAllOnes.name == "adjustment_word_all_ones")
    }

    /// Above /48 the adjustment goes to the first IID word that is not 0xFFFF (§3.5); an all-ones IID is
    /// refused (§3.7).
    @Test("RFC 6296 §3.5: above /48 the first IID word that is not 0xFFFF is adjusted; an all-ones IID is refused") func rfc6296_3_5_firstIIDWordNotAllOnesAdjustedAbove48() throws {
        let t = try NPTv6Translator(configuration: NPTv6Configuration(insidePrefix: IPv6Prefix("fd01:203:405:600::/56")!,
                                                                      outsidePrefix: IPv6Prefix("2001:db8:1:100::/56")!))
        let plain = IPv6Address("fd01:203:405:6ff:1::1")!
        let mapped = try t.outsideAddress(for: plain)
        #expect(mapped.group(3) == 0x01FF)                      // the subnet bits are kept
        #expect(mapped.group(5) == 0 && mapped.group(7) == 1)   // only word 4 moved
        #expect(onesSum(plain) == onesSum(mapped))

        let a = IPv6Address("fd01:203:405:6ff:ffff:ffff:2:1")!
        let b = try t.outsideAddress(for: a)
        #expect(b.group(4) == 0xFFFF && b.group(5) == 0xFFFF)  // skipped
        #expect(b.group(6) != 2 && b.group(7) == 1)              // adjusted
        #expect(onesSum(a) == onesSum(b))
        #expect(try t.insideAddress(for: b) == a)

        #expect(throws: DropReason.adjustmentWordAllOnes) {
            try t.outsideAddress(for: IPv6Address("fd01:203:405:6ff:ffff:ffff:ffff:ffff")!)
        }
        #expect(throws: DropReason.adjustmentWordAllOnes) {
            try t.insideAddress(for: IPv6Address("2001:db8:1:1ff:ffff:ffff:ffff:ffff")!)
        }
    }

    // MARK: Round trip and transport checksums

    /// Inside → outside, the reply's addresses swapped in, outside → inside: the original bytes.
    @Test("RFC 6296 §3: out and back gives the original bytes, TCP checksum untouched", arguments: lengths)
    func rfc6296_3_roundTripGivesOriginalBytes(length: Int) throws {
        let (mask, _) = IPv6Prefix.mask(UInt8(length))
        let inside = IPv6Prefix(address: IPv6Address(high: 0xFD01_0203_0405_0607 & mask, low: 0), length: length)!
        let outside = IPv6Prefix(address: IPv6Address(high: 0x2001_0DB8_0001_0203 & mask, low: 0), length: length)!
        var t = try NPTv6Translator(configuration: NPTv6Configuration(insidePrefix: inside, outsidePrefix: outside))
        let host = IPv6Address(high: inside.address.high | 0x1234_5678_9ABC & ~mask, low: 0x0011_2233_4455_6677)
        let original = PacketBuilder.tcp6(source: host, sourcePort: 40000, destination: Self.remote, destinationPort: 443,
                                          flags: [.syn], payload: Array("hello".utf8))
        var packet = original
        #expect(t.process(&packet, now: .zero) == .toOutside)
        #expect(packet != original)
        #expect(upperLayerChecksumVerifies(packet))
        // TCP checksum bytes untouched.
        #expect(packet[40 + 16] == original[40 + 16] && packet[40 + 17] == original[40 + 17])
        swapAddresses(&packet)
        #expect(t.process(&packet, now: .zero) == .toInside(tenant: 0))
        swapAddresses(&packet)
        #expect(packet == original)
    }

    func swapAddresses(_ p: inout [UInt8]) {
        for i in 0..<16 { p.swapAt(8 + i, 24 + i) }
    }

    @Test("RFC 6296 §3.2: UDP and TCP checksums verify without being touched") func rfc6296_3_udpAndTCPChecksumsVerifyUntouched() throws {
        var t = try Self.example()
        var udp = PacketBuilder.udp6(source: Self.host, sourcePort: 5353, destination: Self.remote, destinationPort: 53,
                                     payload: Array(repeating: 0x5A, count: 33))
        let udpChecksum = Array(udp[46...47])
        #expect(t.process(&udp, now: .zero) == .toOutside)
        #expect(Array(udp[46...47]) == udpChecksum)
        #expect(upperLayerChecksumVerifies(udp))

        var tcp = PacketBuilder.tcp6(source: Self.remote, sourcePort: 443, destination: Self.hostOutside, destinationPort: 40000,
                                     flags: [.syn, .ack], payload: Array("world".utf8))
        let tcpChecksum = Array(tcp[56...57])
        #expect(t.process(&tcp, now: .zero) == .toInside(tenant: 0))
        #expect(Array(tcp[56...57]) == tcpChecksum)
        #expect(upperLayerChecksumVerifies(tcp))
    }

    // MARK: ICMPv6 errors (RFC 6296 §3.7/§5, RFC 4443 §2.4)

    /// An outside router's error about the inside host's translated packet comes back with the quoted
    /// source translated too: byte for byte the error the router would have sent the host directly.
    @Test("RFC 6296 §3.7/§5: an inbound ICMPv6 error has its quoted source mapped back") func rfc6296_5_inboundICMPv6ErrorQuotedSourceTranslated() throws {
        var t = try Self.example()
        var sent = PacketBuilder.udp6(source: Self.host, sourcePort: 5000, destination: Self.remote, destinationPort: 53,
                                      payload: Array("query".utf8))
        let original = sent
        #expect(t.process(&sent, now: .zero) == .toOutside)
        var error = PacketBuilder.icmp6Error(source: Self.router, destination: Self.hostOutside,
                                             type: ICMPv6Type.destinationUnreachable, code: ICMPv6UnreachableCode.port,
                                             original: sent)
        let expected = PacketBuilder.icmp6Error(source: Self.router, destination: Self.host,
                                                type: ICMPv6Type.destinationUnreachable, code: ICMPv6UnreachableCode.port,
                                                original: original)
        #expect(t.process(&error, now: .zero) == .toInside(tenant: 0))
        #expect(error == expected)
        #expect(upperLayerChecksumVerifies(error))
        // The quoted UDP checksum still verifies for the quoted (inside) addresses.
        #expect(upperLayerChecksumVerifies(Array(error[48...])))
        #expect(t.counters.icmpErrorsTranslated == 1)
    }

    /// The inside host's error about an inbound packet leaves with the quoted destination translated back
    /// to the outside address the remote sent to. The quote is cut short (RFC 4443 §2.4 (c)).
    @Test("RFC 6296 §3.7/§5: an outbound ICMPv6 error has its quoted destination mapped out") func rfc6296_5_outboundICMPv6ErrorQuotedDestinationTranslated() throws {
        var t = try Self.example()
        let arrived = PacketBuilder.udp6(source: Self.remote, sourcePort: 53, destination: Self.hostOutside,
                                         destinationPort: 5000, payload: Array(repeating: 1, count: 100))
        var delivered = arrived
        #expect(t.process(&delivered, now: .zero) == .toInside(tenant: 0))
        var error = PacketBuilder.icmp6Error(source: Self.host, destination: Self.remote,
                                             type: ICMPv6Type.destinationUnreachable, code: ICMPv6UnreachableCode.port,
                                             original: delivered, quote: 60)
        let expected = PacketBuilder.icmp6Error(source: Self.hostOutside, destination: Self.remote,
                                                type: ICMPv6Type.destinationUnreachable, code: ICMPv6UnreachableCode.port,
                                                original: arrived, quote: 60)
        #expect(t.process(&error, now: .zero) == .toOutside)
        #expect(error == expected)
        #expect(upperLayerChecksumVerifies(error))
    }

    @Test("RFC 6296 §3.7: an ICMPv6 error quoting a packet of neither prefix is dropped") func rfc6296_5_icmpv6ErrorQuotingForeignPacketDropped() throws {
        var t = try Self.example()
        let foreign = PacketBuilder.udp6(source: IPv6Address("2001:db8:cafe::1")!, sourcePort: 1, destination: Self.remote,
                                         destinationPort: 2)
        var error = PacketBuilder.icmp6Error(source: Self.router, destination: Self.hostOutside,
                                             type: ICMPv6Type.timeExceeded, code: 0, original: foreign)
        let before = error
        #expect(t.process(&error, now: .zero) == .drop(.badEmbeddedPacket))
        #expect(error == before)
        var short = PacketBuilder.icmp6Error(source: Self.router, destination: Self.hostOutside,
                                             type: ICMPv6Type.timeExceeded, code: 0, original: foreign, quote: 20)
        #expect(t.process(&short, now: .zero) == .drop(.malformedICMPError))
    }

    @Test func rfc4443_echoIsNotAnErrorAndPassesUntouchedButForTheAddress() throws {
        var t = try Self.example()
        var echo = PacketBuilder.echo6(source: Self.host, destination: Self.remote, identifier: 7)
        let expected = PacketBuilder.echo6(source: Self.hostOutside, destination: Self.remote, identifier: 7)
        #expect(t.process(&echo, now: .zero) == .toOutside)
        #expect(echo == expected)
    }

    // MARK: Not ours, malformed

    @Test func packetsOutsideBothPrefixesAreNotNATTraffic() throws {
        var t = try Self.example()
        var p = PacketBuilder.udp6(source: Self.remote, sourcePort: 1, destination: IPv6Address("2001:db8:cafe::1")!,
                                   destinationPort: 2)
        #expect(t.process(&p, now: .zero) == .drop(.notNATTraffic))
        var wrongWay = PacketBuilder.udp6(source: Self.remote, sourcePort: 1, destination: Self.host, destinationPort: 2)
        #expect(t.process(&wrongWay, now: .zero) == .drop(.notNATTraffic))
        var short: [UInt8] = Array(repeating: 0x60, count: 20)
        #expect(t.process(&short, now: .zero) == .drop(.truncated))
        var v4 = Array(repeating: UInt8(0x45), count: 60)
        #expect(t.process(&v4, now: .zero) == .drop(.badIPVersion))
        #expect(t.counters.dropped(.notNATTraffic) == 2)
        #expect(t.counters.totalDropped == 4)
    }

    // MARK: Configuration

    @Test("RFC 6296 §3.1: equal lengths, at most /64, two different prefixes") func rfc6296_3_1_configurationRules() throws {
        func check(_ i: String, _ o: String) -> ConfigurationError? {
            do throws(ConfigurationError) {
                try NPTv6Configuration(insidePrefix: IPv6Prefix(i)!, outsidePrefix: IPv6Prefix(o)!).validate()
                return nil
            } catch { return error }
        }
        #expect(check("fd01:203:405::/48", "2001:db8:1::/48") == nil)
        #expect(check("fd01:203:405:600::/56", "2001:db8:1:100::/56") == nil)
        #expect(check("fd01:203:405::/48", "2001:db8:1:100::/56")?.key == "outside_prefix")
        #expect(check("fd01:203:405:6:7::/80", "2001:db8:1:2:3::/80")?.key == "inside_prefix")
        #expect(check("::/0", "::/0")?.key == "inside_prefix")
        #expect(check("fd01:203:405::/48", "fd01:203:405::/48")?.key == "outside_prefix")
        #expect(throws: ConfigurationError.self) {
            try NPTv6Translator(configuration: NPTv6Configuration(insidePrefix: IPv6Prefix("fd01::/16")!,
                                                                  outsidePrefix: IPv6Prefix("2001:db8::/32")!))
        }
    }
}

/// Packets between the two prefixes on the same side: the NAT host's own errors and hairpinning.
@Suite struct RFC6296HairpinTests {
    /// The NAT host forwards an inside host's translated packet out and its Hop Limit runs out there: the
    /// kernel's ICMPv6 Time Exceeded comes from the NAT host's inside address (under the inside prefix)
    /// to the host's outside address. Only the destination and the quoted source are mapped, so the host
    /// gets the error its router would have sent without the translator.
    @Test("RFC 6296 §3.7: the NAT host's own Time Exceeded from an inside address reaches the inside host")
    func rfc6296_3_7_natHostErrorFromInsideAddress() throws {
        var t = try RFC6296Tests.example()
        let nat = IPv6Address("fd01:203:405:1::1")!
        var sent = PacketBuilder.echo6(source: RFC6296Tests.host, destination: RFC6296Tests.remote, identifier: 9)
        let original = sent
        #expect(t.process(&sent, now: .zero) == .toOutside)
        var error = PacketBuilder.icmp6Error(source: nat, destination: RFC6296Tests.hostOutside, type: ICMPv6Type.timeExceeded,
                                             code: 0, original: sent)
        let expected = PacketBuilder.icmp6Error(source: nat, destination: RFC6296Tests.host, type: ICMPv6Type.timeExceeded,
                                                code: 0, original: original)
        #expect(t.process(&error, now: .zero) == .toInside(tenant: 0))
        #expect(error == expected)
        #expect(upperLayerChecksumVerifies(error))
    }

    /// An inside host reaching another by its outside address: the destination is mapped back, the source
    /// stays, and the other host answers inside directly.
    @Test func hairpinMapsTheDestinationOnly() throws {
        var t = try RFC6296Tests.example()
        let other = IPv6Address("fd01:203:405:2::5")!
        var p = PacketBuilder.udp6(source: other, sourcePort: 1, destination: RFC6296Tests.hostOutside, destinationPort: 2)
        let expected = PacketBuilder.udp6(source: other, sourcePort: 1, destination: RFC6296Tests.host, destinationPort: 2)
        #expect(t.process(&p, now: .zero) == .toInside(tenant: 0))
        #expect(p == expected)
    }
}
