/// A connection an application-level gateway announced and the NAT now expects from outside (issue 15):
/// the FTP data connection of active mode (RFC 959 §4.1.2 PORT, RFC 2428 §2 EPRT) is the first.
public struct Expectation: Sendable, Equatable {
    public var proto: UInt8 = 0
    /// The remote the connection must come from; 0: any address.
    public var remoteAddress: UInt32 = 0
    /// The remote port; 0: any port (an FTP server's data port is usually 20, but need not be).
    public var remotePort: UInt16 = 0
    public var outsideAddress: UInt32 = 0
    public var outsidePort: UInt16 = 0
    public var insideAddress: UInt32 = 0
    public var insidePort: UInt16 = 0
    public var tenant: UInt32 = 0
    /// The session (the control connection) that announced it.
    public var master: UInt32 = 0
    /// The second (engine time) after which it is gone; 0 marks a free slot.
    public var expiry: UInt32 = 0

    public init() {}

    public init(proto: UInt8, remoteAddress: UInt32, remotePort: UInt16, outsideAddress: UInt32, outsidePort: UInt16,
                insideAddress: UInt32, insidePort: UInt16, tenant: UInt32, master: UInt32, expiry: UInt32) {
        self.proto = proto
        self.remoteAddress = remoteAddress
        self.remotePort = remotePort
        self.outsideAddress = outsideAddress
        self.outsidePort = outsidePort
        self.insideAddress = insideAddress
        self.insidePort = insidePort
        self.tenant = tenant
        self.master = master
        self.expiry = expiry
    }

    @inlinable public func isLive(now: UInt32) -> Bool { expiry != 0 && now < expiry }
}

/// Expectations, preallocated and bounded in all and per master session, so a flood of announcements
/// cannot exhaust anything but its own quota. Expiry is checked when a slot is looked at (no sweep, no
/// timer); nothing allocates after `init`. The table is small (hundreds) and scanned linearly, and only
/// for packets that found no session, or when a helper announces a connection.
public struct ExpectationTable: ~Copyable {
    public let capacity: Int
    public let perMaster: Int
    @usableFromInline let slots: UnsafeMutablePointer<Expectation>
    /// Slots in use (live or expired but not yet reclaimed): 0 lets the packet path skip the table.
    public private(set) var used = 0

    public enum AddResult: Equatable, Sendable {
        case added
        /// The master session has `perMaster` live expectations already.
        case masterLimit
        /// Every slot holds a live expectation.
        case full
    }

    public init(capacity: Int, perMaster: Int) {
        precondition(capacity > 0 && perMaster > 0)
        self.capacity = capacity
        self.perMaster = perMaster
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: Expectation(), count: capacity)
    }

    deinit { slots.deallocate() }

    @inline(__always)
    mutating func free(_ i: Int) {
        slots[i].expiry = 0
        used -= 1
    }

    /// Adds `e` (its `expiry` must be later than `now`); an expectation of the same master for the same
    /// outside endpoint is replaced (a client that sends PORT again).
    public mutating func add(_ e: Expectation, now: UInt32) -> AddResult {
        var freeSlot = -1, mine = 0
        for i in 0..<capacity where slots[i].expiry != 0 {
            if !slots[i].isLive(now: now) { free(i); continue }
            if slots[i].master == e.master {
                if slots[i].outsidePort == e.outsidePort && slots[i].outsideAddress == e.outsideAddress && slots[i].proto == e.proto {
                    slots[i] = e
                    return .added
                }
                mine += 1
            }
        }
        guard mine < perMaster else { return .masterLimit }
        for i in 0..<capacity where slots[i].expiry == 0 { freeSlot = i; break }
        guard freeSlot >= 0 else { return .full }
        slots[freeSlot] = e
        used += 1
        return .added
    }

    /// Takes (removes and returns) the live expectation an inbound connection from `remote:remotePort`
    /// to `outside:outsidePort` matches: each is consumed once.
    public mutating func take(proto: UInt8, outsideAddress: UInt32, outsidePort: UInt16, remoteAddress: UInt32,
                              remotePort: UInt16, now: UInt32) -> Expectation? {
        guard used > 0 else { return nil }
        for i in 0..<capacity where slots[i].expiry != 0 {
            let e = slots[i]
            if !e.isLive(now: now) { free(i); continue }
            guard e.proto == proto, e.outsidePort == outsidePort, e.outsideAddress == outsideAddress,
                  e.remoteAddress == 0 || e.remoteAddress == remoteAddress, e.remotePort == 0 || e.remotePort == remotePort
            else { continue }
            free(i)
            return e
        }
        return nil
    }

    /// The live expectation `master` announced for this inside endpoint (a retransmitted announcement
    /// must get the same outside port).
    public func find(master: UInt32, proto: UInt8, insideAddress: UInt32, insidePort: UInt16, now: UInt32) -> Expectation? {
        guard used > 0 else { return nil }
        for i in 0..<capacity where slots[i].isLive(now: now) {
            let e = slots[i]
            if e.master == master && e.proto == proto && e.insideAddress == insideAddress && e.insidePort == insidePort { return e }
        }
        return nil
    }

    /// Whether a live expectation holds this outside endpoint (a helper picking a port must avoid it).
    public func holds(proto: UInt8, outsideAddress: UInt32, outsidePort: UInt16, now: UInt32) -> Bool {
        guard used > 0 else { return false }
        for i in 0..<capacity where slots[i].isLive(now: now) {
            if slots[i].proto == proto && slots[i].outsidePort == outsidePort && slots[i].outsideAddress == outsideAddress { return true }
        }
        return false
    }

    /// Removes every expectation of `master` (its session ended); returns how many were live.
    @discardableResult
    public mutating func removeAll(master: UInt32, now: UInt32) -> Int {
        guard used > 0 else { return 0 }
        var n = 0
        for i in 0..<capacity where slots[i].expiry != 0 && slots[i].master == master {
            if slots[i].isLive(now: now) { n += 1 }
            free(i)
        }
        return n
    }

    /// The live expectations (for `swiftnat sessions` and tests; allocates, not for the packet path).
    public func live(now: UInt32) -> [Expectation] {
        var out: [Expectation] = []
        for i in 0..<capacity where slots[i].isLive(now: now) { out.append(slots[i]) }
        return out
    }
}
