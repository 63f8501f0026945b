/// An owned IPv6 header (RFC 8200 §3): parses from a view and emits into a buffer.
public struct IPv6Header: Hashable, Sendable {
    public var trafficClass: UInt8 = 0
    /// The 20-bit flow label (RFC 6437).
    public var flowLabel: UInt32 = 0
    /// The next header field as on the wire (the first extension header, or the upper layer).
    public var nextHeader: UInt8
    public var hopLimit: UInt8 = 64
    public var source: IPv6Address
    public var destination: IPv6Address

    public init(nextHeader: UInt8, source: IPv6Address, destination: IPv6Address, hopLimit: UInt8 = 64,
                trafficClass: UInt8 = 0, flowLabel: UInt32 = 0) {
        self.nextHeader = nextHeader
        self.source = source
        self.destination = destination
        self.hopLimit = hopLimit
        self.trafficClass = trafficClass
        self.flowLabel = flowLabel & IPv6Layout.flowLabelMask
    }

    public init(_ v: some IPv6Readable) {
        trafficClass = v.trafficClass
        flowLabel = v.flowLabel
        nextHeader = v.nextHeader
        hopLimit = v.hopLimit
        source = v.source
        destination = v.destination
    }

    public var headerLength: Int { IPv6Layout.headerLength }

    /// Writes the 40-byte header with the given payload length (everything after the fixed header).
    /// Returns the header length.
    @discardableResult
    public func emit(into buffer: UnsafeMutableRawBufferPointer, payloadLength: Int) -> Int {
        let p = buffer.baseAddress!
        precondition(buffer.count >= IPv6Layout.headerLength)
        store32(p, IPv6Layout.versionClassFlow,
                6 << 28 | UInt32(trafficClass) << IPv6Layout.trafficClassShift | flowLabel & IPv6Layout.flowLabelMask)
        store16(p, IPv6Layout.payloadLength, UInt16(truncatingIfNeeded: payloadLength))
        store8(p, IPv6Layout.nextHeader, nextHeader)
        store8(p, IPv6Layout.hopLimit, hopLimit)
        store64(p, IPv6Layout.source, source.high)
        store64(p, IPv6Layout.source + 8, source.low)
        store64(p, IPv6Layout.destination, destination.high)
        store64(p, IPv6Layout.destination + 8, destination.low)
        return IPv6Layout.headerLength
    }
}

/// An owned IPv6 extension header (RFC 8200 §4), for building packets. Each emits a multiple of 8 bytes.
public enum IPv6ExtensionHeader: Hashable, Sendable {
    /// RFC 8200 §4.3: option TLVs, padded with Pad1/PadN.
    case hopByHop(options: [UInt8])
    /// RFC 8200 §4.6: option TLVs, padded with Pad1/PadN.
    case destinationOptions(options: [UInt8])
    /// RFC 8200 §4.4: routing type, segments left, and the type-specific data after the first 4 bytes
    /// (zero-padded).
    case routing(type: UInt8, segmentsLeft: UInt8, data: [UInt8])
    /// RFC 8200 §4.5: fragment offset in bytes (a multiple of 8), M flag, identification.
    case fragment(offset: Int, moreFragments: Bool, identification: UInt32)
    /// RFC 4302 §2: SPI, sequence number, integrity check value (zero-padded to a multiple of 8 bytes overall).
    case authentication(spi: UInt32, sequenceNumber: UInt32, icv: [UInt8])

    /// The value that announces this header in the previous next-header field.
    public var protocolNumber: UInt8 {
        switch self {
        case .hopByHop: IPProtocol.hopByHop
        case .destinationOptions: IPProtocol.ipv6DestinationOptions
        case .routing: IPProtocol.ipv6Route
        case .fragment: IPProtocol.ipv6Fragment
        case .authentication: IPProtocol.ah
        }
    }

    /// The emitted length in bytes.
    public var length: Int {
        func round8(_ n: Int) -> Int { max(8, (n + 7) / 8 * 8) }
        switch self {
        case .hopByHop(let o), .destinationOptions(let o): return round8(2 + o.count)
        case .routing(_, _, let d): return round8(4 + d.count)
        case .fragment: return IPv6ExtensionLayout.fragmentHeaderLength
        case .authentication(_, _, let icv): return round8(12 + icv.count)
        }
    }

    /// Writes the header with `nextHeader` into `buffer` and returns its length.
    @discardableResult
    public func emit(into buffer: UnsafeMutableRawBufferPointer, nextHeader: UInt8) -> Int {
        let p = buffer.baseAddress!
        let n = length
        precondition(buffer.count >= n)
        for i in 0..<n { store8(p, i, 0) }
        store8(p, IPv6ExtensionLayout.nextHeader, nextHeader)
        switch self {
        case .hopByHop(let o), .destinationOptions(let o):
            store8(p, IPv6ExtensionLayout.headerExtensionLength, UInt8(n / 8 - 1))
            for (i, b) in o.enumerated() { store8(p, 2 + i, b) }
            // RFC 8200 §4.2: Pad1 for one byte of padding, PadN for more.
            let pad = n - 2 - o.count
            if pad >= 2 {
                store8(p, 2 + o.count, 1)
                store8(p, 3 + o.count, UInt8(pad - 2))
            }
        case .routing(let type, let left, let d):
            store8(p, IPv6ExtensionLayout.headerExtensionLength, UInt8(n / 8 - 1))
            store8(p, IPv6ExtensionLayout.routingType, type)
            store8(p, IPv6ExtensionLayout.segmentsLeft, left)
            for (i, b) in d.enumerated() { store8(p, 4 + i, b) }
        case .fragment(let offset, let more, let id):
            var fo = UInt16(truncatingIfNeeded: offset) & IPv6ExtensionLayout.fragmentOffsetMask
            if more { fo |= IPv6ExtensionLayout.fragmentMoreFlag }
            store16(p, IPv6ExtensionLayout.fragmentOffsetFlags, fo)
            store32(p, IPv6ExtensionLayout.fragmentIdentification, id)
        case .authentication(let spi, let seq, let icv):
            store8(p, IPv6ExtensionLayout.headerExtensionLength, UInt8(n / 4 - 2))
            store32(p, IPv6ExtensionLayout.ahSPI, spi)
            store32(p, IPv6ExtensionLayout.ahSequenceNumber, seq)
            for (i, b) in icv.enumerated() { store8(p, 12 + i, b) }
        }
        return n
    }
}

/// An owned ICMPv6 header: type, code and the four "rest of header" bytes (RFC 4443 §2.1).
public struct ICMPv6Header: Hashable, Sendable {
    public var type: UInt8
    public var code: UInt8
    public var restOfHeader: UInt32

    public init(type: UInt8, code: UInt8, restOfHeader: UInt32 = 0) {
        self.type = type
        self.code = code
        self.restOfHeader = restOfHeader
    }
    /// An echo request or reply with identifier and sequence number (RFC 4443 §4).
    public init(type: UInt8, identifier: UInt16, sequenceNumber: UInt16) {
        self.init(type: type, code: 0, restOfHeader: UInt32(identifier) << 16 | UInt32(sequenceNumber))
    }
    public init(_ v: some ICMPv6Readable) {
        type = v.type
        code = v.code
        restOfHeader = v.restOfHeader
    }
    public var identifier: UInt16 { UInt16(restOfHeader >> 16) }
    public var sequenceNumber: UInt16 { UInt16(restOfHeader & 0xFFFF) }
    /// Packet too big: the MTU; parameter problem: the pointer.
    public var mtu: UInt32 { restOfHeader }

    /// Writes the header with a zero checksum.
    @discardableResult
    public func emit(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let p = buffer.baseAddress!
        precondition(buffer.count >= ICMPv6Layout.headerLength)
        store8(p, ICMPv6Layout.type, type)
        store8(p, ICMPv6Layout.code, code)
        store16(p, ICMPv6Layout.checksum, 0)
        store32(p, ICMPv6Layout.identifier, restOfHeader)
        return ICMPv6Layout.headerLength
    }
}
