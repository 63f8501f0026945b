import NAPT44
import NAT64
import NATCore
import NATWire

extension PacketThread where Device: ~Copyable {
    /// What this thread reports to the control plane (control-plane work between bursts: allocates).
    func snapshot(_ request: SnapshotRequest, now: Timestamp) -> QueueSnapshot {
        var s = QueueSnapshot(queue: queue)
        s.io = q.io
        switch engine {
        case .some(let e):
            s.nat44 = e.counters
            s.nat44Sessions = e.sessionCount
            s.nat44Mappings = e.mappingCount
            s.forwards = e.forwards
            s.nat44SessionsByProtocol = e.sessionCountsByProtocol()
            if request.ports { (s.outsidePortsInUse, s.nat44MappingsByProtocol) = e.outsidePortsInUse() }
            if request.sessions {
                s.sessions = e.sessions(limit: request.limit).map { Self.row($0, queue: queue, timeouts: e.configuration.timeouts) }
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
                          isStatic: i.isStatic, tenant: i.tenant)
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

extension NAPT44Engine {
    /// Live sessions by protocol name (control plane: walks the table).
    func sessionCountsByProtocol() -> [String: Int] {
        var counts: [String: Int] = [:]
        guard sessionCount > 0 else { return counts }
        for i in 1...table.sessionCapacity where table.sessions[i].isLive {
            counts[protocolName(table.sessions[i].proto), default: 0] += 1
        }
        return counts
    }

    /// Outside ports held (by live mappings, forwards and ports in their reuse hold), by outside address,
    /// and the live mappings by protocol name (one walk of the mapping table).
    func outsidePortsInUse() -> (byAddress: [String: Int], byProtocol: [String: Int]) {
        var counts: [UInt32: Int] = [:]
        var byProtocol: [String: Int] = [:]
        for i in 1...table.mappingCapacity {
            let m = table.mappings[i]
            guard m.flags & MappingRecord.flagLive != 0 else { continue }
            counts[m.outsideAddress, default: 0] += 1
            if !m.isHeld { byProtocol[protocolName(m.proto), default: 0] += 1 }
        }
        var out: [String: Int] = [:]
        for (a, n) in counts { out[IPv4Address(a).description] = n }
        return (out, byProtocol)
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
