/// Builds whole IPv4 packets with correct lengths and checksums, for tests, benchmarks and the
/// NAT's own generated messages (off the forwarding path).
public enum PacketBuilder {
    /// An IPv4 datagram with the given header and transport bytes; fixes the length and header checksum.
    public static func ipv4(_ header: IPv4Header, payload: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: header.headerLength + payload.count)
        out.withUnsafeMutableBytes { b in
            let hl = header.emit(into: b, totalLength: b.count)
            for (i, byte) in payload.enumerated() { b[hl + i] = byte }
        }
        return out
    }

    /// A UDP datagram over IPv4. With `checksum: false` the checksum field is zero (RFC 768 "none").
    public static func udp4(source: IPv4Address, sourcePort: UInt16, destination: IPv4Address, destinationPort: UInt16,
                            payload: [UInt8] = [], ttl: UInt8 = 64, identification: UInt16 = 0,
                            dontFragment: Bool = false, checksum: Bool = true) -> [UInt8] {
        var seg = [UInt8](repeating: 0, count: UDPLayout.headerLength + payload.count)
        seg.withUnsafeMutableBytes { b in
            UDPHeader(sourcePort: sourcePort, destinationPort: destinationPort).emit(into: b, length: b.count)
            for (i, byte) in payload.enumerated() { b[UDPLayout.headerLength + i] = byte }
            if checksum {
                let ph = Checksum.pseudoHeaderSum(source: source, destination: destination, protocol: IPProtocol.udp, length: b.count)
                var c = Checksum.finish(Checksum.sum(UnsafeRawBufferPointer(b), initial: ph))
                if c == 0 { c = 0xFFFF }
                store16(b.baseAddress!, UDPLayout.checksum, c)
            }
        }
        let h = IPv4Header(protocolNumber: IPProtocol.udp, source: source, destination: destination, ttl: ttl,
                           identification: identification, dontFragment: dontFragment)
        return ipv4(h, payload: seg)
    }

    /// A TCP segment over IPv4 with a correct checksum.
    public static func tcp4(source: IPv4Address, destination: IPv4Address, header: TCPHeader, payload: [UInt8] = [],
                            ttl: UInt8 = 64, identification: UInt16 = 0, dontFragment: Bool = true) -> [UInt8] {
        var seg = [UInt8](repeating: 0, count: header.headerLength + payload.count)
        seg.withUnsafeMutableBytes { b in
            let hl = header.emit(into: b)
            for (i, byte) in payload.enumerated() { b[hl + i] = byte }
            let ph = Checksum.pseudoHeaderSum(source: source, destination: destination, protocol: IPProtocol.tcp, length: b.count)
            store16(b.baseAddress!, TCPLayout.checksum, Checksum.finish(Checksum.sum(UnsafeRawBufferPointer(b), initial: ph)))
        }
        let h = IPv4Header(protocolNumber: IPProtocol.tcp, source: source, destination: destination, ttl: ttl,
                           identification: identification, dontFragment: dontFragment)
        return ipv4(h, payload: seg)
    }

    /// Convenience: a TCP segment from ports and flags.
    public static func tcp4(source: IPv4Address, sourcePort: UInt16, destination: IPv4Address, destinationPort: UInt16,
                            flags: TCPFlags, sequenceNumber: UInt32 = 1000, acknowledgmentNumber: UInt32 = 0,
                            payload: [UInt8] = [], ttl: UInt8 = 64) -> [UInt8] {
        tcp4(source: source, destination: destination,
             header: TCPHeader(sourcePort: sourcePort, destinationPort: destinationPort, flags: flags,
                               sequenceNumber: sequenceNumber, acknowledgmentNumber: acknowledgmentNumber),
             payload: payload, ttl: ttl)
    }

    /// An ICMPv4 message (query or error) over IPv4 with a correct checksum.
    public static func icmp4(source: IPv4Address, destination: IPv4Address, header: ICMPv4Header, body: [UInt8] = [],
                             ttl: UInt8 = 64, identification: UInt16 = 0) -> [UInt8] {
        var msg = [UInt8](repeating: 0, count: ICMPv4Layout.headerLength + body.count)
        msg.withUnsafeMutableBytes { b in
            header.emit(into: b)
            for (i, byte) in body.enumerated() { b[ICMPv4Layout.headerLength + i] = byte }
            store16(b.baseAddress!, ICMPv4Layout.checksum, Checksum.compute(UnsafeRawBufferPointer(b)))
        }
        let h = IPv4Header(protocolNumber: IPProtocol.icmp, source: source, destination: destination, ttl: ttl,
                           identification: identification)
        return ipv4(h, payload: msg)
    }

    /// An echo request or reply.
    public static func echo4(source: IPv4Address, destination: IPv4Address, identifier: UInt16, sequenceNumber: UInt16 = 1,
                             reply: Bool = false, payload: [UInt8] = Array(repeating: 0xA5, count: 8)) -> [UInt8] {
        icmp4(source: source, destination: destination,
              header: ICMPv4Header(type: reply ? ICMPv4Type.echoReply : ICMPv4Type.echoRequest,
                                   identifier: identifier, sequenceNumber: sequenceNumber),
              body: payload)
    }

    /// An ICMPv4 error about `original`, quoting its first `quote` bytes (RFC 1812 §4.3.2.3: as much as fits in 576).
    public static func icmp4Error(source: IPv4Address, destination: IPv4Address, type: UInt8, code: UInt8,
                                  restOfHeader: UInt32 = 0, original: [UInt8], quote: Int = 548) -> [UInt8] {
        icmp4(source: source, destination: destination,
              header: ICMPv4Header(type: type, code: code, restOfHeader: restOfHeader),
              body: Array(original.prefix(quote)))
    }
}
