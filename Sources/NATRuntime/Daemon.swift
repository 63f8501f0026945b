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

        let tunMTU = cfg.resolvedTunMTU(logger: logger)
        let tun: TunDevice
        do {
            tun = try TunDevice(name: cfg.tun.name, mtu: tunMTU, queues: cfg.tun.queues, offload: cfg.tun.offload,
                                txQueueLength: cfg.tun.txQueueLength)
        } catch {
            throw DaemonError("\(cfg.file): [tun]: \(error.description)")
        }
        let routes = RouteSetup(logger: logger)
        if cfg.routing.enabled {
            do {
                try routes.apply(cfg, tun: tun.name)
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
        for (q, fd) in tun.fds.enumerated() {
            PacketLoop.start(queue: TunQueue(fd: fd, metadataSize: tun.vnetHeaderSize),
                             setup: PacketThreadSetup(queue: q, configuration: plan?.configurations[q], nat64: setup64,
                                                      rings: rings, commands: commands[q], control: control, logger: logger,
                                                      logging: cfg.logging, nptv6: setup66))
        }
        controller.restoreForwards()
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
        logger.info("ready: tun=\(tun.name) mtu=\(tunMTU) queues=\(tun.fds.count) offload=\(tun.offloadDescription) \(what.joined(separator: " ")) routes=\(cfg.routing.enabled ? "on" : "off") pid=\(getpid())")
        var keeper: NAT64StateKeeper? = nil
        if case .pool(let p)? = cfg.nat64?.mode, let path = p.stateFile {
            keeper = NAT64StateKeeper(path: path, interval: p.stateInterval, control: nat64Control, logger: logger)
        }

        var ts = timespec(tv_sec: 0, tv_nsec: 200_000_000)
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
        }
        if !control.failed.load(ordering: .relaxed) { dumpAll(commands, logger) }
        control.stop.store(true, ordering: .relaxed)
        for _ in tun.fds { control.finished.wait() }
        keeper?.finish()
        routes.rollback()
        tun.closeAll()
        logger.info("stopped: routes and \(tun.name) removed")
        if control.failed.load(ordering: .relaxed) { throw DaemonError("a packet thread failed; see the log above") }
        withExtendedLifetime(rings) {}
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
