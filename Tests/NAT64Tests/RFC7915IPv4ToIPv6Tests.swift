import Testing
import NATCore
import NATWire
@testable import NAT64

/// RFC 7915 §4, §4.1 and §4.5: IPv4 headers into IPv6 headers.
@Suite struct RFC7915IPv4ToIPv6Tests {
    func udp4(_ n: Int = 20, ttl: UInt8 = 64, id: UInt16 = 0x4242, df: Bool = false, checksum: Bool = true) -> [UInt8] {
        PacketBuilder.udp4(source: server4, sourcePort: 53, destination: host4, destinationPort: 5000, payload: payload(n),
                           ttl: ttl, identification: id, dontFragment: df, checksum: checksum)
    }

    func udp6(_ n: Int = 20, hopLimit: UInt8 = 63, trafficClass: UInt8 = 0) -> [UInt8] {
        PacketBuilder.udp6(source: server6, sourcePort: 53, destination: host6, destinationPort: 5000, payload: payload(n),
                           hopLimit: hopLimit, trafficClass: trafficClass)
    }

    /// An IPv4 header with the fields a test sets, over `body`.
    func ipv4(_ body: [UInt8], proto: UInt8 = IPProtocol.udp, ttl: UInt8 = 64, id: UInt16 = 0x4242, df: Bool = false,
              mf: Bool = false, offset: Int = 0, tos: UInt8 = 0, options: [UInt8] = []) -> [UInt8] {
        var h = IPv4Header(protocolNumber: proto, source: server4, destination: host4, ttl: ttl, identification: id,
                           dontFragment: df, tos: tos)
        h.moreFragments = mf
        h.fragmentOffset = offset
        h.options = options
        return PacketBuilder.ipv4(h, payload: body)
    }

    @Test func rfc7915_4_1_udpHeaderTranslated() {
        var t = makeTranslator()
        let r = run(&t, udp4())
        #expect(r.verdict == toIPv6)
        #expect(r.bytes == udp6(), "\(diff(r.bytes, udp6()))")
        let c = t.counters4to6
        #expect(c.inboundPackets == 1)
    }

    @Test func rfc7915_4_1_DFDoesNotAddAFragmentHeader() {
        var t = makeTranslator()
        #expect(run(&t, udp4(df: true)).bytes == udp6())
        #expect(run(&t, udp4(df: false)).bytes == udp6())
    }

    @Test func rfc7915_4_1_ttlBecomesHopLimitMinusOne() {
        var t = makeTranslator()
        #expect(run(&t, udp4(ttl: 2)).bytes == udp6(hopLimit: 1))
    }

    @Test func rfc7915_4_1_ttlExpiryGivesTimeExceeded() {
        var t = makeTranslator()
        let in4 = udp4(ttl: 1)
        let r = run(&t, in4)
        #expect(r.verdict == .drop(.ttlExceeded))
        let expected = PacketBuilder.icmp4(source: translator4, destination: server4,
                                           header: ICMPv4Header(type: ICMPv4Type.timeExceeded, code: 0),
                                           body: in4, ttl: 64, identification: 1)
        #expect(r.generated.map(\.bytes) == [expected])
        #expect(r.generated.map(\.verdict) == [toIPv4])
    }

    @Test func rfc7915_4_1_tosCopiedToTrafficClass() {
        var t = makeTranslator()
        let in4 = ipv4(Array(udp4()[20...]), tos: 0x2E)
        #expect(run(&t, in4).bytes == udp6(trafficClass: 0x2E))
    }

    @Test func rfc7915_4_1_tosCanBeIgnored() {
        var t = makeTranslator { $0.trafficClassOverride = 0 }
        let in4 = ipv4(Array(udp4()[20...]), tos: 0x2E)
        #expect(run(&t, in4).bytes == udp6())
    }

    @Test func rfc7915_4_1_optionsIgnored() {
        var t = makeTranslator()
        // Record Route, Timestamp, and an expired Loose Source Route (pointer past its length).
        let options: [UInt8] = [7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0,
                                131, 7, 8, 198, 51, 100, 1,
                                1, 1]
        let in4 = ipv4(Array(udp4()[20...]), options: options)
        let r = run(&t, in4)
        #expect(r.verdict == toIPv6)
        #expect(r.bytes == udp6(), "\(diff(r.bytes, udp6()))")
    }

    @Test(arguments: [IPv4Option.looseSourceRoute, IPv4Option.strictSourceRoute])
    func rfc7915_4_1_unexpiredSourceRouteRefused(type: UInt8) {
        var t = makeTranslator()
        let in4 = ipv4(Array(udp4()[20...]), options: [type, 11, 4, 198, 51, 100, 1, 198, 51, 100, 2, 0])
        let r = run(&t, in4)
        #expect(r.verdict == .drop(.sourceRouteRefused))
        let expected = PacketBuilder.icmp4(source: translator4, destination: server4,
                                           header: ICMPv4Header(type: ICMPv4Type.destinationUnreachable,
                                                                code: ICMPv4UnreachableCode.sourceRouteFailed),
                                           body: in4, ttl: 64, identification: 1)
        #expect(r.generated.map(\.bytes) == [expected])
    }

    @Test func rfc7915_4_1_fragmentGetsAFragmentHeader() {
        var t = makeTranslator()
        // First fragment of a UDP datagram: 8-byte header + 24 bytes (the checksum covers the whole datagram).
        let whole4 = udp4(40)
        let udp = Array(whole4[20...])
        let first4 = ipv4(Array(udp[0..<32]), id: 0xABCD, mf: true)
        let whole6 = udp6(40)
        let udp6Bytes = Array(whole6[40...])
        let expectedFirst = PacketBuilder.ipv6(IPv6Header(nextHeader: IPProtocol.udp, source: server6, destination: host6,
                                                          hopLimit: 63),
                                               extensionHeaders: [.fragment(offset: 0, moreFragments: true, identification: 0xABCD)],
                                               payload: Array(udp6Bytes[0..<32]))
        let r = run(&t, first4)
        #expect(r.bytes == expectedFirst, "\(diff(r.bytes, expectedFirst))")
        let last4 = ipv4(Array(udp[32...]), id: 0xABCD, offset: 32)
        let expectedLast = PacketBuilder.ipv6(IPv6Header(nextHeader: IPProtocol.udp, source: server6, destination: host6,
                                                         hopLimit: 63),
                                              extensionHeaders: [.fragment(offset: 32, moreFragments: false, identification: 0xABCD)],
                                              payload: Array(udp6Bytes[32...]))
        let r2 = run(&t, last4)
        #expect(r2.bytes == expectedLast, "\(diff(r2.bytes, expectedLast))")
        let c = t.counters4to6
        #expect(c.fragmentsTranslated == 2)
    }

    @Test func rfc7915_4_1_DFClearLargePacketFragmentedToLowestIPv6MTU() {
        var t = makeTranslator()
        let in4 = udp4(1472, id: 0x0102)  // 1500 bytes of IPv4, 1520 of IPv6 unfragmented
        let whole6 = udp6(1472)
        let data = Array(whole6[40...])  // 1480 bytes
        let r = run(&t, in4)
        #expect(r.verdict == toIPv6)
        // 1280 - 48 = 1232 bytes of data in the first fragment, the remaining 248 in the second.
        let h = IPv6Header(nextHeader: IPProtocol.udp, source: server6, destination: host6, hopLimit: 63)
        let f1 = PacketBuilder.ipv6(h, extensionHeaders: [.fragment(offset: 0, moreFragments: true, identification: 0x0102)],
                                    payload: Array(data[0..<1232]))
        let f2 = PacketBuilder.ipv6(h, extensionHeaders: [.fragment(offset: 1232, moreFragments: false, identification: 0x0102)],
                                    payload: Array(data[1232...]))
        #expect(r.bytes == f1, "\(diff(r.bytes, f1))")
        #expect(r.generated.map(\.bytes) == [f2])
        #expect(r.generated.map(\.verdict) == [toIPv6])
    }

    @Test func rfc7915_4_1_lowestIPv6MTUIsConfigurable() {
        var t = makeTranslator { $0.lowestIPv6MTU = 1400 }
        let r = run(&t, udp4(1472))
        #expect(r.bytes.count == 1400 - 0)  // 48 + 1352 (a multiple of 8)
        #expect(r.generated.count == 1)
        // Below the threshold nothing is fragmented and no Fragment header is added.
        var t2 = makeTranslator { $0.lowestIPv6MTU = 1500 }
        let small = run(&t2, udp4(1400))
        #expect(small.bytes == udp6(1400))
        #expect(small.generated.isEmpty)
    }

    @Test func rfc7915_4_1_fragmentOfALargeFragmentRefragmented() {
        var t = makeTranslator()
        // A middle fragment (offset 1480, MF set) of 1480 bytes: split into 1232 + 248, offsets continue.
        let body = payload(1480)
        let in4 = ipv4(body, id: 7, mf: true, offset: 1480)
        let r = run(&t, in4)
        let h = IPv6Header(nextHeader: IPProtocol.udp, source: server6, destination: host6, hopLimit: 63)
        let f1 = PacketBuilder.ipv6(h, extensionHeaders: [.fragment(offset: 1480, moreFragments: true, identification: 7)],
                                    payload: Array(body[0..<1232]))
        let f2 = PacketBuilder.ipv6(h, extensionHeaders: [.fragment(offset: 1480 + 1232, moreFragments: true, identification: 7)],
                                    payload: Array(body[1232...]))
        #expect(r.bytes == f1, "\(diff(r.bytes, f1))")
        #expect(r.generated.map(\.bytes) == [f2])
    }

    @Test func rfc7915_4_1_DFSetTooBigGivesFragmentationNeeded() {
        var t = makeTranslator { $0.ipv6MTU = 1400 }
        let in4 = udp4(1400, df: true)  // IPv6: 40 + 1408 = 1448 > 1400
        let r = run(&t, in4)
        #expect(r.verdict == .drop(.packetTooBig))
        let expected = PacketBuilder.icmp4(source: translator4, destination: server4,
                                           header: ICMPv4Header(type: ICMPv4Type.destinationUnreachable,
                                                                code: ICMPv4UnreachableCode.fragmentationNeeded,
                                                                restOfHeader: 1380),
                                           body: Array(in4.prefix(548)), ttl: 64, identification: 1)
        #expect(r.generated.map(\.bytes) == [expected])
    }

    @Test func rfc7915_4_5_zeroUDPChecksumComputed() {
        var t = makeTranslator()
        let r = run(&t, udp4(checksum: false))
        #expect(r.bytes == udp6(), "\(diff(r.bytes, udp6()))")
    }

    @Test func rfc7915_4_5_zeroUDPChecksumDroppedWhenConfigured() {
        var t = makeTranslator { $0.zeroUDPChecksum = .drop }
        #expect(run(&t, udp4(checksum: false)).verdict == .drop(.udpChecksumZero))
        #expect(run(&t, udp4(checksum: true)).verdict == toIPv6)
    }

    @Test func rfc7915_4_5_fragmentedZeroUDPChecksumDropped() {
        var t = makeTranslator()
        let udp = Array(udp4(40, checksum: false)[20...])
        #expect(run(&t, ipv4(Array(udp[0..<24]), mf: true)).verdict == .drop(.udpChecksumZero))
    }

    @Test func rfc7915_4_5_tcpChecksumUpdated() {
        var t = makeTranslator()
        let h = TCPHeader(sourcePort: 80, destinationPort: 40000, flags: [.syn, .ack], sequenceNumber: 1, acknowledgmentNumber: 78)
        let in4 = PacketBuilder.tcp4(source: server4, destination: host4, header: h, payload: payload(31))
        let expected = PacketBuilder.tcp6(source: server6, destination: host6, header: h, payload: payload(31), hopLimit: 63)
        #expect(run(&t, in4).bytes == expected)
    }

    @Test func rfc7915_4_5_otherProtocolsCopied() {
        var t = makeTranslator()
        let body = payload(33)
        let in4 = ipv4(body, proto: 132)
        let expected = PacketBuilder.ipv6(IPv6Header(nextHeader: 132, source: server6, destination: host6, hopLimit: 63),
                                          payload: body)
        #expect(run(&t, in4).bytes == expected)
    }

    @Test func rfc7915_4_2_echoRequestBecomesICMPv6Echo() {
        var t = makeTranslator()
        let in4 = PacketBuilder.icmp4(source: server4, destination: host4,
                                      header: ICMPv4Header(type: ICMPv4Type.echoRequest, identifier: 0x77, sequenceNumber: 3),
                                      body: payload(48))
        let expected = PacketBuilder.echo6(source: server6, destination: host6, identifier: 0x77, sequenceNumber: 3,
                                           payload: payload(48), hopLimit: 63)
        let r = run(&t, in4)
        #expect(r.bytes == expected, "\(diff(r.bytes, expected))")
    }

    @Test func rfc7915_4_2_echoReplyBecomesICMPv6EchoReply() {
        var t = makeTranslator()
        let in4 = PacketBuilder.icmp4(source: server4, destination: host4,
                                      header: ICMPv4Header(type: ICMPv4Type.echoReply, identifier: 0xFFFF, sequenceNumber: 0xFFFF),
                                      body: payload(5))
        let expected = PacketBuilder.echo6(source: server6, destination: host6, identifier: 0xFFFF, sequenceNumber: 0xFFFF,
                                           reply: true, payload: payload(5), hopLimit: 63)
        #expect(run(&t, in4).bytes == expected)
    }

    @Test(arguments: [ICMPv4Type.timestampRequest, ICMPv4Type.timestampReply, ICMPv4Type.informationRequest,
                      ICMPv4Type.informationReply, ICMPv4Type.addressMaskRequest, ICMPv4Type.addressMaskReply,
                      ICMPv4Type.routerAdvertisement, ICMPv4Type.routerSolicitation, ICMPv4Type.sourceQuench,
                      ICMPv4Type.redirect, 6, 40, 255])
    func rfc7915_4_2_obsoleteSingleHopAndUnknownTypesDropped(type: UInt8) {
        var t = makeTranslator()
        let in4 = PacketBuilder.icmp4(source: server4, destination: host4, header: ICMPv4Header(type: type, code: 0),
                                      body: Array(udp4()))
        #expect(run(&t, in4).verdict == .drop(.untranslatableICMP))
    }

    @Test func rfc7915_4_2_igmpDropped() {
        var t = makeTranslator()
        #expect(run(&t, ipv4(payload(8), proto: 2)).verdict == .drop(.unsupportedProtocol))
    }

    @Test func rfc7915_1_2_fragmentedICMPv4NotTranslated() {
        var t = makeTranslator()
        let echo = Array(PacketBuilder.echo4(source: server4, destination: host4, identifier: 1)[20...])
        #expect(run(&t, ipv4(echo, proto: IPProtocol.icmp, mf: true)).verdict == .drop(.fragmentedICMP))
        #expect(run(&t, ipv4(echo, proto: IPProtocol.icmp, offset: 8)).verdict == .drop(.fragmentedICMP))
    }

    @Test func rfc791_malformedIPv4Dropped() {
        var t = makeTranslator()
        var bad = udp4()
        bad[10] ^= 0xFF
        #expect(run(&t, bad).verdict == .drop(.badIPChecksum))
        #expect(run(&t, Array(udp4()[0..<19])).verdict == .drop(.truncated))
        var long = udp4()
        long[0] = 0x4F
        #expect(run(&t, long).verdict == .drop(.badIPHeaderLength))
        #expect(run(&t, Array(udp4().dropLast(2))).verdict == .drop(.badIPLength))
        #expect(run(&t, [0x75, 0, 0, 0]).verdict == .drop(.badIPVersion))
        #expect(run(&t, []).verdict == .drop(.truncated))
    }

    @Test func rfc7915_4_1_untranslatableDestinationDropped() {
        var t = makeTranslator()
        let in4 = PacketBuilder.udp4(source: server4, sourcePort: 1, destination: IPv4Address("203.0.113.9")!, destinationPort: 2)
        // 203.0.113.9 is not an EAM address but the prefix can embed it: translated toward 64:ff9b::.
        #expect(run(&t, in4).verdict == toIPv6)
        // With the RFC 6052 §3.1 check on, a documentation address is not embedded in the WKP.
        var strict = makeTranslator(siit: { $0.prefix = try! NAT64Prefix("64:ff9b::/96") })
        #expect(run(&strict, in4).verdict == .drop(.nonGlobalIPv4Address))
    }
}
