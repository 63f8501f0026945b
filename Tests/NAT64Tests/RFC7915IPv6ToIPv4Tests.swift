import Testing
import NATCore
import NATWire
@testable import NAT64

/// RFC 7915 §5 and §5.1: IPv6 headers into IPv4 headers. Every expected packet is built independently
/// with the NATWire builders (full checksums), and compared byte for byte.
@Suite struct RFC7915IPv6ToIPv4Tests {
    func udp6(_ n: Int = 20, hopLimit: UInt8 = 64, trafficClass: UInt8 = 0, flowLabel: UInt32 = 0,
              ext: [IPv6ExtensionHeader] = []) -> [UInt8] {
        PacketBuilder.udp6(source: host6, sourcePort: 5000, destination: server6, destinationPort: 53, payload: payload(n),
                           hopLimit: hopLimit, trafficClass: trafficClass, flowLabel: flowLabel, extensionHeaders: ext)
    }

    func udp4(_ n: Int = 20, ttl: UInt8 = 63, id: UInt16 = 1, df: Bool = false, tos: UInt8 = 0) -> [UInt8] {
        var b = PacketBuilder.udp4(source: host4, sourcePort: 5000, destination: server4, destinationPort: 53,
                                   payload: payload(n), ttl: ttl, identification: id, dontFragment: df)
        if tos != 0 {
            var h = IPv4Header(protocolNumber: IPProtocol.udp, source: host4, destination: server4, ttl: ttl,
                               identification: id, dontFragment: df, tos: tos)
            h.tos = tos
            b = PacketBuilder.ipv4(h, payload: Array(b[20...]))
        }
        return b
    }

    @Test func rfc7915_5_1_udpHeaderTranslated() {
        var t = makeTranslator()
        let r = run(&t, udp6())
        #expect(r.verdict == toIPv4)
        #expect(r.bytes == udp4(), "\(diff(r.bytes, udp4()))")
        let c = t.counters6to4
        #expect(c.outboundPackets == 1)
    }

    @Test func rfc7915_5_1_hopLimitBecomesTTLMinusOne() {
        var t = makeTranslator()
        let r = run(&t, udp6(hopLimit: 2))
        #expect(r.bytes == udp4(ttl: 1))
    }

    @Test func rfc7915_5_1_hopLimitExpiryGivesTimeExceeded() {
        var t = makeTranslator()
        let in6 = udp6(hopLimit: 1)
        let r = run(&t, in6)
        #expect(r.verdict == .drop(.ttlExceeded))
        let expected = PacketBuilder.icmp6Error(source: translator6, destination: host6, type: ICMPv6Type.timeExceeded,
                                                code: 0, original: in6)
        #expect(r.generated.count == 1)
        #expect(r.generated.first?.bytes == expected)
        #expect(r.generated.first?.verdict == toIPv6)
        let c = t.counters6to4
        #expect(c.dropped(.ttlExceeded) == 1)
        #expect(c.icmpErrorsGenerated == 1)
    }

    @Test func rfc7915_5_1_hopLimitZeroAlsoExpires() {
        var t = makeTranslator()
        #expect(run(&t, udp6(hopLimit: 0)).verdict == .drop(.ttlExceeded))
    }

    @Test func rfc7915_5_1_trafficClassCopiedToTOS() {
        var t = makeTranslator()
        let r = run(&t, udp6(trafficClass: 0xB8))
        #expect(r.bytes == udp4(tos: 0xB8), "\(diff(r.bytes, udp4(tos: 0xB8)))")
    }

    @Test func rfc7915_5_1_trafficClassCanBeIgnored() {
        var t = makeTranslator { $0.trafficClassOverride = 0 }
        #expect(run(&t, udp6(trafficClass: 0xB8)).bytes == udp4())
    }

    @Test func rfc7915_5_1_flowLabelDoesNotMatter() {
        var t = makeTranslator()
        #expect(run(&t, udp6(flowLabel: 0xABCDE)).bytes == udp4())
    }

    @Test func rfc7915_5_DFClearUpTo1260BytesAndIdentificationCounted() {
        var t = makeTranslator()
        // 20 + 8 + 1232 = 1260 bytes of IPv4: DF clear, Identification from the counter.
        #expect(run(&t, udp6(1232)).bytes == udp4(1232, id: 1))
        #expect(run(&t, udp6(1232)).bytes == udp4(1232, id: 2))
    }

    @Test func rfc7915_5_DFSetAbove1260Bytes() {
        var t = makeTranslator()
        // 1261 bytes of IPv4: DF set; an atomic datagram's Identification is 0 (RFC 6864 §4.1).
        let r = run(&t, udp6(1233))
        #expect(r.bytes == udp4(1233, id: 0, df: true), "\(diff(r.bytes, udp4(1233, id: 0, df: true)))")
    }

    @Test func rfc7915_5_1_extensionHeadersSkipped() {
        var t = makeTranslator()
        let ext: [IPv6ExtensionHeader] = [.hopByHop(options: [1, 2, 0, 0]), .destinationOptions(options: [1, 0]),
                                          .routing(type: 4, segmentsLeft: 0, data: Array(repeating: 0, count: 20)),
                                          .destinationOptions(options: [])]
        let r = run(&t, udp6(ext: ext))
        #expect(r.verdict == toIPv4)
        #expect(r.bytes == udp4(), "\(diff(r.bytes, udp4()))")
    }

    @Test func rfc7915_5_1_routingHeaderWithSegmentsLeftRefused() {
        var t = makeTranslator()
        let in6 = udp6(ext: [.destinationOptions(options: []), .routing(type: 4, segmentsLeft: 1, data: Array(repeating: 0, count: 20))])
        let r = run(&t, in6)
        #expect(r.verdict == .drop(.segmentsLeftNonZero))
        // Pointer: 40 (fixed header) + 8 (destination options) + 3 (Segments Left).
        let expected = PacketBuilder.icmp6Error(source: translator6, destination: host6, type: ICMPv6Type.parameterProblem,
                                                code: 0, restOfHeader: 51, original: in6)
        #expect(r.generated.map(\.bytes) == [expected])
    }

    @Test func rfc7915_5_1_extensionHeaderAfterFragmentDropped() {
        var t = makeTranslator()
        for e: IPv6ExtensionHeader in [.hopByHop(options: []), .destinationOptions(options: []),
                                       .routing(type: 4, segmentsLeft: 0, data: []),
                                       .authentication(spi: 1, sequenceNumber: 1, icv: [])] {
            let r = run(&t, udp6(ext: [.fragment(offset: 0, moreFragments: true, identification: 9), e]))
            #expect(r.verdict == .drop(.extensionHeaderAfterFragment))
        }
    }

    @Test func rfc7915_5_1_otherProtocolsCopied() {
        var t = makeTranslator()
        let sctp = payload(36)
        let in6 = PacketBuilder.ipv6(IPv6Header(nextHeader: 132, source: host6, destination: server6), payload: sctp)
        let expected = PacketBuilder.ipv4(IPv4Header(protocolNumber: 132, source: host4, destination: server4, ttl: 63,
                                                     identification: 1), payload: sctp)
        let r = run(&t, in6)
        #expect(r.bytes == expected, "\(diff(r.bytes, expected))")
    }

    @Test func rfc7915_5_1_authenticationHeaderIsTheProtocol() {
        var t = makeTranslator()
        // AH is not skipped: "the first next header that does not match" becomes Protocol (51).
        let body = payload(24)
        let in6 = PacketBuilder.ipv6(IPv6Header(nextHeader: IPProtocol.ah, source: host6, destination: server6), payload: body)
        let expected = PacketBuilder.ipv4(IPv4Header(protocolNumber: IPProtocol.ah, source: host4, destination: server4,
                                                     ttl: 63, identification: 1), payload: body)
        #expect(run(&t, in6).bytes == expected)
    }

    @Test func rfc7915_5_5_tcpChecksumUpdated() {
        var t = makeTranslator()
        let h = TCPHeader(sourcePort: 40000, destinationPort: 80, flags: [.syn], sequenceNumber: 77,
                          options: [2, 4, 5, 0xB4])
        let in6 = PacketBuilder.tcp6(source: host6, destination: server6, header: h, payload: payload(13))
        let expected = PacketBuilder.tcp4(source: host4, destination: server4, header: h, payload: payload(13), ttl: 63,
                                          identification: 1, dontFragment: false)
        let r = run(&t, in6)
        #expect(r.bytes == expected, "\(diff(r.bytes, expected))")
    }

    @Test func rfc7915_5_1_packetTooBigWhenDFWouldBeSet() {
        var t = makeTranslator { $0.ipv4MTU = 1400 }
        let in6 = udp6(1400)  // 1428 bytes of IPv4: DF set, over 1400
        let r = run(&t, in6)
        #expect(r.verdict == .drop(.packetTooBig))
        let expected = PacketBuilder.icmp6Error(source: translator6, destination: host6, type: ICMPv6Type.packetTooBig,
                                                code: 0, restOfHeader: 1420, original: in6)
        #expect(r.generated.map(\.bytes) == [expected])
    }

    @Test func rfc7915_5_1_packetTooBigMTUIsAtLeast1280() {
        var t = makeTranslator { $0.ipv4MTU = 1000 }
        let in6 = udp6(1300)
        let r = run(&t, in6)
        #expect(r.verdict == .drop(.packetTooBig))
        let expected = PacketBuilder.icmp6Error(source: translator6, destination: host6, type: ICMPv6Type.packetTooBig,
                                                code: 0, restOfHeader: 1280, original: in6)
        #expect(r.generated.map(\.bytes) == [expected])
    }

    @Test func rfc791_2_3_DFClearPacketsAreFragmentedForASmallIPv4Link() {
        var t = makeTranslator { $0.ipv4MTU = 576 }
        let in6 = udp6(1000)  // 1028 bytes of IPv4: DF clear
        let whole = udp4(1000, id: 1)
        let r = run(&t, in6)
        #expect(r.verdict == toIPv4)
        // 556 bytes of data per fragment (576 - 20, rounded down to a multiple of 8 = 552).
        var h = IPv4Header(protocolNumber: IPProtocol.udp, source: host4, destination: server4, ttl: 63, identification: 1)
        h.moreFragments = true
        let first = PacketBuilder.ipv4(h, payload: Array(whole[20..<(20 + 552)]))
        h.moreFragments = false
        h.fragmentOffset = 552
        let second = PacketBuilder.ipv4(h, payload: Array(whole[(20 + 552)...]))
        #expect(r.bytes == first, "\(diff(r.bytes, first))")
        #expect(r.generated.map(\.bytes) == [second])
        #expect(r.generated.map(\.verdict) == [toIPv4])
    }

    @Test func rfc7915_5_1_noMappingDropped() {
        var t = makeTranslator()
        let in6 = PacketBuilder.udp6(source: IPv6Address("2001:db8:7::1")!, sourcePort: 1, destination: server6,
                                     destinationPort: 2)
        #expect(run(&t, in6).verdict == .drop(.noMapping))
        let c = t.counters
        #expect(c.dropped(.noMapping) == 1)
    }

    @Test func rfc7915_5_2_echoRequestBecomesICMPv4Echo() {
        var t = makeTranslator()
        let in6 = PacketBuilder.echo6(source: host6, destination: server6, identifier: 0x1234, sequenceNumber: 9,
                                      payload: payload(56))
        let expected = PacketBuilder.icmp4(source: host4, destination: server4,
                                           header: ICMPv4Header(type: ICMPv4Type.echoRequest, identifier: 0x1234, sequenceNumber: 9),
                                           body: payload(56), ttl: 63, identification: 1)
        let r = run(&t, in6)
        #expect(r.bytes == expected, "\(diff(r.bytes, expected))")
    }

    @Test func rfc7915_5_2_echoReplyBecomesICMPv4EchoReply() {
        var t = makeTranslator()
        let in6 = PacketBuilder.echo6(source: host6, destination: server6, identifier: 0xBEEF, sequenceNumber: 1,
                                      reply: true, payload: payload(7))
        let expected = PacketBuilder.icmp4(source: host4, destination: server4,
                                           header: ICMPv4Header(type: ICMPv4Type.echoReply, identifier: 0xBEEF, sequenceNumber: 1),
                                           body: payload(7), ttl: 63, identification: 1)
        #expect(run(&t, in6).bytes == expected)
    }

    @Test(arguments: [ICMPv6Type.routerSolicitation, ICMPv6Type.routerAdvertisement, ICMPv6Type.neighborSolicitation,
                      ICMPv6Type.neighborAdvertisement, ICMPv6Type.redirect, 130, 131, 132, 200])
    func rfc7915_5_2_singleHopAndUnknownInformationalDropped(type: UInt8) {
        var t = makeTranslator()
        let in6 = PacketBuilder.icmp6(source: host6, destination: server6, header: ICMPv6Header(type: type, code: 0),
                                      body: payload(16))
        #expect(run(&t, in6).verdict == .drop(.untranslatableICMP))
    }

    @Test func rfc7915_1_2_fragmentedICMPv6NotTranslated() {
        var t = makeTranslator()
        let echo = PacketBuilder.echo6(source: host6, destination: server6, identifier: 1)
        let body = Array(echo[40...])
        let frag = PacketBuilder.ipv6(IPv6Header(nextHeader: IPProtocol.icmpv6, source: host6, destination: server6),
                                      extensionHeaders: [.fragment(offset: 0, moreFragments: true, identification: 5)],
                                      payload: body)
        #expect(run(&t, frag).verdict == .drop(.fragmentedICMP))
        let later = PacketBuilder.ipv6(IPv6Header(nextHeader: IPProtocol.icmpv6, source: host6, destination: server6),
                                       extensionHeaders: [.fragment(offset: 8, moreFragments: false, identification: 5)],
                                       payload: body)
        #expect(run(&t, later).verdict == .drop(.fragmentedICMP))
    }

    @Test func rfc8200_malformedIPv6Dropped() {
        var t = makeTranslator()
        var short = udp6()
        short.removeLast(3)
        #expect(run(&t, short).verdict == .drop(.badIPLength))
        #expect(run(&t, Array(udp6()[0..<30])).verdict == .drop(.truncated))
        // An extension header that runs past the end.
        var bad = PacketBuilder.ipv6(IPv6Header(nextHeader: IPProtocol.udp, source: host6, destination: server6),
                                     extensionHeaders: [.destinationOptions(options: [])], payload: [])
        bad[41] = 5
        #expect(run(&t, bad).verdict == .drop(.badExtensionHeaders))
        // A TCP header cut short.
        let tcp = PacketBuilder.ipv6(IPv6Header(nextHeader: IPProtocol.tcp, source: host6, destination: server6),
                                     payload: payload(10))
        #expect(run(&t, tcp).verdict == .drop(.badTransportHeader))
    }
    @Test func rfc7915_5_1_1_fragmentHeaderBecomesIPv4FragmentFields() {
        var t = makeTranslator()
        // The first fragment carries the UDP header; its checksum (over the whole datagram) is adjusted
        // for the pseudo-header alone.
        let whole6 = Array(udp6(60)[40...])   // 68 bytes of UDP
        let whole4 = Array(udp4(60)[20...])
        let h6 = IPv6Header(nextHeader: IPProtocol.udp, source: host6, destination: server6)
        let first6 = PacketBuilder.ipv6(h6, extensionHeaders: [.fragment(offset: 0, moreFragments: true, identification: 0xDEAD_BEEF)],
                                        payload: Array(whole6[0..<32]))
        var h4 = IPv4Header(protocolNumber: IPProtocol.udp, source: host4, destination: server4, ttl: 63, identification: 0xBEEF)
        h4.moreFragments = true
        let first4 = PacketBuilder.ipv4(h4, payload: Array(whole4[0..<32]))
        let r = run(&t, first6)
        #expect(r.bytes == first4, "\(diff(r.bytes, first4))")
        // The last fragment: no transport header, bytes copied, offset and identification carried.
        let last6 = PacketBuilder.ipv6(h6, extensionHeaders: [.fragment(offset: 32, moreFragments: false, identification: 0xDEAD_BEEF)],
                                       payload: Array(whole6[32...]))
        h4.moreFragments = false
        h4.fragmentOffset = 32
        let last4 = PacketBuilder.ipv4(h4, payload: Array(whole4[32...]))
        let r2 = run(&t, last6)
        #expect(r2.bytes == last4, "\(diff(r2.bytes, last4))")
        let c = t.counters6to4
        #expect(c.fragmentsTranslated == 2)
    }

    @Test func rfc7915_5_1_1_atomicFragmentKeepsItsIdentificationAndClearsDF() {
        var t = makeTranslator()
        let h6 = IPv6Header(nextHeader: IPProtocol.udp, source: host6, destination: server6)
        let atomic = PacketBuilder.ipv6(h6, extensionHeaders: [.fragment(offset: 0, moreFragments: false, identification: 0x0001_0203)],
                                        payload: Array(udp6(1300)[40...]))
        // Even above 1260 bytes: the Fragment header rules (§5.1.1) apply, DF stays clear.
        let r = run(&t, atomic)
        #expect(r.bytes == udp4(1300, id: 0x0203), "\(diff(r.bytes, udp4(1300, id: 0x0203)))")
    }

    @Test func rfc7915_5_1_1_fragmentLargerThanTheIPv4LinkIsFragmentedAgain() {
        var t = makeTranslator { $0.ipv4MTU = 600 }
        let h6 = IPv6Header(nextHeader: IPProtocol.udp, source: host6, destination: server6)
        let body = payload(1000)
        let in6 = PacketBuilder.ipv6(h6, extensionHeaders: [.fragment(offset: 800, moreFragments: true, identification: 9)],
                                     payload: body)
        let r = run(&t, in6)
        var h4 = IPv4Header(protocolNumber: IPProtocol.udp, source: host4, destination: server4, ttl: 63, identification: 9)
        h4.moreFragments = true
        h4.fragmentOffset = 800
        let f1 = PacketBuilder.ipv4(h4, payload: Array(body[0..<576]))
        h4.fragmentOffset = 800 + 576
        let f2 = PacketBuilder.ipv4(h4, payload: Array(body[576...]))
        #expect(r.bytes == f1, "\(diff(r.bytes, f1))")
        #expect(r.generated.map(\.bytes) == [f2])
    }

}
