import Testing
import NATWire

/// Every refusal names the right ``WireError``.
@Suite struct ValidationTests {
    func ipv4Error(_ b: [UInt8]) -> WireError? { b.withUnsafeBytes { p in wireError { try IPv4View(validating: p) } } }
    func ipv6Error(_ b: [UInt8]) -> WireError? { b.withUnsafeBytes { p in wireError { try IPv6View(validating: p) } } }
    func tcpError(_ b: [UInt8]) -> WireError? { b.withUnsafeBytes { p in wireError { try TCPView(validating: p) } } }
    func udpError(_ b: [UInt8]) -> WireError? { b.withUnsafeBytes { p in wireError { try UDPView(validating: p) } } }
    func greError(_ b: [UInt8]) -> WireError? { b.withUnsafeBytes { p in wireError { try GREView(validating: p) } } }
    func chainError(_ b: [UInt8]) -> WireError? {
        b.withUnsafeBytes { p in wireError { try IPv6View(validating: p).walkExtensionHeaders() } }
    }

    @Test func emptyBuffersAreTruncated() {
        let empty: [UInt8] = []
        #expect(ipv4Error(empty) == .truncated)
        #expect(ipv6Error(empty) == .truncated)
        #expect(tcpError(empty) == .truncated)
        #expect(udpError(empty) == .truncated)
        #expect(greError(empty) == .truncated)
        empty.withUnsafeBytes { p in
            #expect(wireError { try ICMPv4View(validating: p) } == .truncated)
            #expect(wireError { try ICMPv6View(validating: p) } == .truncated)
        }
        var m: [UInt8] = []
        m.withUnsafeMutableBytes { p in
            #expect(wireError { try MutableIPv4View(validating: p) } == .truncated)
            #expect(wireError { try MutableIPv6View(validating: p) } == .truncated)
            #expect(wireError { try MutableGREView(validating: p) } == .truncated)
            #expect(wireError { try MutableICMPv6View(validating: p) } == .truncated)
        }
    }

    /// RFC 791 §3.1: short header, wrong version, IHL below 5 or beyond the buffer, total length out of range.
    @Test func rfc791_ipv4Refusals() {
        let good = Fixtures.udp4DNS
        #expect(ipv4Error(good) == nil)
        #expect(ipv4Error(Array(good[0..<19])) == .truncated)
        var v = good; v[0] = 0x65
        #expect(ipv4Error(v) == .badVersion)
        var ihl4 = good; ihl4[0] = 0x44
        #expect(ipv4Error(ihl4) == .badHeaderLength)
        var ihl15 = Array(good[0..<40]); ihl15[0] = 0x4F
        #expect(ipv4Error(ihl15) == .badHeaderLength)
        var short = good; short[2] = 0; short[3] = 19
        #expect(ipv4Error(short) == .badLength)
        var long = good; long[3] = UInt8(good.count + 1)
        #expect(ipv4Error(long) == .badLength)
        #expect(ipv4Error(Array(good.dropLast())) == .badLength)
        // Trailing bytes beyond the total length are fine and not part of the view.
        (good + [0, 0]).withUnsafeBytes { p in #expect((try? IPv4View(validating: p))?.count == good.count) }
    }

    /// RFC 9293 §3.1: data offset below 5 or past the segment.
    @Test func rfc9293_tcpRefusals() {
        let seg = Array(Fixtures.tcp4SYN[20...])
        #expect(tcpError(seg) == nil)
        #expect(tcpError(Array(seg[0..<19])) == .truncated)
        var off4 = seg; off4[12] = 0x40
        #expect(tcpError(off4) == .badHeaderLength)
        var off0 = seg; off0[12] = 0x00
        #expect(tcpError(off0) == .badHeaderLength)
        #expect(tcpError(Array(seg[0..<36])) == .badHeaderLength)   // 40-byte header, 36 bytes present
        var off15 = seg; off15[12] = 0xF0
        #expect(tcpError(off15) == .badHeaderLength)
    }

    /// RFC 768: length below 8 or beyond the buffer.
    @Test func rfc768_udpRefusals() {
        let d = Array(Fixtures.udp4DNS[20...])
        #expect(udpError(d) == nil)
        #expect(udpError(Array(d[0..<7])) == .truncated)
        var l7 = d; l7[4] = 0; l7[5] = 7
        #expect(udpError(l7) == .badLength)
        var l0 = d; l0[4] = 0; l0[5] = 0
        #expect(udpError(l0) == .badLength)
        #expect(udpError(Array(d.dropLast())) == .badLength)
    }

    @Test func icmpShorterThanEightBytesIsTruncated() {
        let seven: [UInt8] = [8, 0, 0, 0, 0, 0, 0]
        seven.withUnsafeBytes { p in
            #expect(wireError { try ICMPv4View(validating: p) } == .truncated)
            #expect(wireError { try ICMPv6View(validating: p) } == .truncated)
        }
    }

    /// RFC 8200 §3: short header, wrong version, payload length beyond the buffer.
    @Test func rfc8200_ipv6Refusals() {
        let good = Fixtures.udp6DNS
        #expect(ipv6Error(good) == nil)
        #expect(ipv6Error(Array(good[0..<39])) == .truncated)
        var v4 = good; v4[0] = 0x40
        #expect(ipv6Error(v4) == .badVersion)
        #expect(ipv6Error(Array(good.dropLast())) == .badLength)
        var big = good; big[4] = 0xFF
        #expect(ipv6Error(big) == .badLength)
        // IPv4 bytes are not IPv6 and vice versa.
        #expect(ipv6Error(Fixtures.tcp4SYN) == .badVersion)
        #expect(ipv4Error(Fixtures.udp6DNS) == .badVersion)
    }

    /// Builds an IPv6 packet whose payload (after the fixed header) is `ext`, announcing `first`.
    func raw6(first: UInt8, _ ext: [UInt8]) -> [UInt8] {
        PacketBuilder.ipv6(IPv6Header(nextHeader: first, source: ip6A, destination: ip6B), payload: ext)
    }

    /// RFC 8200 §4: chains that run past the packet, hop-by-hop not first, too many headers.
    @Test func rfc8200_brokenExtensionChains() {
        // Hop-by-hop after a destination options header.
        let hbhSecond = raw6(first: 60, [0, 0, 1, 4, 0, 0, 0, 0] + [17, 0, 1, 4, 0, 0, 0, 0])
        #expect(chainError(hbhSecond) == .badExtensionChain)
        // A header whose length runs past the packet.
        #expect(chainError(raw6(first: 60, [17, 1, 1, 4, 0, 0, 0, 0])) == .badExtensionChain)
        // Fewer than 8 bytes where a header should be.
        #expect(chainError(raw6(first: 0, [17, 0, 1, 2, 0, 0])) == .badExtensionChain)
        #expect(chainError(raw6(first: 43, [])) == .badExtensionChain)
        // A truncated fragment header.
        #expect(chainError(raw6(first: 44, [17, 0, 0, 1, 0, 0, 0])) == .badExtensionChain)
        // AH whose 4-byte-unit length runs past the packet.
        #expect(chainError(raw6(first: 51, [17, 4] + [UInt8](repeating: 0, count: 18))) == .badExtensionChain)
        // 17 destination options headers.
        let many: [UInt8] = (0..<17).flatMap { (i: Int) -> [UInt8] in [i == 16 ? 59 : 60, 0, 1, 4, 0, 0, 0, 0] }
        #expect(chainError(raw6(first: 60, many)) == .badExtensionChain)
        // 16 is the limit and is accepted.
        let sixteen: [UInt8] = (0..<16).flatMap { (i: Int) -> [UInt8] in [i == 15 ? 59 : 60, 0, 1, 4, 0, 0, 0, 0] }
        let ok = raw6(first: 60, sixteen).withUnsafeBytes { p in try? IPv6View(validating: p).walkExtensionHeaders() }
        #expect(ok?.extensionHeaderCount == 16 && ok?.upperLayerProtocol == 59 && ok?.upperLayerOffset == 40 + 128)
        // A chain of 255-length routing headers would loop for a while; it is refused at the end of the packet.
        #expect(chainError(raw6(first: 43, [43, 255, 0, 0, 0, 0, 0, 0])) == .badExtensionChain)
        // The view's count (payload length), not the buffer, bounds the walk.
        var cut = PacketBuilder.udp6(source: ip6A, sourcePort: 1, destination: ip6B, destinationPort: 2,
                                     extensionHeaders: [.destinationOptions(options: [])])
        cut[5] = 4   // payload length 4: the options header no longer fits
        #expect(chainError(cut) == .badExtensionChain)
    }

    /// RFC 2784 §2.3 / RFC 2637 §4.1: GRE refusals.
    @Test func rfc2784_greRefusals() {
        let pptp = Array(Fixtures.gre4PPTP[20...])
        let keyed = Array(Fixtures.gre4KeySeqChecksum[20...])
        #expect(greError(pptp) == nil && greError(keyed) == nil)
        #expect(greError([0, 0, 8]) == .truncated)
        #expect(greError([0x00, 0x02, 0x08, 0x00]) == .badVersion)          // version 2
        #expect(greError([0x40, 0x00, 0x08, 0x00, 0, 0, 0, 0]) == .badHeaderLength)   // routing present
        #expect(greError([0x01, 0x00, 0x08, 0x00]) == .badHeaderLength)     // recursion
        #expect(greError(Array(keyed[0..<15])) == .truncated)               // C K S need 16 bytes
        #expect(greError([0x80, 0x00, 0x08, 0x00, 0, 0]) == .truncated)
        #expect(greError([0x10, 0x01, 0x88, 0x0B, 0, 0, 0, 0]) == .badHeaderLength)   // v1 without K
        #expect(greError([0xA0, 0x01, 0x88, 0x0B, 0, 0, 0, 0, 0, 0, 0, 0]) == .badHeaderLength) // v1 with C
        #expect(greError(Array(pptp.dropLast())) == .badLength)             // payload length 12, 11 present
        #expect(greError(Array(pptp[0..<15])) == .truncated)                // S and A need 16 bytes
    }

    @Test func wireErrorNamesAreMetricLabels() {
        #expect(WireError.allCases.map(\.description) ==
                ["truncated", "bad_version", "bad_header_length", "bad_length", "bad_checksum", "bad_extension_chain"])
    }
}
