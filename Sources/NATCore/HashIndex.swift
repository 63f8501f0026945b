/// A chained hash index over externally stored entries identified by `UInt32` ids (1...capacity; 0 is "none").
/// Buckets and chain links are two flat arrays: 8 bytes per entry at most, no allocation after `init`.
/// Callers walk a chain with ``first(_:)`` / ``next(_:)`` and compare keys against their own storage.
public struct HashIndex: ~Copyable {
    @usableFromInline let buckets: UnsafeMutablePointer<UInt32>
    @usableFromInline let links: UnsafeMutablePointer<UInt32>
    @usableFromInline let mask: UInt32
    public let capacity: Int
    public let bucketCount: Int

    /// An index for ids `1...capacity`, with a power-of-two bucket count of at least `capacity × load`.
    public init(capacity: Int, bucketsPerEntry: Double = 1.0) {
        precondition(capacity > 0 && capacity < Int(UInt32.max))
        var n = 16
        while Double(n) < Double(capacity) * bucketsPerEntry { n <<= 1 }
        bucketCount = n
        mask = UInt32(n - 1)
        self.capacity = capacity
        buckets = .allocate(capacity: n)
        buckets.initialize(repeating: 0, count: n)
        links = .allocate(capacity: capacity + 1)
        links.initialize(repeating: 0, count: capacity + 1)
    }

    deinit {
        buckets.deallocate()
        links.deallocate()
    }

    /// Bytes this index holds.
    public var memoryBytes: Int { bucketCount * 4 + (capacity + 1) * 4 }

    @inlinable @inline(__always)
    public func first(_ hash: UInt32) -> UInt32 { buckets[Int(hash & mask)] }

    @inlinable @inline(__always)
    public func next(_ id: UInt32) -> UInt32 { links[Int(id)] }

    /// Inserts `id` at the head of its chain.
    @inlinable @inline(__always)
    public func insert(_ id: UInt32, hash: UInt32) {
        let b = Int(hash & mask)
        links[Int(id)] = buckets[b]
        buckets[b] = id
    }

    /// Removes `id` from its chain; returns whether it was there.
    @inlinable @discardableResult
    public func remove(_ id: UInt32, hash: UInt32) -> Bool {
        let b = Int(hash & mask)
        var cur = buckets[b]
        if cur == id {
            buckets[b] = links[Int(id)]
            links[Int(id)] = 0
            return true
        }
        while cur != 0 {
            let nxt = links[Int(cur)]
            if nxt == id {
                links[Int(cur)] = links[Int(id)]
                links[Int(id)] = 0
                return true
            }
            cur = nxt
        }
        return false
    }

    /// Empties every chain.
    public func removeAll() {
        buckets.update(repeating: 0, count: bucketCount)
        links.update(repeating: 0, count: capacity + 1)
    }
}

/// Seeded multiply-xorshift hashing of fixed-size keys. The seed is per table so an outside host
/// cannot aim many flows at one chain without knowing it.
public enum KeyHash {
    @inlinable @inline(__always)
    public static func hash(_ a: UInt64, _ b: UInt64, seed: UInt64) -> UInt32 {
        var h = (a ^ seed) &* 0x9E37_79B9_7F4A_7C15
        h ^= (b &+ seed) &* 0xC2B2_AE3D_27D4_EB4F
        h ^= h >> 29
        h = h &* 0xBF58_476D_1CE4_E5B9
        h ^= h >> 32
        return UInt32(truncatingIfNeeded: h)
    }
}
