import NAPT44
import NAT64
import NATCore
import NATWire

extension PacketThread where Device: ~Copyable {
    /// What this thread reports to the control plane (control-plane work between bursts: allocates).
    mutating func snapshot(_ request: SnapshotRequest, now: Timestamp) -> QueueSnapshot {
        if request.ports && engine != nil { census.start() }
        var s = QueueSnapshot(queue: queue)
        s.io = ioCounters
        switch engine {
        case .some(let e):
            s.nat44 = e.counters
            s.nat44Sessions = e.sessionCount
            s.nat44Mappings = e.mappingCount
            s.forwards = e.forwards
            // The last completed table census (a new pass starts when asked: see TableCensus).
            (s.nat44SessionsByProtocol, s.nat44MappingsByProtocol, s.outsidePortsInUse) = census.last
            if request.sessions {
                s.sessions = e.sessions(limit: request.limit).map { Self.row($0, queue: queue, timeouts: e.configuration.timeouts) }
                    + Self.expectationRows(e, queue: queue)
            }
        case .none:
            break
        }
        switch nat64 {
        case .some(let n):
            n.fill(&s, request, now: now)
        case .none:
            break
        }
        switch nptv6 {
        case .some(let n):
            s.nptv6 = n.counters
        case .none:
            break
        }
        return s
    }

    static func row(_ i: SessionInfo, queue: Int, timeouts: Timeouts) -> SessionRow {
        let proto = protocolName(i.proto)
        let timer: TimerClass = switch i.proto {
        case IPProtocol.tcp: i.tcpState == .established ? .tcpEstablished : .tcpTransitory
        case IPProtocol.udp: .udp
        case IPProtocol.icmp: .icmp
        default: .other
        }
        let timeout = timeouts.seconds(for: timer)
        return SessionRow(engine: "nat44", queue: queue, protocol: proto,
                          inside: "\(i.inside.0):\(i.inside.1)", outside: "\(i.outside.0):\(i.outside.1)",
                          remote: "\(i.via.0):\(i.via.1)", remoteOutside: "\(i.remote.0):\(i.remote.1)",
                          state: i.tcpState.map { "\($0)" } ?? "", idleSeconds: i.idleSeconds,
                          expiresInSeconds: timeout &- min(timeout, i.idleSeconds),
                          isStatic: i.isStatic, tenant: i.tenant, helper: i.isHelped ? "ftp" : nil)
    }

    /// The live expectations (issue 15) as rows in state "expected", each with its master session.
    static func expectationRows(_ e: borrowing NAPT44Engine, queue: Int) -> [SessionRow] {
        let now = e.lastNow.seconds
        return e.liveExpectations().map { x in
            let m = e.table.sessions[Int(x.master)]
            let remote = "\(x.remoteAddress == 0 ? "*" : "\(IPv4Address(x.remoteAddress))"):\(x.remotePort == 0 ? "*" : "\(x.remotePort)")"
            return SessionRow(engine: "nat44", queue: queue, protocol: protocolName(x.proto),
                              inside: "\(IPv4Address(x.insideAddress)):\(x.insidePort)",
                              outside: "\(IPv4Address(x.outsideAddress)):\(x.outsidePort)", remote: remote, remoteOutside: remote,
                              state: "expected", idleSeconds: 0, expiresInSeconds: x.expiry &- min(x.expiry, now),
                              isStatic: false, tenant: x.tenant,
                              master: "\(IPv4Address(m.insideAddress)):\(m.insidePort) -> \(IPv4Address(m.remoteAddress)):\(m.remotePort)")
        }
    }
}

/// "tcp", "udp", "icmp", or the number.
func protocolName(_ p: UInt8) -> String {
    switch p {
    case IPProtocol.tcp: "tcp"
    case IPProtocol.udp: "udp"
    case IPProtocol.icmp: "icmp"
    default: "\(p)"
    }
}

/// A `swiftnat sessions` request in progress: the NAT44 table is listed 4096 slots per round (about
/// 2.5 ms when they are all live), so listing 100 000 sessions never holds the packet thread for the
/// ~90 ms a whole pass takes; the thread does not sleep between rounds while a listing is under way.
struct SessionListing {
    var snapshot: QueueSnapshot
    var limit: Int
    var reply: Reply<QueueSnapshot>
    var cursor = 1
    var found: [SessionInfo] = []
    static let slice = 4096
}

extension PacketThread where Device: ~Copyable {
    /// Lists the next slice for the oldest listing; answers it when the table is done or the limit reached.
    mutating func advanceListings() {
        var l = listings[0]
        var done = true
        switch engine {
        case .some(let e):
            e.sessions(slots: l.cursor..<(l.cursor + SessionListing.slice), limit: l.limit, into: &l.found)
            l.cursor += SessionListing.slice
            done = l.cursor > e.sessionSlots || l.found.count >= l.limit
            if done {
                let rows = l.found.map { Self.row($0, queue: queue, timeouts: e.configuration.timeouts) }
                l.snapshot.sessions = rows + Self.expectationRows(e, queue: queue) + l.snapshot.sessions
            }
        case .none:
            break
        }
        if done {
            listings.removeFirst()
            l.reply.fulfil(l.snapshot)
        } else {
            listings[0] = l
        }
    }
}

/// Sessions and mappings by protocol and outside ports by address, counted a slice of the tables at a
/// time: a scrape that asks for them starts a pass, the packet thread advances it by one slice per timer
/// round (every 100 ms; a pass takes about 2 s), and snapshots report the last completed pass. No
/// round stalls the packet path for more than one slice (about 0.2 ms), whatever the table size.
struct TableCensus {
    /// Where the pass in progress is (nil: none), in session slots then mapping slots.
    var cursor: Int? = nil
    var sessions: [UInt8: Int] = [:]
    var mappings: [UInt8: Int] = [:]
    var ports: [UInt32: Int] = [:]
    /// The last completed pass.
    var last: (sessions: [String: Int], mappings: [String: Int], ports: [String: Int]) = ([:], [:], [:])
    var passes = 0

    mutating func start() {
        guard cursor == nil else { return }
        cursor = 0
        sessions = [:]; mappings = [:]; ports = [:]
    }

    /// Advances the pass by one slice of `engine`'s tables (a twentieth of them, at least 4096 slots).
    mutating func advance(_ engine: borrowing NAPT44Engine) {
        guard var i = cursor else { return }
        let sessionCapacity = engine.table.sessionCapacity
        let total = sessionCapacity + engine.table.mappingCapacity
        let end = min(total, i + max(4096, total / 20))
        while i < end {
            if i < sessionCapacity {
                let r = engine.table.sessions[i + 1]
                if r.isLive { sessions[r.proto, default: 0] += 1 }
            } else {
                let m = engine.table.mappings[i - sessionCapacity + 1]
                if m.flags & MappingRecord.flagLive != 0 {
                    ports[m.outsideAddress, default: 0] += 1
                    if !m.isHeld { mappings[m.proto, default: 0] += 1 }
                }
            }
            i += 1
        }
        guard i == total else {
            cursor = i
            return
        }
        cursor = nil
        passes += 1
        var byAddress: [String: Int] = [:]
        for (a, n) in ports { byAddress[IPv4Address(a).description] = n }
        last = (Dictionary(uniqueKeysWithValues: sessions.map { (protocolName($0.key), $0.value) }),
                Dictionary(uniqueKeysWithValues: mappings.map { (protocolName($0.key), $0.value) }), byAddress)
    }
}

extension NAT64Path {
    /// The NAT64's part of a snapshot.
    func fill(_ s: inout QueueSnapshot, _ request: SnapshotRequest, now: Timestamp) {
        s.nat64 = counters
        s.nat64ICMP = protomask.icmpCounts
        s.nat64ProtocolPackets = protomask.packetCounts.map { QueueSnapshot.ProtocolCount(protocol: $0.0, status: $0.1, packets: $0.2) }
        s.nat64Mode = settings.mode.name
        switch pool {
        case .some(let t):
            s.nat64Reservations = t.mapping.pool.reservationCount
            s.nat64StaticReservations = t.mapping.pool.staticCount
            s.nat64FreeAddresses = t.mapping.pool.freeCount
            if request.reservations { s.reservations = t.mapping.pool.reservations(now: now, limit: request.limit) }
        case .none:
            break
        }
        switch stateful {
        case .some(let t):
            s.nat64Sessions = t.mapping.sessionCount
            s.nat64Bindings = t.mapping.bindingCount
            if request.sessions {
                var timeouts = Timeouts()
                if case .stateful(let c) = settings.mode { timeouts = c.timeouts }
                s.sessions += t.mapping.sessions(now: now).prefix(request.limit).map { i in
                    let timeout = timeouts.seconds(for: i.timerClass)
                    return SessionRow(engine: "nat64", queue: s.queue, protocol: i.proto.rawValue,
                                      inside: "[\(i.ipv6)]:\(i.ipv6Port)", outside: "\(i.ipv4):\(i.ipv4Port)",
                                      remote: "[\(i.remote6)]:\(i.remotePort)", remoteOutside: "\(i.remote4):\(i.remotePort)",
                                      state: i.tcpState?.rfc6146Name ?? "", idleSeconds: i.idleSeconds,
                                      expiresInSeconds: timeout &- min(timeout, i.idleSeconds), isStatic: false, tenant: 0)
                }
            }
        case .none:
            break
        }
    }
}
