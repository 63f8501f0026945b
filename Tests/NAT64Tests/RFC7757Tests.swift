import Testing
import NATCore
import NATWire
@testable import NAT64

/// RFC 7757: Explicit Address Mappings, their precedence over RFC 6052, and hairpinning (§4.3).
@Suite struct RFC7757Tests {
    @Test func rfc7757_3_2_suffixLengthsMustBeEqual() {
        #expect(throws: ConfigurationError.self) {
            try ExplicitAddressMapping(ipv4: "198.51.100.0/24", ipv6: "2001:db8:6::/112")
        }
        #expect((try? ExplicitAddressMapping(ipv4: "198.51.100.7/32", ipv6: "2001:db8:6::77/128")) != nil)
        #expect(throws: ConfigurationError.self) {
            try ExplicitAddressMapping(ipv4: "198.51.100.1/24", ipv6: "2001:db8:6::/120")  // host bits set
        }
    }

    @Test func rfc7757_3_3_duplicatePrefixesRefused() throws {
        let a = try ExplicitAddressMapping(ipv4: "198.51.100.0/24", ipv6: "2001:db8:6::/120")
        let b = try ExplicitAddressMapping(ipv4: "198.51.100.0/24", ipv6: "2001:db8:7::/120")
        #expect(throws: ConfigurationError.self) { try ExplicitAddressMappingTable([a, b]) }
        #expect(throws: ConfigurationError.self) { try SIITMapping(SIITConfiguration()) }
    }

    @Test func rfc7757_3_3_longestPrefixMatchBothWays() throws {
        let table = try ExplicitAddressMappingTable([
            try ExplicitAddressMapping(ipv4: "198.51.100.0/24", ipv6: "2001:db8:6::/120"),
            try ExplicitAddressMapping(ipv4: "198.51.100.128/25", ipv6: "2001:db8:7::/121"),
            try ExplicitAddressMapping(ipv4: "198.51.100.200/32", ipv6: "2001:db8:8::1/128"),
        ])
        #expect(table.ipv6(for: IPv4Address("198.51.100.5")!) == IPv6Address("2001:db8:6::5")!)
        #expect(table.ipv6(for: IPv4Address("198.51.100.130")!) == IPv6Address("2001:db8:7::2")!)
        #expect(table.ipv6(for: IPv4Address("198.51.100.200")!) == IPv6Address("2001:db8:8::1")!)
        #expect(table.ipv6(for: IPv4Address("203.0.113.1")!) == nil)
        #expect(table.ipv4(for: IPv6Address("2001:db8:7::2")!) == IPv4Address("198.51.100.130")!)
        #expect(table.ipv4(for: IPv6Address("2001:db8:6::ff")!) == IPv4Address("198.51.100.255")!)
        #expect(table.ipv4(for: IPv6Address("2001:db8:8::1")!) == IPv4Address("198.51.100.200")!)
        #expect(table.ipv4(for: IPv6Address("2001:db8:6::100")!) == nil)
    }

    @Test func rfc7757_3_3_explicitMappingTakesPrecedenceOverThePrefix() {
        // 198.51.100.5 could also be written 64:ff9b::198.51.100.5; the EAM row wins both ways.
        var t = makeTranslator()
        let in4 = PacketBuilder.udp4(source: server4, sourcePort: 1, destination: host4, destinationPort: 2)
        let r = run(&t, in4)
        #expect(r.bytes == PacketBuilder.udp6(source: server6, sourcePort: 1, destination: host6, destinationPort: 2, hopLimit: 63))
        // An IPv4 destination the table does not cover falls back to RFC 6052.
        let other = PacketBuilder.udp4(source: server4, sourcePort: 1, destination: IPv4Address("203.0.113.7")!, destinationPort: 2)
        #expect(run(&t, other).bytes == PacketBuilder.udp6(source: server6, sourcePort: 1,
                                                            destination: IPv6Address("64:ff9b::203.0.113.7")!,
                                                            destinationPort: 2, hopLimit: 63))
    }

    @Test func rfc7757_3_3_eamOnlyTranslatorDropsTheRest() {
        var t = makeTranslator(siit: {
            $0.prefix = nil
            $0.explicitMappings.append(try! ExplicitAddressMapping(ipv4: "192.0.2.0/24", ipv6: "2001:db8:4::/120"))
        })
        let ok = PacketBuilder.udp6(source: host6, sourcePort: 1, destination: IPv6Address("2001:db8:4::21")!, destinationPort: 2)
        #expect(run(&t, ok).bytes == PacketBuilder.udp4(source: host4, sourcePort: 1, destination: server4, destinationPort: 2,
                                                         ttl: 63, identification: 1))
        #expect(run(&t, PacketBuilder.udp6(source: host6, sourcePort: 1, destination: server6, destinationPort: 2)).verdict
                == .drop(.noMapping))
    }

    // MARK: Hairpinning

    static let peerPrefixed = IPv6Address("64:ff9b::198.51.100.6")!
    static let hostPrefixed = IPv6Address("64:ff9b::198.51.100.5")!

    @Test func rfc7757_4_3_hairpinnedPacketUsesThePrefixForTheSource() {
        var t = makeTranslator()
        let in6 = PacketBuilder.udp6(source: host6, sourcePort: 4000, destination: Self.peerPrefixed, destinationPort: 4001,
                                     payload: payload(40))
        let want = PacketBuilder.udp6(source: Self.hostPrefixed, sourcePort: 4000, destination: peer6, destinationPort: 4001,
                                      payload: payload(40), hopLimit: 63)
        let r = run(&t, in6)
        #expect(r.verdict == toIPv6)
        #expect(r.bytes == want, "\(diff(r.bytes, want))")
        let c = t.counters
        #expect(c.hairpinnedPackets == 1)
        // The reply takes the same way back.
        let reply = PacketBuilder.udp6(source: peer6, sourcePort: 4001, destination: Self.hostPrefixed, destinationPort: 4000,
                                       payload: payload(3))
        let wantReply = PacketBuilder.udp6(source: Self.peerPrefixed, sourcePort: 4001, destination: host6, destinationPort: 4000,
                                           payload: payload(3), hopLimit: 63)
        #expect(run(&t, reply).bytes == wantReply)
    }

    @Test func rfc7757_4_3_hairpinnedEchoAndTCP() {
        var t = makeTranslator()
        let echo = PacketBuilder.echo6(source: host6, destination: Self.peerPrefixed, identifier: 5, payload: payload(12))
        #expect(run(&t, echo).bytes == PacketBuilder.echo6(source: Self.hostPrefixed, destination: peer6, identifier: 5,
                                                           payload: payload(12), hopLimit: 63))
        let h = TCPHeader(sourcePort: 1, destinationPort: 2, flags: [.ack], sequenceNumber: 3, acknowledgmentNumber: 4)
        let tcp = PacketBuilder.tcp6(source: host6, destination: Self.peerPrefixed, header: h, payload: payload(100))
        #expect(run(&t, tcp).bytes == PacketBuilder.tcp6(source: Self.hostPrefixed, destination: peer6, header: h,
                                                         payload: payload(100), hopLimit: 63))
    }

    @Test func rfc7757_4_3_hairpinnedICMPErrorGoesBackToTheSender() {
        var t = makeTranslator()
        // The datagram host6 → peer arrived at peer6 from 64:ff9b::198.51.100.5; peer6 answers Port Unreachable.
        let arrived = PacketBuilder.udp6(source: Self.hostPrefixed, sourcePort: 4000, destination: peer6, destinationPort: 4001,
                                         payload: payload(20), hopLimit: 63)
        let error = PacketBuilder.icmp6Error(source: peer6, destination: Self.hostPrefixed, type: 1, code: 4, original: arrived)
        // host6 must see it about the datagram it sent: host6 → 64:ff9b::198.51.100.6.
        let sent = PacketBuilder.udp6(source: host6, sourcePort: 4000, destination: Self.peerPrefixed, destinationPort: 4001,
                                      payload: payload(20), hopLimit: 63)
        let want = PacketBuilder.icmp6Error(source: Self.peerPrefixed, destination: host6, type: 1, code: 4, original: sent,
                                            hopLimit: 63)
        let r = run(&t, error)
        #expect(r.verdict == toIPv6)
        #expect(r.bytes == want, "\(diff(r.bytes, want))")
    }

    @Test func rfc7757_4_3_hairpinningCanBeTurnedOff() {
        var t = makeTranslator(siit: { $0.hairpinning = false })
        let in6 = PacketBuilder.udp6(source: host6, sourcePort: 4000, destination: Self.peerPrefixed, destinationPort: 4001)
        let r = run(&t, in6)
        #expect(r.verdict == toIPv4)
        #expect(r.bytes == PacketBuilder.udp4(source: host4, sourcePort: 4000, destination: peer4, destinationPort: 4001,
                                              ttl: 63, identification: 1))
    }
}
