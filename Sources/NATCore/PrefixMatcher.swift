/// A fixed set of IPv4 prefixes, packed for the per-packet question "is this address in one of them?"
/// (inside prefixes, pool and 1:1 addresses): one word per prefix (address << 32 | mask) in a flat
/// array, scanned in order; nothing allocates after `init`. A copyable view: its owner calls
/// ``deallocate()`` once, in its own `deinit`.
public struct IPv4PrefixMatcher {
    @usableFromInline let nets: UnsafeMutablePointer<UInt64>
    public let count: Int

    /// `prefixes`: (network address, mask) pairs, addresses as host-order integers.
    public init(_ prefixes: [(address: UInt32, mask: UInt32)]) {
        count = prefixes.count
        nets = .allocate(capacity: max(prefixes.count, 1))
        for (i, p) in prefixes.enumerated() { nets[i] = UInt64(p.address) << 32 | UInt64(p.mask) }
    }

    @inlinable @inline(__always)
    public func contains(_ a: UInt32) -> Bool {
        for i in 0..<count {
            let n = nets[i]
            if a & UInt32(truncatingIfNeeded: n) == UInt32(truncatingIfNeeded: n >> 32) { return true }
        }
        return false
    }

    public func deallocate() { nets.deallocate() }
}
