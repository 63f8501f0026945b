import Testing
import NATCore
import NATWire
@testable import NAT64

/// Conformance review of the translator against RFC 7915 (and the packet vectors of its graybox
/// requirement analysis): one golden packet per deviation found, expected bytes built independently with
/// the NATWire builders.
@Suite struct RFC7915ReviewTests {
    // MARK: §4.4/§4.5: zero UDP checksums are rejected with ICMPv4 3/13

    static func zeroChecksumUDP4(mf: Bool = false) -> [UInt8] {
        let udp = PacketBuilder.udp4(source: server4, sourcePort: 53, destination: host4, destinationPort: 5000,
                                     payload: payload(4), checksum: false)
        if !mf { return udp }
        var h = IPv4Header(protocolNumber: IPProtocol.udp, source: server4, destination: host4, ttl: 64,
                           identification: 0x4242)
        h.moreFragments = true
        return PacketBuilder.ipv4(h, payload: Array(udp[20...]))
    }

    /// RFC 7915 §4.5 option 1 ("dropping the packet") with §4.4: the discarded packet gets ICMPv4 3/13.
    @Test func rfc7915_4_5_zeroUDPChecksumRefusedWithAdministrativelyProhibited() {
        var t = makeTranslator { $0.zeroUDPChecksum = .drop }
        let in4 = Self.zeroChecksumUDP4()
        let r = run(&t, in4)
        #expect(r.verdict == .drop(.udpChecksumZero))
        let want = PacketBuilder.icmp4(source: translator4, destination: server4,
                                       header: ICMPv4Header(type: 3, code: 13), body: in4, ttl: 64, identification: 1)
        #expect(r.generated.map(\.bytes) == [want])
        #expect(r.generated.map(\.verdict) == [toIPv4])
    }

    /// RFC 7915 §4.5: the first fragment of a zero-checksum datagram cannot be summed; dropped and, by
    /// §4.4, answered with ICMPv4 3/13 whatever the zero-checksum setting.
    @Test(arguments: [ZeroUDPChecksumPolicy.compute, .drop])
    func rfc7915_4_5_fragmentedZeroUDPChecksumRefusedWithAdministrativelyProhibited(policy: ZeroUDPChecksumPolicy) {
        var t = makeTranslator { $0.zeroUDPChecksum = policy }
        let in4 = Self.zeroChecksumUDP4(mf: true)
        let r = run(&t, in4)
        #expect(r.verdict == .drop(.udpChecksumZero))
        let want = PacketBuilder.icmp4(source: translator4, destination: server4,
                                       header: ICMPv4Header(type: 3, code: 13), body: in4, ttl: 64, identification: 1)
        #expect(r.generated.map(\.bytes) == [want])
    }

    /// §4.4 does not apply when the TTL runs out first: the sender hears Time Exceeded, not 3/13.
    @Test func rfc7915_4_4_expiringZeroChecksumGetsTimeExceededOnly() {
        var t = makeTranslator { $0.zeroUDPChecksum = .drop }
        var in4 = Self.zeroChecksumUDP4()
        in4[8] = 1
        in4[10] = 0; in4[11] = 0
        let sum = Checksum.finish(in4.withUnsafeBytes { Checksum.sum($0.baseAddress!, count: 20) })
        in4[10] = UInt8(sum >> 8); in4[11] = UInt8(sum & 0xFF)
        let r = run(&t, in4)
        #expect(r.verdict == .drop(.ttlExceeded))
        #expect(r.generated.count == 1)
        #expect(r.generated.first?.bytes[20] == ICMPv4Type.timeExceeded)
    }

    // MARK: §5.1.1/§5.4: extension headers after the Fragment header are rejected with ICMPv6 1/1

    static let afterFragment: [[IPv6ExtensionHeader]] = [
        [.fragment(offset: 0, moreFragments: true, identification: 9), .hopByHop(options: [])],
        [.fragment(offset: 0, moreFragments: true, identification: 9), .destinationOptions(options: [])],
        [.fragment(offset: 0, moreFragments: true, identification: 9), .routing(type: 4, segmentsLeft: 0, data: [])],
        [.hopByHop(options: []), .fragment(offset: 0, moreFragments: true, identification: 9), .hopByHop(options: [])],
        [.destinationOptions(options: []), .fragment(offset: 0, moreFragments: true, identification: 9),
         .destinationOptions(options: [])],
        [.routing(type: 4, segmentsLeft: 0, data: []), .fragment(offset: 0, moreFragments: true, identification: 9),
         .routing(type: 4, segmentsLeft: 0, data: [])],
        [.fragment(offset: 0, moreFragments: true, identification: 9), .authentication(spi: 1, sequenceNumber: 1, icv: [])],
    ]

    /// RFC 7915 §5.1.1 "Total Length": such a packet "SHOULD be dropped and logged"; §5.4: the sender gets
    /// ICMPv6 Destination Unreachable, Communication administratively prohibited (1/1), quoting it unchanged.
    @Test(arguments: 0..<afterFragment.count)
    func rfc7915_5_1_1_extensionHeaderAfterFragmentRejected(row: Int) {
        var t = makeTranslator()
        let in6 = PacketBuilder.udp6(source: host6, sourcePort: 5000, destination: server6, destinationPort: 53,
                                     payload: payload(20), extensionHeaders: Self.afterFragment[row])
        let r = run(&t, in6)
        #expect(r.verdict == .drop(.extensionHeaderAfterFragment))
        let want = PacketBuilder.icmp6Error(source: translator6, destination: host6, type: ICMPv6Type.destinationUnreachable,
                                            code: ICMPv6UnreachableCode.administrativelyProhibited, original: in6)
        #expect(r.generated.map(\.bytes) == [want])
        #expect(r.generated.map(\.verdict) == [toIPv6])
    }

    // MARK: §5.1/§5.1.1: an IPv6 fragment too big for the IPv4 link

    /// RFC 7915 §1.4/§5: the translator "MUST send a Packet Too Big error message or fragment the packet".
    /// A fragment of more than 1280 bytes can be made smaller by its IPv6 source, so it gets Packet Too
    /// Big (MTU = IPv4 MTU + 20), as an unfragmented packet with DF would (graybox vector cg, packet 2).
    @Test func rfc7915_5_1_1_largeFragmentOverTheIPv4LinkGetsPacketTooBig() {
        var t = makeTranslator { $0.ipv4MTU = 1400 }
        let tcp = Array(PacketBuilder.tcp6(source: host6, sourcePort: 5000, destination: server6, destinationPort: 80,
                                           flags: [.ack], payload: payload(1361))[40...])
        let in6 = PacketBuilder.ipv6(IPv6Header(nextHeader: IPProtocol.tcp, source: host6, destination: server6),
                                     extensionHeaders: [.fragment(offset: 0, moreFragments: true, identification: 1234)],
                                     payload: tcp)
        #expect(in6.count == 1429)
        let r = run(&t, in6)
        #expect(r.verdict == .drop(.packetTooBig))
        let want = PacketBuilder.icmp6Error(source: translator6, destination: host6, type: ICMPv6Type.packetTooBig,
                                            code: 0, restOfHeader: 1420, original: in6)
        #expect(r.generated.map(\.bytes) == [want])
    }

    /// A later fragment too big for the link gets Packet Too Big too (RFC 4443 §3.2: any packet a router
    /// cannot forward because of the link MTU).
    @Test func rfc7915_5_1_1_largeLaterFragmentOverTheIPv4LinkGetsPacketTooBig() {
        var t = makeTranslator { $0.ipv4MTU = 1400 }
        let in6 = PacketBuilder.ipv6(IPv6Header(nextHeader: IPProtocol.tcp, source: host6, destination: server6),
                                     extensionHeaders: [.fragment(offset: 1376, moreFragments: false, identification: 1234)],
                                     payload: payload(1392))
        let r = run(&t, in6)
        #expect(r.verdict == .drop(.packetTooBig))
        let want = PacketBuilder.icmp6Error(source: translator6, destination: host6, type: ICMPv6Type.packetTooBig,
                                            code: 0, restOfHeader: 1420, original: in6)
        #expect(r.generated.map(\.bytes) == [want])
    }

    // MARK: §4.1: Fragmentation Needed for an IPv4 fragment with DF

    static func dfFragment(total: Int) -> [UInt8] {
        let tcp = Array(PacketBuilder.tcp4(source: server4, sourcePort: 80, destination: host4, destinationPort: 5000,
                                           flags: [.ack], payload: payload(total - 40))[20...])
        var h = IPv4Header(protocolNumber: IPProtocol.tcp, source: server4, destination: host4, ttl: 64,
                           identification: 1234, dontFragment: true)
        h.moreFragments = true
        return PacketBuilder.ipv4(h, payload: tcp)
    }

    /// RFC 7915 §4.1: "If the DF bit is set and the MTU of the next-hop interface is less than the total
    /// length value of the IPv4 packet plus 20, the translator MUST send an ICMPv4 'Fragmentation Needed'":
    /// the MTU reported is the IPv6 MTU − 20 also for a fragment (graybox vector ca, packet 2).
    @Test func rfc7915_4_1_dfFragmentOverTheIPv6MTUGetsIPv6MTUMinus20() {
        var t = makeTranslator { $0.ipv6MTU = 1280 }
        let in4 = Self.dfFragment(total: 1261)
        let r = run(&t, in4)
        #expect(r.verdict == .drop(.packetTooBig))
        let want = PacketBuilder.icmp4(source: translator4, destination: server4,
                                       header: ICMPv4Header(type: 3, code: 4, restOfHeader: 1260),
                                       body: Array(in4.prefix(548)), ttl: 64, identification: 1)
        #expect(r.generated.map(\.bytes) == [want])
    }

    /// A DF fragment within "total length + 20" of the MTU still does not fit once the Fragment header is
    /// added: Fragmentation Needed then reports IPv6 MTU − 28, the largest fragment that fits.
    @Test func rfc7915_4_1_dfFragmentThatFitsOnlyWithoutTheFragmentHeaderGetsIPv6MTUMinus28() {
        var t = makeTranslator { $0.ipv6MTU = 1280 }
        let in4 = Self.dfFragment(total: 1256)
        let r = run(&t, in4)
        #expect(r.verdict == .drop(.packetTooBig))
        let want = PacketBuilder.icmp4(source: translator4, destination: server4,
                                       header: ICMPv4Header(type: 3, code: 4, restOfHeader: 1252),
                                       body: Array(in4.prefix(548)), ttl: 64, identification: 1)
        #expect(r.generated.map(\.bytes) == [want])
        // And one of 1252 bytes passes as a 1280-byte IPv6 fragment.
        #expect(run(&t, Self.dfFragment(total: 1252)).verdict == toIPv6)
    }
}
