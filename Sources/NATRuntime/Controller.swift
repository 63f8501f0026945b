import Foundation
import Logging
import NAPT44
import NAT64
import NATCore
import NATWire

/// The version `swiftnat --version` and `swiftnat status` print.
public enum SwiftNATVersion {
    public static let string = "0.6.0"
}

/// A request on the control socket: one JSON object per line (see README, "Control socket").
public struct ControlRequest: Codable, Sendable {
    /// `status`, `sessions`, `stats`, `forwards.list`, `forwards.add`, `forwards.remove`, `reservations`, `reload`.
    public var command: String
    public var `protocol`: String?
    public var inside: String?
    public var outside: String?
    public var remote: String?
    /// `forwards.add`: seconds until the forward ends (nil or 0: until removed).
    public var lifetime: Int?
    public var description: String?
    public var limit: Int?
    /// `forwards.add`: false keeps the forward listed (its port reserved) but not installed (UPnP NewEnabled=0).
    public var enabled: Bool?

    public init(command: String) { self.command = command }
}

/// A forward as the control plane lists and keeps it.
public struct ForwardEntry: Codable, Sendable, Equatable {
    public var `protocol`: String
    public var outside: String
    public var inside: String
    /// Where it came from: `config` (the file), `cli` (`swiftnat forwards add`, the control socket), or
    /// an in-process server (`upnp`, `natpmp`, `pcp`).
    public var origin: String
    public var description: String?
    /// When it ends (seconds since 1970), nil for never.
    public var expiresAt: Double?
    /// false: kept and listed, not installed in the engine (UPnP NewEnabled=0); nil or true: forwarding.
    public var enabled: Bool? = nil

    var isEnabled: Bool { enabled ?? true }

    func expired(at now: Double) -> Bool { expiresAt.map { $0 <= now } ?? false }
}

/// What `swiftnat status` shows.
public struct StatusResult: Codable, Sendable {
    public var version: String
    public var pid: Int32
    public var uptimeSeconds: Double
    public var configFile: String
    public var engines: [String]
    public var tun: String
    public var queues: Int
    public var offload: String
    public var sessions: Int
    public var forwards: Int
    public var reloads: Int
}

/// What `swiftnat stats` shows: totals over every packet thread.
public struct StatsResult: Codable, Sendable {
    public var queues: Int
    public var nat44: [String: UInt64]?
    public var nat64: [String: UInt64]?
    public var nptv6: [String: UInt64]?
    public var runtime: [String: UInt64]
    public var dropped: [String: UInt64]
}

/// The daemon's control plane: answers control-socket requests, reloads, keeps the run-time forwards
/// (and their state file). It never touches an engine: it sends ``PacketCommand``s to the packet
/// threads and reads their snapshots. Every call runs on one serial queue, so the command queues see
/// one producer at a time.
public final class DaemonController: @unchecked Sendable {
    public let queue = DispatchQueue(label: "swiftnat.control")
    let commands: [CommandQueue]
    let logger: Logger
    let started = Date()
    let tunName: String
    /// The offloads the kernel agreed to (set once the TUN device exists).
    var offload = "not yet open"
    /// The running configuration (replaced by a reload that succeeded).
    private(set) var configuration: DaemonConfiguration
    /// How a reload reads the file again (the command line's overrides applied).
    let loader: (String) throws(ConfigurationError) -> DaemonConfiguration
    private var runtimeForwards: [ForwardEntry] = []
    /// The stateful NAT64's run-time static BIB entries (PCP MAP from IPv6 hosts), listed as forwards:
    /// inside `[IPV6]:PORT`, outside `IPV4:PORT`.
    private var runtimeBindings: [ForwardEntry] = []
    /// What the start restored from the sessions file (`swiftnat stats`: `sessions_restored`, …).
    public var restoreReport: RestoreReport? {
        get { queue.sync { savedRestoreReport } }
        set { queue.sync { savedRestoreReport = newValue } }
    }
    /// (Read on ``queue``.)
    private(set) var savedRestoreReport: RestoreReport?
    private var reloads = 0

    public init(configuration: DaemonConfiguration, commands: [CommandQueue], tunName: String,
                logger: Logger, loader: @escaping (String) throws(ConfigurationError) -> DaemonConfiguration) {
        self.configuration = configuration
        self.commands = commands
        self.tunName = tunName
        self.logger = logger
        self.loader = loader
    }

    // MARK: Requests

    /// Answers one request line with one response line (JSON, no newline).
    public func handle(line: String) -> String {
        let request: ControlRequest
        do {
            request = try JSONDecoder().decode(ControlRequest.self, from: Data(line.utf8))
        } catch {
            return Self.failure("the request is not a JSON object with a \"command\" (\(error))")
        }
        return queue.sync { handle(request) }
    }

    func handle(_ r: ControlRequest) -> String {
        do throws(ControlError) {
            switch r.command {
            case "status": return Self.success(try status())
            case "sessions": return Self.success(try sessions(r))
            case "stats": return Self.success(try stats())
            case "forwards.list", "forwards": return Self.success(forwards())
            case "forwards.add": return Self.success(try addForward(r))
            case "forwards.remove": return Self.success(try removeForward(r))
            case "reservations": return Self.success(try reservations())
            case "reload": return Self.success(try reload())
            default:
                throw ControlError("unknown command '\(r.command)' (status, sessions, stats, forwards.list, forwards.add, forwards.remove, reservations, reload)")
            }
        } catch {
            return Self.failure(error.message)
        }
    }

    /// A request the daemon refuses, with what to do.
    public struct ControlError: Error, CustomStringConvertible {
        public var message: String
        public init(_ m: String) { message = m }
        public var description: String { message }
    }

    struct Envelope<T: Encodable>: Encodable {
        var ok: Bool
        var result: T?
        var error: String?
    }

    static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }

    static func success<T: Encodable>(_ v: T) -> String {
        guard let d = try? encoder().encode(Envelope(ok: true, result: v, error: nil)) else { return failure("cannot encode the answer") }
        return String(decoding: d, as: UTF8.self)
    }

    static func failure(_ message: String) -> String {
        let d = (try? encoder().encode(Envelope<String>(ok: false, result: nil, error: message))) ?? Data()
        return String(decoding: d, as: UTF8.self)
    }

    /// Asks every packet thread for a snapshot.
    public func snapshots(_ request: SnapshotRequest = SnapshotRequest()) throws(ControlError) -> [QueueSnapshot] {
        let replies = commands.map { q in
            let r = Reply<QueueSnapshot>()
            return q.send(.snapshot(request, r)) ? r : nil
        }
        var out: [QueueSnapshot] = []
        for (i, r) in replies.enumerated() {
            guard let s = r?.wait() else { throw ControlError("packet thread \(i) did not answer (busy or stopped)") }
            out.append(s)
        }
        return out
    }

    func status() throws(ControlError) -> StatusResult {
        let snaps = try snapshots()
        var engines: [String] = []
        if configuration.nat44 != nil { engines.append("nat44") }
        if let n = configuration.nat64 { engines.append("nat64-\(n.mode.name)") }
        if configuration.nptv6 != nil { engines.append("nptv6") }
        return StatusResult(version: SwiftNATVersion.string, pid: getpid(), uptimeSeconds: Date().timeIntervalSince(started),
                            configFile: configuration.file, engines: engines, tun: tunName, queues: commands.count,
                            offload: offload, sessions: snaps.reduce(0) { $0 + $1.nat44Sessions + $1.nat64Sessions },
                            forwards: forwards().count, reloads: reloads)
    }

    func sessions(_ r: ControlRequest) throws(ControlError) -> [SessionRow] {
        let filter = try SessionFilter(r)
        let snaps = try snapshots(SnapshotRequest(sessions: true, limit: r.limit ?? 100_000))
        return snaps.flatMap(\.sessions).filter(filter.matches)
    }

    /// Packets the kernel dropped on their way into the TUN device (a queue's ring was full: the host
    /// that hashes to it sent faster than its turn and budget allow), from sysfs; nil without a device.
    func tunDropped() -> UInt64? {
        guard let s = try? String(contentsOfFile: "/sys/class/net/\(tunName)/statistics/tx_dropped", encoding: .utf8) else { return nil }
        return UInt64(s.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    func stats() throws(ControlError) -> StatsResult {
        let snaps = try snapshots()
        var io = IOCounters()
        var n44: Counters? = nil, n64: Counters? = nil, n66: Counters? = nil
        var dropped: [String: UInt64] = [:]
        var extra44: [String: UInt64] = [:], extra64: [String: UInt64] = [:]
        for s in snaps {
            io += s.io
            if let c = s.nat44 {
                n44 = (n44 ?? Counters()) + c
                extra44["sessions", default: 0] += UInt64(s.nat44Sessions)
                extra44["mappings", default: 0] += UInt64(s.nat44Mappings)
            }
            if let c = s.nat64 {
                n64 = (n64 ?? Counters()) + c
                extra64["sessions", default: 0] += UInt64(s.nat64Sessions)
                extra64["bib_entries", default: 0] += UInt64(s.nat64Bindings)
                extra64["reservations", default: 0] += UInt64(s.nat64Reservations)
            }
            if let c = s.nptv6 { n66 = (n66 ?? Counters()) + c }
        }
        for c in [n44, n64, n66].compactMap({ $0 }) {
            for r in DropReason.allCases where c.dropped(r) > 0 { dropped[r.name, default: 0] += c.dropped(r) }
        }
        func fields(_ c: Counters?, _ extra: [String: UInt64]) -> [String: UInt64]? {
            guard let c else { return nil }
            var d = extra
            for (k, v) in c.fields { d[k] = v }
            return d
        }
        var runtime = Dictionary(uniqueKeysWithValues: io.fields)
        if let d = tunDropped() { runtime["tun_tx_dropped"] = d }
        if let r = savedRestoreReport {
            runtime["sessions_restored"] = UInt64(r.sessionsRestored)
            runtime["port_holds_restored"] = UInt64(r.holdsRestored)
            runtime["sessions_restore_skipped"] = UInt64(r.skippedTotal)
            for (k, v) in r.skipped { runtime["sessions_restore_skipped_\(k.rawValue)"] = UInt64(v) }
        }
        return StatsResult(queues: snaps.count, nat44: fields(n44, extra44), nat64: fields(n64, extra64), nptv6: fields(n66, [:]),
                           runtime: runtime, dropped: dropped)
    }

    func reservations() throws(ControlError) -> [AddressReservationRow] {
        guard case .pool? = configuration.nat64?.mode else { throw ControlError("reservations exist only in NAT64 pool mode") }
        return try snapshots(SnapshotRequest(reservations: true)).flatMap(\.reservations).map {
            AddressReservationRow(ipv6: $0.ipv6.description, ipv4: $0.ipv4.description, idleSeconds: $0.idleSeconds, isStatic: $0.isStatic)
        }
    }

    // MARK: Forwards

    /// The configured forwards and the run-time ones still alive.
    public func forwards() -> [ForwardEntry] {
        let now = Date().timeIntervalSince1970
        runtimeForwards.removeAll { $0.expired(at: now) }
        runtimeBindings.removeAll { $0.expired(at: now) }
        let configured = (configuration.nat44?.forwards ?? []).map {
            ForwardEntry(protocol: $0.protocolName, outside: $0.outsideText, inside: "\($0.insideAddress):\($0.insidePort)",
                         origin: "config", description: nil, expiresAt: nil)
        }
        return configured + runtimeForwards + runtimeBindings
    }

    // MARK: NAT64 static BIB entries at run time

    /// The run-time static BIB entries still alive (as ``forwards()`` lists them).
    public func bindings() -> [ForwardEntry] {
        let now = Date().timeIntervalSince1970
        runtimeBindings.removeAll { $0.expired(at: now) }
        return runtimeBindings
    }

    /// Adds (or refreshes) a static BIB entry in the stateful NAT64 for an in-process server (PCP) and
    /// keeps it listed and in the state file. Call on ``queue``.
    func addBinding(_ q: BindingQuery, description: String?, origin: String) -> BindingAnswer {
        guard commands.count == 1 else { return .unavailable }
        let reply = Reply<BindingAnswer>()
        guard commands[0].send(.addBinding(q, reply)), let answer = reply.wait() else { return .unavailable }
        guard case .bound(let b) = answer else { return answer }
        let entry = ForwardEntry(protocol: b.proto.rawValue, outside: "\(b.ipv4):\(b.ipv4Port)", inside: "[\(b.ipv6)]:\(b.ipv6Port)",
                                 origin: origin, description: description,
                                 expiresAt: q.lifetime.map { Date().timeIntervalSince1970 + Double($0) })
        let known = runtimeBindings.contains { $0.protocol == entry.protocol && $0.outside == entry.outside }
        runtimeBindings.removeAll { $0.protocol == entry.protocol && $0.outside == entry.outside }
        runtimeBindings.append(entry)
        saveForwards()
        if !known { logger.info("nat64 static BIB entry added: \(b)\(q.lifetime.map { " for \($0) s" } ?? "") (\(origin))") }
        return answer
    }

    /// Removes a run-time static BIB entry by its IPv4 transport address. Call on ``queue``.
    @discardableResult
    func removeBinding(proto: NAT64Protocol, ipv4: IPv4Address, port: UInt16) -> Bool {
        let outside = "\(ipv4):\(port)"
        guard let k = runtimeBindings.firstIndex(where: { $0.protocol == proto.rawValue && $0.outside == outside }), commands.count == 1 else {
            return false
        }
        let reply = Reply<Bool>()
        guard commands[0].send(.removeBinding(proto: proto, ipv4: ipv4, port: port, reply)), reply.wait() != nil else { return false }
        let e = runtimeBindings.remove(at: k)
        saveForwards()
        logger.info("nat64 static BIB entry removed: \(e.protocol) \(e.inside) <-> \(e.outside)")
        return true
    }

    /// A listed binding's parts: protocol, IPv6 and IPv4 transport addresses.
    static func bindingParts(_ e: ForwardEntry) -> (NAT64Protocol, IPv6Address, UInt16, IPv4Address, UInt16)? {
        guard let proto = NAT64Protocol(rawValue: e.protocol), e.inside.hasPrefix("["), let close = e.inside.firstIndex(of: "]"),
              let v6 = IPv6Address(e.inside[e.inside.index(after: e.inside.startIndex)..<close]),
              let v6Port = UInt16(e.inside[e.inside.index(after: close)...].dropFirst()),
              let colon = e.outside.lastIndex(of: ":"), let v4 = IPv4Address(e.outside[..<colon]),
              let v4Port = UInt16(e.outside[e.outside.index(after: colon)...]) else { return nil }
        return (proto, v6, v6Port, v4, v4Port)
    }

    /// Adds a run-time forward for an in-process server (port control: `origin` "upnp", "natpmp",
    /// "pcp"), as `swiftnat forwards add` does for "cli". Safe from any thread.
    public func addForward(protocol p: String, outside: String, inside: String, lifetime: Int?, description: String?,
                           origin: String, enabled: Bool = true) throws(ControlError) -> ForwardEntry {
        var r = ControlRequest(command: "forwards.add")
        r.enabled = enabled ? nil : false
        r.protocol = p
        r.outside = outside
        r.inside = inside
        r.lifetime = lifetime
        r.description = description
        return try queue.sync { () -> Result<ForwardEntry, ControlError> in
            do throws(ControlError) { return .success(try addForward(r, origin: origin)) } catch { return .failure(error) }
        }.get()
    }

    /// Removes a run-time forward (any origin). Safe from any thread.
    public func removeForward(protocol p: String, outside: String) throws(ControlError) -> ForwardEntry {
        var r = ControlRequest(command: "forwards.remove")
        r.protocol = p
        r.outside = outside
        return try queue.sync { () -> Result<ForwardEntry, ControlError> in
            do throws(ControlError) { return .success(try removeForward(r)) } catch { return .failure(error) }
        }.get()
    }

    /// Gives a run-time forward a new lifetime (nil or 0: no end) without ending its sessions, as a
    /// port-control lease renewal must. Safe from any thread.
    public func renewForward(protocol p: String, outside: String, lifetime: Int?, description: String?) throws(ControlError) -> ForwardEntry {
        try queue.sync { () -> Result<ForwardEntry, ControlError> in
            guard let k = runtimeForwards.firstIndex(where: { $0.protocol == p && $0.outside == outside }),
                  let f = try? PortForward(protocol: p, outside: outside, inside: runtimeForwards[k].inside) else {
                return .failure(ControlError("no run-time forward \(p) \(outside) to renew"))
            }
            let lifetime = lifetime.flatMap { $0 > 0 ? $0 : nil }
            let expires = lifetime.map { Timestamp(nanoseconds: monotonicNow().nanoseconds &+ UInt64($0) * 1_000_000_000) }
            if runtimeForwards[k].isEnabled {
                let reply = Reply<Bool>()
                guard commands[0].send(.renewForward(proto: f.proto, address: f.outsideAddress, port: f.outsidePorts.lowerBound,
                                                     expires: expires, reply)), reply.wait() == true else {
                    return .failure(ControlError("the packet thread did not renew \(p) \(outside)"))
                }
            }
            runtimeForwards[k].expiresAt = lifetime.map { Date().timeIntervalSince1970 + Double($0) }
            if let description { runtimeForwards[k].description = description }
            saveForwards()
            return .success(runtimeForwards[k])
        }.get()
    }

    func addForward(_ r: ControlRequest, origin: String = "cli") throws(ControlError) -> ForwardEntry {
        guard configuration.nat44 != nil else { throw ControlError("forwards need a [nat44] table in the configuration") }
        guard commands.count == 1 else {
            throw ControlError("run-time forwards need [tun] queues = 1 for now; with several queues, put the forward in the file and restart")
        }
        guard let p = r.protocol, let o = r.outside, let i = r.inside else {
            throw ControlError("forwards.add needs protocol, outside and inside")
        }
        if let l = r.lifetime, l < 0 { throw ControlError("lifetime must be 0 (no end) or a number of seconds") }
        let lifetime = r.lifetime.flatMap { $0 > 0 ? $0 : nil }
        var f: PortForward
        do {
            f = try PortForward(protocol: p, outside: o, inside: i)
        } catch {
            throw ControlError("\(error.key): \(error.problem)")
        }
        if let lifetime { f.expires = Timestamp(nanoseconds: monotonicNow().nanoseconds &+ UInt64(lifetime) * 1_000_000_000) }
        let entry = ForwardEntry(protocol: f.protocolName, outside: f.outsideText, inside: "\(f.insideAddress):\(f.insidePort)",
                                 origin: origin, description: r.description,
                                 expiresAt: lifetime.map { Date().timeIntervalSince1970 + Double($0) },
                                 enabled: r.enabled == false ? false : nil)
        if entry.isEnabled { try install(f) }
        runtimeForwards.append(entry)
        saveForwards()
        logger.info("forward added: \(f)\(lifetime.map { " for \($0) s" } ?? "")\(r.description.map { " (\($0))" } ?? "")")
        return entry
    }

    /// PCP PEER (RFC 6887 §12): asks the packet thread for the session of a flow, created or refreshed
    /// when `q.create`. With several queues a new flow's session belongs to the shard its first packet
    /// is hashed to; PEER, as run-time forwards, needs one queue for now.
    func peer(_ q: PeerQuery) -> PeerAnswer {
        guard configuration.nat44 != nil, commands.count == 1 else { return .unavailable }
        let reply = Reply<PeerAnswer>()
        guard commands[0].send(.peer(q, reply)), let answer = reply.wait() else { return .unavailable }
        if case .mapping(let m) = answer, m.created {
            logger.info("PCP PEER: session \(q.proto == 6 ? "tcp" : "udp") \(q.inside):\(q.insidePort) -> \(q.remote):\(q.remotePort) created as \(m.outsideAddress):\(m.outsidePort)")
        }
        return answer
    }

    /// Sends a forward to the packet thread and waits for its answer.
    func install(_ f: PortForward) throws(ControlError) {
        let reply = Reply<String?>()
        guard commands[0].send(.addForward(f, reply)), let answer = reply.wait() else {
            throw ControlError("the packet thread did not answer")
        }
        if let problem = answer { throw ControlError("refused: \(problem)") }
    }

    func removeForward(_ r: ControlRequest) throws(ControlError) -> ForwardEntry {
        guard let p = r.protocol, let o = r.outside else { throw ControlError("forwards.remove needs protocol and outside") }
        let f: PortForward
        do {
            f = try PortForward(protocol: p, outside: o, inside: "0.0.0.0:1")
        } catch {
            throw ControlError("\(error.key): \(error.problem)")
        }
        guard let k = runtimeForwards.firstIndex(where: { $0.protocol == f.protocolName && Self.covers($0.outside, f) }) else {
            if let b = runtimeBindings.first(where: { $0.protocol == f.protocolName && Self.covers($0.outside, f) }),
               let proto = NAT64Protocol(rawValue: b.protocol), removeBinding(proto: proto, ipv4: f.outsideAddress, port: f.outsidePorts.lowerBound) {
                return b
            }
            if forwards().contains(where: { $0.protocol == f.protocolName && Self.covers($0.outside, f) }) {
                throw ControlError("\(p) \(o) is a forward of the configuration file: remove it there and reload")
            }
            throw ControlError("no run-time forward covers \(p) \(o)")
        }
        if runtimeForwards[k].isEnabled {
            let reply = Reply<Bool>()
            guard commands[0].send(.removeForward(proto: f.proto, address: f.outsideAddress, port: f.outsidePorts.lowerBound, reply)),
                  reply.wait() != nil else {
                throw ControlError("the packet thread did not answer")
            }
        }
        let e = runtimeForwards.remove(at: k)
        saveForwards()
        logger.info("forward removed: \(e.protocol) \(e.outside) -> \(e.inside)")
        return e
    }

    /// Whether the forward written `outside` covers `f`'s first outside port at its address.
    static func covers(_ outside: String, _ f: PortForward) -> Bool {
        guard let g = try? PortForward(protocol: f.protocolName, outside: outside, inside: "0.0.0.0:1") else { return false }
        return g.outsideAddress == f.outsideAddress && g.outsidePorts.contains(f.outsidePorts.lowerBound)
    }

    // MARK: The forwards' state file

    struct ForwardsFile: Codable {
        var version: Int
        var forwards: [ForwardEntry]
        /// The stateful NAT64's run-time static BIB entries (absent in files of earlier versions).
        var bindings: [ForwardEntry]? = nil
    }

    /// Restores the run-time forwards of the last run (called once the packet threads run).
    public func restoreForwards() {
        queue.sync {
            guard let path = configuration.control.stateFile, FileManager.default.fileExists(atPath: path) else { return }
            let file: ForwardsFile
            do {
                let d = JSONDecoder()
                d.keyDecodingStrategy = .convertFromSnakeCase
                file = try d.decode(ForwardsFile.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
            } catch {
                logger.error("forwards state \(path): cannot be read (\(error)); run-time forwards of the last run are not restored (move the file away to silence this)")
                return
            }
            guard file.version == 1 else {
                logger.error("forwards state \(path): version \(file.version) is not one this swiftnat reads (1); not restored")
                return
            }
            let now = Date().timeIntervalSince1970
            var restored = 0
            for e in file.forwards where !e.expired(at: now) {
                var r = ControlRequest(command: "forwards.add")
                r.protocol = e.protocol
                r.outside = e.outside
                r.inside = e.inside
                r.description = e.description
                r.enabled = e.enabled
                r.lifetime = e.expiresAt.map { max(1, Int(($0 - now).rounded(.up))) }
                do throws(ControlError) {
                    _ = try addForward(r, origin: e.origin)
                    restored += 1
                } catch {
                    logger.warning("forwards state: \(e.protocol) \(e.outside) -> \(e.inside) not restored: \(error.message)")
                }
            }
            logger.info("forwards state: restored \(restored) of \(file.forwards.count) run-time forwards from \(path)")
            var bound = 0
            for e in file.bindings ?? [] where !e.expired(at: now) {
                guard let (proto, v6, v6Port, v4, v4Port) = Self.bindingParts(e) else { continue }
                var q = BindingQuery(proto: proto, ipv6: v6, ipv6Port: v6Port, suggestedPort: v4Port, exact: true,
                                     lifetime: e.expiresAt.map { max(1, Int(($0 - now).rounded(.up))) })
                q.suggestedAddress = v4
                if case .bound = addBinding(q, description: e.description, origin: e.origin) {
                    bound += 1
                } else {
                    logger.warning("forwards state: nat64 static BIB entry \(e.protocol) \(e.inside) <-> \(e.outside) not restored")
                }
            }
            if let b = file.bindings, !b.isEmpty {
                logger.info("forwards state: restored \(bound) of \(b.count) nat64 static BIB entries from \(path)")
            }
            saveForwards()
        }
    }

    /// Writes the run-time forwards: a temporary file, fsync, rename.
    func saveForwards() {
        guard let path = configuration.control.stateFile else { return }
        do {
            let data = try Self.encoder().encode(ForwardsFile(version: 1, forwards: runtimeForwards,
                                                              bindings: runtimeBindings.isEmpty ? nil : runtimeBindings))
            try StateFile.writeAtomically(data, to: path)
        } catch {
            logger.error("forwards state \(path): cannot be written (\(error)); run-time forwards will not survive a restart")
        }
    }

    // MARK: Reload

    /// Reads the file again, checks it whole, and applies it between bursts; a broken file, or a change
    /// that needs a restart, is refused and the running configuration stays.
    public func reload() throws(ControlError) -> [String] {
        let new: DaemonConfiguration
        do {
            new = try loader(configuration.file)
        } catch {
            logger.error("reload refused: \(error.description); the running configuration stays")
            throw ControlError("reload refused: \(error.description); the running configuration stays")
        }
        let old = configuration
        var restart: [String] = []
        if new.tun != old.tun { restart.append("[tun]") }
        if new.routing != old.routing { restart.append("[routing]") }
        if new.insideInterfaces != old.insideInterfaces || new.outsideInterface != old.outsideInterface { restart.append("nat44 interfaces") }
        if (new.nat44 == nil) != (old.nat44 == nil) { restart.append("[nat44] added or removed") }
        if new.nat64 != old.nat64 { restart.append("[nat64]") }
        if new.nptv6 != old.nptv6 { restart.append("[nptv6]") }
        if new.control != old.control { restart.append("[control]") }
        if new.metrics != old.metrics { restart.append("[metrics]") }
        if new.portControl != old.portControl { restart.append("[port_control]") }
        var changes: [String] = []
        var plan: ShardPlan? = nil
        if let n = new.nat44, let o = old.nat44 {
            do {
                plan = try ShardPlan(n, shards: commands.count)
            } catch {
                throw ControlError("reload refused: tun.queues: \(error.description)")
            }
            if let why = NAPT44Engine.restartReason(from: o, to: n) { restart.append("nat44.\(why)") }
            if commands.count > 1 && n.forwards != o.forwards { restart.append("nat44 forwards (with several queues)") }
            if n.pool != o.pool && (commands.count > 1 || old.routing.enabled) {
                restart.append("nat44.pool (its routes and proxy ARP entries, or the shards' port slices)")
            }
        }
        guard restart.isEmpty else {
            let m = "reload refused: \(restart.joined(separator: ", ")) changed, which needs a restart; the running configuration stays"
            logger.error("\(m)")
            throw ControlError(m)
        }
        if let plan, let n = new.nat44, let o = old.nat44 {
            for (q, c) in commands.enumerated() {
                let reply = Reply<String?>()
                guard c.send(.reconfigure(plan.configurations[q], reply)), let answer = reply.wait() else {
                    throw ControlError("packet thread \(q) did not answer")
                }
                if let problem = answer { throw ControlError("reload refused by packet thread \(q): \(problem)") }
            }
            changes.append("nat44 settings applied (behaviour, timeouts, limits, redirects)")
            if commands.count == 1 {
                for f in o.forwards where !n.forwards.contains(f) {
                    let reply = Reply<Bool>()
                    commands[0].send(.removeForward(proto: f.proto, address: f.outsideAddress, port: f.outsidePorts.lowerBound, reply))
                    _ = reply.wait()
                    changes.append("forward removed: \(f)")
                }
                for f in n.forwards where !o.forwards.contains(f) {
                    do throws(ControlError) {
                        try install(f)
                        changes.append("forward added: \(f)")
                    } catch {
                        changes.append("forward not added: \(f): \(error.message)")
                    }
                }
            }
        }
        if new.logging != old.logging {
            for c in commands {
                let reply = Reply<String?>()
                c.send(.logging(new.logging, reply))
                _ = reply.wait()
            }
            changes.append("logging settings applied")
        }
        configuration = new
        reloads += 1
        for c in changes { logger.notice("reload: \(c)") }
        logger.notice("reload: \(configuration.file) applied (\(changes.count) change\(changes.count == 1 ? "" : "s"))")
        return changes
    }
}

/// A NAT64 pool reservation as `swiftnat reservations` lists it.
public struct AddressReservationRow: Codable, Sendable {
    public var ipv6: String
    public var ipv4: String
    public var idleSeconds: UInt32
    public var isStatic: Bool
}

/// `swiftnat sessions` filters: protocol, and inside / outside / remote address with an optional port.
struct SessionFilter {
    var proto: String?
    var inside: (String, String?)?
    var outside: (String, String?)?
    var remote: (String, String?)?

    init(_ r: ControlRequest) throws(DaemonController.ControlError) {
        proto = r.protocol?.lowercased()
        inside = try r.inside.map(Self.parse)
        outside = try r.outside.map(Self.parse)
        remote = try r.remote.map(Self.parse)
    }

    /// "ADDR", "ADDR:PORT", "[V6]:PORT" or a bare IPv6 address.
    static func parse(_ s: String) throws(DaemonController.ControlError) -> (String, String?) {
        if s.hasPrefix("["), let close = s.firstIndex(of: "]") {
            let a = String(s[s.index(after: s.startIndex)..<close])
            let rest = s[s.index(after: close)...]
            return (a, rest.hasPrefix(":") ? String(rest.dropFirst()) : nil)
        }
        if s.filter({ $0 == ":" }).count == 1, let colon = s.firstIndex(of: ":") {
            return (String(s[..<colon]), String(s[s.index(after: colon)...]))
        }
        guard !s.isEmpty else { throw .init("an empty address filter") }
        return (s, nil)
    }

    static func matches(_ endpoint: String, _ f: (String, String?)?) -> Bool {
        guard let f else { return true }
        let (a, p) = (try? parse(endpoint)) ?? (endpoint, nil)
        return a == f.0 && (f.1 == nil || p == f.1)
    }

    func matches(_ row: SessionRow) -> Bool {
        (proto == nil || row.protocol == proto) && Self.matches(row.inside, inside) && Self.matches(row.outside, outside)
            && (Self.matches(row.remote, remote) || Self.matches(row.remoteOutside, remote))
    }
}

/// Writing a state file so that a crash never leaves half of it: a temporary file beside it (its folder
/// made if missing, unless the caller says not to), every byte written, fsync, rename over the file, fsync of the folder. A crash at
/// any point leaves the old file or the new one, never a mix. The forwards file, the NAT64 state file
/// and the sessions file all go through here.
enum StateFile {
    /// Writes `bytes`; on failure, what went wrong (with errno's words), the temporary file removed.
    static func write(_ bytes: [UInt8], to path: String, makingFolder: Bool = true) -> String? {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        if makingFolder { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let tmp = dir + "/." + url.lastPathComponent + ".tmp-\(getpid())"
        func why(_ what: String) -> String { "\(what): \(String(cString: strerror(errno)))" }
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return why("cannot create \(tmp)") }
        var off = 0, ok = true
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 {
                if errno == EINTR { continue }
                ok = false
                break
            }
            off += n
        }
        if ok && fsync(fd) != 0 { ok = false }
        let failure = ok ? nil : why("cannot write \(tmp)")
        close(fd)
        if let failure {
            unlink(tmp)
            return failure
        }
        guard rename(tmp, path) == 0 else {
            let e = why("cannot rename \(tmp) to \(path)")
            unlink(tmp)
            return e
        }
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            _ = fsync(dfd)
            close(dfd)
        }
        return nil
    }

    static func writeAtomically(_ data: Data, to path: String) throws {
        if let problem = write([UInt8](data), to: path) {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path, NSLocalizedDescriptionKey: problem])
        }
    }
}

extension Counters {
    /// Every counter by name (drops apart), for `swiftnat stats` and the metrics.
    public var fields: [(String, UInt64)] {
        [("outbound_packets", outboundPackets), ("inbound_packets", inboundPackets), ("hairpinned_packets", hairpinnedPackets),
         ("outbound_bytes", outboundBytes), ("inbound_bytes", inboundBytes), ("sessions_created", sessionsCreated),
         ("sessions_expired", sessionsExpired), ("mappings_created", mappingsCreated), ("mappings_freed", mappingsFreed),
         ("icmp_errors_translated", icmpErrorsTranslated), ("icmp_errors_generated", icmpErrorsGenerated),
         ("fragments_translated", fragmentsTranslated), ("fragments_held", fragmentsHeld), ("syns_held", synsHeld),
         ("expectations_created", expectationsCreated), ("expectations_used", expectationsUsed),
         ("expectations_refused", expectationsRefused), ("helper_rewrites", helperRewrites),
         ("helper_split_commands", helperSplitCommands), ("dropped", totalDropped)]
    }

    static func + (a: Counters, b: Counters) -> Counters {
        var c = a
        c += b
        return c
    }
}
