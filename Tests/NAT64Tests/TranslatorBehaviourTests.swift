import Testing
import NATCore
import NATWire
@testable import NAT64

/// The translator's own ICMP errors (RFC 7915 §4.4/§5.4), its settings, its counters and its buffers.
@Suite struct TranslatorBehaviourTests {
    static func unmapped6() -> [UInt8] {
        PacketBuilder.udp6(source: IPv6Address("2001:db8:7::1")!, sourcePort: 1, destination: server6, destinationPort: 2)
    }

    @Test func rfc7915_5_4_prohibitedErrorWhenConfigured() {
        var off = makeTranslator()
        #expect(run(&off, Self.unmapped6()).generated.isEmpty)
        var on = makeTranslator { $0.sendProhibitedErrors = true }
        let in6 = Self.unmapped6()
        let r = run(&on, in6)
        #expect(r.verdict == .drop(.noMapping))
        let want = PacketBuilder.icmp6Error(source: translator6, destination: IPv6Address("2001:db8:7::1")!,
                                            type: ICMPv6Type.destinationUnreachable, code: 1, original: in6)
        #expect(r.generated.map(\.bytes) == [want])
    }

    @Test func rfc7915_4_4_prohibitedErrorWhenConfigured() {
        var on = makeTranslator(siit: { $0.prefix = nil })
        let in4 = PacketBuilder.udp4(source: server4, sourcePort: 1, destination: host4, destinationPort: 2)
        // Without a prefix the IPv4 source cannot be translated.
        #expect(run(&on, in4).verdict == .drop(.noMapping))
        var t = makeTranslator({ $0.sendProhibitedErrors = true }, siit: { $0.prefix = nil })
        let r = run(&t, in4)
        let want = PacketBuilder.icmp4(source: translator4, destination: server4,
                                       header: ICMPv4Header(type: 3, code: 13), body: in4, ttl: 64, identification: 1)
        #expect(r.generated.map(\.bytes) == [want])
        #expect(r.generated.map(\.verdict) == [toIPv4])
    }

    @Test func rfc4443_2_4_f_generatedErrorsAreRateLimited() {
        var t = makeTranslator { $0.icmpErrorsPerSecond = 3 }
        let expiring = PacketBuilder.udp6(source: host6, sourcePort: 1, destination: server6, destinationPort: 2, hopLimit: 1)
        var sent = 0
        for _ in 0..<10 { sent += run(&t, expiring, now: .seconds(5)).generated.count }
        #expect(sent == 3)
        let c = t.counters
        #expect(c.dropped(.icmpRateLimited) == 7)
        #expect(c.dropped(.ttlExceeded) == 10)
        // The next second refills the bucket.
        #expect(run(&t, expiring, now: .seconds(6)).generated.count == 1)
    }

    @Test func rfc7915_5_4_noErrorsWithoutASourceAddress() {
        var t = makeTranslator { $0.ipv6ErrorSource = nil; $0.ipv4ErrorSource = nil }
        let r = run(&t, PacketBuilder.udp6(source: host6, sourcePort: 1, destination: server6, destinationPort: 2, hopLimit: 1))
        #expect(r.verdict == .drop(.ttlExceeded))
        #expect(r.generated.isEmpty)
        let r4 = run(&t, PacketBuilder.udp4(source: server4, sourcePort: 1, destination: host4, destinationPort: 2, ttl: 1))
        #expect(r4.verdict == .drop(.ttlExceeded))
        #expect(r4.generated.isEmpty)
    }

    @Test func rfc1812_4_3_2_7_noErrorAboutANonInitialFragment() {
        var t = makeTranslator()
        var h = IPv4Header(protocolNumber: IPProtocol.udp, source: server4, destination: host4, ttl: 1, identification: 3)
        h.fragmentOffset = 64
        let r = run(&t, PacketBuilder.ipv4(h, payload: payload(40)))
        #expect(r.verdict == .drop(.ttlExceeded))
        #expect(r.generated.isEmpty)
    }

    @Test func rfc4443_2_4_e_noErrorToAMulticastSource() {
        var t = makeTranslator()
        let in6 = PacketBuilder.udp6(source: IPv6Address("ff02::1")!, sourcePort: 1, destination: server6, destinationPort: 2,
                                     hopLimit: 1)
        #expect(run(&t, in6).generated.isEmpty)
    }

    @Test func rfc7915_5_1_icmpErrorWithSegmentsLeftDroppedSilently() {
        var t = makeTranslator()
        let inner = PacketBuilder.udp6(source: server6, sourcePort: 53, destination: host6, destinationPort: 1)
        let err = PacketBuilder.icmp6(source: host6, destination: server6, header: ICMPv6Header(type: 1, code: 4), body: inner,
                                      extensionHeaders: [.routing(type: 4, segmentsLeft: 2, data: payload(36))])
        let r = run(&t, err)
        #expect(r.verdict == .drop(.segmentsLeftNonZero))
        #expect(r.generated.isEmpty)
    }

    @Test func countersPerDirection() {
        var t = makeTranslator()
        _ = run(&t, PacketBuilder.udp6(source: host6, sourcePort: 1, destination: server6, destinationPort: 2))
        _ = run(&t, PacketBuilder.udp4(source: server4, sourcePort: 2, destination: host4, destinationPort: 1))
        _ = run(&t, PacketBuilder.udp4(source: server4, sourcePort: 2, destination: host4, destinationPort: 1))
        _ = run(&t, Self.unmapped6())
        let six = t.counters6to4, four = t.counters4to6, all = t.counters
        #expect(six.outboundPackets == 1 && six.inboundPackets == 0 && six.dropped(.noMapping) == 1)
        #expect(four.inboundPackets == 2 && four.outboundPackets == 0 && four.totalDropped == 0)
        #expect(all.outboundPackets == 1 && all.inboundPackets == 2 && all.totalDropped == 1)
        #expect(all.outboundBytes == 28 && all.inboundBytes == 2 * 48)
    }

    @Test func processIntoCallerBuffer() {
        var t = makeTranslator()
        let in6 = PacketBuilder.udp6(source: host6, sourcePort: 1, destination: server6, destinationPort: 2, payload: payload(30))
        var out = [UInt8](repeating: 0xEE, count: 2048)
        let r = in6.withUnsafeBytes { i in out.withUnsafeMutableBytes { o in t.process(i, into: o, now: .zero) } }
        #expect(r.verdict == toIPv4)
        #expect(Array(out[0..<r.length]) == PacketBuilder.udp4(source: host4, sourcePort: 1, destination: server4,
                                                                destinationPort: 2, payload: payload(30), ttl: 63, identification: 1))
        var tiny = [UInt8](repeating: 0, count: 30)
        let r2 = in6.withUnsafeBytes { i in tiny.withUnsafeMutableBytes { o in t.process(i, into: o, now: .zero) } }
        #expect(r2.verdict == .drop(.outputTooSmall))
    }

    @Test func inputIsNotModified() {
        var t = makeTranslator()
        let in4 = PacketBuilder.udp4(source: server4, sourcePort: 2, destination: host4, destinationPort: 1, payload: payload(1472))
        var copy = in4
        _ = copy.withUnsafeMutableBytes { t.process($0, now: .zero) }
        #expect(copy == in4)
    }

    @Test func outboxFullRefusesFragmentationWhole() {
        var t = makeTranslator { $0.outboxSlots = 2 }
        // 9000 bytes of IPv4 without DF would need 8 IPv6 fragments; 7 do not fit into 2 slots.
        let big = PacketBuilder.udp4(source: server4, sourcePort: 2, destination: host4, destinationPort: 1, payload: payload(8972))
        let r = run(&t, big)
        #expect(r.verdict == .drop(.outboxFull))
        #expect(r.generated.isEmpty)
        // Three fragments fit.
        let mid = PacketBuilder.udp4(source: server4, sourcePort: 2, destination: host4, destinationPort: 1, payload: payload(3000))
        let r2 = run(&t, mid)
        #expect(r2.verdict == toIPv6)
        #expect(r2.generated.count == 2)
    }

    @Test func configurationRefusedWithItsKey() {
        func key(_ edit: (inout NAT64Configuration) -> Void) -> String? {
            var c = NAT64Configuration()
            edit(&c)
            do { try c.validate(); return nil } catch { return error.key }
        }
        #expect(key { $0.lowestIPv6MTU = 1279 } == "lowest_ipv6_mtu")
        #expect(key { $0.lowestIPv6MTU = 1600 } == "lowest_ipv6_mtu")   // above ipv6_mtu 1500
        #expect(key { $0.ipv6MTU = 1000 } == "ipv6_mtu")
        #expect(key { $0.ipv4MTU = 67 } == "ipv4_mtu")
        #expect(key { $0.outboxSlots = 0 } == "outbox_slots")
        #expect(key { $0.icmpErrorsPerSecond = -1 } == "icmp_errors_per_second")
        #expect(key { _ in } == nil)
        #expect(throws: ConfigurationError.self) {
            _ = try NAT64Translator(configuration: { var c = NAT64Configuration(); c.ipv4MTU = 10; return c }(),
                                    mapping: SIITMapping(prefix: .wellKnown))
        }
    }
    @Test func rfc791_fragmentsBeyondTheLargestDatagramDropped() {
        var t = makeTranslator()
        var h = IPv4Header(protocolNumber: IPProtocol.udp, source: server4, destination: host4, identification: 3)
        h.fragmentOffset = 65528
        #expect(run(&t, PacketBuilder.ipv4(h, payload: payload(16))).verdict == .drop(.fragmentTooLarge))
        h.fragmentOffset = 65512
        #expect(run(&t, PacketBuilder.ipv4(h, payload: payload(16))).verdict == toIPv6)
        let h6 = IPv6Header(nextHeader: IPProtocol.udp, source: host6, destination: server6)
        let late = PacketBuilder.ipv6(h6, extensionHeaders: [.fragment(offset: 65504, moreFragments: false, identification: 1)],
                                      payload: payload(24))
        #expect(run(&t, late).verdict == .drop(.fragmentTooLarge))
    }

    @Test func largestPacketsTranslateOrAreRefused() {
        var t = makeTranslator { $0.ipv4MTU = 65535; $0.ipv6MTU = 65535; $0.lowestIPv6MTU = 65535 }
        // 65 535 bytes of IPv4 → 65 555 of IPv6: over the IPv6 MTU with DF → Fragmentation Needed.
        let big4 = PacketBuilder.udp4(source: server4, sourcePort: 1, destination: host4, destinationPort: 2,
                                      payload: payload(65507), dontFragment: true)
        let r = run(&t, big4)
        #expect(r.verdict == .drop(.packetTooBig))
        // A 65 535-byte IPv6 payload cannot become one IPv4 datagram: Packet Too Big.
        let big6 = PacketBuilder.udp6(source: host6, sourcePort: 1, destination: server6, destinationPort: 2, payload: payload(65527))
        #expect(run(&t, big6).verdict == .drop(.packetTooBig))
        // Without DF the IPv4 one is fragmented to the configured lowest IPv6 MTU instead.
        var f = makeTranslator()
        let big4f = PacketBuilder.udp4(source: server4, sourcePort: 1, destination: host4, destinationPort: 2, payload: payload(60000))
        let rf = run(&f, big4f)
        #expect(rf.verdict == toIPv6)
        #expect(rf.generated.count == 48)  // 60 008 bytes of UDP in 1 232-byte pieces: 49 fragments
    }

}
