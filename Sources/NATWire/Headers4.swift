/// An owned IPv4 header: parses from a view and emits into a buffer.
public struct IPv4Header: Hashable, Sendable {
    public var tos: UInt8 = 0
    public var identification: UInt16 = 0
    public var dontFragment: Bool = false
    public var moreFragments: Bool = false
    /// Fragment offset in bytes (a multiple of 8).
    public var fragmentOffset: Int = 0
    public var ttl: UInt8 = 64
    public var protocolNumber: UInt8
    public var source: IPv4Address
    public var destination: IPv4Address
    /// Raw option bytes, padded to a multiple of four when emitted.
    public var options: [UInt8] = []

    public init(protocolNumber: UInt8, source: IPv4Address, destination: IPv4Address, ttl: UInt8 = 64,
                identification: UInt16 = 0, dontFragment: Bool = false, tos: UInt8 = 0) {
        self.protocolNumber = protocolNumber
        self.source = source
        self.destination = destination
        self.ttl = ttl
        self.identification = identification
        self.dontFragment = dontFragment
        self.tos = tos
    }

    public init(_ v: some IPv4Readable) {
        tos = v.tos
        identification = v.identification
        dontFragment = v.dontFragment
        moreFragments = v.moreFragments
        fragmentOffset = v.fragmentOffset
        ttl = v.ttl
        protocolNumber = v.protocolNumber
        source = v.source
        destination = v.destination
        options = (IPv4Layout.minimumHeaderLength..<v.headerLength).map { v.pointer.load(fromByteOffset: $0, as: UInt8.self) }
    }

    public var headerLength: Int { IPv4Layout.minimumHeaderLength + (options.count + 3) / 4 * 4 }

    /// Writes the header with the given total length into `buffer` and computes its checksum.
    /// Returns the header length.
    @discardableResult
    public func emit(into buffer: UnsafeMutableRawBufferPointer, totalLength: Int) -> Int {
        let p = buffer.baseAddress!
        let hl = headerLength
        precondition(buffer.count >= hl)
        store8(p, IPv4Layout.versionIHL, 0x40 | UInt8(hl / 4))
        store8(p, IPv4Layout.tos, tos)
        store16(p, IPv4Layout.totalLength, UInt16(truncatingIfNeeded: totalLength))
        store16(p, IPv4Layout.identification, identification)
        var fo = UInt16(truncatingIfNeeded: fragmentOffset >> 3) & IPv4Layout.offsetMask
        if dontFragment { fo |= IPv4Layout.flagDF }
        if moreFragments { fo |= IPv4Layout.flagMF }
        store16(p, IPv4Layout.flagsFragmentOffset, fo)
        store8(p, IPv4Layout.ttl, ttl)
        store8(p, IPv4Layout.protocolNumber, protocolNumber)
        store16(p, IPv4Layout.checksum, 0)
        store32(p, IPv4Layout.source, source.rawValue)
        store32(p, IPv4Layout.destination, destination.rawValue)
        for i in IPv4Layout.minimumHeaderLength..<hl {
            let j = i - IPv4Layout.minimumHeaderLength
            store8(p, i, j < options.count ? options[j] : 0)
        }
        store16(p, IPv4Layout.checksum, Checksum.finish(Checksum.sum(p, count: hl)))
        return hl
    }
}

/// An owned TCP header.
public struct TCPHeader: Hashable, Sendable {
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var sequenceNumber: UInt32 = 0
    public var acknowledgmentNumber: UInt32 = 0
    public var flags: TCPFlags
    public var window: UInt16 = 65535
    public var urgentPointer: UInt16 = 0
    /// Raw option bytes, padded with End of Option List to a multiple of four when emitted.
    public var options: [UInt8] = []

    public init(sourcePort: UInt16, destinationPort: UInt16, flags: TCPFlags, sequenceNumber: UInt32 = 0,
                acknowledgmentNumber: UInt32 = 0, window: UInt16 = 65535, options: [UInt8] = []) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.flags = flags
        self.sequenceNumber = sequenceNumber
        self.acknowledgmentNumber = acknowledgmentNumber
        self.window = window
        self.options = options
    }

    public init(_ v: some TCPReadable) {
        sourcePort = v.sourcePort
        destinationPort = v.destinationPort
        sequenceNumber = v.sequenceNumber
        acknowledgmentNumber = v.acknowledgmentNumber
        flags = v.flags
        window = v.window
        urgentPointer = v.urgentPointer
        options = (TCPLayout.minimumHeaderLength..<v.headerLength).map { v.pointer.load(fromByteOffset: $0, as: UInt8.self) }
    }

    public var headerLength: Int { TCPLayout.minimumHeaderLength + (options.count + 3) / 4 * 4 }

    /// Writes the header (checksum zero) and returns its length.
    @discardableResult
    public func emit(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let p = buffer.baseAddress!
        let hl = headerLength
        precondition(buffer.count >= hl)
        store16(p, TCPLayout.sourcePort, sourcePort)
        store16(p, TCPLayout.destinationPort, destinationPort)
        store32(p, TCPLayout.sequenceNumber, sequenceNumber)
        store32(p, TCPLayout.acknowledgmentNumber, acknowledgmentNumber)
        store8(p, TCPLayout.dataOffset, UInt8(hl / 4) << 4)
        store8(p, TCPLayout.flags, flags.rawValue)
        store16(p, TCPLayout.window, window)
        store16(p, TCPLayout.checksum, 0)
        store16(p, TCPLayout.urgentPointer, urgentPointer)
        for i in TCPLayout.minimumHeaderLength..<hl {
            let j = i - TCPLayout.minimumHeaderLength
            store8(p, i, j < options.count ? options[j] : 0)
        }
        return hl
    }
}

/// An owned UDP header (the length is computed when a packet is built).
public struct UDPHeader: Hashable, Sendable {
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public init(sourcePort: UInt16, destinationPort: UInt16) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
    }
    public init(_ v: some UDPReadable) {
        sourcePort = v.sourcePort
        destinationPort = v.destinationPort
    }

    /// Writes the header with `length` and a zero checksum.
    @discardableResult
    public func emit(into buffer: UnsafeMutableRawBufferPointer, length: Int) -> Int {
        let p = buffer.baseAddress!
        precondition(buffer.count >= UDPLayout.headerLength)
        store16(p, UDPLayout.sourcePort, sourcePort)
        store16(p, UDPLayout.destinationPort, destinationPort)
        store16(p, UDPLayout.length, UInt16(truncatingIfNeeded: length))
        store16(p, UDPLayout.checksum, 0)
        return UDPLayout.headerLength
    }
}

/// An owned ICMPv4 header: type, code and the four "rest of header" bytes.
public struct ICMPv4Header: Hashable, Sendable {
    public var type: UInt8
    public var code: UInt8
    public var restOfHeader: UInt32
    public init(type: UInt8, code: UInt8, restOfHeader: UInt32 = 0) {
        self.type = type
        self.code = code
        self.restOfHeader = restOfHeader
    }
    /// An echo, timestamp or information query with identifier and sequence number.
    public init(type: UInt8, identifier: UInt16, sequenceNumber: UInt16) {
        self.init(type: type, code: 0, restOfHeader: UInt32(identifier) << 16 | UInt32(sequenceNumber))
    }
    public init(_ v: some ICMPv4Readable) {
        type = v.type
        code = v.code
        restOfHeader = v.restOfHeader
    }
    public var identifier: UInt16 { UInt16(restOfHeader >> 16) }
    public var sequenceNumber: UInt16 { UInt16(restOfHeader & 0xFFFF) }

    /// Writes the header with a zero checksum.
    @discardableResult
    public func emit(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let p = buffer.baseAddress!
        precondition(buffer.count >= ICMPv4Layout.headerLength)
        store8(p, ICMPv4Layout.type, type)
        store8(p, ICMPv4Layout.code, code)
        store16(p, ICMPv4Layout.checksum, 0)
        store32(p, ICMPv4Layout.identifier, restOfHeader)
        return ICMPv4Layout.headerLength
    }
}
