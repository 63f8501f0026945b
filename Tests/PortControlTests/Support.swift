import NATWire
@testable import PortControl

/// The NAT as the port-control protocols see it, in memory.
final class MemoryBackend: PortMappingBackend {
    var table: [PortMapping] = []
    var refuse: Set<UInt16> = []
    /// The NAT's sessions by (proto, internal port, remote port): external port and seconds left.
    var sessions: [String: (UInt16, UInt32)] = [:]
    /// What a PEER that must create a session gets instead (nil: it is created).
    var peerRefusal: PeerOutcome? = nil
    var nextPort: UInt16 = 40000
    var idleTimeout: UInt32 = 300

    func mappings(now: Double) -> [PortMapping] { table.filter { ($0.expiresAt ?? .infinity) > now } }
    func add(_ m: PortMapping, lifetime: UInt32, now: Double) -> String? {
        if refuse.contains(m.externalPort) { return "port in use by a dynamic mapping" }
        table.removeAll { $0.proto == m.proto && $0.externalPort == m.externalPort }
        table.append(m)
        return nil
    }
    func remove(_ proto: MappingProtocol, externalPort: UInt16) -> Bool {
        let n = table.count
        table.removeAll { $0.proto == proto && $0.externalPort == externalPort }
        return table.count != n
    }
    func peer(_ proto: MappingProtocol, internal host: IPv4Address, internalPort: UInt16, remote: IPv4Address, remotePort: UInt16,
              create: Bool) -> PeerOutcome {
        let key = "\(proto) \(host):\(internalPort) \(remote):\(remotePort)"
        if let (port, left) = sessions[key] {
            if create { sessions[key] = (port, idleTimeout) }
            return .mapping(externalAddress: pool, externalPort: port, lifetime: create ? idleTimeout : left)
        }
        guard create else { return .none }
        if let r = peerRefusal { return r }
        sessions[key] = (nextPort, idleTimeout)
        nextPort += 1
        return .mapping(externalAddress: pool, externalPort: nextPort - 1, lifetime: idleTimeout)
    }
    func totals() -> TrafficTotals { TrafficTotals(bytesSent: 5_000_000_000, bytesReceived: 2, packetsSent: 3, packetsReceived: 4) }
}

let client = IPv4Address("100.64.0.2")!
let other = IPv4Address("100.64.0.3")!
let pool = IPv4Address("198.51.100.1")!

func service(secure: Bool = true, _ edit: (inout PortControlPolicy) -> Void = { _ in }) -> PortControlService {
    var p = PortControlPolicy()
    p.secureMode = secure
    edit(&p)
    return PortControlService(policy: p, externalAddress: pool, insidePrefixes: [IPv4Prefix("100.64.0.0/24")!], epochStart: 1000)
}

func hex(_ s: String) -> [UInt8] {
    let d = s.filter { !$0.isWhitespace }
    var out: [UInt8] = []
    var i = d.startIndex
    while i < d.endIndex {
        let j = d.index(i, offsetBy: 2)
        out.append(UInt8(d[i..<j], radix: 16)!)
        i = j
    }
    return out
}
