import NATWire
import Testing

// TUN offloads: the virtio-net header, partial checksums and software segmentation. Every expected
// packet is built independently by PacketBuilder (full checksums), and the offloaded path must give
// exactly those bytes.

private let a = IPv4Address("100.64.0.2")!
private let b = IPv4Address("203.0.113.2")!
private let pool = IPv4Address("198.51.100.1")!
private let a6 = IPv6Address("2001:db8::2")!
private let b6 = IPv6Address("2001:db8:1::7")!

private func pattern(_ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) } }

/// The partial form of a whole IPv4 TCP/UDP packet, as Linux hands it over: the checksum field holds
/// the folded pseudo-header sum over the full transport length.
private func partial4(_ full: [UInt8]) -> ([UInt8], VirtioNetHeader) {
    var p = full
    let ihl = Int(p[0] & 0x0F) * 4
    let proto = p[9]
    let off = proto == IPProtocol.tcp ? TCPLayout.checksum : UDPLayout.checksum
    let ps = Checksum.pseudoHeaderSum(source: IPv4Address(UInt32(p[12]) << 24 | UInt32(p[13]) << 16 | UInt32(p[14]) << 8 | UInt32(p[15])),
                                      destination: IPv4Address(UInt32(p[16]) << 24 | UInt32(p[17]) << 16 | UInt32(p[18]) << 8 | UInt32(p[19])),
                                      protocol: proto, length: p.count - ihl)
    let f = Checksum.fold(ps)
    p[ihl + off] = UInt8(f >> 8)
    p[ihl + off + 1] = UInt8(f & 0xFF)
    return (p, VirtioNetHeader(flags: VirtioNetHeader.flagNeedsChecksum, checksumStart: UInt16(ihl), checksumOffset: UInt16(off)))
}

private func segments(_ packet: [UInt8], _ h: VirtioNetHeader) throws -> [[UInt8]] {
    var out: [[UInt8]] = []
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 70_000, alignment: 16)
    defer { scratch.deallocate() }
    try packet.withUnsafeBytes { p in
        try VirtioNet.segment(p, header: h, into: scratch) { s in out.append(Array(s)) }
    }
    return out
}

@Suite struct VirtioNetTests {
    @Test func virtioHeaderFieldsAreLittleEndian() {
        let bytes: [UInt8] = [0x01, 0x81, 0x42, 0x00, 0xA8, 0x05, 0x14, 0x00, 0x10, 0x00, 0xEE, 0xEE]
        let h = bytes.withUnsafeBytes { VirtioNetHeader(loading: $0.baseAddress!) }
        #expect(h == VirtioNetHeader(flags: 1, gsoType: 0x81, headerLength: 0x42, gsoSize: 1448, checksumStart: 20, checksumOffset: 16))
        #expect(h.needsChecksum && h.isSegmentationOffload && h.segmentationType == VirtioNetHeader.gsoTCPv4 && !h.isPlain)
        var out = [UInt8](repeating: 0xFF, count: 12)
        out.withUnsafeMutableBytes { h.store(to: $0.baseAddress!, size: 12) }
        // num_buffers (the last two bytes of the 12-byte header) is always written as zero.
        #expect(out == Array(bytes[0..<10]) + [0, 0])
        #expect(VirtioNetHeader().isPlain)
    }

    @Test(arguments: [IPProtocol.tcp, IPProtocol.udp])
    func rfc1071_partialChecksumCompletedInSoftware(proto: UInt8) {
        let full = proto == IPProtocol.tcp
            ? PacketBuilder.tcp4(source: a, sourcePort: 40000, destination: b, destinationPort: 80, flags: [.ack, .psh], payload: pattern(301))
            : PacketBuilder.udp4(source: a, sourcePort: 40000, destination: b, destinationPort: 53, payload: pattern(77))
        var (p, h) = partial4(full)
        #expect(p != full)
        let ok = p.withUnsafeMutableBytes { VirtioNet.completeChecksum($0, header: h) }
        #expect(ok)
        #expect(p == full)
        // A header that points past the packet is refused and changes nothing.
        h.checksumStart = UInt16(p.count)
        let before = p
        #expect(!p.withUnsafeMutableBytes { VirtioNet.completeChecksum($0, header: h) })
        #expect(p == before)
    }

    @Test func rfc8200_8_1_partialChecksumOverIPv6CompletedInSoftware() {
        let full = PacketBuilder.tcp6(source: a6, sourcePort: 5000, destination: b6, destinationPort: 443, flags: [.ack], payload: pattern(999))
        var p = full
        let ps = Checksum.pseudoHeaderSum(source: a6, destination: b6, nextHeader: IPProtocol.tcp, length: full.count - 40)
        let f = Checksum.fold(ps)
        p[40 + 16] = UInt8(f >> 8)
        p[40 + 17] = UInt8(f & 0xFF)
        let h = VirtioNetHeader(flags: VirtioNetHeader.flagNeedsChecksum, checksumStart: 40, checksumOffset: 16)
        #expect(p.withUnsafeMutableBytes { VirtioNet.completeChecksum($0, header: h) })
        #expect(p == full)
    }

    /// A NAT rewrites addresses and ports with RFC 1624 updates of the checksum field. On a partial
    /// checksum the field must take the address change only (the ports are summed later, with the data):
    /// translating the partial packet, fixing it up and completing it gives the same bytes as translating
    /// the whole packet.
    @Test(arguments: [IPProtocol.tcp, IPProtocol.udp])
    func rfc1624_partialChecksumTakesOnlyTheAddressChange(proto: UInt8) {
        let full = proto == IPProtocol.tcp
            ? PacketBuilder.tcp4(source: a, sourcePort: 40000, destination: b, destinationPort: 80, flags: [.ack], payload: pattern(1000))
            : PacketBuilder.udp4(source: a, sourcePort: 40000, destination: b, destinationPort: 53, payload: pattern(64))
        func translate(_ p: inout [UInt8]) {
            p.withUnsafeMutableBytes { buf in
                let ip = MutableIPv4View(unchecked: buf.baseAddress!, count: buf.count)
                let d = rewriteAddresses(ip, source: pool.rawValue, destination: b.rawValue)
                rewriteTransport(proto: proto, buf.baseAddress! + 20, available: buf.count - 20, addressDelta: d,
                                 sourcePort: 61_234, destinationPort: proto == IPProtocol.tcp ? 80 : 53, icmpIdentifierIsSource: true)
            }
        }
        var expected = full
        translate(&expected)

        var (p, h) = partial4(full)
        let fix = p.withUnsafeBytes { IPv4PartialChecksum($0, header: h) }
        #expect(fix != nil)
        translate(&p)
        p.withUnsafeMutableBytes { fix!.apply(to: $0) }
        // Still partial: the field is the pseudo-header sum of the new addresses.
        #expect(p.withUnsafeMutableBytes { VirtioNet.completeChecksum($0, header: h) })
        #expect(p == expected)

        // Complementing the field around the same update (ports included) would be wrong by the port change.
        var (q, _) = partial4(full)
        let off = 20 + (proto == IPProtocol.tcp ? 16 : 6)
        q[off] ^= 0xFF; q[off + 1] ^= 0xFF
        translate(&q)
        q[off] ^= 0xFF; q[off + 1] ^= 0xFF
        #expect(q.withUnsafeMutableBytes { VirtioNet.completeChecksum($0, header: h) })
        #expect(q != expected)
    }

    @Test func partialChecksumFixUpRefusesOtherShapes() {
        let tcp = PacketBuilder.tcp4(source: a, sourcePort: 1, destination: b, destinationPort: 2, flags: [.ack], payload: pattern(10))
        let (p, h) = partial4(tcp)
        p.withUnsafeBytes { buf in
            #expect(IPv4PartialChecksum(buf, header: h) != nil)
            // Not flagged, wrong offset, start not right after the IP header.
            #expect(IPv4PartialChecksum(buf, header: VirtioNetHeader()) == nil)
            #expect(IPv4PartialChecksum(buf, header: VirtioNetHeader(flags: 1, checksumStart: 20, checksumOffset: 6)) == nil)
            #expect(IPv4PartialChecksum(buf, header: VirtioNetHeader(flags: 1, checksumStart: 24, checksumOffset: 16)) == nil)
        }
        // ICMP and IPv6 are never fixed up in place.
        let echo = PacketBuilder.echo4(source: a, destination: b, identifier: 9)
        echo.withUnsafeBytes { #expect(IPv4PartialChecksum($0, header: VirtioNetHeader(flags: 1, checksumStart: 20, checksumOffset: 2)) == nil) }
        let six = PacketBuilder.tcp6(source: a6, sourcePort: 1, destination: b6, destinationPort: 2, flags: [.ack])
        six.withUnsafeBytes { #expect(IPv4PartialChecksum($0, header: VirtioNetHeader(flags: 1, checksumStart: 40, checksumOffset: 16)) == nil) }
    }

    /// Software GSO of a TCPv4 super-packet gives the segments the sender would have sent: headers copied,
    /// identification +1 each, sequence numbers advanced, FIN/PSH on the last only, CWR on the first only.
    @Test func tcpV4SuperPacketSegmentsLikeTheKernel() throws {
        let payload = pattern(3500)
        let mss = 1448
        let header = TCPHeader(sourcePort: 40000, destinationPort: 5201, flags: [.ack, .psh, .fin, .cwr],
                               sequenceNumber: 0xFFFF_F000, acknowledgmentNumber: 77, window: 501,
                               options: [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2])
        let superPacket = PacketBuilder.tcp4(source: a, destination: b, header: header, payload: payload, identification: 0xFFFE)
        var (p, h) = partial4(superPacket)
        h.gsoType = VirtioNetHeader.gsoTCPv4
        h.gsoSize = UInt16(mss)
        h.headerLength = 52
        let got = try segments(p, h)
        #expect(got.count == 3)
        for i in 0..<3 {
            var hd = header
            hd.sequenceNumber = header.sequenceNumber &+ UInt32(i * mss)
            var f: TCPFlags = [.ack]
            if i == 0 { f.insert(.cwr) }
            if i == 2 { f.formUnion([.psh, .fin]) }
            hd.flags = f
            let chunk = Array(payload[(i * mss)..<min(payload.count, (i + 1) * mss)])
            let want = PacketBuilder.tcp4(source: a, destination: b, header: hd, payload: chunk, identification: 0xFFFE &+ UInt16(i))
            #expect(got[i] == want, "segment \(i)")
        }
    }

    @Test func tcpV6SuperPacketSegments() throws {
        let payload = pattern(2500)
        let header = TCPHeader(sourcePort: 443, destinationPort: 50000, flags: [.ack, .psh], sequenceNumber: 1, acknowledgmentNumber: 2)
        var p = PacketBuilder.tcp6(source: a6, destination: b6, header: header, payload: payload)
        p[40 + 16] = 0; p[40 + 17] = 0   // whatever the field holds, segmentation computes it anew
        let h = VirtioNetHeader(flags: VirtioNetHeader.flagNeedsChecksum, gsoType: VirtioNetHeader.gsoTCPv6, headerLength: 60,
                                gsoSize: 1220, checksumStart: 40, checksumOffset: 16)
        let got = try segments(p, h)
        #expect(got.count == 3)
        for i in 0..<3 {
            var hd = header
            hd.sequenceNumber = 1 &+ UInt32(i * 1220)
            hd.flags = i == 2 ? [.ack, .psh] : [.ack]
            let want = PacketBuilder.tcp6(source: a6, destination: b6, header: hd, payload: Array(payload[(i * 1220)..<min(2500, (i + 1) * 1220)]))
            #expect(got[i] == want, "segment \(i)")
        }
    }

    @Test func udpL4SuperPacketSegments() throws {
        let payload = pattern(1000)
        let (p, h0) = partial4(PacketBuilder.udp4(source: a, sourcePort: 4000, destination: b, destinationPort: 4001, payload: payload, identification: 10))
        var h = h0
        h.gsoType = VirtioNetHeader.gsoUDPL4
        h.gsoSize = 400
        let got = try segments(p, h)
        #expect(got.count == 3)
        for i in 0..<3 {
            let want = PacketBuilder.udp4(source: a, sourcePort: 4000, destination: b, destinationPort: 4001,
                                          payload: Array(payload[(i * 400)..<min(1000, (i + 1) * 400)]), identification: 10 + UInt16(i))
            #expect(got[i] == want, "segment \(i)")
        }
    }

    @Test func segmentationRefusesWhatItCannotCut() {
        let udp = PacketBuilder.udp4(source: a, sourcePort: 1, destination: b, destinationPort: 2, payload: pattern(100))
        // UFO (IPv4 UDP fragmentation offload) and a TCP type on a UDP packet.
        #expect(throws: VirtioNet.SegmentationError.unsupportedType) { try segments(udp, VirtioNetHeader(gsoType: VirtioNetHeader.gsoUDP, gsoSize: 10)) }
        #expect(throws: VirtioNet.SegmentationError.unsupportedType) { try segments(udp, VirtioNetHeader(gsoType: VirtioNetHeader.gsoTCPv4, gsoSize: 10)) }
        // A total length beyond the bytes, and a fragment.
        var bad = udp
        bad[2] = 0xFF
        #expect(throws: VirtioNet.SegmentationError.malformed) { try segments(bad, VirtioNetHeader(gsoType: VirtioNetHeader.gsoUDPL4, gsoSize: 10)) }
        var frag = udp
        frag[6] = 0x20
        #expect(throws: VirtioNet.SegmentationError.malformed) { try segments(frag, VirtioNetHeader(gsoType: VirtioNetHeader.gsoUDPL4, gsoSize: 10)) }
    }
}
