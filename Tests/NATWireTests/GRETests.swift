import Testing
import NATWire

@Suite struct GRETests {
    let tunnelA = IPv4Address(203, 0, 113, 1)
    let tunnelB = IPv4Address(203, 0, 113, 2)
    let client = IPv4Address(100, 64, 0, 2)
    let pptpServer = IPv4Address(203, 0, 113, 5)

    func withGRE(_ pkt: [UInt8], _ body: (IPv4View, GREView) throws -> Void) throws {
        try pkt.withUnsafeBytes { b in
            let ip = try IPv4View(validating: b)
            #expect(ip.protocolNumber == IPProtocol.gre && ip.isChecksumValid)
            try body(ip, try GREView(validating: sub(b, ip.headerLength, ip.payloadLength)))
        }
    }

    /// The inner packet of the keyed, sequenced, checksummed tunnel.
    var inner: [UInt8] {
        PacketBuilder.icmp4(source: ip4A, destination: ip4B,
                            header: ICMPv4Header(type: 8, identifier: 1, sequenceNumber: 1),
                            body: Array("ping".utf8), identification: 7)
    }

    /// RFC 2784 §2 with RFC 2890 §2.1-2.2: checksum, key and sequence number present.
    @Test func rfc2890_keySequenceChecksumApartAndBuilt() throws {
        let pkt = Fixtures.gre4KeySeqChecksum
        try withGRE(pkt) { ip, gre in
            #expect(ip.source == tunnelA && ip.destination == tunnelB)
            #expect(gre.version == 0 && !gre.isEnhanced && gre.protocolType == GREProtocolType.ipv4)
            #expect(gre.checksumPresent && gre.keyPresent && gre.sequencePresent && !gre.acknowledgmentPresent)
            #expect(gre.keyOffset == 8 && gre.sequenceOffset == 12 && gre.headerLength == 16)
            #expect(gre.key == 0x1234 && gre.sequenceNumber == 1 && gre.acknowledgmentNumber == nil)
            #expect(gre.callID == nil && gre.pptpPayloadLength == nil)
            #expect(gre.isChecksumValid && gre.checksum != nil)
            #expect(gre.payloadLength == inner.count)
            let innerIP = try IPv4View(validating: UnsafeRawBufferPointer(start: gre.payloadPointer, count: gre.payloadLength))
            #expect(innerIP.source == ip4A && innerIP.isChecksumValid)
        }
        #expect(referenceChecksum(Array(pkt[20...])) == 0)
        let header = GREHeader(protocolType: GREProtocolType.ipv4, key: 0x1234, sequenceNumber: 1, checksumPresent: true)
        #expect(header.headerLength == 16)
        let built = buildIntoJunk(pkt.count) { b in
            IPv4Header(protocolNumber: IPProtocol.gre, source: tunnelA, destination: tunnelB, identification: 0x0100)
                .emit(into: b, totalLength: b.count)
            let hl = header.emit(into: sub(b, 20))
            copy(inner, into: b, at: 20 + hl)
            try! MutableGREView(validating: sub(b, 20)).updateChecksum()
        }
        #expect(built == pkt)
        #expect(PacketBuilder.gre4(source: tunnelA, destination: tunnelB, header: header, payload: inner,
                                   identification: 0x0100) == pkt)
    }

    /// RFC 2784: the plain four-byte header carrying IPv6.
    @Test func rfc2784_plainHeader() throws {
        let pkt = Fixtures.gre4Plain
        try withGRE(pkt) { _, gre in
            #expect(gre.flagsAndVersion == 0 && gre.protocolType == GREProtocolType.ipv6)
            #expect(gre.headerLength == 4 && gre.key == nil && gre.sequenceNumber == nil && gre.checksum == nil)
            #expect(gre.isChecksumValid)
            let v6 = IPv6View(unchecked: gre.payloadPointer, count: gre.payloadLength)
            #expect(v6.version == 6 && v6.nextHeader == IPProtocol.noNextHeader)
        }
        let payload = PacketBuilder.ipv6(IPv6Header(nextHeader: IPProtocol.noNextHeader, source: ip6A, destination: ip6B), payload: [])
        #expect(PacketBuilder.gre4(source: tunnelA, destination: tunnelB, header: GREHeader(protocolType: GREProtocolType.ipv6),
                                   payload: payload, identification: 0x0101) == pkt)
    }

    /// RFC 2890 §2.1: a key rewrite keeps the RFC 2784 checksum right.
    @Test func rfc2890_keyRewriteKeepsChecksum() throws {
        var pkt = Fixtures.gre4KeySeqChecksum
        try pkt.withUnsafeMutableBytes { b in
            let gre = try MutableGREView(validating: sub(b, 20))
            #expect(gre.rewriteKey(0xCAFE_F00D))
            #expect(gre.key == 0xCAFE_F00D && gre.isChecksumValid)
            #expect(gre.setSequenceNumber(2) && !gre.setAcknowledgmentNumber(3))
            gre.updateChecksum()
            #expect(gre.isChecksumValid && gre.sequenceNumber == 2)
            #expect(!gre.rewriteCallID(1))
        }
    }

    /// RFC 2637 §4.1: enhanced GRE with sequence and acknowledgment, payload length and call ID in the key.
    @Test func rfc2637_pptpApartAndBuilt() throws {
        let pkt = Fixtures.gre4PPTP
        let ppp = hex("ff 03 00 21 01 02 03 04 05 06 07 08")
        try withGRE(pkt) { ip, gre in
            #expect(ip.source == client && ip.destination == pptpServer)
            #expect(gre.version == 1 && gre.isEnhanced && gre.protocolType == GREProtocolType.ppp)
            #expect(!gre.checksumPresent && gre.keyPresent && gre.sequencePresent && gre.acknowledgmentPresent)
            #expect(gre.flagsAndVersion == 0x3081)
            #expect(gre.headerLength == 16 && gre.acknowledgmentOffset == 12)
            #expect(gre.pptpPayloadLength == 12 && gre.callID == 0x4001)
            #expect(gre.sequenceNumber == 5 && gre.acknowledgmentNumber == 3)
            #expect(gre.count == 28 && gre.payloadLength == 12)
            #expect(gre.payloadPointer.load(as: UInt8.self) == 0xff)
        }
        let header = GREHeader.pptp(callID: 0x4001, sequenceNumber: 5, acknowledgmentNumber: 3)
        #expect(header.callID == 0x4001)
        let built = buildIntoJunk(pkt.count) { b in
            IPv4Header(protocolNumber: IPProtocol.gre, source: client, destination: pptpServer, identification: 0x0200)
                .emit(into: b, totalLength: b.count)
            var h = header
            h.key = 12 << 16 | 0x4001
            copy(ppp, into: b, at: 20 + h.emit(into: sub(b, 20)))
        }
        #expect(built == pkt)
        #expect(PacketBuilder.gre4(source: client, destination: pptpServer, header: header, payload: ppp,
                                   identification: 0x0200) == pkt)
    }

    /// RFC 2637 §4.1: an acknowledgment-only packet (no S, no payload).
    @Test func rfc2637_ackOnly() throws {
        let pkt = Fixtures.gre4PPTPAckOnly
        try withGRE(pkt) { _, gre in
            #expect(gre.headerLength == 12 && !gre.sequencePresent && gre.acknowledgmentOffset == 8)
            #expect(gre.acknowledgmentNumber == 6 && gre.pptpPayloadLength == 0 && gre.payloadLength == 0)
        }
        #expect(PacketBuilder.gre4(source: pptpServer, destination: client,
                                   header: .pptp(callID: 0x4001, acknowledgmentNumber: 6), identification: 0x0201) == pkt)
    }

    /// The NAT's PPTP rewrite: the call ID changes, nothing else, and there is no checksum to fix.
    @Test func rfc2637_rewriteCallID() throws {
        var pkt = Fixtures.gre4PPTP
        try pkt.withUnsafeMutableBytes { b in
            let gre = try MutableGREView(validating: sub(b, 20))
            #expect(gre.rewriteCallID(0x7777))
            #expect(gre.callID == 0x7777 && gre.pptpPayloadLength == 12 && gre.readOnly.sequenceNumber == 5)
            #expect(gre.setAcknowledgmentNumber(9) && gre.acknowledgmentNumber == 9)
        }
        var expected = Fixtures.gre4PPTP
        expected[26] = 0x77; expected[27] = 0x77
        expected[32..<36] = [0, 0, 0, 9]
        #expect(pkt == expected)
    }

    /// The PPTP payload length bounds the view (trailing bytes are ignored).
    @Test func rfc2637_payloadLengthBoundsTheView() throws {
        let padded = Array(Fixtures.gre4PPTP[20...]) + [0xEE, 0xEE]
        try padded.withUnsafeBytes { b in
            let gre = try GREView(validating: b)
            #expect(gre.count == 28)
        }
    }

    @Test func ownedHeaderRoundTrips() throws {
        for pkt in [Fixtures.gre4PPTP, Fixtures.gre4KeySeqChecksum, Fixtures.gre4Plain, Fixtures.gre4PPTPAckOnly] {
            try pkt.withUnsafeBytes { b in
                let v = try GREView(validating: sub(b, 20))
                let h = GREHeader(v)
                #expect(h.headerLength == v.headerLength)
                var out = [UInt8](repeating: 0xEE, count: h.headerLength)
                out.withUnsafeMutableBytes { _ = h.emit(into: $0) }
                var expected = Array(pkt[20..<(20 + v.headerLength)])
                if v.checksumPresent { expected[4] = 0; expected[5] = 0 }
                #expect(out == expected)
            }
        }
    }
}
