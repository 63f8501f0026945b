/// Field offsets of the ICMPv6 header (RFC 4443 §2.1), in one place.
public enum ICMPv6Layout {
    public static let type = 0
    public static let code = 1
    public static let checksum = 2
    /// Echo request and reply (RFC 4443 §4): identifier and sequence number.
    public static let identifier = 4
    public static let sequenceNumber = 6
    /// Packet too big (RFC 4443 §3.2): the MTU, 32 bits.
    public static let mtu = 4
    /// Parameter problem (RFC 4443 §3.4): the byte offset of the error, 32 bits.
    public static let pointer = 4
    /// Neighbour solicitation and advertisement (RFC 4861 §4.3, §4.4): the target address after 4 bytes
    /// of reserved space or flags.
    public static let targetAddress = 8
    public static let headerLength = 8
}

/// ICMPv6 message types (RFC 4443 §2.1, RFC 4861 §4).
public enum ICMPv6Type {
    public static let destinationUnreachable: UInt8 = 1
    public static let packetTooBig: UInt8 = 2
    public static let timeExceeded: UInt8 = 3
    public static let parameterProblem: UInt8 = 4
    public static let echoRequest: UInt8 = 128
    public static let echoReply: UInt8 = 129
    public static let routerSolicitation: UInt8 = 133
    public static let routerAdvertisement: UInt8 = 134
    public static let neighborSolicitation: UInt8 = 135
    public static let neighborAdvertisement: UInt8 = 136
    public static let redirect: UInt8 = 137

    /// RFC 4443 §2.1: types 0-127 are error messages (they carry the offending packet).
    @inlinable public static func isError(_ type: UInt8) -> Bool { type < 128 }
    /// Whether `type` is an echo request or reply (the only queries a NAT translates, RFC 6146 §3.5.3).
    @inlinable public static func isEcho(_ type: UInt8) -> Bool { type == echoRequest || type == echoReply }
}

/// Destination unreachable codes (RFC 4443 §3.1).
public enum ICMPv6UnreachableCode {
    public static let noRoute: UInt8 = 0
    public static let administrativelyProhibited: UInt8 = 1
    public static let beyondScope: UInt8 = 2
    public static let address: UInt8 = 3
    public static let port: UInt8 = 4
    public static let sourcePolicyFailed: UInt8 = 5
    public static let rejectRoute: UInt8 = 6
}

/// Time exceeded codes (RFC 4443 §3.3).
public enum ICMPv6TimeExceededCode {
    public static let hopLimitExceeded: UInt8 = 0
    public static let fragmentReassemblyTimeExceeded: UInt8 = 1
}

/// Parameter problem codes (RFC 4443 §3.4).
public enum ICMPv6ParameterProblemCode {
    public static let erroneousHeaderField: UInt8 = 0
    public static let unrecognizedNextHeader: UInt8 = 1
    public static let unrecognizedOption: UInt8 = 2
}

/// Read access to an ICMPv6 message; shared by ``ICMPv6View`` and ``MutableICMPv6View``.
public protocol ICMPv6Readable {
    var pointer: UnsafeRawPointer { get }
    /// The message's length (header and body).
    var count: Int { get }
}

extension ICMPv6Readable {
    @inlinable public var type: UInt8 { load8(pointer, ICMPv6Layout.type) }
    @inlinable public var code: UInt8 { load8(pointer, ICMPv6Layout.code) }
    @inlinable public var checksum: UInt16 { load16(pointer, ICMPv6Layout.checksum) }
    @inlinable public var identifier: UInt16 { load16(pointer, ICMPv6Layout.identifier) }
    @inlinable public var sequenceNumber: UInt16 { load16(pointer, ICMPv6Layout.sequenceNumber) }
    /// The four bytes after the checksum (identifier and sequence, MTU, pointer, or unused).
    @inlinable public var restOfHeader: UInt32 { load32(pointer, ICMPv6Layout.identifier) }
    /// Packet too big: the MTU of the next-hop link.
    @inlinable public var mtu: UInt32 { load32(pointer, ICMPv6Layout.mtu) }
    /// Parameter problem: the byte offset in the invoking packet where the error was found.
    @inlinable public var parameterPointer: UInt32 { load32(pointer, ICMPv6Layout.pointer) }
    @inlinable public var isError: Bool { ICMPv6Type.isError(type) }
    @inlinable public var isEcho: Bool { ICMPv6Type.isEcho(type) }
    /// The packet an error message carries, or an echo's data.
    @inlinable public var bodyPointer: UnsafeRawPointer { pointer + ICMPv6Layout.headerLength }
    @inlinable public var bodyLength: Int { count - ICMPv6Layout.headerLength }

    /// Neighbour solicitation or advertisement: the target address, or nil when the message is too short.
    @inlinable public var targetAddress: IPv6Address? {
        guard count >= ICMPv6Layout.targetAddress + 16 else { return nil }
        return IPv6Address(high: load64(pointer, ICMPv6Layout.targetAddress),
                           low: load64(pointer, ICMPv6Layout.targetAddress + 8))
    }

    /// Whether the checksum verifies over the RFC 8200 §8.1 pseudo-header and the whole message (RFC 4443 §2.3).
    @inlinable
    public func isChecksumValid(source: IPv6Address, destination: IPv6Address) -> Bool {
        let ph = Checksum.pseudoHeaderSum(source: source, destination: destination,
                                          nextHeader: IPProtocol.icmpv6, length: count)
        return Checksum.fold(Checksum.sum(pointer, count: count, initial: ph)) == 0xFFFF
    }
}

/// A read-only view of an ICMPv6 message: the 8-byte header must be present; the message is all the bytes given.
public struct ICMPv6View: ICMPv6Readable {
    public let pointer: UnsafeRawPointer
    public let count: Int

    @inlinable public init(validating bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard let base = bytes.baseAddress, bytes.count >= ICMPv6Layout.headerLength else { throw .truncated }
        pointer = base
        count = bytes.count
    }
    @inlinable public init(unchecked pointer: UnsafeRawPointer, count: Int) {
        self.pointer = pointer
        self.count = count
    }
}

/// A writable view of an ICMPv6 message.
public struct MutableICMPv6View: ICMPv6Readable {
    public let mutablePointer: UnsafeMutableRawPointer
    public let count: Int
    @inlinable public var pointer: UnsafeRawPointer { UnsafeRawPointer(mutablePointer) }

    @inlinable public init(validating bytes: UnsafeMutableRawBufferPointer) throws(WireError) {
        guard let base = bytes.baseAddress, bytes.count >= ICMPv6Layout.headerLength else { throw .truncated }
        mutablePointer = base
        count = bytes.count
    }
    @inlinable public init(unchecked pointer: UnsafeMutableRawPointer, count: Int) {
        self.mutablePointer = pointer
        self.count = count
    }

    @inlinable public var readOnly: ICMPv6View { ICMPv6View(unchecked: pointer, count: count) }

    /// Replaces an echo's identifier and applies `delta` (pseudo-header address changes, if any) plus
    /// the identifier change to the checksum (RFC 1624).
    @inlinable @inline(__always)
    public func rewriteIdentifier(_ new: UInt16, delta: ChecksumDelta = ChecksumDelta()) {
        var d = delta
        d.replace(identifier, with: new)
        store16(mutablePointer, ICMPv6Layout.identifier, new)
        store16(mutablePointer, ICMPv6Layout.checksum, d.apply(to: checksum))
    }

    /// Applies an address-only change (pseudo-header) to the checksum.
    @inlinable public func applyDelta(_ delta: ChecksumDelta) {
        store16(mutablePointer, ICMPv6Layout.checksum, delta.apply(to: checksum))
    }

    @inlinable public func setType(_ v: UInt8) { store8(mutablePointer, ICMPv6Layout.type, v) }
    @inlinable public func setCode(_ v: UInt8) { store8(mutablePointer, ICMPv6Layout.code, v) }
    @inlinable public func setChecksum(_ v: UInt16) { store16(mutablePointer, ICMPv6Layout.checksum, v) }
    @inlinable public func setIdentifier(_ v: UInt16) { store16(mutablePointer, ICMPv6Layout.identifier, v) }
    @inlinable public func setSequenceNumber(_ v: UInt16) { store16(mutablePointer, ICMPv6Layout.sequenceNumber, v) }
    @inlinable public func setMTU(_ v: UInt32) { store32(mutablePointer, ICMPv6Layout.mtu, v) }
    @inlinable public func setParameterPointer(_ v: UInt32) { store32(mutablePointer, ICMPv6Layout.pointer, v) }
    @inlinable public func setRestOfHeader(_ v: UInt32) { store32(mutablePointer, ICMPv6Layout.identifier, v) }
    @inlinable public var mutableBodyPointer: UnsafeMutableRawPointer { mutablePointer + ICMPv6Layout.headerLength }

    /// Recomputes the checksum over the pseudo-header and the whole message (for messages the NAT builds).
    @inlinable public func updateChecksum(source: IPv6Address, destination: IPv6Address) {
        store16(mutablePointer, ICMPv6Layout.checksum, 0)
        let ph = Checksum.pseudoHeaderSum(source: source, destination: destination,
                                          nextHeader: IPProtocol.icmpv6, length: count)
        store16(mutablePointer, ICMPv6Layout.checksum, Checksum.finish(Checksum.sum(pointer, count: count, initial: ph)))
    }
}
