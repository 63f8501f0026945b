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

    // MARK: §4.2/§5.2 "ICMP Error Payload": RFC 4884 extensions carried with the length attribute adjusted

    /// An opaque ICMP extension structure of `n` bytes (version 2 header first).
    static func ie(_ n: Int) -> [UInt8] { [0x20, 0] + payload(n - 2, seed: 99) }
    static func zeros(_ n: Int) -> [UInt8] { [UInt8](repeating: 0, count: n) }

    /// ICMPv6 → ICMPv4 vectors (after the graybox "ic"/"ia" analysis): (UDP payload of the packet in error,
    /// ICMPv6 length attribute in 64-bit words, extension bytes) → (bytes of the translated datagram kept,
    /// zero padding, extension kept, ICMPv4 length attribute in 32-bit words).
    static let extensions6to4: [(n: Int, words6: UInt32, ie: Int, keep: Int, pad: Int, keepIE: Bool, words4: UInt32)] = [
        (80, 16, 20, 108, 20, true, 32),     // small datagram padded to 128, extension kept
        (480, 66, 40, 508, 0, true, 127),    // datagram just fits beside the extension: 576 bytes
        (488, 67, 40, 508, 0, true, 127),    // datagram cut to make room for the extension
        (1144, 149, 40, 508, 0, true, 127),  // datagram cut much more
        (80, 16, 420, 108, 20, true, 32),    // largest extension that fits: 20 + 8 + 128 + 420 = 576
        (80, 16, 421, 108, 0, false, 0),     // one byte more: the extension goes, with the length
        (528, 72, 521, 548, 0, false, 0),    // both too large: extension gone, datagram cut at 576
    ]

    @Test(arguments: 0..<extensions6to4.count)
    func rfc7915_5_2_icmpExtensionCarriedWithLengthAdjusted(row: Int) {
        let v = Self.extensions6to4[row]
        var t = makeTranslator()
        let back6 = RFC7915ICMPErrorTests.back6(v.n)
        #expect(back6.count == Int(v.words6) * 8)
        let in6 = RFC7915ICMPErrorTests.error6to4(type: 1, code: 4, rest: v.words6 << 24, body: back6 + Self.ie(v.ie))
        let body4 = Array(RFC7915ICMPErrorTests.back4(v.n).prefix(v.keep)) + Self.zeros(v.pad) + (v.keepIE ? Self.ie(v.ie) : [])
        let want = RFC7915ICMPErrorTests.expected4(type: 3, code: 3, rest: v.words4 << 16, body: body4)
        let r = run(&t, in6)
        #expect(r.verdict == toIPv4)
        #expect(r.bytes == want, "row \(row): \(diff(r.bytes, want))")
        #expect(r.bytes.count <= 576)
    }

    @Test func rfc7915_5_2_timeExceededExtensionCarried() {
        var t = makeTranslator()
        let in6 = RFC7915ICMPErrorTests.error6to4(type: 3, code: 0, rest: 16 << 24,
                                                  body: RFC7915ICMPErrorTests.back6(80) + Self.ie(24))
        let want = RFC7915ICMPErrorTests.expected4(type: 11, code: 0, rest: 32 << 16,
                                                   body: RFC7915ICMPErrorTests.back4(80) + Self.zeros(20) + Self.ie(24))
        let r = run(&t, in6)
        #expect(r.bytes == want, "\(diff(r.bytes, want))")
    }

    /// RFC 4884 §4.5: a length attribute that covers the whole payload means no extension (the translated
    /// error has none, and a zero length); one below 128 bytes or past the payload is not valid and is
    /// read as no extension too (as Jool does): the same translation as a zero attribute.
    @Test func rfc4884_4_5_lengthAttributeEdges() {
        var t = makeTranslator()
        let whole = RFC7915ICMPErrorTests.error6to4(type: 1, code: 4, rest: 16 << 24, body: RFC7915ICMPErrorTests.back6(80))
        let r = run(&t, whole)
        let want = RFC7915ICMPErrorTests.expected4(type: 3, code: 3, body: RFC7915ICMPErrorTests.back4(80))
        #expect(r.bytes == want, "\(diff(r.bytes, want))")
        let zero = RFC7915ICMPErrorTests.error6to4(type: 1, code: 4, rest: 0,
                                                   body: RFC7915ICMPErrorTests.back6(80) + Self.ie(20))
        // Fresh translators, so that the IPv4 identifications they choose are the same.
        var t0 = makeTranslator()
        let plain = run(&t0, zero)
        #expect(plain.verdict.isForwarded)
        for words in [15, 20] {
            let bad = RFC7915ICMPErrorTests.error6to4(type: 1, code: 4, rest: UInt32(words) << 24,
                                                      body: RFC7915ICMPErrorTests.back6(80) + Self.ie(20))
            var tb = makeTranslator()
            let b = run(&tb, bad)
            #expect(b.verdict.isForwarded && b.bytes == plain.bytes, "length attribute \(words) words: \(b.verdict)")
        }
    }

    /// ICMPv4 → ICMPv6 vectors (after the graybox "id" analysis): (UDP payload of the packet in error,
    /// ICMPv4 length attribute in 32-bit words, extension bytes) → (bytes of the translated datagram kept,
    /// zero padding, extension kept, ICMPv6 length attribute in 64-bit words).
    static let extensions4to6: [(n: Int, words4: UInt32, ie: Int, keep: Int, pad: Int, keepIE: Bool, words6: UInt32)] = [
        (104, 33, 40, 152, 0, true, 19),     // small datagram and extension
        (100, 32, 20, 148, 4, true, 19),     // 148 bytes of IPv6 datagram padded to 64 bits (RFC 4884 §4.5)
        (104, 33, 1080, 152, 0, true, 19),   // 40 + 8 + 152 + 1080 = 1280
        (552, 145, 640, 592, 0, true, 74),   // datagram cut to make room for the extension
        (992, 255, 200, 1032, 0, true, 129), // datagram cut a little
        (992, 255, 1104, 128, 0, true, 16),  // largest extension: datagram cut to 128
        (100, 32, 1105, 148, 0, false, 0),   // extension too large: it goes
        (992, 255, 1105, 1040, 0, false, 0), // extension too large: it goes, the datagram stays whole
    ]

    @Test(arguments: 0..<extensions4to6.count)
    func rfc7915_4_2_icmpExtensionCarriedWithLengthAdjusted(row: Int) {
        let v = Self.extensions4to6[row]
        var t = makeTranslator()
        let inner4 = RFC7915ICMPErrorTests.inner4(v.n)
        #expect(inner4.count == Int(v.words4) * 4)
        let in4 = RFC7915ICMPErrorTests.error4(type: 3, code: 3, rest: v.words4 << 16, body: inner4 + Self.ie(v.ie))
        let body6 = Array(RFC7915ICMPErrorTests.inner6(v.n).prefix(v.keep)) + Self.zeros(v.pad) + (v.keepIE ? Self.ie(v.ie) : [])
        let want = RFC7915ICMPErrorTests.error6(type: 1, code: 4, rest: v.words6 << 24, body: body6)
        let r = run(&t, in4)
        #expect(r.verdict == toIPv6)
        #expect(r.bytes == want, "row \(row): \(diff(r.bytes, want))")
        #expect(r.bytes.count <= 1280)
    }

    /// Packet Too Big and Parameter Problem have no length attribute in ICMPv6: the extension is left out
    /// and the datagram ends where the ICMPv4 length attribute said.
    @Test func rfc7915_4_2_extensionDroppedWhereICMPv6HasNoLength() {
        var t = makeTranslator()
        let inner4 = RFC7915ICMPErrorTests.inner4(100)
        let fn = RFC7915ICMPErrorTests.error4(type: 3, code: 4, rest: 32 << 16 | 1400, body: inner4 + Self.ie(20))
        let ptb = RFC7915ICMPErrorTests.error6(type: 2, code: 0, rest: 1420, body: RFC7915ICMPErrorTests.inner6(100))
        let r = run(&t, fn)
        #expect(r.bytes == ptb, "\(diff(r.bytes, ptb))")
        let pp = RFC7915ICMPErrorTests.error4(type: 12, code: 0, rest: 8 << 24 | 32 << 16, body: inner4 + Self.ie(20))
        let pp6 = RFC7915ICMPErrorTests.error6(type: 4, code: 0, rest: 7, body: RFC7915ICMPErrorTests.inner6(100))
        let r2 = run(&t, pp)
        #expect(r2.bytes == pp6, "\(diff(r2.bytes, pp6))")
    }

    @Test func rfc7915_4_2_timeExceededExtensionCarried() {
        var t = makeTranslator()
        let in4 = RFC7915ICMPErrorTests.error4(type: 11, code: 0, rest: 33 << 16,
                                               body: RFC7915ICMPErrorTests.inner4(104) + Self.ie(24))
        let want = RFC7915ICMPErrorTests.error6(type: 3, code: 0, rest: 19 << 24,
                                                body: RFC7915ICMPErrorTests.inner6(104) + Self.ie(24))
        let r = run(&t, in4)
        #expect(r.bytes == want, "\(diff(r.bytes, want))")
    }

    // MARK: §4.1/§5.1: illegal addresses are dropped whatever the prefix

    static let martians: [IPv4Address] = [
        IPv4Address("0.0.0.0")!, IPv4Address("0.1.2.3")!, IPv4Address("127.0.0.1")!, IPv4Address("224.0.0.1")!,
        IPv4Address("239.1.2.3")!, IPv4Address("240.0.0.1")!, IPv4Address("255.255.255.255")!,
    ]

    /// RFC 7915 §4.1 "Source Address": "If the translator gets an illegal source address (e.g., 0.0.0.0,
    /// 127.0.0.1, etc.), the translator SHOULD silently drop the packet (as discussed in Section 5.3.7 of
    /// [RFC1812])" — also under a prefix that may carry non-global addresses (the test prefix here).
    @Test(arguments: martians)
    func rfc7915_4_1_illegalIPv4SourceSilentlyDropped(source: IPv4Address) {
        var t = makeTranslator { $0.sendProhibitedErrors = true }
        let in4 = PacketBuilder.udp4(source: source, sourcePort: 53, destination: host4, destinationPort: 5000,
                                     payload: payload(8))
        let r = run(&t, in4)
        #expect(r.verdict == .drop(.nonGlobalIPv4Address))
        #expect(r.generated.isEmpty)
    }

    /// RFC 1812 §5.3.7: nor is a packet for such a destination forwarded (an EAM row could name one).
    @Test func rfc7915_4_1_illegalIPv4DestinationDropped() {
        var t = makeTranslator(siit: {
            $0.explicitMappings.append(try! ExplicitAddressMapping(ipv4: "127.0.0.0/24", ipv6: "2001:db8:7f::/120"))
        })
        let in4 = PacketBuilder.udp4(source: server4, sourcePort: 53, destination: IPv4Address("127.0.0.5")!,
                                     destinationPort: 5000, payload: payload(8))
        #expect(run(&t, in4).verdict == .drop(.nonGlobalIPv4Address))
    }

    /// RFC 7915 §1/§4.1: "when translating ICMPv4 Error Messages into ICMPv6, the 'illegal' source address
    /// will be translated for the purpose of trouble shooting" (graybox vector ha).
    @Test(arguments: [IPv4Address("127.0.0.1")!, IPv4Address("0.0.0.0")!])
    func rfc7915_4_1_icmpErrorFromIllegalSourceTranslated(source: IPv4Address) {
        var t = makeTranslator()
        let in4 = PacketBuilder.icmp4(source: source, destination: host4, header: ICMPv4Header(type: 3, code: 3),
                                      body: RFC7915ICMPErrorTests.inner4())
        let want = PacketBuilder.icmp6(source: IPv6Address(high: 0x0064_ff9b_0000_0000, low: UInt64(source.rawValue)),
                                       destination: host6, header: ICMPv6Header(type: 1, code: 4),
                                       body: RFC7915ICMPErrorTests.inner6(), hopLimit: 63)
        let r = run(&t, in4)
        #expect(r.verdict == toIPv6)
        #expect(r.bytes == want, "\(diff(r.bytes, want))")
    }

    /// RFC 7915 §5.1 "Source Address": an illegal IPv6 source (e.g. ::1) SHOULD be silently dropped: no
    /// "administratively prohibited" error goes back to it.
    @Test(arguments: [IPv6Address("::1")!, IPv6Address("::")!, IPv6Address("ff02::1")!])
    func rfc7915_5_1_illegalIPv6SourceSilentlyDropped(source: IPv6Address) {
        var t = makeTranslator { $0.sendProhibitedErrors = true }
        let in6 = PacketBuilder.udp6(source: source, sourcePort: 5000, destination: server6, destinationPort: 53,
                                     payload: payload(8))
        let r = run(&t, in6)
        #expect(r.verdict == .drop(.notNATTraffic))
        #expect(r.generated.isEmpty)
    }

    // MARK: §4.1: IPv4 options

    /// RFC 7915 §4.1: "if an unexpired source route option is present, then the packet MUST instead be
    /// discarded" — an ICMPv4 error too (silently: no error about an error, RFC 1812 §4.3.2.7).
    @Test func rfc7915_4_1_icmpErrorWithUnexpiredSourceRouteDiscarded() {
        var t = makeTranslator()
        let icmp = Array(RFC7915ICMPErrorTests.error4(type: 3, code: 3)[20...])
        // Loose Source and Record Route, length 11, pointer 4 (the first address not yet used), then EOL.
        var h = IPv4Header(protocolNumber: IPProtocol.icmp, source: router4, destination: host4, ttl: 64)
        h.options = [131, 11, 4, 203, 0, 113, 7, 198, 51, 100, 5, 0]
        let r = run(&t, PacketBuilder.ipv4(h, payload: icmp))
        #expect(r.verdict == .drop(.sourceRouteRefused))
        #expect(r.generated.isEmpty)
        // With the route used up (pointer past its length) the option is ignored and the error translated.
        h.options = [131, 11, 12, 203, 0, 113, 7, 198, 51, 100, 5, 0]
        let r2 = run(&t, PacketBuilder.ipv4(h, payload: icmp))
        let want = RFC7915ICMPErrorTests.error6(type: 1, code: 4)
        #expect(r2.bytes == want, "\(diff(r2.bytes, want))")
    }

    /// Graybox vector aa: the options of RFC 791 (expired source routes among them) are ignored.
    @Test(arguments: [
        [130, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 131, 11, 12, 198, 51, 100, 2, 198, 51, 100, 1,
         137, 11, 12, 198, 51, 100, 2, 198, 51, 100, 1, 136, 4, 1, 2, 0, 1, 1] as [UInt8],
        [7, 11, 8, 198, 51, 100, 2, 0, 0, 0, 0, 68, 20, 13, 1, 198, 51, 100, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
         0] as [UInt8],
    ])
    func rfc7915_4_1_optionsIgnored(options: [UInt8]) {
        var t = makeTranslator()
        let plain = PacketBuilder.udp4(source: server4, sourcePort: 53, destination: host4, destinationPort: 5000,
                                       payload: payload(20), identification: 0x4242)
        var h = IPv4Header(protocolNumber: IPProtocol.udp, source: server4, destination: host4, ttl: 64, identification: 0x4242)
        h.options = options
        let in4 = PacketBuilder.ipv4(h, payload: Array(plain[20...]))
        let want = PacketBuilder.udp6(source: server6, sourcePort: 53, destination: host6, destinationPort: 5000,
                                      payload: payload(20), hopLimit: 63)
        let r = run(&t, in4)
        #expect(r.bytes == want, "\(diff(r.bytes, want))")
    }
}
