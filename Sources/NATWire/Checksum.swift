/// The Internet checksum: RFC 1071 for full computation, RFC 1624 for incremental update.
public enum Checksum {
    /// RFC 1071 §4.1: the one's complement sum of `count` bytes starting at `p`, added to `initial`.
    /// The result is not folded; pass it to ``finish(_:)``. An odd trailing byte is padded with zero.
    @inlinable
    public static func sum(_ p: UnsafeRawPointer, count: Int, initial: UInt64 = 0) -> UInt64 {
        var acc = initial
        var i = 0
        while i + 8 <= count {
            let w = UInt64(bigEndian: p.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            acc &+= (w >> 32) &+ (w & 0xFFFF_FFFF)
            i += 8
        }
        while i + 2 <= count {
            acc &+= UInt64(load16(p, i))
            i += 2
        }
        if i < count {
            acc &+= UInt64(load8(p, i)) << 8
        }
        return acc
    }

    /// Sum over a buffer.
    @inlinable
    public static func sum(_ bytes: UnsafeRawBufferPointer, initial: UInt64 = 0) -> UInt64 {
        guard let base = bytes.baseAddress else { return initial }
        return sum(base, count: bytes.count, initial: initial)
    }

    /// Whether the 20-byte IPv4 header (no options) at `p` has a valid header checksum (RFC 1071). One's
    /// complement addition does not care about byte order, so the five 32-bit words are summed as they
    /// lie in memory, with two 64-bit end-around-carry additions, and the all-ones result checked.
    @inlinable @inline(__always)
    public static func isValidIPv4Header20(_ p: UnsafeRawPointer) -> Bool {
        let (ab, c1) = p.loadUnaligned(as: UInt64.self).addingReportingOverflow(p.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        let (abc, c2) = (ab &+ (c1 ? 1 : 0)).addingReportingOverflow(UInt64(p.loadUnaligned(fromByteOffset: 16, as: UInt32.self)))
        return fold(abc &+ (c2 ? 1 : 0)) == 0xFFFF
    }

    /// Folds a 64-bit one's complement accumulator to 16 bits and complements it: the checksum field value.
    @inlinable @inline(__always)
    public static func finish(_ acc: UInt64) -> UInt16 {
        ~fold(acc)
    }

    /// Folds a 64-bit one's complement accumulator to 16 bits, without complementing.
    /// Two end-around-carry additions (add, then add the carry back: `add`/`adc` on x86): the halves of
    /// the 64-bit value, then the halves of that 32-bit sum. Adding a carry back never carries again,
    /// since a sum that carried is at most 2^n − 2. Zero only for zero, as RFC 1071 arithmetic wants.
    @inlinable @inline(__always)
    public static func fold(_ acc: UInt64) -> UInt16 {
        let (s32, c32) = UInt32(truncatingIfNeeded: acc).addingReportingOverflow(UInt32(truncatingIfNeeded: acc >> 32))
        let s = s32 &+ (c32 ? 1 : 0)
        let (s16, c16) = UInt16(truncatingIfNeeded: s).addingReportingOverflow(UInt16(truncatingIfNeeded: s >> 16))
        return s16 &+ (c16 ? 1 : 0)
    }

    /// The RFC 1071 checksum of a buffer (the value to store in a checksum field that was zero).
    public static func compute(_ bytes: UnsafeRawBufferPointer, initial: UInt64 = 0) -> UInt16 {
        finish(sum(bytes, initial: initial))
    }

    /// The pseudo-header sum for TCP/UDP over IPv4 (RFC 793 §3.1, RFC 768).
    @inlinable
    public static func pseudoHeaderSum(source: IPv4Address, destination: IPv4Address, protocol proto: UInt8, length: Int) -> UInt64 {
        let s = source.rawValue, d = destination.rawValue
        return UInt64(s >> 16) &+ UInt64(s & 0xFFFF) &+ UInt64(d >> 16) &+ UInt64(d & 0xFFFF)
            &+ UInt64(proto) &+ UInt64(length)
    }

    /// The pseudo-header sum for upper layers over IPv6 (RFC 8200 §8.1).
    @inlinable
    public static func pseudoHeaderSum(source: IPv6Address, destination: IPv6Address, nextHeader: UInt8, length: Int) -> UInt64 {
        source.wordSum &+ destination.wordSum
            &+ UInt64(nextHeader) &+ UInt64(length >> 16) &+ UInt64(length & 0xFFFF)
    }

    /// RFC 1624 eqn. 3: `HC' = ~(~HC + ~m + m')` for one 16-bit field.
    @inlinable @inline(__always)
    public static func update(_ checksum: UInt16, old: UInt16, new: UInt16) -> UInt16 {
        var d = ChecksumDelta()
        d.replace(old, with: new)
        return d.apply(to: checksum)
    }

    /// RFC 1624 eqn. 3 for a 32-bit field (an IPv4 address).
    @inlinable @inline(__always)
    public static func update(_ checksum: UInt16, old: UInt32, new: UInt32) -> UInt16 {
        var d = ChecksumDelta()
        d.replace(old, with: new)
        return d.apply(to: checksum)
    }
}

/// An accumulated RFC 1624 difference: record every field that changed, then apply it to each checksum
/// that covers those fields. Plain value, no allocation.
public struct ChecksumDelta: Sendable, Equatable {
    @usableFromInline var acc: UInt64

    @inlinable public init() { acc = 0 }

    /// The delta between two accumulated sums (`new - old` in one's complement).
    @inlinable public init(oldSum: UInt64, newSum: UInt64) {
        acc = UInt64(~Checksum.fold(oldSum)) &+ UInt64(Checksum.fold(newSum))
    }

    @inlinable @inline(__always)
    public mutating func replace(_ old: UInt16, with new: UInt16) {
        acc &+= UInt64(~old) &+ UInt64(new)
    }

    /// A 32-bit field counts as its two 16-bit words: since 2^16 ≡ 1 (mod 2^16 − 1), adding the whole
    /// 32-bit value to the 64-bit accumulator gives the same folded sum as adding the halves.
    @inlinable @inline(__always)
    public mutating func replace(_ old: UInt32, with new: UInt32) {
        acc &+= UInt64(~old) &+ UInt64(new)
    }

    /// A 64-bit field (two adjacent addresses) counts as its two 32-bit halves.
    @inlinable @inline(__always)
    public mutating func replace(_ old: UInt64, with new: UInt64) {
        let o = ~old
        acc &+= (o & 0xFFFF_FFFF) &+ (o >> 32) &+ (new & 0xFFFF_FFFF) &+ (new >> 32)
    }

    /// Adds another delta (for example one that also covers a pseudo-header change).
    @inlinable @inline(__always)
    public mutating func add(_ other: ChecksumDelta) { acc &+= other.acc }

    /// Whether nothing changed.
    @inlinable public var isZero: Bool { Checksum.fold(acc) == 0 || Checksum.fold(acc) == 0xFFFF }

    /// `HC' = ~(~HC + delta)`.
    @inlinable @inline(__always)
    public func apply(to checksum: UInt16) -> UInt16 {
        ~Checksum.fold(UInt64(~checksum) &+ acc)
    }

    /// As ``apply(to:)`` for a UDP checksum over IPv4: zero means "no checksum" and stays zero;
    /// a computed zero is sent as 0xFFFF (RFC 768).
    @inlinable @inline(__always)
    public func applyUDP(to checksum: UInt16) -> UInt16 {
        if checksum == 0 { return 0 }
        let r = apply(to: checksum)
        return r == 0 ? 0xFFFF : r
    }
}
