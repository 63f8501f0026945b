import Foundation
import NAPT44
import NATCore
import NATWire
import TOMLKit

/// Reads a TOML file into a ``DaemonConfiguration``: decodes every table into its value type (unknown keys,
/// wrong types and values that do not parse are refused here, with the file and the key path), then runs
/// ``DaemonConfiguration/validate()``, where every rule lives (the engines' own `validate()` among them).
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
        let cfg = try decode(text, file: file)
        try cfg.validate()
        return cfg
    }

    /// TOML 1.0 allows no control character but tab and newline anywhere in a document, comments and
    /// strings included (a string spells one as an escape, `\u000B`). They are refused here, before the
    /// parser sees them: toml++ (inside TOMLKit) trips an assertion on some, which aborts the process
    /// (a vertical tab in a table header, `[\u{0B}` newline: found by Fuzz/fuzz-config), and a NUL would
    /// cut the text short on its way to C.
    static func refuseControlCharacters(_ text: String, file: String) throws(ConfigurationError) {
        var line = 1, column = 1
        for u in text.unicodeScalars {
            if u == "\n" {
                line += 1
                column = 1
                continue
            }
            if (u.value < 0x20 && u != "\t" && u != "\r") || u.value == 0x7F {
                let code = String(u.value, radix: 16, uppercase: true)
                throw ConfigurationError(file: file, key: "",
                                         problem: "is not valid TOML: control character U+\(String(repeating: "0", count: 4 - code.count))\(code) at line \(line), column \(column)",
                                         hint: "remove it; TOML allows only tab and newline (in a string, write it as an escape such as \\u000B)")
            }
            column += 1
        }
    }

    /// toml++ asserts (aborting the process; undefined behaviour where assertions are off) instead of
    /// reporting an error when a table header's `[` or `[[` is followed by something that cannot start a
    /// key, such as a line end (`[` alone on a line: found by Fuzz/fuzz-config). So headers are checked
    /// here first: a `[` that starts a line outside any string, comment or array is a header, and TOML
    /// wants a bare or quoted key after it.
    static func refuseKeylessTableHeaders(_ text: String, file: String) throws(ConfigurationError) {
        let b = Array(text.utf8)
        var i = 0, line = 1, depth = 0, lineStart = true
        func isKeyStart(_ c: UInt8) -> Bool {
            (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x5F || c == 0x2D
                || c == 0x22 || c == 0x27 || c == 0x5D
        }
        func skipSpace(_ j: inout Int) { while j < b.count && (b[j] == 0x20 || b[j] == 0x09) { j += 1 } }
        while i < b.count {
            let c = b[i]
            switch c {
            case 0x0A:
                line += 1
                lineStart = true
                i += 1
                continue
            case 0x20, 0x09, 0x0D:
                i += 1
                continue
            case 0x23:  // '#': a comment to the line end
                while i < b.count && b[i] != 0x0A { i += 1 }
                continue
            case 0x22, 0x27:  // a string, single- or multi-line, basic (escapes) or literal
                let multi = i + 2 < b.count && b[i + 1] == c && b[i + 2] == c
                i += multi ? 3 : 1
                while i < b.count {
                    if c == 0x22 && b[i] == 0x5C { i += 2; continue }
                    if b[i] == 0x0A { if !multi { break }; line += 1 }
                    if b[i] == c && (!multi || (i + 2 < b.count && b[i + 1] == c && b[i + 2] == c)) {
                        i += multi ? 3 : 1
                        // A multi-line string may end in up to two more quotes.
                        while multi && i < b.count && b[i] == c { i += 1 }
                        break
                    }
                    i += 1
                }
                lineStart = false
                continue
            case 0x5B where lineStart && depth == 0:  // '[' of a table header
                var j = i + 1
                skipSpace(&j)
                if j < b.count && b[j] == 0x5B {
                    j += 1
                    skipSpace(&j)
                }
                if j < b.count && !isKeyStart(b[j]) {
                    throw ConfigurationError(file: file, key: "", problem: "is not valid TOML: a table header without a key at line \(line)",
                                             hint: "write the table's name between the brackets, e.g. [nat44]")
                }
                i = j
                lineStart = false
                continue
            case 0x5B:
                depth += 1
            case 0x5D:
                depth = max(0, depth - 1)
            default:
                break
            }
            lineStart = false
            i += 1
        }
    }

    /// The file's tables as values, not yet validated.
    public static func decode(_ text: String, file: String = "<config>") throws(ConfigurationError) -> DaemonConfiguration {
        try refuseControlCharacters(text, file: file)
        try refuseKeylessTableHeaders(text, file: file)
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
        if let t = try r.table("tun") { cfg.tun = try TunSettings(t) }
        if let t = try r.table("routing") { cfg.routing = try RoutingSettings(t) }
        if let t = try r.table("control") { cfg.control = try ControlSettings(t) }
        if let t = try r.table("metrics") { cfg.metrics = try MetricsSettings(t) }
        if let t = try r.table("logging") { cfg.logging = try LoggingSettings(t) }
        if let t = try r.table("port_control") { cfg.portControl = try PortControlSettings(t) }
        if let n = try r.table("nat44") {
            cfg.nat44 = try NAPT44Configuration(n)
            if let v = try n.stringArray("inside_interfaces") { cfg.insideInterfaces = v }
            if let v = try n.string("outside_interface") { cfg.outsideInterface = v }
            try n.finish()
        }
        if isProtomask(root) {
            if r.has("nat64") {
                throw ConfigurationError(file: file, key: "nat64", problem: "cannot be combined with protomask's keys (Nat64Prefix, Prometheus, [Pool])",
                                         hint: "use either a protomask file or swiftnat's [nat64] table")
            }
            cfg.nat64 = try readProtomask(r, metrics: &cfg.metrics)
        } else if let t = try r.table("nat64") {
            cfg.nat64 = try readNAT64(t)
        }
        cfg.nptv6 = try readNPTv6(r)
        try r.finish()
        return cfg
    }
}

extension TunSettings {
    /// `[tun]`.
    init(_ t: TableReader) throws(ConfigurationError) {
        self.init()
        if let v = try t.string("name") { name = v }
        if let v = try t.int("mtu") { mtu = v; sizeMTUFromOutsideInterface = false }
        if let v = try t.int("queues") { queues = v }
        if let v = try t.bool("offload") { offload = v }
        if let v = try t.int("txqueuelen") { txQueueLength = v }
        if let v = try t.int("fair_queues") { fairQueues = v }
        if let v = try t.int("fair_queue_rate") { fairQueueRate = v }
        if let v = try t.int("fair_queue_perturb") { fairQueuePerturbSeconds = v }
        try t.finish()
    }
}

extension RoutingSettings {
    /// `[routing]`.
    init(_ t: TableReader) throws(ConfigurationError) {
        self.init()
        if let v = try t.int("table") { table = v }
        if let v = try t.int("priority") { priority = v }
        if let v = try t.bool("forwarding") { forwarding = v }
        if let v = try t.bool("proxy_arp") { proxyARP = v }
        if let v = try t.bool("enabled") { enabled = v }
        if let v = try t.stringArray("gro_interfaces") { groInterfaces = v }
        if let v = try t.int("gro_flush_timeout_us") { groFlushTimeoutMicroseconds = v }
        if let v = try t.bool("block_outside_to_inside") { blockOutsideToInside = v }
        if let v = try t.bool("fail_closed_across_restart") { failClosedAcrossRestart = v }
        try t.finish()
    }
}

extension ControlSettings {
    /// `[control]`: `state_file = ""` keeps no state file, `sessions_file = ""` no sessions across restarts.
    init(_ t: TableReader) throws(ConfigurationError) {
        self.init()
        if let v = try t.bool("enabled") { enabled = v }
        if let v = try t.string("socket") { socket = v }
        if let v = try t.string("state_file") { stateFile = v.isEmpty ? nil : v }
        if let v = try t.string("sessions_file") { sessionsFile = v.isEmpty ? nil : v }
        try t.finish()
    }
}

extension MetricsSettings {
    /// `[metrics]`.
    init(_ t: TableReader) throws(ConfigurationError) {
        self.init()
        if let v = try t.string("listen") { listen = v }
        try t.finish()
    }
}

extension LoggingSettings {
    /// `[logging]`.
    init(_ t: TableReader) throws(ConfigurationError) {
        self.init()
        if let v = try t.bool("mappings") { mappings = v }
        if let v = try t.bool("destinations") { destinations = v }
        if let v = try t.int("rate_per_second") { ratePerSecond = v }
        try t.finish()
    }
}

extension NAPT44Configuration {
    /// `[nat44]` but its two interface keys (read by the caller, which finishes the table).
    init(_ n: TableReader) throws(ConfigurationError) {
        self.init()
        if let v = try n.stringArray("inside") {
            insidePrefixes = try v.enumerated().map { (i, s) throws(ConfigurationError) in try n.prefix(s, key: "inside[\(i)]") }
        }
        guard let p = try n.stringArray("pool") else {
            throw n.error("pool", "is missing", hint: "give the outside addresses, e.g. pool = [\"198.51.100.1/32\"]")
        }
        pool = try p.enumerated().map { (i, s) throws(ConfigurationError) in try n.prefix(s, key: "pool[\(i)]") }
        if let v = try n.bool("paired_pooling") { pairedPooling = v }
        if let b = try n.behavior("behavior") { setBehavior(b) }
        if let b = try n.behavior("tcp") { tcp = b }
        if let b = try n.behavior("udp") { udp = b }
        if let b = try n.behavior("icmp") { icmp = b }
        if let v = try n.bool("port_preservation") { portPreservation = v }
        if let v = try n.bool("parity_preservation") { parityPreservation = v }
        if let v = try n.int("max_port_attempts") { maxPortAttempts = v }
        if let v = try n.bool("inbound_refresh") { inboundRefresh = v }
        if let v = try n.string("unsolicited_syn") {
            guard let p = UnsolicitedSYNPolicy(rawValue: v) else { throw n.error("unsolicited_syn", "is '\(v)'", hint: "use \"icmp\" or \"drop\"") }
            unsolicitedSYN = p
        }
        if let v = try n.int("max_sessions") { maxSessions = v }
        if let v = try n.int("max_held_syns") { maxHeldSYNs = v }
        if let v = try n.bool("hairpinning") { hairpinning = v }
        if let v = try n.bool("icmp_on_resource_limit") { icmpOnResourceLimit = v }
        if let v = try n.bool("answer_ping") { answerPing = v }
        if let v = try n.string("icmp_source") { icmpSourceAddress = try n.address(v, key: "icmp_source") }
        if let v = try n.int("hash_seed", in: 1...Int.max) { hashSeed = UInt64(v) }
        if let p = try n.table("ports") { ports = try Self.ports(p) }
        if let t = try n.table("timeouts") {
            if let v = try t.integer("udp", as: UInt32.self) { timeouts.udp = v }
            if let v = try t.integer("tcp_established", as: UInt32.self) { timeouts.tcpEstablished = v }
            if let v = try t.integer("tcp_transitory", as: UInt32.self) { timeouts.tcpTransitory = v }
            if let v = try t.integer("icmp", as: UInt32.self) { timeouts.icmp = v }
            if let v = try t.integer("other", as: UInt32.self) { timeouts.other = v }
            if let v = try t.integer("port_hold", as: UInt32.self) { timeouts.portHold = v }
            if let v = try t.seconds("syn_hold") { timeouts.synHoldMilliseconds = v }
            if let v = try t.seconds("fragment") { timeouts.fragmentMilliseconds = v }
            try t.finish()
        }
        if let t = try n.table("limits") {
            if let v = try t.int("max_sessions_per_host") { limits.maxSessionsPerHost = v }
            if let v = try t.int("max_ports_per_host") { limits.maxPortsPerHost = v }
            if let v = try t.int("icmp_errors_per_second") { limits.icmpErrorsPerSecond = v }
            if let v = try t.int("new_sessions_per_second") { limits.newSessionsPerSecond = v }
            if let v = try t.int("new_session_burst") { limits.newSessionBurst = v }
            try t.finish()
        }
        if let t = try n.table("helpers") {
            if let v = try t.portList("ftp") { helpers.ftpPorts = v }
            if let v = try t.int("max_expectations") { helpers.maxExpectations = v }
            if let v = try t.int("max_expectations_per_session") { helpers.maxExpectationsPerSession = v }
            if let v = try t.integer("expectation_timeout", as: UInt32.self) { helpers.expectationTimeout = v }
            if let v = try t.int("max_helped_sessions") { helpers.maxHelpedSessions = v }
            try t.finish()
        }
        if let t = try n.table("fragments") {
            if let v = try t.int("max_flows") { fragments.maxFlows = v }
            if let v = try t.int("max_held") { fragments.maxHeld = v }
            if let v = try t.int("max_held_size") { fragments.maxHeldSize = v }
            try t.finish()
        }
        for f in try n.tableArray("forward") {
            let proto = try f.proto()
            guard let outside = try f.string("outside") else { throw f.error("outside", "is missing", hint: "e.g. outside = \"198.51.100.1:8080\"") }
            guard let inside = try f.string("inside") else { throw f.error("inside", "is missing", hint: "e.g. inside = \"100.64.0.2:80\"") }
            let (oa, ops) = try f.endpointRange(outside, key: "outside")
            let (ia, ip) = try f.endpoint(inside, key: "inside")
            forwards.append(PortForward(proto: proto, outsideAddress: oa, outsidePorts: ops, insideAddress: ia, insidePort: ip))
            try f.finish()
        }
        for f in try n.tableArray("redirect") {
            let proto = try f.proto()
            guard let m = try f.string("match") else { throw f.error("match", "is missing", hint: "e.g. match = \"192.0.2.53:53\"") }
            guard let t = try f.string("target") else { throw f.error("target", "is missing", hint: "e.g. target = \"100.64.0.53:53\"") }
            let (ma, mps) = try f.endpointRange(m, key: "match")
            let (ta, tp) = try f.endpoint(t, key: "target")
            redirects.append(Redirect(proto: proto, matchAddress: ma, matchPorts: mps, targetAddress: ta, targetPort: tp))
            try f.finish()
        }
        for f in try n.tableArray("static_nat") {
            guard let i = try f.string("inside") else { throw f.error("inside", "is missing", hint: "e.g. inside = \"100.64.0.10\"") }
            guard let o = try f.string("outside") else { throw f.error("outside", "is missing", hint: "e.g. outside = \"192.0.2.10\"") }
            staticNAT.append(StaticNAT(inside: try f.address(i, key: "inside"), outside: try f.address(o, key: "outside")))
            try f.finish()
        }
    }

    /// `[nat44.ports]`: `ranges`, or a MAP-E port set (`psid`, `psid_length`, `offset_bits`).
    static func ports(_ p: TableReader) throws(ConfigurationError) -> PortSet {
        let hasRanges = p.has("ranges")
        let hasPSID = p.has("psid") || p.has("psid_length") || p.has("offset_bits")
        if hasRanges && hasPSID {
            throw p.error("ranges", "cannot be combined with psid/psid_length/offset_bits", hint: "use either port ranges or a MAP-E port set")
        }
        var set = PortSet.all
        if let rs = try p.portSet("ranges") {
            set = rs
        } else if hasPSID {
            guard let psid = try p.int("psid", in: 0...65535) else { throw p.error("psid", "is missing (psid_length/offset_bits need it)") }
            guard let k = try p.int("psid_length", in: 0...16) else { throw p.error("psid_length", "is missing") }
            let a = try p.int("offset_bits", in: 0...16) ?? 6
            guard let s = PortSet(psid: UInt16(psid), psidLength: k, offsetBits: a) else {
                throw p.error("psid", "psid \(psid) with psid_length \(k) and offset_bits \(a) gives no port set",
                              hint: "psid must be below 2^psid_length and psid_length + offset_bits at most 16")
            }
            set = s
        }
        try p.finish()
        return set
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

    /// An integer of any value; the rules are the configuration types' `validate()`.
    func int(_ k: String) throws(ConfigurationError) -> Int? {
        try int(k, in: Int.min...Int.max)
    }

    /// An integer that must fit `T` (a field of that type): a negative timeout cannot be decoded.
    func integer<T: FixedWidthInteger>(_ k: String, as: T.Type) throws(ConfigurationError) -> T? {
        try int(k, in: Int(T.min)...Int(clamping: T.max)).map { T($0) }
    }

    /// Port ranges (`["1024-65535", "8080"]`) as a ``PortSet``; an empty list is an empty set.
    func portSet(_ k: String) throws(ConfigurationError) -> PortSet? {
        guard let rs = try stringArray(k) else { return nil }
        var ranges: [ClosedRange<UInt16>] = []
        for (i, r) in rs.enumerated() { ranges.append(try portRange(r, key: "\(k)[\(i)]")) }
        return PortSet(ranges: ranges)
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

    /// A list of ports as integers (`ftp = [21, 2121]`); `[]` is an empty list.
    func portList(_ k: String) throws(ConfigurationError) -> [UInt16]? {
        guard let v = value(k) else { return nil }
        guard let a = v.array else { throw typeError(k, "an array of ports", v) }
        var out: [UInt16] = []
        for (i, e) in a.enumerated() {
            guard let p = e.int, (1...65535).contains(p) else {
                throw error("\(k)[\(i)]", "must be a port between 1 and 65535", hint: "e.g. \(k) = [21]")
            }
            out.append(UInt16(p))
        }
        return out
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

    /// `[k]` (one table) or `[[k]]` (an array of tables): the tables, and whether it was an array.
    func tableOrTables(_ k: String) throws(ConfigurationError) -> (tables: [TableReader], isArray: Bool)? {
        guard let v = table[k] else { return nil }
        if v.table != nil { return try table(k).map { ([$0], false) } }
        return (try tableArray(k), true)
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
