import Foundation
import Logging
import NAPT44

/// A start-up problem that a person must fix; the message says what and how.
public struct DaemonError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// `swiftnat run`: TUN device, routes, packet threads, signals, and clean-up.
public enum Daemon {
    /// Runs until SIGINT or SIGTERM. SIGUSR1 logs the counters and the sessions.
    public static func run(_ cfg: DaemonConfiguration, logger: Logger) throws(DaemonError) {
        guard geteuid() == 0 else {
            throw DaemonError("must run as root (it creates a TUN device and changes routes): run it with sudo, or as a service (Examples/swiftnat.service)")
        }
        // Signals are taken synchronously by this thread; every thread started from here inherits the mask.
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGINT, SIGTERM, SIGUSR1, SIGHUP] { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        defer { pthread_sigmask(SIG_UNBLOCK, &set, nil) }

        // Several queues: one engine per queue, each with its slice of the outside ports.
        let plan: ShardPlan
        do {
            plan = try ShardPlan(cfg.nat44, shards: cfg.tun.queues)
        } catch {
            throw DaemonError("\(cfg.file): tun.queues: \(error.description)")
        }
        let rings = cfg.tun.queues > 1 ? try ShardRings(count: plan.count, router: ShardRouter(plan: plan, configuration: cfg.nat44)) : nil

        let tun: TunDevice
        do {
            tun = try TunDevice(name: cfg.tun.name, mtu: cfg.tun.mtu, queues: cfg.tun.queues, offload: cfg.tun.offload,
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
                throw DaemonError("route setup failed, nothing was left behind: \(error.description) (check nat44.inside_interfaces / nat44.outside_interface and [routing] in \(cfg.file), or run with --no-routes)")
            }
        }
        let control = LoopControl(queues: tun.fds.count)
        for (q, fd) in tun.fds.enumerated() {
            PacketLoop.start(fd: fd, queue: q, vnetHeaderSize: tun.vnetHeaderSize, configuration: plan.configurations[q],
                             rings: rings, control: control, logger: logger)
        }
        let n = cfg.nat44
        logger.info("ready: tun=\(tun.name) mtu=\(cfg.tun.mtu) queues=\(tun.fds.count) offload=\(tun.offloadDescription) inside=\(n.insidePrefixes.map(\.description).joined(separator: ",")) pool=\(n.pool.map(\.description).joined(separator: ",")) tcp=\(n.tcp) udp=\(n.udp) icmp=\(n.icmp) forwards=\(n.forwards.count) routes=\(cfg.routing.enabled ? "on" : "off") pid=\(getpid())")

        var ts = timespec(tv_sec: 0, tv_nsec: 200_000_000)
        while true {
            let sig = sigtimedwait(&set, nil, &ts)
            if sig == SIGUSR1 {
                control.requestDump()
            } else if sig == SIGINT || sig == SIGTERM {
                logger.info("signal \(sig == SIGINT ? "SIGINT" : "SIGTERM"): stopping")
                break
            } else if sig == SIGHUP {
                logger.notice("SIGHUP: configuration reload is not supported yet; restart the daemon to apply changes")
            }
            if control.failed.load(ordering: .relaxed) { break }
            if let d = control.collectDumps() { log(d, logger) }
        }
        control.stop.store(true, ordering: .relaxed)
        for _ in tun.fds { control.finished.wait() }
        if let d = control.collectDumps() { log(d, logger) }
        routes.rollback()
        tun.closeAll()
        logger.info("stopped: routes and \(tun.name) removed")
        if control.failed.load(ordering: .relaxed) { throw DaemonError("a packet thread failed; see the log above") }
        withExtendedLifetime(rings) {}
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
