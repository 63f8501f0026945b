import NATCore
import NATWire

/// One stateful NAT64 session (RFC 6146 §3.2) as it is saved across a restart (issue 12): its IPv6
/// host and port, its BIB entry's IPv4 transport address, the IPv4 remote, TCP and timer state, and how
/// long it had been idle when it was taken.
public struct NAPT64SavedSession: Sendable, Hashable {
    public var proto: UInt8
    /// Its BIB entry is a static one (`static_bib`): restored only onto the same entry.
    public var isStatic: Bool
    public var ipv6: IPv6Address
    public var ipv6Port: UInt16
    public var ipv4: UInt32
    public var ipv4Port: UInt16
    public var remoteAddress: UInt32
    /// 0 for echo sessions (keyed by the identifier alone).
    public var remotePort: UInt16
    public var tcpState: UInt8
    public var timerClass: UInt8
    public var cleanClose: Bool
    public var idleSeconds: UInt32

    public init(proto: UInt8, isStatic: Bool = false, ipv6: IPv6Address, ipv6Port: UInt16, ipv4: UInt32, ipv4Port: UInt16,
                remoteAddress: UInt32, remotePort: UInt16, tcpState: UInt8 = 0, timerClass: UInt8, cleanClose: Bool = false,
                idleSeconds: UInt32) {
        self.proto = proto
        self.isStatic = isStatic
        self.ipv6 = ipv6
        self.ipv6Port = ipv6Port
        self.ipv4 = ipv4
        self.ipv4Port = ipv4Port
        self.remoteAddress = remoteAddress
        self.remotePort = remotePort
        self.tcpState = tcpState
        self.timerClass = timerClass
        self.cleanClose = cleanClose
        self.idleSeconds = idleSeconds
    }
}

/// A stateful NAT64's state across a restart: sessions (least recently used first; BIB entries are
/// implied by them) and held IPv4 ports (soonest free first).
public struct NAPT64SavedState: Sendable, Hashable {
    public var sessions: [NAPT64SavedSession]
    public var holds: [SavedPortHold]

    public init(sessions: [NAPT64SavedSession] = [], holds: [SavedPortHold] = []) {
        self.sessions = sessions
        self.holds = holds
    }

    public var isEmpty: Bool { sessions.isEmpty && holds.isEmpty }
}

extension NAPT64Mapping {
    // MARK: Restart without loss (control plane: allocates; never on the packet path)

    /// Every session (least recently used first) and held port, for saving at a clean stop.
    public func exportState(now: Timestamp) -> NAPT64SavedState {
        let nowS = now.seconds
        var out: [(seen: UInt32, s: NAPT64SavedSession)] = []
        out.reserveCapacity(table.sessionCount)
        for i in 1...table.sessionCapacity where table.sessions[i].isLive {
            let s = table.sessions[i], l = table.sessionLinks[i], seen = table.lastSeen(UInt32(i))
            out.append((seen, NAPT64SavedSession(
                proto: s.proto, isStatic: table.mappings[Int(l.mapping)].isStatic, ipv6: hosts.address(s.insideAddress),
                ipv6Port: s.insidePort, ipv4: s.outsideAddress, ipv4Port: s.outsidePort, remoteAddress: s.remoteAddress,
                remotePort: s.remotePort, tcpState: l.state, timerClass: l.timerClass,
                cleanClose: s.flags & SessionRecord.flagCleanClose != 0, idleSeconds: nowS > seen ? nowS - seen : 0)))
        }
        out.sort { $0.seen < $1.seen }
        return NAPT64SavedState(sessions: out.map(\.s), holds: table.exportHolds(now: nowS))
    }

    /// Puts saved state back (at start, before the first packet): each entry is checked against the
    /// current configuration and skipped with its reason counted when it no longer fits (expired after
    /// its idle time plus `elapsedSeconds` of downtime, IPv4 address not in the pool, port not among the
    /// protocol's ports, static entry gone, endpoint taken, tables or per-host limits full).
    public mutating func importState(_ state: NAPT64SavedState, elapsedSeconds: UInt32, now: Timestamp) -> RestoreReport {
        var report = RestoreReport()
        let nowS = now.seconds
        for s in state.sessions {
            if let r = restoreSession(s, elapsed: elapsedSeconds, now: nowS, report: &report) { report.skip(r) }
        }
        var holds: [SavedPortHold] = []
        for h in state.holds {
            if isPoolAddress(IPv4Address(h.outsideAddress)) && ports(for: h.proto)?.contains(h.outsidePort) == true {
                holds.append(h)
            } else {
                report.skip(.outsideNotInPool)
            }
        }
        table.restoreHolds(holds, elapsedSeconds: elapsedSeconds, now: nowS, portHold: configuration.timeouts.portHold, report: &report)
        return report
    }

    func ports(for proto: UInt8) -> PortSet? {
        switch proto {
        case IPProtocol.tcp: configuration.tcpPorts
        case IPProtocol.udp: configuration.udpPorts
        case IPProtocol.icmp: configuration.icmpIdentifiers
        default: nil
        }
    }

    mutating func restoreSession(_ s: NAPT64SavedSession, elapsed: UInt32, now: UInt32, report: inout RestoreReport) -> RestoreSkip? {
        guard let ports = ports(for: s.proto), let timer = TimerClass(rawValue: s.timerClass), timer != .other,
              TCPState(rawValue: s.tcpState) != nil else { return .invalid }
        let idle = UInt64(s.idleSeconds) + UInt64(elapsed)
        guard idle < UInt64(configuration.timeouts.seconds(for: timer)) else { return .expired }
        guard isPoolAddress(IPv4Address(s.ipv4)) else { return .outsideNotInPool }
        guard s.isStatic || ports.contains(s.ipv4Port) else { return .portNotInRange }
        guard table.lookupFromOutside(proto: s.proto, outsideAddress: s.ipv4, outsidePort: s.ipv4Port,
                                      remoteAddress: s.remoteAddress, remotePort: s.remotePort) == 0 else { return .conflict }
        let existingHost = hosts.lookup(s.ipv6)
        if existingHost != 0, table.lookupFromInside(tenant: 0, proto: s.proto, insideAddress: existingHost, insidePort: s.ipv6Port,
                                                     remoteAddress: s.remoteAddress, remotePort: s.remotePort) != 0 {
            return .conflict
        }
        let byOutside = table.lookupMapping(proto: s.proto, outsideAddress: s.ipv4, outsidePort: s.ipv4Port)
        if s.isStatic {
            guard byOutside != 0, table.mappings[Int(byOutside)].isStatic, existingHost != 0,
                  table.mappings[Int(byOutside)].insideAddress == existingHost,
                  table.mappings[Int(byOutside)].insidePort == s.ipv6Port else { return .noForward }
        }
        guard let host = hosts.intern(s.ipv6) else { return .tableFull }
        if let l = configuration.maxSessionsPerHost, Int(hosts.records[Int(host)].sessions) >= l {
            hosts.releaseIfUnused(host)
            return .tableFull
        }
        var mid = byOutside
        if !s.isStatic {
            let byInside = table.lookupMapping(tenant: 0, proto: s.proto, insideAddress: host, insidePort: s.ipv6Port,
                                               qualifierAddress: 0, qualifierPort: 0)
            if byInside != 0 || byOutside != 0 {
                guard byInside == byOutside, !table.mappings[Int(byInside)].isStatic else {
                    hosts.releaseIfUnused(host)
                    return .conflict
                }
            } else {
                if let l = configuration.maxBindingsPerHost, Int(hosts.records[Int(host)].bindings) >= l {
                    hosts.releaseIfUnused(host)
                    return .tableFull
                }
                var rec = MappingRecord()
                rec.insideAddress = host
                rec.insidePort = s.ipv6Port
                rec.outsideAddress = s.ipv4
                rec.outsidePort = s.ipv4Port
                rec.proto = s.proto
                guard let m = table.createMapping(rec) else {
                    hosts.releaseIfUnused(host)
                    return .tableFull
                }
                hosts.records[Int(host)].bindings += 1
                report.mappingsRestored += 1
                mid = m
            }
        }
        let lastSeen = UInt64(now) > idle ? now - UInt32(idle) : 0
        guard let sid = table.createSession(mapping: mid, remoteAddress: s.remoteAddress, remotePort: s.remotePort,
                                            viaAddress: s.remoteAddress, viaPort: s.remotePort, timerClass: timer,
                                            state: s.tcpState, now: lastSeen) else {
            if !table.mappings[Int(mid)].hasSessions && !table.mappings[Int(mid)].isStatic { unbind(mid, host: host, holdUntil: 0) }
            hosts.releaseIfUnused(host)
            return .tableFull
        }
        if s.cleanClose { table.sessions[Int(sid)].flags |= SessionRecord.flagCleanClose }
        hosts.records[Int(host)].sessions += 1
        report.sessionsRestored += 1
        return nil
    }
}
