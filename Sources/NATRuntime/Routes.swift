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

    private var undo: [(String, () -> Void)] = []
    private let logger: Logger

    public init(logger: Logger) { self.logger = logger }

    /// Adds what `cfg` asks for on device `tun`; on failure removes what it had added and throws.
    public func apply(_ cfg: DaemonConfiguration, tun: String) throws(SetupError) {
        do {
            try applyUnchecked(cfg, tun: tun)
        } catch {
            rollback()
            throw error
        }
    }

    private func ip(_ args: [String], undo undoArgs: [String]?) throws(SetupError) {
        let cmd = ["ip"] + args
        logger.debug("\(cmd.joined(separator: " "))")
        let o = Shell.run(cmd, timeout: 5)
        guard o.ok else {
            throw SetupError(description: Shell.Failure(command: cmd, output: o).description)
        }
        if let undoArgs {
            let u = ["ip"] + undoArgs
            undo.append((u.joined(separator: " "), { Shell.run(u, timeout: 5) }))
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
            undo.append(("\(name) = \(old)", { try? old.write(toFile: file, atomically: false, encoding: .utf8) }))
        }
    }

    private func applyUnchecked(_ cfg: DaemonConfiguration, tun: String) throws(SetupError) {
        let r = cfg.routing
        // Nothing on the TUN device but NAT traffic (IPv6 only with NAT64); the kernel must accept packets
        // from it whose source routes elsewhere (translated inbound traffic comes from remote addresses).
        if cfg.nat64 == nil {
            try? sysctl("net/ipv6/conf/\(tun)/disable_ipv6", "1", restore: false)
        } else {
            // IPv6 on, but no link-local address: the kernel then sends no router solicitations or MLD
            // reports into the TUN device (they would only be dropped as untranslatable).
            try? sysctl("net/ipv6/conf/\(tun)/addr_gen_mode", "1", restore: false)
            try? sysctl("net/ipv6/conf/\(tun)/disable_ipv6", "1", restore: false)
            try sysctl("net/ipv6/conf/\(tun)/disable_ipv6", "0", restore: false)
        }
        try sysctl("net/ipv4/conf/\(tun)/rp_filter", "0", restore: false)
        if let all = try? String(contentsOfFile: "/proc/sys/net/ipv4/conf/all/rp_filter", encoding: .utf8),
           all.trimmingCharacters(in: .whitespacesAndNewlines) == "1" {
            logger.warning("net.ipv4.conf.all.rp_filter is 1 (strict): translated packets from \(tun) may be dropped; set it to 0 or 2")
        }
        if let n64 = cfg.nat64 { try applyNAT64(n64, tun: tun, forwarding: r.forwarding) }
        if let n44 = cfg.nat44 { try applyNAT44(cfg, n44, tun: tun) }
        if r.forwarding {
            try sysctl("net/ipv4/ip_forward", "1", restore: true)
        }
        applyGRO(r.groInterfaces ?? cfg.insideInterfaces, flushTimeout: r.groFlushTimeoutMicroseconds)
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
                undo.append((u.joined(separator: " "), { Shell.run(u, timeout: 5) }))
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
        try ip(["-6", "route", "add", n64.prefix.description, "dev", tun], undo: ["-6", "route", "del", n64.prefix.description, "dev", tun])
        if forwarding {
            try sysctl("net/ipv6/conf/all/forwarding", "1", restore: true)
        }
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
        let keep = String(r.priority - 1), steer = String(r.priority)
        for p in n44.insidePrefixes {
            try ip(["rule", "add", "to", p.description, "lookup", "main", "priority", keep],
                   undo: ["rule", "del", "to", p.description, "lookup", "main", "priority", keep])
        }
        if cfg.insideInterfaces.isEmpty {
            for p in n44.insidePrefixes {
                try ip(["rule", "add", "from", p.description, "lookup", table, "priority", steer],
                       undo: ["rule", "del", "from", p.description, "lookup", table, "priority", steer])
            }
        } else {
            for i in cfg.insideInterfaces {
                try ip(["rule", "add", "iif", i, "lookup", table, "priority", steer],
                       undo: ["rule", "del", "iif", i, "lookup", table, "priority", steer])
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

    /// Removes everything added, newest first.
    public func rollback() {
        while let (what, u) = undo.popLast() {
            logger.debug("undo: \(what)")
            u()
        }
    }
}
