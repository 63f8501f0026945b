import Testing
import NATCore
import NATWire
@testable import NAT64

/// RFC 7915 §4.2/§4.3 (ICMPv4 errors into ICMPv6) and §5.2/§5.3 (ICMPv6 errors into ICMPv4): one golden
/// packet per table row, the packet in error translated too.
@Suite struct RFC7915ICMPErrorTests {
    // MARK: ICMPv4 → ICMPv6

    /// The datagram the IPv6 host sent, as it looked on the IPv4 side, and its IPv6 original.
    static func inner4(_ n: Int = 32, ttl: UInt8 = 30) -> [UInt8] {
        PacketBuilder.udp4(source: host4, sourcePort: 5000, destination: server4, destinationPort: 53, payload: payload(n),
                           ttl: ttl, identification: 0x55, dontFragment: true)
    }
    static func inner6(_ n: Int = 32, hopLimit: UInt8 = 30) -> [UInt8] {
        PacketBuilder.udp6(source: host6, sourcePort: 5000, destination: server6, destinationPort: 53, payload: payload(n),
                           hopLimit: hopLimit)
    }
    static func error4(type: UInt8, code: UInt8, rest: UInt32 = 0, body: [UInt8] = inner4(), ttl: UInt8 = 64) -> [UInt8] {
        PacketBuilder.icmp4(source: router4, destination: host4, header: ICMPv4Header(type: type, code: code, restOfHeader: rest),
                            body: body, ttl: ttl)
    }
    static func error6(type: UInt8, code: UInt8, rest: UInt32 = 0, body: [UInt8] = inner6(), hopLimit: UInt8 = 63) -> [UInt8] {
        PacketBuilder.icmp6(source: router6, destination: host6, header: ICMPv6Header(type: type, code: code, restOfHeader: rest),
                            body: body, hopLimit: hopLimit)
    }

    /// RFC 7915 §4.2 rows: (ICMPv4 type, code) → (ICMPv6 type, code, rest), nil = silently dropped.
    static let rows4to6: [(type: UInt8, code: UInt8, expected: (UInt8, UInt8, UInt32)?)] = [
        (3, 0, (1, 0, 0)), (3, 1, (1, 0, 0)), (3, 2, (4, 1, 6)), (3, 3, (1, 4, 0)),
        (3, 5, (1, 0, 0)), (3, 6, (1, 0, 0)), (3, 7, (1, 0, 0)), (3, 8, (1, 0, 0)),
        (3, 9, (1, 1, 0)), (3, 10, (1, 1, 0)), (3, 11, (1, 0, 0)), (3, 12, (1, 0, 0)),
        (3, 13, (1, 1, 0)), (3, 14, nil), (3, 15, (1, 1, 0)), (3, 16, nil), (3, 200, nil),
        (11, 0, (3, 0, 0)), (11, 1, (3, 1, 0)),
        (12, 1, nil), (12, 3, nil),
        (4, 0, nil), (5, 0, nil), (5, 1, nil), (6, 0, nil),
    ]

    @Test(arguments: 0..<rows4to6.count)
    func rfc7915_4_2_errorTypeAndCodeRow(row: Int) {
        let (type, code, expected) = Self.rows4to6[row]
        var t = makeTranslator()
        let r = run(&t, Self.error4(type: type, code: code))
        guard let (t6, c6, rest6) = expected else {
            #expect(r.verdict == .drop(.untranslatableICMP), "ICMPv4 \(type)/\(code)")
            return
        }
        let want = Self.error6(type: t6, code: c6, rest: rest6)
        #expect(r.verdict == toIPv6, "ICMPv4 \(type)/\(code)")
        #expect(r.bytes == want, "ICMPv4 \(type)/\(code): \(diff(r.bytes, want))")
        let c = t.counters4to6
        #expect(c.icmpErrorsTranslated == 1)
    }

    /// RFC 7915 §4.2 Figure 3, every IPv4 pointer value of the fixed header and one beyond it.
    static let pointers4to6: [(UInt8, UInt32?)] = [
        (0, 0), (1, 1), (2, 4), (3, 4), (4, nil), (5, nil), (6, nil), (7, nil), (8, 7), (9, 6), (10, nil), (11, nil),
        (12, 8), (13, 8), (14, 8), (15, 8), (16, 24), (17, 24), (18, 24), (19, 24), (20, nil), (255, nil),
    ]

    @Test(arguments: 0..<pointers4to6.count, [UInt8(0), 2])
    func rfc7915_4_2_parameterProblemPointerRow(row: Int, code: UInt8) {
        let (p4, p6) = Self.pointers4to6[row]
        var t = makeTranslator()
        let r = run(&t, Self.error4(type: 12, code: code, rest: UInt32(p4) << 24))
        guard let p6 else {
            #expect(r.verdict == .drop(.untranslatableICMP), "pointer \(p4)")
            return
        }
        let want = Self.error6(type: 4, code: 0, rest: p6)
        #expect(r.bytes == want, "pointer \(p4): \(diff(r.bytes, want))")
    }

    /// RFC 7915 §4.2 "Code 4 (Fragmentation Needed and DF was Set)": min(MTU + 20, IPv6 MTU, IPv4 MTU + 20),
    /// with the RFC 1191 plateau below the quoted Total Length when the field is zero, and never below 1280.
    static let fragmentationNeeded: [(mtu: UInt16, innerPayload: Int, ipv6MTU: Int, ipv4MTU: Int, expected: UInt32)] = [
        (1400, 32, 1500, 1500, 1420),
        (1492, 32, 1500, 1500, 1500),
        (1480, 32, 1500, 1500, 1500),
        (1300, 32, 9000, 1400, 1320),
        (1400, 32, 9000, 1300, 1320),
        (576, 32, 1500, 1500, 1280),
        (68, 32, 1500, 1500, 1280),
        (0, 1472, 1500, 1500, 1500),     // Total Length 1500 → plateau 1492 → 1512 → capped by the IPv6 MTU
        (0, 1472, 9000, 9000, 1512),     // the same without the cap
        (0, 8972, 9000, 9000, 8186),     // Total Length 9000 → plateau 8166
        (0, 972, 1500, 1500, 1280),      // Total Length 1000 → plateau 508 → 528 → 1280
        (0, 1464, 9000, 9000, 1280),     // Total Length 1492 → plateau 1006 (strictly less) → 1026 → 1280
    ]

    @Test(arguments: 0..<fragmentationNeeded.count)
    func rfc7915_4_2_fragmentationNeededBecomesPacketTooBig(row: Int) {
        let (mtu, n, v6, v4, expectedRaw) = Self.fragmentationNeeded[row]
        let expected = max(1280, expectedRaw)
        var t = makeTranslator { $0.ipv6MTU = v6; $0.ipv4MTU = v4 }
        // The router quotes the first 548 bytes at most (RFC 1812 §4.3.2.3).
        let in4 = PacketBuilder.icmp4(source: router4, destination: host4,
                                      header: ICMPv4Header(type: 3, code: 4, restOfHeader: UInt32(mtu)),
                                      body: Array(Self.inner4(n).prefix(548)))
        let want = PacketBuilder.icmp6(source: router6, destination: host6,
                                       header: ICMPv6Header(type: ICMPv6Type.packetTooBig, code: 0, restOfHeader: expected),
                                       body: Array(Self.inner6(n).prefix(548 + 20)), hopLimit: 63)
        let r = run(&t, in4)
        #expect(r.bytes == want, "mtu \(mtu) inner \(n): \(diff(r.bytes, want))")
    }

    @Test func rfc7915_4_3_errorTruncatedTo1280() {
        var t = makeTranslator()
        // A router that quotes 1400 bytes: 1428 bytes of IPv4 become 48 + 40 + 1380 > 1280.
        let in4 = PacketBuilder.icmp4(source: router4, destination: host4, header: ICMPv4Header(type: 11, code: 0),
                                      body: Array(Self.inner4(1472).prefix(1400)))
        let want = PacketBuilder.icmp6Error(source: router6, destination: host6, type: 3, code: 0, original: Self.inner6(1472),
                                            quote: 1280 - 48, hopLimit: 63)
        let r = run(&t, in4)
        #expect(r.bytes.count == 1280)
        #expect(r.bytes == want, "\(diff(r.bytes, want))")
    }

    @Test func rfc7915_4_3_innerEchoTranslated() {
        var t = makeTranslator()
        let echo4 = PacketBuilder.icmp4(source: host4, destination: server4,
                                        header: ICMPv4Header(type: ICMPv4Type.echoRequest, identifier: 0x99, sequenceNumber: 4),
                                        body: payload(24), ttl: 1)
        let echo6 = PacketBuilder.echo6(source: host6, destination: server6, identifier: 0x99, sequenceNumber: 4,
                                        payload: payload(24), hopLimit: 1)
        let r = run(&t, Self.error4(type: 11, code: 0, body: echo4))
        let want = Self.error6(type: 3, code: 0, body: echo6)
        #expect(r.bytes == want, "\(diff(r.bytes, want))")
    }

    @Test func rfc7915_4_3_innerTCPTranslated() {
        var t = makeTranslator()
        let h = TCPHeader(sourcePort: 40000, destinationPort: 443, flags: [.syn], sequenceNumber: 99)
        let tcp4 = PacketBuilder.tcp4(source: host4, destination: server4, header: h, ttl: 9)
        let tcp6 = PacketBuilder.tcp6(source: host6, destination: server6, header: h, hopLimit: 9)
        let r = run(&t, Self.error4(type: 3, code: 3, body: tcp4))
        #expect(r.bytes == Self.error6(type: 1, code: 4, body: tcp6))
    }

    @Test func rfc7915_4_3_innerFragmentGetsFragmentHeader() {
        var t = makeTranslator()
        var h = IPv4Header(protocolNumber: IPProtocol.udp, source: host4, destination: server4, ttl: 30, identification: 0x1234)
        h.moreFragments = true
        let udp = Array(Self.inner4(64)[20...])
        let frag4 = PacketBuilder.ipv4(h, payload: Array(udp[0..<40]))
        let whole6 = Array(Self.inner6(64)[40...])
        let frag6 = PacketBuilder.ipv6(IPv6Header(nextHeader: IPProtocol.udp, source: host6, destination: server6, hopLimit: 30),
                                       extensionHeaders: [.fragment(offset: 0, moreFragments: true, identification: 0x1234)],
                                       payload: Array(whole6[0..<40]))
        let r = run(&t, Self.error4(type: 11, code: 1, body: frag4))
        let want = Self.error6(type: 3, code: 1, body: frag6)
        #expect(r.bytes == want, "\(diff(r.bytes, want))")
    }

    @Test func rfc7915_4_3_errorAboutErrorDropped() {
        var t = makeTranslator()
        let inner = PacketBuilder.icmp4(source: host4, destination: server4, header: ICMPv4Header(type: 3, code: 3),
                                        body: Self.inner4())
        #expect(run(&t, Self.error4(type: 3, code: 1, body: inner)).verdict == .drop(.icmpErrorAboutICMPError))
    }

    @Test func rfc7915_4_3_badChecksumsDropped() {
        var t = makeTranslator()
        var bad = Self.error4(type: 3, code: 1)
        bad[22] ^= 1
        #expect(run(&t, bad).verdict == .drop(.badICMPChecksum))
        var inner = Self.inner4()
        inner[10] ^= 1
        #expect(run(&t, Self.error4(type: 3, code: 1, body: inner)).verdict == .drop(.badEmbeddedPacket))
        #expect(run(&t, Self.error4(type: 3, code: 1, body: Array(inner.prefix(12)))).verdict == .drop(.malformedICMPError))
    }

    @Test func rfc7915_4_1_errorSourceTranslatedEvenWhenNotGlobal() {
        // The WKP with the RFC 6052 §3.1 check, the IPv4 server reachable by an EAM row: the router's
        // documentation address is still translated for troubleshooting.
        var t = makeTranslator(siit: {
            $0.prefix = try! NAT64Prefix("64:ff9b::/96")
            $0.explicitMappings.append(try! ExplicitAddressMapping(ipv4: "192.0.2.0/24", ipv6: "2001:db8:4::/120"))
        })
        let in4 = Self.error4(type: 3, code: 1)
        let inner6 = PacketBuilder.udp6(source: host6, sourcePort: 5000, destination: IPv6Address("2001:db8:4::21")!,
                                        destinationPort: 53, payload: payload(32), hopLimit: 30)
        let want = PacketBuilder.icmp6(source: router6, destination: host6, header: ICMPv6Header(type: 1, code: 0),
                                       body: inner6, hopLimit: 63)
        let r = run(&t, in4)
        #expect(r.bytes == want, "\(diff(r.bytes, want))")
        // An ordinary packet from the same source is refused.
        let udp = PacketBuilder.udp4(source: router4, sourcePort: 1, destination: host4, destinationPort: 2)
        #expect(run(&t, udp).verdict == .drop(.nonGlobalIPv4Address))
    }

    @Test func rfc7915_5_1_1_icmpv6ErrorAsAtomicFragmentKeepsItsIdentification() {
        // The same Destination Unreachable twice: plain, and behind an atomic Fragment header
        // (offset 0, M clear, identification 0x0A0B0C0D). The second keeps 0x0C0D as its IPv4
        // Identification, DF clear; otherwise the same bytes.
        var t = makeTranslator()
        let plain = Self.error6to4(type: 1, code: 4)
        let icmp = Array(plain[40...])
        let h6 = IPv6Header(nextHeader: IPProtocol.icmpv6, source: Self.v6Router, destination: server6)
        let atomic = PacketBuilder.ipv6(h6, extensionHeaders: [.fragment(offset: 0, moreFragments: false, identification: 0x0A0B_0C0D)],
                                        payload: icmp)
        let r = run(&t, atomic)
        #expect(r.verdict.isForwarded, "\(r.verdict)")
        let want = Self.expected4(type: 3, code: 3, id: 0x0C0D)
        #expect(r.bytes == want, "\(diff(r.bytes, want))")
    }

    @Test func rfc4884_4_1_lengthAttributeBelow128IsReadAsNoExtension() {
        var t = makeTranslator()
        // Time Exceeded with a length attribute of 15 words (60 bytes of original datagram) and an
        // extension after it: RFC 4884 asks for at least 128 bytes of datagram before an extension, so
        // the attribute is not valid. As Jool does, the error is translated as if it carried no
        // extension: the same bytes as the same error with a zero length attribute.
        let original = Self.inner4(40)   // 68 bytes
        var body = Array(original.prefix(60))
        body += [0x20, 0, 0, 0, 0, 8, 1, 1, 1, 2, 3, 4]
        let in4 = PacketBuilder.icmp4(source: router4, destination: host4,
                                      header: ICMPv4Header(type: 11, code: 0, restOfHeader: 15 << 16), body: body)
        let plain = PacketBuilder.icmp4(source: router4, destination: host4,
                                        header: ICMPv4Header(type: 11, code: 0, restOfHeader: 0), body: body)
        let r = run(&t, in4)
        #expect(r.verdict.isForwarded, "\(r.verdict)")
        #expect(r.bytes == run(&t, plain).bytes)
    }

    // MARK: ICMPv6 → ICMPv4

    /// The datagram the IPv4 server sent, as the IPv6 host got it, and its IPv4 original.
    static func back6(_ n: Int = 32, hopLimit: UInt8 = 30) -> [UInt8] {
        PacketBuilder.udp6(source: server6, sourcePort: 53, destination: host6, destinationPort: 5000, payload: payload(n),
                           hopLimit: hopLimit)
    }
    static func back4(_ n: Int = 32, ttl: UInt8 = 30) -> [UInt8] {
        PacketBuilder.udp4(source: server4, sourcePort: 53, destination: host4, destinationPort: 5000, payload: payload(n),
                           ttl: ttl, identification: 0, dontFragment: 28 + n > 1260)
    }
    static let v6Router = IPv6Address("2001:db8:6::1")!
    static let v6Router4 = IPv4Address("198.51.100.1")!
    static func error6to4(type: UInt8, code: UInt8, rest: UInt32 = 0, body: [UInt8] = back6(), from: IPv6Address = v6Router) -> [UInt8] {
        PacketBuilder.icmp6(source: from, destination: server6, header: ICMPv6Header(type: type, code: code, restOfHeader: rest),
                            body: body)
    }
    static func expected4(type: UInt8, code: UInt8, rest: UInt32 = 0, body: [UInt8] = back4(), from: IPv4Address = v6Router4,
                          id: UInt16 = 1) -> [UInt8] {
        PacketBuilder.icmp4(source: from, destination: server4, header: ICMPv4Header(type: type, code: code, restOfHeader: rest),
                            body: body, ttl: 63, identification: id)
    }

    /// RFC 7915 §5.2 rows: (ICMPv6 type, code) → (ICMPv4 type, code), nil = silently dropped.
    static let rows6to4: [(type: UInt8, code: UInt8, expected: (UInt8, UInt8)?)] = [
        (1, 0, (3, 1)), (1, 1, (3, 10)), (1, 2, (3, 1)), (1, 3, (3, 1)), (1, 4, (3, 3)),
        (1, 5, nil), (1, 6, nil), (1, 7, nil),
        (3, 0, (11, 0)), (3, 1, (11, 1)),
        (4, 1, (3, 2)), (4, 2, nil), (4, 3, nil),
        (0, 0, nil), (5, 0, nil), (100, 0, nil), (127, 0, nil),
    ]

    @Test(arguments: 0..<rows6to4.count)
    func rfc7915_5_2_errorTypeAndCodeRow(row: Int) {
        let (type, code, expected) = Self.rows6to4[row]
        var t = makeTranslator()
        let r = run(&t, Self.error6to4(type: type, code: code))
        guard let (t4, c4) = expected else {
            #expect(r.verdict == .drop(.untranslatableICMP), "ICMPv6 \(type)/\(code)")
            return
        }
        let want = Self.expected4(type: t4, code: c4)
        #expect(r.verdict == toIPv4, "ICMPv6 \(type)/\(code)")
        #expect(r.bytes == want, "ICMPv6 \(type)/\(code): \(diff(r.bytes, want))")
        let c = t.counters6to4
        #expect(c.icmpErrorsTranslated == 1)
    }

    /// RFC 7915 §5.2 Figure 6, every IPv6 pointer value of the fixed header and some beyond it.
    static let pointers6to4: [(UInt32, UInt8?)] = [
        (0, 0), (1, 1), (2, nil), (3, nil), (4, 2), (5, 2), (6, 9), (7, 8),
        (8, 12), (15, 12), (23, 12), (24, 16), (31, 16), (39, 16), (40, nil), (41, nil), (1000, nil), (0xFFFF_FFFF, nil),
    ]

    @Test(arguments: 0..<pointers6to4.count)
    func rfc7915_5_2_parameterProblemPointerRow(row: Int) {
        let (p6, p4) = Self.pointers6to4[row]
        var t = makeTranslator()
        let r = run(&t, Self.error6to4(type: 4, code: 0, rest: p6))
        guard let p4 else {
            #expect(r.verdict == .drop(.untranslatableICMP), "pointer \(p6)")
            return
        }
        let want = Self.expected4(type: 12, code: 0, rest: UInt32(p4) << 24)
        #expect(r.bytes == want, "pointer \(p6): \(diff(r.bytes, want))")
    }

    /// RFC 7915 §5.2 "Packet Too Big": min(MTU − 20, IPv4 MTU, IPv6 MTU − 20).
    static let packetTooBig: [(mtu: UInt32, ipv4MTU: Int, ipv6MTU: Int, expected: UInt32)] = [
        (1500, 1500, 1500, 1480), (1280, 1500, 1500, 1260), (1400, 1300, 1500, 1300), (9000, 9000, 1500, 1480),
        (9000, 9000, 9000, 8980), (1300, 1500, 1400, 1280),
    ]

    @Test(arguments: 0..<packetTooBig.count)
    func rfc7915_5_2_packetTooBigBecomesFragmentationNeeded(row: Int) {
        let (mtu, v4, v6, expected) = Self.packetTooBig[row]
        var t = makeTranslator { $0.ipv4MTU = v4; $0.ipv6MTU = v6 }
        let r = run(&t, Self.error6to4(type: 2, code: 0, rest: mtu))
        let want = Self.expected4(type: 3, code: 4, rest: expected)
        #expect(r.bytes == want, "mtu \(mtu): \(diff(r.bytes, want))")
    }

    @Test func rfc7915_5_2_packetTooBigAboutAFragmentCountsTheFragmentHeader() {
        var t = makeTranslator()
        let udp6 = Array(Self.back6(64)[40...])
        let frag6 = PacketBuilder.ipv6(IPv6Header(nextHeader: IPProtocol.udp, source: server6, destination: host6, hopLimit: 30),
                                       extensionHeaders: [.fragment(offset: 0, moreFragments: true, identification: 0x0001_4321)],
                                       payload: Array(udp6[0..<48]))
        var h = IPv4Header(protocolNumber: IPProtocol.udp, source: server4, destination: host4, ttl: 30, identification: 0x4321)
        h.moreFragments = true
        let udp4 = Array(Self.back4(64)[20...])
        let frag4 = PacketBuilder.ipv4(h, payload: Array(udp4[0..<48]))
        let r = run(&t, Self.error6to4(type: 2, code: 0, rest: 1500, body: frag6))
        let want = Self.expected4(type: 3, code: 4, rest: 1472, body: frag4)
        #expect(r.bytes == want, "\(diff(r.bytes, want))")
    }

    @Test func rfc7915_5_3_errorTruncatedTo576() {
        var t = makeTranslator()
        let in6 = PacketBuilder.icmp6Error(source: Self.v6Router, destination: server6, type: 1, code: 4,
                                           original: Self.back6(1400))
        let want = PacketBuilder.icmp4(source: Self.v6Router4, destination: server4, header: ICMPv4Header(type: 3, code: 3),
                                       body: Array(Self.back4(1400).prefix(548)), ttl: 63, identification: 1)
        let r = run(&t, in6)
        #expect(r.bytes.count == 576)
        #expect(r.bytes == want, "\(diff(r.bytes, want))")
    }

    @Test func rfc7915_5_3_innerEchoTranslated() {
        var t = makeTranslator()
        let echo6 = PacketBuilder.echo6(source: server6, destination: host6, identifier: 0x4444, sequenceNumber: 2,
                                        payload: payload(16), hopLimit: 3)
        let echo4 = PacketBuilder.icmp4(source: server4, destination: host4,
                                        header: ICMPv4Header(type: ICMPv4Type.echoRequest, identifier: 0x4444, sequenceNumber: 2),
                                        body: payload(16), ttl: 3, identification: 0)
        let r = run(&t, Self.error6to4(type: 3, code: 0, body: echo6))
        let want = Self.expected4(type: 11, code: 0, body: echo4)
        #expect(r.bytes == want, "\(diff(r.bytes, want))")
    }

    @Test func rfc6791_untranslatableErrorSourceUsesThePool() {
        var t = makeTranslator()
        let r = run(&t, Self.error6to4(type: 1, code: 0, from: router6Untranslatable))
        let want = Self.expected4(type: 3, code: 1, from: rfc6791Address)
        #expect(r.bytes == want, "\(diff(r.bytes, want))")
        // Not for ordinary packets.
        let udp = PacketBuilder.udp6(source: router6Untranslatable, sourcePort: 1, destination: server6, destinationPort: 2)
        #expect(run(&t, udp).verdict == .drop(.noMapping))
    }

    /// RFC 6791 §4: without a pool, the translator's own IPv4 address (the one its own errors come from);
    /// without that either, the error cannot be translated.
    @Test func rfc6791_4_withoutAPoolTheTranslatorsAddressIsUsed() {
        var t = makeTranslator(siit: { $0.rfc6791Pool = [] })
        let r = run(&t, Self.error6to4(type: 1, code: 0, from: router6Untranslatable))
        let want = Self.expected4(type: 3, code: 1, from: translator4)
        #expect(r.bytes == want, "\(diff(r.bytes, want))")
        var none = makeTranslator({ $0.ipv4ErrorSource = nil }, siit: { $0.rfc6791Pool = [] })
        #expect(run(&none, Self.error6to4(type: 1, code: 0, from: router6Untranslatable)).verdict == .drop(.noMapping))
    }

    @Test func rfc7915_5_3_errorAboutErrorDropped() {
        var t = makeTranslator()
        let inner = PacketBuilder.icmp6Error(source: server6, destination: host6, type: 1, code: 4, original: Self.back6())
        #expect(run(&t, Self.error6to4(type: 1, code: 0, body: inner)).verdict == .drop(.icmpErrorAboutICMPError))
    }

    @Test func rfc4443_2_3_badICMPv6ChecksumDropped() {
        var t = makeTranslator()
        var bad = Self.error6to4(type: 1, code: 0)
        bad[44] ^= 0x10
        #expect(run(&t, bad).verdict == .drop(.badICMPChecksum))
    }

    @Test func rfc7915_5_3_malformedInnerPacketDropped() {
        var t = makeTranslator()
        #expect(run(&t, Self.error6to4(type: 1, code: 0, body: Array(Self.back6().prefix(30)))).verdict == .drop(.malformedICMPError))
        var inner = Self.back6()
        inner[6] = IPProtocol.ipv6DestinationOptions   // a header that runs past the quote
        inner[41] = 200
        #expect(run(&t, Self.error6to4(type: 1, code: 0, body: inner)).verdict == .drop(.badEmbeddedPacket))
    }

    @Test func rfc4443_2_4_noErrorAboutAnExpiringError() {
        var t = makeTranslator()
        let in6 = PacketBuilder.icmp6(source: Self.v6Router, destination: server6, header: ICMPv6Header(type: 1, code: 0),
                                      body: Self.back6(), hopLimit: 1)
        let r = run(&t, in6)
        #expect(r.verdict == .drop(.ttlExceeded))
        #expect(r.generated.isEmpty)
    }
}
