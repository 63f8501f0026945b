#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import STUN

/// What `swiftnat map` has to say, for the front end to print (text or JSON lines).
public enum MapEvent: Sendable {
    case info(String)
    /// A mapping first known (`previous` nil) or changed.
    case mapping(MappingInfo, previous: MappingInfo?)
    /// A STUN server failed and the next one is tried.
    case failover(from: String, to: String, reason: String)
    /// A STUN answer refused (malformed, hostile, or an error response), with its reason.
    case refused(server: String, reason: String, detail: String)
    /// Something failed; the next attempt is in `retryIn`.
    case error(String, retryIn: Duration?)
    case stopped
}

public enum MapError: Error, CustomStringConvertible {
    case setup(String)
    public var description: String {
        switch self {
        case .setup(let s): s
        }
    }
}

/// The public port the forwarders send to when `-p 0`.
final class SharedMapping: Sendable {
    let publicPort = Mutex<UInt16>(0)
}

/// NATMap's job: keep a public port open from one local port and report it.
///
/// TCP: one kept-open connection to the HTTP server from the bind port with `HEAD /` every -k seconds,
/// and STUN over TCP from the same port (at start, after reconnecting, and every -c keep-alives).
/// UDP: a connected socket on the bind port sends a Binding request every -k seconds; every -c-th is a
/// full transaction (RFC 8489 retransmissions) whose failure moves to the next STUN server.
/// Failures back off exponentially; SIGTERM/SIGINT stop it within 200 ms.
public final class Mapper {
    public let config: MapConfiguration
    let emit: (MapEvent) -> Void
    var serverIndex = 0
    var current: MappingInfo?
    var backoff: Backoff
    var port: UInt16 = 0
    var portHolder: Socket?
    let shared = SharedMapping()
    /// Full UDP checks: 0, 0.5, 1.5, 3.5 s, given up at 5.5 s.
    public var checkTiming = STUNRetransmission(rto: .milliseconds(500), rc: 4, rm: 4)

    public init(config: MapConfiguration, emit: @escaping (MapEvent) -> Void) {
        self.config = config
        self.emit = emit
        backoff = Backoff(maximum: .seconds(config.maximumBackoff))
    }

    var wildcard: STUNAddress { config.localAddress ?? (config.ipv6 ? .v6(.any) : .v4(.init(0))) }
    var bindEndpoint: STUNEndpoint { STUNEndpoint(wildcard, port) }

    /// Runs until SIGTERM/SIGINT (``StopFlag``).
    public func run() throws(MapError) {
        try choosePort()
        emit(.info("\(config.protocolName) bind port \(port) on \(wildcard)\(config.device.map { " (device \($0))" } ?? "")"))
        if case .forward(let target, let p) = config.mode {
            let f = Forwarder(config: config, port: port, target: target, targetPort: p, shared: shared, emit: emit)
            try f.start()
        }
        if config.udp { runUDP() } else { runTCP() }
        emit(.stopped)
    }

    // MARK: Port

    func isFree(_ p: UInt16) -> Bool {
        guard let s = try? Socket(family: config.family, tcp: !config.udp, options: SocketOptions(device: config.device)) else { return false }
        return (try? s.bind(STUNEndpoint(wildcard, p))) != nil
    }

    /// Picks the port (-b) and holds it with a socket that has SO_REUSEPORT, so that the keep-alive,
    /// STUN and the user's service can share it and nobody else takes it. For TCP the holder is bound
    /// and never listens (it receives nothing); for UDP it is the STUN socket.
    func choosePort() throws(MapError) {
        var candidate: UInt16
        switch config.bindPort {
        case .any: candidate = 0
        case .fixed(let p): candidate = p
        case .randomIn(let r):
            guard let p = (0..<200).lazy.map({ _ in UInt16.random(in: r) }).first(where: isFree) ?? r.first(where: isFree) else {
                throw .setup("-b \(config.bindPort): no free port in the range")
            }
            candidate = p
        case .nextFreeIn(let r):
            guard let p = r.first(where: isFree) else { throw .setup("-b \(config.bindPort): no free port in the range") }
            candidate = p
        }
        let holder: Socket
        do { holder = try Socket(family: config.family, tcp: !config.udp, options: config.socketOptions) } catch {
            throw .setup(error.description)
        }
        do {
            try holder.bind(STUNEndpoint(wildcard, candidate))
        } catch where error.isAddressInUse {
            guard !config.udp else {
                throw .setup("UDP port \(candidate) is taken by a socket without SO_REUSEPORT: start that service with SO_REUSEPORT, or choose another port with -b")
            }
            let outcome = PortTakeover.enableReusePort(port: candidate, ipv6: config.ipv6)
            emit(.info(outcome.message))
            guard outcome.done, (try? holder.bind(STUNEndpoint(wildcard, candidate))) != nil else {
                throw .setup("TCP port \(candidate) is taken: \(outcome.message)")
            }
        } catch {
            throw .setup(error.description)
        }
        port = holder.localEndpoint?.port ?? candidate
        portHolder = holder
    }

    // MARK: Reporting

    func found(_ mapped: STUNEndpoint, server: STUNEndpoint, privateAddress: String) {
        backoff.succeeded()
        let info = MappingInfo(public: mapped, bindPort: port, protocol: config.protocolName,
                               privateAddress: privateAddress, stunServer: server.description)
        shared.publicPort.withLock { $0 = mapped.port }
        if let current, current.sameMapping(as: info) { return }
        emit(.mapping(info, previous: current))
        current = info
    }

    func failed(_ message: String) {
        let wait = backoff.failed()
        emit(.error(message, retryIn: wait))
        interruptibleSleep(wait)
    }

    func resolveServer(_ i: Int) -> Result<STUNEndpoint, SocketError> {
        Result { () throws(SocketError) in try resolveEndpoint(config.stunServers[i], defaultPort: 3478, family: config.family) }
    }

    /// Tries the STUN servers in order, from the last one that worked; `query` asks one.
    func withFailover(_ query: (STUNEndpoint) throws(STUNClientError) -> Void) -> Bool {
        let n = config.stunServers.count
        var lastError = ""
        for attempt in 0..<n {
            if StopFlag.isRaised { return false }
            let i = (serverIndex + attempt) % n
            if attempt > 0 {
                emit(.failover(from: config.stunServers[(i + n - 1) % n], to: config.stunServers[i], reason: lastError))
            }
            switch resolveServer(i) {
            case .failure(let e):
                lastError = e.description
            case .success(let server):
                do {
                    try query(server)
                    serverIndex = i
                    return true
                } catch {
                    if case .refused(let s, let e) = error { emit(.refused(server: (s ?? server).description, reason: e.reason, detail: e.description)) }
                    lastError = error.description
                }
            }
        }
        emit(.info("every STUN server failed; last: \(lastError)"))
        return false
    }

    // MARK: TCP

    func runTCP() {
        while !StopFlag.isRaised {
            let reason = tcpSession()
            if StopFlag.isRaised { break }
            failed(reason)
        }
    }

    /// One keep-alive connection's life; returns why it ended.
    func tcpSession() -> String {
        guard let httpText = config.httpServer else { return "no HTTP server" }
        let http: STUNEndpoint
        do { http = try resolveEndpoint(httpText, defaultPort: 80, family: config.family) } catch { return "HTTP server \(httpText): \(error)" }
        let conn: Socket
        do {
            conn = try Socket(family: config.family, tcp: true, options: config.socketOptions)
            try conn.bind(bindEndpoint)
            try conn.connect(http, timeout: .seconds(5))
        } catch {
            return "keep-alive connection to \(http) from port \(port): \(error)"
        }
        conn.setAbortiveClose()
        defer { conn.close() }
        let privateAddress = conn.localEndpoint?.address.description ?? wildcard.description
        emit(.info("keep-alive connection \(conn.localEndpoint.map { "\($0)" } ?? "?") → \(http)"))
        let host = httpText.split(separator: ":").first.map(String.init) ?? httpText
        let head = Array("HEAD / HTTP/1.1\r\nHost: \(host)\r\nConnection: keep-alive\r\nUser-Agent: swiftnat\r\n\r\n".utf8)
        var ticks = 0
        while !StopFlag.isRaised {
            if ticks % config.checkCycle == 0 {
                let ok = withFailover { (server) throws(STUNClientError) in
                    let (answer, _) = try stunOverTCP(local: bindEndpoint, server: server, options: config.socketOptions)
                    found(answer.response.mapped, server: server, privateAddress: privateAddress)
                }
                if !ok { return "no STUN server answered over TCP" }
            }
            do { try conn.sendAll(head) } catch { return "keep-alive to \(http): \(error)" }
            var answered = false
            let end = monotonicNow() + .seconds(config.keepAlive)
            while !StopFlag.isRaised, monotonicNow() < end {
                guard (try? conn.wait(timeout: min(end - monotonicNow(), .milliseconds(200)))) == true else { continue }
                switch Result(catching: { () throws(SocketError) in try conn.receive() }) {
                case .success(.some): answered = true
                case .success(.none): return "the HTTP server \(http) closed the keep-alive connection"
                case .failure(let e): return "keep-alive connection to \(http): \(e)"
                }
            }
            if StopFlag.isRaised { break }
            guard answered else { return "no answer to the keep-alive from \(http) within \(config.keepAlive) s" }
            ticks += 1
        }
        return "stopped"
    }

    // MARK: UDP

    func runUDP() {
        // The socket that holds the port becomes the STUN socket: once connected to the STUN server it
        // no longer takes part in SO_REUSEPORT's choice for other senders, which all reach the service
        // (or the forwarder). An unconnected socket left in the group would swallow a share of them.
        guard let sock = portHolder else { return }
        var ticks = 0
        var pending: [STUNTransactionID: STUNEndpoint] = [:]
        var connectedTo: STUNEndpoint?
        while !StopFlag.isRaised {
            if ticks % config.checkCycle == 0 || current == nil {
                pending.removeAll()
                let ok = withFailover { (server) throws(STUNClientError) in
                    do throws(SocketError) { try sock.connect(server) } catch { throw .socket(error) }
                    connectedTo = server
                    let request = STUNMessage.bindingRequest(id: .random())
                    let a = try stunTransaction(socket: sock, to: nil, request: request, timing: checkTiming) { e, from in
                        emit(.refused(server: (from ?? server).description, reason: e.reason, detail: e.description))
                    }
                    found(a.response.mapped, server: server, privateAddress: sock.localEndpoint?.address.description ?? wildcard.description)
                }
                if !ok {
                    failed("no STUN server answered over UDP")
                    continue
                }
            } else if let server = connectedTo {
                let request = STUNMessage.bindingRequest(id: .random())
                pending[request.transactionID] = server
                _ = try? sock.send(request.encode(fingerprint: true))
            }
            ticks += 1
            if !udpWait(sock, pending: &pending) { ticks = 0 }
        }
    }

    /// Waits -k seconds, taking the answers to keep-alive requests; false when the server looks gone
    /// (port unreachable), so that the next tick is a full check.
    func udpWait(_ sock: Socket, pending: inout [STUNTransactionID: STUNEndpoint]) -> Bool {
        let end = monotonicNow() + .seconds(config.keepAlive)
        while !StopFlag.isRaised, monotonicNow() < end {
            guard (try? sock.wait(timeout: min(end - monotonicNow(), .milliseconds(200)))) == true else { continue }
            let d: [UInt8]
            do { (d, _) = try sock.receiveFrom() } catch {
                if error.errno == ECONNREFUSED {
                    emit(.info("STUN server \(config.stunServers[serverIndex]) is unreachable (port unreachable)"))
                    return false
                }
                continue
            }
            do throws(STUNError) {
                let m = try STUNMessage(decoding: d)
                guard let server = pending.removeValue(forKey: m.transactionID) else { throw .transactionMismatch(m.transactionID) }
                let r = try STUNBindingResponse(m, answering: m.transactionID, family: sock.family == AF_INET ? 1 : 2)
                found(r.mapped, server: server, privateAddress: sock.localEndpoint?.address.description ?? wildcard.description)
            } catch {
                emit(.refused(server: config.stunServers[serverIndex], reason: error.reason, detail: error.description))
            }
        }
        return true
    }
}
