import Testing
import NATCore
import NATWire
@testable import NAT64

/// RFC 6146 §3.5.1 (UDP), §3.5.1.1 (IPv4 transport addresses), §3.5.3 (ICMP query) and §3.4 (fragments):
/// golden packets through `NAT64Translator<NAPT64Mapping>`, expected packets built with PacketBuilder.
@Suite struct StatefulUDPTests {
    @Test func rfc6146_3_5_1_udpFromIPv6CreatesBIBEntryAndSessionGolden() throws {
        var t = makeStateful()
        let r = run(&t, udp6(), at: at(1))
        #expect(r.verdict == toIPv4)
        let h1 = bib(t, .udp, host6, 5000)
        let b = try #require(h1)
        #expect(statefulPool.contains(b.ipv4))
        #expect(r.bytes == udp4(b.ipv4, b.ipv4Port, server4, 53, ttl: 63, id: 1), "\(diff(r.bytes, udp4(b.ipv4, b.ipv4Port, server4, 53, ttl: 63, id: 1)))")
        let h2 = session(t, .udp, host6, 5000, server4, 53)
        let s = try #require(h2)
        #expect(s.ipv4 == b.ipv4 && s.ipv4Port == b.ipv4Port && s.remote6 == server6 && s.remote4 == server4)
        #expect(s.timerClass == .udp)
        let m = t.mapping.counters
        #expect(m.sessionsCreated == 1 && m.mappingsCreated == 1)
        #expect(t.mapping.sessionCount == 1 && t.mapping.bindingCount == 1 && t.mapping.hostCount == 1)
    }

    @Test func rfc6146_3_5_1_udpFromIPv4WithSessionTranslatedBackGolden() throws {
        var t = makeStateful()
        _ = run(&t, udp6(), at: at(1))
        let h3 = bib(t, .udp, host6, 5000)
        let b = try #require(h3)
        let r = run(&t, udp4(server4, 53, b.ipv4, b.ipv4Port, n: 30), at: at(2))
        #expect(r.verdict == toIPv6)
        let expected = PacketBuilder.udp6(source: server6, sourcePort: 53, destination: host6, destinationPort: 5000,
                                          payload: payload(30), hopLimit: 63)
        #expect(r.bytes == expected, "\(diff(r.bytes, expected))")
        #expect(t.mapping.sessionCount == 1)
    }

    @Test func rfc6146_3_5_1_mappingIsEndpointIndependent() throws {
        var t = makeStateful()
        _ = run(&t, udp6(host6, 5000, server6, 53), at: at(1))
        _ = run(&t, udp6(host6, 5000, server6b, 123), at: at(1))
        _ = run(&t, udp6(host6, 5000, server6c, 9), at: at(1))
        let h4 = session(t, .udp, host6, 5000, server4, 53)
        let a = try #require(h4)
        let h5 = session(t, .udp, host6, 5000, server4b, 123)
        let b = try #require(h5)
        let h6 = session(t, .udp, host6, 5000, server4c, 9)
        let c = try #require(h6)
        #expect(a.ipv4 == b.ipv4 && b.ipv4 == c.ipv4 && a.ipv4Port == b.ipv4Port && b.ipv4Port == c.ipv4Port)
        #expect(t.mapping.bindingCount == 1 && t.mapping.sessionCount == 3)
    }

    @Test func rfc6146_3_5_1_endpointIndependentFilteringAdmitsAnyIPv4Host() throws {
        var t = makeStateful()
        _ = run(&t, udp6(), at: at(1))
        let h7 = bib(t, .udp, host6, 5000)
        let b = try #require(h7)
        let r = run(&t, udp4(server4c, 4444, b.ipv4, b.ipv4Port), at: at(2))
        #expect(r.verdict == toIPv6)
        let expected = PacketBuilder.udp6(source: server6c, sourcePort: 4444, destination: host6, destinationPort: 5000,
                                          payload: payload(20), hopLimit: 63)
        #expect(r.bytes == expected)
        let h8 = session(t, .udp, host6, 5000, server4c, 4444)
        #expect(h8 != nil, "the IPv4 host's packet made a session")
    }

    @Test func rfc6146_3_5_1_addressDependentFilteringDropsOtherHosts() throws {
        var t = makeStateful { $0.filtering = .addressDependent }
        _ = run(&t, udp6(), at: at(1))
        let h9 = bib(t, .udp, host6, 5000)
        let b = try #require(h9)
        #expect(run(&t, udp4(server4c, 4444, b.ipv4, b.ipv4Port), at: at(2)).verdict == .drop(.filtered))
        // Another port of the same IPv4 host is fine: the filter is on the address.
        #expect(run(&t, udp4(server4, 5353, b.ipv4, b.ipv4Port), at: at(2)).verdict == toIPv6)
        let c = t.counters4to6
        #expect(c.dropped(.filtered) == 1)
        let h10 = session(t, .udp, host6, 5000, server4c, 4444)
        #expect(h10 == nil)
    }

    @Test func rfc6146_3_5_1_ipv4PacketWithoutBIBEntryDropped() {
        var t = makeStateful()
        #expect(run(&t, udp4(server4, 53, poolFirst, 1234), at: at(1)).verdict == .drop(.noMapping))
        #expect(t.mapping.sessionCount == 0)
    }

    @Test func rfc6146_3_5_1_destinationNotUnderPrefixDropped() {
        var t = makeStateful()
        #expect(run(&t, udp6(host6, 5000, addr6("2001:db8:99::1"), 53), at: at(1)).verdict == .drop(.noMapping))
        #expect(t.mapping.sessionCount == 0 && t.mapping.hostCount == 0)
    }

    @Test func rfc6052_3_1_wellKnownPrefixRefusesNonGlobalIPv4() {
        var c = statefulConfiguration()
        c.prefix = .wellKnown
        var t = try! NAT64Translator(configuration: translatorConfiguration(), mapping: NAPT64Mapping(configuration: c))
        #expect(run(&t, udp6(host6, 5000, addr6("64:ff9b::10.1.2.3"), 53), at: at(1)).verdict == .drop(.nonGlobalIPv4Address))
        #expect(run(&t, udp6(host6, 5000, addr6("64:ff9b::8.8.8.8"), 53), at: at(1)).verdict == toIPv4)
    }

    // MARK: §3.5.1.1 IPv4 transport addresses

    @Test func rfc6146_3_5_1_1_portRangeClassAndParityPreserved() throws {
        var t = makeStateful()
        var ports: [UInt16] = [1, 2, 53, 123, 1022, 1023, 1024, 1025, 5000, 5001, 40000, 40001, 65534, 65535]
        for i in 0..<60 { ports.append(UInt16(truncatingIfNeeded: 700 + i * 997)) }
        for (i, x) in ports.enumerated() where x != 0 {
            let h = IPv6Address(high: host6.high, low: host6.low &+ UInt64(i))
            #expect(run(&t, udp6(h, x), at: at(1)).verdict == toIPv4)
            let h11 = bib(t, .udp, h, x)
            let b = try #require(h11)
            #expect((b.ipv4Port < 1024) == (x < 1024), "port \(x) became \(b.ipv4Port): range class kept")
            #expect(b.ipv4Port & 1 == x & 1, "port \(x) became \(b.ipv4Port): parity kept")
            #expect(b.ipv4Port != 0)
        }
    }

    @Test func rfc6146_3_5_2_3_tcpPortsComeFromTheConfiguredRange() throws {
        var t = makeStateful { $0.tcpPorts = PortSet(ranges: [40000...40099]) }
        for i in 0..<40 {
            let h = IPv6Address(high: host6.high, low: host6.low &+ UInt64(i))
            let sp = UInt16(50000 + i)
            #expect(run(&t, tcp6(h, sp, server6, 80, [.syn]), at: at(1)).verdict == toIPv4)
            let h12 = bib(t, .tcp, h, sp)
            let b = try #require(h12)
            #expect((40000...40099).contains(b.ipv4Port))
            #expect(b.ipv4Port & 1 == sp & 1)
        }
        // Low ports fall back to the only range configured (RFC 6146 §3.5.1.1: "MAY assign a port from another range").
        #expect(run(&t, tcp6(host6, 22, server6, 80, [.syn]), at: at(1)).verdict == toIPv4)
        let h13 = bib(t, .tcp, host6, 22)
        #expect((40000...40099).contains(try #require(h13).ipv4Port))
    }

    @Test func rfc6146_3_5_1_1_portPreservedWhenFreeAndConfigured() throws {
        var t = makeStateful { $0.portPreservation = true; $0.pool = [IPv4Prefix("198.51.100.64/32")!] }
        _ = run(&t, udp6(host6, 5000), at: at(1))
        _ = run(&t, udp6(host6b, 5000), at: at(1))
        let h14 = bib(t, .udp, host6, 5000)
        let h15 = bib(t, .udp, host6b, 5000)
        let a = try #require(h14), b = try #require(h15)
        #expect(a.ipv4Port == 5000)
        #expect(b.ipv4Port != 5000 && b.ipv4Port & 1 == 0 && b.ipv4Port >= 1024, "taken: the hash picks another even high port")
    }

    @Test func rfc6146_3_5_1_1_pairedPoolingKeepsOneAddressPerHost() throws {
        var t = makeStateful()
        var addresses = Set<IPv4Address>()
        for i in 0..<32 {
            let h = IPv6Address(high: host6.high, low: 0x100 &+ UInt64(i))
            for p in 0..<5 {
                _ = run(&t, udp6(h, UInt16(6000 + p)), at: at(1))
                _ = run(&t, tcp6(h, UInt16(7000 + p), server6, 80, [.syn]), at: at(1))
            }
            var mine = Set<IPv4Address>()
            for p in 0..<5 {
                let h16 = bib(t, .udp, h, UInt16(6000 + p))
                mine.insert(try #require(h16).ipv4)
                let h17 = bib(t, .tcp, h, UInt16(7000 + p))
                mine.insert(try #require(h17).ipv4)
            }
            #expect(mine.count == 1, "host \(h) uses one IPv4 address")
            addresses.formUnion(mine)
        }
        #expect(addresses.count >= 3, "hosts are spread over the pool's four addresses")
    }

    @Test func rfc6146_3_5_1_1_poolExhaustedDropsWithICMPv6AddressUnreachable() throws {
        // One address, two usable even ports: the third host with an even port finds none.
        var t = makeStateful {
            $0.pool = [IPv4Prefix("198.51.100.64/32")!]
            $0.udpPorts = PortSet(ranges: [40000...40003])
        }
        #expect(run(&t, udp6(host6, 5000), at: at(1)).verdict == toIPv4)
        #expect(run(&t, udp6(host6b, 5000), at: at(1)).verdict == toIPv4)
        let third = addr6("2001:db8:6::9")
        let packet = udp6(third, 5000)
        let r = run(&t, packet, at: at(1))
        #expect(r.verdict == .drop(.portsExhausted))
        let expected = PacketBuilder.icmp6Error(source: translator6, destination: third, type: ICMPv6Type.destinationUnreachable,
                                                code: ICMPv6UnreachableCode.address, original: packet)
        #expect(r.generated.count == 1)
        #expect(r.generated.first?.bytes == expected)
        #expect(r.generated.first?.verdict == toIPv6)
        // An odd port still has room; the failed host left no state behind.
        #expect(run(&t, udp6(third, 5001), at: at(1)).verdict == toIPv4)
        #expect(t.mapping.hostCount == 3 && t.mapping.bindingCount == 3)
        let c = t.counters6to4
        #expect(c.dropped(.portsExhausted) == 1 && c.icmpErrorsGenerated == 1)
    }

    @Test func rfc6146_3_5_1_1_noICMPv6WithoutAnErrorSource() {
        var t = makeStateful({ $0.pool = [IPv4Prefix("198.51.100.64/32")!]; $0.udpPorts = PortSet(ranges: [40000...40000]) },
                             translator: { $0.ipv6ErrorSource = nil })
        _ = run(&t, udp6(host6, 5000), at: at(1))
        let r = run(&t, udp6(host6b, 5000), at: at(1))
        #expect(r.verdict == .drop(.portsExhausted))
        #expect(r.generated.isEmpty)
    }

    @Test func rfc6888_req8_freedPortWaitsBeforeReuse() throws {
        var t = makeStateful {
            $0.pool = [IPv4Prefix("198.51.100.64/32")!]
            $0.udpPorts = PortSet(ranges: [40000...40001])
        }
        #expect(run(&t, udp6(host6, 5000), at: at(0)).verdict == toIPv4)
        let h18 = bib(t, .udp, host6, 5000)
        #expect(try #require(h18).ipv4Port == 40000)
        _ = expire(&t, at: at(300))
        #expect(t.mapping.bindingCount == 0 && t.mapping.heldPortCount == 1)
        #expect(run(&t, udp6(host6b, 5000), at: at(301)).verdict == .drop(.portsExhausted), "40000 is held for 120 s")
        _ = expire(&t, at: at(420))
        #expect(t.mapping.heldPortCount == 0)
        #expect(run(&t, udp6(host6b, 5000), at: at(421)).verdict == toIPv4)
        let h19 = bib(t, .udp, host6b, 5000)
        #expect(try #require(h19).ipv4Port == 40000)
    }

    // MARK: §3.5.3 ICMP query sessions

    @Test func rfc6146_3_5_3_echoRequestGetsAnIdentifierFromThePoolGolden() throws {
        var t = makeStateful()
        let r = run(&t, PacketBuilder.echo6(source: host6, destination: server6, identifier: 0x1234, sequenceNumber: 7), at: at(1))
        #expect(r.verdict == toIPv4)
        let h20 = bib(t, .icmp, host6, 0x1234)
        let b = try #require(h20)
        var expected = PacketBuilder.echo4(source: b.ipv4, destination: server4, identifier: b.ipv4Port, sequenceNumber: 7)
        expected[8] = 63  // TTL
        expected[4] = 0; expected[5] = 1  // Identification from the translator's counter
        fixIPv4HeaderChecksum(&expected)
        #expect(r.bytes == expected, "\(diff(r.bytes, expected))")
        let h21 = session(t, .icmp, host6, 0x1234, server4, 0)
        let s = try #require(h21)
        #expect(s.timerClass == .icmp && s.remotePort == 0)

        let reply = run(&t, PacketBuilder.echo4(source: server4, destination: b.ipv4, identifier: b.ipv4Port, sequenceNumber: 7,
                                                reply: true), at: at(2))
        #expect(reply.verdict == toIPv6)
        let expected6 = PacketBuilder.echo6(source: server6, destination: host6, identifier: 0x1234, sequenceNumber: 7,
                                            reply: true, hopLimit: 63)
        #expect(reply.bytes == expected6, "\(diff(reply.bytes, expected6))")
    }

    @Test func rfc6146_3_5_3_twoHostsWithTheSameIdentifierGetDifferentOnes() throws {
        var t = makeStateful { $0.pool = [IPv4Prefix("198.51.100.64/32")!] }
        _ = run(&t, PacketBuilder.echo6(source: host6, destination: server6, identifier: 1), at: at(1))
        _ = run(&t, PacketBuilder.echo6(source: host6b, destination: server6, identifier: 1), at: at(1))
        let h22 = bib(t, .icmp, host6, 1)
        let h23 = bib(t, .icmp, host6b, 1)
        let a = try #require(h22), b = try #require(h23)
        #expect(a.ipv4Port != b.ipv4Port)
        let r = run(&t, PacketBuilder.echo4(source: server4, destination: poolFirst, identifier: b.ipv4Port, reply: true), at: at(2))
        #expect(r.verdict == toIPv6)
        #expect(Array(r.bytes[24..<40]) == Array(PacketBuilder.echo6(source: server6, destination: host6b, identifier: 1)[24..<40]),
                "the reply goes to the host that owns the identifier")
    }

    @Test func rfc6146_3_5_3_echoRequestFromIPv4WithoutBIBDropped() {
        var t = makeStateful()
        #expect(run(&t, PacketBuilder.echo4(source: server4, destination: poolFirst, identifier: 9), at: at(1)).verdict == .drop(.noMapping))
    }

    // MARK: §3.4 fragments

    @Test func rfc6146_3_4_laterFragmentsFollowTheFirst() throws {
        var t = makeStateful()
        // A UDP datagram in two IPv6 fragments: the first carries the ports.
        let udp = Array(PacketBuilder.udp6(source: host6, sourcePort: 5000, destination: server6, destinationPort: 53,
                                           payload: payload(40))[40...])
        let h = IPv6Header(nextHeader: IPProtocol.udp, source: host6, destination: server6)
        let first = PacketBuilder.ipv6(h, extensionHeaders: [.fragment(offset: 0, moreFragments: true, identification: 77)],
                                       payload: Array(udp[0..<24]))
        let second = PacketBuilder.ipv6(h, extensionHeaders: [.fragment(offset: 24, moreFragments: false, identification: 77)],
                                        payload: Array(udp[24...]))
        let r1 = run(&t, first, at: at(1))
        #expect(r1.verdict == toIPv4)
        let h24 = bib(t, .udp, host6, 5000)
        let b = try #require(h24)
        let r2 = run(&t, second, at: at(1.5))
        #expect(r2.verdict == toIPv4)
        #expect(Array(r2.bytes[12..<16]) == Array(r1.bytes[12..<16]), "same IPv4 source")
        #expect(IPv4Address(UInt32(r2.bytes[12]) << 24 | UInt32(r2.bytes[13]) << 16 | UInt32(r2.bytes[14]) << 8 | UInt32(r2.bytes[15])) == b.ipv4)
        // A later fragment of a datagram whose first fragment never came.
        let orphan = PacketBuilder.ipv6(h, extensionHeaders: [.fragment(offset: 24, moreFragments: false, identification: 78)],
                                        payload: Array(udp[24...]))
        #expect(run(&t, orphan, at: at(2)).verdict == .drop(.fragmentBeforeFirst))
        // The first fragment's state lasts FRAGMENT_MIN (2 s).
        _ = expire(&t, at: at(3.1))
        #expect(run(&t, second, at: at(3.2)).verdict == .drop(.fragmentBeforeFirst))
    }

    @Test func rfc6146_3_4_ipv4FragmentsFollowTheFirstToTheSameHost() throws {
        var t = makeStateful()
        _ = run(&t, udp6(), at: at(1))
        let h25 = bib(t, .udp, host6, 5000)
        let b = try #require(h25)
        let whole = udp4(server4, 53, b.ipv4, b.ipv4Port, n: 40)
        var h1 = IPv4Header(protocolNumber: IPProtocol.udp, source: server4, destination: b.ipv4, identification: 4321)
        h1.moreFragments = true
        var h2 = IPv4Header(protocolNumber: IPProtocol.udp, source: server4, destination: b.ipv4, identification: 4321)
        h2.fragmentOffset = 24
        let f1 = PacketBuilder.ipv4(h1, payload: Array(whole[20..<44]))
        let f2 = PacketBuilder.ipv4(h2, payload: Array(whole[44...]))
        let r1 = run(&t, f1, at: at(2)), r2 = run(&t, f2, at: at(2))
        #expect(r1.verdict == toIPv6 && r2.verdict == toIPv6)
        #expect(Array(r2.bytes[24..<40]) == Array(r1.bytes[24..<40]), "same IPv6 destination")
        #expect(Array(r2.bytes[24..<40]) == Array(udp6()[8..<24]), "the IPv6 host")
    }
}

/// Recomputes the IPv4 header checksum of a packet edited in a test.
func fixIPv4HeaderChecksum(_ b: inout [UInt8]) {
    b[10] = 0; b[11] = 0
    let hl = Int(b[0] & 0x0F) * 4
    let c = b.withUnsafeBytes { Checksum.compute(UnsafeRawBufferPointer(rebasing: $0[0..<hl])) }
    b[10] = UInt8(c >> 8); b[11] = UInt8(c & 0xFF)
}
