import NATCore
import NATWire

enum Admission {
    case session(UInt32)
    case held
    case answered
}

extension NAPT44Engine {
    // MARK: New outbound flows (RFC 6146 §3.5 "filtering and updating binding and session information")

    mutating func createOutboundSession(_ t: IncomingTuple, ip: MutableIPv4View, tenant: UInt32, now: Timestamp) throws(DropReason) -> UInt32 {
        let nowS = now.seconds
        let (remote, remotePort) = redirected(proto: t.proto, destination: t.destination, port: t.destinationPort)
        var state: TCPState = .closed
        var timer = Self.timerClass(for: t.proto)
        if t.proto == IPProtocol.tcp {
            guard TCPFlags(rawValue: t.tcpFlags).contains(.rst) == false else { throw .tcpNotSYN }
            (state, timer) = Self.initialTCPState(flags: t.tcpFlags, outbound: true)
        }
        if table.isSessionTableFull { expire(now: now) }
        guard !table.isSessionTableFull else { throw reject(.sessionTableFull, ip, tenant: tenant) }
        guard let host = table.host(tenant: tenant, address: t.source) else { throw reject(.hostTableFull, ip, tenant: tenant) }
        if let l = maxSessionsPerHost, Int(table.hosts[Int(host)].sessions) >= l {
            table.releaseHostIfIdle(host)
            throw reject(.hostSessionLimit, ip, tenant: tenant)
        }
        if newSessionRate != 0 && !table.hosts[Int(host)].takeNewSessionCredit(
            nowMilliseconds: UInt32(truncatingIfNeeded: now.nanoseconds / 1_000_000), rate: newSessionRate, burst: newSessionBurst) {
            // Silently: an ICMP error per refused packet would only feed the flood back.
            table.releaseHostIfIdle(host)
            throw .hostNewSessionRate
        }
        let mid: UInt32
        do {
            mid = try mappingForOutbound(t, remote: remote, remotePort: remotePort, tenant: tenant, host: host, now: nowS)
        } catch {
            table.releaseHostIfIdle(host)
            throw reject(error, ip, tenant: tenant)
        }
        guard let sid = table.createSession(mapping: mid, remoteAddress: remote, remotePort: remotePort,
                                            viaAddress: t.destination, viaPort: t.destinationPort,
                                            timerClass: timer, state: state.rawValue, now: now.sessionSeconds) else {
            throw reject(.sessionTableFull, ip, tenant: tenant)
        }
        if isOutside(remote) {
            table.sessions[Int(sid)].flags |= SessionRecord.flagHairpin
        } else if t.proto == IPProtocol.tcp && !helperPorts.isEmpty && isHelperPort(remotePort) {
            markHelped(sid)
        }
        table.hosts[Int(host)].sessions += 1
        counters.sessionsCreated &+= 1
        if t.proto == IPProtocol.tcp && heldSYNs.count > 0 {
            // RFC 5382 REQ-4: an outbound SYN for the connection silently drops the held inbound SYN.
            let m = table.mappings[Int(mid)]
            let (a, b) = Self.synKey(outside: m.outsideAddress, outsidePort: m.outsidePort, remote: remote, remotePort: remotePort)
            heldSYNs.discard(keyA: a, keyB: b)
        }
        return sid
    }

    /// Where a new outbound flow to `destination:port` really goes: the first redirect that matches, or itself.
    func redirected(proto: UInt8, destination: UInt32, port: UInt16) -> (UInt32, UInt16) {
        guard hasRedirects && (proto == IPProtocol.tcp || proto == IPProtocol.udp) else { return (destination, port) }
        for r in configuration.redirects where r.proto == proto && r.matchAddress.rawValue == destination && r.matchPorts.contains(port) {
            return (r.targetAddress.rawValue, r.targetPort &+ (port &- r.matchPorts.lowerBound))
        }
        return (destination, port)
    }

    /// Finds or creates the mapping an outbound flow uses, per the mapping behaviour (RFC 4787 §4.1).
    mutating func mappingForOutbound(_ t: IncomingTuple, remote: UInt32, remotePort: UInt16, tenant: UInt32,
                                     host: UInt32, now: UInt32) throws(DropReason) -> UInt32 {
        let behavior = t.proto == IPProtocol.tcp ? mappingTCP : t.proto == IPProtocol.udp ? mappingUDP : mappingICMP
        // A static mapping (forward or 1:1) of this inside endpoint wins whatever the behaviour.
        let eim = table.lookupMapping(tenant: tenant, proto: t.proto, insideAddress: t.source, insidePort: t.sourcePort,
                                      qualifierAddress: 0, qualifierPort: 0)
        if eim != 0 && (behavior == .endpointIndependent || table.mappings[Int(eim)].isStatic) { return eim }
        var qa: UInt32 = 0, qp: UInt16 = 0
        switch behavior {
        case .endpointIndependent: break
        case .addressDependent: qa = remote
        case .addressAndPortDependent: qa = remote; qp = remotePort
        }
        if behavior != .endpointIndependent {
            let m = table.lookupMapping(tenant: tenant, proto: t.proto, insideAddress: t.source, insidePort: t.sourcePort,
                                        qualifierAddress: qa, qualifierPort: qp)
            if m != 0 { return m }
        }
        if let l = maxPortsPerHost, Int(table.hosts[Int(host)].ports) >= l { throw .hostPortLimit }
        guard !table.isMappingTableFull else { throw .mappingTableFull }
        var rec = MappingRecord()
        rec.insideAddress = t.source
        rec.insidePort = t.sourcePort
        rec.tenant = tenant
        rec.proto = t.proto
        rec.qualifierAddress = qa
        rec.qualifierPort = qp
        if let outside = staticInside[UInt64(tenant) << 32 | UInt64(t.source)] {
            // 1:1 NAT: the host's own outside address, ports unchanged.
            rec.outsideAddress = outside
            rec.outsidePort = t.sourcePort
            rec.flags = MappingRecord.flagOneToOne
            if table.lookupMapping(proto: t.proto, outsideAddress: outside, outsidePort: t.sourcePort) != 0 { throw .portsExhausted }
        } else {
            let (addr, port) = try allocateEndpoint(t, remote: remote, remotePort: remotePort, tenant: tenant)
            rec.outsideAddress = addr
            rec.outsidePort = port
        }
        guard let mid = table.createMapping(rec) else { throw .mappingTableFull }
        table.hosts[Int(host)].ports += 1
        counters.mappingsCreated &+= 1
        if mappingEvents != nil { recordMappingEvent(.created, rec, remoteAddress: remote, remotePort: remotePort) }
        return mid
    }

    // MARK: Port allocation

    /// Picks the outside address (paired pooling: one per inside host, RFC 4787 REQ-2) and port.
    mutating func allocateEndpoint(_ t: IncomingTuple, remote: UInt32, remotePort: UInt16, tenant: UInt32) throws(DropReason) -> (UInt32, UInt16) {
        let n = poolAddresses.count
        let start = Int(KeyHash.hash(UInt64(tenant) << 32 | UInt64(t.source), 0x706F_6F6C, seed: seed) % UInt32(n))
        let tries = pairedPooling ? 1 : n
        for i in 0..<tries {
            let addr = poolAddresses[(start + i) % n]
            if let port = allocatePort(proto: t.proto, address: addr, preferred: t.sourcePort, tenant: tenant,
                                       inside: t.source, remote: remote, remotePort: remotePort) {
                return (addr, port)
            }
        }
        throw .portsExhausted
    }

    /// RFC 4787 §4.2.1 port preservation when the port is free; otherwise RFC 6056 §3.3.3 (Algorithm 3,
    /// simple hash-based selection, keyed by the flow) over the configured port set, keeping a port below
    /// 1024 below 1024 and one from 1024 up from 1024 up, and parity when configured, with a bounded number
    /// of attempts (``PortAllocator``). Not inlined into ``allocateEndpoint(_:remote:remotePort:tenant:)``,
    /// whose loop over pool addresses would otherwise do the allocator's set-up for every address.
    @inline(never)
    mutating func allocatePort(proto: UInt8, address: UInt32, preferred: UInt16, tenant: UInt32, inside: UInt32,
                               remote: UInt32, remotePort: UInt16) -> UInt16? {
        // Through the engine's copyable probe: calling the table's own lookup from here made the compiler
        // copy the whole (noncopyable) table for every try.
        ports.allocate(proto: proto, address: address, preferred: preferred,
                       keyA: UInt64(inside) << 32 | UInt64(remote),
                       keyB: UInt64(preferred) << 48 | UInt64(remotePort) << 32 | UInt64(tenant) ^ UInt64(proto) << 56,
                       probe: endpointProbe)
    }

    // MARK: New inbound flows

    /// An inbound packet with no session: allowed by a mapping's filtering (RFC 4787 §5), a forward,
    /// 1:1 NAT; an unsolicited SYN is held (RFC 5382 REQ-4); anything else is dropped.
    mutating func admitInbound(_ t: IncomingTuple, ip: MutableIPv4View, now: Timestamp, hairpin: Bool) throws(DropReason) -> Admission {
        let nowS = now.seconds
        var mid = table.lookupMapping(proto: t.proto, outsideAddress: t.destination, outsidePort: t.destinationPort)
        let isSYN = t.proto == IPProtocol.tcp && TCPFlags(rawValue: t.tcpFlags).contains(.syn) && !TCPFlags(rawValue: t.tcpFlags).contains(.ack)
        if mid != 0 && table.mappings[Int(mid)].isHeld { mid = 0 }
        if mid == 0 && isSYN && !hairpin && expectations.used > 0,
           let e = expectations.take(proto: t.proto, outsideAddress: t.destination, outsidePort: t.destinationPort,
                                     remoteAddress: t.source, remotePort: t.sourcePort, now: nowS) {
            return .session(try admitExpected(e, t, now: now))
        }
        if mid == 0, let inside = staticOutside[t.destination] {
            // 1:1 NAT: every inbound flow to the host's outside address is admitted.
            var rec = MappingRecord()
            rec.insideAddress = UInt32(truncatingIfNeeded: inside)
            rec.tenant = UInt32(truncatingIfNeeded: inside >> 32)
            rec.insidePort = t.destinationPort
            rec.outsideAddress = t.destination
            rec.outsidePort = t.destinationPort
            rec.proto = t.proto
            rec.flags = MappingRecord.flagOneToOne
            guard let host = table.host(tenant: rec.tenant, address: rec.insideAddress) else { throw .hostTableFull }
            guard let m = table.createMapping(rec) else { table.releaseHostIfIdle(host); throw .mappingTableFull }
            table.hosts[Int(host)].ports += 1
            counters.mappingsCreated &+= 1
            if mappingEvents != nil { recordMappingEvent(.created, rec, remoteAddress: t.source, remotePort: t.sourcePort) }
            mid = m
        }
        guard mid != 0 else {
            if isSYN && !hairpin { return try holdSYN(ip, t, now: now) }
            if t.proto == IPProtocol.icmp && configuration.answerPing && !hairpin
                && MutableICMPv4View(unchecked: t.l4, count: t.l4Length).type == ICMPv4Type.echoRequest {
                answerEcho(ip, t)
                // It leaves on the outside like any packet we forward there, and is counted so.
                counters.outboundPackets &+= 1
                counters.outboundBytes &+= UInt64(ip.count)
                return .answered
            }
            throw .noMapping
        }
        let m = table.mappings[Int(mid)]
        let allowed: Bool
        if m.isStatic || m.flags & MappingRecord.flagOneToOne != 0 {
            allowed = true
        } else {
            switch configuration.behavior(for: t.proto).filtering {
            case .endpointIndependent: allowed = true
            case .addressDependent: allowed = table.mappingHasSession(mid, remoteAddress: t.source)
            case .addressAndPortDependent: allowed = false
            }
        }
        guard allowed else {
            if isSYN && !hairpin { return try holdSYN(ip, t, now: now) }
            throw .filtered
        }
        var state: TCPState = .closed
        var timer = Self.timerClass(for: t.proto)
        if t.proto == IPProtocol.tcp {
            guard isSYN else { throw .tcpNotSYN }
            (state, timer) = Self.initialTCPState(flags: t.tcpFlags, outbound: false)
        }
        if table.isSessionTableFull { expire(now: now) }
        guard !table.isSessionTableFull else { throw .sessionTableFull }
        guard let host = table.host(tenant: m.tenant, address: m.insideAddress) else { throw .hostTableFull }
        if let l = maxSessionsPerHost, Int(table.hosts[Int(host)].sessions) >= l {
            table.releaseHostIfIdle(host)
            throw .hostSessionLimit
        }
        guard let sid = table.createSession(mapping: mid, remoteAddress: t.source, remotePort: t.sourcePort,
                                            viaAddress: t.source, viaPort: t.sourcePort, timerClass: timer,
                                            state: state.rawValue, now: now.sessionSeconds) else { throw .sessionTableFull }
        if isOutside(t.source) { table.sessions[Int(sid)].flags |= SessionRecord.flagHairpin }
        table.hosts[Int(host)].sessions += 1
        counters.sessionsCreated &+= 1
        return .session(sid)
    }

    // MARK: Expiry

    /// Runs the timers: idle sessions, held ports, expired forwards, fragment state, held SYNs.
    /// Call it regularly (every 100 ms to 1 s); its cost is proportional to what expires.
    public mutating func expire(now: Timestamp) {
        let nowS = now.seconds
        for c in TimerClass.allCases {
            let timeout = configuration.timeouts.seconds(for: c)
            var sid = table.oldest(c)
            while sid != 0 && table.lastSeen(sid) &+ timeout <= nowS {
                endSession(sid, now: nowS)
                counters.sessionsExpired &+= 1
                sid = table.oldest(c)
            }
        }
        table.releaseHeldPorts(now: nowS)
        expireForwards(now: now)
        expireFragments(now: now)
        expireHeldSYNs(now: now)
    }

    /// Removes a session and, when it was its mapping's last, the mapping: its port is held for the
    /// configured time (RFC 6888 REQ-8) unless the TCP connection closed cleanly or the address is 1:1.
    mutating func endSession(_ sid: UInt32, now: UInt32) {
        let s = table.sessions[Int(sid)]
        if s.flags & SessionRecord.flagHelped != 0 { endHelped(sid, now: now) }
        let mid = table.removeSession(sid)
        let host = table.lookupHost(tenant: s.tenant, address: s.insideAddress)
        if host != 0 && table.hosts[Int(host)].sessions > 0 { table.hosts[Int(host)].sessions -= 1 }
        let m = table.mappings[Int(mid)]
        if !m.hasSessions && !m.isStatic {
            let clean = s.flags & SessionRecord.flagCleanClose != 0
            let oneToOne = m.flags & MappingRecord.flagOneToOne != 0
            let hold = clean || oneToOne || configuration.timeouts.portHold == 0 ? 0 : now &+ configuration.timeouts.portHold
            if mappingEvents != nil { recordMappingEvent(.removed, m, remoteAddress: s.remoteAddress, remotePort: s.remotePort) }
            table.releaseMapping(mid, holdUntil: hold)
            counters.mappingsFreed &+= 1
            if host != 0 && table.hosts[Int(host)].ports > 0 { table.hosts[Int(host)].ports -= 1 }
        }
        if host != 0 { table.releaseHostIfIdle(host) }
    }

    // MARK: Refusals

    /// Counts nothing itself (the entry point counts the thrown reason); sends ICMP 3/13 to the inside
    /// host for resource refusals (RFC 5508 REQ-8, RFC 6888 REQ-11 never evicts to make room).
    mutating func reject(_ reason: DropReason, _ ip: MutableIPv4View, tenant: UInt32) -> DropReason {
        switch reason {
        case .sessionTableFull, .mappingTableFull, .hostTableFull, .hostSessionLimit, .hostPortLimit, .portsExhausted:
            if configuration.icmpOnResourceLimit {
                sendICMPError(about: ip.pointer, length: ip.count, type: ICMPv4Type.destinationUnreachable,
                              code: ICMPv4UnreachableCode.communicationAdministrativelyProhibited,
                              destination: ip.source.rawValue, verdict: .toInside(tenant: tenant))
            }
        default:
            break
        }
        return reason
    }
}

extension NAPT44Engine {
    /// RFC 6888 §4: one mapping event into ``mappingEvents``.
    @inline(never)
    mutating func recordMappingEvent(_ kind: MappingEvent.Kind, _ m: MappingRecord, remoteAddress: UInt32, remotePort: UInt16) {
        mappingEvents!.record(MappingEvent(kind: kind, proto: m.proto, tenant: m.tenant, insideAddress: m.insideAddress,
                                           insidePort: m.insidePort, outsideAddress: m.outsideAddress, outsidePort: m.outsidePort,
                                           remoteAddress: remoteAddress, remotePort: remotePort, seconds: lastNow.seconds))
    }
}
