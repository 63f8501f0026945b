import Foundation
import Logging
import NAPT44
import NAT64
import NATCore
import NATWire
import NIOCore
import NIOPosix
import PortControl

/// The NAT as the port-control protocols see it: the controller's forwards (all origins) on the external
/// address, added and removed as run-time forwards with their origin and lease.
struct ControllerMappingBackend: PortMappingBackend {
    let controller: DaemonController
    let external: IPv4Address

    func mappings(now: Double) -> [PortMapping] {
        let entries = controller.queue.sync { controller.forwards() }
        var out: [PortMapping] = []
        for e in entries {
            guard let proto = MappingProtocol(name: e.protocol), let (oa, ports) = Self.endpointRange(e.outside), oa == external,
                  let (ia, ip) = Self.endpointRange(e.inside) else { continue }
            let origin = MappingOrigin(rawValue: e.origin) ?? .cli
            let (description, nonce) = Self.splitNonce(e.description ?? "")
            // A configured range of ports: every port of it is taken (at most 65536 values).
            for p in ports {
                out.append(PortMapping(proto: proto, externalPort: p, internalAddress: ia, internalPort: ip.lowerBound, origin: origin,
                                       description: description, expiresAt: e.expiresAt, nonce: nonce,
                                       enabled: e.isEnabled))
            }
        }
        return out
    }

    func add(_ m: PortMapping, lifetime: UInt32, now: Double) -> String? {
        let outside = "\(external):\(m.externalPort)", inside = "\(m.internalAddress):\(m.internalPort)"
        var d = m.description
        if let n = m.nonce { d += " nonce=" + n.map { String(format: "%02x", $0) }.joined() }
        if let e = controller.queue.sync(execute: { controller.forwards() }).first(where: { $0.protocol == m.proto.description && $0.outside == outside }) {
            // The same mapping asked again: a new lease, its connections kept. Another inside endpoint: replaced.
            if e.inside == inside && e.isEnabled == m.enabled {
                do {
                    _ = try controller.renewForward(protocol: m.proto.description, outside: outside, lifetime: Int(lifetime), description: d)
                    return nil
                } catch {
                    return error.message
                }
            }
            _ = try? controller.removeForward(protocol: m.proto.description, outside: outside)
        }
        do {
            _ = try controller.addForward(protocol: m.proto.description, outside: outside, inside: inside,
                                          lifetime: Int(lifetime), description: d, origin: m.origin.rawValue,
                                          enabled: m.enabled)
            return nil
        } catch {
            return error.message
        }
    }

    func remove(_ proto: MappingProtocol, externalPort: UInt16) -> Bool {
        (try? controller.removeForward(protocol: proto.description, outside: "\(external):\(externalPort)")) != nil
    }

    func peer(_ proto: MappingProtocol, internal host: IPv4Address, internalPort: UInt16, remote: IPv4Address, remotePort: UInt16,
              create: Bool) -> PeerOutcome {
        let q = PeerQuery(proto: proto.rawValue, inside: host, insidePort: internalPort, remote: remote, remotePort: remotePort, create: create)
        switch controller.queue.sync(execute: { controller.peer(q) }) {
        case .mapping(let m): return .mapping(externalAddress: m.outsideAddress, externalPort: m.outsidePort, lifetime: m.lifetime)
        case .none: return .none
        case .refused(let why):
            switch why {
            case .hostSessionLimit, .hostPortLimit: return .quota
            default: return .noResources
            }
        case .unavailable: return .unavailable("PEER needs [nat44] and [tun] queues = 1")
        }
    }

    func totals() -> TrafficTotals {
        let snaps = controller.queue.sync { (try? controller.snapshots()) ?? [] }
        var t = TrafficTotals()
        for s in snaps {
            guard let c = s.nat44 else { continue }
            t.bytesSent &+= c.outboundBytes
            t.bytesReceived &+= c.inboundBytes
            t.packetsSent &+= c.outboundPackets
            t.packetsReceived &+= c.inboundPackets
        }
        return t
    }

    /// "ADDR:PORT" or "ADDR:LO-HI".
    static func endpointRange(_ s: String) -> (IPv4Address, ClosedRange<UInt16>)? {
        guard let colon = s.lastIndex(of: ":"), let a = IPv4Address(s[..<colon]) else { return nil }
        let ports = s[s.index(after: colon)...].split(separator: "-")
        guard let lo = ports.first.flatMap({ UInt16($0) }) else { return nil }
        let hi = ports.count == 2 ? UInt16(ports[1]) ?? lo : lo
        return lo <= hi ? (a, lo...hi) : nil
    }

    /// A PCP mapping keeps its nonce at the end of its description (so that it survives a restart).
    static func splitNonce(_ d: String) -> (String, [UInt8]?) {
        guard let r = d.range(of: " nonce=", options: .backwards) else { return (d, nil) }
        let h = Array(d[r.upperBound...].utf8)
        guard h.count == 24 else { return (d, nil) }
        var n: [UInt8] = []
        for i in stride(from: 0, to: 24, by: 2) {
            guard let b = UInt8(String(decoding: h[i..<(i + 2)], as: UTF8.self), radix: 16) else { return (d, nil) }
            n.append(b)
        }
        return (String(d[..<r.lowerBound]), n)
    }
}

/// The stateful NAT64's static BIB as PCP from IPv6 hosts sees it: the controller's run-time bindings.
struct ControllerNAT64Backend: NAT64BindingBackend {
    let controller: DaemonController

    func bindings(now: Double) -> [NAT64PortMapping] {
        controller.queue.sync { controller.bindings() }.compactMap { e in
            guard let (proto, v6, v6Port, v4, v4Port) = DaemonController.bindingParts(e), let p = MappingProtocol(name: proto.rawValue) else { return nil }
            let (_, nonce) = ControllerMappingBackend.splitNonce(e.description ?? "")
            return NAT64PortMapping(proto: p, internalAddress: v6, internalPort: v6Port, externalAddress: v4, externalPort: v4Port,
                                    expiresAt: e.expiresAt, nonce: nonce)
        }
    }

    func bind(_ m: NAT64PortMapping, exact: Bool, lifetime: UInt32, now: Double) -> Result<NAT64PortMapping, NAT64BindRefusal> {
        let proto: NAT64Protocol = m.proto == .tcp ? .tcp : .udp
        var d = "PCP [\(m.internalAddress)]:\(m.internalPort)"
        if let n = m.nonce { d += " nonce=" + n.map { String(format: "%02x", $0) }.joined() }
        var q = BindingQuery(proto: proto, ipv6: m.internalAddress, ipv6Port: m.internalPort, suggestedPort: m.externalPort, exact: exact,
                             lifetime: Int(lifetime))
        if m.externalAddress != .any { q.suggestedAddress = m.externalAddress }
        switch controller.queue.sync(execute: { controller.addBinding(q, description: d, origin: MappingOrigin.pcp.rawValue) }) {
        case .bound(let b):
            var out = m
            out.externalAddress = b.ipv4
            out.externalPort = b.ipv4Port
            return .success(out)
        case .refused(.portInUse): return .failure(.portInUse)
        case .refused(.hostLimit): return .failure(.quota)
        case .refused(.noResources), .refused(.invalid): return .failure(.noResources)
        case .unavailable: return .failure(.unavailable("PCP over IPv6 needs a stateful [nat64] and [tun] queues = 1"))
        }
    }

    func unbind(_ proto: MappingProtocol, externalAddress: IPv4Address, externalPort: UInt16) -> Bool {
        controller.queue.sync { controller.removeBinding(proto: proto == .tcp ? .tcp : .udp, ipv4: externalAddress, port: externalPort) }
    }
}

/// The port-control servers' shared state: the service (policy, epoch), the backend, and one serial
/// queue on which every request is decided, so that two protocols never grant the same port.
final class PortControlCore: @unchecked Sendable {
    let settings: PortControlSettings
    let service: PortControlService
    let backend: ControllerMappingBackend
    let backend64: ControllerNAT64Backend
    let controller: DaemonController
    let logger: Logger
    let queue = DispatchQueue(label: "swiftnat.portcontrol")
    /// UPnP eventing (set when UPnP is on).
    var events: GENAEvents? = nil
    private let lock = NSLock()
    private var pending = 0
    /// Requests waiting for the queue at most; more are dropped (a flood costs bounded memory).
    static let maxPending = 256

    init(settings: PortControlSettings, external: IPv4Address, inside: [IPv4Prefix], controller: DaemonController, logger: Logger) {
        self.settings = settings
        var s = PortControlService(policy: settings.policy, externalAddress: external, insidePrefixes: inside,
                                   epochStart: Date().timeIntervalSince1970)
        if let v6 = settings.listen6, let p = IPv6Prefix(address: IPv6Address(high: v6.high, low: 0), length: 64) { s.insidePrefixes6 = [p] }
        service = s
        backend64 = ControllerNAT64Backend(controller: controller)
        backend = ControllerMappingBackend(controller: controller, external: external)
        self.controller = controller
        self.logger = logger
    }

    /// Runs `work` on the queue unless too many requests wait already.
    func submit(_ work: @escaping @Sendable () -> Void) {
        let ok = lock.withLock { () -> Bool in
            guard pending < Self.maxPending else { return false }
            pending += 1
            return true
        }
        guard ok else { return }
        queue.async {
            work()
            self.lock.withLock { self.pending -= 1 }
        }
    }

    var now: Double { Date().timeIntervalSince1970 }
    var uptime: UInt32 { UInt32(clamping: Int(Date().timeIntervalSince(controller.started))) }
}

extension IPv6Address {
    /// The address of a NIO socket address, when it is IPv6.
    init?(_ s: SocketAddress?) {
        guard case .v6(let a)? = s else { return nil }
        let b = withUnsafeBytes(of: a.address.sin6_addr) { Array($0) }
        self.init(high: b[0..<8].reduce(0) { $0 << 8 | UInt64($1) }, low: b[8..<16].reduce(0) { $0 << 8 | UInt64($1) })
    }
}

extension IPv4Address {
    /// The address of a NIO socket address, when it is IPv4.
    init?(_ s: SocketAddress?) {
        guard case .v4(let a)? = s else { return nil }
        self.init(rawValue: UInt32(bigEndian: a.address.sin_addr.s_addr))
    }
}

/// NAT-PMP and PCP on UDP 5351 of the inside address (RFC 6886 §3, RFC 6887 §8).
final class PMPServer: @unchecked Sendable {
    let channel: Channel
    /// PCP on the inside IPv6 address (`listen_ipv6`), when set.
    var channel6: Channel? = nil
    let core: PortControlCore

    init(core: PortControlCore, group: EventLoopGroup) throws {
        self.core = core
        let listen = core.settings.listen.description
        let bootstrap = DatagramBootstrap(group: group)
            .channelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .channelOption(ChannelOptions.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 2048))
            .channelInitializer { ch in ch.pipeline.addHandler(PMPHandler(core: core)) }
        channel = try bootstrap.bind(host: listen, port: Int(NATPMP.port)).wait()
        let mcast = in_addr(s_addr: core.settings.listen.rawValue.bigEndian)
        try? (channel as? SocketOptionProvider)?.setIPMulticastIF(mcast).wait()
        if let v6 = core.settings.listen6, core.settings.pcp {
            let c6 = try bootstrap.bind(host: v6.description, port: Int(NATPMP.port)).wait()
            channel6 = c6
            // The restart ANNOUNCE to ff02::1 leaves on the inside interface.
            let index = if_nametoindex(core.settings.interface)
            if index != 0 { try? (c6 as? SocketOptionProvider)?.setIPv6MulticastIF(index).wait() }
        }
    }

    /// RFC 6886 §3.2.1 and RFC 6887 §14.1.3: after a start the epoch begins again; tell the clients, on
    /// 224.0.0.1:5350 and to each client that holds a NAT-PMP or PCP mapping, four times (0, 0.25, 0.75,
    /// 1.75 s).
    func announce() {
        let core = self.core
        core.submit {
            let clients = Set(core.backend.mappings(now: core.now).filter { $0.origin == .natpmp || $0.origin == .pcp }.map(\.internalAddress))
            let targets = [IPv4Address(224, 0, 0, 1)] + clients.sorted()
            let clients6 = self.channel6 == nil ? [] : Array(Set(core.backend64.bindings(now: core.now).map(\.internalAddress)))
            core.logger.info("port control: announcing the new epoch to 224.0.0.1 and \(clients.count) client\(clients.count == 1 ? "" : "s") on port 5350")
            for delay in [0, 250, 750, 1750] {
                self.channel.eventLoop.scheduleTask(in: .milliseconds(Int64(delay))) {
                    let e = core.service.epoch(at: core.now)
                    for t in targets {
                        guard let to = try? SocketAddress(ipAddress: t.description, port: Int(NATPMP.clientPort)) else { continue }
                        if core.settings.pcp {
                            self.channel.writeAndFlush(AddressedEnvelope(remoteAddress: to, data: ByteBuffer(bytes: PCP.announce(epoch: e))), promise: nil)
                        }
                        if core.settings.natPMP {
                            let pmp = NATPMP.externalAddressResponse(result: .success, epoch: e, address: core.service.externalAddress)
                            self.channel.writeAndFlush(AddressedEnvelope(remoteAddress: to, data: ByteBuffer(bytes: pmp)), promise: nil)
                        }
                    }
                    // PCP over IPv6: to all nodes (ff02::1 on the inside interface) and to each IPv6 host that
                    // holds a NAT64 static BIB entry.
                    if let c6 = self.channel6 {
                        for t in [IPv6Address("ff02::1")!] + clients6 {
                            guard let to = try? SocketAddress(ipAddress: t.description, port: Int(NATPMP.clientPort)) else { continue }
                            c6.writeAndFlush(AddressedEnvelope(remoteAddress: to, data: ByteBuffer(bytes: PCP.announce(epoch: e))), promise: nil)
                        }
                    }
                }
            }
        }
    }

    func close() {
        try? channel.close().wait()
        try? channel6?.close().wait()
    }
}

final class PMPHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>
    let core: PortControlCore

    init(core: PortControlCore) { self.core = core }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let channel = context.channel, core = self.core, remote = envelope.remoteAddress
        if let from6 = IPv6Address(envelope.remoteAddress) {
            // RFC 6887 from an IPv6 host (the NAT64's inside): bounded by 1100 bytes like every PCP message.
            guard core.settings.pcp else { return }
            let bytes = Array(envelope.data.readableBytesView.prefix(PCP.maxMessage + 1))
            core.submit {
                guard let answer = core.service.handlePCP(bytes, fromIPv6: from6, now: core.now, backend: core.backend64) else { return }
                channel.writeAndFlush(AddressedEnvelope(remoteAddress: remote, data: ByteBuffer(bytes: answer)), promise: nil)
            }
            return
        }
        guard let from = IPv4Address(envelope.remoteAddress) else { return }
        let bytes = Array(envelope.data.readableBytesView)
        core.submit {
            guard let answer = core.service.handleDatagram(bytes, from: from, now: core.now, backend: core.backend,
                                                           natPMP: core.settings.natPMP, pcp: core.settings.pcp) else { return }
            channel.writeAndFlush(AddressedEnvelope(remoteAddress: remote, data: ByteBuffer(bytes: answer)), promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A datagram socket error (an ICMP unreachable for an earlier answer) is no reason to stop.
    }
}
