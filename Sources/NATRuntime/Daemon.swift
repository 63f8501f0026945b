import Foundation
import Logging
import NIOPosix
import NAPT44
import NAT64
import NATCore

/// A start-up problem that a person must fix; the message says what and how.
public struct DaemonError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// `swiftnat run`: TUN device, routes, packet threads, signals, and clean-up.
public enum Daemon {
    /// Runs until SIGINT or SIGTERM. SIGUSR1 logs the counters and the sessions.
    /// SIGHUP (and `swiftnat reload`) reads the file again with `reloadLoader` (the command line's
    /// overrides applied), checks it whole, and applies what can change while running.
    public static func run(_ cfg: DaemonConfiguration, logger: Logger,
                           reloadLoader: @escaping (String) throws(ConfigurationError) -> DaemonConfiguration = { f throws(ConfigurationError) in try ConfigLoader.load(file: f) }) throws(DaemonError) {
        guard geteuid() == 0 else {
            throw DaemonError("must run as root (it creates a TUN device and changes routes): run it with sudo, or as a service (Examples/swiftnat.service)")
        }
        // Signals are taken synchronously by this thread; every thread started from here inherits the mask.
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGINT, SIGTERM, SIGUSR1, SIGHUP] { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        defer { pthread_sigmask(SIG_UNBLOCK, &set, nil) }

        if let conflict = cfg.hostAddressConflict(hostAddresses: DaemonConfiguration.hostIPv4Addresses()) {
            throw DaemonError(conflict)
        }
        // The NAT64 state file is read before anything is set up: a bad one stops the start cleanly.
        let nat64Control = NAT64Control()
        var restore: [AddressReservation] = []
        if case .pool(let p)? = cfg.nat64?.mode, let path = p.stateFile {
            restore = try NAT64StateKeeper.prepare(path: path, logger: logger)
        }
        // The control plane listens before anything on the host changes: a second daemon stops here.
        let commands = (0..<cfg.tun.queues).map { _ in CommandQueue() }
        let controller = DaemonController(configuration: cfg, commands: commands, tunName: cfg.tun.name, logger: logger,
                                          loader: reloadLoader)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var servers = ControlPlaneServers(group: group)
        defer { servers.close() }
        do {
            try servers.start(cfg, controller: controller, logger: logger)
        } catch {
            throw DaemonError(error.description)
        }
        // Several queues: one engine per queue, each with its slice of the outside ports.
        var plan: ShardPlan? = nil
        var rings: ShardRings? = nil
        if let n44 = cfg.nat44 {
            do {
                plan = try ShardPlan(n44, shards: cfg.tun.queues)
            } catch {
                throw DaemonError("\(cfg.file): tun.queues: \(error.description)")
            }
            if let plan, cfg.tun.queues > 1 { rings = try ShardRings(count: plan.count, router: ShardRouter(plan: plan, configuration: n44)) }
        }
        // Saved sessions (restart without loss) are read, checked and set aside before anything runs; the
        // threads take them before they read their first packet.
        let sessionRestore = cfg.control.sessionsFile.flatMap {
            SessionRestorePlan.prepare(path: $0, configuration: cfg, router: rings?.router, logger: logger)
        }
        if let saved = sessionRestore?.reservations, !saved.isEmpty {
            // NAT64 pool reservations from the sessions file join those of the pool's own state file.
            let elapsed = UInt32(clamping: max(0, Int64(Date().timeIntervalSince1970) - sessionRestore!.writtenAt))
            let known = Set(restore.map(\.ipv6))
            for var r in saved where !known.contains(r.ipv6) {
                r.idleSeconds = r.idleSeconds &+ min(elapsed, UInt32.max - r.idleSeconds)
                restore.append(r)
            }
            restore.sort { $0.idleSeconds > $1.idleSeconds }
        }
        let exports = cfg.control.sessionsFile.map { _ in SessionExports() }

        let tunMTU = cfg.resolvedTunMTU(logger: logger)
        let tun: TunDevice
        do {
            tun = try TunDevice(name: cfg.tun.name, mtu: tunMTU, queues: cfg.tun.kernelQueues, offload: cfg.tun.offload,
                                txQueueLength: cfg.tun.txQueueLength)
        } catch {
            throw DaemonError("\(cfg.file): [tun]: \(error.description)")
        }
        var fairness = "off"
        if cfg.tun.fairQueues > 1 {
            if let why = tun.steerBySource(seed: UInt32.random(in: 0...UInt32.max), outsideInterface: cfg.outsideInterface) {
                fairness = "by flow (the steering program was refused: \(why))"
                logger.warning("fair queues: the kernel refused the steering program (\(why)); packets are spread over the \(cfg.tun.kernelQueues) queues by flow instead of by host")
            } else {
                fairness = "by host, \(cfg.tun.fairQueues) per thread\(cfg.tun.fairQueueRate > 0 ? ", at most \(cfg.tun.fairQueueRate) packets/s each" : "")"
            }
        }
        let routes = RouteSetup(logger: logger)
        // Fail-closed rules a planned restart left in place for this start (`fail_closed_across_restart`).
        let keptPath = cfg.routing.failClosedAcrossRestart ? cfg.control.sessionsFile.map { $0 + ".routes" } : nil
        let kept = keptPath.map(KeptRules.load) ?? []
        if cfg.routing.enabled {
            do {
                try routes.apply(cfg, tun: tun.name, kept: kept)
                if let keptPath { unlink(keptPath) }
            } catch {
                tun.closeAll()
                let keys = cfg.nat44 != nil ? "nat44.inside_interfaces / nat44.outside_interface" : cfg.nat64 != nil ? "the NAT64 prefix and pool" : "the [nptv6] interfaces and prefixes"
                throw DaemonError("route setup failed, nothing was left behind: \(error.description) (check \(keys) and [routing] in \(cfg.file), or run with --no-routes)")
            }
        }
        let control = LoopControl()
        let setup64 = cfg.nat64.map {
            NAT64Setup(settings: $0, mtu: tunMTU, restore: restore, claimsAllIPv4: cfg.nat44 == nil, control: nat64Control)
        }
        let setup66 = cfg.nptv6.map { NPTv6Setup($0, nat64: cfg.nat64, nat44: cfg.nat44 != nil) }
        controller.offload = tun.offloadDescription
        let perThread = cfg.tun.fairQueues
        for q in 0..<cfg.tun.queues {
            let fds = Array(tun.fds[(q * perThread)..<((q + 1) * perThread)])
            PacketLoop.start(queue: TunQueue(fds: fds, metadataSize: tun.vnetHeaderSize, packetsPerSecond: cfg.tun.fairQueueRate),
                             setup: PacketThreadSetup(queue: q, configuration: plan?.configurations[q], nat64: setup64,
                                                      rings: rings, commands: commands[q], control: control, logger: logger,
                                                      logging: cfg.logging, holdsTraffic: sessionRestore != nil, exports: exports,
                                                      nptv6: setup66))
        }
        controller.restoreForwards()
        // After the forwards (a forward's sessions need it), before any packet.
        if let sessionRestore { controller.restoreReport = sessionRestore.apply(commands, logger: logger, failed: { control.failed.load(ordering: .relaxed) }) }
        servers.portControl?.ready()
        var what: [String] = []
        if let n = cfg.nat44 {
            what.append("inside=\(n.insidePrefixes.map(\.description).joined(separator: ",")) pool=\(n.pool.map(\.description).joined(separator: ",")) tcp=\(n.tcp) udp=\(n.udp) icmp=\(n.icmp) forwards=\(n.forwards.count)")
        }
        if let n = cfg.nat64 {
            what.append(n.summary)
        }
        if let n = cfg.nptv6 {
            what.append(n.summary)
        }
        logger.info("ready: tun=\(tun.name) mtu=\(tunMTU) queues=\(cfg.tun.queues) fair_queues=\(fairness) offload=\(tun.offloadDescription) \(what.joined(separator: " ")) routes=\(cfg.routing.enabled ? "on" : "off") pid=\(getpid())")
        var keeper: NAT64StateKeeper? = nil
        if case .pool(let p)? = cfg.nat64?.mode, let path = p.stateFile {
            keeper = NAT64StateKeeper(path: path, interval: p.stateInterval, control: nat64Control, logger: logger)
        }

        var ts = timespec(tv_sec: 0, tv_nsec: 200_000_000)
        var lastPerturbation = Date()
        while true {
            let sig = sigtimedwait(&set, nil, &ts)
            if sig == SIGUSR1 {
                dumpAll(commands, logger)
            } else if sig == SIGINT || sig == SIGTERM {
                logger.info("signal \(sig == SIGINT ? "SIGINT" : "SIGTERM"): stopping")
                break
            } else if sig == SIGHUP {
                logger.notice("SIGHUP: reloading \(cfg.file)")
                controller.queue.async { _ = try? controller.reload() }
            }
            if control.failed.load(ordering: .relaxed) { break }
            keeper?.poll()
            if cfg.tun.fairQueues > 1 && Date().timeIntervalSince(lastPerturbation) >= Double(cfg.tun.fairQueuePerturbSeconds) {
                // A new hash seed: hosts that shared a queue by chance share it no longer (SFQ's perturbation).
                lastPerturbation = Date()
                if let why = tun.steerBySource(seed: UInt32.random(in: 0...UInt32.max), outsideInterface: cfg.outsideInterface) {
                    logger.warning("fair queues: new steering seed refused: \(why)")
                }
            }
        }
        if !control.failed.load(ordering: .relaxed) { dumpAll(commands, logger) }
        control.stop.store(true, ordering: .relaxed)
        for _ in 0..<cfg.tun.queues { control.finished.wait() }
        keeper?.finish()
        if let path = cfg.control.sessionsFile, let exports { saveSessions(exports, queues: cfg.tun.queues, to: path, logger: logger) }
        let keep = keptPath != nil && cfg.routing.enabled && !control.failed.load(ordering: .relaxed)
        let left = routes.rollback(keepingFailClosed: keep)
        if let keptPath, !left.isEmpty {
            KeptRules.save(left, to: keptPath, logger: logger)
            logger.info("kept \(left.count) fail-closed rules and routes for the next start (fail_closed_across_restart): \(left.map { "ip " + $0.joined(separator: " ") }.joined(separator: "; "))")
        }
        tun.closeAll()
        logger.info("stopped: routes and \(tun.name) removed")
        if control.failed.load(ordering: .relaxed) { throw DaemonError("a packet thread failed; see the log above") }
        withExtendedLifetime(rings) {}
    }

    /// Writes what the stopped packet threads handed over to the sessions file (restart without loss).
    static func saveSessions(_ exports: SessionExports, queues: Int, to path: String, logger: Logger) {
        guard exports.isComplete(queues: queues) else {
            logger.error("sessions: not every packet thread handed its tables over; \(path) not written")
            return
        }
        let c = exports.contents(writtenAt: Int64(Date().timeIntervalSince1970))
        let bytes = SessionsFile.encode(c)
        do {
            try SessionsFile.write(bytes, to: path)
            logger.info("sessions: saved \(c.sessionCount) sessions and \(c.holdCount) port holds\(c.reservations.isEmpty ? "" : " and \(c.reservations.count) NAT64 reservations") to \(path) (\(bytes.count) bytes)")
        } catch {
            logger.error("sessions: \(path): \(error.problem); the sessions will not survive this restart")
        }
    }

    /// Asks every packet thread for its counters and sessions and logs them (SIGUSR1, and at stop).
    static func dumpAll(_ commands: [CommandQueue], _ logger: Logger) {
        let replies = commands.map { q in
            let r = Reply<[String]>()
            q.send(.dumpLines(r))
            return r
        }
        log(replies.map { $0.wait() ?? ["(a packet thread did not answer)"] }, logger)
    }

    /// Logs every queue's dump (stats line, sessions), then one total line.
    static func log(_ dumps: [[String]], _ logger: Logger) {
        var sessions = 0
        for lines in dumps {
            for l in lines {
                if l.hasPrefix("session ") { sessions += 1 }
                logger.info("\(l)")
            }
        }
        logger.info("sessions listed: \(sessions) in \(dumps.count) queue\(dumps.count == 1 ? "" : "s")")
    }
}

/// Keeps the NAT64 pool's reservations in the state file: loads them at start, asks the packet thread
/// for them every `interval` seconds and at stop, and writes them atomically (off the packet thread).
final class NAT64StateKeeper {
    let path: String
    let interval: Double
    let control: NAT64Control
    let logger: Logger
    private var lastRequest = Date()

    init(path: String, interval: Int, control: NAT64Control, logger: Logger) {
        self.path = path
        self.interval = Double(interval)
        self.control = control
        self.logger = logger
    }

    /// Reads the saved reservations (none on a first start) and checks that the file can be written.
    static func prepare(path: String, logger: Logger) throws(DaemonError) -> [AddressReservation] {
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw DaemonError("NAT64 state file \(path): the folder \(dir) does not exist (create it, or change nat64.state_file)")
        }
        guard access(dir, W_OK) == 0 else {
            throw DaemonError("NAT64 state file \(path): the folder \(dir) is not writable (fix its permissions, or change nat64.state_file)")
        }
        do {
            guard let saved = try NAT64StateFile.load(path: path) else {
                logger.info("nat64 state: no state file at \(path) yet; starting with no reservations")
                return []
            }
            logger.info("nat64 state: read \(saved.count) reservations from \(path)")
            return saved.sorted { $0.idleSeconds > $1.idleSeconds }
        } catch {
            throw DaemonError("\(error.description) (move it away or delete it to start with no reservations)")
        }
    }

    /// Called by the main loop (every 200 ms): requests a snapshot when one is due, writes one that arrived.
    func poll() {
        if let r = control.takeSnapshot() { write(r) }
        if Date().timeIntervalSince(lastRequest) >= interval {
            control.requestSnapshot()
            lastRequest = Date()
        }
    }

    /// After the packet threads stopped (each published its final reservations).
    func finish() {
        if let r = control.takeSnapshot() {
            write(r)
            logger.info("nat64 state: \(r.count) reservations saved to \(path)")
        }
    }

    private func write(_ r: [AddressReservation]) {
        do {
            try NAT64StateFile.write(r, to: path)
        } catch {
            logger.error("\(error.description); the reservations will be lost at a restart")
        }
    }
}

/// The undo commands of the fail-closed rules a planned restart keeps (`fail_closed_across_restart`),
/// one JSON array of `ip` argument lists beside the sessions file.
enum KeptRules {
    static func load(_ path: String) -> [[String]] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return (try? JSONDecoder().decode([[String]].self, from: data)) ?? []
    }

    static func save(_ rules: [[String]], to path: String, logger: Logger) {
        do {
            try SessionsFile.write(Array(try JSONEncoder().encode(rules)), to: path)
        } catch {
            logger.error("cannot write \(path) (\(error)): the next start will remove the kept rules as leftovers")
        }
    }
}

/// The control socket and the metrics endpoint, started before the TUN device and closed at stop.
struct ControlPlaneServers {
    let group: MultiThreadedEventLoopGroup
    var control: ControlServer? = nil
    var metrics: MetricsServer? = nil
    var portControl: PortControlServers? = nil

    init(group: MultiThreadedEventLoopGroup) { self.group = group }

    mutating func start(_ cfg: DaemonConfiguration, controller: DaemonController, logger: Logger) throws(DaemonError) {
        if cfg.control.enabled {
            do {
                control = try ControlServer(path: cfg.control.socket, controller: controller, group: group, logger: logger)
            } catch {
                throw DaemonError("\(cfg.file): [control]: \(error.description)")
            }
        }
        if let listen = cfg.metrics.listen {
            do {
                metrics = try MetricsServer(listen: listen, controller: controller, group: group, logger: logger)
            } catch {
                throw DaemonError("\(cfg.file): [metrics] listen: \(error.description)")
            }
        }
        if let pc = cfg.portControl {
            portControl = try PortControlServers(cfg, settings: pc, controller: controller, group: group, logger: logger)
        }
    }

    mutating func close() {
        portControl?.close()
        portControl = nil
        control?.close()
        metrics?.close()
        control = nil
        metrics = nil
        try? group.syncShutdownGracefully()
    }
}
