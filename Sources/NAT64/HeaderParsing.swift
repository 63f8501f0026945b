import NATCore
import NATWire

/// What RFC 7915 §5.1 needs from an IPv6 header chain: where the payload that becomes the IPv4 payload
/// starts, its protocol, and the Fragment and Routing headers.
@usableFromInline
struct IPv6TranslationChain {
    /// The first next-header value that is not Hop-by-Hop (0), Routing (43), Destination Options (60) or
    /// Fragment (44): the IPv4 Protocol (RFC 7915 §5.1 "Protocol").
    @usableFromInline var upperProtocol: UInt8
    /// The offset of that header from the start of the packet.
    @usableFromInline var upperOffset: Int
    /// The Fragment header's offset, or -1.
    @usableFromInline var fragmentHeaderOffset: Int = -1
    /// Fragment offset in bytes.
    @usableFromInline var fragmentOffset: Int = 0
    @usableFromInline var moreFragments = false
    @usableFromInline var fragmentIdentification: UInt32 = 0
    /// The Routing header's offset, or -1.
    @usableFromInline var routingHeaderOffset: Int = -1
    @usableFromInline var segmentsLeft: UInt8 = 0

    @inlinable init(upperProtocol: UInt8, upperOffset: Int) {
        self.upperProtocol = upperProtocol
        self.upperOffset = upperOffset
    }

    @inlinable var hasFragmentHeader: Bool { fragmentHeaderOffset >= 0 }
    /// A real fragment (offset or M set); an atomic fragment (RFC 6946) is not.
    @inlinable var isFragment: Bool { fragmentHeaderOffset >= 0 && (fragmentOffset != 0 || moreFragments) }
    /// Whether the upper-layer header is in this packet (not a second or later fragment).
    @inlinable var isFirst: Bool { fragmentOffset == 0 }
}

/// Walks an IPv6 header chain over `count` bytes for translation (RFC 7915 §5.1): skips Hop-by-Hop (first
/// only), Routing and Destination Options headers, notes the Fragment header and stops after it, and stops
/// at any other next-header value (AH and ESP included: "all transport protocols are translated").
/// Throws `.badExtensionHeaders` for a header that runs past `count`, a misplaced Hop-by-Hop header or
/// more than 16 headers, and `.extensionHeaderAfterFragment` when the Fragment header is followed by an
/// extension header other than ESP (RFC 7915 §5.1 "Total Length": "SHOULD be dropped").
@inlinable
func walkIPv6ForTranslation(_ p: UnsafeRawPointer, count: Int) throws(DropReason) -> IPv6TranslationChain {
    var next = load8(p, IPv6Layout.nextHeader)
    var off = IPv6Layout.headerLength
    var n = 0
    var routing: (offset: Int, segmentsLeft: UInt8) = (-1, 0)
    while true {
        switch next {
        case IPProtocol.hopByHop, IPProtocol.ipv6Route, IPProtocol.ipv6DestinationOptions:
            if next == IPProtocol.hopByHop && off != IPv6Layout.headerLength { throw .badExtensionHeaders }
            guard off + IPv6ExtensionLayout.minimumLength <= count else { throw .badExtensionHeaders }
            let len = (Int(load8(p, off + IPv6ExtensionLayout.headerExtensionLength)) + 1) << 3
            guard off + len <= count else { throw .badExtensionHeaders }
            // Only the first Routing header is looked at (RFC 8200 §4.1 allows one).
            if next == IPProtocol.ipv6Route && routing.offset < 0 {
                routing = (off, load8(p, off + IPv6ExtensionLayout.segmentsLeft))
            }
            next = load8(p, off)
            off += len
        case IPProtocol.ipv6Fragment:
            guard off + IPv6ExtensionLayout.fragmentHeaderLength <= count else { throw .badExtensionHeaders }
            let following = load8(p, off)
            switch following {
            case IPProtocol.hopByHop, IPProtocol.ipv6Route, IPProtocol.ipv6DestinationOptions,
                 IPProtocol.ipv6Fragment, IPProtocol.ah:
                throw .extensionHeaderAfterFragment
            default: break
            }
            var c = IPv6TranslationChain(upperProtocol: following, upperOffset: off + IPv6ExtensionLayout.fragmentHeaderLength)
            let fo = load16(p, off + IPv6ExtensionLayout.fragmentOffsetFlags)
            c.fragmentHeaderOffset = off
            c.fragmentOffset = Int(fo & IPv6ExtensionLayout.fragmentOffsetMask)
            c.moreFragments = fo & IPv6ExtensionLayout.fragmentMoreFlag != 0
            c.fragmentIdentification = load32(p, off + IPv6ExtensionLayout.fragmentIdentification)
            c.routingHeaderOffset = routing.offset
            c.segmentsLeft = routing.segmentsLeft
            return c
        default:
            var c = IPv6TranslationChain(upperProtocol: next, upperOffset: off)
            c.routingHeaderOffset = routing.offset
            c.segmentsLeft = routing.segmentsLeft
            return c
        }
        n += 1
        guard n <= IPv6Layout.maximumExtensionHeaders else { throw .badExtensionHeaders }
    }
}

/// RFC 7915 §4.1: whether the IPv4 options hold an unexpired Loose (131) or Strict (137) Source Route:
/// one whose pointer (RFC 791 §3.1, counted from the option's first byte) has not run past its length.
@inlinable
func hasUnexpiredSourceRoute(_ p: UnsafeRawPointer, headerLength: Int) -> Bool {
    var i = IPv4Layout.minimumHeaderLength
    while i < headerLength {
        let type = load8(p, i)
        if type == IPv4Option.endOfList { return false }
        if type == IPv4Option.noOperation { i += 1; continue }
        guard i + 1 < headerLength else { return false }
        let len = Int(load8(p, i + 1))
        guard len >= 2, i + len <= headerLength else { return false }
        if (type == IPv4Option.looseSourceRoute || type == IPv4Option.strictSourceRoute) && len >= 3 {
            if Int(load8(p, i + 2)) <= len { return true }
        }
        i += len
    }
    return false
}

/// RFC 1812 §5.3.7 (RFC 7915 §4.1 "illegal source address"): 0.0.0.0/8, 127.0.0.0/8, 224.0.0.0/4 and
/// 240.0.0.0/4 (which holds 255.255.255.255), never translated.
@inlinable @inline(__always)
func isMartianIPv4(_ a: IPv4Address) -> Bool {
    let first = a.rawValue >> 24
    return first == 0 || first == 127 || first >= 224
}

/// RFC 7915 §5.1 "illegal source address (e.g., ::1)": the unspecified and loopback addresses and multicast
/// (RFC 4291 §2.5.2, §2.5.3, §2.7), never a source to translate.
@inlinable @inline(__always)
func isIllegalIPv6Source(_ a: IPv6Address) -> Bool {
    (a.high == 0 && a.low <= 1) || a.high >> 56 == 0xFF
}

@inlinable @inline(__always)
func loadIPv6Address(_ p: UnsafeRawPointer, _ o: Int) -> IPv6Address {
    IPv6Address(high: load64(p, o), low: load64(p, o + 8))
}

@inlinable @inline(__always)
func storeIPv6Address(_ p: UnsafeMutableRawPointer, _ o: Int, _ a: IPv6Address) {
    store64(p, o, a.high)
    store64(p, o + 8, a.low)
}

/// The one's complement sum of an IPv4 address's two 16-bit words.
@inlinable @inline(__always)
func wordSum(_ a: IPv4Address) -> UInt64 {
    UInt64(a.rawValue >> 16) &+ UInt64(a.rawValue & 0xFFFF)
}

/// Writes a 20-byte IPv4 header (no options) and its checksum (RFC 791 §3.1).
@inlinable @inline(__always)
func writeIPv4Header(_ o: UnsafeMutableRawPointer, tos: UInt8, totalLength: Int, identification: UInt16,
                     flagsAndOffset: UInt16, ttl: UInt8, protocolNumber: UInt8,
                     source: IPv4Address, destination: IPv4Address) {
    let w0 = 0x4500_0000 | UInt32(tos) << 16 | UInt32(truncatingIfNeeded: totalLength) & 0xFFFF
    let w1 = UInt32(identification) << 16 | UInt32(flagsAndOffset)
    let w2 = UInt32(ttl) << 24 | UInt32(protocolNumber) << 16
    store32(o, 0, w0)
    store32(o, 4, w1)
    store32(o, 8, w2)
    store32(o, 12, source.rawValue)
    store32(o, 16, destination.rawValue)
    var acc = UInt64(w0 >> 16) &+ UInt64(w0 & 0xFFFF) &+ UInt64(w1 >> 16) &+ UInt64(w1 & 0xFFFF)
    acc &+= UInt64(w2 >> 16) &+ wordSum(source) &+ wordSum(destination)
    store16(o, IPv4Layout.checksum, Checksum.finish(acc))
}

/// Writes a 40-byte IPv6 header with a zero flow label (RFC 7915 §4.1 "Flow Label: 0").
@inlinable @inline(__always)
func writeIPv6Header(_ o: UnsafeMutableRawPointer, trafficClass: UInt8, payloadLength: Int, nextHeader: UInt8,
                     hopLimit: UInt8, source: IPv6Address, destination: IPv6Address) {
    store32(o, 0, 0x6000_0000 | UInt32(trafficClass) << 20)
    store16(o, 4, UInt16(truncatingIfNeeded: payloadLength))
    store8(o, 6, nextHeader)
    store8(o, 7, hopLimit)
    storeIPv6Address(o, 8, source)
    storeIPv6Address(o, 24, destination)
}

/// Writes an IPv6 Fragment header (RFC 8200 §4.5).
@inlinable @inline(__always)
func writeFragmentHeader(_ o: UnsafeMutableRawPointer, nextHeader: UInt8, offset: Int, more: Bool, identification: UInt32) {
    store8(o, 0, nextHeader)
    store8(o, 1, 0)
    store16(o, 2, UInt16(truncatingIfNeeded: offset) & IPv6ExtensionLayout.fragmentOffsetMask | (more ? 1 : 0))
    store32(o, 4, identification)
}

/// Whether the IPv4 header checksum verifies (RFC 1071).
@inlinable @inline(__always)
func ipv4HeaderChecksumValid(_ p: UnsafeRawPointer, headerLength: Int) -> Bool {
    if headerLength == IPv4Layout.minimumHeaderLength { return Checksum.isValidIPv4Header20(p) }
    return Checksum.fold(Checksum.sum(p, count: headerLength)) == 0xFFFF
}

/// RFC 1624 eqn. 3 for a whole group of fields: `checksum` loses the one's complement sum `oldSum` and
/// gains `newSum` (a pseudo-header swap, a type change, a rewritten port).
@inlinable @inline(__always)
func adjustChecksum(_ checksum: UInt16, oldSum: UInt64, newSum: UInt64) -> UInt16 {
    ~Checksum.fold(UInt64(~checksum) &+ UInt64(~Checksum.fold(oldSum)) &+ UInt64(Checksum.fold(newSum)))
}
