import NATCore
import NATWire

/// One NAPT44 session as it is saved across a restart (issue 12): the session's endpoints, its TCP and
/// timer state, its mapping's key and kind, and how long it had been idle when it was taken.
/// Plain values: the runtime encodes them; nothing here reads a clock.
public struct NAPT44SavedSession: Sendable, Hashable {
    /// What owns the session's outside endpoint.
    public enum MappingKind: UInt8, Sendable {
        /// A dynamic mapping from the pool.
        case dynamic = 0
        /// 1:1 NAT (`static_nat`): the host's own outside address, ports unchanged.
        case oneToOne = 1
        /// A port forward (configuration or run time): restored only onto the same forward.
        case forward = 2
    }

    public var proto: UInt8
    public var kind: MappingKind
    public var tenant: UInt32
    public var insideAddress: UInt32
    public var insidePort: UInt16
    public var outsideAddress: UInt32
    public var outsidePort: UInt16
    public var remoteAddress: UInt32
    public var remotePort: UInt16
    /// The remote as the inside host sees it (differs from `remote` for redirected flows).
    public var viaAddress: UInt32
    public var viaPort: UInt16
    /// The mapping's qualifier (address- or address-and-port-dependent mapping; 0 for endpoint-independent).
    public var qualifierAddress: UInt32
    public var qualifierPort: UInt16
    /// ``TCPState`` raw value (TCP), 0 otherwise.
    public var tcpState: UInt8
    /// ``TimerClass`` raw value.
    public var timerClass: UInt8
    /// Both FINs seen: the port is free at once when the session ends (RFC 6888 REQ-8).
    public var cleanClose: Bool
    /// Seconds since the session was last used, when it was saved.
    public var idleSeconds: UInt32

    public init(proto: UInt8, kind: MappingKind, tenant: UInt32 = 0, insideAddress: UInt32, insidePort: UInt16,
                outsideAddress: UInt32, outsidePort: UInt16, remoteAddress: UInt32, remotePort: UInt16,
                viaAddress: UInt32, viaPort: UInt16, qualifierAddress: UInt32 = 0, qualifierPort: UInt16 = 0,
                tcpState: UInt8 = 0, timerClass: UInt8, cleanClose: Bool = false, idleSeconds: UInt32) {
        self.proto = proto
        self.kind = kind
        self.tenant = tenant
        self.insideAddress = insideAddress
        self.insidePort = insidePort
        self.outsideAddress = outsideAddress
        self.outsidePort = outsidePort
        self.remoteAddress = remoteAddress
        self.remotePort = remotePort
        self.viaAddress = viaAddress
        self.viaPort = viaPort
        self.qualifierAddress = qualifierAddress
        self.qualifierPort = qualifierPort
        self.tcpState = tcpState
        self.timerClass = timerClass
        self.cleanClose = cleanClose
        self.idleSeconds = idleSeconds
    }
}

/// A NAPT44 engine's state across a restart: its sessions (least recently used first) and held ports
/// (soonest free first). Mappings are implied by their sessions; per-host counts are recomputed.
public struct NAPT44SavedState: Sendable, Hashable {
    public var sessions: [NAPT44SavedSession]
    public var holds: [SavedPortHold]

    public init(sessions: [NAPT44SavedSession] = [], holds: [SavedPortHold] = []) {
        self.sessions = sessions
        self.holds = holds
    }

    public var isEmpty: Bool { sessions.isEmpty && holds.isEmpty }
}

extension NAPT44Engine {
    // MARK: Restart without loss (control plane: allocates; never on the packet path)

    /// Every session (least recently used first) and every held port (soonest free first), for saving at
    /// a clean stop. `now` is the engine time of the export.
    public func exportState(now: Timestamp) -> NAPT44SavedState {
        let nowS = now.seconds
        var sessions: [(seen: UInt32, s: NAPT44SavedSession)] = []
        sessions.reserveCapacity(table.sessionCount)
        for i in 1...table.sessionCapacity where table.sessions[i].isLive {
            let s = table.sessions[i], l = table.sessionLinks[i], m = table.mappings[Int(l.mapping)]
            let seen = table.lastSeen(UInt32(i))
            let kind: NAPT44SavedSession.MappingKind = m.isStatic ? .forward : m.flags & MappingRecord.flagOneToOne != 0 ? .oneToOne : .dynamic
            sessions.append((seen, NAPT44SavedSession(
                proto: s.proto, kind: kind, tenant: s.tenant, insideAddress: s.insideAddress, insidePort: s.insidePort,
                outsideAddress: s.outsideAddress, outsidePort: s.outsidePort, remoteAddress: s.remoteAddress,
                remotePort: s.remotePort, viaAddress: s.viaAddress, viaPort: s.viaPort,
                qualifierAddress: m.qualifierAddress, qualifierPort: m.qualifierPort, tcpState: l.state,
                timerClass: l.timerClass, cleanClose: s.flags & SessionRecord.flagCleanClose != 0,
                idleSeconds: nowS > seen ? nowS - seen : 0)))
        }
        // Stable: equal last uses keep their table order (any order is right for equal times).
        sessions.sort { $0.seen < $1.seen }
        return NAPT44SavedState(sessions: sessions.map(\.s), holds: table.exportHolds(now: nowS))
    }

    /// Puts saved state back into this engine (at start, before it sees a packet; forwards installed
    /// first). Each entry is checked against the current configuration and skipped, with its reason
    /// counted, when it no longer fits: expired after `elapsedSeconds` of downtime added to its idle
    /// time (under the current timeouts), inside address outside the inside prefixes, outside address not
    /// in the pool (or no longer the host's 1:1 address), port outside this engine's ports, mapping
    /// behaviour changed, forward gone, endpoint taken, tables full. Nothing is evicted. Sessions must come
    /// least recently used first (as ``exportState(now:)`` gives them): the idle lists stay ordered.
    public mutating func importState(_ state: NAPT44SavedState, elapsedSeconds: UInt32, now: Timestamp) -> RestoreReport {
        var report = RestoreReport()
        let nowS = now.seconds
        lastNow = now
        for s in state.sessions {
            if let reason = restoreSession(s, elapsed: elapsedSeconds, now: nowS, report: &report) { report.skip(reason) }
        }
        var holds: [SavedPortHold] = []
        for h in state.holds {
            if isOutside(h.outsideAddress) && staticOutside[h.outsideAddress] == nil && ports.ports.contains(h.outsidePort) {
                holds.append(h)
            } else {
                report.skip(.outsideNotInPool)
            }
        }
        table.restoreHolds(holds, elapsedSeconds: elapsedSeconds, now: nowS, portHold: configuration.timeouts.portHold, report: &report)
        return report
    }

    /// One saved session; nil when restored, else why not.
    mutating func restoreSession(_ s: NAPT44SavedSession, elapsed: UInt32, now: UInt32, report: inout RestoreReport) -> RestoreSkip? {
        guard s.proto == IPProtocol.tcp || s.proto == IPProtocol.udp || s.proto == IPProtocol.icmp,
              let timer = TimerClass(rawValue: s.timerClass), TCPState(rawValue: s.tcpState) != nil else { return .invalid }
        let idle = UInt64(s.idleSeconds) + UInt64(elapsed)
        guard idle < UInt64(configuration.timeouts.seconds(for: timer)) else { return .expired }
        guard isInside(s.insideAddress) else { return .insideNotInPrefixes }
        guard table.lookupFromInside(tenant: s.tenant, proto: s.proto, insideAddress: s.insideAddress, insidePort: s.insidePort,
                                     remoteAddress: s.viaAddress, remotePort: s.viaPort) == 0,
              table.lookupFromOutside(proto: s.proto, outsideAddress: s.outsideAddress, outsidePort: s.outsidePort,
                                      remoteAddress: s.remoteAddress, remotePort: s.remotePort) == 0 else { return .conflict }
        let mid: UInt32
        switch s.kind {
        case .forward:
            let m = table.lookupMapping(proto: s.proto, outsideAddress: s.outsideAddress, outsidePort: s.outsidePort)
            guard m != 0, table.mappings[Int(m)].isStatic, table.mappings[Int(m)].insideAddress == s.insideAddress,
                  table.mappings[Int(m)].insidePort == s.insidePort, table.mappings[Int(m)].tenant == s.tenant else { return .noForward }
            mid = m
        case .oneToOne:
            guard staticInside[UInt64(s.tenant) << 32 | UInt64(s.insideAddress)] == s.outsideAddress,
                  s.outsidePort == s.insidePort else { return .outsideNotInPool }
            switch findOrCreateMapping(s, flags: MappingRecord.flagOneToOne, report: &report) {
            case .success(let m): mid = m
            case .failure(let r): return r
            }
        case .dynamic:
            guard isOutside(s.outsideAddress), staticOutside[s.outsideAddress] == nil,
                  poolAddresses.contains(s.outsideAddress) else { return .outsideNotInPool }
            guard ports.ports.contains(s.outsidePort) else { return .portNotInRange }
            let behavior = s.proto == IPProtocol.tcp ? mappingTCP : s.proto == IPProtocol.udp ? mappingUDP : mappingICMP
            let fits: Bool
            switch behavior {
            case .endpointIndependent: fits = s.qualifierAddress == 0 && s.qualifierPort == 0
            case .addressDependent: fits = s.qualifierAddress == s.remoteAddress && s.qualifierPort == 0
            case .addressAndPortDependent: fits = s.qualifierAddress == s.remoteAddress && s.qualifierPort == s.remotePort
            }
            guard fits else { return .behaviorChanged }
            switch findOrCreateMapping(s, flags: 0, report: &report) {
            case .success(let m): mid = m
            case .failure(let r): return r
            }
        }
        guard let host = table.host(tenant: s.tenant, address: s.insideAddress) else {
            releaseIfUnused(mid)
            return .tableFull
        }
        if let l = maxSessionsPerHost, Int(table.hosts[Int(host)].sessions) >= l {
            releaseIfUnused(mid)
            table.releaseHostIfIdle(host)
            return .tableFull
        }
        // Dated back by its idle time (and the downtime): the idle list stays ordered by last use as long
        // as sessions come least recently used first. Before the clock's zero (a restart soon after boot):
        // dated at zero, which can only lengthen its life, by at most the time since boot.
        let lastSeen = UInt64(now) > idle ? now - UInt32(idle) : 0
        guard let sid = table.createSession(mapping: mid, remoteAddress: s.remoteAddress, remotePort: s.remotePort,
                                            viaAddress: s.viaAddress, viaPort: s.viaPort, timerClass: timer,
                                            state: s.tcpState, now: lastSeen) else {
            releaseIfUnused(mid)
            table.releaseHostIfIdle(host)
            return .tableFull
        }
        if s.cleanClose { table.sessions[Int(sid)].flags |= SessionRecord.flagCleanClose }
        if isOutside(s.remoteAddress) {
            table.sessions[Int(sid)].flags |= SessionRecord.flagHairpin
        } else if s.proto == IPProtocol.tcp && isHelperPort(s.remotePort) {
            // Helped again (issue 15): new commands are rewritten; offsets from before the restart are not
            // saved, so a control connection whose payload length had changed does not survive it.
            markHelped(sid)
        }
        table.hosts[Int(host)].sessions += 1
        report.sessionsRestored += 1
        return nil
    }

    /// The mapping of a saved dynamic or 1:1 session: the one its earlier sessions restored, or a new one.
    mutating func findOrCreateMapping(_ s: NAPT44SavedSession, flags: UInt8, report: inout RestoreReport) -> Result<UInt32, RestoreSkip> {
        let byInside = table.lookupMapping(tenant: s.tenant, proto: s.proto, insideAddress: s.insideAddress, insidePort: s.insidePort,
                                           qualifierAddress: s.qualifierAddress, qualifierPort: s.qualifierPort)
        let byOutside = table.lookupMapping(proto: s.proto, outsideAddress: s.outsideAddress, outsidePort: s.outsidePort)
        if byInside != 0 || byOutside != 0 {
            // The same mapping from both sides (a sibling session restored it), or a clash.
            guard byInside == byOutside, !table.mappings[Int(byInside)].isStatic,
                  table.mappings[Int(byInside)].flags & MappingRecord.flagOneToOne == flags & MappingRecord.flagOneToOne else {
                return .failure(.conflict)
            }
            return .success(byInside)
        }
        guard let host = table.host(tenant: s.tenant, address: s.insideAddress) else { return .failure(.tableFull) }
        if let l = maxPortsPerHost, Int(table.hosts[Int(host)].ports) >= l {
            table.releaseHostIfIdle(host)
            return .failure(.tableFull)
        }
        var rec = MappingRecord()
        rec.insideAddress = s.insideAddress
        rec.insidePort = s.insidePort
        rec.outsideAddress = s.outsideAddress
        rec.outsidePort = s.outsidePort
        rec.tenant = s.tenant
        rec.proto = s.proto
        rec.qualifierAddress = s.qualifierAddress
        rec.qualifierPort = s.qualifierPort
        rec.flags = flags
        guard let mid = table.createMapping(rec) else {
            table.releaseHostIfIdle(host)
            return .failure(.tableFull)
        }
        table.hosts[Int(host)].ports += 1
        report.mappingsRestored += 1
        return .success(mid)
    }

    /// A mapping made for a session that then could not be restored: gone again, its port free at once.
    mutating func releaseIfUnused(_ mid: UInt32) {
        let m = table.mappings[Int(mid)]
        guard !m.hasSessions, !m.isStatic else { return }
        table.releaseMapping(mid, holdUntil: 0)
        let host = table.lookupHost(tenant: m.tenant, address: m.insideAddress)
        if host != 0 {
            if table.hosts[Int(host)].ports > 0 { table.hosts[Int(host)].ports -= 1 }
            table.releaseHostIfIdle(host)
        }
    }
}


extension ShardRouter {
    /// The shard that owns a saved session under this router, or nil when its packets would now reach two
    /// different shards (outbound by inside host or forward, inbound by outside port): such a session
    /// cannot be restored, its flow starts again.
    public func restoreOwner(_ s: NAPT44SavedSession) -> Int? {
        let outbound = forwardOwner(proto: s.proto, address: s.insideAddress, port: s.insidePort) ?? hostOwner(s.insideAddress)
        let inbound: Int
        switch s.kind {
        case .oneToOne: inbound = hostOwner(s.insideAddress)
        case .dynamic, .forward: inbound = portOwner(s.outsidePort)
        }
        return inbound == outbound ? inbound : nil
    }
}
