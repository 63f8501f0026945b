/// IPv6, ICMPv6 and GRE packets, for tests, benchmarks and the NAT's own generated messages (off the
/// forwarding path). Upper-layer checksums over IPv6 use the RFC 8200 §8.1 pseudo-header; the
/// destination in it is the packet's destination (no routing-header final destination is looked up).
extension PacketBuilder {
    /// An IPv6 packet: the fixed header, `extensionHeaders` in the given order (each one's next-header field
    /// names the one after it), then `payload`. `header.nextHeader` is the upper-layer protocol; the fixed
    /// header's field is set to the first extension header's number when there is one.
    public static func ipv6(_ header: IPv6Header, extensionHeaders: [IPv6ExtensionHeader] = [], payload: [UInt8]) -> [UInt8] {
        let extLength = extensionHeaders.reduce(0) { $0 + $1.length }
        var out = [UInt8](repeating: 0, count: IPv6Layout.headerLength + extLength + payload.count)
        out.withUnsafeMutableBytes { b in
            var h = header
            if let first = extensionHeaders.first { h.nextHeader = first.protocolNumber }
            var off = h.emit(into: b, payloadLength: b.count - IPv6Layout.headerLength)
            for (i, e) in extensionHeaders.enumerated() {
                let next = i + 1 < extensionHeaders.count ? extensionHeaders[i + 1].protocolNumber : header.nextHeader
                off += e.emit(into: UnsafeMutableRawBufferPointer(rebasing: b[off...]), nextHeader: next)
            }
            for (i, byte) in payload.enumerated() { b[off + i] = byte }
        }
        return out
    }

    /// Computes the RFC 8200 §8.1 checksum of `segment` and stores it at `checksumOffset`.
    static func storeChecksum6(_ b: UnsafeMutableRawBufferPointer, at checksumOffset: Int, source: IPv6Address,
                               destination: IPv6Address, nextHeader: UInt8) {
        store16(b.baseAddress!, checksumOffset, 0)
        let ph = Checksum.pseudoHeaderSum(source: source, destination: destination, nextHeader: nextHeader, length: b.count)
        store16(b.baseAddress!, checksumOffset, Checksum.finish(Checksum.sum(UnsafeRawBufferPointer(b), initial: ph)))
    }

    /// A UDP datagram over IPv6. The checksum is mandatory over IPv6 (RFC 8200 §8.1); a computed zero is sent as 0xFFFF.
    public static func udp6(source: IPv6Address, sourcePort: UInt16, destination: IPv6Address, destinationPort: UInt16,
                            payload: [UInt8] = [], hopLimit: UInt8 = 64, trafficClass: UInt8 = 0, flowLabel: UInt32 = 0,
                            extensionHeaders: [IPv6ExtensionHeader] = []) -> [UInt8] {
        var seg = [UInt8](repeating: 0, count: UDPLayout.headerLength + payload.count)
        seg.withUnsafeMutableBytes { b in
            UDPHeader(sourcePort: sourcePort, destinationPort: destinationPort).emit(into: b, length: b.count)
            for (i, byte) in payload.enumerated() { b[UDPLayout.headerLength + i] = byte }
            storeChecksum6(b, at: UDPLayout.checksum, source: source, destination: destination, nextHeader: IPProtocol.udp)
            if load16(b.baseAddress!, UDPLayout.checksum) == 0 { store16(b.baseAddress!, UDPLayout.checksum, 0xFFFF) }
        }
        let h = IPv6Header(nextHeader: IPProtocol.udp, source: source, destination: destination, hopLimit: hopLimit,
                           trafficClass: trafficClass, flowLabel: flowLabel)
        return ipv6(h, extensionHeaders: extensionHeaders, payload: seg)
    }

    /// A TCP segment over IPv6 with a correct checksum.
    public static func tcp6(source: IPv6Address, destination: IPv6Address, header: TCPHeader, payload: [UInt8] = [],
                            hopLimit: UInt8 = 64, extensionHeaders: [IPv6ExtensionHeader] = []) -> [UInt8] {
        var seg = [UInt8](repeating: 0, count: header.headerLength + payload.count)
        seg.withUnsafeMutableBytes { b in
            let hl = header.emit(into: b)
            for (i, byte) in payload.enumerated() { b[hl + i] = byte }
            storeChecksum6(b, at: TCPLayout.checksum, source: source, destination: destination, nextHeader: IPProtocol.tcp)
        }
        let h = IPv6Header(nextHeader: IPProtocol.tcp, source: source, destination: destination, hopLimit: hopLimit)
        return ipv6(h, extensionHeaders: extensionHeaders, payload: seg)
    }

    /// Convenience: a TCP segment over IPv6 from ports and flags.
    public static func tcp6(source: IPv6Address, sourcePort: UInt16, destination: IPv6Address, destinationPort: UInt16,
                            flags: TCPFlags, sequenceNumber: UInt32 = 1000, acknowledgmentNumber: UInt32 = 0,
                            payload: [UInt8] = [], hopLimit: UInt8 = 64) -> [UInt8] {
        tcp6(source: source, destination: destination,
             header: TCPHeader(sourcePort: sourcePort, destinationPort: destinationPort, flags: flags,
                               sequenceNumber: sequenceNumber, acknowledgmentNumber: acknowledgmentNumber),
             payload: payload, hopLimit: hopLimit)
    }

    /// An ICMPv6 message over IPv6 with a correct checksum (RFC 4443 §2.3).
    public static func icmp6(source: IPv6Address, destination: IPv6Address, header: ICMPv6Header, body: [UInt8] = [],
                             hopLimit: UInt8 = 64, extensionHeaders: [IPv6ExtensionHeader] = []) -> [UInt8] {
        var msg = [UInt8](repeating: 0, count: ICMPv6Layout.headerLength + body.count)
        msg.withUnsafeMutableBytes { b in
            header.emit(into: b)
            for (i, byte) in body.enumerated() { b[ICMPv6Layout.headerLength + i] = byte }
            storeChecksum6(b, at: ICMPv6Layout.checksum, source: source, destination: destination, nextHeader: IPProtocol.icmpv6)
        }
        let h = IPv6Header(nextHeader: IPProtocol.icmpv6, source: source, destination: destination, hopLimit: hopLimit)
        return ipv6(h, extensionHeaders: extensionHeaders, payload: msg)
    }

    /// An echo request or reply over IPv6 (RFC 4443 §4).
    public static func echo6(source: IPv6Address, destination: IPv6Address, identifier: UInt16, sequenceNumber: UInt16 = 1,
                             reply: Bool = false, payload: [UInt8] = Array(repeating: 0xA5, count: 8),
                             hopLimit: UInt8 = 64) -> [UInt8] {
        icmp6(source: source, destination: destination,
              header: ICMPv6Header(type: reply ? ICMPv6Type.echoReply : ICMPv6Type.echoRequest,
                                   identifier: identifier, sequenceNumber: sequenceNumber),
              body: payload, hopLimit: hopLimit)
    }

    /// An ICMPv6 error about `original`, quoting its first `quote` bytes (RFC 4443 §2.4 (c): as much as fits
    /// without the error exceeding the minimum MTU of 1280, i.e. 1280 - 40 - 8 = 1232).
    public static func icmp6Error(source: IPv6Address, destination: IPv6Address, type: UInt8, code: UInt8,
                                  restOfHeader: UInt32 = 0, original: [UInt8], quote: Int = 1232,
                                  hopLimit: UInt8 = 64) -> [UInt8] {
        icmp6(source: source, destination: destination,
              header: ICMPv6Header(type: type, code: code, restOfHeader: restOfHeader),
              body: Array(original.prefix(quote)), hopLimit: hopLimit)
    }

    /// A GRE packet (bytes of the GRE header and payload). The checksum is computed when
    /// `header.checksumPresent` (RFC 2784 §2.5); for version 1 the key's payload-length half is set to
    /// `payload.count` (RFC 2637 §4.1).
    public static func gre(_ header: GREHeader, payload: [UInt8]) -> [UInt8] {
        var h = header
        if h.version == 1 {
            let callID = UInt32((h.key ?? 0) & 0xFFFF)
            h.key = UInt32(UInt16(truncatingIfNeeded: payload.count)) << 16 | callID
        }
        var out = [UInt8](repeating: 0, count: h.headerLength + payload.count)
        out.withUnsafeMutableBytes { b in
            let hl = h.emit(into: b)
            for (i, byte) in payload.enumerated() { b[hl + i] = byte }
            if h.checksumPresent {
                store16(b.baseAddress!, GRELayout.minimumHeaderLength, Checksum.compute(UnsafeRawBufferPointer(b)))
            }
        }
        return out
    }

    /// GRE over IPv4 (protocol 47), including PPTP's enhanced GRE.
    public static func gre4(source: IPv4Address, destination: IPv4Address, header: GREHeader, payload: [UInt8] = [],
                            ttl: UInt8 = 64, identification: UInt16 = 0, dontFragment: Bool = false) -> [UInt8] {
        let h = IPv4Header(protocolNumber: IPProtocol.gre, source: source, destination: destination, ttl: ttl,
                           identification: identification, dontFragment: dontFragment)
        return ipv4(h, payload: gre(header, payload: payload))
    }
}
