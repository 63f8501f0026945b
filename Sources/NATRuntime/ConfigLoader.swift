import Foundation
import NAPT44
import NATCore
import NATWire
import TOMLKit

/// Reads a TOML file into a ``DaemonConfiguration``. Every key is checked: unknown keys, wrong types
/// and bad values are refused with the file and the key path in the error.
public enum ConfigLoader {
    public static func load(file: String) throws(ConfigurationError) -> DaemonConfiguration {
        guard FileManager.default.fileExists(atPath: file) else {
            throw ConfigurationError(file: file, key: "", problem: "no such file", hint: "pass the path of a TOML file, e.g. Examples/nat44.toml")
        }
        guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else {
            throw ConfigurationError(file: file, key: "", problem: "cannot be read as UTF-8 text", hint: "check its permissions and encoding")
        }
        return try parse(text, file: file)
    }

    public static func parse(_ text: String, file: String = "<config>") throws(ConfigurationError) -> DaemonConfiguration {
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let e as TOMLParseError {
            throw ConfigurationError(file: file, key: "", problem: "is not valid TOML: \(e.description) at line \(e.source.begin.line), column \(e.source.begin.column)")
        } catch {
            throw ConfigurationError(file: file, key: "", problem: "is not valid TOML: \(error)")
        }
        let r = TableReader(root, path: "", file: file)
        var cfg = DaemonConfiguration(file: file)
        if let t = try r.table("tun") {
            if let v = try t.string("name") {
                guard !v.isEmpty, v.utf8.count <= 15, v.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }) else {
                    throw t.error("name", "'\(v)' is not a valid interface name", hint: "1 to 15 letters, digits, '-', '_' or '.'")
                }
                cfg.tun.name = v
            }
            if let v = try t.int("mtu", in: 576...65535) { cfg.tun.mtu = v }
            if let v = try t.int("queues", in: 1...64) { cfg.tun.queues = v }
            if let v = try t.bool("offload") { cfg.tun.offload = v }
            if let v = try t.int("txqueuelen", in: 1...1_000_000) { cfg.tun.txQueueLength = v }
            try t.finish()
        }
        if let t = try r.table("routing") {
            if let v = try t.int("table", in: 1...0x7FFF_FFFF) { cfg.routing.table = v }
            guard ![253, 254, 255].contains(cfg.routing.table) else {
                throw t.error("table", "\(cfg.routing.table) is one of the kernel's own tables (default, main, local)", hint: "pick an unused number such as 7744")
            }
            if let v = try t.int("priority", in: 2...32765) { cfg.routing.priority = v }
            if let v = try t.bool("forwarding") { cfg.routing.forwarding = v }
            if let v = try t.bool("proxy_arp") { cfg.routing.proxyARP = v }
            if let v = try t.bool("enabled") { cfg.routing.enabled = v }
            if let v = try t.stringArray("gro_interfaces") {
                for (i, name) in v.enumerated() where name.isEmpty || name.utf8.count > 15 || name.contains("/") {
                    throw t.error("gro_interfaces[\(i)]", "'\(name)' is not a valid interface name", hint: "1 to 15 characters, no '/'")
                }
                cfg.routing.groInterfaces = v
            }
            if let v = try t.int("gro_flush_timeout_us", in: 0...1_000_000) { cfg.routing.groFlushTimeoutMicroseconds = v }
            try t.finish()
        }
        if let n = try r.table("nat44") { try readNAT44(n, into: &cfg) }
        if isProtomask(root) {
            if r.has("nat64") {
                throw ConfigurationError(file: file, key: "nat64", problem: "cannot be combined with protomask's keys (Nat64Prefix, Prometheus, [Pool])",
                                      hint: "use either a protomask file or swiftnat's [nat64] table")
            }
            cfg.nat64 = try readProtomask(r, file: file)
        } else if let t = try r.table("nat64") {
            cfg.nat64 = try readNAT64(t)
        }
        guard cfg.nat44 != nil || cfg.nat64 != nil else {
            throw ConfigurationError(file: file, key: "nat44", problem: "is missing",
                                  hint: "add a [nat44] table with at least pool = [\"198.51.100.1/32\"], or a [nat64] table (Examples/nat64.toml)")
        }
        try r.finish()
        if let n = cfg.nat44 {
            do {
                try n.validate()
            } catch {
                throw ConfigurationError(file: file, key: tomlKey(forEngineKey: error.key), problem: error.problem)
            }
        }
        try checkOverlap(cfg)
        if cfg.tun.queues > 1, let n44 = cfg.nat44 {
            do {
                for c in try ShardPlan(n44, shards: cfg.tun.queues).configurations { try c.validate() }
            } catch {
                throw ConfigurationError(file: file, key: "tun.queues", problem: "is \(cfg.tun.queues): \(error.description)",
                                      hint: "use fewer queues or more ports")
            }
        }
        return cfg
    }

    /// Maps the key names of `NAPT44Configuration.validate()` to this file's key paths.
    static func tomlKey(forEngineKey k: String) -> String {
        var s = k
        for (a, b) in [("forwards[", "forward["), ("redirects[", "redirect["), ("static_nat[", "static_nat["),
                       ("max_port_attempts", "max_port_attempts")] where s.hasPrefix(a) {
            s = b + s.dropFirst(a.count)
        }
        s = s.replacingOccurrences(of: ".outside_port", with: ".outside").replacingOccurrences(of: ".inside_port", with: ".inside")
            .replacingOccurrences(of: ".target_port", with: ".target")
        if s == "limits.max_sessions" { s = "max_sessions" }
        return "nat44." + s
    }

    static func readNAT44(_ n: TableReader, into cfg: inout DaemonConfiguration) throws(ConfigurationError) {
        var c = NAPT44Configuration()
        if let v = try n.stringArray("inside") {
            c.insidePrefixes = try v.enumerated().map { (i, s) throws(ConfigurationError) in try n.prefix(s, key: "inside[\(i)]") }
            guard !c.insidePrefixes.isEmpty else { throw n.error("inside", "is empty", hint: "list the inside networks, e.g. [\"100.64.0.0/10\"]") }
        }
        if let v = try n.stringArray("inside_interfaces") { cfg.insideInterfaces = v }
        if let v = try n.string("outside_interface") { cfg.outsideInterface = v }
        guard let pool = try n.stringArray("pool") else {
            throw n.error("pool", "is missing", hint: "give the outside addresses, e.g. pool = [\"198.51.100.1/32\"]")
        }
        c.pool = try pool.enumerated().map { (i, s) throws(ConfigurationError) in try n.prefix(s, key: "pool[\(i)]") }
        if let v = try n.bool("paired_pooling") { c.pairedPooling = v }
        if let b = try n.behavior("behavior") { c.setBehavior(b) }
        if let b = try n.behavior("tcp") { c.tcp = b }
        if let b = try n.behavior("udp") { c.udp = b }
        if let b = try n.behavior("icmp") { c.icmp = b }
        if let v = try n.bool("port_preservation") { c.portPreservation = v }
        if let v = try n.bool("parity_preservation") { c.parityPreservation = v }
        if let v = try n.int("max_port_attempts", in: 1...65536) { c.maxPortAttempts = v }
        if let v = try n.bool("inbound_refresh") { c.inboundRefresh = v }
        if let v = try n.string("unsolicited_syn") {
            guard let p = UnsolicitedSYNPolicy(rawValue: v) else { throw n.error("unsolicited_syn", "is '\(v)'", hint: "use \"icmp\" or \"drop\"") }
            c.unsolicitedSYN = p
        }
        if let v = try n.int("max_sessions", in: 1...(1 << 26)) { c.maxSessions = v }
        if let v = try n.int("max_held_syns", in: 0...65536) { c.maxHeldSYNs = v }
        if let v = try n.bool("hairpinning") { c.hairpinning = v }
        if let v = try n.bool("icmp_on_resource_limit") { c.icmpOnResourceLimit = v }
        if let v = try n.bool("answer_ping") { c.answerPing = v }
        if let v = try n.string("icmp_source") { c.icmpSourceAddress = try n.address(v, key: "icmp_source") }
        if let v = try n.int("hash_seed", in: 1...Int.max) { c.hashSeed = UInt64(v) }

        if let p = try n.table("ports") {
            let hasRanges = p.has("ranges")
            let hasPSID = p.has("psid") || p.has("psid_length") || p.has("offset_bits")
            if hasRanges && hasPSID {
                throw p.error("ranges", "cannot be combined with psid/psid_length/offset_bits", hint: "use either port ranges or a MAP-E port set")
            }
            if let rs = try p.stringArray("ranges") {
                var ranges: [ClosedRange<UInt16>] = []
                for (i, s) in rs.enumerated() { ranges.append(try p.portRange(s, key: "ranges[\(i)]")) }
                guard !ranges.isEmpty else { throw p.error("ranges", "is empty", hint: "e.g. [\"1024-65535\"]") }
                c.ports = PortSet(ranges: ranges)
            } else if hasPSID {
                guard let psid = try p.int("psid", in: 0...65535) else { throw p.error("psid", "is missing (psid_length/offset_bits need it)") }
                guard let k = try p.int("psid_length", in: 0...16) else { throw p.error("psid_length", "is missing") }
                let a = try p.int("offset_bits", in: 0...16) ?? 6
                guard let set = PortSet(psid: UInt16(psid), psidLength: k, offsetBits: a) else {
                    throw p.error("psid", "psid \(psid) with psid_length \(k) and offset_bits \(a) gives no port set",
                                  hint: "psid must be below 2^psid_length and psid_length + offset_bits at most 16")
                }
                c.ports = set
            }
            try p.finish()
        }
        if let t = try n.table("timeouts") {
            func secs(_ k: String, _ lo: Int) throws(ConfigurationError) -> UInt32? {
                try t.int(k, in: lo...Int(UInt32.max)).map { UInt32($0) }
            }
            if let v = try secs("udp", 1) { c.timeouts.udp = v }
            if let v = try secs("tcp_established", 1) { c.timeouts.tcpEstablished = v }
            if let v = try secs("tcp_transitory", 1) { c.timeouts.tcpTransitory = v }
            if let v = try secs("icmp", 1) { c.timeouts.icmp = v }
            if let v = try secs("other", 1) { c.timeouts.other = v }
            if let v = try secs("port_hold", 0) { c.timeouts.portHold = v }
            if let v = try t.seconds("syn_hold") { c.timeouts.synHoldMilliseconds = v }
            if let v = try t.seconds("fragment") { c.timeouts.fragmentMilliseconds = v }
            try t.finish()
        }
        if let t = try n.table("limits") {
            if let v = try t.int("max_sessions_per_host", in: 1...Int.max) { c.limits.maxSessionsPerHost = v }
            if let v = try t.int("max_ports_per_host", in: 1...Int.max) { c.limits.maxPortsPerHost = v }
            if let v = try t.int("icmp_errors_per_second", in: 0...1_000_000) { c.limits.icmpErrorsPerSecond = v }
            try t.finish()
        }
        if let t = try n.table("fragments") {
            if let v = try t.int("max_flows", in: 1...1_000_000) { c.fragments.maxFlows = v }
            if let v = try t.int("max_held", in: 0...65536) { c.fragments.maxHeld = v }
            if let v = try t.int("max_held_size", in: 68...65535) { c.fragments.maxHeldSize = v }
            try t.finish()
        }
        for (i, f) in try n.tableArray("forward").enumerated() {
            let proto = try f.proto()
            guard let outside = try f.string("outside") else { throw f.error("outside", "is missing", hint: "e.g. outside = \"198.51.100.1:8080\"") }
            guard let inside = try f.string("inside") else { throw f.error("inside", "is missing", hint: "e.g. inside = \"100.64.0.2:80\"") }
            let (oa, ops) = try f.endpointRange(outside, key: "outside")
            let (ia, ip) = try f.endpoint(inside, key: "inside")
            c.forwards.append(PortForward(proto: proto, outsideAddress: oa, outsidePorts: ops, insideAddress: ia, insidePort: ip))
            _ = i
            try f.finish()
        }
        for f in try n.tableArray("redirect") {
            let proto = try f.proto()
            guard let m = try f.string("match") else { throw f.error("match", "is missing", hint: "e.g. match = \"192.0.2.53:53\"") }
            guard let t = try f.string("target") else { throw f.error("target", "is missing", hint: "e.g. target = \"100.64.0.53:53\"") }
            let (ma, mps) = try f.endpointRange(m, key: "match")
            let (ta, tp) = try f.endpoint(t, key: "target")
            c.redirects.append(Redirect(proto: proto, matchAddress: ma, matchPorts: mps, targetAddress: ta, targetPort: tp))
            try f.finish()
        }
        for f in try n.tableArray("static_nat") {
            guard let i = try f.string("inside") else { throw f.error("inside", "is missing", hint: "e.g. inside = \"100.64.0.10\"") }
            guard let o = try f.string("outside") else { throw f.error("outside", "is missing", hint: "e.g. outside = \"192.0.2.10\"") }
            c.staticNAT.append(StaticNAT(inside: try f.address(i, key: "inside"), outside: try f.address(o, key: "outside")))
            try f.finish()
        }
        try n.finish()
        cfg.nat44 = c
    }
}

/// A TOML table being read: remembers which keys were used so that the rest can be refused.
final class TableReader {
    let table: TOMLTable
    let path: String
    let file: String
    private var used = Set<String>()

    init(_ table: TOMLTable, path: String, file: String) {
        self.table = table
        self.path = path
        self.file = file
    }

    func keyPath(_ k: String) -> String { path.isEmpty ? k : "\(path).\(k)" }

    func error(_ k: String, _ problem: String, hint: String? = nil) -> ConfigurationError {
        ConfigurationError(file: file, key: keyPath(k), problem: problem, hint: hint)
    }

    func has(_ k: String) -> Bool { table[k] != nil }

    private func value(_ k: String) -> TOMLValueConvertible? {
        used.insert(k)
        return table[k]
    }

    private func typeError(_ k: String, _ want: String, _ v: TOMLValueConvertible) -> ConfigurationError {
        error(k, "must be \(want), not a \(v.type)")
    }

    func string(_ k: String) throws(ConfigurationError) -> String? {
        guard let v = value(k) else { return nil }
        guard let s = v.string else { throw typeError(k, "a string", v) }
        return s
    }

    func bool(_ k: String) throws(ConfigurationError) -> Bool? {
        guard let v = value(k) else { return nil }
        guard let b = v.bool else { throw typeError(k, "true or false", v) }
        return b
    }

    func int(_ k: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
        guard let v = value(k) else { return nil }
        guard let i = v.int else { throw typeError(k, "an integer", v) }
        guard range.contains(i) else { throw error(k, "is \(i); it must be between \(range.lowerBound) and \(range.upperBound)") }
        return i
    }

    /// A duration in seconds (integer or fractional), returned in milliseconds.
    func seconds(_ k: String) throws(ConfigurationError) -> UInt64? {
        guard let v = value(k) else { return nil }
        let d: Double
        if let i = v.int { d = Double(i) } else if let x = v.double { d = x } else { throw typeError(k, "a number of seconds", v) }
        guard d >= 0, d <= 86_400 else { throw error(k, "is \(d) s; it must be between 0 and 86400") }
        return UInt64((d * 1000).rounded())
    }

    func stringArray(_ k: String) throws(ConfigurationError) -> [String]? {
        guard let v = value(k) else { return nil }
        guard let a = v.array else { throw typeError(k, "an array of strings", v) }
        var out: [String] = []
        for (i, e) in a.enumerated() {
            guard let s = e.string else { throw error("\(k)[\(i)]", "must be a string, not a \(e.type)") }
            out.append(s)
        }
        return out
    }

    func table(_ k: String) throws(ConfigurationError) -> TableReader? {
        guard let v = value(k) else { return nil }
        guard let t = v.table else { throw typeError(k, "a table", v) }
        return TableReader(t, path: keyPath(k), file: file)
    }

    func tableArray(_ k: String) throws(ConfigurationError) -> [TableReader] {
        guard let v = value(k) else { return [] }
        guard let a = v.array else { throw typeError(k, "an array of tables ([[\(keyPath(k))]])", v) }
        var out: [TableReader] = []
        for (i, e) in a.enumerated() {
            guard let t = e.table else { throw error("\(k)[\(i)]", "must be a table, not a \(e.type)") }
            out.append(TableReader(t, path: "\(keyPath(k))[\(i)]", file: file))
        }
        return out
    }

    /// A behaviour: a preset name, or a table `{ mapping = "...", filtering = "..." }`.
    func behavior(_ k: String) throws(ConfigurationError) -> Behavior? {
        guard let v = value(k) else { return nil }
        let presets = Behavior.presets.map(\.0).joined(separator: ", ")
        if let s = v.string {
            guard let b = Behavior(preset: s) else { throw error(k, "'\(s)' is not a preset", hint: "use one of \(presets), or { mapping = ..., filtering = ... }") }
            return b
        }
        guard let t = v.table else { throw typeError(k, "a preset name or a table", v) }
        let r = TableReader(t, path: keyPath(k), file: file)
        let kinds = MappingBehavior.allCases.map(\.rawValue).joined(separator: ", ")
        guard let m = try r.string("mapping") else { throw r.error("mapping", "is missing", hint: "one of \(kinds)") }
        guard let f = try r.string("filtering") else { throw r.error("filtering", "is missing", hint: "one of \(kinds)") }
        guard let mb = MappingBehavior(rawValue: m) else { throw r.error("mapping", "'\(m)' is unknown", hint: "one of \(kinds)") }
        guard let fb = FilteringBehavior(rawValue: f) else { throw r.error("filtering", "'\(f)' is unknown", hint: "one of \(kinds)") }
        try r.finish()
        return Behavior(mapping: mb, filtering: fb)
    }

    func proto() throws(ConfigurationError) -> UInt8 {
        guard let p = try string("protocol") else { throw error("protocol", "is missing", hint: "\"tcp\" or \"udp\"") }
        switch p.lowercased() {
        case "tcp": return IPProtocol.tcp
        case "udp": return IPProtocol.udp
        default: throw error("protocol", "is '\(p)'", hint: "\"tcp\" or \"udp\"")
        }
    }

    func address(_ s: String, key: String) throws(ConfigurationError) -> IPv4Address {
        guard let a = IPv4Address(s) else { throw error(key, "'\(s)' is not an IPv4 address") }
        return a
    }

    func prefix(_ s: String, key: String) throws(ConfigurationError) -> IPv4Prefix {
        if let p = IPv4Prefix(s) { return p }
        let parts = s.split(separator: "/")
        if parts.count == 2, let a = IPv4Address(parts[0]), let l = UInt8(parts[1]), l <= 32 {
            throw error(key, "'\(s)' has host bits set", hint: "write the network address, e.g. \(IPv4Prefix(containing: a, length: l))")
        }
        throw error(key, "'\(s)' is not an IPv4 address or prefix", hint: "e.g. \"198.51.100.0/24\"")
    }

    func port(_ s: Substring, key: String) throws(ConfigurationError) -> UInt16 {
        guard let p = UInt16(s), p > 0 else { throw error(key, "'\(s)' is not a port (1-65535)") }
        return p
    }

    func portRange(_ s: String, key: String) throws(ConfigurationError) -> ClosedRange<UInt16> {
        let parts = s.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2 else { throw error(key, "'\(s)' is not a port or a range like 1024-65535") }
        let lo = try port(parts[0], key: key)
        let hi = parts.count == 2 ? try port(parts[1], key: key) : lo
        guard lo <= hi else { throw error(key, "'\(s)' runs backwards") }
        return lo...hi
    }

    /// "addr:port" or "addr:port-port".
    func endpointRange(_ s: String, key: String) throws(ConfigurationError) -> (IPv4Address, ClosedRange<UInt16>) {
        guard let colon = s.lastIndex(of: ":") else { throw error(key, "'\(s)' must look like \"198.51.100.1:8080\" or \"198.51.100.1:8000-8010\"") }
        let a = try address(String(s[..<colon]), key: key)
        return (a, try portRange(String(s[s.index(after: colon)...]), key: key))
    }

    /// "addr:port".
    func endpoint(_ s: String, key: String) throws(ConfigurationError) -> (IPv4Address, UInt16) {
        guard let colon = s.lastIndex(of: ":") else { throw error(key, "'\(s)' must look like \"100.64.0.2:80\"") }
        let a = try address(String(s[..<colon]), key: key)
        return (a, try port(s[s.index(after: colon)...], key: key))
    }

    /// Refuses the keys nobody asked for.
    func finish() throws(ConfigurationError) {
        for k in table.keys.sorted() where !used.contains(k) {
            throw error(k, "is not a known key here", hint: "check its spelling and the table it is in (README: configuration reference)")
        }
    }
}
