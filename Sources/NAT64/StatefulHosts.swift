import NATCore
import NATWire

/// The IPv6 hosts of a stateful NAT64, each interned to a 32-bit id so that NATCore's ``SessionTable``
/// (whose keys hold 32-bit addresses) can key BIB entries and sessions by it: the id stands for the
/// 128-bit address as the "inside address" of the table. A host lives while it has BIB entries (its
/// reference count); it also counts its sessions for the per-host limit (RFC 6888 REQ-4).
///
/// Preallocated: `capacity` records, a chained hash index with a power-of-two bucket array, a free list;
/// nothing allocates after `init`. Lookups hash the (tenant, address) pair with a per-table seed.
public struct IPv6HostTable: ~Copyable {
    /// One IPv6 host: 32 bytes, so that a record never straddles two cache lines (the records are
    /// 64-byte aligned).
    public struct Host: Sendable {
        public var high: UInt64 = 0
        public var low: UInt64 = 0
        public var tenant: UInt32 = 0
        /// BIB entries of this host (its reference count; static entries included).
        public var bindings: UInt32 = 0
        /// Sessions of this host.
        public var sessions: UInt32 = 0
        /// The next record in the hash chain (or in the free list) in the low 31 bits; bit 31: live.
        @usableFromInline var link: UInt32 = 0
        public init() {}
        @inlinable public var address: IPv6Address { IPv6Address(high: high, low: low) }
        @inlinable public var isLive: Bool { link & Host.liveBit != 0 }
        @inlinable var next: UInt32 {
            get { link & ~Host.liveBit }
            set { link = link & Host.liveBit | newValue }
        }
        @usableFromInline static let liveBit: UInt32 = 1 << 31
    }

    public let capacity: Int
    public let records: UnsafeMutablePointer<Host>
    /// Each host's new-session token bucket, by the same id (kept apart so that a record stays 32 bytes).
    public let newSessions: UnsafeMutablePointer<NewSessionBucket>
    @usableFromInline let buckets: UnsafeMutablePointer<UInt32>
    @usableFromInline let mask: UInt64
    @usableFromInline let seed: UInt64
    @usableFromInline var free: UInt32 = 0
    public private(set) var count = 0

    public init(capacity: Int, seed: UInt64) {
        precondition(capacity > 0 && capacity < 1 << 30)
        self.capacity = capacity
        self.seed = seed
        var n = 16
        while n < capacity { n <<= 1 }
        mask = UInt64(n - 1)
        buckets = .allocate(capacity: n)
        buckets.initialize(repeating: 0, count: n)
        records = UnsafeMutableRawPointer.allocate(byteCount: (capacity + 1) * MemoryLayout<Host>.stride, alignment: 64)
            .bindMemory(to: Host.self, capacity: capacity + 1)
        records.initialize(repeating: Host(), count: capacity + 1)
        newSessions = .allocate(capacity: capacity + 1)
        newSessions.initialize(repeating: NewSessionBucket(), count: capacity + 1)
        for i in stride(from: capacity, through: 1, by: -1) {
            records[i].next = free
            free = UInt32(i)
        }
    }

    deinit {
        buckets.deallocate()
        records.deallocate()
        newSessions.deallocate()
    }

    /// Bytes held by the table.
    public var memoryBytes: Int {
        (capacity + 1) * (MemoryLayout<Host>.stride + MemoryLayout<NewSessionBucket>.stride) + Int(mask + 1) * 4
    }

    public var isFull: Bool { free == 0 }

    @inlinable @inline(__always)
    func bucket(_ tenant: UInt32, _ a: IPv6Address) -> Int {
        Int(UInt64(hash(tenant: tenant, a)) & mask)
    }

    /// The (seeded) hash of a host's key, for ``lookup(hash:tenant:_:)`` and ``prefetchBucket(hash:)``.
    @inlinable @inline(__always)
    public func hash(tenant: UInt32 = 0, _ a: IPv6Address) -> UInt32 {
        KeyHash.hash(a.high, a.low ^ UInt64(tenant) &* 0x9E37_79B9, seed: seed)
    }

    /// The id of a host, or 0 when it has none.
    @inlinable @inline(__always)
    public func lookup(tenant: UInt32 = 0, _ a: IPv6Address) -> UInt32 {
        lookup(hash: hash(tenant: tenant, a), tenant: tenant, a)
    }

    /// As ``lookup(tenant:_:)`` with the key's hash already computed (a burst computed it to prefetch).
    @inlinable @inline(__always)
    public func lookup(hash h: UInt32, tenant: UInt32 = 0, _ a: IPv6Address) -> UInt32 {
        var id = buckets[Int(UInt64(h) & mask)]
        while id != 0 {
            let r = records + Int(id)
            if r.pointee.low == a.low && r.pointee.high == a.high && r.pointee.tenant == tenant { return id }
            id = r.pointee.link & ~Host.liveBit
        }
        return 0
    }

    /// Burst stage 1: starts loading the bucket of `hash`.
    @inlinable @inline(__always)
    public func prefetchBucket(hash h: UInt32) {
        Prefetch.read(UnsafeRawPointer(buckets + Int(UInt64(h) & mask)))
    }

    /// Burst stage 2: reads the bucket of `hash` (prefetched earlier) and starts loading the first record
    /// of its chain; returns that record's id (0 when the chain is empty). Only a hint: the chain may
    /// change before the lookup.
    @inlinable @inline(__always)
    public func prefetchFirstRecord(hash h: UInt32) -> UInt32 {
        let id = buckets[Int(UInt64(h) & mask)]
        if id != 0 { Prefetch.read(UnsafeRawPointer(records + Int(id))) }
        return id
    }

    /// Burst stage 3: whether record `id` (from ``prefetchFirstRecord(hash:)``) is the host `a`; when not,
    /// the lookup will walk the chain.
    @inlinable @inline(__always)
    public func recordMatches(_ id: UInt32, tenant: UInt32 = 0, _ a: IPv6Address) -> Bool {
        let r = records + Int(id)
        return r.pointee.low == a.low && r.pointee.high == a.high && r.pointee.tenant == tenant && r.pointee.isLive
    }

    /// Starts loading the record of host `id` (a burst that knows the id from a session record).
    @inlinable @inline(__always)
    public func prefetchRecord(_ id: UInt32) {
        Prefetch.read(UnsafeRawPointer(records + Int(id)))
    }

    /// The id of a host, made when it has none; nil when the table is full.
    public mutating func intern(tenant: UInt32 = 0, _ a: IPv6Address) -> UInt32? {
        let found = lookup(tenant: tenant, a)
        if found != 0 { return found }
        guard free != 0 else { return nil }
        let id = free
        free = records[Int(id)].next
        let b = bucket(tenant, a)
        var h = Host()
        h.high = a.high
        h.low = a.low
        h.tenant = tenant
        h.link = Host.liveBit | buckets[b]
        records[Int(id)] = h
        newSessions[Int(id)] = NewSessionBucket()
        buckets[b] = id
        count += 1
        return id
    }

    /// The address of a live host.
    @inlinable @inline(__always)
    public func address(_ id: UInt32) -> IPv6Address {
        let r = records + Int(id)
        return IPv6Address(high: r.pointee.high, low: r.pointee.low)
    }

    /// Forgets a host that has no BIB entries and no sessions left.
    public mutating func releaseIfUnused(_ id: UInt32) {
        guard id != 0 else { return }
        let h = records[Int(id)]
        guard h.isLive, h.bindings == 0, h.sessions == 0 else { return }
        let b = bucket(h.tenant, h.address)
        if buckets[b] == id {
            buckets[b] = h.next
        } else {
            var cur = buckets[b]
            while cur != 0 {
                let nxt = records[Int(cur)].next
                if nxt == id {
                    records[Int(cur)].next = h.next
                    break
                }
                cur = nxt
            }
        }
        records[Int(id)] = Host()
        records[Int(id)].next = free
        free = id
        count -= 1
    }
}
