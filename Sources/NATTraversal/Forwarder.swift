#if canImport(Glibc)
import Glibc
#endif
import Foundation
import STUN

/// Forward mode (-t/-p): accept on the bind port and relay to the target, TCP connections or UDP
/// datagrams per client, each idle for -T seconds at most.
final class Forwarder: @unchecked Sendable {
    let config: MapConfiguration
    let port: UInt16
    let target: String
    let targetPort: UInt16
    let shared: SharedMapping
    let emit: (MapEvent) -> Void
    var listener: Socket?

    init(config: MapConfiguration, port: UInt16, target: String, targetPort: UInt16, shared: SharedMapping,
         emit: @escaping (MapEvent) -> Void) {
        self.config = config
        self.port = port
        self.target = target
        self.targetPort = targetPort
        self.shared = shared
        self.emit = emit
    }

    var idle: Duration { .seconds(config.idleTimeout) }

    /// The target; `-p 0` means the public port, known once STUN has answered.
    func targetEndpoint() -> STUNEndpoint? {
        let p = targetPort != 0 ? targetPort : shared.publicPort.withLock { $0 }
        guard p != 0 else { return nil }
        return try? resolveEndpoint(target, defaultPort: p, family: config.family)
    }

    func start() throws(MapError) {
        let s: Socket
        let wildcard = config.localAddress ?? (config.ipv6 ? .v6(.any) : .v4(.init(0)))
        do {
            s = try Socket(family: config.family, tcp: !config.udp, options: config.socketOptions)
            try s.bind(STUNEndpoint(wildcard, port))
            if !config.udp { try s.listen() }
        } catch {
            throw .setup("forward mode: cannot listen on \(config.protocolName) port \(port): \(error)")
        }
        listener = s
        emit(.info("forwarding \(config.protocolName) port \(port) to \(target):\(targetPort == 0 ? "<public port>" : String(targetPort))"))
        if config.udp {
            Thread.detachNewThread { [self] in udpLoop(s) }
        } else {
            Thread.detachNewThread { [self] in acceptLoop(s) }
        }
    }

    // MARK: TCP

    func acceptLoop(_ l: Socket) {
        while !StopFlag.isRaised {
            guard (try? l.wait(timeout: .milliseconds(200))) == true, let client = l.accept() else { continue }
            Thread.detachNewThread { [self] in relayTCP(client) }
        }
    }

    func relayTCP(_ client: Socket) {
        guard let t = targetEndpoint() else {
            emit(.info("forward: connection from \(client.remoteEndpoint.map { "\($0)" } ?? "?") dropped: the target port is not known yet"))
            return
        }
        let upstream: Socket
        do {
            upstream = try Socket(family: t.address.isIPv4 ? AF_INET : AF_INET6, tcp: true,
                                  options: SocketOptions(fwmark: config.fwmark, congestion: config.congestion))
            try upstream.connect(t, timeout: .seconds(10))
        } catch {
            emit(.info("forward: cannot reach \(t): \(error)"))
            return
        }
        if let cc = config.congestion {
            _ = cc.withCString { setsockopt(client.fd, Int32(IPPROTO_TCP), Int32(TCP_CONGESTION), $0, socklen_t(strlen($0))) }
        }
        pump(client, upstream)
    }

    /// Copies both ways until both sides have finished or nothing moved for -T seconds.
    func pump(_ a: Socket, _ b: Socket) {
        var fds = [pollfd(fd: a.fd, events: Int16(POLLIN), revents: 0), pollfd(fd: b.fd, events: Int16(POLLIN), revents: 0)]
        var open = [true, true]
        var last = monotonicNow()
        let sockets = [a, b]
        while (open[0] || open[1]) && !StopFlag.isRaised {
            if monotonicNow() - last > idle { break }
            for i in 0..<2 { fds[i].events = open[i] ? Int16(POLLIN) : 0; fds[i].revents = 0 }
            let r = poll(&fds, 2, 200)
            if r < 0 && errno != EINTR { break }
            guard r > 0 else { continue }
            for i in 0..<2 where open[i] && fds[i].revents != 0 {
                let other = sockets[1 - i]
                switch Result(catching: { () throws(SocketError) in try sockets[i].receive() }) {
                case .success(.some(let d)):
                    last = monotonicNow()
                    if (try? other.sendAll(d)) == nil { return }
                case .success(.none):
                    open[i] = false
                    shutdown(other.fd, Int32(SHUT_WR))
                case .failure:
                    return
                }
            }
        }
    }

    // MARK: UDP

    struct Flow {
        var socket: Socket
        var last: Duration
    }

    func udpLoop(_ s: Socket) {
        var flows: [STUNEndpoint: Flow] = [:]
        while !StopFlag.isRaised {
            var fds = [pollfd(fd: s.fd, events: Int16(POLLIN), revents: 0)]
            let clients = Array(flows.keys)
            for c in clients { fds.append(pollfd(fd: flows[c]!.socket.fd, events: Int16(POLLIN), revents: 0)) }
            let r = poll(&fds, nfds_t(fds.count), 200)
            let now = monotonicNow()
            if r > 0 {
                if fds[0].revents != 0, let (d, from) = try? s.receiveFrom(), let from {
                    if flows[from] == nil, let t = targetEndpoint(),
                       let u = try? Socket(family: t.address.isIPv4 ? AF_INET : AF_INET6, tcp: false, options: SocketOptions(fwmark: config.fwmark)),
                       (try? u.connect(t)) != nil {
                        flows[from] = Flow(socket: u, last: now)
                    }
                    if let f = flows[from] {
                        _ = try? f.socket.send(d)
                        flows[from]?.last = now
                    }
                }
                for (i, c) in clients.enumerated() where fds[i + 1].revents != 0 {
                    guard let f = flows[c] else { continue }
                    if let d = try? f.socket.receive() {
                        _ = try? s.send(d, to: c)
                        flows[c]?.last = now
                    }
                }
            }
            for (c, f) in flows where now - f.last > idle { flows[c] = nil }
        }
    }
}
