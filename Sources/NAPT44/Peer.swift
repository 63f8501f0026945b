import NATCore
import NATWire

/// A dynamic outbound mapping as PCP's PEER opcode sees it (RFC 6887 §12): the outside endpoint the
/// NAT gives an inside endpoint towards one remote peer, and how long it lives without traffic.
public struct PeerMapping: Sendable, Equatable {
    public var outsideAddress: IPv4Address
    public var outsidePort: UInt16
    /// Seconds from now until the session ends if no packet comes (its idle timeout, counted from its last use).
    public var lifetime: UInt32
    /// Whether this call created the session (false: it existed, and was refreshed or only looked at).
    public var created: Bool

    public init(outsideAddress: IPv4Address, outsidePort: UInt16, lifetime: UInt32, created: Bool) {
        self.outsideAddress = outsideAddress
        self.outsidePort = outsidePort
        self.lifetime = lifetime
        self.created = created
    }
}

extension NAPT44Engine {
    /// RFC 6887 §12.3: the session of `inside:insidePort` → `remote:remotePort` (TCP or UDP), created as
    /// an outbound packet of the flow would create it (the same mapping behaviour, port allocation,
    /// limits and redirects; a TCP session starts as after an outbound SYN) when `create` and there is
    /// none; an existing one is refreshed when `create` (its idle timer starts again). With `create`
    /// false nothing changes and nil means there is no session. Control plane: may allocate.
    ///
    /// Throws the reason the NAT refuses a new flow (``DropReason/portsExhausted``, a table full, a
    /// per-host limit); the caller decides how to count it (it is no dropped packet).
    public mutating func peer(proto: UInt8, tenant: UInt32 = 0, inside: IPv4Address, insidePort: UInt16, remote: IPv4Address,
                              remotePort: UInt16, create: Bool, now: Timestamp) throws(DropReason) -> PeerMapping? {
        guard proto == IPProtocol.tcp || proto == IPProtocol.udp else { throw .unsupportedProtocol }
        guard isInside(inside.rawValue), insidePort != 0, remotePort != 0 else { throw .notNATTraffic }
        lastNow = max(lastNow, now)
        let nowS = now.sessionSeconds
        var sid = table.lookupFromInside(tenant: tenant, proto: proto, insideAddress: inside.rawValue, insidePort: insidePort,
                                         remoteAddress: remote.rawValue, remotePort: remotePort)
        var created = false
        if sid != 0 {
            if create { table.touch(sid, now: nowS) }
        } else {
            guard create else { return nil }
            sid = try createPeerSession(proto: proto, tenant: tenant, inside: inside.rawValue, insidePort: insidePort,
                                        remote: remote.rawValue, remotePort: remotePort, now: now)
            created = true
        }
        let s = table.sessions[Int(sid)]
        let timeout = configuration.timeouts.seconds(for: TimerClass(rawValue: table.sessionLinks[Int(sid)].timerClass) ?? .udp)
        let ends = table.lastSeen(sid) &+ timeout
        return PeerMapping(outsideAddress: IPv4Address(s.outsideAddress), outsidePort: s.outsidePort,
                           lifetime: ends > now.seconds ? ends - now.seconds : 0, created: created)
    }

    /// As ``createOutboundSession(_:ip:tenant:now:)`` for a flow that has sent no packet yet (no ICMP
    /// error to send back on a refusal: there is no packet to answer).
    mutating func createPeerSession(proto: UInt8, tenant: UInt32, inside: UInt32, insidePort: UInt16, remote via: UInt32,
                                    remotePort viaPort: UInt16, now: Timestamp) throws(DropReason) -> UInt32 {
        let (remote, remotePort) = redirected(proto: proto, destination: via, port: viaPort)
        var state: TCPState = .closed
        var timer = Self.timerClass(for: proto)
        if proto == IPProtocol.tcp { (state, timer) = Self.initialTCPState(flags: TCPFlags.syn.rawValue, outbound: true) }
        if table.isSessionTableFull { expire(now: now) }
        guard !table.isSessionTableFull else { throw .sessionTableFull }
        guard let host = table.host(tenant: tenant, address: inside) else { throw .hostTableFull }
        if let l = maxSessionsPerHost, Int(table.hosts[Int(host)].sessions) >= l {
            table.releaseHostIfIdle(host)
            throw .hostSessionLimit
        }
        // The mapping code reads only the tuple's addresses, ports and protocol, never its transport bytes.
        let found: Result<UInt32, DropReason> = withUnsafeTemporaryAllocation(byteCount: 8, alignment: 8) { scratch in
            let t = IncomingTuple(proto: proto, source: inside, destination: via, sourcePort: insidePort, destinationPort: viaPort,
                                  tcpFlags: TCPFlags.syn.rawValue, l4: scratch.baseAddress!, l4Length: 0, isFirstFragment: false)
            do throws(DropReason) {
                return .success(try mappingForOutbound(t, remote: remote, remotePort: remotePort, tenant: tenant, host: host,
                                                       now: now.seconds))
            } catch {
                return .failure(error)
            }
        }
        let mid: UInt32
        switch found {
        case .success(let m): mid = m
        case .failure(let e):
            table.releaseHostIfIdle(host)
            throw e
        }
        guard let sid = table.createSession(mapping: mid, remoteAddress: remote, remotePort: remotePort, viaAddress: via,
                                            viaPort: viaPort, timerClass: timer, state: state.rawValue,
                                            now: now.sessionSeconds) else { throw .sessionTableFull }
        if isOutside(remote) { table.sessions[Int(sid)].flags |= SessionRecord.flagHairpin }
        table.hosts[Int(host)].sessions += 1
        counters.sessionsCreated &+= 1
        return sid
    }
}
