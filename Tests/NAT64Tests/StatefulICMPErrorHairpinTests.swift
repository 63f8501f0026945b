import Testing
import NATCore
import NATWire
@testable import NAT64

/// RFC 6146 §3.4/§3.5/§3.6: ICMP errors are matched by the packet inside them, looked up in reverse,
/// and never create or refresh state. RFC 6146 §3.8: hairpinning between IPv6 hosts through the pool.
@Suite struct StatefulICMPErrorHairpinTests {
    /// `b` with its IPv4 TTL and Identification replaced (header checksum recomputed).
    func ipv4(_ b: [UInt8], ttl: UInt8, id: UInt16) -> [UInt8] {
        var x = b
        x[8] = ttl
        x[4] = UInt8(id >> 8); x[5] = UInt8(id & 0xFF)
        fixIPv4HeaderChecksum(&x)
        return x
    }

    @Test func rfc6146_3_4_icmpv4ErrorAboutOutboundUDPReachesTheIPv6HostGolden() throws {
        var t = makeStateful()
        _ = run(&t, udp6(), at: at(1))
        let h1 = bib(t, .udp, host6, 5000)
        let b = try #require(h1)
        let sent = udp4(b.ipv4, b.ipv4Port, server4, 53, ttl: 63, id: 1)
        let error4 = PacketBuilder.icmp4Error(source: router4, destination: b.ipv4, type: ICMPv4Type.timeExceeded, code: 0,
                                              original: sent)
        let r = run(&t, error4, at: at(2))
        #expect(r.verdict == toIPv6)
        let expected = PacketBuilder.icmp6Error(source: router6, destination: host6, type: ICMPv6Type.timeExceeded, code: 0,
                                                original: udp6(hopLimit: 63), hopLimit: 63)
        #expect(r.bytes == expected, "\(diff(r.bytes, expected))")
        let c = t.counters4to6
        #expect(c.icmpErrorsTranslated == 1)
    }

    @Test func rfc6146_3_4_icmpv6ErrorAboutInboundUDPReachesTheIPv4HostGolden() throws {
        var t = makeStateful()
        _ = run(&t, udp6(), at: at(1))
        let h2 = bib(t, .udp, host6, 5000)
        let b = try #require(h2)
        let delivered = run(&t, udp4(server4, 53, b.ipv4, b.ipv4Port), at: at(2)).bytes
        let error6 = PacketBuilder.icmp6Error(source: host6, destination: server6, type: ICMPv6Type.destinationUnreachable,
                                              code: ICMPv6UnreachableCode.port, original: delivered)
        let r = run(&t, error6, at: at(3))
        #expect(r.verdict == toIPv4)
        let inner = udp4(server4, 53, b.ipv4, b.ipv4Port, ttl: 63, id: 0)
        let expected = ipv4(PacketBuilder.icmp4Error(source: b.ipv4, destination: server4, type: ICMPv4Type.destinationUnreachable,
                                                     code: ICMPv4UnreachableCode.port, original: inner), ttl: 63, id: 2)
        #expect(r.bytes == expected, "\(diff(r.bytes, expected))")
    }

    @Test func rfc6146_3_4_icmpv4ErrorAboutEchoGolden() throws {
        var t = makeStateful()
        _ = run(&t, PacketBuilder.echo6(source: host6, destination: server6, identifier: 0x99), at: at(1))
        let h3 = bib(t, .icmp, host6, 0x99)
        let b = try #require(h3)
        let sent = ipv4(PacketBuilder.echo4(source: b.ipv4, destination: server4, identifier: b.ipv4Port), ttl: 63, id: 1)
        let r = run(&t, PacketBuilder.icmp4Error(source: router4, destination: b.ipv4, type: ICMPv4Type.timeExceeded, code: 0,
                                                 original: sent), at: at(2))
        #expect(r.verdict == toIPv6)
        let expected = PacketBuilder.icmp6Error(
            source: router6, destination: host6, type: ICMPv6Type.timeExceeded, code: 0,
            original: PacketBuilder.echo6(source: host6, destination: server6, identifier: 0x99, hopLimit: 63), hopLimit: 63)
        #expect(r.bytes == expected, "\(diff(r.bytes, expected))")
    }

    @Test func rfc6146_3_4_icmpv4ErrorAboutTCPGolden() throws {
        var t = makeStateful()
        _ = run(&t, tcp6([.syn]), at: at(1))
        let h4 = bib(t, .tcp, host6, 40000)
        let b = try #require(h4)
        let sent = tcp4(b.ipv4, b.ipv4Port, server4, 80, [.syn], ttl: 63, id: 1)
        let r = run(&t, PacketBuilder.icmp4Error(source: router4, destination: b.ipv4, type: ICMPv4Type.destinationUnreachable,
                                                 code: 1, original: sent), at: at(2))
        #expect(r.verdict == toIPv6)
        let expected = PacketBuilder.icmp6Error(source: router6, destination: host6, type: ICMPv6Type.destinationUnreachable,
                                                code: ICMPv6UnreachableCode.noRoute, original: tcp6([.syn], hopLimit: 63), hopLimit: 63)
        #expect(r.bytes == expected, "\(diff(r.bytes, expected))")
        let h5 = session(t, .tcp, host6, 40000, server4, 80)
        #expect(h5?.tcpState == .outboundInit, "an error is not a segment")
    }

    @Test func rfc6146_3_5_icmpErrorsNeverCreateState() {
        var t = makeStateful()
        let sent = udp4(poolFirst, 40000, server4, 53, ttl: 63)
        let r = run(&t, PacketBuilder.icmp4Error(source: router4, destination: poolFirst, type: ICMPv4Type.timeExceeded, code: 0,
                                                 original: sent), at: at(1))
        #expect(r.verdict == .drop(.noSessionForICMPError))
        let delivered = PacketBuilder.udp6(source: server6, sourcePort: 53, destination: host6, destinationPort: 5000, hopLimit: 63)
        let r6 = run(&t, PacketBuilder.icmp6Error(source: host6, destination: server6, type: 1, code: 4, original: delivered), at: at(1))
        #expect(r6.verdict == .drop(.noSessionForICMPError))
        #expect(t.mapping.sessionCount == 0 && t.mapping.bindingCount == 0 && t.mapping.hostCount == 0)
    }

    @Test func rfc6146_3_5_icmpErrorsDoNotRefreshSessions() throws {
        var t = makeStateful()
        _ = run(&t, udp6(), at: at(0))
        let h6 = bib(t, .udp, host6, 5000)
        let b = try #require(h6)
        let sent = udp4(b.ipv4, b.ipv4Port, server4, 53, ttl: 63, id: 1)
        #expect(run(&t, PacketBuilder.icmp4Error(source: router4, destination: b.ipv4, type: 11, code: 0, original: sent),
                    at: at(200)).verdict == toIPv6)
        let h7 = session(t, .udp, host6, 5000, server4, 53, at: at(200))
        #expect(h7?.idleSeconds == 200)
        _ = expire(&t, at: at(300))
        #expect(t.mapping.sessionCount == 0)
    }

    // MARK: §3.8 hairpinning

    let pool6 = addr6("64:ff9b::198.51.100.64")

    func hairpinTranslator() -> NAPT64Translator {
        makeStateful {
            $0.staticBindings = [NAT64StaticBinding(proto: .udp, ipv6: peer6, ipv6Port: 7000, ipv4: poolFirst, ipv4Port: 7000)]
        }
    }

    @Test func rfc6146_3_8_hairpinnedUDPBetweenTwoIPv6HostsGolden() throws {
        var t = hairpinTranslator()
        let r = run(&t, udp6(host6, 5000, pool6, 7000), at: at(1))
        #expect(r.verdict == toIPv6)
        let h8 = bib(t, .udp, host6, 5000)
        let b = try #require(h8)
        let senderAs6 = NAT64Prefix(unchecked: NAT64Prefix.wellKnownPrefix, restrictsToGlobalIPv4: false).embedUnchecked(b.ipv4)
        let expected = PacketBuilder.udp6(source: senderAs6, sourcePort: b.ipv4Port, destination: peer6, destinationPort: 7000,
                                          payload: payload(20), hopLimit: 63)
        #expect(r.bytes == expected, "\(diff(r.bytes, expected))")
        let c = t.counters
        #expect(c.hairpinnedPackets == 1)
        // The answer goes back to the first host, from the address it wrote to.
        let back = run(&t, PacketBuilder.udp6(source: peer6, sourcePort: 7000, destination: senderAs6,
                                              destinationPort: b.ipv4Port, payload: payload(9)), at: at(2))
        #expect(back.verdict == toIPv6)
        let expectedBack = PacketBuilder.udp6(source: pool6, sourcePort: 7000, destination: host6, destinationPort: 5000,
                                              payload: payload(9), hopLimit: 63)
        #expect(back.bytes == expectedBack, "\(diff(back.bytes, expectedBack))")
        #expect(t.mapping.sessionCount == 2, "one session per IPv6 host, each seeing the other's IPv4 transport address")
    }

    @Test func rfc6146_3_8_hairpinnedICMPErrorGoesBackToTheSenderGolden() throws {
        var t = hairpinTranslator()
        let delivered = run(&t, udp6(host6, 5000, pool6, 7000), at: at(1)).bytes
        let r = run(&t, PacketBuilder.icmp6Error(source: peer6, destination: Array(delivered[8..<24]).ipv6,
                                                 type: ICMPv6Type.destinationUnreachable, code: ICMPv6UnreachableCode.port,
                                                 original: delivered), at: at(2))
        #expect(r.verdict == toIPv6)
        let expected = PacketBuilder.icmp6Error(source: pool6, destination: host6, type: ICMPv6Type.destinationUnreachable,
                                                code: ICMPv6UnreachableCode.port, original: udp6(host6, 5000, pool6, 7000, hopLimit: 63),
                                                hopLimit: 63)
        #expect(r.bytes == expected, "\(diff(r.bytes, expected))")
    }

    @Test func rfc6146_3_8_hairpinnedSYNToADynamicBIBEntry() throws {
        var t = makeStateful()
        _ = run(&t, tcp6(host6b, 41000, server6, 80, [.syn]), at: at(1))
        let h9 = bib(t, .tcp, host6b, 41000)
        let b = try #require(h9)
        let to = NAT64Prefix(unchecked: NAT64Prefix.wellKnownPrefix, restrictsToGlobalIPv4: false).embedUnchecked(b.ipv4)
        let r = run(&t, tcp6(host6, 40000, to, b.ipv4Port, [.syn]), at: at(2))
        #expect(r.verdict == toIPv6)
        #expect(Array(r.bytes[24..<40]) == Array(tcp6(host6b, 1, host6, 2, [.syn])[8..<24]), "delivered to the BIB entry's host")
        let h10 = t.mapping.sessions(now: at(2))
        let s = try #require(h10.first { $0.ipv6 == host6b && $0.tcpState == .inboundInit })
        #expect(s.ipv6Port == 41000)
    }

    /// Issue 11: RFC 6146 §3.5.2.2 with §3.8: a hairpinned IPv6 SYN to a pool transport address with no
    /// BIB entry is an unsolicited IPv4 SYN like any other: kept for TCP_INCOMING_SYN (6 s), then answered
    /// with Port Unreachable, which goes back to the IPv6 host translated (ICMPv6 1/4 from the address it
    /// wrote to, quoting its own SYN) instead of being dropped silently.
    @Test func rfc6146_3_5_2_2_and_3_8_hairpinnedUnsolicitedSYNIsKeptThenAnsweredGolden() throws {
        var t = makeStateful()
        let r = run(&t, tcp6(host6, 40000, pool6, 9999, [.syn]), at: at(1))
        #expect(r.verdict == .held)
        #expect(t.mapping.heldSYNCount == 1)
        #expect(expire(&t, at: at(6.9)).isEmpty, "kept for 6 s")
        let out = expire(&t, at: at(7.1))
        #expect(t.mapping.heldSYNCount == 0)
        #expect(out.count == 1)
        let e = try #require(out.first)
        #expect(e.verdict == toIPv6)
        // The quoted SYN is the host's own (its address and port, one hop less), so its stack finds the socket.
        let quoted = tcp6(host6, 40000, pool6, 9999, [.syn], hopLimit: 63)
        let expected = PacketBuilder.icmp6Error(source: pool6, destination: host6, type: ICMPv6Type.destinationUnreachable,
                                                code: ICMPv6UnreachableCode.port, original: quoted)
        #expect(e.bytes == expected, "\(diff(e.bytes, expected))")
    }

    /// With `unsolicited_syn = drop` the kept hairpinned SYN ends silently, as an IPv4 one does.
    @Test func rfc6146_3_5_2_2_hairpinnedUnsolicitedSYNDropPolicy() {
        var t = makeStateful { $0.unsolicitedSYN = .drop }
        #expect(run(&t, tcp6(host6, 40000, pool6, 9999, [.syn]), at: at(1)).verdict == .held)
        #expect(expire(&t, at: at(7.1)).isEmpty)
        #expect(t.mapping.heldSYNCount == 0)
    }

    @Test func rfc6146_3_8_hairpinningCanBeTurnedOff() {
        var t = makeStateful {
            $0.hairpinning = false
            $0.staticBindings = [NAT64StaticBinding(proto: .udp, ipv6: peer6, ipv6Port: 7000, ipv4: poolFirst, ipv4Port: 7000)]
        }
        #expect(run(&t, udp6(host6, 5000, pool6, 7000), at: at(1)).verdict == toIPv4)
    }
}

extension Array where Element == UInt8 {
    /// The 16 bytes as an IPv6 address.
    var ipv6: IPv6Address {
        var h: UInt64 = 0, l: UInt64 = 0
        for i in 0..<8 { h = h << 8 | UInt64(self[i]) }
        for i in 8..<16 { l = l << 8 | UInt64(self[i]) }
        return IPv6Address(high: h, low: l)
    }
}
