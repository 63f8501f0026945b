/// The few fields a packet router reads before any engine sees a packet (which shard owns it, which
/// translator claims it), without validating the datagram: every accessor checks that the bytes it
/// reads are there and answers nil otherwise, so a short or odd packet is routed somewhere harmless
/// and the engine that gets it drops it with the reason. Offsets come from the layouts of this module.
public struct IPv4Peek {
    public let pointer: UnsafeRawPointer
    /// Bytes available from `pointer`.
    public let count: Int

    /// Nil unless there are 20 bytes and the version is 4.
    @inlinable @inline(__always)
    public init?(_ p: UnsafeRawPointer, count n: Int) {
        guard n >= IPv4Layout.minimumHeaderLength, p.load(as: UInt8.self) >> 4 == 4 else { return nil }
        pointer = p
        count = n
    }

    @inlinable public var headerLength: Int { Int(pointer.load(as: UInt8.self) & 0x0F) << 2 }
    @inlinable public var source: UInt32 { UInt32(bigEndian: pointer.loadUnaligned(fromByteOffset: IPv4Layout.source, as: UInt32.self)) }
    @inlinable public var destination: UInt32 {
        UInt32(bigEndian: pointer.loadUnaligned(fromByteOffset: IPv4Layout.destination, as: UInt32.self))
    }
    @inlinable public var protocolNumber: UInt8 { pointer.load(fromByteOffset: IPv4Layout.protocolNumber, as: UInt8.self) }
    @inlinable var fragmentField: UInt16 {
        UInt16(bigEndian: pointer.loadUnaligned(fromByteOffset: IPv4Layout.flagsFragmentOffset, as: UInt16.self))
    }
    /// A fragment other than the first: it carries no transport header.
    @inlinable public var isLaterFragment: Bool { fragmentField & IPv4Layout.offsetMask != 0 }
    /// The first fragment of a datagram that has more.
    @inlinable public var isFirstOfFragments: Bool { fragmentField & (IPv4Layout.offsetMask | IPv4Layout.flagMF) == IPv4Layout.flagMF }
    /// Source, destination, identification and protocol: what every fragment of one datagram shares
    /// (RFC 791), in wire order, as a key.
    @inlinable public var fragmentKey: (addresses: UInt64, identification: UInt16, protocolNumber: UInt8) {
        (UInt64(pointer.loadUnaligned(fromByteOffset: IPv4Layout.source, as: UInt64.self)),
         pointer.loadUnaligned(fromByteOffset: IPv4Layout.identification, as: UInt16.self), protocolNumber)
    }

    /// The transport header's first `length` bytes are there (and this is not a later fragment).
    @inlinable func hasTransport(_ length: Int) -> Bool { !isLaterFragment && headerLength + length <= count }

    /// TCP or UDP source port (the first 16 bits after the IP header).
    @inlinable public var sourcePort: UInt16? {
        hasTransport(2) ? UInt16(bigEndian: pointer.loadUnaligned(fromByteOffset: headerLength, as: UInt16.self)) : nil
    }
    /// TCP or UDP destination port.
    @inlinable public var destinationPort: UInt16? {
        hasTransport(4) ? UInt16(bigEndian: pointer.loadUnaligned(fromByteOffset: headerLength + 2, as: UInt16.self)) : nil
    }
    /// ICMP type (when the protocol is ICMP).
    @inlinable public var icmpType: UInt8? {
        protocolNumber == IPProtocol.icmp && hasTransport(1) ? pointer.load(fromByteOffset: headerLength, as: UInt8.self) : nil
    }
    /// ICMP query identifier (echo and the like: bytes 4-5 of the ICMP header).
    @inlinable public var icmpIdentifier: UInt16? {
        hasTransport(ICMPv4Layout.headerLength)
            ? UInt16(bigEndian: pointer.loadUnaligned(fromByteOffset: headerLength + ICMPv4Layout.identifier, as: UInt16.self)) : nil
    }
    /// An ICMP error's quoted datagram (RFC 792: after the 8-byte ICMP header), as far as it is there.
    @inlinable public var quoted: IPv4Peek? {
        guard let t = icmpType, ICMPv4Type.isError(t), hasTransport(ICMPv4Layout.headerLength) else { return nil }
        let at = headerLength + ICMPv4Layout.headerLength
        return IPv4Peek(pointer + at, count: count - at)
    }
    /// Whether the first `length` bytes of the transport header are there.
    @inlinable public func hasTransportHeader(_ length: Int) -> Bool { hasTransport(length) }
}

/// The IP version and the IPv6 fields a translator needs to claim a packet.
public enum IPPeek {
    /// 4, 6, or another value (0 for an empty packet).
    @inlinable public static func version(_ p: UnsafeRawPointer, count: Int) -> UInt8 {
        count > 0 ? p.load(as: UInt8.self) >> 4 : 0
    }

    /// An IPv6 packet's source and destination (nil when it is not IPv6 or shorter than the fixed
    /// header): what a prefix translator (NPTv6) picks its translator by.
    @inlinable public static func ipv6Addresses(_ p: UnsafeRawPointer, count: Int) -> (source: IPv6Address, destination: IPv6Address)? {
        guard count >= IPv6Layout.headerLength, p.load(as: UInt8.self) >> 4 == 6 else { return nil }
        return (IPv6Address(high: load64(p, IPv6Layout.source), low: load64(p, IPv6Layout.source + 8)),
                IPv6Address(high: load64(p, IPv6Layout.destination), low: load64(p, IPv6Layout.destination + 8)))
    }

    /// The IP version, the transport protocol as the first header after the IP header names it (IPv4's
    /// protocol; IPv6's Next Header, so 0 behind extension headers), and for ICMP and ICMPv6 the type and
    /// code (nil for a later fragment or when the bytes are not there). For counting, not for deciding.
    @inlinable
    public static func classify(_ p: UnsafeRawPointer, count: Int) -> (version: UInt8, transport: UInt8, icmp: (type: UInt8, code: UInt8)?) {
        if let ip = IPv4Peek(p, count: count) {
            let proto = ip.protocolNumber
            guard proto == IPProtocol.icmp, let type = ip.icmpType, ip.hasTransportHeader(2) else { return (4, proto, nil) }
            return (4, proto, (type, p.load(fromByteOffset: ip.headerLength + ICMPv4Layout.code, as: UInt8.self)))
        }
        guard count >= IPv6Layout.headerLength, p.load(as: UInt8.self) >> 4 == 6 else { return (version(p, count: count), 0, nil) }
        let next = p.load(fromByteOffset: IPv6Layout.nextHeader, as: UInt8.self)
        guard next == IPProtocol.icmpv6, count >= IPv6Layout.headerLength + 2 else { return (6, next, nil) }
        return (6, next, (p.load(fromByteOffset: IPv6Layout.headerLength + ICMPv6Layout.type, as: UInt8.self),
                          p.load(fromByteOffset: IPv6Layout.headerLength + ICMPv6Layout.code, as: UInt8.self)))
    }

    /// An IPv6 packet of link scope: multicast destination (ff00::/8) or link-local source (fe80::/10),
    /// what the kernel's own neighbour discovery and MLD send.
    @inlinable public static func isIPv6LinkScope(_ p: UnsafeRawPointer, count: Int) -> Bool {
        guard count >= IPv6Layout.headerLength, p.load(as: UInt8.self) >> 4 == 6 else { return false }
        return p.load(fromByteOffset: IPv6Layout.destination, as: UInt8.self) == 0xFF
            || (p.load(fromByteOffset: IPv6Layout.source, as: UInt8.self) == 0xFE
                && p.load(fromByteOffset: IPv6Layout.source + 1, as: UInt8.self) & 0xC0 == 0x80)
    }
}
