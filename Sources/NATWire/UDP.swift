/// Field offsets of the UDP header (RFC 768).
public enum UDPLayout {
    public static let sourcePort = 0
    public static let destinationPort = 2
    public static let length = 4
    public static let checksum = 6
    public static let headerLength = checksum + 2
}

public protocol UDPReadable {
    var pointer: UnsafeRawPointer { get }
    var count: Int { get }
}

extension UDPReadable {
    @inlinable public var sourcePort: UInt16 { load16(pointer, UDPLayout.sourcePort) }
    @inlinable public var destinationPort: UInt16 { load16(pointer, UDPLayout.destinationPort) }
    @inlinable public var length: Int { Int(load16(pointer, UDPLayout.length)) }
    @inlinable public var checksum: UInt16 { load16(pointer, UDPLayout.checksum) }
    /// Whether the sender left the checksum out (zero, allowed over IPv4 only).
    @inlinable public var hasChecksum: Bool { checksum != 0 }
    @inlinable public var payloadLength: Int { count - UDPLayout.headerLength }
}

public struct UDPView: UDPReadable {
    public let pointer: UnsafeRawPointer
    public let count: Int

    /// Validates the 8-byte header; a length field larger than the bytes present is refused.
    @inlinable public init(validating bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard let base = bytes.baseAddress, bytes.count >= UDPLayout.headerLength else { throw .truncated }
        let len = Int(load16(base, UDPLayout.length))
        guard len >= UDPLayout.headerLength, len <= bytes.count else { throw .badLength }
        pointer = base
        count = len
    }
    @inlinable public init(unchecked pointer: UnsafeRawPointer, count: Int) {
        self.pointer = pointer
        self.count = count
    }
}

public struct MutableUDPView: UDPReadable {
    public let mutablePointer: UnsafeMutableRawPointer
    public let count: Int
    @inlinable public var pointer: UnsafeRawPointer { UnsafeRawPointer(mutablePointer) }

    @inlinable public init(validating bytes: UnsafeMutableRawBufferPointer) throws(WireError) {
        guard let base = bytes.baseAddress, bytes.count >= UDPLayout.headerLength else { throw .truncated }
        let len = Int(load16(base, UDPLayout.length))
        guard len >= UDPLayout.headerLength, len <= bytes.count else { throw .badLength }
        mutablePointer = base
        count = len
    }
    @inlinable public init(unchecked pointer: UnsafeMutableRawPointer, count: Int) {
        self.mutablePointer = pointer
        self.count = count
    }

    /// Replaces the source port; a zero checksum (none, over IPv4) stays zero.
    @inlinable @inline(__always)
    public func rewriteSourcePort(_ new: UInt16, delta: ChecksumDelta) {
        var d = delta
        d.replace(sourcePort, with: new)
        store16(mutablePointer, UDPLayout.sourcePort, new)
        store16(mutablePointer, UDPLayout.checksum, d.applyUDP(to: checksum))
    }

    @inlinable @inline(__always)
    public func rewriteDestinationPort(_ new: UInt16, delta: ChecksumDelta) {
        var d = delta
        d.replace(destinationPort, with: new)
        store16(mutablePointer, UDPLayout.destinationPort, new)
        store16(mutablePointer, UDPLayout.checksum, d.applyUDP(to: checksum))
    }

    @inlinable public func applyDelta(_ delta: ChecksumDelta) {
        store16(mutablePointer, UDPLayout.checksum, delta.applyUDP(to: checksum))
    }

    @inlinable public func setSourcePort(_ v: UInt16) { store16(mutablePointer, UDPLayout.sourcePort, v) }
    @inlinable public func setDestinationPort(_ v: UInt16) { store16(mutablePointer, UDPLayout.destinationPort, v) }
    @inlinable public func setLength(_ v: Int) { store16(mutablePointer, UDPLayout.length, UInt16(truncatingIfNeeded: v)) }
    @inlinable public func setChecksum(_ v: UInt16) { store16(mutablePointer, UDPLayout.checksum, v) }
}
