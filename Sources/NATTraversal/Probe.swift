#if canImport(Glibc)
import Glibc
#endif
import STUN

/// What `swiftnat probe` is asked to do.
public struct ProbeOptions: Sendable {
    /// STUN server, `host[:port]` (3478 by default).
    public var server: String
    /// Local address (and port) to send from; by default the address the kernel picks toward the server.
    public var local: String?
    public var ipv6 = false
    public var timing = STUNRetransmission(rto: .milliseconds(250), rc: 4, rm: 4)
    public var hairpinning = true
    /// RFC 5780 §4.6 lifetime search up to this idle time (nil: not run).
    public var lifetimeMaximum: Duration?
    /// Also classify TCP mapping (RFC 5780 §4.3 over TCP).
    public var tcp = false
    public var socketOptions = SocketOptions()

    public init(server: String) { self.server = server }
}

/// What `swiftnat probe` found (RFC 5780 §4).
public struct ProbeReport: Sendable, Codable {
    public var server: String
    public var otherAddress: String?
    public var software: String?
    public var local: String
    public var mapped: String
    /// `NATMappingBehavior.rawValue`, or nil when tests II/III could not run.
    public var mapping: String?
    public var filtering: String?
    public var hairpinning: Bool?
    /// RFC 5780 §4.6: the mapping survived `lifetimeAlive` seconds idle and died by `lifetimeDead` (nil: not seen to die).
    public var lifetimeAlive: Int?
    public var lifetimeDead: Int?
    public var tcpMapped: String?
    public var tcpMapping: String?
    /// Hostile or malformed answers that were refused, with their reasons.
    public var refused: [String] = []
    public var notes: [String] = []
}

public enum ProbeError: Error, CustomStringConvertible {
    case setup(String)
    case stun(STUNClientError)

    public var description: String {
        switch self {
        case .setup(let s): s
        case .stun(let e): e.description
        }
    }
}

/// RFC 5780 behaviour discovery over UDP (and, when asked, mapping over TCP).
public struct Prober {
    public var options: ProbeOptions
    public var log: (String) -> Void
    private var refused: [String] = []

    public init(options: ProbeOptions, log: @escaping (String) -> Void = { _ in }) {
        self.options = options
        self.log = log
    }

    var family: Int32 { options.ipv6 ? AF_INET6 : AF_INET }

    func localBase(toward server: STUNEndpoint) throws(ProbeError) -> STUNEndpoint {
        if let l = options.local {
            guard let e = STUNEndpoint(l, defaultPort: 0) else { throw .setup("-L/--local \(l): expected ADDRESS or ADDRESS:PORT") }
            return e
        }
        guard let a = sourceAddress(toward: server, options: options.socketOptions) else {
            throw .setup("no route to \(server) (set -L/--local)")
        }
        return STUNEndpoint(a, 0)
    }

    func udpSocket(_ local: STUNEndpoint) throws(ProbeError) -> Socket {
        do {
            let s = try Socket(family: family, tcp: false, options: options.socketOptions)
            try s.bind(local)
            return s
        } catch {
            throw .setup(error.description)
        }
    }

    mutating func ask(_ s: Socket, _ to: STUNEndpoint, changeIP: Bool = false, changePort: Bool = false,
                      what: String) throws(STUNClientError) -> STUNAnswer {
        let req = STUNMessage.bindingRequest(id: .random(), changeIP: changeIP, changePort: changePort)
        var seen: [String] = []
        defer { refused += seen }
        let a = try stunTransaction(socket: s, to: to, request: req, timing: options.timing) { e, from in
            seen.append("\(what): from \(from.map { "\($0)" } ?? "?"): \(e.reason): \(e)")
        }
        log("\(what): \(to) → mapped \(a.response.mapped)\(a.from.map { " (answer from \($0))" } ?? "")")
        return a
    }

    public mutating func run() throws(ProbeError) -> ProbeReport {
        let server: STUNEndpoint
        do { server = try resolveEndpoint(options.server, defaultPort: 3478, family: family) } catch { throw .setup(error.description) }
        let s1 = try udpSocket(try localBase(toward: server))
        guard let local = s1.localEndpoint else { throw .setup("getsockname failed") }
        // Later tests need fresh mappings: new sockets on the same address, any port.
        let base = STUNEndpoint(local.address, 0)
        // RFC 5780 §4.3 test I.
        let t1: STUNAnswer
        do { t1 = try ask(s1, server, what: "mapping test I") } catch { throw .stun(error) }
        let a1 = t1.response.mapped
        var report = ProbeReport(server: server.description, otherAddress: t1.response.otherAddress?.description,
                                 software: t1.response.software, local: local.description, mapped: a1.description)
        let other = t1.response.otherAddress
        if other == nil {
            report.notes.append("the server sent no OTHER-ADDRESS: it cannot run RFC 5780 tests II and III (give it a second address)")
        }
        report.mapping = mappingBehavior(s1, server: server, other: other, local: local, a1: a1, report: &report)?.rawValue
        if let other { report.filtering = filteringBehavior(base, server: server, other: other, report: &report)?.rawValue }
        if options.hairpinning { report.hairpinning = hairpinning(s1, mapped: a1, base: base) }
        if let max = options.lifetimeMaximum { lifetime(base, server: server, maximum: max, report: &report) }
        if options.tcp { tcpMapping(base, server: server, other: other, report: &report) }
        report.refused = refused
        return report
    }

    /// RFC 5780 §4.3: tests II (alternate address, primary port) and III (alternate address and port).
    mutating func mappingBehavior(_ s: Socket, server: STUNEndpoint, other: STUNEndpoint?, local: STUNEndpoint,
                                  a1: STUNEndpoint, report: inout ProbeReport) -> NATMappingBehavior? {
        if a1 == local { return .noNAT }
        guard let other else { return nil }
        do {
            let a2 = try ask(s, STUNEndpoint(other.address, server.port), what: "mapping test II").response.mapped
            if a2 == a1 { return .endpointIndependent }
            let a3 = try ask(s, other, what: "mapping test III").response.mapped
            return NATMappingBehavior.classify(local: local, testI: a1, testII: a2, testIII: a3)
        } catch {
            report.notes.append("mapping tests II/III: \(error)")
            return nil
        }
    }

    /// RFC 5780 §4.4 from a fresh socket: test II asks for an answer from the other address and port,
    /// test III from the other port only.
    mutating func filteringBehavior(_ base: STUNEndpoint, server: STUNEndpoint, other: STUNEndpoint,
                                    report: inout ProbeReport) -> NATFilteringBehavior? {
        let s: Socket
        do { s = try udpSocket(base) } catch { report.notes.append("filtering: \(error)"); return nil }
        do { _ = try ask(s, server, what: "filtering test I") } catch {
            report.notes.append("filtering test I: \(error)")
            return nil
        }
        func answered(_ r: Result<STUNAnswer, STUNClientError>, _ what: String, _ report: inout ProbeReport) -> Bool? {
            switch r {
            case .success: return true
            case .failure(.timedOut): log("\(what): no answer"); return false
            case .failure(let e): report.notes.append("\(what): \(e)"); return nil
            }
        }
        let r2 = Result { () throws(STUNClientError) in try ask(s, server, changeIP: true, changePort: true, what: "filtering test II") }
        guard let ii = answered(r2, "filtering test II", &report) else { return nil }
        if ii { return .endpointIndependent }
        let r3 = Result { () throws(STUNClientError) in try ask(s, server, changePort: true, what: "filtering test III") }
        guard let iii = answered(r3, "filtering test III", &report) else { return nil }
        return NATFilteringBehavior.classify(testIIAnswered: false, testIIIAnswered: iii)
    }

    /// RFC 5780 §4.5: a request sent from another local socket to the first socket's mapped address
    /// comes back to the first socket when the NAT hairpins.
    func hairpinning(_ s1: Socket, mapped: STUNEndpoint, base: STUNEndpoint) -> Bool? {
        guard let s2 = try? udpSocket(base) else { return nil }
        let req = STUNMessage.bindingRequest(id: .random())
        var schedule = options.timing
        while !StopFlag.isRaised {
            switch schedule.poll(now: monotonicNow()) {
            case .send:
                guard (try? s2.send(req.encode(fingerprint: true), to: mapped)) != nil else { return nil }
            case .timedOut:
                log("hairpinning: nothing came back to \(mapped)")
                return false
            case .wait(let until):
                guard (try? s1.wait(timeout: min(until - monotonicNow(), .milliseconds(200)))) == true,
                      let (d, _) = try? s1.receiveFrom() else { continue }
                if let m = try? STUNMessage(decoding: d), m.transactionID == req.transactionID {
                    log("hairpinning: the request sent to \(mapped) came back")
                    return true
                }
            }
        }
        return nil
    }

    /// RFC 5780 §4.6: socket X makes a mapping and stays idle for t; then socket Y asks the server to
    /// answer to X's mapped port (RESPONSE-PORT). X hears it while the mapping lives. Binary search on t.
    mutating func lifetime(_ base: STUNEndpoint, server: STUNEndpoint, maximum: Duration, report: inout ProbeReport) {
        func trial(idle: Duration) -> Bool? {
            guard let x = try? udpSocket(base), let y = try? udpSocket(base),
                  let mx = try? ask(x, server, what: "lifetime: mapping").response.mapped else { return nil }
            guard interruptibleSleep(idle) else { return nil }
            let req = STUNMessage.bindingRequest(id: .random(), responsePort: mx.port)
            var schedule = options.timing
            while !StopFlag.isRaised {
                switch schedule.poll(now: monotonicNow()) {
                case .send: _ = try? y.send(req.encode(fingerprint: true), to: server)
                case .timedOut: return false
                case .wait(let until):
                    guard (try? x.wait(timeout: min(until - monotonicNow(), .milliseconds(200)))) == true,
                          let (d, _) = try? x.receiveFrom() else { continue }
                    if let m = try? STUNMessage(decoding: d), m.transactionID == req.transactionID { return true }
                }
            }
            return nil
        }
        guard trial(idle: .zero) == true else {
            report.notes.append("lifetime: the server did not answer to RESPONSE-PORT (RFC 5780 §7.5), so the lifetime cannot be measured")
            return
        }
        var search = LifetimeSearch(maximum: maximum)
        while let t = search.next {
            guard let alive = trial(idle: t) else { report.notes.append("lifetime: interrupted"); return }
            log("lifetime: idle \(t) → mapping \(alive ? "alive" : "gone")")
            search.record(idle: t, alive: alive)
        }
        report.lifetimeAlive = Int(search.alive.components.seconds)
        report.lifetimeDead = search.dead.map { Int($0.components.seconds) }
    }

    /// RFC 5780 §4.3 over TCP: tests I-III as connections from one local port.
    mutating func tcpMapping(_ base: STUNEndpoint, server: STUNEndpoint, other: STUNEndpoint?, report: inout ProbeReport) {
        var o = options.socketOptions
        o.reusePort = true
        do {
            let (t1, local) = try stunOverTCP(local: base, server: server, options: o)
            report.tcpMapped = t1.response.mapped.description
            log("TCP mapping test I: \(local) → \(t1.response.mapped)")
            if t1.response.mapped == local { report.tcpMapping = NATMappingBehavior.noNAT.rawValue; return }
            guard let other = t1.response.otherAddress ?? other else { return }
            let (t2, _) = try stunOverTCP(local: local, server: STUNEndpoint(other.address, server.port), options: o)
            log("TCP mapping test II: \(t2.response.mapped)")
            if t2.response.mapped == t1.response.mapped { report.tcpMapping = NATMappingBehavior.endpointIndependent.rawValue; return }
            let (t3, _) = try stunOverTCP(local: local, server: other, options: o)
            log("TCP mapping test III: \(t3.response.mapped)")
            report.tcpMapping = NATMappingBehavior.classify(local: local, testI: t1.response.mapped, testII: t2.response.mapped,
                                                            testIII: t3.response.mapped).rawValue
        } catch {
            report.notes.append("TCP: \(error)")
        }
    }
}

extension ProbeReport {
    /// The report as a person reads it.
    public var humanText: String {
        func behaviour<T: RawRepresentable & CustomStringConvertible>(_ raw: String?, _ t: T.Type) -> String where T.RawValue == String {
            raw.flatMap { T(rawValue: $0)?.description } ?? "unknown"
        }
        var lines = [
            "STUN server     \(server)" + (otherAddress.map { ", other address \($0)" } ?? "") + (software.map { ", \"\($0)\"" } ?? ""),
            "local address   \(local)",
            "mapped address  \(mapped)",
            "mapping         \(behaviour(mapping, NATMappingBehavior.self))",
            "filtering       \(behaviour(filtering, NATFilteringBehavior.self))",
        ]
        if let h = hairpinning { lines.append("hairpinning     \(h ? "yes" : "no")") }
        if let a = lifetimeAlive {
            lines.append("UDP lifetime    " + (lifetimeDead.map { "between \(a) s and \($0) s" } ?? "more than \(a) s"))
        }
        if let m = tcpMapped { lines.append("TCP mapped      \(m), \(behaviour(tcpMapping, NATMappingBehavior.self))") }
        for r in refused { lines.append("refused         \(r)") }
        for n in notes { lines.append("note            \(n)") }
        return lines.joined(separator: "\n")
    }
}
