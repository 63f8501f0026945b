/// Field offsets of the ICMPv4 header (RFC 792).
public enum ICMPv4Layout {
    public static let type = 0
    public static let code = 1
    public static let checksum = 2
    /// Echo, timestamp and information messages: identifier and sequence number.
    public static let identifier = 4
    public static let sequenceNumber = 6
    /// Parameter problem: the octet pointer.
    public static let pointer = 4
    /// Destination unreachable, code 4 (RFC 1191): next-hop MTU.
    public static let nextHopMTU = 6
    /// Redirect: gateway address.
    public static let gateway = 4
    public static let headerLength = 8
}

/// ICMPv4 message types (RFC 792, RFC 950).
public enum ICMPv4Type {
    public static let echoReply: UInt8 = 0
    public static let destinationUnreachable: UInt8 = 3
    public static let sourceQuench: UInt8 = 4
    public static let redirect: UInt8 = 5
    public static let echoRequest: UInt8 = 8
    public static let routerAdvertisement: UInt8 = 9
    public static let routerSolicitation: UInt8 = 10
    public static let timeExceeded: UInt8 = 11
    public static let parameterProblem: UInt8 = 12
    public static let timestampRequest: UInt8 = 13
    public static let timestampReply: UInt8 = 14
    public static let informationRequest: UInt8 = 15
    public static let informationReply: UInt8 = 16
    public static let addressMaskRequest: UInt8 = 17
    public static let addressMaskReply: UInt8 = 18

    /// Whether `type` is one of the error messages that carry the offending datagram.
    @inlinable public static func isError(_ type: UInt8) -> Bool {
        type == destinationUnreachable || type == timeExceeded || type == parameterProblem
            || type == sourceQuench || type == redirect
    }

    /// Whether `type` is a query request that carries an identifier (RFC 5508 §3.1).
    @inlinable public static func isQueryRequest(_ type: UInt8) -> Bool {
        type == echoRequest || type == timestampRequest || type == informationRequest || type == addressMaskRequest
    }

    /// Whether `type` is a query reply that carries an identifier.
    @inlinable public static func isQueryReply(_ type: UInt8) -> Bool {
        type == echoReply || type == timestampReply || type == informationReply || type == addressMaskReply
    }
}

/// Destination unreachable codes used here (RFC 792, RFC 1122, RFC 1812).
public enum ICMPv4UnreachableCode {
    public static let network: UInt8 = 0
    public static let host: UInt8 = 1
    public static let protocolUnreachable: UInt8 = 2
    public static let port: UInt8 = 3
    public static let fragmentationNeeded: UInt8 = 4
    public static let sourceRouteFailed: UInt8 = 5
    public static let hostAdministrativelyProhibited: UInt8 = 10
    public static let communicationAdministrativelyProhibited: UInt8 = 13
}

public protocol ICMPv4Readable {
    var pointer: UnsafeRawPointer { get }
    var count: Int { get }
}

extension ICMPv4Readable {
    @inlinable public var type: UInt8 { load8(pointer, ICMPv4Layout.type) }
    @inlinable public var code: UInt8 { load8(pointer, ICMPv4Layout.code) }
    @inlinable public var checksum: UInt16 { load16(pointer, ICMPv4Layout.checksum) }
    @inlinable public var identifier: UInt16 { load16(pointer, ICMPv4Layout.identifier) }
    @inlinable public var sequenceNumber: UInt16 { load16(pointer, ICMPv4Layout.sequenceNumber) }
    @inlinable public var restOfHeader: UInt32 { load32(pointer, ICMPv4Layout.identifier) }
    @inlinable public var parameterPointer: UInt8 { load8(pointer, ICMPv4Layout.pointer) }
    @inlinable public var nextHopMTU: UInt16 { load16(pointer, ICMPv4Layout.nextHopMTU) }
    @inlinable public var gateway: IPv4Address { IPv4Address(load32(pointer, ICMPv4Layout.gateway)) }
    @inlinable public var isError: Bool { ICMPv4Type.isError(type) }
    @inlinable public var isQuery: Bool { ICMPv4Type.isQueryRequest(type) || ICMPv4Type.isQueryReply(type) }
    /// The datagram an error message carries (its IP header and first bytes), or a query's data.
    @inlinable public var bodyPointer: UnsafeRawPointer { pointer + ICMPv4Layout.headerLength }
    @inlinable public var bodyLength: Int { count - ICMPv4Layout.headerLength }
    /// Whether the checksum over the whole message verifies.
    @inlinable public var isChecksumValid: Bool { Checksum.fold(Checksum.sum(pointer, count: count)) == 0xFFFF }
}

public struct ICMPv4View: ICMPv4Readable {
    public let pointer: UnsafeRawPointer
    public let count: Int
    @inlinable public init(validating bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard let base = bytes.baseAddress, bytes.count >= ICMPv4Layout.headerLength else { throw .truncated }
        pointer = base
        count = bytes.count
    }
    @inlinable public init(unchecked pointer: UnsafeRawPointer, count: Int) {
        self.pointer = pointer
        self.count = count
    }
}

public struct MutableICMPv4View: ICMPv4Readable {
    public let mutablePointer: UnsafeMutableRawPointer
    public let count: Int
    @inlinable public var pointer: UnsafeRawPointer { UnsafeRawPointer(mutablePointer) }
    @inlinable public init(validating bytes: UnsafeMutableRawBufferPointer) throws(WireError) {
        guard let base = bytes.baseAddress, bytes.count >= ICMPv4Layout.headerLength else { throw .truncated }
        mutablePointer = base
        count = bytes.count
    }
    @inlinable public init(unchecked pointer: UnsafeMutableRawPointer, count: Int) {
        self.mutablePointer = pointer
        self.count = count
    }

    /// Replaces a query's identifier, keeping the checksum right (ICMPv4 has no pseudo-header).
    @inlinable @inline(__always)
    public func rewriteIdentifier(_ new: UInt16) {
        let old = identifier
        store16(mutablePointer, ICMPv4Layout.identifier, new)
        store16(mutablePointer, ICMPv4Layout.checksum, Checksum.update(checksum, old: old, new: new))
    }

    @inlinable public func applyDelta(_ delta: ChecksumDelta) {
        store16(mutablePointer, ICMPv4Layout.checksum, delta.apply(to: checksum))
    }

    @inlinable public func setType(_ v: UInt8) { store8(mutablePointer, ICMPv4Layout.type, v) }
    @inlinable public func setCode(_ v: UInt8) { store8(mutablePointer, ICMPv4Layout.code, v) }
    @inlinable public func setChecksum(_ v: UInt16) { store16(mutablePointer, ICMPv4Layout.checksum, v) }
    @inlinable public func setIdentifier(_ v: UInt16) { store16(mutablePointer, ICMPv4Layout.identifier, v) }
    @inlinable public func setSequenceNumber(_ v: UInt16) { store16(mutablePointer, ICMPv4Layout.sequenceNumber, v) }
    @inlinable public func setRestOfHeader(_ v: UInt32) { store32(mutablePointer, ICMPv4Layout.identifier, v) }
    @inlinable public var mutableBodyPointer: UnsafeMutableRawPointer { mutablePointer + ICMPv4Layout.headerLength }

    /// Recomputes the checksum over the whole message.
    @inlinable public func updateChecksum() {
        store16(mutablePointer, ICMPv4Layout.checksum, 0)
        store16(mutablePointer, ICMPv4Layout.checksum, Checksum.finish(Checksum.sum(pointer, count: count)))
    }
}
