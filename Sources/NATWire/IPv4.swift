/// Field offsets of the IPv4 header (RFC 791 §3.1), in one place.
public enum IPv4Layout {
    public static let versionIHL = 0
    public static let tos = 1
    public static let totalLength = 2
    public static let identification = 4
    public static let flagsFragmentOffset = 6
    public static let ttl = 8
    public static let protocolNumber = 9
    public static let checksum = 10
    public static let source = 12
    public static let destination = 16
    /// The header length without options, derived from the last field.
    public static let minimumHeaderLength = destination + 4
    public static let maximumHeaderLength = 60
    public static let flagDF: UInt16 = 0x4000
    public static let flagMF: UInt16 = 0x2000
    public static let offsetMask: UInt16 = 0x1FFF
}

/// Read access to an IPv4 header; shared by ``IPv4View`` and ``MutableIPv4View``.
public protocol IPv4Readable {
    /// The first byte of the header.
    var pointer: UnsafeRawPointer { get }
    /// The datagram's length: the total-length field once validated.
    var count: Int { get }
}

extension IPv4Readable {
    @inlinable public var version: UInt8 { load8(pointer, IPv4Layout.versionIHL) >> 4 }
    /// Header length in bytes (IHL × 4).
    @inlinable public var headerLength: Int { Int(load8(pointer, IPv4Layout.versionIHL) & 0x0F) << 2 }
    @inlinable public var tos: UInt8 { load8(pointer, IPv4Layout.tos) }
    @inlinable public var dscp: UInt8 { tos >> 2 }
    @inlinable public var ecn: UInt8 { tos & 3 }
    @inlinable public var totalLength: Int { Int(load16(pointer, IPv4Layout.totalLength)) }
    @inlinable public var identification: UInt16 { load16(pointer, IPv4Layout.identification) }
    @inlinable public var flagsAndOffset: UInt16 { load16(pointer, IPv4Layout.flagsFragmentOffset) }
    @inlinable public var dontFragment: Bool { flagsAndOffset & IPv4Layout.flagDF != 0 }
    @inlinable public var moreFragments: Bool { flagsAndOffset & IPv4Layout.flagMF != 0 }
    /// Fragment offset in bytes.
    @inlinable public var fragmentOffset: Int { Int(flagsAndOffset & IPv4Layout.offsetMask) << 3 }
    /// Whether this is any fragment of a fragmented datagram (MF set or offset non-zero).
    @inlinable public var isFragment: Bool { flagsAndOffset & (IPv4Layout.flagMF | IPv4Layout.offsetMask) != 0 }
    /// Whether this is the second or a later fragment (no transport header present).
    @inlinable public var isNonFirstFragment: Bool { flagsAndOffset & IPv4Layout.offsetMask != 0 }
    @inlinable public var ttl: UInt8 { load8(pointer, IPv4Layout.ttl) }
    @inlinable public var protocolNumber: UInt8 { load8(pointer, IPv4Layout.protocolNumber) }
    @inlinable public var checksum: UInt16 { load16(pointer, IPv4Layout.checksum) }
    @inlinable public var source: IPv4Address { IPv4Address(load32(pointer, IPv4Layout.source)) }
    @inlinable public var destination: IPv4Address { IPv4Address(load32(pointer, IPv4Layout.destination)) }
    @inlinable public var hasOptions: Bool { headerLength > IPv4Layout.minimumHeaderLength }
    @inlinable public var payloadOffset: Int { headerLength }
    @inlinable public var payloadLength: Int { count - headerLength }
    @inlinable public var payloadPointer: UnsafeRawPointer { pointer + headerLength }

    /// Whether the header checksum verifies (RFC 1071: the sum over the header is 0xFFFF).
    @inlinable public var isChecksumValid: Bool {
        if headerLength == IPv4Layout.minimumHeaderLength {
            // The common 20-byte header, unrolled: five 32-bit words.
            var acc: UInt64 = 0
            for i in stride(from: 0, to: 20, by: 4) {
                let w = load32(pointer, i)
                acc &+= UInt64(w >> 16) &+ UInt64(w & 0xFFFF)
            }
            return Checksum.fold(acc) == 0xFFFF
        }
        return Checksum.fold(Checksum.sum(pointer, count: headerLength)) == 0xFFFF
    }

    /// The header options, for inspection (not on any fast path).
    public var options: [IPv4Option] {
        var out: [IPv4Option] = []
        var i = IPv4Layout.minimumHeaderLength
        let end = headerLength
        while i < end {
            let type = load8(pointer, i)
            if type == 0 { break }
            if type == 1 { out.append(IPv4Option(type: 1, data: [])); i += 1; continue }
            guard i + 1 < end else { break }
            let len = Int(load8(pointer, i + 1))
            guard len >= 2, i + len <= end else { break }
            out.append(IPv4Option(type: type, data: (2..<len).map { load8(pointer, i + $0) }))
            i += len
        }
        return out
    }
}

/// An IPv4 option as found in a header (RFC 791 §3.1).
public struct IPv4Option: Hashable, Sendable {
    public var type: UInt8
    public var data: [UInt8]
    public init(type: UInt8, data: [UInt8]) { self.type = type; self.data = data }
    public static let endOfList: UInt8 = 0
    public static let noOperation: UInt8 = 1
    public static let looseSourceRoute: UInt8 = 131
    public static let strictSourceRoute: UInt8 = 137
    public static let recordRoute: UInt8 = 7
}

@inlinable
func validateIPv4(_ p: UnsafeRawPointer, _ available: Int) throws(WireError) -> Int {
    guard available >= IPv4Layout.minimumHeaderLength else { throw .truncated }
    let vihl = load8(p, IPv4Layout.versionIHL)
    guard vihl >> 4 == 4 else { throw .badVersion }
    let ihl = Int(vihl & 0x0F) << 2
    guard ihl >= IPv4Layout.minimumHeaderLength, ihl <= available else { throw .badHeaderLength }
    let total = Int(load16(p, IPv4Layout.totalLength))
    guard total >= ihl, total <= available else { throw .badLength }
    return total
}

/// A read-only view of an IPv4 datagram. `init(validating:)` checks every length once; afterwards no
/// accessor reads outside the datagram.
public struct IPv4View: IPv4Readable {
    public let pointer: UnsafeRawPointer
    public let count: Int

    @inlinable
    public init(validating bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard let base = bytes.baseAddress else { throw .truncated }
        count = try validateIPv4(base, bytes.count)
        pointer = base
    }

    /// Over `count` bytes at `pointer`, which the caller has validated.
    @inlinable public init(unchecked pointer: UnsafeRawPointer, count: Int) {
        self.pointer = pointer
        self.count = count
    }
}

/// A writable view of an IPv4 datagram. The `rewrite…` methods keep the header checksum right with
/// RFC 1624 incremental updates and report the change through a ``ChecksumDelta`` for the transport checksum.
public struct MutableIPv4View: IPv4Readable {
    public let mutablePointer: UnsafeMutableRawPointer
    public let count: Int
    @inlinable public var pointer: UnsafeRawPointer { UnsafeRawPointer(mutablePointer) }

    @inlinable
    public init(validating bytes: UnsafeMutableRawBufferPointer) throws(WireError) {
        guard let base = bytes.baseAddress else { throw .truncated }
        count = try validateIPv4(base, bytes.count)
        mutablePointer = base
    }

    @inlinable public init(unchecked pointer: UnsafeMutableRawPointer, count: Int) {
        self.mutablePointer = pointer
        self.count = count
    }

    @inlinable public var readOnly: IPv4View { IPv4View(unchecked: pointer, count: count) }

    /// Replaces the source address, updates the header checksum, and adds the change to `delta`
    /// (the pseudo-header part of a TCP/UDP checksum).
    @inlinable @inline(__always)
    public func rewriteSource(_ new: IPv4Address, delta: inout ChecksumDelta) {
        rewriteAddress(at: IPv4Layout.source, new, delta: &delta)
    }

    /// As ``rewriteSource(_:delta:)`` for the destination address.
    @inlinable @inline(__always)
    public func rewriteDestination(_ new: IPv4Address, delta: inout ChecksumDelta) {
        rewriteAddress(at: IPv4Layout.destination, new, delta: &delta)
    }

    @inlinable @inline(__always)
    func rewriteAddress(at offset: Int, _ new: IPv4Address, delta: inout ChecksumDelta) {
        let old = load32(pointer, offset)
        store32(mutablePointer, offset, new.rawValue)
        var d = ChecksumDelta()
        d.replace(old, with: new.rawValue)
        store16(mutablePointer, IPv4Layout.checksum, d.apply(to: checksum))
        delta.add(d)
    }

    /// Sets the TTL and updates the header checksum incrementally.
    @inlinable public func rewriteTTL(_ new: UInt8) {
        let oldWord = load16(pointer, IPv4Layout.ttl)
        store8(mutablePointer, IPv4Layout.ttl, new)
        let newWord = load16(pointer, IPv4Layout.ttl)
        store16(mutablePointer, IPv4Layout.checksum, Checksum.update(checksum, old: oldWord, new: newWord))
    }

    @inlinable public func setSource(_ a: IPv4Address) { store32(mutablePointer, IPv4Layout.source, a.rawValue) }
    @inlinable public func setDestination(_ a: IPv4Address) { store32(mutablePointer, IPv4Layout.destination, a.rawValue) }
    @inlinable public func setTotalLength(_ v: Int) { store16(mutablePointer, IPv4Layout.totalLength, UInt16(truncatingIfNeeded: v)) }
    @inlinable public func setIdentification(_ v: UInt16) { store16(mutablePointer, IPv4Layout.identification, v) }
    @inlinable public func setFlagsAndOffset(_ v: UInt16) { store16(mutablePointer, IPv4Layout.flagsFragmentOffset, v) }
    @inlinable public func setTTL(_ v: UInt8) { store8(mutablePointer, IPv4Layout.ttl, v) }
    @inlinable public func setProtocol(_ v: UInt8) { store8(mutablePointer, IPv4Layout.protocolNumber, v) }
    @inlinable public func setTOS(_ v: UInt8) { store8(mutablePointer, IPv4Layout.tos, v) }
    @inlinable public func setChecksum(_ v: UInt16) { store16(mutablePointer, IPv4Layout.checksum, v) }

    /// Recomputes the header checksum from scratch (for packets the NAT builds itself).
    @inlinable public func updateChecksum() {
        store16(mutablePointer, IPv4Layout.checksum, 0)
        store16(mutablePointer, IPv4Layout.checksum, Checksum.finish(Checksum.sum(pointer, count: headerLength)))
    }

    @inlinable public var mutablePayloadPointer: UnsafeMutableRawPointer { mutablePointer + headerLength }
}
