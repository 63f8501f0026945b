import Testing
import NATWire

@Suite struct IPv6Tests {
    /// RFC 8200 §3: every field of a real UDP/DNS packet with a flow label.
    @Test func rfc8200_takesRealPacketApart() throws {
        let pkt = Fixtures.udp6DNS
        try pkt.withUnsafeBytes { b in
            let ip = try IPv6View(validating: b)
            #expect(ip.version == 6)
            #expect(ip.trafficClass == 0 && ip.dscp == 0 && ip.ecn == 0)
            #expect(ip.flowLabel == 0x12345)
            #expect(ip.payloadLengthField == 37 && ip.count == 77 && ip.payloadLength == 37)
            #expect(ip.nextHeader == IPProtocol.udp && ip.hopLimit == 64)
            #expect(ip.source == IPv6Address("2001:db8::1") && ip.destination == IPv6Address("2001:db8::2"))
            #expect(ip.headerLength == 40 && ip.payloadOffset == 40)
            let chain = try ip.walkExtensionHeaders()
            #expect(chain == IPv6ExtensionChain(upperLayerProtocol: IPProtocol.udp, upperLayerOffset: 40))
            #expect(!chain.hasFragmentHeader && !chain.isFragment && chain.segmentsLeft == nil)
            let udp = try UDPView(validating: sub(b, 40, ip.payloadLength))
            #expect(udp.sourcePort == 53000 && udp.destinationPort == 53 && udp.length == 37)
            #expect(udp.hasChecksum)
        }
        #expect(verifies(pseudoHeader6(ip6A, ip6B, 17, 37), Array(pkt[40...])))
    }

    @Test func rfc8200_buildsRealPacketIntoJunk() {
        let built = buildIntoJunk(Fixtures.udp6DNS.count) { b in
            IPv6Header(nextHeader: IPProtocol.udp, source: ip6A, destination: ip6B, flowLabel: 0x12345)
                .emit(into: b, payloadLength: b.count - 40)
            UDPHeader(sourcePort: 53000, destinationPort: 53).emit(into: sub(b, 40), length: b.count - 40)
            copy(dnsQuery, into: b, at: 48)
            let ph = Checksum.pseudoHeaderSum(source: ip6A, destination: ip6B, nextHeader: IPProtocol.udp, length: b.count - 40)
            try! MutableUDPView(validating: sub(b, 40))
                .setChecksum(Checksum.finish(Checksum.sum(UnsafeRawBufferPointer(sub(b, 40)), initial: ph)))
        }
        #expect(built == Fixtures.udp6DNS)
        #expect(PacketBuilder.udp6(source: ip6A, sourcePort: 53000, destination: ip6B, destinationPort: 53,
                                   payload: dnsQuery, flowLabel: 0x12345) == Fixtures.udp6DNS)
    }

    @Test func ownedHeaderRoundTrips() throws {
        try Fixtures.udp6DNS.withUnsafeBytes { b in
            let h = IPv6Header(try IPv6View(validating: b))
            #expect(h == IPv6Header(nextHeader: 17, source: ip6A, destination: ip6B, flowLabel: 0x12345))
            let again = buildIntoJunk(40) { h.emit(into: $0, payloadLength: 37) }
            #expect(again == Array(Fixtures.udp6DNS[0..<40]))
        }
    }

    /// Setters keep neighbouring bit fields; an address rewrite reported through the delta keeps the UDP
    /// checksum right (RFC 1624 over the RFC 8200 §8.1 pseudo-header).
    @Test func rfc8200_settersAndAddressRewrite() throws {
        var pkt = Fixtures.udp6DNS
        let newSource = IPv6Address("2001:db8:1::64")!
        try pkt.withUnsafeMutableBytes { b in
            let ip = try MutableIPv6View(validating: b)
            ip.setTrafficClass(0xB8)
            #expect(ip.trafficClass == 0xB8 && ip.dscp == 46 && ip.flowLabel == 0x12345 && ip.version == 6)
            ip.setFlowLabel(0xFFFFF)
            #expect(ip.trafficClass == 0xB8 && ip.flowLabel == 0xFFFFF && ip.version == 6)
            ip.setFlowLabel(0x12345)
            ip.setTrafficClass(0)
            ip.setHopLimit(63)
            #expect(ip.hopLimit == 63)
            var delta = ChecksumDelta()
            ip.rewriteSource(newSource, delta: &delta)
            ip.rewriteDestination(IPv6Address("64:ff9b::198.51.100.7")!, delta: &delta)
            try MutableUDPView(validating: sub(b, 40)).applyDelta(delta)
            #expect(ip.source == newSource)
            ip.setPayloadLength(37)
            #expect(ip.readOnly.payloadLengthField == 37)
        }
        #expect(pkt[7] == 63)
        #expect(Array(pkt[0..<4]) == [0x60, 0x01, 0x23, 0x45])
        #expect(verifies(pseudoHeader6(newSource, IPv6Address("64:ff9b::198.51.100.7")!, 17, 37), Array(pkt[40...])))
    }

    /// RFC 8200 §4.3: a hop-by-hop header with a router alert option (RFC 2711).
    @Test func rfc8200_hopByHopHeader() throws {
        let pkt = Fixtures.ipv6HopByHopUDP
        try pkt.withUnsafeBytes { b in
            let ip = try IPv6View(validating: b)
            #expect(ip.nextHeader == IPProtocol.hopByHop)
            let chain = try ip.walkExtensionHeaders()
            #expect(chain.upperLayerProtocol == IPProtocol.udp && chain.upperLayerOffset == 48)
            #expect(chain.extensionHeaderCount == 1 && !chain.hasFragmentHeader)
            #expect(try UDPView(validating: sub(b, 48)).destinationPort == 53)
        }
        #expect(verifies(pseudoHeader6(ip6A, ip6B, 17, 37), Array(pkt[48...])))
        #expect(PacketBuilder.udp6(source: ip6A, sourcePort: 53000, destination: ip6B, destinationPort: 53, payload: dnsQuery,
                                   extensionHeaders: [.hopByHop(options: [5, 2, 0, 0])]) == pkt)
    }

    /// RFC 8200 §4.4: a routing header (type 2, RFC 6275 §6.4) with segments left 1.
    @Test func rfc8200_routingHeader() throws {
        let pkt = Fixtures.ipv6RoutingUDP
        try pkt.withUnsafeBytes { b in
            let chain = try IPv6View(validating: b).walkExtensionHeaders()
            #expect(chain.routingHeaderOffset == 40 && chain.segmentsLeft == 1)
            #expect(chain.upperLayerProtocol == IPProtocol.udp && chain.upperLayerOffset == 64)
            #expect(pkt[40 + IPv6ExtensionLayout.routingType] == 2)
        }
        let data = [0, 0, 0, 0] + bytes(of: IPv6Address("2001:db8::99")!)
        #expect(PacketBuilder.udp6(source: ip6A, sourcePort: 53000, destination: ip6B, destinationPort: 53, payload: dnsQuery,
                                   extensionHeaders: [.routing(type: 2, segmentsLeft: 1, data: data)]) == pkt)
    }

    /// RFC 8200 §4.5: a first fragment (offset 0, M set) still holds the UDP header, whose length covers
    /// the whole datagram and so does not fit the fragment.
    @Test func rfc8200_firstFragment() throws {
        let pkt = Fixtures.ipv6FirstFragment
        try pkt.withUnsafeBytes { b in
            let chain = try IPv6View(validating: b).walkExtensionHeaders()
            #expect(chain.fragmentHeaderOffset == 40 && chain.fragmentOffset == 0 && chain.moreFragments)
            #expect(chain.fragmentIdentification == 0xdead_beef)
            #expect(chain.isFragment && !chain.isNonFirstFragment)
            #expect(chain.upperLayerProtocol == IPProtocol.udp && chain.upperLayerOffset == 48)
            #expect(wireError { try UDPView(validating: sub(b, 48)) } == .badLength)
            let udp = UDPView(unchecked: b.baseAddress! + 48, count: 8)
            #expect(udp.sourcePort == 53000 && udp.length == 8 + 29 + 16)
        }
        let whole = PacketBuilder.udp6(source: ip6A, sourcePort: 53000, destination: ip6B, destinationPort: 53,
                                       payload: dnsQuery + [UInt8](repeating: 0, count: 16))
        let h = IPv6Header(nextHeader: IPProtocol.udp, source: ip6A, destination: ip6B)
        #expect(PacketBuilder.ipv6(h, extensionHeaders: [.fragment(offset: 0, moreFragments: true, identification: 0xdead_beef)],
                                   payload: Array(whole[40..<64])) == pkt)
        #expect(PacketBuilder.ipv6(h, extensionHeaders: [.fragment(offset: 24, moreFragments: false, identification: 0xdead_beef)],
                                   payload: Array(whole[64...])) == Fixtures.ipv6SecondFragment)
    }

    /// RFC 8200 §4.5: a later fragment: the walk stops after the fragment header and reports its next header.
    @Test func rfc8200_nonFirstFragment() throws {
        try Fixtures.ipv6SecondFragment.withUnsafeBytes { b in
            let chain = try IPv6View(validating: b).walkExtensionHeaders()
            #expect(chain.fragmentOffset == 24 && !chain.moreFragments && chain.fragmentIdentification == 0xdead_beef)
            #expect(chain.isFragment && chain.isNonFirstFragment)
            #expect(chain.upperLayerProtocol == IPProtocol.udp && chain.upperLayerOffset == 48)
        }
    }

    /// RFC 6946: an atomic fragment (offset 0, M clear) has a fragment header but is not a fragment.
    @Test func rfc6946_atomicFragment() throws {
        let pkt = PacketBuilder.udp6(source: ip6A, sourcePort: 1, destination: ip6B, destinationPort: 2,
                                     extensionHeaders: [.fragment(offset: 0, moreFragments: false, identification: 9)])
        try pkt.withUnsafeBytes { b in
            let chain = try IPv6View(validating: b).walkExtensionHeaders()
            #expect(chain.hasFragmentHeader && !chain.isFragment && !chain.isNonFirstFragment)
            #expect(chain.upperLayerOffset == 48)
        }
    }

    /// RFC 8200 §4.6: destination options before TCP (a PadN-only header).
    @Test func rfc8200_destinationOptionsHeader() throws {
        let pkt = Fixtures.ipv6DestOptsTCP
        try pkt.withUnsafeBytes { b in
            let chain = try IPv6View(validating: b).walkExtensionHeaders()
            #expect(chain.upperLayerProtocol == IPProtocol.tcp && chain.upperLayerOffset == 48 && chain.extensionHeaderCount == 1)
            let tcp = try TCPView(validating: sub(b, 48))
            #expect(tcp.destinationPort == 443 && tcp.options == [.maximumSegmentSize(1440)])
        }
        #expect(verifies(pseudoHeader6(ip6A, ip6B, 6, 24), Array(pkt[48...])))
        let th = TCPHeader(sourcePort: 49152, destinationPort: 443, flags: .syn, sequenceNumber: 0x0102_0304,
                           options: [2, 4, 0x05, 0xa0])
        #expect(PacketBuilder.tcp6(source: ip6A, destination: ip6B, header: th,
                                   extensionHeaders: [.destinationOptions(options: [])]) == pkt)
    }

    /// RFC 4302 §2.2: AH's length is in 4-byte units minus 2.
    @Test func rfc4302_authenticationHeader() throws {
        let pkt = Fixtures.ipv6AuthenticationICMP
        try pkt.withUnsafeBytes { b in
            let chain = try IPv6View(validating: b).walkExtensionHeaders()
            #expect(chain.upperLayerProtocol == IPProtocol.icmpv6 && chain.upperLayerOffset == 64)
            #expect(pkt[41] == 4)
            let icmp = try ICMPv6View(validating: sub(b, 64))
            #expect(icmp.type == ICMPv6Type.echoRequest && icmp.identifier == 0x4242 && icmp.sequenceNumber == 2)
            #expect(icmp.isChecksumValid(source: ip6A, destination: ip6B))
        }
        #expect(PacketBuilder.icmp6(source: ip6A, destination: ip6B,
                                    header: ICMPv6Header(type: 128, identifier: 0x4242, sequenceNumber: 2),
                                    extensionHeaders: [.authentication(spi: 0x1000, sequenceNumber: 1,
                                                                       icv: Array(UInt8(0xa0)..<0xac))]) == pkt)
    }

    /// Every kind in one chain, in RFC 8200 §4.1 order.
    @Test func rfc8200_fullChainInRecommendedOrder() throws {
        let ext: [IPv6ExtensionHeader] = [
            .hopByHop(options: [5, 2, 0, 0]),
            .destinationOptions(options: [0xC9, 1, 0xFF]),
            .routing(type: 4, segmentsLeft: 0, data: [0, 0, 0, 0] + bytes(of: ip6B)),
            .fragment(offset: 0, moreFragments: false, identification: 1),
            .authentication(spi: 7, sequenceNumber: 8, icv: [1, 2, 3, 4]),
            .destinationOptions(options: []),
        ]
        let pkt = PacketBuilder.udp6(source: ip6A, sourcePort: 7, destination: ip6B, destinationPort: 9,
                                     payload: [1, 2, 3], extensionHeaders: ext)
        let lengths = ext.map(\.length)
        #expect(lengths == [8, 8, 24, 8, 16, 8])
        try pkt.withUnsafeBytes { b in
            let chain = try IPv6View(validating: b).walkExtensionHeaders()
            #expect(chain.extensionHeaderCount == 6)
            #expect(chain.upperLayerProtocol == IPProtocol.udp && chain.upperLayerOffset == 40 + 72)
            #expect(chain.routingHeaderOffset == 56 && chain.segmentsLeft == 0)
            #expect(chain.fragmentHeaderOffset == 80)
            #expect(try UDPView(validating: sub(b, chain.upperLayerOffset)).payloadLength == 3)
        }
        #expect(verifies(pseudoHeader6(ip6A, ip6B, 17, 11), Array(pkt[(40 + 72)...])))
    }

    /// RFC 8200 §4.7: next header 59 ends the walk; so does ESP (not walked).
    @Test func rfc8200_noNextHeaderAndESPStopTheWalk() throws {
        for proto in [IPProtocol.noNextHeader, IPProtocol.esp] {
            let pkt = PacketBuilder.ipv6(IPv6Header(nextHeader: proto, source: ip6A, destination: ip6B),
                                         extensionHeaders: [.destinationOptions(options: [])], payload: [1, 2, 3, 4])
            try pkt.withUnsafeBytes { b in
                let chain = try IPv6View(validating: b).walkExtensionHeaders()
                #expect(chain.upperLayerProtocol == proto && chain.upperLayerOffset == 48)
            }
        }
    }

    @Test func checksumDeltaReplacesIPv6AddressLikeFullRecompute() {
        var rng = SplitMix64(seed: 8200)
        for _ in 0..<1000 {
            let a = IPv6Address(high: rng.next(), low: rng.next()), b = IPv6Address(high: rng.next(), low: rng.next())
            let seg = rng.bytes(8 + rng.below(40))
            let before = referenceChecksum(pseudoHeader6(a, ip6B, 17, seg.count) + seg)
            var d = ChecksumDelta()
            d.replace(a, with: b)
            let after = referenceChecksum(pseudoHeader6(b, ip6B, 17, seg.count) + seg)
            #expect(d.apply(to: before) == after)
        }
    }
}
