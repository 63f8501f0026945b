/// Field offsets of the GRE header, in one place: RFC 2784 §2 (version 0), RFC 2890 §2 (key and
/// sequence number), RFC 2637 §4.1 (version 1, PPTP's enhanced GRE). The optional fields follow the
/// fixed four bytes in the order checksum+reserved1, key, sequence number, acknowledgment number; each
/// is present only when its flag is set, so their offsets are computed from the flags.
public enum GRELayout {
    /// Flags (C R K S s Recur A) and version: 16 bits.
    public static let flagsVersion = 0
    public static let protocolType = 2
    /// The fixed part, derived from the last fixed field.
    public static let minimumHeaderLength = protocolType + 2
    /// Size of each optional field (checksum with reserved1, key, sequence, acknowledgment).
    public static let optionalFieldLength = 4
    public static let maximumHeaderLength = minimumHeaderLength + 4 * optionalFieldLength

    /// RFC 2784: checksum present.
    public static let flagChecksum: UInt16 = 0x8000
    /// RFC 1701 routing present (obsolete; refused here).
    public static let flagRouting: UInt16 = 0x4000
    /// RFC 2890 §2.1 / RFC 2637: key present.
    public static let flagKey: UInt16 = 0x2000
    /// RFC 2890 §2.2 / RFC 2637: sequence number present.
    public static let flagSequence: UInt16 = 0x1000
    /// RFC 1701 strict source route (refused here).
    public static let flagStrictSourceRoute: UInt16 = 0x0800
    /// RFC 1701 recursion control (refused here).
    public static let recursionMask: UInt16 = 0x0700
    /// RFC 2637 §4.1: acknowledgment number present (version 1 only).
    public static let flagAcknowledgment: UInt16 = 0x0080
    public static let versionMask: UInt16 = 0x0007
}

/// GRE protocol type values (EtherTypes) seen by the NAT.
public enum GREProtocolType {
    public static let ipv4: UInt16 = 0x0800
    public static let ipv6: UInt16 = 0x86DD
    public static let transparentEthernet: UInt16 = 0x6558
    /// RFC 2637 §4.1: PPP, the only protocol type of enhanced GRE.
    public static let ppp: UInt16 = 0x880B
}

/// Read access to a GRE packet; shared by ``GREView`` and ``MutableGREView``.
public protocol GREReadable {
    var pointer: UnsafeRawPointer { get }
    /// The GRE packet's length (header and payload).
    var count: Int { get }
}

extension GREReadable {
    @inlinable public var flagsAndVersion: UInt16 { load16(pointer, GRELayout.flagsVersion) }
    @inlinable public var version: UInt8 { UInt8(truncatingIfNeeded: flagsAndVersion & GRELayout.versionMask) }
    @inlinable public var protocolType: UInt16 { load16(pointer, GRELayout.protocolType) }
    @inlinable public var checksumPresent: Bool { flagsAndVersion & GRELayout.flagChecksum != 0 }
    @inlinable public var keyPresent: Bool { flagsAndVersion & GRELayout.flagKey != 0 }
    @inlinable public var sequencePresent: Bool { flagsAndVersion & GRELayout.flagSequence != 0 }
    /// RFC 2637 §4.1: the A flag; always false for version 0, where that bit is reserved.
    @inlinable public var acknowledgmentPresent: Bool {
        version == 1 && flagsAndVersion & GRELayout.flagAcknowledgment != 0
    }
    /// Whether this is PPTP's enhanced GRE (RFC 2637 §4.1: version 1).
    @inlinable public var isEnhanced: Bool { version == 1 }

    /// The byte offset of the key field (where it is, or would be).
    @inlinable public var keyOffset: Int {
        GRELayout.minimumHeaderLength + (checksumPresent ? GRELayout.optionalFieldLength : 0)
    }
    @inlinable public var sequenceOffset: Int { keyOffset + (keyPresent ? GRELayout.optionalFieldLength : 0) }
    @inlinable public var acknowledgmentOffset: Int {
        sequenceOffset + (sequencePresent ? GRELayout.optionalFieldLength : 0)
    }
    /// The header length: the fixed part and every optional field the flags announce.
    @inlinable public var headerLength: Int {
        acknowledgmentOffset + (acknowledgmentPresent ? GRELayout.optionalFieldLength : 0)
    }

    /// RFC 2784 §2.5: the checksum, if present.
    @inlinable public var checksum: UInt16? { checksumPresent ? load16(pointer, GRELayout.minimumHeaderLength) : nil }
    /// RFC 2890 §2.1: the key, if present. In version 1 it holds payload length and call ID.
    @inlinable public var key: UInt32? { keyPresent ? load32(pointer, keyOffset) : nil }
    @inlinable public var sequenceNumber: UInt32? { sequencePresent ? load32(pointer, sequenceOffset) : nil }
    /// RFC 2637 §4.1: the highest sequence number received, if the A flag is set.
    @inlinable public var acknowledgmentNumber: UInt32? {
        acknowledgmentPresent ? load32(pointer, acknowledgmentOffset) : nil
    }
    /// RFC 2637 §4.1: the peer's call ID (low half of the key), for version 1 only.
    @inlinable public var callID: UInt16? {
        version == 1 && keyPresent ? load16(pointer, keyOffset + 2) : nil
    }
    /// RFC 2637 §4.1: the payload length (high half of the key), for version 1 only.
    @inlinable public var pptpPayloadLength: Int? {
        version == 1 && keyPresent ? Int(load16(pointer, keyOffset)) : nil
    }
    @inlinable public var payloadOffset: Int { headerLength }
    @inlinable public var payloadLength: Int { count - headerLength }
    @inlinable public var payloadPointer: UnsafeRawPointer { pointer + headerLength }

    /// RFC 2784 §2.5: whether the checksum over header and payload verifies; true when there is none.
    @inlinable public var isChecksumValid: Bool {
        !checksumPresent || Checksum.fold(Checksum.sum(pointer, count: count)) == 0xFFFF
    }
}

/// Checks a GRE header and returns the packet's length. Version 0 (RFC 2784 §2.3): bits 1 (routing) and
/// 4-5 (strict source route, recursion) must be zero, else `.badHeaderLength` (RFC 1701 layouts are not
/// parsed). Version 1 (RFC 2637 §4.1): C and R clear and K set, else `.badHeaderLength`; the key's payload
/// length must fit the bytes after the header (`.badLength`), and the packet ends there. Other versions:
/// `.badVersion`.
@inlinable
func validateGRE(_ p: UnsafeRawPointer, _ available: Int) throws(WireError) -> Int {
    guard available >= GRELayout.minimumHeaderLength else { throw .truncated }
    let fv = load16(p, GRELayout.flagsVersion)
    let version = fv & GRELayout.versionMask
    var hl = GRELayout.minimumHeaderLength
    let four = GRELayout.optionalFieldLength
    switch version {
    case 0:
        guard fv & (GRELayout.flagRouting | GRELayout.flagStrictSourceRoute | GRELayout.recursionMask) == 0 else {
            throw .badHeaderLength
        }
        if fv & GRELayout.flagChecksum != 0 { hl += four }
        if fv & GRELayout.flagKey != 0 { hl += four }
        if fv & GRELayout.flagSequence != 0 { hl += four }
        guard hl <= available else { throw .truncated }
        return available
    case 1:
        guard fv & (GRELayout.flagChecksum | GRELayout.flagRouting) == 0, fv & GRELayout.flagKey != 0 else {
            throw .badHeaderLength
        }
        hl += four
        if fv & GRELayout.flagSequence != 0 { hl += four }
        if fv & GRELayout.flagAcknowledgment != 0 { hl += four }
        guard hl <= available else { throw .truncated }
        let payload = Int(load16(p, GRELayout.minimumHeaderLength))
        guard hl + payload <= available else { throw .badLength }
        return hl + payload
    default:
        throw .badVersion
    }
}

/// A read-only view of a GRE packet. `init(validating:)` checks that every optional field the flags announce
/// is present (and, for version 1, the payload length); afterwards no accessor reads outside the packet.
public struct GREView: GREReadable {
    public let pointer: UnsafeRawPointer
    public let count: Int

    @inlinable public init(validating bytes: UnsafeRawBufferPointer) throws(WireError) {
        guard let base = bytes.baseAddress else { throw .truncated }
        count = try validateGRE(base, bytes.count)
        pointer = base
    }
    @inlinable public init(unchecked pointer: UnsafeRawPointer, count: Int) {
        self.pointer = pointer
        self.count = count
    }
}

/// A writable view of a GRE packet.
public struct MutableGREView: GREReadable {
    public let mutablePointer: UnsafeMutableRawPointer
    public let count: Int
    @inlinable public var pointer: UnsafeRawPointer { UnsafeRawPointer(mutablePointer) }

    @inlinable public init(validating bytes: UnsafeMutableRawBufferPointer) throws(WireError) {
        guard let base = bytes.baseAddress else { throw .truncated }
        count = try validateGRE(base, bytes.count)
        mutablePointer = base
    }
    @inlinable public init(unchecked pointer: UnsafeMutableRawPointer, count: Int) {
        self.mutablePointer = pointer
        self.count = count
    }

    @inlinable public var readOnly: GREView { GREView(unchecked: pointer, count: count) }

    /// RFC 2637 §4.1: replaces the call ID of an enhanced GRE packet (which has no checksum). Returns
    /// false, changing nothing, for version 0.
    @inlinable @inline(__always) @discardableResult
    public func rewriteCallID(_ new: UInt16) -> Bool {
        guard version == 1, keyPresent else { return false }
        store16(mutablePointer, keyOffset + 2, new)
        return true
    }

    /// RFC 2890 §2.1: replaces the key, updating the checksum incrementally if there is one (RFC 1624).
    /// Returns false, changing nothing, when there is no key field.
    @inlinable @discardableResult
    public func rewriteKey(_ new: UInt32) -> Bool {
        guard keyPresent else { return false }
        let off = keyOffset
        let old = load32(pointer, off)
        store32(mutablePointer, off, new)
        if checksumPresent {
            store16(mutablePointer, GRELayout.minimumHeaderLength,
                    Checksum.update(load16(pointer, GRELayout.minimumHeaderLength), old: old, new: new))
        }
        return true
    }

    /// Sets the sequence number if present (no checksum update). Returns whether it was present.
    @inlinable @discardableResult
    public func setSequenceNumber(_ v: UInt32) -> Bool {
        guard sequencePresent else { return false }
        store32(mutablePointer, sequenceOffset, v)
        return true
    }

    /// Sets the acknowledgment number if present (version 1). Returns whether it was present.
    @inlinable @discardableResult
    public func setAcknowledgmentNumber(_ v: UInt32) -> Bool {
        guard acknowledgmentPresent else { return false }
        store32(mutablePointer, acknowledgmentOffset, v)
        return true
    }

    @inlinable public func setProtocolType(_ v: UInt16) { store16(mutablePointer, GRELayout.protocolType, v) }

    /// Recomputes the checksum over header and payload when the C flag is set (RFC 2784 §2.5).
    @inlinable public func updateChecksum() {
        guard checksumPresent else { return }
        store16(mutablePointer, GRELayout.minimumHeaderLength, 0)
        store16(mutablePointer, GRELayout.minimumHeaderLength, Checksum.finish(Checksum.sum(pointer, count: count)))
    }

    @inlinable public var mutablePayloadPointer: UnsafeMutableRawPointer { mutablePointer + headerLength }
}

/// An owned GRE header (version 0 per RFC 2784/2890, or version 1 per RFC 2637).
public struct GREHeader: Hashable, Sendable {
    /// 0 (RFC 2784) or 1 (RFC 2637 enhanced GRE).
    public var version: UInt8
    public var protocolType: UInt16
    /// Version 0 only: whether the checksum field is present (its value is computed when a packet is built).
    public var checksumPresent: Bool
    /// The key; for version 1 the payload length (high 16 bits) and call ID (low 16 bits).
    public var key: UInt32?
    public var sequenceNumber: UInt32?
    /// Version 1 only (ignored by ``headerLength`` and ``emit(into:)`` for version 0).
    public var acknowledgmentNumber: UInt32?

    /// A version 0 header.
    public init(protocolType: UInt16, key: UInt32? = nil, sequenceNumber: UInt32? = nil, checksumPresent: Bool = false) {
        self.version = 0
        self.protocolType = protocolType
        self.checksumPresent = checksumPresent
        self.key = key
        self.sequenceNumber = sequenceNumber
        self.acknowledgmentNumber = nil
    }

    /// An enhanced GRE header (RFC 2637 §4.1) carrying PPP.
    public static func pptp(callID: UInt16, payloadLength: Int = 0, sequenceNumber: UInt32? = nil,
                            acknowledgmentNumber: UInt32? = nil) -> GREHeader {
        var h = GREHeader(protocolType: GREProtocolType.ppp,
                          key: UInt32(UInt16(truncatingIfNeeded: payloadLength)) << 16 | UInt32(callID),
                          sequenceNumber: sequenceNumber)
        h.version = 1
        h.acknowledgmentNumber = acknowledgmentNumber
        return h
    }

    public init(_ v: some GREReadable) {
        version = v.version
        protocolType = v.protocolType
        checksumPresent = v.checksumPresent
        key = v.key
        sequenceNumber = v.sequenceNumber
        acknowledgmentNumber = v.acknowledgmentNumber
    }

    public var callID: UInt16? {
        guard version == 1, let k = key else { return nil }
        return UInt16(truncatingIfNeeded: k)
    }

    public var headerLength: Int {
        var n = GRELayout.minimumHeaderLength
        if checksumPresent { n += GRELayout.optionalFieldLength }
        if key != nil { n += GRELayout.optionalFieldLength }
        if sequenceNumber != nil { n += GRELayout.optionalFieldLength }
        if version == 1, acknowledgmentNumber != nil { n += GRELayout.optionalFieldLength }
        return n
    }

    /// Writes the header (checksum and reserved1 zero) and returns its length.
    @discardableResult
    public func emit(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let p = buffer.baseAddress!
        let hl = headerLength
        precondition(buffer.count >= hl)
        var fv = UInt16(version) & GRELayout.versionMask
        var off = GRELayout.minimumHeaderLength
        if checksumPresent {
            fv |= GRELayout.flagChecksum
            store32(p, off, 0)
            off += GRELayout.optionalFieldLength
        }
        if let k = key {
            fv |= GRELayout.flagKey
            store32(p, off, k)
            off += GRELayout.optionalFieldLength
        }
        if let s = sequenceNumber {
            fv |= GRELayout.flagSequence
            store32(p, off, s)
            off += GRELayout.optionalFieldLength
        }
        if version == 1, let a = acknowledgmentNumber {
            fv |= GRELayout.flagAcknowledgment
            store32(p, off, a)
        }
        store16(p, GRELayout.flagsVersion, fv)
        store16(p, GRELayout.protocolType, protocolType)
        return hl
    }
}
