/// What the first fragment of a datagram was translated to, so that later fragments (which carry no
/// transport header) get the same addresses (RFC 4787 REQ-13/14, RFC 6146 §3.5). Fixed capacity,
/// FIFO expiry; a flood fills this table and nothing else.
public struct FragmentTracker: ~Copyable {
    public struct Flow: Sendable {
        public var keyA: UInt64 = 0
        public var keyB: UInt64 = 0
        public var newSource: UInt32 = 0
        public var newDestination: UInt32 = 0
        public var tenant: UInt32 = 0
        public var toInside: Bool = false
        public var expires: UInt64 = 0
        @usableFromInline var fifoNext: UInt32 = 0
        public init() {}
    }

    @usableFromInline let flows: UnsafeMutablePointer<Flow>
    @usableFromInline let index: HashIndex
    public let capacity: Int
    @usableFromInline var free: UInt32 = 0
    @usableFromInline var fifoHead: UInt32 = 0
    @usableFromInline var fifoTail: UInt32 = 0
    public private(set) var count = 0
    @usableFromInline let seed: UInt64

    public init(capacity: Int, seed: UInt64) {
        self.capacity = capacity
        self.seed = seed
        flows = .allocate(capacity: capacity + 1)
        flows.initialize(repeating: Flow(), count: capacity + 1)
        index = HashIndex(capacity: capacity)
        for i in stride(from: capacity, through: 1, by: -1) {
            flows[i].fifoNext = free
            free = UInt32(i)
        }
    }

    deinit { flows.deallocate() }

    /// The key of a fragment: (source, destination, identification, protocol, direction).
    @inlinable public static func key(source: UInt32, destination: UInt32, identification: UInt16, proto: UInt8,
                                      inbound: Bool, tenant: UInt32 = 0) -> (UInt64, UInt64) {
        (UInt64(source) << 32 | UInt64(destination),
         UInt64(tenant) << 32 | UInt64(identification) << 16 | UInt64(proto) << 8 | (inbound ? 1 : 0))
    }

    public func lookup(keyA: UInt64, keyB: UInt64, now: UInt64) -> Flow? {
        let h = KeyHash.hash(keyA, keyB, seed: seed)
        var id = index.first(h)
        while id != 0 {
            if flows[Int(id)].keyA == keyA && flows[Int(id)].keyB == keyB {
                return flows[Int(id)].expires > now ? flows[Int(id)] : nil
            }
            id = index.next(id, hash: h)
        }
        return nil
    }

    /// Records a flow (or refreshes an existing one); false when the table is full of live flows.
    public mutating func record(_ flow: Flow, now: UInt64) -> Bool {
        expire(now: now)
        let h = KeyHash.hash(flow.keyA, flow.keyB, seed: seed)
        var id = index.first(h)
        while id != 0 {
            if flows[Int(id)].keyA == flow.keyA && flows[Int(id)].keyB == flow.keyB {
                // Keep the original expiry so the FIFO stays ordered.
                let next = flows[Int(id)].fifoNext, expires = flows[Int(id)].expires
                flows[Int(id)] = flow
                flows[Int(id)].fifoNext = next
                flows[Int(id)].expires = expires
                return true
            }
            id = index.next(id, hash: h)
        }
        guard free != 0 else { return false }
        id = free
        free = flows[Int(id)].fifoNext
        flows[Int(id)] = flow
        flows[Int(id)].fifoNext = 0
        index.insert(id, hash: h)
        if fifoTail != 0 { flows[Int(fifoTail)].fifoNext = id } else { fifoHead = id }
        fifoTail = id
        count += 1
        return true
    }

    /// Forgets flows whose time is up. All flows live equally long, so the FIFO head is the oldest.
    public mutating func expire(now: UInt64) {
        while fifoHead != 0 && flows[Int(fifoHead)].expires <= now {
            let id = fifoHead
            fifoHead = flows[Int(id)].fifoNext
            if fifoHead == 0 { fifoTail = 0 }
            let f = flows[Int(id)]
            index.remove(id, hash: KeyHash.hash(f.keyA, f.keyB, seed: seed))
            flows[Int(id)] = Flow()
            flows[Int(id)].fifoNext = free
            free = id
            count -= 1
        }
    }
}
