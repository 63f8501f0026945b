/// A chained hash index over externally stored entries identified by `UInt32` ids (1...capacity; 0 is "none").
/// Buckets and chain links are two flat arrays of 32-bit words, 8 bytes per entry at most, no allocation
/// after `init`. Each word holds an id in its low bits and, in the bits the id does not need, a tag taken
/// from the top of the entry's hash: a lookup skips every chain entry whose tag differs without touching
/// that entry's record (with 131 072 ids the tag has 15 bits, so a foreign record is read about once in
/// 32 768 probes). Callers walk the candidates with ``first(_:)`` / ``next(_:hash:)`` and compare keys
/// against their own storage.
public struct HashIndex: ~Copyable {
    @usableFromInline let buckets: UnsafeMutablePointer<UInt32>
    @usableFromInline let links: UnsafeMutablePointer<UInt32>
    @usableFromInline let mask: UInt32
    /// Bits of a word that hold the id; the rest hold the tag.
    @usableFromInline let idBits: UInt32
    @usableFromInline let idMask: UInt32
    public let capacity: Int
    public let bucketCount: Int

    /// An index for ids `1...capacity`, with a power-of-two bucket count of at least `capacity × load`.
    public init(capacity: Int, bucketsPerEntry: Double = 1.0) {
        precondition(capacity > 0 && capacity < 1 << 30)
        var n = 16
        while Double(n) < Double(capacity) * bucketsPerEntry { n <<= 1 }
        bucketCount = n
        mask = UInt32(n - 1)
        var bits: UInt32 = 1
        while (1 << bits) <= capacity { bits += 1 }
        idBits = bits
        idMask = UInt32((1 << UInt64(bits)) - 1)
        self.capacity = capacity
        buckets = TableMemory.allocate(UInt32.self, count: n)
        buckets.initialize(repeating: 0, count: n)
        links = TableMemory.allocate(UInt32.self, count: capacity + 1)
        links.initialize(repeating: 0, count: capacity + 1)
    }

    deinit {
        TableMemory.deallocate(buckets, count: bucketCount)
        TableMemory.deallocate(links, count: capacity + 1)
    }

    /// Bytes this index holds.
    public var memoryBytes: Int { bucketCount * 4 + (capacity + 1) * 4 }

    /// The word stored for `id` under `hash`: tag (top bits of the hash) above the id.
    @inlinable @inline(__always)
    func word(_ id: UInt32, _ hash: UInt32) -> UInt32 { (hash & ~idMask) | id }

    /// The address of the bucket for `hash`, for a prefetch ahead of ``first(_:)``.
    @inlinable @inline(__always)
    public func bucketAddress(_ hash: UInt32) -> UnsafeRawPointer { UnsafeRawPointer(buckets + Int(hash & mask)) }

    /// A copyable read-only view of the chains, for code that must look up without borrowing the index
    /// (valid while the index lives: the arrays never move).
    @inlinable public var chains: HashChains { HashChains(buckets: buckets, links: links, mask: mask, idMask: idMask) }

    /// The first id in `hash`'s chain whose tag matches (0 when none).
    @inlinable @inline(__always)
    public func first(_ hash: UInt32) -> UInt32 { chains.first(hash) }

    /// The next id after `id` in `hash`'s chain whose tag matches (0 when none).
    @inlinable @inline(__always)
    public func next(_ id: UInt32, hash: UInt32) -> UInt32 { chains.next(id, hash: hash) }

    /// Inserts `id` at the head of its chain.
    @inlinable @inline(__always)
    public func insert(_ id: UInt32, hash: UInt32) {
        let b = Int(hash & mask)
        links[Int(id)] = buckets[b]
        buckets[b] = word(id, hash)
    }

    /// Removes `id` from its chain; returns whether it was there.
    @inlinable @discardableResult
    public func remove(_ id: UInt32, hash: UInt32) -> Bool {
        let b = Int(hash & mask)
        var cur = buckets[b]
        if cur & idMask == id {
            buckets[b] = links[Int(id)]
            links[Int(id)] = 0
            return true
        }
        while cur != 0 {
            let c = Int(cur & idMask)
            let nxt = links[c]
            if nxt & idMask == id {
                links[c] = links[Int(id)]
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

/// The lookup half of a ``HashIndex`` as a plain copyable value (pointers and masks).
public struct HashChains {
    @usableFromInline let buckets: UnsafeMutablePointer<UInt32>
    @usableFromInline let links: UnsafeMutablePointer<UInt32>
    @usableFromInline let mask: UInt32
    @usableFromInline let idMask: UInt32

    @inlinable init(buckets: UnsafeMutablePointer<UInt32>, links: UnsafeMutablePointer<UInt32>, mask: UInt32, idMask: UInt32) {
        self.buckets = buckets
        self.links = links
        self.mask = mask
        self.idMask = idMask
    }

    /// Skips chain words whose tag differs from `hash`'s; returns the id of the first that matches, or 0.
    @inlinable @inline(__always)
    func matching(from w: UInt32, _ hash: UInt32) -> UInt32 {
        var w = w
        let tag = hash & ~idMask
        while w != 0 {
            if w & ~idMask == tag { return w & idMask }
            w = links[Int(w & idMask)]
        }
        return 0
    }

    /// The first id in `hash`'s chain whose tag matches (0 when none).
    @inlinable @inline(__always)
    public func first(_ hash: UInt32) -> UInt32 { matching(from: buckets[Int(hash & mask)], hash) }

    /// The next id after `id` in `hash`'s chain whose tag matches (0 when none).
    @inlinable @inline(__always)
    public func next(_ id: UInt32, hash: UInt32) -> UInt32 { matching(from: links[Int(id)], hash) }
}

/// Seeded hashing of fixed-size keys (two 64-bit words), by one full-width multiply: each word is mixed
/// with its own secret taken from the table's seed, and the high and low halves of their 128-bit product
/// are folded together (the "mum" mix of wyhash). Every output bit depends on every input bit, and the
/// secrets are per table, so an outside host cannot aim many flows at one chain without knowing them.
public enum KeyHash {
    @inlinable @inline(__always)
    public static func hash(_ a: UInt64, _ b: UInt64, seed: UInt64) -> UInt32 {
        let p = (a ^ seed).multipliedFullWidth(by: (b ^ seed ^ 0xA076_1D64_78BD_642F) &+ 0xE703_7ED1_A0B4_28DB)
        let h = p.high ^ p.low
        return UInt32(truncatingIfNeeded: h ^ (h >> 32))
    }
}
