import Testing
import NATWire

@Suite struct IPv4Tests {
    /// RFC 791 §3.1: every field of a real UDP/DNS datagram.
    @Test func rfc791_takesRealDatagramApart() throws {
        let pkt = Fixtures.udp4DNS
        try pkt.withUnsafeBytes { b in
            let ip = try IPv4View(validating: b)
            #expect(ip.version == 4)
            #expect(ip.headerLength == 20)
            #expect(ip.tos == 0 && ip.dscp == 0 && ip.ecn == 0)
            #expect(ip.totalLength == 57 && ip.count == 57)
            #expect(ip.identification == 0x1c46)
            #expect(ip.dontFragment && !ip.moreFragments && ip.fragmentOffset == 0)
            #expect(!ip.isFragment && !ip.isNonFirstFragment)
            #expect(ip.ttl == 64)
            #expect(ip.protocolNumber == IPProtocol.udp)
            #expect(ip.checksum == 0x3232)
            #expect(ip.source == IPv4Address("192.0.2.1"))
            #expect(ip.destination == IPv4Address("198.51.100.7"))
            #expect(!ip.hasOptions && ip.options.isEmpty)
            #expect(ip.payloadOffset == 20 && ip.payloadLength == 37)
            #expect(ip.isChecksumValid)
        }
        #expect(referenceChecksum(Array(pkt[0..<20])) == 0)
    }

    /// The same datagram built into a buffer of junk byte for byte, and by the builder.
    @Test func rfc791_buildsRealDatagramIntoJunk() {
        let built = buildIntoJunk(Fixtures.udp4DNS.count) { b in
            let h = IPv4Header(protocolNumber: IPProtocol.udp, source: ip4A, destination: ip4B,
                               identification: 0x1c46, dontFragment: true)
            let hl = h.emit(into: b, totalLength: b.count)
            UDPHeader(sourcePort: 53000, destinationPort: 53).emit(into: sub(b, hl), length: b.count - hl)
            copy(dnsQuery, into: b, at: hl + 8)
            let udp = MutableUDPView(unchecked: b.baseAddress! + hl, count: b.count - hl)
            let ph = Checksum.pseudoHeaderSum(source: ip4A, destination: ip4B, protocol: IPProtocol.udp, length: udp.count)
            udp.setChecksum(Checksum.finish(Checksum.sum(UnsafeRawPointer(udp.mutablePointer), count: udp.count, initial: ph)))
        }
        #expect(built == Fixtures.udp4DNS)
        let fromBuilder = PacketBuilder.udp4(source: ip4A, sourcePort: 53000, destination: ip4B, destinationPort: 53,
                                             payload: dnsQuery, identification: 0x1c46, dontFragment: true)
        #expect(fromBuilder == Fixtures.udp4DNS)
    }

    @Test func ownedHeaderRoundTripsThroughView() throws {
        try Fixtures.tcp4SYN.withUnsafeBytes { b in
            let h = IPv4Header(try IPv4View(validating: b))
            #expect(h.identification == 0xbeef && h.dontFragment && h.protocolNumber == IPProtocol.tcp)
            let again = buildIntoJunk(20) { h.emit(into: $0, totalLength: Fixtures.tcp4SYN.count) }
            #expect(again == Array(Fixtures.tcp4SYN[0..<20]))
        }
    }

    /// RFC 791 §3.1 options: a record-route option with NOP padding parses and re-emits.
    @Test func rfc791_optionsParseAndEmit() throws {
        var h = IPv4Header(protocolNumber: IPProtocol.icmp, source: ip4A, destination: ip4B)
        h.options = [IPv4Option.noOperation, IPv4Option.recordRoute, 7, 4, 0, 0, 0, 0]
        let pkt = PacketBuilder.ipv4(h, payload: [8, 0, 0xf7, 0xff, 0, 0, 0, 0])
        try pkt.withUnsafeBytes { b in
            let v = try IPv4View(validating: b)
            #expect(v.headerLength == 28 && v.hasOptions && v.isChecksumValid)
            #expect(v.options == [IPv4Option(type: 1, data: []), IPv4Option(type: 7, data: [4, 0, 0, 0, 0])])
            #expect(IPv4Header(v) == h)
        }
    }

    /// RFC 791 fragment fields: MF and a non-zero offset.
    @Test func rfc791_fragmentFields() throws {
        var h = IPv4Header(protocolNumber: IPProtocol.udp, source: ip4A, destination: ip4B, identification: 77)
        h.moreFragments = true
        h.fragmentOffset = 1480
        let pkt = PacketBuilder.ipv4(h, payload: [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(pkt[6] == 0x20 | UInt8((1480 / 8) >> 8) && pkt[7] == UInt8((1480 / 8) & 0xFF))
        try pkt.withUnsafeBytes { b in
            let v = try IPv4View(validating: b)
            #expect(v.moreFragments && v.fragmentOffset == 1480 && v.isFragment && v.isNonFirstFragment && !v.dontFragment)
        }
    }

    /// RFC 1624: NAT rewrites of source, destination and TTL keep the header checksum right.
    @Test func rfc1624_rewritesKeepHeaderChecksumValid() throws {
        var pkt = Fixtures.udp4DNS
        try pkt.withUnsafeMutableBytes { b in
            let ip = try MutableIPv4View(validating: b)
            var delta = ChecksumDelta()
            ip.rewriteSource(IPv4Address(203, 0, 113, 1), delta: &delta)
            ip.rewriteDestination(IPv4Address(100, 64, 0, 9), delta: &delta)
            ip.rewriteTTL(63)
            #expect(ip.isChecksumValid)
            let udp = try MutableUDPView(validating: sub(b, 20))
            udp.rewriteSourcePort(1024, delta: delta)
            #expect(ip.ttl == 63 && ip.source == IPv4Address(203, 0, 113, 1) && ip.destination == IPv4Address(100, 64, 0, 9))
        }
        #expect(referenceChecksum(Array(pkt[0..<20])) == 0)
        #expect(verifies(pseudoHeader4(IPv4Address(203, 0, 113, 1), IPv4Address(100, 64, 0, 9), 17, 37), Array(pkt[20...])))
    }

    @Test func updateChecksumRecomputesFromScratch() throws {
        var pkt = Fixtures.udp4DNS
        pkt[10] = 0xAB; pkt[11] = 0xCD
        try pkt.withUnsafeMutableBytes { b in
            let ip = try MutableIPv4View(validating: b)
            #expect(!ip.isChecksumValid)
            ip.updateChecksum()
            #expect(ip.checksum == 0x3232)
        }
    }
}

@Suite struct UDPTests {
    /// RFC 768: every field of the real DNS query.
    @Test func rfc768_takesRealDatagramApart() throws {
        let pkt = Fixtures.udp4DNS
        try pkt.withUnsafeBytes { b in
            let udp = try UDPView(validating: sub(b, 20))
            #expect(udp.sourcePort == 53000 && udp.destinationPort == 53)
            #expect(udp.length == 37 && udp.count == 37 && udp.payloadLength == 29)
            #expect(udp.checksum == 0xc8ee && udp.hasChecksum)
        }
        #expect(verifies(pseudoHeader4(ip4A, ip4B, 17, 37), Array(pkt[20...])))
    }

    /// The UDP length field, not the buffer, bounds the datagram (trailing link padding is ignored).
    @Test func rfc768_lengthFieldBoundsTheView() throws {
        let padded = Array(Fixtures.udp4DNS[20...]) + [0, 0, 0, 0]
        try padded.withUnsafeBytes { b in
            let udp = try UDPView(validating: b)
            #expect(udp.count == 37)
        }
    }

    @Test func rfc768_portRewriteMatchesFullRecompute() throws {
        var pkt = Fixtures.udp4DNS
        try pkt.withUnsafeMutableBytes { b in
            let udp = try MutableUDPView(validating: sub(b, 20))
            udp.rewriteDestinationPort(5353, delta: ChecksumDelta())
        }
        let expected = PacketBuilder.udp4(source: ip4A, sourcePort: 53000, destination: ip4B, destinationPort: 5353,
                                          payload: dnsQuery, identification: 0x1c46, dontFragment: true)
        #expect(pkt == expected)
    }

    @Test func rfc768_checksumOffBuildsZero() throws {
        let pkt = PacketBuilder.udp4(source: ip4A, sourcePort: 1, destination: ip4B, destinationPort: 2, checksum: false)
        try pkt.withUnsafeBytes { b in
            let udp = try UDPView(validating: sub(b, 20))
            #expect(udp.checksum == 0 && !udp.hasChecksum && udp.payloadLength == 0)
        }
    }
}

@Suite struct TCPTests {
    /// RFC 9293 §3.1 and §3.2: a real Linux-style SYN with MSS, SACK permitted, timestamps, NOP, window scale.
    @Test func rfc9293_takesRealSYNApart() throws {
        let pkt = Fixtures.tcp4SYN
        try pkt.withUnsafeBytes { b in
            let ip = try IPv4View(validating: b)
            #expect(ip.source == IPv4Address(100, 64, 0, 2) && ip.destination == IPv4Address(203, 0, 113, 10))
            #expect(ip.isChecksumValid && ip.checksum == 0xdb7f)
            let tcp = try TCPView(validating: sub(b, ip.headerLength, ip.payloadLength))
            #expect(tcp.sourcePort == 49152 && tcp.destinationPort == 80)
            #expect(tcp.sequenceNumber == 0x7a3f_1e01 && tcp.acknowledgmentNumber == 0)
            #expect(tcp.headerLength == 40 && tcp.payloadLength == 0)
            #expect(tcp.flags == .syn)
            #expect(tcp.window == 64240 && tcp.checksum == 0x1dd9 && tcp.urgentPointer == 0)
            #expect(tcp.options == [.maximumSegmentSize(1460), .sackPermitted,
                                    .timestamps(value: 0x0a1b_2c3d, echo: 0), .windowScale(7)])
            #expect(tcp.mssOptionOffset == 22)
        }
        #expect(verifies(pseudoHeader4(IPv4Address(100, 64, 0, 2), IPv4Address(203, 0, 113, 10), 6, 40), Array(pkt[20...])))
    }

    @Test func rfc9293_buildsRealSYNIntoJunk() {
        let src = IPv4Address(100, 64, 0, 2), dst = IPv4Address(203, 0, 113, 10)
        let options = hex("02 04 05 b4 04 02 08 0a 0a 1b 2c 3d 00 00 00 00 01 03 03 07")
        let th = TCPHeader(sourcePort: 49152, destinationPort: 80, flags: .syn, sequenceNumber: 0x7a3f_1e01,
                           window: 64240, options: options)
        let built = buildIntoJunk(60) { b in
            IPv4Header(protocolNumber: IPProtocol.tcp, source: src, destination: dst, identification: 0xbeef,
                       dontFragment: true).emit(into: b, totalLength: 60)
            let seg = sub(b, 20)
            th.emit(into: seg)
            let ph = Checksum.pseudoHeaderSum(source: src, destination: dst, protocol: IPProtocol.tcp, length: 40)
            MutableTCPView(unchecked: seg.baseAddress!, count: 40)
                .setChecksum(Checksum.finish(Checksum.sum(UnsafeRawBufferPointer(seg), initial: ph)))
        }
        #expect(built == Fixtures.tcp4SYN)
        #expect(PacketBuilder.tcp4(source: src, destination: dst, header: th, identification: 0xbeef) == Fixtures.tcp4SYN)
    }

    /// MSS clamping (RFC 4459 §3.2 / RFC 6888 practice) lowers the value and keeps the checksum right,
    /// at an even and at an odd option offset.
    @Test(arguments: [[UInt8](), [1]])
    func mssClampKeepsChecksumRight(_ prefix: [UInt8]) throws {
        let src = IPv4Address(100, 64, 0, 2), dst = IPv4Address(203, 0, 113, 10)
        let options = prefix + [2, 4, 0x05, 0xb4] + [1, 1, 1, 1].prefix(prefix.isEmpty ? 0 : 3)
        var pkt = PacketBuilder.tcp4(source: src, destination: dst,
                                     header: TCPHeader(sourcePort: 1, destinationPort: 2, flags: .syn, options: options))
        try pkt.withUnsafeMutableBytes { b in
            let tcp = try MutableTCPView(validating: sub(b, 20))
            #expect(tcp.mssOptionOffset == 22 + prefix.count)
            #expect(tcp.clampMSS(to: 1400))
            #expect(!tcp.clampMSS(to: 1452))
            #expect(tcp.options.first == .maximumSegmentSize(1400))
        }
        #expect(verifies(pseudoHeader4(src, dst, 6, pkt.count - 20), Array(pkt[20...])))
    }

    @Test func rfc1624_portAndAddressRewriteMatchesFullRecompute() throws {
        var pkt = Fixtures.tcp4SYN
        let newSrc = IPv4Address(203, 0, 113, 77)
        try pkt.withUnsafeMutableBytes { b in
            let ip = try MutableIPv4View(validating: b)
            var delta = ChecksumDelta()
            ip.rewriteSource(newSrc, delta: &delta)
            let tcp = try MutableTCPView(validating: sub(b, 20))
            tcp.rewriteSourcePort(61000, delta: delta)
        }
        #expect(referenceChecksum(Array(pkt[0..<20])) == 0)
        #expect(verifies(pseudoHeader4(newSrc, IPv4Address(203, 0, 113, 10), 6, 40), Array(pkt[20...])))
    }

    @Test func ownedHeaderRoundTrips() throws {
        try Fixtures.tcp4SYN.withUnsafeBytes { b in
            let h = TCPHeader(try TCPView(validating: sub(b, 20)))
            #expect(h.options.count == 20 && h.flags == .syn && h.headerLength == 40)
        }
    }
}
