/// Field offsets of the TCP header (RFC 9293 §3.1).
public enum TCPLayout {
    public static let sourcePort = 0
    public static let destinationPort = 2
    public static let sequenceNumber = 4
    public static let acknowledgmentNumber = 8
    public static let dataOffset = 12
    public static let flags = 13
    public static let window = 14
    public static let checksum = 16
    public static let urgentPointer = 18
    public static let minimumHeaderLength = urgentPointer + 2
}

/// TCP control bits (RFC 9293 §3.1; CWR/ECE from RFC 3168).
public struct TCPFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let fin = TCPFlags(rawValue: 0x01)
    public static let syn = TCPFlags(rawValue: 0x02)
    public static let rst = TCPFlags(rawValue: 0x04)
    public static let psh = TCPFlags(rawValue: 0x08)
    public static let ack = TCPFlags(rawValue: 0x10)
    public static let urg = TCPFlags(rawValue: 0x20)
    public static let ece = TCPFlags(rawValue: 0x40)
    public static let cwr = TCPFlags(rawValue: 0x80)
}

/// A TCP option (RFC 9293 §3.2).
public enum TCPOption: Hashable, Sendable {
    case maximumSegmentSize(UInt16)
    case windowScale(UInt8)
    case sackPermitted
    case timestamps(value: UInt32, echo: UInt32)
    case other(kind: UInt8, data: [UInt8])

    public static let kindEnd: UInt8 = 0
    public static let kindNoOperation: UInt8 = 1
    public static let kindMSS: UInt8 = 2
    public static let kindWindowScale: UInt8 = 3
    public static let kindSACKPermitted: UInt8 = 4
    public static let kindTimestamps: UInt8 = 8
    /// RFC 2018 §3: SACK blocks (pairs of left and right edges).
    public static let kindSACK: UInt8 = 5
}

public protocol TCPReadable {
    var pointer: UnsafeRawPointer { get }
    /// The segment's length (header and data).
    var count: Int { get }
}

extension TCPReadable {
    @inlinable public var sourcePort: UInt16 { load16(pointer, TCPLayout.sourcePort) }
    @inlinable public var destinationPort: UInt16 { load16(pointer, TCPLayout.destinationPort) }
    @inlinable public var sequenceNumber: UInt32 { load32(pointer, TCPLayout.sequenceNumber) }
    @inlinable public var acknowledgmentNumber: UInt32 { load32(pointer, TCPLayout.acknowledgmentNumber) }
    @inlinable public var headerLength: Int { Int(load8(pointer, TCPLayout.dataOffset) >> 4) << 2 }
    @inlinable public var flags: TCPFlags { TCPFlags(rawValue: load8(pointer, TCPLayout.flags)) }
    @inlinable public var window: UInt16 { load16(pointer, TCPLayout.window) }
    @inlinable public var checksum: UInt16 { load16(pointer, TCPLayout.checksum) }
    @inlinable public var urgentPointer: UInt16 { load16(pointer, TCPLayout.urgentPointer) }
    @inlinable public var payloadLength: Int { count - headerLength }

    /// The options, parsed (not on any fast path). Stops at End of Option List or a malformed option.
    public var options: [TCPOption] {
        var out: [TCPOption] = []
        var i = TCPLayout.minimumHeaderLength
        let end = headerLength
        while i < end {
            let kind = load8(pointer, i)
            if kind == TCPOption.kindEnd { break }
            if kind == TCPOption.kindNoOperation { i += 1; continue }
            guard i + 1 < end else { break }
            let len = Int(load8(pointer, i + 1))
            guard len >= 2, i + len <= end else { break }
            switch (kind, len) {
            case (TCPOption.kindMSS, 4): out.append(.maximumSegmentSize(load16(pointer, i + 2)))
            case (TCPOption.kindWindowScale, 3): out.append(.windowScale(load8(pointer, i + 2)))
            case (TCPOption.kindSACKPermitted, 2): out.append(.sackPermitted)
            case (TCPOption.kindTimestamps, 10): out.append(.timestamps(value: load32(pointer, i + 2), echo: load32(pointer, i + 6)))
            default: out.append(.other(kind: kind, data: (2..<len).map { load8(pointer, i + $0) }))
            }
            i += len
        }
        return out
    }

    /// The byte offset of the MSS option's value, if present.
    public var mssOptionOffset: Int? {
        var i = TCPLayout.minimumHeaderLength
        let end = headerLength
        while i < end {
            let kind = load8(pointer, i)
            if kind == TCPOption.kindEnd { return nil }
            if kind == TCPOption.kindNoOperation { i += 1; continue }
            guard i + 1 < end else { return nil }
            let len = Int(load8(pointer, i + 1))
            guard len >= 2, i + len <= end else { return nil }
            if kind == TCPOption.kindMSS && len == 4 { return i + 2 }
            i += len
        }
        return nil
    }
}

@inlinable
func validateTCP(_ count: Int, _ p: UnsafeRawPointer) throws(WireError) {
    guard count >= TCPLayout.minimumHeaderLength else { throw .truncated }
    let hl = Int(load8(p, TCPLayout.dataOffset) >> 4) << 2
    guard hl >= TCPLayout.minimumHeaderLength, hl <= count else { throw .badHeaderLength }
}

public struct TCPView: TCPReadable {
    public let pointer: UnsafeRawPointer
    public let count: Int

    @inlinable public init(validating bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard let base = bytes.baseAddress else { throw .truncated }
        try validateTCP(bytes.count, base)
        pointer = base
        count = bytes.count
    }
    @inlinable public init(unchecked pointer: UnsafeRawPointer, count: Int) {
        self.pointer = pointer
        self.count = count
    }
}

public struct MutableTCPView: TCPReadable {
    public let mutablePointer: UnsafeMutableRawPointer
    public let count: Int
    @inlinable public var pointer: UnsafeRawPointer { UnsafeRawPointer(mutablePointer) }

    @inlinable public init(validating bytes: UnsafeMutableRawBufferPointer) throws(WireError) {
        guard let base = bytes.baseAddress else { throw .truncated }
        try validateTCP(bytes.count, base)
        mutablePointer = base
        count = bytes.count
    }
    @inlinable public init(unchecked pointer: UnsafeMutableRawPointer, count: Int) {
        self.mutablePointer = pointer
        self.count = count
    }

    /// Replaces the source port and applies `delta` plus the port change to the checksum (RFC 1624).
    @inlinable @inline(__always)
    public func rewriteSourcePort(_ new: UInt16, delta: ChecksumDelta) {
        var d = delta
        d.replace(sourcePort, with: new)
        store16(mutablePointer, TCPLayout.sourcePort, new)
        store16(mutablePointer, TCPLayout.checksum, d.apply(to: checksum))
    }

    @inlinable @inline(__always)
    public func rewriteDestinationPort(_ new: UInt16, delta: ChecksumDelta) {
        var d = delta
        d.replace(destinationPort, with: new)
        store16(mutablePointer, TCPLayout.destinationPort, new)
        store16(mutablePointer, TCPLayout.checksum, d.apply(to: checksum))
    }

    /// Applies an address-only change (pseudo-header) to the checksum.
    @inlinable public func applyDelta(_ delta: ChecksumDelta) {
        store16(mutablePointer, TCPLayout.checksum, delta.apply(to: checksum))
    }

    @inlinable public func setSourcePort(_ v: UInt16) { store16(mutablePointer, TCPLayout.sourcePort, v) }
    @inlinable public func setDestinationPort(_ v: UInt16) { store16(mutablePointer, TCPLayout.destinationPort, v) }
    @inlinable public func setChecksum(_ v: UInt16) { store16(mutablePointer, TCPLayout.checksum, v) }
    @inlinable public func setSequenceNumber(_ v: UInt32) { store32(mutablePointer, TCPLayout.sequenceNumber, v) }
    @inlinable public func setAcknowledgmentNumber(_ v: UInt32) { store32(mutablePointer, TCPLayout.acknowledgmentNumber, v) }

    /// Lowers the MSS option to at most `limit` (MSS clamping), keeping the checksum right. Returns whether it changed.
    @discardableResult
    public func clampMSS(to limit: UInt16) -> Bool {
        guard let off = mssOptionOffset else { return false }
        let old = load16(pointer, off)
        guard old > limit else { return false }
        store16(mutablePointer, off, limit)
        // The option may sit at an odd offset; RFC 1624 needs the 16-bit words it changed.
        if off & 1 == 0 {
            store16(mutablePointer, TCPLayout.checksum, Checksum.update(checksum, old: old, new: limit))
        } else {
            var d = ChecksumDelta()
            let w0Old = UInt16(load8(pointer, off - 1)) << 8 | (old >> 8)
            let w1Old = (old & 0xFF) << 8 | UInt16(load8(pointer, off + 2))
            d.replace(w0Old, with: load16(pointer, off - 1))
            d.replace(w1Old, with: load16(pointer, off + 1))
            store16(mutablePointer, TCPLayout.checksum, d.apply(to: checksum))
        }
        return true
    }
}
