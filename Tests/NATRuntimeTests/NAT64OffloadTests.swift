import Foundation
import NAT64
import NATCore
@testable import NATRuntime
import NATWire
import Testing

/// NAT64 of GSO super-packets (TCP TSO and UDP GRO/USO): translating one header for the whole
/// super-packet and letting the kernel segment the IPv4 result must give, datagram for datagram, the
/// same bytes as cutting the IPv6 super-packet first and translating every segment (RFC 7915 §5.1 DF
/// and Identification rules included). The kernel's segmentation is played by `VirtioNet.segment`, which
/// the NATWire tests hold to the kernel's behaviour.
@Suite struct NAT64OffloadTests {
    static let client = IPv6Address("2001:db8:1::2")!
    static let server4 = IPv4Address("203.0.113.2")!

    static func settings(_ mode: String) throws -> NAT64Settings {
        let text: String
        switch mode {
        case "siit":
            text = "[nat64]\nmode = \"siit\"\nprefix = \"2001:db8:64::/96\"\neam = [{ v4 = \"198.51.100.7\", v6 = \"2001:db8:1::2\" }]\n"
        case "pool":
            text = "[nat64]\nmode = \"pool\"\nprefix = \"2001:db8:64::/96\"\npool = [\"198.51.100.0/28\"]\n"
        default:
            text = "[nat64]\nmode = \"stateful\"\nprefix = \"2001:db8:64::/96\"\npool = [\"198.51.100.64/30\"]\n"
        }
        var s = try #require(try ConfigLoader.parse(text, file: "t.toml").nat64)
        if case .stateful(var c) = s.mode {
            c.hashSeed = 7
            s.mode = .stateful(c)
        }
        return s
    }

    static func path(_ s: NAT64Settings) throws -> NAT64Path {
        let setup = NAT64Setup(settings: s, mtu: 1500, claimsAllIPv4: true, control: NAT64Control())
        return try NAT64Path(setup, now: Timestamp(nanoseconds: 1_000_000_000), logger: .init(label: "test"))
    }

    /// A super-packet as the kernel hands it over: one set of headers, the payload of all segments, the
    /// checksum field holding the pseudo-header sum over the whole length.
    static func superPacket(udp: Bool, segments: Int, gso: Int, last: Int) -> (packet: [UInt8], header: VirtioNetHeader) {
        let length = (segments - 1) * gso + last
        let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        let server6 = IPv6Address("2001:db8:64::cb00:7102")!
        var p = udp
            ? PacketBuilder.udp6(source: client, sourcePort: 40000, destination: server6, destinationPort: 5201, payload: payload)
            : PacketBuilder.tcp6(source: client, sourcePort: 40001, destination: server6, destinationPort: 5201,
                                 flags: [.ack, .psh], sequenceNumber: 77_000, acknowledgmentNumber: 5, payload: payload)
        let l4 = udp ? 8 : 20
        let field = 40 + (udp ? 6 : 16)
        let pseudo = Checksum.fold(Checksum.pseudoHeaderSum(source: client, destination: server6,
                                                            nextHeader: udp ? IPProtocol.udp : IPProtocol.tcp, length: l4 + length))
        p[field] = UInt8(pseudo >> 8)
        p[field + 1] = UInt8(pseudo & 0xFF)
        let h = VirtioNetHeader(flags: VirtioNetHeader.flagNeedsChecksum,
                                gsoType: udp ? VirtioNetHeader.gsoUDPL4 : VirtioNetHeader.gsoTCPv6,
                                headerLength: UInt16(40 + l4), gsoSize: UInt16(gso),
                                checksumStart: 40, checksumOffset: UInt16(udp ? 6 : 16))
        return (p, h)
    }

    /// What the queue writes for `packet` (each write: virtio-net header + packet), through an in-memory device.
    static func writes(of packet: [UInt8], header: VirtioNetHeader, nat64: inout NAT64Path) throws -> [[UInt8]] {
        let memory = MemoryPacketQueue()
        var q = QueueIO(device: MemoryPacketDevice(queue: memory, metadataSize: 12), shard: nil)
        let p = q.packetStart
        header.store(to: p - 12, size: 12)
        packet.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        q.handle64(p, packet.count, nat64: &nat64, now: Timestamp(nanoseconds: 2_000_000_000))
        return memory.takeWritten()
    }

    /// The datagrams the kernel would send for the queue's writes: GSO ones segmented, plain ones as they are.
    static func datagrams(_ written: [[UInt8]]) throws -> [[UInt8]] {
        var out: [[UInt8]] = []
        for w in written {
            let h = w.withUnsafeBytes { VirtioNetHeader(loading: $0.baseAddress!) }
            let packet = Array(w[12...])
            if !h.isSegmentationOffload {
                #expect(h.isPlain)
                out.append(packet)
                continue
            }
            var scratch = [UInt8](repeating: 0, count: 70_000)
            _ = try packet.withUnsafeBytes { src in
                try scratch.withUnsafeMutableBytes { s in
                    try VirtioNet.segment(src, header: h, into: s) { out.append(Array($0)) }
                }
            }
        }
        return out
    }

    /// The reference: cut the IPv6 super-packet first, translate every segment.
    static func reference(_ packet: [UInt8], header: VirtioNetHeader, nat64: inout NAT64Path) throws -> [[UInt8]] {
        var segments: [[UInt8]] = []
        var scratch = [UInt8](repeating: 0, count: 70_000)
        _ = try packet.withUnsafeBytes { src in
            try scratch.withUnsafeMutableBytes { s in
                try VirtioNet.segment(src, header: header, into: s) { segments.append(Array($0)) }
            }
        }
        var out: [[UInt8]] = []
        for var s in segments {
            s.withUnsafeMutableBytes { b in
                nat64.process(b, now: Timestamp(nanoseconds: 2_000_000_000)) { out.append(Array(UnsafeRawBufferPointer(start: $0, count: $1))) }
            }
        }
        return out
    }

    static func compare(mode: String, udp: Bool, segments: Int, gso: Int, last: Int, expectWhole: Bool) throws {
        let s = try settings(mode)
        var whole = try path(s)
        var cut = try path(s)
        if mode == "stateful" && !udp {
            // RFC 6146: a TCP session starts with the IPv6 host's SYN.
            let syn = PacketBuilder.tcp6(source: client, sourcePort: 40001, destination: IPv6Address("2001:db8:64::cb00:7102")!,
                                         destinationPort: 5201, flags: .syn, sequenceNumber: 76_999)
            let a = try datagrams(try writes(of: syn, header: VirtioNetHeader(), nat64: &whole))
            let b = try reference(syn, header: VirtioNetHeader(), nat64: &cut)
            #expect(a.count == 1 && a == b)
        }
        let (packet, header) = superPacket(udp: udp, segments: segments, gso: gso, last: last)
        let written = try writes(of: packet, header: header, nat64: &whole)
        #expect(written.count == (expectWhole ? 1 : segments), "\(mode) udp=\(udp): \(written.count) writes")
        let got = try datagrams(written)
        let want = try reference(packet, header: header, nat64: &cut)
        #expect(want.count == segments)
        #expect(got.count == want.count)
        for (i, (g, w)) in zip(got, want).enumerated() {
            // With DF set the identification is free (RFC 6864 §4.1: atomic datagrams); the translator
            // sends 0, the kernel numbers a super-packet's segments on from 0. Everything else is equal.
            var g = g, w = w
            if g.count >= 20 && g[6] & 0x40 != 0 {
                #expect(i != 0 || (g[4] == 0 && g[5] == 0))
                for k in [4, 5, 10, 11] { g[k] = 0; w[k] = 0 }
            }
            let first = (0..<min(g.count, w.count)).first { g[$0] != w[$0] } ?? (g.count == w.count ? nil : min(g.count, w.count))
            #expect(first == nil, "\(mode) udp=\(udp) segment \(i) of \(got.count): lengths \(g.count)/\(w.count), first difference at byte \(first ?? -1): got \(g.prefix(28).map { String($0, radix: 16) }) want \(w.prefix(28).map { String($0, radix: 16) })")
        }
        // DF (RFC 7915 §5.1): set exactly on the datagrams over 1260 bytes.
        for g in got { #expect((g[6] & 0x40 != 0) == (g.count > 1260)) }
        // The identifications the kernel used are not handed out again: the next packet matches too.
        let (next, nextHeader) = superPacket(udp: true, segments: 1, gso: 100, last: 100)
        var plain = next
        _ = plain.withUnsafeMutableBytes { VirtioNet.completeChecksum($0, header: nextHeader) }
        let a = try datagrams(try writes(of: plain, header: VirtioNetHeader(), nat64: &whole))
        let b = try reference(plain, header: VirtioNetHeader(), nat64: &cut)
        #expect(a.count == 1 && b.count == 1 && a.first?.prefix(28) == b.first?.prefix(28) && a == b,
                "next packet: got \(a.first?.prefix(28).map { String($0, radix: 16) } ?? []) want \(b.first?.prefix(28).map { String($0, radix: 16) } ?? [])")
    }

    @Test(arguments: ["siit", "pool", "stateful"])
    func rfc7915_5_1_udpSuperPacketOfSmallDatagramsIsTranslatedWholeWithDFClear(mode: String) throws {
        try Self.compare(mode: mode, udp: true, segments: 40, gso: 64, last: 64, expectWhole: true)
        try Self.compare(mode: mode, udp: true, segments: 7, gso: 1000, last: 13, expectWhole: true)
    }

    @Test(arguments: ["siit", "stateful"])
    func rfc7915_5_1_udpSuperPacketOfLargeDatagramsIsTranslatedWholeWithDFSet(mode: String) throws {
        try Self.compare(mode: mode, udp: true, segments: 5, gso: 1400, last: 1300, expectWhole: true)
    }

    @Test func rfc7915_5_1_udpSuperPacketWithMixedDFIsCutFirst() throws {
        // 1400-byte datagrams get DF, the last 100-byte one does not: not one IPv4 super-packet.
        try Self.compare(mode: "siit", udp: true, segments: 4, gso: 1400, last: 100, expectWhole: false)
    }

    @Test(arguments: ["siit", "stateful"])
    func rfc7915_5_1_tcpSuperPacketIsTranslatedWholeWithDFSet(mode: String) throws {
        try Self.compare(mode: mode, udp: false, segments: 20, gso: 1440, last: 1440, expectWhole: true)
        try Self.compare(mode: mode, udp: false, segments: 3, gso: 1440, last: 1300, expectWhole: true)
    }

    @Test func rfc7915_5_1_tcpSuperPacketOfSmallSegmentsIsTranslatedWholeWithDFClear() throws {
        try Self.compare(mode: "siit", udp: false, segments: 9, gso: 536, last: 100, expectWhole: true)
    }

    @Test(arguments: ["siit", "stateful"])
    func rfc7915_5_1_tcpSuperPacketWithAShortLastSegmentIsCutFirst(mode: String) throws {
        // The last segment (520 bytes as IPv4) gets DF clear, the others DF set.
        try Self.compare(mode: mode, udp: false, segments: 20, gso: 1440, last: 500, expectWhole: false)
    }
}
