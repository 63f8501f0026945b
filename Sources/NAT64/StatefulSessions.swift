import NATCore
import NATWire

extension NAPT64Mapping {
    // MARK: New flows from the IPv6 side (RFC 6146 §3.5.1, §3.5.2.2 CLOSED, §3.5.3)

    /// An IPv6 packet without a session. TCP: a SYN makes the BIB entry (if needed) and a session in V6
    /// INIT; any other segment is translated with the BIB entry if there is one, and makes no state
    /// (RFC 6146 §3.5.2.2, CLOSED: "the state remains unchanged"). UDP and echo: BIB entry and session.
    @usableFromInline
    mutating func newFlow6to4(source: IPv6Address, hostID: UInt32, remote y: IPv4Address, proto: UInt8, local: UInt16,
                              remotePort: UInt16, transport t: NAT64Transport, now: Timestamp) throws(DropReason) -> NAT64Mapped4 {
        let nowS = now.seconds
        if proto == IPProtocol.tcp && !t.tcpFlags.contains(.syn) {
            let mid = hostID == 0 ? 0 : table.lookupMapping(tenant: 0, proto: proto, insideAddress: hostID, insidePort: local,
                                                              qualifierAddress: 0, qualifierPort: 0)
            guard mid != 0 else { throw .tcpNotSYN }
            let m = table.mappings[Int(mid)]
            if t.isFragment { recordFragment(hostID, y.rawValue, outside: m.outsideAddress, t, toIPv6: false, now: now) }
            return NAT64Mapped4(source: IPv4Address(m.outsideAddress), destination: y,
                                ports: Self.ports(t, local: m.outsidePort, towardLocal: false))
        }
        // RFC 6888 REQ-11: never evict; but sessions whose time is up make room first.
        if table.isSessionTableFull { expire(now: now) }
        guard !table.isSessionTableFull else { throw .sessionTableFull }
        var host = hostID
        if host == 0 || !hosts.records[Int(host)].isLive {
            guard let h = hosts.intern(source) else { throw .hostTableFull }
            host = h
        }
        let sid: UInt32
        do throws(DropReason) {
            if let l = configuration.maxSessionsPerHost, Int(hosts.records[Int(host)].sessions) >= l { throw .hostSessionLimit }
            if configuration.newSessionsPerSecond != 0 && !hosts.newSessions[Int(host)].take(
                nowMilliseconds: UInt32(truncatingIfNeeded: now.nanoseconds / 1_000_000),
                rate: UInt32(configuration.newSessionsPerSecond), burst: UInt32(configuration.newSessionBurst)) {
                throw .hostNewSessionRate
            }
            let (mid, made) = try binding(host: host, proto: proto, local: local, now: nowS)
            let state: TCPState = proto == IPProtocol.tcp ? .outboundInit : .closed
            let timer: TimerClass = proto == IPProtocol.tcp ? .tcpTransitory : proto == IPProtocol.udp ? .udp : .icmp
            guard let id = table.createSession(mapping: mid, remoteAddress: y.rawValue, remotePort: remotePort,
                                               viaAddress: y.rawValue, viaPort: remotePort, timerClass: timer,
                                               state: state.rawValue, now: now.sessionSeconds) else {
                if made { unbind(mid, host: host, holdUntil: 0) }
                throw .sessionTableFull
            }
            sid = id
        } catch {
            hosts.releaseIfUnused(host)
            throw error
        }
        hosts.records[Int(host)].sessions += 1
        counters.sessionsCreated &+= 1
        let s = table.sessions[Int(sid)]
        if proto == IPProtocol.tcp && heldSYNs.count > 0 {
            // RFC 6146 §3.5.2.2: the IPv6 SYN for a connection whose IPv4 SYN is kept: that one is discarded.
            let (a, b) = Self.synKey(outside: s.outsideAddress, outsidePort: s.outsidePort, remote: y.rawValue, remotePort: remotePort)
            heldSYNs.discard(keyA: a, keyB: b)
        }
        if t.isFragment { recordFragment(host, y.rawValue, outside: s.outsideAddress, t, toIPv6: false, now: now) }
        return NAT64Mapped4(source: IPv4Address(s.outsideAddress), destination: y,
                            ports: Self.ports(t, local: s.outsidePort, towardLocal: false))
    }

    /// The BIB entry of (X', x) for `proto`, made when there is none (endpoint-independent: one per IPv6
    /// transport address, whatever the destination). Returns it and whether it is new.
    mutating func binding(host: UInt32, proto: UInt8, local: UInt16, now: UInt32) throws(DropReason) -> (UInt32, Bool) {
        let mid = table.lookupMapping(tenant: 0, proto: proto, insideAddress: host, insidePort: local,
                                      qualifierAddress: 0, qualifierPort: 0)
        if mid != 0 { return (mid, false) }
        if let l = configuration.maxBindingsPerHost, Int(hosts.records[Int(host)].bindings) >= l { throw .hostPortLimit }
        if table.isMappingTableFull { table.releaseHeldPorts(now: now) }
        guard !table.isMappingTableFull else { throw .mappingTableFull }
        let (address, port) = try allocate(host: host, proto: proto, local: local)
        var rec = MappingRecord()
        rec.insideAddress = host
        rec.insidePort = local
        rec.outsideAddress = address
        rec.outsidePort = port
        rec.proto = proto
        guard let id = table.createMapping(rec) else { throw .mappingTableFull }
        hosts.records[Int(host)].bindings += 1
        counters.mappingsCreated &+= 1
        return (id, true)
    }

    /// Ends a BIB entry that has no sessions (its port held until `holdUntil`, 0: free at once).
    mutating func unbind(_ mid: UInt32, host: UInt32, holdUntil: UInt32) {
        table.releaseMapping(mid, holdUntil: holdUntil)
        counters.mappingsFreed &+= 1
        if hosts.records[Int(host)].bindings > 0 { hosts.records[Int(host)].bindings -= 1 }
    }

    // MARK: IPv4 transport addresses (RFC 6146 §3.5.1.1, RFC 6056 §3.3.3)

    /// An IPv4 transport address for a new BIB entry: the host's pool address (paired pooling: a hash of
    /// the IPv6 address picks it, so every entry of the host lands on it), the next ones when paired
    /// pooling is off and it has no free port.
    func allocate(host: UInt32, proto: UInt8, local: UInt16) throws(DropReason) -> (UInt32, UInt16) {
        let h = hosts.records[Int(host)]
        let n = poolAddresses.count
        // (newStaticBinding picks its address the same way.)
        let start = Int(KeyHash.hash(h.high, h.low ^ 0x706F_6F6C, seed: seed) % UInt32(n))
        let tries = configuration.pairedPooling ? 1 : n
        for i in 0..<tries {
            let address = poolAddresses[(start + i) % n]
            if let port = allocatePort(proto: proto, address: address, local: local, host: h) {
                return (address, port)
            }
        }
        throw .portsExhausted
    }

    /// A free port on `address` for the host's port `local` (``PortAllocator``): the host's own when
    /// preservation is on and it is free, else RFC 6056 §3.3.3 (simple hash-based selection) from a keyed
    /// hash of (IPv6 host, address, port, protocol), keeping TCP and UDP ports in their range (0-1023 or
    /// 1024-65535, RFC 6146 §3.5.1.1 SHOULD; the other range only when the configured ports have none in
    /// this one) and their parity, for at most ``NAPT64Configuration/maxPortAttempts`` candidates. A port is
    /// free when no BIB entry (live, or held after release) of the protocol owns it.
    @inline(never)
    func allocatePort(proto: UInt8, address: UInt32, local: UInt16, host h: IPv6HostTable.Host) -> UInt16? {
        let allocator = proto == IPProtocol.tcp ? tcpPorts : proto == IPProtocol.udp ? udpPorts : icmpIdentifiers
        return allocator.allocate(proto: proto, address: address, preferred: local, keyA: h.high ^ UInt64(address),
                                  keyB: h.low ^ (UInt64(local) << 48 | UInt64(proto) << 40), probe: table.endpointProbe)
    }

    // MARK: New flows from the IPv4 side (RFC 6146 §3.5.1, §3.5.2.2, §3.5.3)

    /// An IPv4 packet to (T, t) without a session. It needs a live BIB entry for (T, t) and, with
    /// address-dependent filtering, a session of that entry toward its source's address (static entries
    /// are open to all). UDP and echo then get a session. A TCP SYN gets a session in V4 INIT; a SYN that
    /// has no BIB entry or is filtered is kept 6 s (thrown as `unsolicited_syn`, which
    /// ``refusal(of:reason:now:)`` turns into a hold), or dropped as `filtered` when externally initiated
    /// connections are refused. Other TCP segments are translated with the BIB entry and make no state.
    /// A hairpinned SYN is refused the same way; the translator keeps its IPv4 form (RFC 6146 §3.8).
    @usableFromInline
    mutating func newFlow4to6(source: IPv4Address, destination: IPv4Address, proto: UInt8, local: UInt16,
                              remotePort: UInt16, transport t: NAT64Transport, hairpin: Bool,
                              now: Timestamp) throws(DropReason) -> NAT64Mapped6 {
        var mid = table.lookupMapping(proto: proto, outsideAddress: destination.rawValue, outsidePort: local)
        if mid != 0 && table.mappings[Int(mid)].isHeld { mid = 0 }
        let src = try remote6(source)
        if proto == IPProtocol.tcp {
            let syn = t.tcpFlags.contains(.syn) && !t.tcpFlags.contains(.ack)
            if syn {
                if configuration.dropExternallyInitiatedTCP { throw .filtered }
                // RFC 6146 §3.5.2.2, and with §3.8 for a hairpinned SYN too: kept (the translator holds
                // the IPv4 form of a hairpinned one).
                guard mid != 0 else { throw .unsolicitedSYN }
                guard admits(mid, remote: source.rawValue) else { throw .unsolicitedSYN }
            } else {
                guard mid != 0 else { throw .noMapping }
                guard admits(mid, remote: source.rawValue) else { throw .filtered }
                let m = table.mappings[Int(mid)]
                if t.isFragment {
                    recordFragment(source.rawValue, destination.rawValue, outside: m.insideAddress, t, toIPv6: true, now: now)
                }
                return NAT64Mapped6(source: src, destination: hosts.address(m.insideAddress),
                                    ports: Self.ports(t, local: m.insidePort, towardLocal: true))
            }
        } else {
            guard mid != 0 else { throw .noMapping }
            guard admits(mid, remote: source.rawValue) else { throw .filtered }
        }
        if table.isSessionTableFull { expire(now: now) }
        guard !table.isSessionTableFull else { throw .sessionTableFull }
        let m = table.mappings[Int(mid)]
        let host = m.insideAddress
        if let l = configuration.maxSessionsPerHost, Int(hosts.records[Int(host)].sessions) >= l { throw .hostSessionLimit }
        let state: TCPState = proto == IPProtocol.tcp ? .inboundInit : .closed
        let timer: TimerClass = proto == IPProtocol.tcp ? .tcpTransitory : proto == IPProtocol.udp ? .udp : .icmp
        guard let sid = table.createSession(mapping: mid, remoteAddress: source.rawValue, remotePort: remotePort,
                                            viaAddress: source.rawValue, viaPort: remotePort, timerClass: timer,
                                            state: state.rawValue, now: now.sessionSeconds) else { throw .sessionTableFull }
        hosts.records[Int(host)].sessions += 1
        counters.sessionsCreated &+= 1
        if t.isFragment { recordFragment(source.rawValue, destination.rawValue, outside: host, t, toIPv6: true, now: now) }
        return NAT64Mapped6(source: src, destination: hosts.address(host),
                            ports: Self.ports(t, local: table.sessions[Int(sid)].insidePort, towardLocal: true))
    }

    /// RFC 6146 §3.5.1 filtering: endpoint-independent lets every IPv4 host use a BIB entry;
    /// address-dependent only hosts the IPv6 host has a session with. Static entries are open to all.
    func admits(_ mid: UInt32, remote: UInt32) -> Bool {
        guard configuration.filtering == .addressDependent else { return true }
        if table.mappings[Int(mid)].isStatic { return true }
        return table.mappingHasSession(mid, remoteAddress: remote)
    }

    // MARK: Fragments (RFC 6146 §3.4: later fragments follow the first)

    /// Remembers what the first fragment of a datagram was translated with, for its later fragments
    /// (which carry no ports): the IPv4 address T for IPv6 → IPv4, the IPv6 host id for IPv4 → IPv6.
    @usableFromInline
    mutating func recordFragment(_ a: UInt32, _ b: UInt32, outside: UInt32, _ t: NAT64Transport, toIPv6: Bool, now: Timestamp) {
        let (ka, kb) = Self.fragmentKey(a, b, identification: t.fragmentIdentification, proto: t.protocolNumber, toIPv6: toIPv6)
        var f = FragmentTracker.Flow()
        f.keyA = ka
        f.keyB = kb
        f.newSource = outside
        f.toInside = toIPv6
        f.expires = now.milliseconds &+ fragmentMilliseconds
        if !fragments.record(f, now: now.milliseconds) { counters.recordDrop(.fragmentTableFull) }
    }
}
