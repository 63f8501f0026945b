import CNATIntrinsics

/// Timer classes: each has its own idle timeout and its own list ordered by last use, so expiry
/// pops from the head in O(1) per session and never sweeps the table.
public enum TimerClass: UInt8, Sendable, CaseIterable {
    case udp = 0
    case tcpEstablished = 1
    case tcpTransitory = 2
    case icmp = 3
    case other = 4
}

/// One session: a mapping plus one remote endpoint. `via` is the remote as the inside host sees it
/// (differs from `remote` only for redirected flows). A session is 56 bytes in two parts: this record,
/// the 32 bytes an established UDP packet reads (two to a cache line, so a lookup touches one line), and
/// its ``SessionLinks`` (state, timer class, list links) in a parallel array, read when the TCP state
/// or the timer lists change.
///
/// The two keys are stored as the packets carry them. ``insideWire`` holds the inside and via addresses
/// exactly as bytes 12..<20 of an outbound packet hold its source and destination, ``insidePortsWire``
/// the two ports as bytes 20..<24 do; ``outsideWire`` and ``outsidePortsWire`` hold the remote and
/// outside endpoints as an inbound packet carries them. Each is the memory read as a native integer
/// (``WireKey``), so the fast path compares a packet with one load per key word and no byte swaps, and
/// the translated header of one direction is the other direction's key with its halves exchanged.
public struct SessionRecord: Sendable {
    /// Inside address, then via address (an outbound packet's source and destination), as on the wire.
    public var insideWire: UInt64 = 0
    /// Inside port, then via port, as on the wire.
    public var insidePortsWire: UInt32 = 0
    public var tenant: UInt32 = 0
    /// Remote address, then outside address (an inbound packet's source and destination), as on the wire.
    public var outsideWire: UInt64 = 0
    /// Remote port, then outside port, as on the wire.
    public var outsidePortsWire: UInt32 = 0
    public var proto: UInt8 = 0
    public var flags: UInt8 = 0
    /// The low 16 bits of the last use (seconds of engine time; the high bits are in ``SessionLinks``):
    /// enough to tell whether a packet is the first of a new second, which is when the session moves in
    /// its timer list (see ``SessionTable/touch(_:now:)``).
    @usableFromInline var seenLow: UInt16 = 0

    public init() {}

    public static let flagRedirected: UInt8 = 1
    /// Both FINs were seen: after this session ends, its port may be reused at once (RFC 6888 REQ-8).
    public static let flagCleanClose: UInt8 = 2
    /// The remote is one of the NAT's own outside addresses: its packets hairpin (set by the engine).
    public static let flagHairpin: UInt8 = 4
    /// An application-level gateway watches this session (issue 15): it never takes the fast path.
    public static let flagHelped: UInt8 = 8
    public static let flagLive: UInt8 = 0x80

    @inlinable public var isRedirected: Bool { flags & SessionRecord.flagRedirected != 0 }
    @inlinable public var isLive: Bool { flags & SessionRecord.flagLive != 0 }
    @inlinable public var isHelped: Bool { flags & SessionRecord.flagHelped != 0 }

    // Host-order views of the wire keys, for everything but the fast path.
    @inlinable public var insideAddress: UInt32 { get { WireKey.first(insideWire) } set { WireKey.setFirst(&insideWire, newValue) } }
    @inlinable public var viaAddress: UInt32 { get { WireKey.second(insideWire) } set { WireKey.setSecond(&insideWire, newValue) } }
    @inlinable public var remoteAddress: UInt32 { get { WireKey.first(outsideWire) } set { WireKey.setFirst(&outsideWire, newValue) } }
    @inlinable public var outsideAddress: UInt32 { get { WireKey.second(outsideWire) } set { WireKey.setSecond(&outsideWire, newValue) } }
    @inlinable public var insidePort: UInt16 { get { WireKey.first(insidePortsWire) } set { WireKey.setFirst(&insidePortsWire, newValue) } }
    @inlinable public var viaPort: UInt16 { get { WireKey.second(insidePortsWire) } set { WireKey.setSecond(&insidePortsWire, newValue) } }
    @inlinable public var remotePort: UInt16 { get { WireKey.first(outsidePortsWire) } set { WireKey.setFirst(&outsidePortsWire, newValue) } }
    @inlinable public var outsidePort: UInt16 { get { WireKey.second(outsidePortsWire) } set { WireKey.setSecond(&outsidePortsWire, newValue) } }
}

/// The rest of a session (24 bytes): what changes with TCP state and timers, and the lists it is on.
public struct SessionLinks: Sendable {
    /// The high 16 bits of the last use (see ``SessionRecord``).
    @usableFromInline var seenHigh: UInt16 = 0
    /// TCP state (``TCPState``) for TCP sessions.
    public var state: UInt8 = 0
    public var timerClass: UInt8 = 0
    @usableFromInline var timerPrev: UInt32 = 0
    @usableFromInline var timerNext: UInt32 = 0
    public var mapping: UInt32 = 0
    @usableFromInline var mapPrev: UInt32 = 0
    @usableFromInline var mapNext: UInt32 = 0

    public init() {}
}

/// Two header fields as they lie next to each other in a packet (network byte order), read as one
/// native integer: what `loadUnaligned(as: UInt64.self)` at a packet's source address gives for the
/// address pair, or `UInt32` at its source port for the port pair. Exchanging the halves (a rotation
/// by half the width, on any byte order) swaps the two fields, i.e. source and destination.
public enum WireKey {
    // Built with byte swaps and a final little-endian conversion rather than through memory, which
    // keeps the values in registers (taking a local's address would make the compiler guard the stack).
    @inlinable @inline(__always)
    public static func pair(_ a: UInt32, _ b: UInt32) -> UInt64 {
        UInt64(littleEndian: UInt64(a.byteSwapped) | UInt64(b.byteSwapped) << 32)
    }

    @inlinable @inline(__always)
    public static func pair(_ a: UInt16, _ b: UInt16) -> UInt32 {
        UInt32(littleEndian: UInt32(a.byteSwapped) | UInt32(b.byteSwapped) << 16)
    }

    @inlinable @inline(__always)
    public static func first(_ v: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: v.littleEndian).byteSwapped }
    @inlinable @inline(__always)
    public static func second(_ v: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: v.littleEndian >> 32).byteSwapped }
    @inlinable @inline(__always)
    public static func first(_ v: UInt32) -> UInt16 { UInt16(truncatingIfNeeded: v.littleEndian).byteSwapped }
    @inlinable @inline(__always)
    public static func second(_ v: UInt32) -> UInt16 { UInt16(truncatingIfNeeded: v.littleEndian >> 16).byteSwapped }

    @inlinable @inline(__always)
    public static func setFirst(_ v: inout UInt64, _ a: UInt32) { v = pair(a, second(v)) }
    @inlinable @inline(__always)
    public static func setSecond(_ v: inout UInt64, _ b: UInt32) { v = pair(first(v), b) }
    @inlinable @inline(__always)
    public static func setFirst(_ v: inout UInt32, _ a: UInt16) { v = pair(a, second(v)) }
    @inlinable @inline(__always)
    public static func setSecond(_ v: inout UInt32, _ b: UInt16) { v = pair(first(v), b) }

    /// The pair with its two fields exchanged (source ⇄ destination).
    @inlinable @inline(__always)
    public static func swapped(_ v: UInt64) -> UInt64 { v >> 32 | v << 32 }
    @inlinable @inline(__always)
    public static func swapped(_ v: UInt32) -> UInt32 { v >> 16 | v << 16 }
}

/// One mapping (BIB entry): an inside endpoint, qualified by remote address (and port) for
/// address-(and-port-)dependent mapping, bound to one outside endpoint. 36 bytes.
public struct MappingRecord: Sendable {
    public var insideAddress: UInt32 = 0
    public var outsideAddress: UInt32 = 0
    public var tenant: UInt32 = 0
    public var qualifierAddress: UInt32 = 0
    public var insidePort: UInt16 = 0
    public var outsidePort: UInt16 = 0
    public var qualifierPort: UInt16 = 0
    public var proto: UInt8 = 0
    public var flags: UInt8 = 0
    @usableFromInline var sessionHead: UInt32 = 0
    /// Static mappings: expiry second (0 = never). Held mappings: the second the port is free again.
    public var expiry: UInt32 = 0
    @usableFromInline var holdNext: UInt32 = 0

    public init() {}

    public static let flagStatic: UInt8 = 1
    public static let flagHeld: UInt8 = 2
    public static let flagOneToOne: UInt8 = 4
    public static let flagLive: UInt8 = 0x80

    @inlinable public var isStatic: Bool { flags & MappingRecord.flagStatic != 0 }
    @inlinable public var isHeld: Bool { flags & MappingRecord.flagHeld != 0 }
    @inlinable public var hasSessions: Bool { sessionHead != 0 }
}

/// Which mapping owns an outside endpoint (see ``SessionTable/endpointProbe``).
public struct EndpointProbe {
    @usableFromInline let chains: HashChains
    @usableFromInline let mappings: UnsafeMutablePointer<MappingRecord>
    @usableFromInline let seed: UInt64

    @inlinable init(chains: HashChains, mappings: UnsafeMutablePointer<MappingRecord>, seed: UInt64) {
        self.chains = chains
        self.mappings = mappings
        self.seed = seed
    }

    /// The mapping id (live or held) of the endpoint, or 0 when the port is free.
    @inlinable @inline(__always)
    public func lookup(proto: UInt8, outsideAddress: UInt32, outsidePort: UInt16) -> UInt32 {
        let h = SessionTable.outsideHash(proto, outsideAddress, outsidePort, 0, 0, seed: seed)
        var id = chains.first(h)
        while id != 0 {
            let m = mappings + Int(id)
            if m.pointee.outsideAddress == outsideAddress && m.pointee.outsidePort == outsidePort && m.pointee.proto == proto { return id }
            id = chains.next(id, hash: h)
        }
        return 0
    }
}

/// A host's new-session token bucket: fills at `rate` sessions per second up to `burst` sessions (a new
/// host starts full); each new session takes one. 8 bytes, no allocation.
public struct NewSessionBucket: Sendable {
    /// Credit in thousandths of a session.
    public var credit: UInt32 = 0
    /// When `credit` was last topped up, in milliseconds of the engine's clock (0: never, a new host).
    public var milliseconds: UInt32 = 0
    public init() {}

    /// Takes one new session's credit; whether there was enough.
    @inlinable
    public mutating func take(nowMilliseconds now: UInt32, rate: UInt32, burst: UInt32) -> Bool {
        let cap = burst &* 1000
        let t = now | 1  // 0 means "never"
        if milliseconds == 0 {
            credit = cap
        } else {
            let elapsed = t &- milliseconds
            // rate sessions per second = rate thousandths per millisecond; a jump of more than 2^31 ms
            // (the clock wrapped backwards, or 24 days) fills the bucket.
            let gained: UInt64 = elapsed >= 0x8000_0000 ? UInt64(cap) : UInt64(elapsed) &* UInt64(rate)
            credit = UInt32(min(UInt64(cap), UInt64(credit) &+ gained))
        }
        milliseconds = t
        guard credit >= 1000 else { return false }
        credit &-= 1000
        return true
    }
}

/// Per inside host (tenant, address) accounting for RFC 6888 per-subscriber limits.
public struct HostRecord: Sendable {
    public var address: UInt32 = 0
    public var tenant: UInt32 = 0
    public var sessions: UInt32 = 0
    public var ports: UInt32 = 0
    @usableFromInline var nextFree: UInt32 = 0
    /// New-session credit (RFC 6888 REQ-4's spirit; see ``NewSessionBucket``).
    public var newSessions = NewSessionBucket()

    /// Takes one new session's credit from ``newSessions``. Whether there was enough.
    @inlinable
    public mutating func takeNewSessionCredit(nowMilliseconds now: UInt32, rate: UInt32, burst: UInt32) -> Bool {
        newSessions.take(nowMilliseconds: now, rate: rate, burst: burst)
    }

    public init() {}

    @usableFromInline init(address: UInt32, tenant: UInt32, sessions: UInt32, ports: UInt32, nextFree: UInt32) {
        self.address = address
        self.tenant = tenant
        self.sessions = sessions
        self.ports = ports
        self.nextFree = nextFree
    }
}

/// The NAPT session table: sessions and mappings in preallocated slabs, each reachable from its inside
/// key and its outside key (like conntrack's two tuples), per-class idle lists, a FIFO of ports held
/// after release, and per-host counts. Fixed capacity; nothing allocates after `init`.
public struct SessionTable: ~Copyable {
    public let sessionCapacity: Int
    public let mappingCapacity: Int
    public let hostCapacity: Int
    public let sessions: UnsafeMutablePointer<SessionRecord>
    /// The second part of each session, by the same id.
    public let sessionLinks: UnsafeMutablePointer<SessionLinks>
    public let mappings: UnsafeMutablePointer<MappingRecord>
    public let hosts: UnsafeMutablePointer<HostRecord>
    @usableFromInline let sessionByInside: HashIndex
    @usableFromInline let sessionByOutside: HashIndex
    @usableFromInline let mappingByInside: HashIndex
    @usableFromInline let mappingByOutside: HashIndex
    @usableFromInline let hostIndex: HashIndex
    /// Timer list heads and tails, one pair per ``TimerClass``.
    @usableFromInline let timerHeads: UnsafeMutablePointer<UInt32>
    @usableFromInline let timerTails: UnsafeMutablePointer<UInt32>
    @usableFromInline let seed: UInt64
    @usableFromInline var freeSession: UInt32 = 0
    @usableFromInline var freeMapping: UInt32 = 0
    @usableFromInline var freeHost: UInt32 = 0
    public private(set) var sessionCount = 0
    public private(set) var mappingCount = 0
    public private(set) var heldCount = 0
    public private(set) var hostCount = 0
    @usableFromInline var holdHead: UInt32 = 0
    @usableFromInline var holdTail: UInt32 = 0

    public init(sessionCapacity: Int, mappingCapacity: Int? = nil, hostCapacity: Int? = nil, seed: UInt64) {
        precondition(sessionCapacity > 0)
        self.sessionCapacity = sessionCapacity
        self.mappingCapacity = mappingCapacity ?? sessionCapacity
        self.hostCapacity = hostCapacity ?? max(1024, min(sessionCapacity / 8, 1 << 20))
        self.seed = seed
        sessions = TableMemory.allocate(SessionRecord.self, count: sessionCapacity + 1)
        sessions.initialize(repeating: SessionRecord(), count: sessionCapacity + 1)
        sessionLinks = TableMemory.allocate(SessionLinks.self, count: sessionCapacity + 1)
        sessionLinks.initialize(repeating: SessionLinks(), count: sessionCapacity + 1)
        mappings = TableMemory.allocate(MappingRecord.self, count: self.mappingCapacity + 1)
        mappings.initialize(repeating: MappingRecord(), count: self.mappingCapacity + 1)
        hosts = TableMemory.allocate(HostRecord.self, count: self.hostCapacity + 1)
        hosts.initialize(repeating: HostRecord(), count: self.hostCapacity + 1)
        sessionByInside = HashIndex(capacity: sessionCapacity)
        sessionByOutside = HashIndex(capacity: sessionCapacity)
        mappingByInside = HashIndex(capacity: self.mappingCapacity)
        mappingByOutside = HashIndex(capacity: self.mappingCapacity)
        hostIndex = HashIndex(capacity: self.hostCapacity)
        timerHeads = .allocate(capacity: TimerClass.allCases.count)
        timerHeads.initialize(repeating: 0, count: TimerClass.allCases.count)
        timerTails = .allocate(capacity: TimerClass.allCases.count)
        timerTails.initialize(repeating: 0, count: TimerClass.allCases.count)
        // Free lists thread through the records (ids 1...capacity; 0 is "none").
        for i in stride(from: sessionCapacity, through: 1, by: -1) {
            sessionLinks[i].mapNext = freeSession
            freeSession = UInt32(i)
        }
        for i in stride(from: self.mappingCapacity, through: 1, by: -1) {
            mappings[i].holdNext = freeMapping
            freeMapping = UInt32(i)
        }
        for i in stride(from: self.hostCapacity, through: 1, by: -1) {
            hosts[i].nextFree = freeHost
            freeHost = UInt32(i)
        }
    }

    deinit {
        TableMemory.deallocate(sessions, count: sessionCapacity + 1)
        TableMemory.deallocate(sessionLinks, count: sessionCapacity + 1)
        TableMemory.deallocate(mappings, count: mappingCapacity + 1)
        TableMemory.deallocate(hosts, count: hostCapacity + 1)
        timerHeads.deallocate()
        timerTails.deallocate()
    }

    /// Bytes held by the table (slabs and indexes), for the bytes-per-session figure.
    public var memoryBytes: Int {
        (sessionCapacity + 1) * (MemoryLayout<SessionRecord>.stride + MemoryLayout<SessionLinks>.stride)
            + (mappingCapacity + 1) * MemoryLayout<MappingRecord>.stride
            + (hostCapacity + 1) * MemoryLayout<HostRecord>.stride
            + sessionByInside.memoryBytes + sessionByOutside.memoryBytes
            + mappingByInside.memoryBytes + mappingByOutside.memoryBytes + hostIndex.memoryBytes
    }

    public var isSessionTableFull: Bool { freeSession == 0 }
    public var isMappingTableFull: Bool { freeMapping == 0 }

    // MARK: Hashes

    /// Mapping keys (the session indexes hash the wire form: ``sessionHash(insideWire:ports:tenant:proto:)``).
    @inlinable @inline(__always)
    func insideHash(_ tenant: UInt32, _ proto: UInt8, _ a: UInt32, _ ap: UInt16, _ b: UInt32, _ bp: UInt16) -> UInt32 {
        KeyHash.hash(UInt64(a) << 32 | UInt64(b),
                     (UInt64(ap) << 48 | UInt64(bp) << 32 | UInt64(tenant)) ^ (UInt64(proto) << 56), seed: seed)
    }

    @inlinable @inline(__always)
    func outsideHash(_ proto: UInt8, _ a: UInt32, _ ap: UInt16, _ b: UInt32, _ bp: UInt16) -> UInt32 {
        Self.outsideHash(proto, a, ap, b, bp, seed: ~seed)
    }

    @inlinable @inline(__always)
    static func outsideHash(_ proto: UInt8, _ a: UInt32, _ ap: UInt16, _ b: UInt32, _ bp: UInt16, seed: UInt64) -> UInt32 {
        KeyHash.hash(UInt64(a) << 32 | UInt64(b), UInt64(ap) << 48 | UInt64(bp) << 32 | UInt64(proto), seed: seed)
    }

    /// The session index hash of an inside key in wire form (``SessionRecord/insideWire``).
    @inlinable @inline(__always)
    public func sessionHash(insideWire w: UInt64, ports: UInt32, tenant: UInt32, proto: UInt8) -> UInt32 {
        KeyHash.hash(w, (UInt64(tenant) << 32 | UInt64(ports)) ^ (UInt64(proto) << 56), seed: seed)
    }

    /// The index hashes of a stored session (insert and remove must agree).
    @inlinable @inline(__always)
    func insideIndexHash(_ s: SessionRecord) -> UInt32 {
        sessionHash(insideWire: s.insideWire, ports: s.insidePortsWire, tenant: s.tenant, proto: s.proto)
    }

    @inlinable @inline(__always)
    func outsideIndexHash(_ s: SessionRecord) -> UInt32 {
        sessionHash(outsideWire: s.outsideWire, ports: s.outsidePortsWire, proto: s.proto)
    }

    /// The session index hash of an outside key in wire form (``SessionRecord/outsideWire``).
    @inlinable @inline(__always)
    public func sessionHash(outsideWire w: UInt64, ports: UInt32, proto: UInt8) -> UInt32 {
        KeyHash.hash(w, UInt64(proto) << 32 | UInt64(ports), seed: ~seed)
    }

    // MARK: Session lookups (the fast path)

    /// The session for a packet from the inside: (tenant, proto, inside endpoint, destination as seen inside).
    @inlinable @inline(__always)
    public func lookupFromInside(tenant: UInt32, proto: UInt8, insideAddress: UInt32, insidePort: UInt16,
                                 remoteAddress: UInt32, remotePort: UInt16) -> UInt32 {
        let w = WireKey.pair(insideAddress, remoteAddress), p = WireKey.pair(insidePort, remotePort)
        return lookup(insideWire: w, ports: p, tenant: tenant, proto: proto,
                      hash: sessionHash(insideWire: w, ports: p, tenant: tenant, proto: proto))
    }

    /// As ``lookupFromInside(tenant:proto:insideAddress:insidePort:remoteAddress:remotePort:)`` with the key's
    /// hash already computed (by ``prefetchFromInside(tenant:proto:insideAddress:insidePort:remoteAddress:remotePort:)``).
    @inlinable @inline(__always)
    public func lookupFromInside(hash h: UInt32, tenant: UInt32, proto: UInt8, insideAddress: UInt32, insidePort: UInt16,
                                 remoteAddress: UInt32, remotePort: UInt16) -> UInt32 {
        lookup(insideWire: WireKey.pair(insideAddress, remoteAddress), ports: WireKey.pair(insidePort, remotePort),
               tenant: tenant, proto: proto, hash: h)
    }

    /// The session whose inside key is, in wire form, `w` (addresses) and `ports`; `hash` from
    /// ``sessionHash(insideWire:ports:tenant:proto:)``. 0 when none.
    @inlinable @inline(__always)
    public func lookup(insideWire w: UInt64, ports: UInt32, tenant: UInt32, proto: UInt8, hash h: UInt32) -> UInt32 {
        var id = sessionByInside.first(h)
        while id != 0 {
            let s = sessions + Int(id)
            if s.pointee.insideWire == w && s.pointee.insidePortsWire == ports && s.pointee.proto == proto && s.pointee.tenant == tenant {
                return id
            }
            id = sessionByInside.next(id, hash: h)
        }
        return 0
    }

    /// The session for a packet from the outside: (proto, outside endpoint, remote endpoint).
    @inlinable @inline(__always)
    public func lookupFromOutside(proto: UInt8, outsideAddress: UInt32, outsidePort: UInt16,
                                  remoteAddress: UInt32, remotePort: UInt16) -> UInt32 {
        let w = WireKey.pair(remoteAddress, outsideAddress), p = WireKey.pair(remotePort, outsidePort)
        return lookup(outsideWire: w, ports: p, proto: proto, hash: sessionHash(outsideWire: w, ports: p, proto: proto))
    }

    /// As ``lookupFromOutside(proto:outsideAddress:outsidePort:remoteAddress:remotePort:)`` with the hash computed.
    @inlinable @inline(__always)
    public func lookupFromOutside(hash h: UInt32, proto: UInt8, outsideAddress: UInt32, outsidePort: UInt16,
                                  remoteAddress: UInt32, remotePort: UInt16) -> UInt32 {
        lookup(outsideWire: WireKey.pair(remoteAddress, outsideAddress), ports: WireKey.pair(remotePort, outsidePort),
               proto: proto, hash: h)
    }

    /// The session whose outside key is, in wire form, `w` (remote, outside address) and `ports`; `hash`
    /// from ``sessionHash(outsideWire:ports:proto:)``. 0 when none.
    @inlinable @inline(__always)
    public func lookup(outsideWire w: UInt64, ports: UInt32, proto: UInt8, hash h: UInt32) -> UInt32 {
        var id = sessionByOutside.first(h)
        while id != 0 {
            let s = sessions + Int(id)
            if s.pointee.outsideWire == w && s.pointee.outsidePortsWire == ports && s.pointee.proto == proto {
                return id
            }
            id = sessionByOutside.next(id, hash: h)
        }
        return 0
    }

    // MARK: Prefetching (a burst looks up many packets: start every memory access before waiting on one)

    /// Stage 1 of a burst lookup from the inside: the key's hash, with its index bucket prefetched.
    @inlinable @inline(__always)
    public func prefetchFromInside(tenant: UInt32, proto: UInt8, insideAddress: UInt32, insidePort: UInt16,
                                   remoteAddress: UInt32, remotePort: UInt16) -> UInt32 {
        prefetchBucket(insideHash: sessionHash(insideWire: WireKey.pair(insideAddress, remoteAddress),
                                               ports: WireKey.pair(insidePort, remotePort), tenant: tenant, proto: proto))
    }

    /// Stage 1 of a burst lookup from the outside.
    @inlinable @inline(__always)
    public func prefetchFromOutside(proto: UInt8, outsideAddress: UInt32, outsidePort: UInt16,
                                    remoteAddress: UInt32, remotePort: UInt16) -> UInt32 {
        prefetchBucket(outsideHash: sessionHash(outsideWire: WireKey.pair(remoteAddress, outsideAddress),
                                                ports: WireKey.pair(remotePort, outsidePort), proto: proto))
    }

    /// Prefetches the inside index bucket of `h`; returns `h`.
    @inlinable @inline(__always)
    public func prefetchBucket(insideHash h: UInt32) -> UInt32 {
        nat_prefetch(sessionByInside.bucketAddress(h))
        return h
    }

    /// Prefetches the outside index bucket of `h`; returns `h`.
    @inlinable @inline(__always)
    public func prefetchBucket(outsideHash h: UInt32) -> UInt32 {
        nat_prefetch(sessionByOutside.bucketAddress(h))
        return h
    }

    /// Stage 2: the bucket is (probably) in cache now; prefetch the first candidate session record.
    /// Returns its id (0: none), a hint only — the lookup checks the key.
    @inlinable @inline(__always) @discardableResult
    public func prefetchSession(insideHash h: UInt32) -> UInt32 {
        let id = sessionByInside.first(h)
        prefetchRecord(id)
        return id
    }

    @inlinable @inline(__always) @discardableResult
    public func prefetchSession(outsideHash h: UInt32) -> UInt32 {
        let id = sessionByOutside.first(h)
        prefetchRecord(id)
        return id
    }

    @inlinable @inline(__always)
    func prefetchRecord(_ id: UInt32) {
        guard id != 0 else { return }
        // 32-byte records in a page-aligned array never straddle a cache line.
        nat_prefetch_write(UnsafeRawPointer(sessions + Int(id)))
    }

    // MARK: Mapping lookups

    @inlinable
    public func lookupMapping(tenant: UInt32, proto: UInt8, insideAddress: UInt32, insidePort: UInt16,
                              qualifierAddress: UInt32, qualifierPort: UInt16) -> UInt32 {
        let h = insideHash(tenant, proto, insideAddress, insidePort, qualifierAddress, qualifierPort)
        var id = mappingByInside.first(h)
        while id != 0 {
            let m = mappings[Int(id)]
            if m.insideAddress == insideAddress && m.insidePort == insidePort && m.qualifierAddress == qualifierAddress
                && m.qualifierPort == qualifierPort && m.proto == proto && m.tenant == tenant {
                return id
            }
            id = mappingByInside.next(id, hash: h)
        }
        return 0
    }

    /// The mapping (live or held) that owns an outside endpoint: outside ports are never overloaded.
    @inlinable
    public func lookupMapping(proto: UInt8, outsideAddress: UInt32, outsidePort: UInt16) -> UInt32 {
        endpointProbe.lookup(proto: proto, outsideAddress: outsideAddress, outsidePort: outsidePort)
    }

    /// A copyable probe for ``lookupMapping(proto:outsideAddress:outsidePort:)``, for a port allocator
    /// that tries many ports: holding the probe (pointers, valid for the table's lifetime) avoids
    /// borrowing the whole table for every try.
    @inlinable public var endpointProbe: EndpointProbe {
        EndpointProbe(chains: mappingByOutside.chains, mappings: mappings, seed: ~seed)
    }

    // MARK: Mappings

    /// Creates a mapping; nil when the mapping slab is full. `indexInside` false for a second static
    /// mapping of the same inside endpoint (the first one is the one outbound traffic uses).
    public mutating func createMapping(_ record: MappingRecord, indexInside: Bool = true) -> UInt32? {
        guard freeMapping != 0 else { return nil }
        let id = freeMapping
        freeMapping = mappings[Int(id)].holdNext
        var m = record
        m.flags |= MappingRecord.flagLive
        m.sessionHead = 0
        m.holdNext = 0
        mappings[Int(id)] = m
        if indexInside {
            mappingByInside.insert(id, hash: insideHash(m.tenant, m.proto, m.insideAddress, m.insidePort, m.qualifierAddress, m.qualifierPort))
        }
        mappingByOutside.insert(id, hash: outsideHash(m.proto, m.outsideAddress, m.outsidePort, 0, 0))
        mappingCount += 1
        return id
    }

    /// Ends a mapping that has no sessions left. With `holdUntil` > 0 its outside port stays taken until
    /// then (RFC 6888 REQ-8); otherwise the port is free at once.
    public mutating func releaseMapping(_ id: UInt32, holdUntil: UInt32) {
        let m = mappings[Int(id)]
        precondition(m.sessionHead == 0)
        mappingByInside.remove(id, hash: insideHash(m.tenant, m.proto, m.insideAddress, m.insidePort, m.qualifierAddress, m.qualifierPort))
        if holdUntil > 0 {
            mappings[Int(id)].flags = MappingRecord.flagLive | MappingRecord.flagHeld
            mappings[Int(id)].expiry = holdUntil
            mappings[Int(id)].holdNext = 0
            if holdTail != 0 { mappings[Int(holdTail)].holdNext = id } else { holdHead = id }
            holdTail = id
            heldCount += 1
        } else {
            freeMappingSlot(id)
        }
        mappingCount -= 1
    }

    mutating func freeMappingSlot(_ id: UInt32) {
        let m = mappings[Int(id)]
        mappingByOutside.remove(id, hash: outsideHash(m.proto, m.outsideAddress, m.outsidePort, 0, 0))
        mappings[Int(id)] = MappingRecord()
        mappings[Int(id)].holdNext = freeMapping
        freeMapping = id
    }

    /// Frees held ports whose hold time has passed; returns how many.
    @discardableResult
    public mutating func releaseHeldPorts(now: UInt32) -> Int {
        var n = 0
        while holdHead != 0 && mappings[Int(holdHead)].expiry <= now {
            let id = holdHead
            holdHead = mappings[Int(id)].holdNext
            if holdHead == 0 { holdTail = 0 }
            freeMappingSlot(id)
            heldCount -= 1
            n += 1
        }
        return n
    }

    /// The first session of a mapping (0 when none); walk on with ``nextSession(inMapping:)``.
    @inlinable
    public func firstSession(ofMapping id: UInt32) -> UInt32 { mappings[Int(id)].sessionHead }
    @inlinable
    public func nextSession(inMapping sid: UInt32) -> UInt32 { sessionLinks[Int(sid)].mapNext }

    /// Whether the mapping has a session with this remote address (address-dependent filtering).
    @inlinable
    public func mappingHasSession(_ id: UInt32, remoteAddress: UInt32) -> Bool {
        var s = mappings[Int(id)].sessionHead
        while s != 0 {
            if sessions[Int(s)].remoteAddress == remoteAddress { return true }
            s = sessionLinks[Int(s)].mapNext
        }
        return false
    }

    // MARK: Sessions

    /// Creates a session under `mapping` toward `remote` (seen from inside as `via`); nil when full.
    public mutating func createSession(mapping mid: UInt32, remoteAddress: UInt32, remotePort: UInt16,
                                       viaAddress: UInt32, viaPort: UInt16, timerClass: TimerClass,
                                       state: UInt8, now: UInt32) -> UInt32? {
        guard freeSession != 0 else { return nil }
        let id = freeSession
        freeSession = sessionLinks[Int(id)].mapNext
        let m = mappings[Int(mid)]
        var s = SessionRecord()
        s.insideAddress = m.insideAddress
        s.insidePort = m.insidePort
        s.outsideAddress = m.outsideAddress
        s.outsidePort = m.outsidePort
        s.tenant = m.tenant
        s.proto = m.proto
        s.remoteAddress = remoteAddress
        s.remotePort = remotePort
        s.viaAddress = viaAddress
        s.viaPort = viaPort
        if viaAddress != remoteAddress || viaPort != remotePort { s.flags |= SessionRecord.flagRedirected }
        s.flags |= SessionRecord.flagLive
        var l = SessionLinks()
        l.state = state
        l.timerClass = timerClass.rawValue
        l.mapping = mid
        l.mapPrev = 0
        l.mapNext = m.sessionHead
        sessions[Int(id)] = s
        sessionLinks[Int(id)] = l
        setLastSeen(id, now)
        if m.sessionHead != 0 { sessionLinks[Int(m.sessionHead)].mapPrev = id }
        mappings[Int(mid)].sessionHead = id
        sessionByInside.insert(id, hash: insideIndexHash(s))
        sessionByOutside.insert(id, hash: outsideIndexHash(s))
        timerAppend(id, timerClass.rawValue)
        sessionCount += 1
        return id
    }

    /// Removes a session; returns its mapping id (which may now have no sessions).
    @discardableResult
    public mutating func removeSession(_ id: UInt32) -> UInt32 {
        let s = sessions[Int(id)], l = sessionLinks[Int(id)]
        sessionByInside.remove(id, hash: insideIndexHash(s))
        sessionByOutside.remove(id, hash: outsideIndexHash(s))
        timerUnlink(id, l.timerClass)
        if l.mapPrev != 0 { sessionLinks[Int(l.mapPrev)].mapNext = l.mapNext } else { mappings[Int(l.mapping)].sessionHead = l.mapNext }
        if l.mapNext != 0 { sessionLinks[Int(l.mapNext)].mapPrev = l.mapPrev }
        sessions[Int(id)] = SessionRecord()
        sessionLinks[Int(id)] = SessionLinks()
        sessionLinks[Int(id)].mapNext = freeSession
        freeSession = id
        sessionCount -= 1
        return l.mapping
    }

    /// The last use of a session, in whole seconds of engine time.
    @inlinable @inline(__always)
    public func lastSeen(_ id: UInt32) -> UInt32 {
        UInt32(sessionLinks[Int(id)].seenHigh) << 16 | UInt32(sessions[Int(id)].seenLow)
    }

    @inlinable @inline(__always)
    mutating func setLastSeen(_ id: UInt32, _ now: UInt32) {
        sessions[Int(id)].seenLow = UInt16(truncatingIfNeeded: now)
        sessionLinks[Int(id)].seenHigh = UInt16(truncatingIfNeeded: now >> 16)
    }

    /// Whether ``touch(_:now:)`` must compare the high 16 bits of the last use too. With every idle
    /// timeout under 65 536 s (the defaults are at most 7 440 s), a session whose low 16 bits equal the
    /// current second's was used this very second: it would have expired before the low bits came round
    /// again (given ``NAPT44``'s `expire` runs, as it should, every second or so), so a packet of an
    /// established flow reads only the session's first 32 bytes. Engines clear it when their timeouts
    /// allow; it is on by default, which is always exact.
    public var refreshReadsHighBits = true

    /// Marks a session used at `now`. It moves to the tail of its idle list only when the second changed,
    /// so a busy session costs one compare per packet.
    @inlinable @inline(__always)
    public mutating func touch(_ id: UInt32, now: UInt32) {
        let s = sessions + Int(id)
        let low = UInt16(truncatingIfNeeded: now), high = UInt16(truncatingIfNeeded: now >> 16)
        if s.pointee.seenLow != low || (refreshReadsHighBits && sessionLinks[Int(id)].seenHigh != high) {
            s.pointee.seenLow = low
            let l = sessionLinks + Int(id)
            l.pointee.seenHigh = high
            let c = l.pointee.timerClass
            if timerTails[Int(c)] != id {
                timerUnlink(id, c)
                timerAppend(id, c)
            }
        }
    }

    /// Moves a session to another timer class (a TCP state change), refreshing it.
    public mutating func setTimerClass(_ id: UInt32, _ c: TimerClass, now: UInt32) {
        let old = sessionLinks[Int(id)].timerClass
        timerUnlink(id, old)
        sessionLinks[Int(id)].timerClass = c.rawValue
        setLastSeen(id, now)
        timerAppend(id, c.rawValue)
    }

    /// The least recently used session of a class (0 when none).
    @inlinable public func oldest(_ c: TimerClass) -> UInt32 { timerHeads[Int(c.rawValue)] }

    @usableFromInline mutating func timerAppend(_ id: UInt32, _ c: UInt8) {
        let tail = timerTails[Int(c)]
        sessionLinks[Int(id)].timerPrev = tail
        sessionLinks[Int(id)].timerNext = 0
        if tail != 0 { sessionLinks[Int(tail)].timerNext = id } else { timerHeads[Int(c)] = id }
        timerTails[Int(c)] = id
    }

    @usableFromInline mutating func timerUnlink(_ id: UInt32, _ c: UInt8) {
        let p = sessionLinks[Int(id)].timerPrev, n = sessionLinks[Int(id)].timerNext
        if p != 0 { sessionLinks[Int(p)].timerNext = n } else { timerHeads[Int(c)] = n }
        if n != 0 { sessionLinks[Int(n)].timerPrev = p } else { timerTails[Int(c)] = p }
        sessionLinks[Int(id)].timerPrev = 0
        sessionLinks[Int(id)].timerNext = 0
    }

    // MARK: Hosts

    @inlinable @inline(__always)
    func hostHash(_ tenant: UInt32, _ addr: UInt32) -> UInt32 {
        KeyHash.hash(UInt64(tenant) << 32 | UInt64(addr), 0x686F_7374, seed: seed)
    }

    /// The host record for an inside host, or 0.
    @inlinable
    public func lookupHost(tenant: UInt32, address: UInt32) -> UInt32 {
        let h = hostHash(tenant, address)
        var id = hostIndex.first(h)
        while id != 0 {
            if hosts[Int(id)].address == address && hosts[Int(id)].tenant == tenant { return id }
            id = hostIndex.next(id, hash: h)
        }
        return 0
    }

    /// The host record, created if missing; nil when the host table is full.
    public mutating func host(tenant: UInt32, address: UInt32) -> UInt32? {
        let found = lookupHost(tenant: tenant, address: address)
        if found != 0 { return found }
        guard freeHost != 0 else { return nil }
        let id = freeHost
        freeHost = hosts[Int(id)].nextFree
        hosts[Int(id)] = HostRecord(address: address, tenant: tenant, sessions: 0, ports: 0, nextFree: 0)
        hostIndex.insert(id, hash: hostHash(tenant, address))
        hostCount += 1
        return id
    }

    /// Drops a host record once it counts nothing.
    public mutating func releaseHostIfIdle(_ id: UInt32) {
        let h = hosts[Int(id)]
        guard h.sessions == 0, h.ports == 0 else { return }
        hostIndex.remove(id, hash: hostHash(h.tenant, h.address))
        hosts[Int(id)] = HostRecord()
        hosts[Int(id)].nextFree = freeHost
        freeHost = id
        hostCount -= 1
    }
}
