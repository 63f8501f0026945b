import Foundation
import Logging
import NATCore
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus

/// The Prometheus endpoint (`[metrics] listen`, or protomask's `Prometheus` key): `GET /metrics` in the
/// text exposition format. The packet threads keep their own counters; a scrape asks each for a
/// snapshot (a command between bursts) and sums them, so the data plane does no work for metrics.
public final class MetricsServer: @unchecked Sendable {
    let channel: Channel

    public struct StartError: Error, CustomStringConvertible {
        public var description: String
    }

    public init(listen: String, controller: DaemonController, group: EventLoopGroup, logger: Logger) throws(StartError) {
        guard let (host, port) = Self.split(listen) else {
            throw StartError(description: "'\(listen)' is not HOST:PORT or [IPV6]:PORT")
        }
        let metrics = NATMetrics(controller: controller)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 64)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(MetricsHandler(metrics: metrics))
                }
            }
        do {
            channel = try bootstrap.bind(host: host, port: port).wait()
        } catch {
            throw StartError(description: "cannot listen on \(listen): \(error) (pick a free port, or remove [metrics] listen)")
        }
        logger.info("metrics: http://\(listen)/metrics")
    }

    /// "HOST:PORT" or "[V6]:PORT".
    static func split(_ s: String) -> (String, Int)? {
        guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        var host = String(s[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        return (host, port)
    }

    public func close() { try? channel.close().wait() }
}

/// The metrics: swift-prometheus' registry, set from the packet threads' summed snapshots at each scrape.
final class NATMetrics: @unchecked Sendable {
    let controller: DaemonController
    let registry = PrometheusCollectorRegistry()
    private var counters: [String: Counter] = [:]
    private var gauges: [String: Gauge] = [:]
    /// A table census is asked for at most every 10 s (each pass takes about 2 s of timer rounds).
    private var portsTakenAt = Date.distantPast
    private var portsInUse: [String: Int] = [:]
    private var mappingsByProtocol: [String: Int] = [:]
    private var sessionsByProtocol: [String: Int] = [:]
    /// The help text each metric name was registered with: the registry traps on a second, different
    /// one, so the first is kept for every series of that name.
    private var helps: [String: String] = [:]

    init(controller: DaemonController) { self.controller = controller }

    /// One scrape: the exposition text, or nil when a packet thread did not answer.
    func scrape() -> [UInt8]? {
        controller.queue.sync { () -> [UInt8]? in
            let wantPorts = Date().timeIntervalSince(portsTakenAt) >= 10
            guard let snaps = try? controller.snapshots(SnapshotRequest(ports: wantPorts)) else { return nil }
            if wantPorts {
                portsTakenAt = Date()
                portsInUse = [:]
                mappingsByProtocol = [:]
                sessionsByProtocol = [:]
                for s in snaps {
                    for (p, n) in s.nat44SessionsByProtocol { sessionsByProtocol[p, default: 0] += n }
                    for (a, n) in s.outsidePortsInUse { portsInUse[a, default: 0] += n }
                    for (p, n) in s.nat44MappingsByProtocol { mappingsByProtocol[p, default: 0] += n }
                }
            }
            update(snaps)
            return registry.emitToBuffer()
        }
    }

    /// The series `name{labels}` from `cache`, made by `make` the first time.
    static func series<M>(_ cache: inout [String: M], _ name: String, _ labels: [(String, String)], make: () -> M) -> M {
        let key = name + labels.map { "\($0.0)=\($0.1)" }.joined(separator: ",")
        if let m = cache[key] { return m }
        let m = make()
        cache[key] = m
        return m
    }

    /// A counter set to the summed total (the threads' counters only grow).
    func counter(_ name: String, _ labels: [(String, String)], _ help: String, _ value: UInt64) {
        let help = helps[name] ?? help
        helps[name] = help
        let c = Self.series(&counters, name, labels) { registry.makeCounter(name: name, labels: labels, help: help) }
        c.reset()
        c.increment(by: Int64(clamping: value))
    }

    func gauge(_ name: String, _ labels: [(String, String)], _ help: String, _ value: Double) {
        let help = helps[name] ?? help
        helps[name] = help
        Self.series(&gauges, name, labels) { registry.makeGauge(name: name, labels: labels, help: help) }.set(value)
    }

    func update(_ snaps: [QueueSnapshot]) {
        var io = IOCounters()
        var n44: Counters? = nil, n64: Counters? = nil, n66: Counters? = nil
        var sessions44 = 0, mappings44 = 0, sessions64 = 0, bib64 = 0, res64 = 0, static64 = 0, free64 = 0
        for s in snaps {
            io += s.io
            if let c = s.nat44 { n44 = (n44 ?? Counters()) + c }
            if let c = s.nat64 { n64 = (n64 ?? Counters()) + c }
            if let c = s.nptv6 { n66 = (n66 ?? Counters()) + c }
            sessions44 += s.nat44Sessions; mappings44 += s.nat44Mappings
            sessions64 += s.nat64Sessions; bib64 += s.nat64Bindings
            res64 += s.nat64Reservations; static64 += s.nat64StaticReservations; free64 += s.nat64FreeAddresses
        }
        // Forwards by origin (config, cli, and the port-control protocols' upnp, natpmp, pcp).
        var byOrigin: [String: Int] = ["config": 0, "cli": 0, "upnp": 0, "natpmp": 0, "pcp": 0]
        for f in controller.forwards() { byOrigin[f.origin, default: 0] += 1 }
        for (o, n) in byOrigin.sorted(by: { $0.key < $1.key }) { gauge("swiftnat_forwards", [("origin", o)], "Port forwards by origin", Double(n)) }
        for (engine, c) in [("nat44", n44), ("nat64", n64), ("nptv6", n66)] {
            guard let c else { continue }
            let e = [("engine", engine)]
            counter("swiftnat_packets_total", e + [("direction", "outbound"), ("verdict", "translated")], "Packets by engine, direction and verdict", c.outboundPackets)
            counter("swiftnat_packets_total", e + [("direction", "inbound"), ("verdict", "translated")], "Packets by engine, direction and verdict", c.inboundPackets)
            counter("swiftnat_packets_total", e + [("direction", "hairpin"), ("verdict", "translated")], "Packets by engine, direction and verdict", c.hairpinnedPackets)
            counter("swiftnat_packets_total", e + [("direction", "any"), ("verdict", "dropped")], "Packets by engine, direction and verdict", c.totalDropped)
            counter("swiftnat_bytes_total", e + [("direction", "outbound")], "Bytes translated", c.outboundBytes)
            counter("swiftnat_bytes_total", e + [("direction", "inbound")], "Bytes translated", c.inboundBytes)
            counter("swiftnat_sessions_created_total", e, "Sessions created", c.sessionsCreated)
            counter("swiftnat_sessions_expired_total", e, "Sessions ended", c.sessionsExpired)
            counter("swiftnat_icmp_errors_total", e + [("kind", "translated")], "ICMP errors translated or generated", c.icmpErrorsTranslated)
            counter("swiftnat_icmp_errors_total", e + [("kind", "generated")], "ICMP errors translated or generated", c.icmpErrorsGenerated)
            for r in DropReason.allCases {
                counter("swiftnat_dropped_packets_total", e + [("reason", r.name)], "Packets dropped, by reason", c.dropped(r))
            }
            let limitHits = [DropReason.sessionTableFull, .mappingTableFull, .hostTableFull, .hostSessionLimit, .hostPortLimit, .portsExhausted, .poolExhausted].reduce(0) { $0 + c.dropped($1) }
            counter("swiftnat_limit_hits_total", e, "New flows refused by a limit (table, ports, per host)", limitHits)
        }
        if n44 != nil {
            gauge("swiftnat_sessions", [("engine", "nat44"), ("protocol", "all")], "Live sessions", Double(sessions44))
            for p in ["tcp", "udp", "icmp"] {
                gauge("swiftnat_sessions", [("engine", "nat44"), ("protocol", p)], "Live sessions", Double(sessionsByProtocol[p] ?? 0))
            }
            gauge("swiftnat_mappings", [("engine", "nat44"), ("protocol", "all")], "Live mappings (outside ports held)", Double(mappings44))
            for p in ["tcp", "udp", "icmp"] {
                gauge("swiftnat_mappings", [("engine", "nat44"), ("protocol", p)], "Live mappings (outside ports held)",
                      Double(mappingsByProtocol[p] ?? 0))
            }
            for (a, n) in portsInUse {
                gauge("swiftnat_outside_ports_in_use", [("address", a)], "Outside ports held, by outside address (sampled every 10 s)", Double(n))
            }
        }
        if n64 != nil {
            gauge("swiftnat_sessions", [("engine", "nat64"), ("protocol", "all")], "Live sessions", Double(sessions64))
            gauge("swiftnat_nat64_bib_entries", [], "NAT64 BIB entries", Double(bib64))
            gauge("swiftnat_nat64_reservations", [("kind", "dynamic")], "NAT64 pool reservations", Double(res64 - static64))
            gauge("swiftnat_nat64_reservations", [("kind", "static")], "NAT64 pool reservations", Double(static64))
            gauge("swiftnat_nat64_pool_free", [], "NAT64 pool addresses free", Double(free64))
            // protomask's own names, so that its users' dashboards keep working.
            var byProtocol: [String: UInt64] = [:]
            var icmp: [QueueSnapshot.ICMPKey: UInt64] = [:]
            for s in snaps {
                for p in s.nat64ProtocolPackets { byProtocol[p.protocol + "/" + p.status, default: 0] += p.packets }
                for (k, v) in s.nat64ICMP { icmp[k, default: 0] += v }
            }
            for p in ["ipv4", "ipv6", "tcp", "udp", "icmp", "icmpv6"] {
                for status in ["translated", "dropped"] {
                    counter("protomask_packets", [("protocol", p), ("status", status)], "protomask: packets by protocol and status",
                            byProtocol[p + "/" + status] ?? 0)
                }
            }
            for (k, v) in icmp {
                counter("protomask_icmp_packets_recv", [("protocol", k.icmpv6 ? "icmpv6" : "icmp"), ("icmp_type", "\(k.type)"),
                                                        ("icmp_code", "\(k.code)")], "protomask: ICMP packets received, by type and code", v)
            }
        }
        for (name, v) in io.fields {
            counter("swiftnat_runtime_\(name)_total", [], "Packet threads: \(name.replacingOccurrences(of: "_", with: " "))", v)
        }
        if let r = controller.savedRestoreReport {
            counter("swiftnat_sessions_restored_total", [], "Sessions restored from the sessions file at start", UInt64(r.sessionsRestored))
            counter("swiftnat_port_holds_restored_total", [], "Held outside ports restored from the sessions file at start", UInt64(r.holdsRestored))
            for reason in RestoreSkip.allCases {
                counter("swiftnat_sessions_restore_skipped_total", [("reason", reason.rawValue)],
                        "Saved sessions and holds not restored at start, by reason", UInt64(r.skipped[reason] ?? 0))
            }
        }
        gauge("swiftnat_queues", [], "Packet threads", Double(snaps.count))
        if let d = controller.tunDropped() {
            counter("swiftnat_tun_dropped_total", [], "Packets the kernel dropped on their way into the TUN device (a fair queue's ring was full)", d)
        }
    }
}

/// `GET /metrics` (and `/` with a pointer to it); anything else 404.
final class MetricsHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let metrics: NATMetrics
    var path = ""
    var method = HTTPMethod.GET
    var keepAlive = true

    init(metrics: NATMetrics) { self.metrics = metrics }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            path = String(h.uri.split(separator: "?", maxSplits: 1).first ?? "")
            method = h.method
            keepAlive = h.isKeepAlive
        case .body:
            break
        case .end:
            let channel = context.channel
            let (path, method, keepAlive, metrics) = (self.path, self.method, self.keepAlive, self.metrics)
            guard method == .GET || method == .HEAD else {
                respond(channel, .methodNotAllowed, Array("GET /metrics\n".utf8), keepAlive: keepAlive, head: false)
                return
            }
            guard path == "/metrics" else {
                respond(channel, .notFound, Array("swiftnat: the metrics are at /metrics\n".utf8), keepAlive: keepAlive, head: method == .HEAD)
                return
            }
            // A scrape waits for the packet threads: never on the event loop.
            DispatchQueue.global().async {
                if let body = metrics.scrape() {
                    self.respond(channel, .ok, body, keepAlive: keepAlive, head: method == .HEAD)
                } else {
                    self.respond(channel, .serviceUnavailable, Array("a packet thread did not answer\n".utf8), keepAlive: keepAlive, head: false)
                }
            }
        }
    }

    func respond(_ channel: Channel, _ status: HTTPResponseStatus, _ body: [UInt8], keepAlive: Bool, head: Bool) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: status == .ok ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: "\(body.count)")
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        channel.eventLoop.execute {
            channel.write(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers)), promise: nil)
            if !head { channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil) }
            channel.writeAndFlush(HTTPServerResponsePart.end(nil)).whenComplete { _ in
                if !keepAlive { channel.close(promise: nil) }
            }
        }
    }
}
