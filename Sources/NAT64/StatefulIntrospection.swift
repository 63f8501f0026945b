import NATCore
import NATWire

/// One session of a stateful NAT64 as RFC 6146 §3.2 describes it: the IPv6 side (X', x) ↔ (Y', y) and
/// the IPv4 side (T, t) ↔ (Z, z) with Z = Y (the address embedded in Y').
public struct NAT64SessionInfo: Sendable, Hashable, CustomStringConvertible {
    public var proto: NAT64Protocol
    public var ipv6: IPv6Address
    public var ipv6Port: UInt16
    public var remote6: IPv6Address
    public var ipv4: IPv4Address
    public var ipv4Port: UInt16
    public var remote4: IPv4Address
    /// The remote port (0 for ICMP echo sessions, which are keyed by the identifier alone).
    public var remotePort: UInt16
    /// TCP sessions: the RFC 6146 §3.5.2 state.
    public var tcpState: TCPState?
    public var timerClass: TimerClass
    /// Seconds since the session was last refreshed.
    public var idleSeconds: UInt32

    public var description: String {
        var s = "\(proto) [\(ipv6)]:\(ipv6Port) -> [\(remote6)]:\(remotePort) as \(ipv4):\(ipv4Port) -> \(remote4):\(remotePort)"
        if let t = tcpState { s += " \(t.rfc6146Name)" }
        return s + " idle \(idleSeconds)s"
    }
}

/// One BIB entry (RFC 6146 §3.1): (X', x) ↔ (T, t) for one protocol.
public struct NAT64BindingInfo: Sendable, Hashable, CustomStringConvertible {
    public var proto: NAT64Protocol
    public var ipv6: IPv6Address
    public var ipv6Port: UInt16
    public var ipv4: IPv4Address
    public var ipv4Port: UInt16
    public var isStatic: Bool
    /// Sessions that use the entry.
    public var sessions: Int

    public var description: String {
        "\(proto) [\(ipv6)]:\(ipv6Port) <-> \(ipv4):\(ipv4Port)\(isStatic ? " static" : "") sessions=\(sessions)"
    }
}

extension NAPT64Mapping {
    /// Sessions now.
    public var sessionCount: Int { table.sessionCount }
    /// Live BIB entries (static ones included; not those whose port is held after release).
    public var bindingCount: Int { table.mappingCount }
    /// IPv4 ports held after their BIB entry ended (RFC 6888 REQ-8).
    public var heldPortCount: Int { table.heldCount }
    /// IPv6 hosts with state.
    public var hostCount: Int { hosts.count }

    func info(_ sid: UInt32, now: Timestamp) -> NAT64SessionInfo? {
        let s = table.sessions[Int(sid)], l = table.sessionLinks[Int(sid)], seen = table.lastSeen(sid)
        guard s.isLive, let p = NAT64Protocol(ipv4Number: s.proto) else { return nil }
        return NAT64SessionInfo(
            proto: p, ipv6: hosts.address(s.insideAddress), ipv6Port: s.insidePort,
            remote6: prefix.embedUnchecked(IPv4Address(s.remoteAddress)),
            ipv4: IPv4Address(s.outsideAddress), ipv4Port: s.outsidePort, remote4: IPv4Address(s.remoteAddress),
            remotePort: s.remotePort, tcpState: p == .tcp ? TCPState(rawValue: l.state) : nil,
            timerClass: TimerClass(rawValue: l.timerClass) ?? .other,
            idleSeconds: now.seconds >= seen ? now.seconds - seen : 0)
    }

    /// Every session (control plane: walks the whole table and allocates; never on the packet path).
    public func sessions(now: Timestamp) -> [NAT64SessionInfo] {
        var out: [NAT64SessionInfo] = []
        for i in 1...table.sessionCapacity {
            if let s = info(UInt32(i), now: now) { out.append(s) }
        }
        return out
    }

    /// The session of an IPv6 flow: (X', x) toward the IPv4 host `remote` (port `remotePort`; 0 for echo).
    public func session(_ proto: NAT64Protocol, ipv6: IPv6Address, port: UInt16, remote: IPv4Address, remotePort: UInt16,
                        now: Timestamp) -> NAT64SessionInfo? {
        let hid = hosts.lookup(ipv6)
        guard hid != 0 else { return nil }
        let sid = table.lookupFromInside(tenant: 0, proto: proto.ipv4Number, insideAddress: hid, insidePort: port,
                                         remoteAddress: remote.rawValue, remotePort: remotePort)
        return sid == 0 ? nil : info(sid, now: now)
    }

    /// The BIB entry of an IPv6 transport address, if any.
    public func binding(_ proto: NAT64Protocol, ipv6: IPv6Address, port: UInt16) -> NAT64BindingInfo? {
        let hid = hosts.lookup(ipv6)
        guard hid != 0 else { return nil }
        let mid = table.lookupMapping(tenant: 0, proto: proto.ipv4Number, insideAddress: hid, insidePort: port,
                                      qualifierAddress: 0, qualifierPort: 0)
        return mid == 0 ? nil : bindingInfo(mid)
    }

    /// The BIB entry that owns an IPv4 transport address, if any (not one whose port is held).
    public func binding(_ proto: NAT64Protocol, ipv4: IPv4Address, port: UInt16) -> NAT64BindingInfo? {
        let mid = table.lookupMapping(proto: proto.ipv4Number, outsideAddress: ipv4.rawValue, outsidePort: port)
        return mid == 0 || table.mappings[Int(mid)].isHeld ? nil : bindingInfo(mid)
    }

    func bindingInfo(_ mid: UInt32) -> NAT64BindingInfo? {
        let m = table.mappings[Int(mid)]
        guard m.flags & MappingRecord.flagLive != 0, !m.isHeld, let p = NAT64Protocol(ipv4Number: m.proto) else { return nil }
        var n = 0
        var s = table.firstSession(ofMapping: mid)
        while s != 0 {
            n += 1
            s = table.nextSession(inMapping: s)
        }
        return NAT64BindingInfo(proto: p, ipv6: hosts.address(m.insideAddress), ipv6Port: m.insidePort,
                                ipv4: IPv4Address(m.outsideAddress), ipv4Port: m.outsidePort, isStatic: m.isStatic, sessions: n)
    }

    /// Every live BIB entry (control plane).
    public func bindings() -> [NAT64BindingInfo] {
        var out: [NAT64BindingInfo] = []
        for i in 1...table.mappingCapacity {
            if let b = bindingInfo(UInt32(i)) { out.append(b) }
        }
        return out
    }
}
