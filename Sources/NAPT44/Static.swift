import NATCore
import NATWire

/// A session as the control plane shows it.
public struct SessionInfo: Sendable, Hashable, CustomStringConvertible {
    public var proto: UInt8
    public var tenant: UInt32
    public var inside: (IPv4Address, UInt16)
    public var outside: (IPv4Address, UInt16)
    public var remote: (IPv4Address, UInt16)
    public var via: (IPv4Address, UInt16)
    public var tcpState: TCPState?
    public var idleSeconds: UInt32
    public var isStatic: Bool
    /// An application-level gateway watches it (issue 15).
    public var isHelped = false

    public static func == (a: SessionInfo, b: SessionInfo) -> Bool { a.description == b.description }
    public func hash(into h: inout Hasher) { h.combine(description) }

    public var description: String {
        let p = proto == IPProtocol.tcp ? "tcp" : proto == IPProtocol.udp ? "udp" : proto == IPProtocol.icmp ? "icmp" : "\(proto)"
        var s = "\(p) \(inside.0):\(inside.1) -> \(outside.0):\(outside.1) <-> \(remote.0):\(remote.1)"
        if via != remote { s += " (via \(via.0):\(via.1))" }
        if let st = tcpState { s += " \(st)" }
        if tenant != 0 { s += " tenant \(tenant)" }
        return s
    }
}

extension NAPT44Engine {
    // MARK: Port forwards

    /// Installs a static port forward. A port that a live mapping (or a port in its hold time) already
    /// owns is refused: live mappings are never evicted.
    public mutating func addForward(_ f: PortForward) throws(ConfigurationError) {
        guard f.proto == IPProtocol.tcp || f.proto == IPProtocol.udp else {
            throw ConfigurationError(key: "forward.protocol", problem: "must be tcp or udp")
        }
        guard isOutside(f.outsideAddress.rawValue) else {
            throw ConfigurationError(key: "forward.outside", problem: "\(f.outsideAddress) is not one of this NAT's outside addresses")
        }
        guard f.outsidePorts.lowerBound > 0, Int(f.insidePort) + f.outsidePorts.count - 1 <= 65535 else {
            throw ConfigurationError(key: "forward.ports", problem: "port 0, or a range that runs past 65535")
        }
        for port in f.outsidePorts {
            let mid = table.lookupMapping(proto: f.proto, outsideAddress: f.outsideAddress.rawValue, outsidePort: port)
            if mid != 0 {
                let m = table.mappings[Int(mid)]
                let what = m.isStatic ? "another forward" : m.isHeld ? "a port in its reuse hold" : "a live mapping of \(IPv4Address(m.insideAddress)):\(m.insidePort)"
                throw ConfigurationError(key: "forward", problem: "outside port \(port) is taken by \(what)")
            }
        }
        guard table.mappingCapacity - table.mappingCount - table.heldCount >= f.outsidePorts.count else {
            throw ConfigurationError(key: "forward", problem: "the mapping table has no room for \(f.outsidePorts.count) more entries")
        }
        installForward(f)
    }

    mutating func installForward(_ f: PortForward) {
        for port in f.outsidePorts {
            var rec = MappingRecord()
            rec.proto = f.proto
            rec.outsideAddress = f.outsideAddress.rawValue
            rec.outsidePort = port
            rec.insideAddress = f.insideAddress.rawValue
            rec.insidePort = f.insidePort &+ (port &- f.outsidePorts.lowerBound)
            rec.tenant = f.tenant
            rec.flags = MappingRecord.flagStatic
            rec.expiry = f.expires?.seconds ?? 0
            let indexInside = table.lookupMapping(tenant: f.tenant, proto: f.proto, insideAddress: rec.insideAddress,
                                                  insidePort: rec.insidePort, qualifierAddress: 0, qualifierPort: 0) == 0
            _ = table.createMapping(rec, indexInside: indexInside)
        }
        forwards.append(f)
    }

    /// Removes the forward that covers an outside port, with its sessions. Returns whether one was found.
    @discardableResult
    public mutating func removeForward(proto: UInt8, outsideAddress: IPv4Address, port: UInt16) -> Bool {
        guard let i = forwards.firstIndex(where: { $0.proto == proto && $0.outsideAddress == outsideAddress && $0.outsidePorts.contains(port) }) else {
            return false
        }
        let f = forwards.remove(at: i)
        let nowS = lastNow.seconds
        for p in f.outsidePorts {
            let mid = table.lookupMapping(proto: f.proto, outsideAddress: f.outsideAddress.rawValue, outsidePort: p)
            guard mid != 0, table.mappings[Int(mid)].isStatic else { continue }
            while table.firstSession(ofMapping: mid) != 0 { endSession(table.firstSession(ofMapping: mid), now: nowS) }
            table.releaseMapping(mid, holdUntil: 0)
        }
        return true
    }

    /// Sets when a forward ends (nil: never) and keeps its sessions: a port-control lease renewed.
    /// Returns false when no forward covers the port.
    public mutating func renewForward(proto: UInt8, outsideAddress: IPv4Address, port: UInt16, expires: Timestamp?) -> Bool {
        guard let i = forwards.firstIndex(where: { $0.proto == proto && $0.outsideAddress == outsideAddress && $0.outsidePorts.contains(port) }) else {
            return false
        }
        forwards[i].expires = expires
        return true
    }

    mutating func expireForwards(now: Timestamp) {
        guard !forwards.isEmpty else { return }
        while let f = forwards.first(where: { ($0.expires ?? .init(nanoseconds: .max)) <= now }) {
            removeForward(proto: f.proto, outsideAddress: f.outsideAddress, port: f.outsidePorts.lowerBound)
        }
    }

    // MARK: 1:1 NAT for protocols without ports

    /// GRE, ESP and other protocols without ports pass only through 1:1 NAT: the address is rewritten,
    /// nothing else (no pseudo-header checksum to fix for them).
    mutating func statelessOneToOne(_ ip: MutableIPv4View, inbound: Bool, tenant: UInt32) throws(DropReason) -> Verdict {
        if inbound {
            guard let inside = staticOutside[ip.destination.rawValue] else { throw .unsupportedProtocol }
            _ = rewriteAddresses(ip, source: ip.source.rawValue, destination: UInt32(truncatingIfNeeded: inside))
            counters.inboundPackets &+= 1
            return .toInside(tenant: UInt32(truncatingIfNeeded: inside >> 32))
        }
        guard let outside = staticInside[UInt64(tenant) << 32 | UInt64(ip.source.rawValue)] else { throw .unsupportedProtocol }
        _ = rewriteAddresses(ip, source: outside, destination: ip.destination.rawValue)
        counters.outboundPackets &+= 1
        return .toOutside
    }

    // MARK: Inspection (control plane; allocates)

    /// Live sessions, up to `limit`.
    public func sessions(limit: Int = .max) -> [SessionInfo] {
        var out: [SessionInfo] = []
        sessions(slots: 1..<(table.sessionCapacity + 1), limit: limit, into: &out)
        return out
    }

    /// The live sessions among table slots `slots` (1 ... ``sessionSlots``), appended to `out` until it
    /// holds `limit`: a listing a slice at a time, so that the packet thread never stops for long.
    public func sessions(slots: Range<Int>, limit: Int, into out: inout [SessionInfo]) {
        let nowS = lastNow.seconds
        for i in slots.clamped(to: 1..<(table.sessionCapacity + 1)) where table.sessions[i].isLive {
            if out.count >= limit { return }
            let s = table.sessions[i], l = table.sessionLinks[i], seen = table.lastSeen(UInt32(i))
            out.append(SessionInfo(
                proto: s.proto, tenant: s.tenant,
                inside: (IPv4Address(s.insideAddress), s.insidePort),
                outside: (IPv4Address(s.outsideAddress), s.outsidePort),
                remote: (IPv4Address(s.remoteAddress), s.remotePort),
                via: (IPv4Address(s.viaAddress), s.viaPort),
                tcpState: s.proto == IPProtocol.tcp ? TCPState(rawValue: l.state) : nil,
                idleSeconds: nowS >= seen ? nowS - seen : 0,
                isStatic: table.mappings[Int(l.mapping)].isStatic, isHelped: s.isHelped))
        }
    }

    /// Session table slots (for ``sessions(slots:limit:into:)``).
    public var sessionSlots: Int { table.sessionCapacity }

    public var sessionCount: Int { table.sessionCount }
    public var mappingCount: Int { table.mappingCount }
}
