import NATCore
import NATWire

/// One IPv6 host pinned to one IPv4 pool address for good (protomask's `Static = [{ v4, v6 }]`).
public struct StaticAddressMapping: Sendable, Hashable, CustomStringConvertible {
    public var ipv4: IPv4Address
    public var ipv6: IPv6Address
    public init(ipv4: IPv4Address, ipv6: IPv6Address) {
        self.ipv4 = ipv4
        self.ipv6 = ipv6
    }
    public var description: String { "\(ipv6) <-> \(ipv4)" }
}

/// What an ``AddressPool`` hands out and how long it keeps it.
public struct AddressPoolConfiguration: Sendable, Equatable {
    /// The IPv4 prefixes whose addresses are handed out. As protomask (ipnet's `hosts()`), a prefix
    /// shorter than /31 does not hand out its first (network) and last (broadcast) address.
    public var prefixes: [IPv4Prefix]
    /// A dynamic reservation ends after this many seconds without a packet either way (protomask's
    /// `MaxIdleDuration`, default 7200).
    public var maxIdleSeconds: UInt32 = 7200
    /// Pairs that are reserved from the start and never reclaimed; each IPv4 address must be in the pool.
    public var staticMappings: [StaticAddressMapping] = []
    /// Seed of the IPv6 → slot hash (per table, so outside hosts cannot aim at one chain).
    public var hashSeed: UInt64 = 0x6A09_E667_F3BC_C908

    /// The most addresses a pool may hold (a /12): the tables are preallocated, 40 bytes per address.
    public static let maximumAddresses = 1 << 20
    /// The longest idle time accepted (about 34 years).
    public static let maximumIdleSeconds: UInt32 = 1 << 30

    public init(prefixes: [IPv4Prefix], maxIdleSeconds: UInt32 = 7200, staticMappings: [StaticAddressMapping] = []) {
        self.prefixes = prefixes
        self.maxIdleSeconds = maxIdleSeconds
        self.staticMappings = staticMappings
    }

    /// The addresses of `prefix` that the pool hands out (first and count).
    public static func usableRange(of prefix: IPv4Prefix) -> (first: IPv4Address, count: UInt64) {
        if prefix.length >= 31 { return (prefix.address, prefix.count) }
        return (IPv4Address(prefix.address.rawValue &+ 1), prefix.count - 2)
    }

    /// The number of addresses the pool hands out (static ones included).
    public var addressCount: UInt64 { prefixes.reduce(0) { $0 + Self.usableRange(of: $1).count } }

    /// Whether `a` is one of the pool's usable addresses.
    public func isUsable(_ a: IPv4Address) -> Bool {
        prefixes.contains { p in
            let (first, n) = Self.usableRange(of: p)
            return a.rawValue >= first.rawValue && UInt64(a.rawValue - first.rawValue) < n
        }
    }

    /// Checks the configuration as a whole; the error names the key and what is wrong.
    public func validate() throws(ConfigurationError) {
        guard !prefixes.isEmpty else {
            throw ConfigurationError(key: "prefixes", problem: "is empty: give at least one IPv4 prefix or address")
        }
        for (i, p) in prefixes.enumerated() {
            for (j, o) in prefixes.enumerated() where j > i && (o.contains(p.address) || p.contains(o.address)) {
                throw ConfigurationError(key: "prefixes[\(j)]", problem: "\(o) overlaps \(p)")
            }
        }
        let n = addressCount
        guard n <= UInt64(Self.maximumAddresses) else {
            throw ConfigurationError(key: "prefixes", problem: "hold \(n) addresses; at most \(Self.maximumAddresses) (a /12) are supported")
        }
        guard maxIdleSeconds >= 1, maxIdleSeconds <= Self.maximumIdleSeconds else {
            throw ConfigurationError(key: "max_idle", problem: "is \(maxIdleSeconds) s; it must be between 1 and \(Self.maximumIdleSeconds)")
        }
        for (i, s) in staticMappings.enumerated() {
            guard isUsable(s.ipv4) else {
                let why = prefixes.contains { $0.contains(s.ipv4) } ? "is the network or broadcast address of its pool prefix" : "is not in the pool"
                throw ConfigurationError(key: "static[\(i)].v4", problem: "\(s.ipv4) \(why)")
            }
            for (j, t) in staticMappings.enumerated() where j < i {
                if t.ipv4 == s.ipv4 { throw ConfigurationError(key: "static[\(i)].v4", problem: "\(s.ipv4) is already mapped by static[\(j)]") }
                if t.ipv6 == s.ipv6 { throw ConfigurationError(key: "static[\(i)].v6", problem: "\(s.ipv6) is already mapped by static[\(j)]") }
            }
        }
    }
}


/// One reservation as the control plane and the state file see it.
public struct AddressReservation: Sendable, Hashable, CustomStringConvertible {
    public var ipv4: IPv4Address
    public var ipv6: IPv6Address
    /// Seconds since the last packet either way.
    public var idleSeconds: UInt32
    public var isStatic: Bool

    public init(ipv4: IPv4Address, ipv6: IPv6Address, idleSeconds: UInt32, isStatic: Bool = false) {
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.idleSeconds = idleSeconds
        self.isStatic = isStatic
    }

    public var description: String { "\(ipv6) <-> \(ipv4) idle=\(idleSeconds)s\(isStatic ? " static" : "")" }
}

/// What ``AddressPool/restore(_:now:)`` did with one saved reservation.
public enum RestoreOutcome: Sendable, Equatable {
    case restored
    /// The same pair is already there (a static mapping, or restored twice).
    case alreadyPresent
    /// Idle for at least the configured maximum: it would have expired.
    case expired
    /// The IPv4 address is no longer a usable pool address (the pool changed).
    case notInPool
    /// The IPv4 or the IPv6 address is already held by another pair (a static mapping now, or a
    /// reservation made since).
    case conflict
}

/// protomask's 1:1 address pool: every IPv6 host that talks through the NAT64 gets a whole IPv4
/// address of its own, first come first served, and keeps it until it has been idle for
/// ``AddressPoolConfiguration/maxIdleSeconds``; static mappings pin chosen pairs and never expire.
///
/// Tables are preallocated at `init`: a slot per usable pool address (IPv6 owner, last use, list links)
/// and a hash index from IPv6 address to slot. IPv6 → IPv4 is one hash probe; IPv4 → IPv6 is an
/// offset into the slot array (one range check per pool prefix). Free slots form a FIFO (an address
/// that was just released is handed out last); dynamic reservations form a list ordered by last use,
/// so expiry pops from its head and never sweeps the table. Nothing allocates after `init`.
///
/// When every address is taken, a new IPv6 host is refused with ``DropReason/poolExhausted``
/// (RFC 6146 §3.5.1.1: no IPv4 address can be allocated; the translator answers with ICMPv6
/// Destination Unreachable, code 3 Address Unreachable). Live reservations are never evicted
/// (RFC 6888 REQ-11's spirit); an expired one is reclaimed on demand even between ``expire(now:)`` calls.
public struct AddressPool: ~Copyable {
    @usableFromInline struct Slot {
        @usableFromInline var ipv6: IPv6Address = .any
        /// Last use, in pool ticks (seconds of engine time plus ``AddressPool/tickBias``).
        @usableFromInline var lastSeen: UInt32 = 0
        @usableFromInline var prev: UInt32 = 0
        @usableFromInline var next: UInt32 = 0
        @usableFromInline var state: UInt8 = Slot.free
        @usableFromInline static let free: UInt8 = 0
        @usableFromInline static let dynamic: UInt8 = 1
        @usableFromInline static let pinned: UInt8 = 2
    }

    /// Added to `now.seconds` so that a restored reservation can be dated before the clock's zero.
    @usableFromInline static let tickBias: UInt32 = AddressPoolConfiguration.maximumIdleSeconds

    public let configuration: AddressPoolConfiguration
    /// Usable addresses (slots 1...capacity; slot 0 is the lists' sentinel).
    public let capacity: Int
    @usableFromInline let slots: UnsafeMutablePointer<Slot>
    @usableFromInline let byIPv6: HashIndex
    /// Per prefix: first usable address, usable count, first slot, network address and mask.
    @usableFromInline let ranges: UnsafeMutablePointer<(first: UInt32, count: UInt32, slot: UInt32, network: UInt32, mask: UInt32)>
    @usableFromInline let rangeCount: Int
    @usableFromInline let seed: UInt64
    @usableFromInline let maxIdle: UInt32
    @usableFromInline var freeHead: UInt32 = 0
    @usableFromInline var freeTail: UInt32 = 0
    @usableFromInline var idleHead: UInt32 = 0
    @usableFromInline var idleTail: UInt32 = 0
    public private(set) var dynamicCount = 0
    public private(set) var staticCount = 0
    /// Reservations made (dynamic) and reclaimed after their idle time, since `init`.
    public private(set) var reservationsMade: UInt64 = 0
    public private(set) var reservationsExpired: UInt64 = 0

    /// Builds the tables; throws when `configuration.validate()` does.
    public init(configuration: AddressPoolConfiguration) throws(ConfigurationError) {
        try configuration.validate()
        self.configuration = configuration
        let n = Int(configuration.addressCount)
        capacity = n
        seed = configuration.hashSeed
        maxIdle = configuration.maxIdleSeconds
        slots = .allocate(capacity: n + 1)
        slots.initialize(repeating: Slot(), count: n + 1)
        byIPv6 = HashIndex(capacity: max(n, 1))
        rangeCount = configuration.prefixes.count
        ranges = .allocate(capacity: rangeCount)
        var slot: UInt32 = 1
        for (i, p) in configuration.prefixes.enumerated() {
            let (first, count) = AddressPoolConfiguration.usableRange(of: p)
            ranges[i] = (first.rawValue, UInt32(count), slot, p.address.rawValue, p.mask)
            slot &+= UInt32(count)
        }
        // Every slot starts free, in address order (first come, first served from the lowest).
        for s in 1...n { pushFree(UInt32(s)) }
        for m in configuration.staticMappings {
            let s = slotIndex(m.ipv4)
            unlinkFree(s)
            slots[Int(s)].state = Slot.pinned
            slots[Int(s)].ipv6 = m.ipv6
            byIPv6.insert(s, hash: hash(m.ipv6))
            staticCount += 1
        }
    }

    deinit {
        slots.deinitialize(count: capacity + 1)
        slots.deallocate()
        ranges.deallocate()
    }

    /// Bytes the tables hold.
    public var memoryBytes: Int { (capacity + 1) * MemoryLayout<Slot>.stride + byIPv6.memoryBytes }

    /// Live reservations, static ones included.
    public var reservationCount: Int { dynamicCount + staticCount }
    /// Addresses still free to hand out.
    public var freeCount: Int { capacity - dynamicCount - staticCount }

    // MARK: Lookups (per packet)

    @inlinable @inline(__always)
    func hash(_ a: IPv6Address) -> UInt32 { KeyHash.hash(a.high, a.low, seed: seed) }

    @inlinable @inline(__always)
    static func tick(_ now: Timestamp) -> UInt32 { now.seconds &+ tickBias }

    /// The slot of a usable pool address, or 0.
    @inlinable @inline(__always)
    func slotIndex(_ a: IPv4Address) -> UInt32 {
        for i in 0..<rangeCount {
            let r = ranges[i]
            let off = a.rawValue &- r.first
            if off < r.count { return r.slot &+ off }
        }
        return 0
    }

    /// The IPv4 address of slot `s`.
    @inlinable
    func address(ofSlot s: UInt32) -> IPv4Address {
        var i = rangeCount - 1
        while i > 0 && ranges[i].slot > s { i -= 1 }
        return IPv4Address(ranges[i].first &+ (s &- ranges[i].slot))
    }

    @inlinable @inline(__always)
    func findSlot(_ v6: IPv6Address) -> UInt32 {
        let h = hash(v6)
        var id = byIPv6.first(h)
        while id != 0 {
            if slots[Int(id)].ipv6 == v6 { return id }
            id = byIPv6.next(id, hash: h)
        }
        return 0
    }

    /// Whether `a` belongs to the pool's prefixes (reserved or not): the IPv4 traffic the NAT64 owns.
    @inlinable
    public func contains(_ a: IPv4Address) -> Bool {
        for i in 0..<rangeCount where a.rawValue & ranges[i].mask == ranges[i].network { return true }
        return false
    }

    /// The address reserved for `v6`, without touching anything.
    @inlinable
    public func reservedIPv4(for v6: IPv6Address) -> IPv4Address? {
        let s = findSlot(v6)
        return s == 0 ? nil : address(ofSlot: s)
    }

    /// The IPv6 host holding `v4`, without touching anything.
    @inlinable
    public func reservedIPv6(for v4: IPv4Address) -> IPv6Address? {
        let s = slotIndex(v4)
        return s == 0 || slots[Int(s)].state == Slot.free ? nil : slots[Int(s)].ipv6
    }

    /// IPv6 → IPv4 for a packet from `v6`: its reservation, refreshed, or a new one from the free
    /// addresses. Throws ``DropReason/poolExhausted`` when there is none left.
    @inlinable
    public mutating func ipv4(forSource v6: IPv6Address, now: Timestamp) throws(DropReason) -> IPv4Address {
        let s = findSlot(v6)
        if s != 0 {
            touch(s, now: now)
            return address(ofSlot: s)
        }
        return try reserve(v6, now: now)
    }

    /// IPv4 → IPv6 for a packet to `v4`: the host holding it (the reservation is refreshed, as protomask
    /// does for return traffic). Throws ``DropReason/noMapping`` when nobody holds it.
    @inlinable
    public mutating func ipv6(forDestination v4: IPv4Address, now: Timestamp) throws(DropReason) -> IPv6Address {
        let s = slotIndex(v4)
        guard s != 0 else { throw .noMapping }
        let st = slots[Int(s)].state
        guard st != Slot.free else { throw .noMapping }
        if st == Slot.dynamic {
            // Expired but not reclaimed yet: it is gone for the outside.
            if idle(s, Self.tick(now)) >= maxIdle {
                reclaim(s)
                throw .noMapping
            }
            touch(s, now: now)
        }
        return slots[Int(s)].ipv6
    }

    /// Seconds slot `s` has been idle at tick `t` (zero if the clock went back).
    @inlinable @inline(__always)
    func idle(_ s: UInt32, _ t: UInt32) -> UInt32 {
        let l = slots[Int(s)].lastSeen
        return t > l ? t &- l : 0
    }

    @inlinable @inline(__always)
    mutating func touch(_ s: UInt32, now: Timestamp) {
        guard slots[Int(s)].state == Slot.dynamic else { return }
        let t = Self.tick(now)
        // Same second (or a clock that went back: the list stays ordered by last use).
        if slots[Int(s)].lastSeen >= t { return }
        slots[Int(s)].lastSeen = t
        if idleTail != s {
            unlinkIdle(s)
            appendIdle(s)
        }
    }

    @usableFromInline
    mutating func reserve(_ v6: IPv6Address, now: Timestamp) throws(DropReason) -> IPv4Address {
        if freeHead == 0 {
            // Reclaim the least recently used reservation if its time is up (never a live one).
            let h = idleHead
            guard h != 0, idle(h, Self.tick(now)) >= maxIdle else { throw .poolExhausted }
            reclaim(h)
        }
        let s = freeHead
        unlinkFree(s)
        slots[Int(s)].state = Slot.dynamic
        slots[Int(s)].ipv6 = v6
        slots[Int(s)].lastSeen = Self.tick(now)
        byIPv6.insert(s, hash: hash(v6))
        appendIdle(s)
        dynamicCount += 1
        reservationsMade &+= 1
        return address(ofSlot: s)
    }

    /// Ends a reservation whose idle time is up.
    @usableFromInline
    mutating func reclaim(_ s: UInt32) {
        release(s)
        reservationsExpired &+= 1
    }

    /// Ends the dynamic reservation in slot `s` and puts the address at the back of the free FIFO.
    @usableFromInline
    mutating func release(_ s: UInt32) {
        unlinkIdle(s)
        byIPv6.remove(s, hash: hash(slots[Int(s)].ipv6))
        slots[Int(s)].ipv6 = .any
        slots[Int(s)].state = Slot.free
        pushFree(s)
        dynamicCount -= 1
    }

    // MARK: Lists (free FIFO and idle list share the links: a slot is on at most one)

    @usableFromInline mutating func pushFree(_ s: UInt32) { Self.append(s, slots, &freeHead, &freeTail) }

    @usableFromInline mutating func unlinkFree(_ s: UInt32) { Self.unlink(s, slots, &freeHead, &freeTail) }

    @usableFromInline mutating func appendIdle(_ s: UInt32) { Self.append(s, slots, &idleHead, &idleTail) }

    @usableFromInline mutating func unlinkIdle(_ s: UInt32) { Self.unlink(s, slots, &idleHead, &idleTail) }

    /// Appends slot `s` to the list from `head` to `tail` (slot 0 ends it).
    @inlinable @inline(__always)
    static func append(_ s: UInt32, _ slots: UnsafeMutablePointer<Slot>, _ head: inout UInt32, _ tail: inout UInt32) {
        slots[Int(s)].prev = tail
        slots[Int(s)].next = 0
        if tail != 0 { slots[Int(tail)].next = s } else { head = s }
        tail = s
    }

    /// Takes slot `s` out of the list from `head` to `tail` and clears its links.
    @inlinable @inline(__always)
    static func unlink(_ s: UInt32, _ slots: UnsafeMutablePointer<Slot>, _ head: inout UInt32, _ tail: inout UInt32) {
        let p = slots[Int(s)].prev, n = slots[Int(s)].next
        if p != 0 { slots[Int(p)].next = n } else { head = n }
        if n != 0 { slots[Int(n)].prev = p } else { tail = p }
        slots[Int(s)].prev = 0
        slots[Int(s)].next = 0
    }

    // MARK: Timers

    /// Ends every dynamic reservation idle for at least the maximum; pops from the head of the
    /// last-use list, so the cost is the number expired, not the table size. Returns that number.
    @discardableResult
    public mutating func expire(now: Timestamp) -> Int {
        let t = Self.tick(now)
        var n = 0
        while idleHead != 0, idle(idleHead, t) >= maxIdle {
            release(idleHead)
            n += 1
        }
        reservationsExpired &+= UInt64(n)
        return n
    }

    // MARK: Control plane (allocates; never on the packet path)

    /// Every reservation, static ones first, then dynamic ones from the least recently used.
    public func reservations(now: Timestamp, limit: Int = .max) -> [AddressReservation] {
        var out: [AddressReservation] = []
        let t = Self.tick(now)
        if staticCount > 0 {
            for m in configuration.staticMappings where out.count < limit {
                out.append(AddressReservation(ipv4: m.ipv4, ipv6: m.ipv6, idleSeconds: 0, isStatic: true))
            }
        }
        var s = idleHead
        while s != 0 && out.count < limit {
            let idle = idle(s, t)
            out.append(AddressReservation(ipv4: address(ofSlot: s), ipv6: slots[Int(s)].ipv6,
                                          idleSeconds: idle > maxIdle ? maxIdle : idle))
            s = slots[Int(s)].next
        }
        return out
    }

    /// The dynamic reservations only (what a state file keeps; static ones come from the configuration).
    public func dynamicReservations(now: Timestamp) -> [AddressReservation] {
        reservations(now: now).filter { !$0.isStatic }
    }

    /// Puts back one saved reservation, dated `idleSeconds` before `now`. Restoring keeps the
    /// last-use order when the saved list is restored in its order (least recently used first).
    @discardableResult
    public mutating func restore(_ r: AddressReservation, now: Timestamp) -> RestoreOutcome {
        let s = slotIndex(r.ipv4)
        guard s != 0 else { return .notInPool }
        let holder = findSlot(r.ipv6)
        if holder == s { return .alreadyPresent }
        guard r.idleSeconds < maxIdle else { return .expired }
        guard holder == 0, slots[Int(s)].state == Slot.free else { return .conflict }
        unlinkFree(s)
        slots[Int(s)].state = Slot.dynamic
        slots[Int(s)].ipv6 = r.ipv6
        slots[Int(s)].lastSeen = Self.tick(now) &- r.idleSeconds
        byIPv6.insert(s, hash: hash(r.ipv6))
        // Keep the list ordered by last use even if the input is not.
        var after = idleTail
        while after != 0 && slots[Int(after)].lastSeen > slots[Int(s)].lastSeen { after = slots[Int(after)].prev }
        if after == idleTail {
            appendIdle(s)
        } else {
            let n = after == 0 ? idleHead : slots[Int(after)].next
            slots[Int(s)].prev = after
            slots[Int(s)].next = n
            if after != 0 { slots[Int(after)].next = s } else { idleHead = s }
            slots[Int(n)].prev = s
        }
        dynamicCount += 1
        return .restored
    }
}

/// protomask's NAT64 as a ``NAT64Mapping``: the address pool gives every IPv6 host an IPv4 address of its
/// own, the RFC 6052 prefix carries the IPv4 side's addresses; ``NAT64Translator`` does the header work.
///
/// - IPv6 source → its pool address (reserved on first use, refreshed on every packet);
/// - IPv6 destination → the IPv4 address embedded under the prefix (RFC 6052 §2.3);
/// - IPv4 source → embedded under the prefix;
/// - IPv4 destination → the IPv6 host holding that pool address (refreshed), else ``DropReason/noMapping``.
///
/// ICMP errors: the packet inside maps the other way round with lookups only (an error never creates a
/// reservation for the host it is about); the outer source of an ICMPv6 error from a router without a
/// reservation takes an RFC 6791 address when a pool of them is configured, else the mapping refuses it
/// (`noMapping`) and the translator uses its own IPv4 address (RFC 6791 §4, as Jool): a router never
/// takes a pool address away from the hosts. An ICMPv4 error's source is embedded even when it is not
/// global (RFC 7915 §4.1, for troubleshooting).
public struct AddressPoolMapping: NAT64Mapping, ~Copyable {
    public var pool: AddressPool
    public let prefix: NAT64Prefix
    @usableFromInline let rfc6791: [UInt32]

    /// `rfc6791Pool` holds at most 65,536 addresses in all.
    public init(pool: consuming AddressPool, prefix: NAT64Prefix, rfc6791Pool: [IPv4Prefix] = []) throws(ConfigurationError) {
        var a: [UInt32] = []
        for (i, q) in rfc6791Pool.enumerated() {
            guard q.count + UInt64(a.count) <= 65536 else {
                throw ConfigurationError(key: "rfc6791_pool[\(i)]", problem: "makes the RFC 6791 pool larger than 65536 addresses")
            }
            for n in 0..<UInt32(q.count) { a.append(q.address.rawValue &+ n) }
        }
        for (i, q) in rfc6791Pool.enumerated() where pool.configuration.prefixes.contains(where: { $0.contains(q.address) || q.contains($0.address) }) {
            throw ConfigurationError(key: "rfc6791_pool[\(i)]", problem: "\(q) overlaps the address pool")
        }
        self.pool = pool
        self.prefix = prefix
        rfc6791 = a
    }

    /// RFC 6052 §2.3 extraction, telling a §3.1 refusal apart from "not under the prefix".
    @inlinable @inline(__always)
    func extract(_ a: IPv6Address) throws(DropReason) -> IPv4Address {
        guard let v = prefix.extractUnchecked(a) else { throw .noMapping }
        if prefix.restrictsToGlobalIPv4 && !SpecialPurposeIPv4.isGlobal(v) { throw .nonGlobalIPv4Address }
        return v
    }

    @inlinable @inline(__always)
    func embed(_ a: IPv4Address) throws(DropReason) -> IPv6Address {
        guard let v = prefix.embed(a) else { throw .nonGlobalIPv4Address }
        return v
    }

    /// RFC 6791 §4: one pool address per router (hash of its IPv6 address), or nil without a pool.
    @inlinable
    func rfc6791Address(for a: IPv6Address) -> IPv4Address? {
        guard !rfc6791.isEmpty else { return nil }
        var h = a.high ^ (a.low &* 0x9E37_79B9_7F4A_7C15)
        h ^= h >> 29
        return IPv4Address(rfc6791[Int(h % UInt64(rfc6791.count))])
    }

    @inlinable
    public mutating func map6to4(source: IPv6Address, destination: IPv6Address, transport: NAT64Transport,
                                 now: Timestamp) throws(DropReason) -> NAT64Mapped4 {
        let d = try extract(destination)
        let s: IPv4Address
        if transport.kind == .icmpError, pool.reservedIPv4(for: source) == nil {
            // A router's error: never a reservation of its own.
            guard let r = rfc6791Address(for: source) else { throw .noMapping }
            s = r
        } else {
            s = try pool.ipv4(forSource: source, now: now)
        }
        return NAT64Mapped4(source: s, destination: d, ports: transport.ports)
    }

    @inlinable
    public mutating func map4to6(source: IPv4Address, destination: IPv4Address, transport: NAT64Transport,
                                 hairpin: Bool, now: Timestamp) throws(DropReason) -> NAT64Mapped6 {
        let d = try pool.ipv6(forDestination: destination, now: now)
        // A hairpinned packet's source is a pool address too: its RFC 6052 form, so that the reply comes
        // back through the translator (RFC 7757 §4.3's rule, RFC 6146 §3.8).
        let s = transport.kind == .icmpError ? prefix.embedUnchecked(source) : try embed(source)
        return NAT64Mapped6(source: s, destination: d, ports: transport.ports)
    }

    @inlinable
    public mutating func mapInner6to4(source: IPv6Address, destination: IPv6Address, transport: NAT64Transport,
                                      now: Timestamp) throws(DropReason) -> NAT64Mapped4 {
        // The inner packet went IPv4 → IPv6: its source is an IPv4 host under the prefix, its destination
        // the IPv6 host, which must hold a reservation.
        let s = try extract(source)
        guard let d = pool.reservedIPv4(for: destination) else { throw .noMapping }
        return NAT64Mapped4(source: s, destination: d, ports: transport.ports)
    }

    @inlinable
    public mutating func mapInner4to6(source: IPv4Address, destination: IPv4Address, transport: NAT64Transport,
                                      hairpin: Bool, now: Timestamp) throws(DropReason) -> NAT64Mapped6 {
        // The inner packet went IPv6 → IPv4: its source is the IPv6 host's pool address.
        guard let s = pool.reservedIPv6(for: source) else { throw .noMapping }
        let d = prefix.embedUnchecked(destination)
        return NAT64Mapped6(source: s, destination: d, ports: transport.ports)
    }

    /// A pool address reached through the prefix (its RFC 6052 form) belongs to another IPv6 host of the pool.
    @inlinable
    public func isHairpin(_ destination: IPv4Address, ipv6Destination: IPv6Address) -> Bool {
        pool.contains(destination)
    }

    /// An IPv6 host that gets no address because every one is reserved is told so, as RFC 6146
    /// §3.5.1.1 says for a NAT64 out of IPv4 resources: ICMPv6 Destination Unreachable, Address
    /// Unreachable (code 3). Other refusals are silent drops.
    public mutating func refusal(of packet: UnsafeRawBufferPointer, reason: DropReason, now: Timestamp) -> NAT64RefusalAction {
        reason == .poolExhausted ? .unreachable(code: 3) : .drop
    }
}
