/// Field offsets of the fixed IPv6 header (RFC 8200 §3), in one place.
public enum IPv6Layout {
    /// Version (4 bits), traffic class (8 bits), flow label (20 bits).
    public static let versionClassFlow = 0
    public static let payloadLength = 4
    public static let nextHeader = 6
    public static let hopLimit = 7
    public static let source = 8
    public static let destination = 24
    /// The fixed header length, derived from the last field.
    public static let headerLength = destination + 16
    public static let flowLabelMask: UInt32 = 0x000F_FFFF
    public static let trafficClassShift: UInt32 = 20
    /// The most extension headers ``IPv6Readable/walkExtensionHeaders()`` follows before refusing the chain.
    public static let maximumExtensionHeaders = 16
}

/// Field offsets shared by the extension headers (RFC 8200 §4), in one place.
public enum IPv6ExtensionLayout {
    /// Every extension header starts with the next header value.
    public static let nextHeader = 0
    /// Hop-by-hop, routing, destination options: length in 8-byte units, not counting the first 8.
    /// AH (RFC 4302 §2.2): length in 4-byte units, minus 2.
    public static let headerExtensionLength = 1
    /// Routing header (RFC 8200 §4.4).
    public static let routingType = 2
    public static let segmentsLeft = 3
    /// Fragment header (RFC 8200 §4.5): 13-bit offset in 8-byte units, 2 reserved bits, M flag.
    public static let fragmentOffsetFlags = 2
    public static let fragmentIdentification = 4
    public static let fragmentHeaderLength = fragmentIdentification + 4
    public static let fragmentOffsetMask: UInt16 = 0xFFF8
    public static let fragmentMoreFlag: UInt16 = 0x0001
    /// Authentication header (RFC 4302 §2): SPI and sequence number.
    public static let ahSPI = 4
    public static let ahSequenceNumber = 8
    /// The smallest header of each length-prefixed kind.
    public static let minimumLength = 8
}

/// What ``IPv6Readable/walkExtensionHeaders()`` found: where the upper layer starts and what the
/// fragment and routing headers say. Plain value, no allocation.
public struct IPv6ExtensionChain: Hashable, Sendable {
    /// The protocol of the upper layer (6, 17, 58, …), or 59 (no next header), or 50 (ESP, not walked),
    /// or, for a non-first fragment, the fragment header's next header value.
    public var upperLayerProtocol: UInt8
    /// The byte offset of the upper-layer header from the start of the IPv6 header.
    public var upperLayerOffset: Int
    /// How many extension headers were passed over.
    public var extensionHeaderCount: Int
    /// The byte offset of the fragment header, if there is one.
    public var fragmentHeaderOffset: Int?
    /// Fragment offset in bytes (a multiple of 8); zero without a fragment header.
    public var fragmentOffset: Int
    /// The fragment header's M flag.
    public var moreFragments: Bool
    /// The fragment header's identification; zero without a fragment header.
    public var fragmentIdentification: UInt32
    /// The byte offset of the routing header, if there is one.
    public var routingHeaderOffset: Int?
    /// The routing header's segments left, if there is one.
    public var segmentsLeft: UInt8?

    @inlinable
    public init(upperLayerProtocol: UInt8, upperLayerOffset: Int, extensionHeaderCount: Int = 0,
                fragmentHeaderOffset: Int? = nil, fragmentOffset: Int = 0, moreFragments: Bool = false,
                fragmentIdentification: UInt32 = 0, routingHeaderOffset: Int? = nil, segmentsLeft: UInt8? = nil) {
        self.upperLayerProtocol = upperLayerProtocol
        self.upperLayerOffset = upperLayerOffset
        self.extensionHeaderCount = extensionHeaderCount
        self.fragmentHeaderOffset = fragmentHeaderOffset
        self.fragmentOffset = fragmentOffset
        self.moreFragments = moreFragments
        self.fragmentIdentification = fragmentIdentification
        self.routingHeaderOffset = routingHeaderOffset
        self.segmentsLeft = segmentsLeft
    }

    /// Whether a fragment header is present (any fragment, including an atomic one, RFC 6946).
    @inlinable public var hasFragmentHeader: Bool { fragmentHeaderOffset != nil }
    /// Whether this is a fragment of a larger packet (offset non-zero or M set; RFC 6946 atomic fragments are not).
    @inlinable public var isFragment: Bool { fragmentHeaderOffset != nil && (fragmentOffset != 0 || moreFragments) }
    /// Whether this is the second or a later fragment (no upper-layer header present).
    @inlinable public var isNonFirstFragment: Bool { fragmentHeaderOffset != nil && fragmentOffset != 0 }
}

/// Read access to an IPv6 packet; shared by ``IPv6View`` and ``MutableIPv6View``.
public protocol IPv6Readable {
    /// The first byte of the header.
    var pointer: UnsafeRawPointer { get }
    /// The packet's length: 40 plus the payload-length field once validated.
    var count: Int { get }
}

extension IPv6Readable {
    @inlinable public var version: UInt8 { load8(pointer, IPv6Layout.versionClassFlow) >> 4 }
    /// RFC 8200 §7: the traffic class (DSCP and ECN).
    @inlinable public var trafficClass: UInt8 {
        UInt8(truncatingIfNeeded: load32(pointer, IPv6Layout.versionClassFlow) >> IPv6Layout.trafficClassShift)
    }
    @inlinable public var dscp: UInt8 { trafficClass >> 2 }
    @inlinable public var ecn: UInt8 { trafficClass & 3 }
    /// RFC 6437: the 20-bit flow label.
    @inlinable public var flowLabel: UInt32 { load32(pointer, IPv6Layout.versionClassFlow) & IPv6Layout.flowLabelMask }
    @inlinable public var payloadLengthField: Int { Int(load16(pointer, IPv6Layout.payloadLength)) }
    @inlinable public var nextHeader: UInt8 { load8(pointer, IPv6Layout.nextHeader) }
    @inlinable public var hopLimit: UInt8 { load8(pointer, IPv6Layout.hopLimit) }
    @inlinable public var source: IPv6Address {
        IPv6Address(high: load64(pointer, IPv6Layout.source), low: load64(pointer, IPv6Layout.source + 8))
    }
    @inlinable public var destination: IPv6Address {
        IPv6Address(high: load64(pointer, IPv6Layout.destination), low: load64(pointer, IPv6Layout.destination + 8))
    }
    @inlinable public var headerLength: Int { IPv6Layout.headerLength }
    /// The bytes after the fixed header (extension headers and upper layer).
    @inlinable public var payloadOffset: Int { IPv6Layout.headerLength }
    @inlinable public var payloadLength: Int { count - IPv6Layout.headerLength }
    @inlinable public var payloadPointer: UnsafeRawPointer { pointer + IPv6Layout.headerLength }

    /// Walks the extension headers (RFC 8200 §4.1 order) to the upper layer. Follows hop-by-hop (0, first
    /// only), routing (43), fragment (44), destination options (60) and AH (51, RFC 4302 §2.2), at most
    /// ``IPv6Layout/maximumExtensionHeaders``. Stops at any other value, at 59 (no next header), and after a
    /// fragment header with a non-zero offset (what follows is data). Throws `.badExtensionChain` for a
    /// header that runs past the packet, a hop-by-hop header that is not first, or too many headers.
    @inlinable
    public func walkExtensionHeaders() throws(WireError) -> IPv6ExtensionChain {
        var chain = IPv6ExtensionChain(upperLayerProtocol: nextHeader, upperLayerOffset: IPv6Layout.headerLength)
        var next = nextHeader
        var offset = IPv6Layout.headerLength
        let end = count
        while true {
            let length: Int
            switch next {
            case IPProtocol.hopByHop, IPProtocol.ipv6Route, IPProtocol.ipv6DestinationOptions:
                if next == IPProtocol.hopByHop && offset != IPv6Layout.headerLength { throw .badExtensionChain }
                guard offset + IPv6ExtensionLayout.minimumLength <= end else { throw .badExtensionChain }
                length = (Int(load8(pointer, offset + IPv6ExtensionLayout.headerExtensionLength)) + 1) << 3
                if next == IPProtocol.ipv6Route {
                    chain.routingHeaderOffset = offset
                    chain.segmentsLeft = load8(pointer, offset + IPv6ExtensionLayout.segmentsLeft)
                }
            case IPProtocol.ah:
                guard offset + IPv6ExtensionLayout.minimumLength <= end else { throw .badExtensionChain }
                length = (Int(load8(pointer, offset + IPv6ExtensionLayout.headerExtensionLength)) + 2) << 2
            case IPProtocol.ipv6Fragment:
                length = IPv6ExtensionLayout.fragmentHeaderLength
                guard offset + length <= end else { throw .badExtensionChain }
                let fo = load16(pointer, offset + IPv6ExtensionLayout.fragmentOffsetFlags)
                chain.fragmentHeaderOffset = offset
                chain.fragmentOffset = Int(fo & IPv6ExtensionLayout.fragmentOffsetMask)
                chain.moreFragments = fo & IPv6ExtensionLayout.fragmentMoreFlag != 0
                chain.fragmentIdentification = load32(pointer, offset + IPv6ExtensionLayout.fragmentIdentification)
            default:
                chain.upperLayerProtocol = next
                chain.upperLayerOffset = offset
                return chain
            }
            guard offset + length <= end else { throw .badExtensionChain }
            guard chain.extensionHeaderCount < IPv6Layout.maximumExtensionHeaders else { throw .badExtensionChain }
            chain.extensionHeaderCount += 1
            let following = load8(pointer, offset + IPv6ExtensionLayout.nextHeader)
            offset += length
            if next == IPProtocol.ipv6Fragment && chain.fragmentOffset != 0 {
                chain.upperLayerProtocol = following
                chain.upperLayerOffset = offset
                return chain
            }
            next = following
        }
    }
}

@inlinable
func validateIPv6(_ p: UnsafeRawPointer, _ available: Int) throws(WireError) -> Int {
    guard available >= IPv6Layout.headerLength else { throw .truncated }
    guard load8(p, IPv6Layout.versionClassFlow) >> 4 == 6 else { throw .badVersion }
    let total = IPv6Layout.headerLength + Int(load16(p, IPv6Layout.payloadLength))
    guard total <= available else { throw .badLength }
    return total
}

/// A read-only view of an IPv6 packet. `init(validating:)` checks the version and that the payload-length
/// field fits the buffer (jumbograms, RFC 2675, are not supported: a zero payload length means no payload);
/// afterwards no accessor reads outside the packet. Extension headers are checked by
/// ``IPv6Readable/walkExtensionHeaders()``.
public struct IPv6View: IPv6Readable {
    public let pointer: UnsafeRawPointer
    public let count: Int

    @inlinable
    public init(validating bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard let base = bytes.baseAddress else { throw .truncated }
        count = try validateIPv6(base, bytes.count)
        pointer = base
    }

    /// Over `count` bytes at `pointer`, which the caller has validated.
    @inlinable public init(unchecked pointer: UnsafeRawPointer, count: Int) {
        self.pointer = pointer
        self.count = count
    }
}

/// A writable view of an IPv6 packet. IPv6 has no header checksum (RFC 8200 §3): the `rewrite…` methods
/// report address changes through a ``ChecksumDelta`` for the upper-layer checksum's pseudo-header.
public struct MutableIPv6View: IPv6Readable {
    public let mutablePointer: UnsafeMutableRawPointer
    public let count: Int
    @inlinable public var pointer: UnsafeRawPointer { UnsafeRawPointer(mutablePointer) }

    @inlinable
    public init(validating bytes: UnsafeMutableRawBufferPointer) throws(WireError) {
        guard let base = bytes.baseAddress else { throw .truncated }
        count = try validateIPv6(base, bytes.count)
        mutablePointer = base
    }

    @inlinable public init(unchecked pointer: UnsafeMutableRawPointer, count: Int) {
        self.mutablePointer = pointer
        self.count = count
    }

    @inlinable public var readOnly: IPv6View { IPv6View(unchecked: pointer, count: count) }

    /// Replaces the source address and adds the change to `delta` (RFC 8200 §8.1 pseudo-header).
    @inlinable @inline(__always)
    public func rewriteSource(_ new: IPv6Address, delta: inout ChecksumDelta) {
        delta.replace(source, with: new)
        setSource(new)
    }

    /// As ``rewriteSource(_:delta:)`` for the destination address.
    @inlinable @inline(__always)
    public func rewriteDestination(_ new: IPv6Address, delta: inout ChecksumDelta) {
        delta.replace(destination, with: new)
        setDestination(new)
    }

    @inlinable public func setSource(_ a: IPv6Address) {
        store64(mutablePointer, IPv6Layout.source, a.high)
        store64(mutablePointer, IPv6Layout.source + 8, a.low)
    }
    @inlinable public func setDestination(_ a: IPv6Address) {
        store64(mutablePointer, IPv6Layout.destination, a.high)
        store64(mutablePointer, IPv6Layout.destination + 8, a.low)
    }
    @inlinable public func setHopLimit(_ v: UInt8) { store8(mutablePointer, IPv6Layout.hopLimit, v) }
    @inlinable public func setNextHeader(_ v: UInt8) { store8(mutablePointer, IPv6Layout.nextHeader, v) }
    /// Sets the payload-length field (the view's `count` does not change).
    @inlinable public func setPayloadLength(_ v: Int) {
        store16(mutablePointer, IPv6Layout.payloadLength, UInt16(truncatingIfNeeded: v))
    }
    /// Sets the traffic class, keeping the version and flow label.
    @inlinable public func setTrafficClass(_ v: UInt8) {
        let w = load32(pointer, IPv6Layout.versionClassFlow)
        let cleared = w & ~(UInt32(0xFF) << IPv6Layout.trafficClassShift)
        store32(mutablePointer, IPv6Layout.versionClassFlow, cleared | UInt32(v) << IPv6Layout.trafficClassShift)
    }
    /// Sets the flow label (low 20 bits of `v`), keeping the version and traffic class.
    @inlinable public func setFlowLabel(_ v: UInt32) {
        let w = load32(pointer, IPv6Layout.versionClassFlow)
        store32(mutablePointer, IPv6Layout.versionClassFlow,
                w & ~IPv6Layout.flowLabelMask | v & IPv6Layout.flowLabelMask)
    }

    @inlinable public var mutablePayloadPointer: UnsafeMutableRawPointer { mutablePointer + IPv6Layout.headerLength }
}

extension ChecksumDelta {
    /// RFC 1624 eqn. 3 for a 128-bit field (an IPv6 address): the sum of the eight complemented old groups
    /// is `8 × 0xFFFF − old.wordSum`.
    @inlinable @inline(__always)
    public mutating func replace(_ old: IPv6Address, with new: IPv6Address) {
        acc &+= (8 * 0xFFFF - old.wordSum) &+ new.wordSum
    }
}
