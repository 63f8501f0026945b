import Testing
import NATWire

@Suite struct ICMPv4Tests {
    let client = IPv4Address(100, 64, 0, 2)
    let router = IPv4Address(198, 51, 100, 254)

    /// Validates the IPv4 header and returns the ICMP view's fields through `body`.
    func withICMP(_ pkt: [UInt8], _ body: (IPv4View, ICMPv4View) throws -> Void) throws {
        try pkt.withUnsafeBytes { b in
            let ip = try IPv4View(validating: b)
            #expect(ip.protocolNumber == IPProtocol.icmp)
            #expect(ip.isChecksumValid)
            let icmp = try ICMPv4View(validating: sub(b, ip.headerLength, ip.payloadLength))
            #expect(icmp.isChecksumValid)
            try body(ip, icmp)
        }
        #expect(referenceChecksum(Array(pkt[20...])) == 0)
    }

    /// RFC 792 echo request: type 8, identifier, sequence, data.
    @Test func rfc792_echoRequestApartAndBuilt() throws {
        try withICMP(Fixtures.icmp4Echo) { ip, icmp in
            #expect(ip.source == client && ip.destination == ip4A && ip.identification == 1 && ip.dontFragment)
            #expect(icmp.type == ICMPv4Type.echoRequest && icmp.code == 0)
            #expect(icmp.checksum == 0x2d0a)
            #expect(icmp.identifier == 0x1234 && icmp.sequenceNumber == 1)
            #expect(icmp.isQuery && !icmp.isError)
            #expect(icmp.bodyLength == 16 && icmp.bodyPointer.load(fromByteOffset: 0, as: UInt8.self) == 0x10)
        }
        let data = Array(UInt8(0x10)..<0x20)
        let built = buildIntoJunk(Fixtures.icmp4Echo.count) { b in
            IPv4Header(protocolNumber: IPProtocol.icmp, source: client, destination: ip4A, identification: 1,
                       dontFragment: true).emit(into: b, totalLength: b.count)
            ICMPv4Header(type: ICMPv4Type.echoRequest, identifier: 0x1234, sequenceNumber: 1).emit(into: sub(b, 20))
            copy(data, into: b, at: 28)
            try! MutableICMPv4View(validating: sub(b, 20)).updateChecksum()
        }
        #expect(built == Fixtures.icmp4Echo)
    }

    /// RFC 1624 on a NAT's identifier rewrite (RFC 5508 §3.1): equals a full rebuild.
    @Test func rfc5508_identifierRewriteMatchesRebuild() throws {
        var pkt = Fixtures.icmp4Echo
        try pkt.withUnsafeMutableBytes { b in
            try MutableICMPv4View(validating: sub(b, 20)).rewriteIdentifier(0xBEEF)
        }
        let expected = PacketBuilder.icmp4(source: client, destination: ip4A,
                                           header: ICMPv4Header(type: 8, identifier: 0xBEEF, sequenceNumber: 1),
                                           body: Array(UInt8(0x10)..<0x20), identification: 1)
        // The builder does not set DF; compare the ICMP part, which is what was rewritten.
        #expect(Array(pkt[20...]) == Array(expected[20...]))
    }

    /// RFC 792 timestamp request (type 13): identifier, sequence, three 32-bit timestamps.
    @Test func rfc792_timestampRequest() throws {
        try withICMP(Fixtures.icmp4Timestamp) { ip, icmp in
            #expect(!ip.dontFragment)
            #expect(icmp.type == ICMPv4Type.timestampRequest && icmp.code == 0)
            #expect(icmp.identifier == 0x5a5a && icmp.sequenceNumber == 7)
            #expect(icmp.bodyLength == 12)
            #expect(icmp.bodyPointer.load(fromByteOffset: 0, as: UInt32.self).bigEndian == 0x0255_1234)
            #expect(ICMPv4Type.isQueryRequest(icmp.type) && icmp.isQuery)
        }
        let built = PacketBuilder.icmp4(source: client, destination: ip4A,
                                        header: ICMPv4Header(type: 13, identifier: 0x5a5a, sequenceNumber: 7),
                                        body: be32(0x0255_1234) + [UInt8](repeating: 0, count: 8), identification: 2)
        #expect(built == Fixtures.icmp4Timestamp)
    }

    /// RFC 792 information request (type 15): header only.
    @Test func rfc792_informationRequest() throws {
        try withICMP(Fixtures.icmp4Information) { _, icmp in
            #expect(icmp.type == ICMPv4Type.informationRequest && icmp.identifier == 0x7777 && icmp.sequenceNumber == 3)
            #expect(icmp.bodyLength == 0 && icmp.isQuery)
        }
        let built = PacketBuilder.icmp4(source: client, destination: ip4A,
                                        header: ICMPv4Header(type: 15, identifier: 0x7777, sequenceNumber: 3),
                                        identification: 3)
        #expect(built == Fixtures.icmp4Information)
    }

    /// Errors carry the offending datagram's IP header and first 8 bytes (RFC 792); check the quote parses.
    func expectQuotesUDP(_ icmp: ICMPv4View) throws {
        let inner = IPv4View(unchecked: icmp.bodyPointer, count: icmp.bodyLength)
        #expect(inner.version == 4 && inner.headerLength == 20)
        #expect(inner.source == ip4A && inner.destination == ip4B && inner.protocolNumber == IPProtocol.udp)
        #expect(inner.totalLength == 57)   // the original length, more than the quote holds
        let udp = UDPView(unchecked: icmp.bodyPointer + 20, count: 8)
        #expect(udp.sourcePort == 53000 && udp.destinationPort == 53)
    }

    @Test func rfc792_destinationUnreachablePort() throws {
        try withICMP(Fixtures.icmp4PortUnreachable) { ip, icmp in
            #expect(ip.tos == 0xc0 && ip.source == ip4B && ip.destination == ip4A)
            #expect(icmp.type == ICMPv4Type.destinationUnreachable && icmp.code == ICMPv4UnreachableCode.port)
            #expect(icmp.isError && !icmp.isQuery && icmp.restOfHeader == 0 && icmp.bodyLength == 28)
            try expectQuotesUDP(icmp)
        }
        var h = IPv4Header(protocolNumber: IPProtocol.icmp, source: ip4B, destination: ip4A, identification: 0x0400, tos: 0xc0)
        h.ttl = 64
        let built = PacketBuilder.icmp4Error(source: ip4B, destination: ip4A, type: 3, code: 3,
                                             original: Fixtures.udp4DNS, quote: 28)
        #expect(Array(built[20...]) == Array(Fixtures.icmp4PortUnreachable[20...]))
        let junk = buildIntoJunk(Fixtures.icmp4PortUnreachable.count) { b in
            h.emit(into: b, totalLength: b.count)
            ICMPv4Header(type: 3, code: 3).emit(into: sub(b, 20))
            copy(Array(Fixtures.udp4DNS[0..<28]), into: b, at: 28)
            try! MutableICMPv4View(validating: sub(b, 20)).updateChecksum()
        }
        #expect(junk == Fixtures.icmp4PortUnreachable)
    }

    /// RFC 1191 §4: fragmentation needed carries the next-hop MTU in the low 16 bits.
    @Test func rfc1191_fragmentationNeededMTU() throws {
        try withICMP(Fixtures.icmp4FragNeeded) { ip, icmp in
            #expect(ip.source == router)
            #expect(icmp.type == 3 && icmp.code == ICMPv4UnreachableCode.fragmentationNeeded)
            #expect(icmp.nextHopMTU == 1400 && icmp.restOfHeader == 1400)
            try expectQuotesUDP(icmp)
        }
        let built = PacketBuilder.icmp4Error(source: router, destination: ip4A, type: 3, code: 4, restOfHeader: 1400,
                                             original: Fixtures.udp4DNS, quote: 28)
        #expect(Array(built[20...]) == Array(Fixtures.icmp4FragNeeded[20...]))
    }

    @Test func rfc792_timeExceeded() throws {
        try withICMP(Fixtures.icmp4TimeExceeded) { _, icmp in
            #expect(icmp.type == ICMPv4Type.timeExceeded && icmp.code == 0 && icmp.isError)
            try expectQuotesUDP(icmp)
        }
        let built = PacketBuilder.icmp4Error(source: router, destination: ip4A, type: 11, code: 0,
                                             original: Fixtures.udp4DNS, quote: 28)
        #expect(Array(built[20...]) == Array(Fixtures.icmp4TimeExceeded[20...]))
    }

    /// RFC 792 parameter problem: the pointer is the first byte after the checksum.
    @Test func rfc792_parameterProblemPointer() throws {
        try withICMP(Fixtures.icmp4ParameterProblem) { _, icmp in
            #expect(icmp.type == ICMPv4Type.parameterProblem && icmp.code == 0 && icmp.isError)
            #expect(icmp.parameterPointer == 20)
            try expectQuotesUDP(icmp)
        }
        let built = PacketBuilder.icmp4Error(source: router, destination: ip4A, type: 12, code: 0, restOfHeader: 20 << 24,
                                             original: Fixtures.udp4DNS, quote: 28)
        #expect(Array(built[20...]) == Array(Fixtures.icmp4ParameterProblem[20...]))
    }

    /// RFC 792 redirect: the gateway address in the second word.
    @Test func rfc792_redirectGateway() throws {
        try withICMP(Fixtures.icmp4Redirect) { ip, icmp in
            #expect(ip.source == IPv4Address(192, 0, 2, 254))
            #expect(icmp.type == ICMPv4Type.redirect && icmp.code == 1 && icmp.isError)
            #expect(icmp.gateway == IPv4Address(192, 0, 2, 253))
            try expectQuotesUDP(icmp)
        }
        let built = PacketBuilder.icmp4Error(source: IPv4Address(192, 0, 2, 254), destination: ip4A, type: 5, code: 1,
                                             restOfHeader: IPv4Address(192, 0, 2, 253).rawValue,
                                             original: Fixtures.udp4DNS, quote: 28)
        #expect(Array(built[20...]) == Array(Fixtures.icmp4Redirect[20...]))
    }

    @Test func ownedHeaderRoundTrips() throws {
        try Fixtures.icmp4Redirect.withUnsafeBytes { b in
            let h = ICMPv4Header(try ICMPv4View(validating: sub(b, 20)))
            #expect(h == ICMPv4Header(type: 5, code: 1, restOfHeader: 0xC000_02FD))
        }
    }
}
