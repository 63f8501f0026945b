import FuzzSupport
import NATRuntime
import NATWire
import PortControl

// Port control from a stranger (issue 12 "Bad input", issue 14): NAT-PMP and PCP datagrams from inside and
// outside IPv4 clients, PCP over IPv6 (the stateful NAT64's static BIB), UPnP IGD actions with arbitrary
// arguments, GENA SUBSCRIBE/UNSUBSCRIBE headers, and SOAP bodies through the same parser as the server.
// The input is a flow of records (FuzzSupport.Records): the services keep their state from one to the
// next. Invariants: NAT-PMP answers are at most 16 bytes and PCP answers at most 1100 (RFC 6887 §7),
// both a multiple of 4; an outside client never gets an answer; the mappings never exceed the policy's
// bounds (in all, and per client); GENA keeps at most its 32 subscriptions.

final class Backend: PortMappingBackend, NAT64BindingBackend {
    var table: [PortMapping] = []
    var bound: [NAT64PortMapping] = []
    var sessions: [String: UInt16] = [:]
    var next: UInt16 = 40000

    func mappings(now: Double) -> [PortMapping] { table.filter { ($0.expiresAt ?? .infinity) > now } }
    func add(_ m: PortMapping, lifetime: UInt32, now: Double) -> String? {
        if m.externalPort % 97 == 0 { return "port in use by a dynamic mapping" }
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
        if let p = sessions[key] { return .mapping(externalAddress: pool, externalPort: p, lifetime: 300) }
        guard create, sessions.count < 64 else { return create ? .noResources : .none }
        next = next &+ 1
        sessions[key] = next
        return .mapping(externalAddress: pool, externalPort: next, lifetime: 300)
    }
    func totals() -> TrafficTotals { TrafficTotals(bytesSent: 1, bytesReceived: 2, packetsSent: 3, packetsReceived: 4) }

    func bindings(now: Double) -> [NAT64PortMapping] { bound.filter { ($0.expiresAt ?? .infinity) > now } }
    func bind(_ m: NAT64PortMapping, exact: Bool, lifetime: UInt32, now: Double) -> Result<NAT64PortMapping, NAT64BindRefusal> {
        if bound.count >= 64 { return .failure(.noResources) }
        var e = m
        if e.externalPort == 0 || bound.contains(where: { $0.externalPort == m.externalPort && $0.proto == m.proto }) {
            if exact && m.externalPort != 0 { return .failure(.portInUse) }
            next = next &+ 1
            e.externalPort = next
        }
        e.externalAddress = pool
        e.expiresAt = now + Double(lifetime)
        bound.removeAll { $0.internalAddress == m.internalAddress && $0.internalPort == m.internalPort && $0.proto == m.proto }
        bound.append(e)
        return .success(e)
    }
    func unbind(_ proto: MappingProtocol, externalAddress: IPv4Address, externalPort: UInt16) -> Bool {
        let n = bound.count
        bound.removeAll { $0.proto == proto && $0.externalPort == externalPort }
        return bound.count != n
    }
}

let pool = IPv4Address("198.51.100.1")!
let clients = [IPv4Address("100.64.0.2")!, IPv4Address("100.64.0.3")!, IPv4Address("203.0.113.9")!]
let clients6 = [IPv6Address("2001:db8:1::2")!, IPv6Address("2001:db8:1::3")!, IPv6Address("2001:db8:99::1")!]
let services = [UPnPIGD.wanIPConnection1, UPnPIGD.wanIPConnection2, UPnPIGD.wanCommonInterfaceConfig, "urn:bogus"]

func lines(_ b: [UInt8]) -> [Substring] { String(decoding: b, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false) }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var policy = PortControlPolicy()
    policy.maxMappings = 8
    policy.maxPerClient = 4
    let first = size > 0 ? data![0] : 0
    policy.secureMode = first & 1 == 0
    var service = PortControlService(policy: policy, externalAddress: pool, insidePrefixes: [IPv4Prefix("100.64.0.0/24")!], epochStart: 1000)
    service.insidePrefixes6 = [IPv6Prefix("2001:db8:1::/64")!]
    let backend = Backend()
    var gena = GENASubscriptions()
    var now = 2000.0
    var sids = 0
    for (control, bytes) in Records(input(data, size)) {
        now += Double(control >> 4) * 37
        let who = Int(control >> 2 & 3) % 3
        switch control & 3 {
        case 0:
            let answer = service.handleDatagram(bytes, from: clients[who], now: now, backend: backend)
            if let a = answer {
                check(who < 2, "an outside client got an answer")
                check(a.count % 4 == 0 && a.count <= (bytes.first == 0 ? 16 : 1100), "answer of \(a.count) bytes")
            }
        case 1:
            if let a = service.handlePCP(bytes, fromIPv6: clients6[who], now: now, backend: backend) {
                check(who < 2, "an outside IPv6 client got an answer")
                check(a.count % 4 == 0 && a.count <= 1100, "PCP answer of \(a.count) bytes")
            }
        case 2:
            let l = lines(bytes)
            var args: [String: String] = [:]
            for kv in l.dropFirst(2).prefix(16) {
                let p = kv.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                args[String(p[0])] = p.count > 1 ? String(p[1]) : ""
            }
            let serviceType = services[Int(control >> 2) % services.count]
            _ = service.performUPnP(action: l.first.map(String.init) ?? "", serviceType: serviceType, arguments: args,
                                    client: clients[who], now: now, uptime: 5, backend: backend)
            if let soap = UPnPSOAP.parse(body: bytes, soapAction: "\"\(serviceType)#\(l.first ?? "")\"") {
                _ = service.performUPnP(action: soap.action, serviceType: soap.serviceType, arguments: soap.arguments,
                                        client: clients[who], now: now, uptime: 5, backend: backend)
            }
        default:
            let l = lines(bytes)
            var headers: [String: String] = [:]
            for h in l.dropFirst().prefix(16) {
                guard let c = h.firstIndex(of: ":") else { continue }
                headers[h[..<c].uppercased()] = String(h[h.index(after: c)...])
            }
            sids += 1
            _ = gena.handle(method: l.first.map(String.init) ?? "", service: "IPConn", headers: headers, subscriber: clients[who],
                            isInside: { $0.rawValue & 0xFFFF_FF00 == 0x6440_0000 }, now: now, newSID: "uuid:\(sids)")
            check(gena.subscriptions.count <= GENASubscriptions.maxSubscriptions, "\(gena.subscriptions.count) subscriptions")
        }
        let live = backend.mappings(now: now)
        check(live.count <= policy.maxMappings, "\(live.count) mappings, above the policy's \(policy.maxMappings)")
        for c in clients {
            let n = live.filter { $0.internalAddress == c }.count
            check(n <= policy.maxPerClient, "\(n) mappings for \(c), above \(policy.maxPerClient)")
        }
    }
    return 0
}
