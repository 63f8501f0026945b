import NAT64
import NATCore
import NATWire
import TOMLKit

/// `[nat64]` in swiftnat's own TOML, and protomask's configuration file (detected by its keys): decoded
/// into ``NAT64Settings``; the rules are ``NAT64Settings/validate()``'s.
extension ConfigLoader {
    /// protomask's top-level keys (its README: `Nat64Prefix`, `Prometheus`, `[Pool]`).
    static let protomaskKeys = ["Nat64Prefix", "Prometheus", "Pool"]

    static func isProtomask(_ root: TOMLTable) -> Bool {
        protomaskKeys.contains { root[$0] != nil }
    }

    /// The keys each mode takes besides the common ones; any other mode's key is refused by name.
    static let poolKeys = ["pool", "max_idle", "static", "state_file", "state_interval", "rfc6791_pool"]
    static let siitKeys = ["eam", "translatable", "rfc6791_pool"]

    /// swiftnat's `[nat64]` table.
    static func readNAT64(_ t: TableReader) throws(ConfigurationError) -> NAT64Settings {
        let modes = NAT64Mode.names.map { "\"\($0)\"" }.joined(separator: " or ")
        guard let m = try t.string("mode") else {
            throw t.error("mode", "is missing", hint: "mode = \"pool\" (protomask's 1:1 pool), \"siit\" (stateless, RFC 7915) or \"stateful\" (NAPT64, RFC 6146)")
        }
        let prefixText = try t.string("prefix")
        let eamOnly = prefixText == "none"
        if eamOnly && m != "siit" {
            throw t.error("prefix", "is \"none\", which only SIIT takes (EAM only)", hint: "give the RFC 6052 prefix, e.g. \"64:ff9b::/96\"")
        }
        let prefix = try (eamOnly ? nil : prefixText).map { (x) throws(ConfigurationError) in try t.ipv6Prefix(x, key: "prefix") } ?? NAT64Settings.wellKnownPrefix
        let checkNonGlobal = try t.bool("check_non_global") ?? true
        let mode: NAT64Mode
        switch m {
        case "pool":
            for k in ["eam", "translatable"] where t.has(k) {
                throw t.error(k, "is for mode = \"siit\"", hint: "in pool mode list addresses in pool and pinned pairs in static")
            }
            mode = .pool(try readPoolMode(t))
        case "siit":
            for k in ["pool", "static", "max_idle", "state_file", "state_interval"] where t.has(k) {
                throw t.error(k, "is for mode = \"pool\"", hint: "SIIT keeps no state: list eam entries and translatable prefixes")
            }
            var siit = try readSIIT(t)
            siit.eamOnly = eamOnly
            mode = .siit(siit)
        case "stateful":
            for k in ["eam", "translatable", "static", "max_idle", "state_file", "state_interval"] where t.has(k) {
                throw t.error(k, "is not a key of mode = \"stateful\"",
                              hint: "stateful NAT64 takes pool, ports, filtering, timeouts, limits and [[nat64.static_bib]] entries (docs: stateful mode)")
            }
            var c = try readStateful(t)
            // The prefix is the settings' (NAT64Settings.validate checks it); kept here for library users.
            if let p = try? NAT64Prefix(prefix, restrictsToGlobalIPv4: checkNonGlobal && prefix == NAT64Settings.wellKnownPrefix) { c.prefix = p }
            mode = .stateful(c)
        default:
            throw t.error("mode", "is '\(m)'", hint: "use \(modes)")
        }
        var s = NAT64Settings(mode: mode, prefix: prefix)
        s.checkNonGlobal = checkNonGlobal
        if let v = try t.int("lowest_ipv6_mtu") { s.lowestIPv6MTU = v }
        try readTranslatorKeys(t, into: &s, stateful: m == "stateful")
        try t.finish()
        return s
    }

    /// The translator's knobs, in every mode: RFC 6791 pools (Jool's pool6791v4 / pool6791v6; in stateful
    /// mode `rfc6791_pool` is read as pool6791v4), the two MTUs, the zero UDP checksum policy and the
    /// traffic class.
    static func readTranslatorKeys(_ t: TableReader, into s: inout NAT64Settings, stateful: Bool) throws(ConfigurationError) {
        s.pool6791v4 = try t.prefixes("pool6791v4") ?? []
        if stateful, let p = try t.prefixes("rfc6791_pool") {
            guard s.pool6791v4.isEmpty else { throw t.error("rfc6791_pool", "is given with pool6791v4", hint: "they are the same pool: keep one") }
            s.pool6791v4 = p
        }
        if let v = try t.string("pool6791v6") { s.pool6791v6 = try t.ipv6Address(v, key: "pool6791v6") }
        if let v = try t.int("ipv4_mtu") { s.ipv4MTU = v }
        if let v = try t.int("ipv6_mtu") { s.ipv6MTU = v }
        if let v = try t.string("zero_udp_checksum") {
            guard let p = ZeroUDPChecksumPolicy(rawValue: v) else {
                throw t.error("zero_udp_checksum", "is '\(v)'", hint: "use \"compute\" or \"drop\" (drop answers with ICMP 3/13, RFC 7915 §4.5)")
            }
            s.zeroUDPChecksum = p
        }
        if let v = try t.string("traffic_class") {
            switch v {
            case "copy": s.trafficClassOverride = nil
            case "zero": s.trafficClassOverride = 0
            default: throw t.error("traffic_class", "is '\(v)'", hint: "use \"copy\" or \"zero\" (RFC 7915 §4.1, §5.1)")
            }
        }
    }

    /// `mode = "pool"`: the pool, its static pairs, RFC 6791 addresses and the state file.
    static func readPoolMode(_ t: TableReader) throws(ConfigurationError) -> NAT64PoolSettings {
        guard let p = try t.stringArray("pool") else {
            throw t.error("pool", "is missing", hint: "the IPv4 addresses handed out to IPv6 hosts, e.g. pool = [\"192.0.2.0/24\"]")
        }
        var pool = AddressPoolConfiguration(prefixes: try p.enumerated().map { (i, x) throws(ConfigurationError) in try t.prefix(x, key: "pool[\(i)]") })
        if let v = try t.integer("max_idle", as: UInt32.self) { pool.maxIdleSeconds = v }
        for e in try t.tableArray("static") { pool.staticMappings.append(try e.staticPair(v4Key: "v4", v6Key: "v6")) }
        var s = NAT64PoolSettings(pool: pool)
        s.rfc6791Pool = try t.prefixes("rfc6791_pool") ?? []
        if let v = try t.string("state_file") { s.stateFile = v }
        if let v = try t.int("state_interval") { s.stateInterval = v }
        return s
    }

    /// `mode = "siit"`: EAM entries, translatable prefixes, RFC 6791 addresses.
    static func readSIIT(_ t: TableReader) throws(ConfigurationError) -> SIITSettings {
        var s = SIITSettings()
        for e in try t.tableArray("eam") {
            guard let a = try e.string("v4") else { throw e.error("v4", "is missing", hint: "e.g. { v4 = \"198.51.100.8/29\", v6 = \"2001:db8:1::8/125\" }") }
            guard let b = try e.string("v6") else { throw e.error("v6", "is missing", hint: "e.g. { v4 = \"198.51.100.8/29\", v6 = \"2001:db8:1::8/125\" }") }
            s.eam.append(EAMSetting(ipv4: try e.prefix(a, key: "v4"), ipv6: try e.ipv6Prefix(b, key: "v6"),
                                    ipv4Host: try e.bool("ipv4_host") ?? false))
            try e.finish()
        }
        s.translatable = try t.prefixes("translatable") ?? []
        s.rfc6791Pool = try t.prefixes("rfc6791_pool") ?? []
        return s
    }

    /// `mode = "stateful"`: RFC 6146 NAPT64; the rules are ``NAPT64Configuration/validate()``'s.
    static func readStateful(_ t: TableReader) throws(ConfigurationError) -> NAPT64Configuration {
        var c = NAPT64Configuration()
        guard let p = try t.stringArray("pool") else {
            throw t.error("pool", "is missing", hint: "the IPv4 addresses IPv6 hosts share by ports, e.g. pool = [\"198.51.100.64/30\"]")
        }
        c.pool = try p.enumerated().map { (i, x) throws(ConfigurationError) in try t.prefix(x, key: "pool[\(i)]") }
        if let v = try t.portSet("tcp_ports") { c.tcpPorts = v }
        if let v = try t.portSet("udp_ports") { c.udpPorts = v }
        if let v = try t.portSet("icmp_identifiers") { c.icmpIdentifiers = v }
        if let v = try t.string("filtering") {
            guard let f = NAT64Filtering(rawValue: v) else {
                throw t.error("filtering", "is '\(v)'", hint: "use \"endpoint-independent\" or \"address-dependent\" (RFC 6146 §3.5.1)")
            }
            c.filtering = f
        }
        if let v = try t.bool("paired_pooling") { c.pairedPooling = v }
        if let v = try t.bool("port_preservation") { c.portPreservation = v }
        if let v = try t.bool("parity_preservation") { c.parityPreservation = v }
        if let v = try t.int("max_port_attempts") { c.maxPortAttempts = v }
        if let v = try t.string("unsolicited_syn") {
            guard let u = NAT64UnsolicitedSYNPolicy(rawValue: v) else { throw t.error("unsolicited_syn", "is '\(v)'", hint: "use \"icmp\" or \"drop\"") }
            c.unsolicitedSYN = u
        }
        if let v = try t.bool("drop_externally_initiated_tcp") { c.dropExternallyInitiatedTCP = v }
        if let v = try t.bool("tcp_probes") { c.tcpProbes = v }
        if let v = try t.bool("hairpinning") { c.hairpinning = v }
        if let v = try t.int("hash_seed", in: 1...Int.max) { c.hashSeed = UInt64(v) }
        if let tt = try t.table("timeouts") {
            if let v = try tt.integer("udp", as: UInt32.self) { c.timeouts.udp = v }
            if let v = try tt.integer("tcp_established", as: UInt32.self) { c.timeouts.tcpEstablished = v }
            if let v = try tt.integer("tcp_transitory", as: UInt32.self) { c.timeouts.tcpTransitory = v }
            if let v = try tt.integer("icmp", as: UInt32.self) { c.timeouts.icmp = v }
            if let v = try tt.integer("port_hold", as: UInt32.self) { c.timeouts.portHold = v }
            if let v = try tt.seconds("tcp_incoming_syn") { c.timeouts.synHoldMilliseconds = v }
            if let v = try tt.seconds("fragment") { c.timeouts.fragmentMilliseconds = v }
            try tt.finish()
        }
        if let l = try t.table("limits") {
            if let v = try l.int("max_sessions") { c.maxSessions = v }
            if let v = try l.int("max_bib_entries") { c.maxBindings = v }
            if let v = try l.int("max_hosts") { c.maxHosts = v }
            if let v = try l.int("max_sessions_per_host") { c.maxSessionsPerHost = v }
            if let v = try l.int("max_bib_entries_per_host") { c.maxBindingsPerHost = v }
            if let v = try l.int("new_sessions_per_second") { c.newSessionsPerSecond = v }
            if let v = try l.int("new_session_burst") { c.newSessionBurst = v }
            if let v = try l.int("max_held_syns") { c.maxHeldSYNs = v }
            if let v = try l.int("max_fragment_flows") { c.maxFragmentFlows = v }
            try l.finish()
        }
        for e in try t.tableArray("static_bib") {
            guard let proto = try e.string("protocol") else { throw e.error("protocol", "is missing", hint: "\"tcp\", \"udp\" or \"icmp\"") }
            guard let pr = NAT64Protocol(rawValue: proto.lowercased()) else {
                throw e.error("protocol", "is '\(proto)'", hint: "\"tcp\", \"udp\" or \"icmp\" (for ICMP the ports are echo identifiers)")
            }
            let example = "e.g. { protocol = \"tcp\", ipv6 = \"2001:db8:1::80\", ipv6_port = 80, ipv4 = \"198.51.100.64\", ipv4_port = 8080 }"
            guard let a6 = try e.string("ipv6") else { throw e.error("ipv6", "is missing", hint: example) }
            guard let p6 = try e.integer("ipv6_port", as: UInt16.self) else { throw e.error("ipv6_port", "is missing", hint: example) }
            guard let a4 = try e.string("ipv4") else { throw e.error("ipv4", "is missing", hint: example) }
            guard let p4 = try e.integer("ipv4_port", as: UInt16.self) else { throw e.error("ipv4_port", "is missing", hint: example) }
            c.staticBindings.append(NAT64StaticBinding(proto: pr, ipv6: try e.ipv6Address(a6, key: "ipv6"), ipv6Port: p6,
                                                       ipv4: try e.address(a4, key: "ipv4"), ipv4Port: p4))
            try e.finish()
        }
        return c
    }

    /// protomask's file: `Nat64Prefix`, `Prometheus` (sets ``MetricsSettings/listen``), `[Pool]` with
    /// `Prefixes`, `MaxIdleDuration`, `Static`. The rest of the file may hold swiftnat's own tables.
    static func readProtomask(_ r: TableReader, metrics: inout MetricsSettings) throws(ConfigurationError) -> NAT64Settings {
        let prefix = try r.string("Nat64Prefix").map { (x) throws(ConfigurationError) in try r.ipv6Prefix(x, key: "Nat64Prefix") } ?? NAT64Settings.wellKnownPrefix
        if let p = try r.string("Prometheus") {
            // Checked as [metrics] listen is; a [metrics] table in the same file wins (as on main's control plane).
            var m = MetricsSettings()
            m.listen = p
            do {
                try m.validate()
            } catch {
                throw r.error("Prometheus", error.problem, hint: error.hint)
            }
            if metrics.listen == nil { metrics.listen = p }
        }
        guard let pt = try r.table("Pool") else {
            throw r.error("Pool", "is missing", hint: "add [Pool] with Prefixes = [\"192.0.2.0/24\"] (protomask's format)")
        }
        guard let prefixes = try pt.stringArray("Prefixes") else {
            throw pt.error("Prefixes", "is missing", hint: "e.g. Prefixes = [\"192.0.2.0/24\"]")
        }
        var pool = AddressPoolConfiguration(prefixes: try prefixes.enumerated().map { (i, x) throws(ConfigurationError) in try pt.prefix(x, key: "Prefixes[\(i)]") })
        if let v = try pt.integer("MaxIdleDuration", as: UInt32.self) { pool.maxIdleSeconds = v }
        for e in try pt.tableArray("Static") { pool.staticMappings.append(try e.staticPair(v4Key: "v4", v6Key: "v6")) }
        try pt.finish()
        var s = NAT64Settings(mode: .pool(NAT64PoolSettings(pool: pool)), prefix: prefix)
        s.fromProtomask = true
        return s
    }
}

extension TableReader {
    func ipv6Address(_ s: String, key: String) throws(ConfigurationError) -> IPv6Address {
        guard let a = IPv6Address(s) else { throw error(key, "'\(s)' is not an IPv6 address", hint: "e.g. \"2001:db8:1::2\"") }
        return a
    }

    func ipv6Prefix(_ s: String, key: String) throws(ConfigurationError) -> IPv6Prefix {
        if let p = IPv6Prefix(s) { return p }
        let parts = s.split(separator: "/")
        if parts.count == 2, IPv6Address(parts[0]) != nil, let l = UInt8(parts[1]), l <= 128 {
            throw error(key, "'\(s)' has bits set after the first \(l)", hint: "write the network address of the prefix")
        }
        throw error(key, "'\(s)' is not an IPv6 prefix", hint: "e.g. \"2001:db8:1::/64\"")
    }

    /// An array of IPv4 prefixes (or addresses).
    func prefixes(_ k: String) throws(ConfigurationError) -> [IPv4Prefix]? {
        try stringArray(k).map { (v) throws(ConfigurationError) in
            try v.enumerated().map { (i, x) throws(ConfigurationError) in try prefix(x, key: "\(k)[\(i)]") }
        }
    }

    /// `{ v4 = "192.0.2.2", v6 = "2001:db8:1::2" }`.
    func staticPair(v4Key: String, v6Key: String) throws(ConfigurationError) -> StaticAddressMapping {
        guard let a = try string(v4Key) else { throw error(v4Key, "is missing", hint: "e.g. { v4 = \"192.0.2.2\", v6 = \"2001:db8:1::2\" }") }
        guard let b = try string(v6Key) else { throw error(v6Key, "is missing", hint: "e.g. { v4 = \"192.0.2.2\", v6 = \"2001:db8:1::2\" }") }
        let m = StaticAddressMapping(ipv4: try address(a, key: v4Key), ipv6: try ipv6Address(b, key: v6Key))
        try finish()
        return m
    }
}
