import Foundation
import Logging
import NAPT44
import NATWire

/// The routing changes the daemon makes, each with its undo, so that a failed start or a stop removes
/// exactly what was added (in reverse order).
public final class RouteSetup {
    public struct SetupError: Error, CustomStringConvertible {
        public var description: String
    }

    private var undo: [(what: String, failClosed: [String]?, action: () -> Void)] = []
    /// Fail-closed rules and routes a planned restart left in place (their undo commands), from
    /// ``apply(_:tun:kept:)``: not removed as leftovers; the ones this start does not make again are
    /// removed once it has made its own.
    private var kept: [[String]] = []
    private let logger: Logger

    public init(logger: Logger) { self.logger = logger }

    /// Adds what `cfg` asks for on device `tun`; on failure removes what it had added and throws.
    /// `kept`: the undo commands of the fail-closed rules and routes that the last run left in place
    /// for this start (``rollback(keepingFailClosed:)``, `[routing] fail_closed_across_restart`): they
    /// stay while this start sets up (no moment without them), the same ones are taken over, and those
    /// this configuration no longer makes are removed at the end.
    public func apply(_ cfg: DaemonConfiguration, tun: String, kept: [[String]] = []) throws(SetupError) {
        // Only the shapes of undo command this type makes, at this configuration's priorities and table:
        // the list comes from a file, and nothing else is ever run from it.
        self.kept = kept.filter { Self.isFailClosedUndo($0, cfg.routing) }
        do {
            try applyUnchecked(cfg, tun: tun)
        } catch {
            rollback()
            throw error
        }
        let made = Set(undo.compactMap(\.failClosed))
        for u in kept where !made.contains(u) {
            logger.info("removed a fail-closed rule the last run kept, which this configuration does not make: ip \(u.joined(separator: " "))")
            Shell.run(["ip"] + u, timeout: 5)
        }
        self.kept = []
    }

    static func isFailClosedUndo(_ u: [String], _ r: RoutingSettings) -> Bool {
        let priorities = Set([r.priority - 2, r.priority - 1, r.priority].map(String.init))
        if u.count >= 4, u[0] == "rule", u[1] == "del", u[u.count - 2] == "priority", priorities.contains(u[u.count - 1]) {
            return u.dropFirst(2).allSatisfy { !$0.isEmpty && !$0.hasPrefix("-") }
        }
        if u == ["route", "del", "unreachable", "default", "metric", fallbackMetric, "table", String(r.table)] { return true }
        return u.count == 7 && Array(u[0..<4]) == ["-6", "route", "del", "unreachable"] && IPv6Prefix(u[4]) != nil
            && Array(u[5...]) == ["metric", fallbackMetric]
    }

    /// `failClosed`: part of what keeps inside traffic from leaving untranslated while no daemon runs
    /// (kept across a planned restart when asked). A command that finds its rule or route there already
    /// is fine when the last run kept it for this start.
    private func ip(_ args: [String], undo undoArgs: [String]?, failClosed: Bool = false) throws(SetupError) {
        let cmd = ["ip"] + args
        logger.debug("\(cmd.joined(separator: " "))")
        let o = Shell.run(cmd, timeout: 5)
        let takenOver = !o.ok && failClosed && undoArgs.map { kept.contains($0) } == true && o.stderr.contains("File exists")
        guard o.ok || takenOver else {
            throw SetupError(description: Shell.Failure(command: cmd, output: o).description)
        }
        if let undoArgs {
            let u = ["ip"] + undoArgs
            undo.append((u.joined(separator: " "), failClosed ? undoArgs : nil, { Shell.run(u, timeout: 5) }))
        }
    }

    private func sysctl(_ path: String, _ value: String, restore: Bool) throws(SetupError) {
        try setFile("/proc/sys/" + path, value, name: path.replacingOccurrences(of: "/", with: "."), restore: restore)
    }

    /// Writes `value` into a kernel setting's file (a sysctl, a sysfs attribute) unless it holds it
    /// already; with `restore`, the old value is written back on undo.
    private func setFile(_ file: String, _ value: String, name: String, restore: Bool) throws(SetupError) {
        let old = (try? String(contentsOfFile: file, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        if old == value { return }
        do {
            try value.write(toFile: file, atomically: false, encoding: .utf8)
        } catch {
            throw SetupError(description: "cannot set \(name) = \(value): \(error.localizedDescription)")
        }
        logger.debug("\(name) = \(value) (was \(old ?? "?"))")
        if restore, let old {
            undo.append(("\(name) = \(old)", nil, { try? old.write(toFile: file, atomically: false, encoding: .utf8) }))
        }
    }

    private func applyUnchecked(_ cfg: DaemonConfiguration, tun: String) throws(SetupError) {
        let r = cfg.routing
        removeLeftovers(cfg, tun: tun)
        // Nothing on the TUN device but NAT traffic (IPv6 only with NAT64 or NPTv6); the kernel must accept
        // packets from it whose source routes elsewhere (translated inbound traffic comes from remote addresses).
        if cfg.nat64 == nil && cfg.nptv6 == nil {
            try? sysctl("net/ipv6/conf/\(tun)/disable_ipv6", "1", restore: false)
        } else {
            // IPv6 on, but no link-local address: the kernel then sends no router solicitations or MLD
            // reports into the TUN device (they would only be dropped as untranslatable).
            try? sysctl("net/ipv6/conf/\(tun)/addr_gen_mode", "1", restore: false)
            try? sysctl("net/ipv6/conf/\(tun)/disable_ipv6", "1", restore: false)
            try sysctl("net/ipv6/conf/\(tun)/disable_ipv6", "0", restore: false)
        }
        try sysctl("net/ipv4/conf/\(tun)/rp_filter", "0", restore: false)
        // An ICMP error the NAT host's own kernel sent about a translated packet (Fragmentation Needed from
        // its inside-interface address) comes back out of the TUN device with that local address as its
        // source: without accept_local the kernel drops it as a martian (RFC 5508 REQ-3, RFC 1191).
        try? sysctl("net/ipv4/conf/\(tun)/accept_local", "1", restore: false)
        if let all = try? String(contentsOfFile: "/proc/sys/net/ipv4/conf/all/rp_filter", encoding: .utf8),
           all.trimmingCharacters(in: .whitespacesAndNewlines) == "1" {
            logger.warning("net.ipv4.conf.all.rp_filter is 1 (strict): translated packets from \(tun) may be dropped; set it to 0 or 2")
        }
        if let n64 = cfg.nat64 { try applyNAT64(n64, tun: tun, forwarding: r.forwarding) }
        if let n44 = cfg.nat44 { try applyNAT44(cfg, n44, tun: tun) }
        if let n66 = cfg.nptv6 { try applyNPTv6(n66, routing: r, tun: tun) }
        if r.forwarding && (cfg.nat44 != nil || cfg.nat64 != nil) {
            try sysctl("net/ipv4/ip_forward", "1", restore: true)
        }
        let gro = cfg.insideInterfaces + (cfg.nptv6?.insideInterfaces ?? []).filter { !cfg.insideInterfaces.contains($0) }
        applyGRO(r.groInterfaces ?? gro, flushTimeout: r.groFlushTimeoutMicroseconds)
    }

    /// GRO and UDP GRO forwarding on the interfaces packets come in on, so that the kernel merges a
    /// burst of one flow's packets (TCP or UDP) into one super-packet before it routes it into the TUN
    /// device, where it is translated once. Each change is undone at stop. An optimisation only: when
    /// `ethtool` is missing or an interface refuses, a warning says so and the daemon goes on.
    private func applyGRO(_ interfaces: [String], flushTimeout: Int?) {
        guard !interfaces.isEmpty else { return }
        for i in interfaces {
            let show = Shell.run(["ethtool", "-k", i], timeout: 5)
            guard show.ok else {
                logger.warning("GRO not set up on \(i): \(Shell.Failure(command: ["ethtool", "-k", i], output: show).description) (install ethtool, or set [routing] gro_interfaces = [])")
                continue
            }
            var features: [String: String] = [:]
            for line in show.stdout.split(separator: "\n") {
                let f = line.split(separator: ":", maxSplits: 1)
                if f.count == 2 { features[f[0].trimmingCharacters(in: .whitespaces)] = f[1].trimmingCharacters(in: .whitespaces) }
            }
            for (feature, short) in [("generic-receive-offload", "gro"), ("rx-udp-gro-forwarding", "rx-udp-gro-forwarding")] {
                guard let state = features[feature] else { continue }
                if state.hasPrefix("on") { continue }
                if state.contains("[fixed]") {
                    logger.warning("\(i): \(feature) is off and fixed by its driver; packets reach the TUN device one by one")
                    continue
                }
                let set = ["ethtool", "-K", i, short, "on"]
                let o = Shell.run(set, timeout: 5)
                guard o.ok else {
                    logger.warning("\(i): cannot turn \(feature) on: \(Shell.Failure(command: set, output: o).description)")
                    continue
                }
                logger.debug("\(set.joined(separator: " "))")
                let u = ["ethtool", "-K", i, short, "off"]
                undo.append((u.joined(separator: " "), nil, { Shell.run(u, timeout: 5) }))
            }
            if let us = flushTimeout {
                let file = "/sys/class/net/\(i)/gro_flush_timeout"
                do {
                    try setFile(file, String(us * 1000), name: file, restore: true)
                } catch {
                    logger.warning("\(error.description)")
                }
            }
        }
    }

    /// NAT64: the RFC 6052 prefix (IPv6) and the IPv4 addresses standing for IPv6 hosts route into the
    /// TUN device; IPv6 forwarding on.
    private func applyNAT64(_ n64: NAT64Settings, tun: String, forwarding: Bool) throws(SetupError) {
        for p in n64.ipv4Prefixes {
            try ip(["route", "add", p.description, "dev", tun], undo: ["route", "del", p.description, "dev", tun])
        }
        for p in n64.ipv6Routes {
            try ip(["-6", "route", "add", p.description, "dev", tun], undo: ["-6", "route", "del", p.description, "dev", tun])
        }
        if n64.usesPrefix {
            try applyNAT64Prefix(n64, tun: tun)
        }
        if forwarding {
            try sysctl("net/ipv6/conf/all/forwarding", "1", restore: true)
        }
    }

    private func applyNAT64Prefix(_ n64: NAT64Settings, tun: String) throws(SetupError) {
        try ip(["-6", "route", "add", n64.prefix.description, "dev", tun], undo: ["-6", "route", "del", n64.prefix.description, "dev", tun])
        // Failing closed: behind the TUN route, an unreachable one, so that when the TUN device is gone (the
        // daemon killed) traffic to the prefix is refused, never routed on untranslated.
        let fallback = ["-6", "route", "replace", "unreachable", n64.prefix.description, "metric", Self.fallbackMetric]
        try ip(fallback, undo: ["-6", "route", "del", "unreachable", n64.prefix.description, "metric", Self.fallbackMetric], failClosed: true)
    }

    private func applyNAT44(_ cfg: DaemonConfiguration, _ n44: NAPT44Configuration, tun: String) throws(SetupError) {
        let r = cfg.routing
        let table = String(r.table)
        // The outside addresses route into the TUN device.
        for p in n44.pool {
            try ip(["route", "add", p.description, "dev", tun], undo: ["route", "del", p.description, "dev", tun])
        }
        for s in n44.staticNAT {
            try ip(["route", "add", "\(s.outside)/32", "dev", tun], undo: ["route", "del", "\(s.outside)/32", "dev", tun])
        }
        // Inside traffic goes to a table whose default route is the TUN device; traffic to the inside
        // prefixes (replies coming out of the TUN device, and inside-to-inside) stays in the main table.
        try ip(["route", "add", "default", "dev", tun, "table", table], undo: ["route", "del", "default", "dev", tun, "table", table])
        // Failing closed: behind the TUN route, an unreachable default route in the same table. When the TUN
        // device disappears (the daemon killed), steered traffic is refused with ICMP Host Unreachable
        // instead of falling through to the main table and leaving untranslated with its inside source.
        try ip(["route", "replace", "unreachable", "default", "metric", Self.fallbackMetric, "table", table],
               undo: ["route", "del", "unreachable", "default", "metric", Self.fallbackMetric, "table", table], failClosed: true)
        if r.blockOutsideToInside { try blockOutsideToInside(cfg, n44) }
        let keep = String(r.priority - 1), steer = String(r.priority)
        for p in n44.insidePrefixes {
            try ip(["rule", "add", "to", p.description, "lookup", "main", "priority", keep],
                   undo: ["rule", "del", "to", p.description, "lookup", "main", "priority", keep], failClosed: true)
        }
        if cfg.insideInterfaces.isEmpty {
            for p in n44.insidePrefixes {
                try ip(["rule", "add", "from", p.description, "lookup", table, "priority", steer],
                       undo: ["rule", "del", "from", p.description, "lookup", table, "priority", steer], failClosed: true)
            }
        } else {
            for i in cfg.insideInterfaces {
                try ip(["rule", "add", "iif", i, "lookup", table, "priority", steer],
                       undo: ["rule", "del", "iif", i, "lookup", table, "priority", steer], failClosed: true)
            }
        }
        // Pool addresses on the outside interface's own subnet need someone to answer ARP for them.
        if r.proxyARP, let out = cfg.outsideInterface {
            let subnets = Self.subnets(of: out)
            var added = 0
            for a in n44.poolAddresses where subnets.contains(where: { $0.contains(a) }) {
                guard added < 4096 else {
                    logger.warning("more than 4096 pool addresses are on-link on \(out); proxy ARP set up for the first 4096 only")
                    break
                }
                try ip(["neigh", "add", "proxy", a.description, "dev", out], undo: ["neigh", "del", "proxy", a.description, "dev", out])
                added += 1
            }
        }
    }

    /// NPTv6 (RFC 6296): each outside prefix routes into the TUN device (inbound), and traffic from each
    /// inside prefix that arrives on its inside interface is steered into it by an `ip -6 rule` to the
    /// IPv6 table `[routing] table`, whose default route is the TUN device (outbound); traffic to an
    /// inside prefix stays in the main table. Behind each TUN route an unreachable one (failing closed:
    /// with the daemon gone, inside hosts are never routed out untranslated). With `outside_interface`,
    /// packets arriving there for an inside prefix are refused (`block_outside_to_inside`). IPv6
    /// forwarding on (restored at stop).
    ///
    /// The outside prefix must reach this host: the upstream router routes it here (DHCPv6 prefix
    /// delegation, or a static route). Nothing answers neighbour solicitations for it on the outside
    /// link: an outside prefix that is on-link there needs proxy NDP, which Linux does per address.
    private func applyNPTv6(_ n66: NPTv6Settings, routing r: RoutingSettings, tun: String) throws(SetupError) {
        let table = String(r.table), keep = String(r.priority - 1), steer = String(r.priority), block = String(r.priority - 2)
        for t in n66.translations {
            let o = t.outsidePrefix.description
            try ip(["-6", "route", "add", o, "dev", tun], undo: ["-6", "route", "del", o, "dev", tun])
            try ip(["-6", "route", "replace", "unreachable", o, "metric", Self.fallbackMetric],
                   undo: ["-6", "route", "del", "unreachable", o, "metric", Self.fallbackMetric])
        }
        try ip(["-6", "route", "add", "default", "dev", tun, "table", table], undo: ["-6", "route", "del", "default", "dev", tun, "table", table])
        try ip(["-6", "route", "replace", "unreachable", "default", "metric", Self.fallbackMetric, "table", table],
               undo: ["-6", "route", "del", "unreachable", "default", "metric", Self.fallbackMetric, "table", table])
        for t in n66.translations {
            let i = t.insidePrefix.description
            if r.blockOutsideToInside, let out = t.outsideInterface {
                try ip(["-6", "rule", "add", "iif", out, "to", i, "prohibit", "priority", block],
                       undo: ["-6", "rule", "del", "iif", out, "to", i, "prohibit", "priority", block])
            }
            try ip(["-6", "rule", "add", "to", i, "lookup", "main", "priority", keep],
                   undo: ["-6", "rule", "del", "to", i, "lookup", "main", "priority", keep])
            try ip(["-6", "rule", "add", "iif", t.insideInterface, "from", i, "lookup", table, "priority", steer],
                   undo: ["-6", "rule", "del", "iif", t.insideInterface, "from", i, "lookup", table, "priority", steer])
        }
        if r.forwarding {
            try sysctl("net/ipv6/conf/all/forwarding", "1", restore: true)
        }
    }

    /// The metric of the unreachable routes behind the TUN device's (the largest: they only ever match
    /// when the TUN route is gone).
    static let fallbackMetric = "4294967295"

    /// Refuses packets that come in on the outside interface for an inside prefix: only what swiftnat
    /// translates (it comes out of the TUN device) reaches the inside hosts, so its filtering (RFC 4787
    /// §5, RFC 5382 REQ-3) holds for a host that addresses them directly. One `prohibit` rule per inside
    /// prefix at `priority - 2`, ahead of the rules that keep inside-bound traffic in the main table.
    private func blockOutsideToInside(_ cfg: DaemonConfiguration, _ n44: NAPT44Configuration) throws(SetupError) {
        guard let out = cfg.outsideInterface else {
            logger.warning("nat44.outside_interface is not set: packets from outside addressed to the inside prefixes are forwarded by plain routing (set outside_interface to refuse them)")
            return
        }
        let block = String(cfg.routing.priority - 2)
        for p in n44.insidePrefixes {
            try ip(["rule", "add", "iif", out, "to", p.description, "prohibit", "priority", block],
                   undo: ["rule", "del", "iif", out, "to", p.description, "prohibit", "priority", block], failClosed: true)
        }
    }

    /// What a daemon that did not stop (SIGKILL, a crash) left behind: the `ip rule`s at its priorities,
    /// the unreachable routes behind the TUN device's, proxy ARP entries for its pool. A table whose
    /// default route still goes through a device (another running daemon, or someone else's route) is
    /// not a leftover: it is left alone, and the start fails on it with a message that says so.
    private func removeLeftovers(_ cfg: DaemonConfiguration, tun: String) {
        let r = cfg.routing
        var removed: [String] = []
        let table = String(r.table)
        if cfg.nat44 != nil {
            let routes = Shell.run(["ip", "-4", "route", "show", "table", table], timeout: 5).stdout
            let live = routes.split(separator: "\n").contains { $0.hasPrefix("default dev ") && !$0.hasPrefix("default dev \(tun) ") }
            if live {
                logger.warning("table \(table) has a default route through another device: not touching [routing] priorities \(r.priority - 2)...\(r.priority) (\(routes.trimmingCharacters(in: .whitespacesAndNewlines)))")
                return
            }
            let ours = Set([r.priority - 2, r.priority - 1, r.priority])
            let rules = Shell.run(["ip", "-4", "rule", "show"], timeout: 5).stdout
            // Kept for this start on purpose (a planned restart): taken over by apply, not removed here.
            for line in (kept.isEmpty ? rules : "").split(separator: "\n") {
                let f = line.split(separator: ":", maxSplits: 1)
                guard f.count == 2, let prio = Int(f[0]), ours.contains(prio) else { continue }
                // One rule at that priority per line (by priority alone: the kernel removes the first).
                if Shell.run(["ip", "rule", "del", "priority", String(prio)], timeout: 5).ok {
                    removed.append("rule \(line.trimmingCharacters(in: .whitespaces))")
                }
            }
            for line in routes.split(separator: "\n") where line.hasPrefix("unreachable default") && kept.isEmpty {
                if Shell.run(["ip", "route", "del", "unreachable", "default", "metric", Self.fallbackMetric, "table", table], timeout: 5).ok {
                    removed.append("route \(line) table \(table)")
                }
            }
            if let out = cfg.outsideInterface, let n44 = cfg.nat44 {
                let proxies = Shell.run(["ip", "-4", "neigh", "show", "proxy", "dev", out], timeout: 5).stdout
                let pool = Set(n44.poolAddresses.prefix(4096).map(\.description))
                for line in proxies.split(separator: "\n") {
                    guard let a = line.split(separator: " ").first.map(String.init), pool.contains(a) else { continue }
                    if Shell.run(["ip", "neigh", "del", "proxy", a, "dev", out], timeout: 5).ok {
                        removed.append("proxy ARP \(a) dev \(out)")
                    }
                }
            }
        }
        if let n64 = cfg.nat64 {
            let p = n64.prefix.description
            let routes = Shell.run(["ip", "-6", "route", "show", p], timeout: 5).stdout
            if routes.contains("unreachable"), kept.isEmpty,
               Shell.run(["ip", "-6", "route", "del", "unreachable", p, "metric", Self.fallbackMetric], timeout: 5).ok {
                removed.append("route unreachable \(p)")
            }
        }
        if let n66 = cfg.nptv6 { removed += removeNPTv6Leftovers(n66, routing: r, tun: tun) }
        if !removed.isEmpty {
            logger.notice("removed leftovers of an earlier run that did not stop cleanly: \(removed.joined(separator: "; "))")
        }
    }

    /// NPTv6's leftovers: the `ip -6 rule`s at its priorities, the unreachable routes (unless the IPv6
    /// table's default route goes through another device: another daemon's).
    private func removeNPTv6Leftovers(_ n66: NPTv6Settings, routing r: RoutingSettings, tun: String) -> [String] {
        var removed: [String] = []
        let table = String(r.table)
        let routes = Shell.run(["ip", "-6", "route", "show", "table", table], timeout: 5).stdout
        if routes.split(separator: "\n").contains(where: { $0.hasPrefix("default dev ") && !$0.hasPrefix("default dev \(tun) ") }) {
            logger.warning("IPv6 table \(table) has a default route through another device: not touching its leftovers")
            return []
        }
        let ours = Set([r.priority - 2, r.priority - 1, r.priority])
        for line in Shell.run(["ip", "-6", "rule", "show"], timeout: 5).stdout.split(separator: "\n") {
            let f = line.split(separator: ":", maxSplits: 1)
            guard f.count == 2, let prio = Int(f[0]), ours.contains(prio) else { continue }
            if Shell.run(["ip", "-6", "rule", "del", "priority", String(prio)], timeout: 5).ok {
                removed.append("rule -6 \(line.trimmingCharacters(in: .whitespaces))")
            }
        }
        if routes.contains("unreachable default"),
           Shell.run(["ip", "-6", "route", "del", "unreachable", "default", "metric", Self.fallbackMetric, "table", table], timeout: 5).ok {
            removed.append("route -6 unreachable default table \(table)")
        }
        for t in n66.translations {
            let o = t.outsidePrefix.description
            if Shell.run(["ip", "-6", "route", "show", o], timeout: 5).stdout.contains("unreachable"),
               Shell.run(["ip", "-6", "route", "del", "unreachable", o, "metric", Self.fallbackMetric], timeout: 5).ok {
                removed.append("route unreachable \(o)")
            }
        }
        return removed
    }

    /// The IPv4 subnets assigned to interface `name`.
    static func subnets(of name: String) -> [IPv4Prefix] {
        let o = Shell.run(["ip", "-4", "-o", "addr", "show", "dev", name], timeout: 5)
        var out: [IPv4Prefix] = []
        for line in o.stdout.split(separator: "\n") {
            let f = line.split(separator: " ")
            if let i = f.firstIndex(of: "inet"), i + 1 < f.count {
                let parts = f[i + 1].split(separator: "/")
                if parts.count == 2, let a = IPv4Address(parts[0]), let l = UInt8(parts[1]) {
                    out.append(IPv4Prefix(containing: a, length: l))
                }
            }
        }
        return out
    }

    /// Removes everything added, newest first. With `keepingFailClosed` (a planned restart, `[routing]
    /// fail_closed_across_restart`), the fail-closed rules and unreachable routes stay, so that no inside
    /// packet is routed untranslated until the next start takes them over; returns their undo commands
    /// (for ``apply(_:tun:kept:)``).
    @discardableResult
    public func rollback(keepingFailClosed: Bool = false) -> [[String]] {
        var kept: [[String]] = []
        while let (what, failClosed, u) = undo.popLast() {
            if keepingFailClosed, let f = failClosed {
                kept.append(f)
                continue
            }
            logger.debug("undo: \(what)")
            u()
        }
        return kept.reversed()
    }
}
