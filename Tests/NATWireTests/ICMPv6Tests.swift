import Testing
import NATWire

@Suite struct ICMPv6Tests {
    let router = IPv6Address("2001:db8:ffff::1")!

    func withICMP(_ pkt: [UInt8], _ body: (IPv6View, ICMPv6View) throws -> Void) throws {
        try pkt.withUnsafeBytes { b in
            let ip = try IPv6View(validating: b)
            let chain = try ip.walkExtensionHeaders()
            #expect(chain.upperLayerProtocol == IPProtocol.icmpv6)
            let icmp = try ICMPv6View(validating: sub(b, chain.upperLayerOffset, ip.count - chain.upperLayerOffset))
            #expect(icmp.isChecksumValid(source: ip.source, destination: ip.destination))
            try body(ip, icmp)
        }
    }

    /// RFC 4443 §4.1: echo request, field by field, and built into junk.
    @Test func rfc4443_echoRequestApartAndBuilt() throws {
        let pkt = Fixtures.icmp6Echo
        try withICMP(pkt) { ip, icmp in
            #expect(ip.source == ip6A && ip.destination == ip6B && ip.payloadLength == 24)
            #expect(icmp.type == ICMPv6Type.echoRequest && icmp.code == 0 && icmp.checksum == 0xa8b3)
            #expect(icmp.identifier == 0x4242 && icmp.sequenceNumber == 1)
            #expect(icmp.isEcho && !icmp.isError && icmp.bodyLength == 16)
            #expect(icmp.bodyPointer.load(fromByteOffset: 15, as: UInt8.self) == 0x2f)
        }
        #expect(verifies(pseudoHeader6(ip6A, ip6B, 58, 24), Array(pkt[40...])))
        let data = Array(UInt8(0x20)..<0x30)
        let built = buildIntoJunk(pkt.count) { b in
            IPv6Header(nextHeader: IPProtocol.icmpv6, source: ip6A, destination: ip6B).emit(into: b, payloadLength: 24)
            ICMPv6Header(type: ICMPv6Type.echoRequest, identifier: 0x4242, sequenceNumber: 1).emit(into: sub(b, 40))
            copy(data, into: b, at: 48)
            try! MutableICMPv6View(validating: sub(b, 40)).updateChecksum(source: ip6A, destination: ip6B)
        }
        #expect(built == pkt)
        #expect(PacketBuilder.echo6(source: ip6A, destination: ip6B, identifier: 0x4242, payload: data) == pkt)
    }

    /// RFC 4443 §4.2: echo reply.
    @Test func rfc4443_echoReply() throws {
        try withICMP(Fixtures.icmp6EchoReply) { ip, icmp in
            #expect(ip.source == ip6B)
            #expect(icmp.type == ICMPv6Type.echoReply && icmp.identifier == 0x4242 && icmp.isEcho)
        }
        #expect(PacketBuilder.echo6(source: ip6B, destination: ip6A, identifier: 0x4242, reply: true,
                                    payload: Array(UInt8(0x20)..<0x30)) == Fixtures.icmp6EchoReply)
    }

    /// RFC 1624 on a NAT64 identifier rewrite plus an address change: equals a rebuild.
    @Test func rfc1624_identifierAndAddressRewriteMatchesRebuild() throws {
        var pkt = Fixtures.icmp6Echo
        let newSource = IPv6Address("2001:db8:1::5")!
        try pkt.withUnsafeMutableBytes { b in
            let ip = try MutableIPv6View(validating: b)
            var delta = ChecksumDelta()
            ip.rewriteSource(newSource, delta: &delta)
            try MutableICMPv6View(validating: sub(b, 40)).rewriteIdentifier(0x0101, delta: delta)
        }
        #expect(pkt == PacketBuilder.echo6(source: newSource, destination: ip6B, identifier: 0x0101,
                                           payload: Array(UInt8(0x20)..<0x30)))
    }

    @Test func rfc4443_checksumCoversPseudoHeader() throws {
        try Fixtures.icmp6Echo.withUnsafeBytes { b in
            let icmp = try ICMPv6View(validating: sub(b, 40))
            #expect(icmp.isChecksumValid(source: ip6A, destination: ip6B))
            #expect(!icmp.isChecksumValid(source: ip6A, destination: IPv6Address("2001:db8::3")!))
            #expect(!icmp.isChecksumValid(source: IPv6Address("2001:db8::9")!, destination: ip6B))
        }
    }

    func expectQuotesUDP(_ icmp: ICMPv6View) throws {
        let inner = IPv6View(unchecked: icmp.bodyPointer, count: icmp.bodyLength)
        #expect(inner.version == 6 && inner.flowLabel == 0x12345 && inner.nextHeader == IPProtocol.udp)
        #expect(inner.source == ip6A && inner.destination == ip6B && inner.payloadLengthField == 37)
        let udp = UDPView(unchecked: icmp.bodyPointer + 40, count: 8)
        #expect(udp.sourcePort == 53000 && udp.destinationPort == 53)
    }

    func expectBuilt(_ fixture: [UInt8], from: IPv6Address, type: UInt8, code: UInt8, rest: UInt32) {
        let built = PacketBuilder.icmp6Error(source: from, destination: ip6A, type: type, code: code, restOfHeader: rest,
                                             original: Fixtures.udp6DNS, quote: 48)
        #expect(built == fixture)
        let junk = buildIntoJunk(fixture.count) { b in
            IPv6Header(nextHeader: IPProtocol.icmpv6, source: from, destination: ip6A).emit(into: b, payloadLength: 56)
            ICMPv6Header(type: type, code: code, restOfHeader: rest).emit(into: sub(b, 40))
            copy(Array(Fixtures.udp6DNS[0..<48]), into: b, at: 48)
            try! MutableICMPv6View(validating: sub(b, 40)).updateChecksum(source: from, destination: ip6A)
        }
        #expect(junk == fixture)
    }

    /// RFC 4443 §3.1: destination unreachable, port unreachable (code 4).
    @Test func rfc4443_destinationUnreachable() throws {
        try withICMP(Fixtures.icmp6PortUnreachable) { _, icmp in
            #expect(icmp.type == ICMPv6Type.destinationUnreachable && icmp.code == ICMPv6UnreachableCode.port)
            #expect(icmp.isError && icmp.restOfHeader == 0 && icmp.bodyLength == 48)
            try expectQuotesUDP(icmp)
        }
        expectBuilt(Fixtures.icmp6PortUnreachable, from: ip6B, type: 1, code: 4, rest: 0)
    }

    /// RFC 4443 §3.2: packet too big carries the MTU as 32 bits.
    @Test func rfc4443_packetTooBig() throws {
        try withICMP(Fixtures.icmp6PacketTooBig) { ip, icmp in
            #expect(ip.source == router)
            #expect(icmp.type == ICMPv6Type.packetTooBig && icmp.code == 0 && icmp.mtu == 1280 && icmp.isError)
            try expectQuotesUDP(icmp)
        }
        expectBuilt(Fixtures.icmp6PacketTooBig, from: router, type: 2, code: 0, rest: 1280)
    }

    /// RFC 4443 §3.3: time exceeded, hop limit exceeded in transit.
    @Test func rfc4443_timeExceeded() throws {
        try withICMP(Fixtures.icmp6TimeExceeded) { _, icmp in
            #expect(icmp.type == ICMPv6Type.timeExceeded && icmp.code == ICMPv6TimeExceededCode.hopLimitExceeded)
            try expectQuotesUDP(icmp)
        }
        expectBuilt(Fixtures.icmp6TimeExceeded, from: router, type: 3, code: 0, rest: 0)
    }

    /// RFC 4443 §3.4: parameter problem carries a 32-bit pointer (here 40: the next header after the fixed header).
    @Test func rfc4443_parameterProblem() throws {
        try withICMP(Fixtures.icmp6ParameterProblem) { _, icmp in
            #expect(icmp.type == ICMPv6Type.parameterProblem && icmp.code == ICMPv6ParameterProblemCode.unrecognizedNextHeader)
            #expect(icmp.parameterPointer == 40)
            try expectQuotesUDP(icmp)
        }
        expectBuilt(Fixtures.icmp6ParameterProblem, from: router, type: 4, code: 1, rest: 40)
    }

    /// RFC 4443 §2.4 (c): by default an error quotes at most 1232 bytes, so it fits the 1280 minimum MTU.
    @Test func rfc4443_errorQuoteFitsMinimumMTU() {
        let big = PacketBuilder.udp6(source: ip6A, sourcePort: 1, destination: ip6B, destinationPort: 2,
                                     payload: [UInt8](repeating: 7, count: 1400))
        let err = PacketBuilder.icmp6Error(source: router, destination: ip6A, type: 2, code: 0, restOfHeader: 1280, original: big)
        #expect(err.count == 1280)
    }

    /// RFC 4861 §4.3: a neighbour solicitation's target address follows 4 reserved bytes.
    @Test func rfc4861_neighborSolicitationTarget() throws {
        let target = IPv6Address("2001:db8::2")!
        let pkt = PacketBuilder.icmp6(source: ip6A, destination: IPv6Address("ff02::1:ff00:2")!,
                                      header: ICMPv6Header(type: ICMPv6Type.neighborSolicitation, code: 0),
                                      body: bytes(of: target), hopLimit: 255)
        try withICMP(pkt) { ip, icmp in
            #expect(ip.hopLimit == 255 && icmp.type == 135 && !icmp.isError && !icmp.isEcho)
            #expect(icmp.targetAddress == target)
        }
        try Fixtures.icmp6Echo.withUnsafeBytes { b in
            let short = try ICMPv6View(validating: sub(b, 40, 20))
            #expect(short.targetAddress == nil)
        }
    }

    @Test func ownedHeaderRoundTrips() throws {
        try Fixtures.icmp6PacketTooBig.withUnsafeBytes { b in
            let h = ICMPv6Header(try ICMPv6View(validating: sub(b, 40)))
            #expect(h == ICMPv6Header(type: 2, code: 0, restOfHeader: 1280) && h.mtu == 1280)
        }
    }
}
