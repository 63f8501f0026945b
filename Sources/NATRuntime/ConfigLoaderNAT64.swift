import NAT64
import NATCore
import NATWire
import TOMLKit

/// `[nat64]` in swiftnat's own TOML, and protomask's configuration file (detected by its keys).
extension ConfigLoader {
    /// protomask's top-level keys (its README: `Nat64Prefix`, `Prometheus`, `[Pool]`).
    static let protomaskKeys = ["Nat64Prefix", "Prometheus", "Pool"]

    static func isProtomask(_ root: TOMLTable) -> Bool {
        protomaskKeys.contains { root[$0] != nil }
    }

    /// swiftnat's `[nat64]` table.
    static func readNAT64(_ t: TableReader) throws(ConfigurationError) -> NAT64Settings {
        let modes = NAT64Mode.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: " or ")
        guard let m = try t.string("mode") else {
            throw t.error("mode", "is missing", hint: "mode = \"pool\" (protomask's 1:1 pool), \"siit\" (stateless, RFC 7915) or \"stateful\" (NAPT64, RFC 6146)")
        }
        guard let mode = NAT64Mode(rawValue: m) else { throw t.error("mode", "is '\(m)'", hint: "use \(modes)") }
        let prefixText = try t.string("prefix") ?? NAT64Settings.wellKnownPrefix.description
        var s = NAT64Settings(mode: mode, prefix: try t.nat64Prefix(prefixText, key: "prefix"))
        if let v = try t.bool("check_non_global") { s.checkNonGlobal = v }
        if let v = try t.int("lowest_ipv6_mtu", in: 1280...65535) { s.lowestIPv6MTU = v }
        if let v = try t.stringArray("rfc6791_pool") {
            s.rfc6791Pool = try v.enumerated().map { (i, x) throws(ConfigurationError) in try t.prefix(x, key: "rfc6791_pool[\(i)]") }
        }
        switch mode {
        case .pool:
            for k in ["eam", "translatable"] where t.has(k) {
                throw t.error(k, "is for mode = \"siit\"", hint: "in pool mode list addresses in pool and pinned pairs in static")
            }
            guard let p = try t.stringArray("pool") else {
                throw t.error("pool", "is missing", hint: "the IPv4 addresses handed out to IPv6 hosts, e.g. pool = [\"192.0.2.0/24\"]")
            }
            var pool = AddressPoolConfiguration(prefixes: try p.enumerated().map { (i, x) throws(ConfigurationError) in try t.prefix(x, key: "pool[\(i)]") })
            if let v = try t.int("max_idle", in: 1...Int(AddressPoolConfiguration.maximumIdleSeconds)) { pool.maxIdleSeconds = UInt32(v) }
            for (i, e) in try t.tableArray("static").enumerated() {
                pool.staticMappings.append(try e.staticPair(v4Key: "v4", v6Key: "v6"))
                _ = i
            }
            s.pool = pool
            if let v = try t.string("state_file") {
                guard !v.isEmpty else { throw t.error("state_file", "is empty", hint: "give a path such as /var/lib/swiftnat/nat64.state, or leave the key out") }
                s.stateFile = v
            }
            if let v = try t.int("state_interval", in: 1...86400) { s.stateInterval = v }
            try validatePool(pool, reader: t, keys: PoolKeys.swiftnat)
        case .stateful:
            for k in ["eam", "translatable", "static", "max_idle", "state_file", "state_interval"] where t.has(k) {
                throw t.error(k, "is not a key of mode = \"stateful\"",
                              hint: "stateful NAT64 takes pool, ports, filtering, timeouts, limits and [[nat64.static_bib]] entries (docs: stateful mode)")
            }
            guard s.rfc6791Pool.isEmpty else {
                throw t.error("rfc6791_pool", "is not used in stateful mode",
                              hint: "translated ICMP errors come from the pool address of the session (RFC 6146 §3.5.4); remove the key")
            }
            s.stateful = try readStateful(t, prefix: s.prefix, checkNonGlobal: s.checkNonGlobal)
        case .siit:
            for k in ["pool", "static", "max_idle", "state_file", "state_interval"] where t.has(k) {
                throw t.error(k, "is for mode = \"pool\"", hint: "SIIT keeps no state: list eam entries and translatable prefixes")
            }
            for e in try t.tableArray("eam") {
                guard let a = try e.string("v4") else { throw e.error("v4", "is missing", hint: "e.g. { v4 = \"198.51.100.8/29\", v6 = \"2001:db8:1::8/125\" }") }
                guard let b = try e.string("v6") else { throw e.error("v6", "is missing", hint: "e.g. { v4 = \"198.51.100.8/29\", v6 = \"2001:db8:1::8/125\" }") }
                let p4 = try e.prefix(a, key: "v4")
                let p6 = try e.ipv6Prefix(b, key: "v6")
                guard 32 - Int(p4.length) == 128 - Int(p6.length) else {
                    throw e.error("v6", "\(p6) has a \(128 - Int(p6.length))-bit suffix but \(p4) has \(32 - Int(p4.length))",
                                  hint: "RFC 7757 §3.2: both sides of an entry hold as many addresses, e.g. /29 with /125")
                }
                try e.finish()
                s.eam.append(EAMSetting(ipv4: p4, ipv6: p6))
            }
            if let v = try t.stringArray("translatable") {
                s.translatable = try v.enumerated().map { (i, x) throws(ConfigurationError) in try t.prefix(x, key: "translatable[\(i)]") }
            }
            guard !s.eam.isEmpty || !s.translatable.isEmpty else {
                throw t.error("eam", "is missing", hint: "SIIT needs IPv4 addresses for the IPv6 hosts: eam = [{ v4 = ..., v6 = ... }] and/or translatable = [\"<IPv4 prefix>\"]")
            }
            let all = s.ipv4Prefixes
            for (i, p) in all.enumerated() {
                for q in all[(i + 1)...] where q.contains(p.address) || p.contains(q.address) {
                    let key = i < s.eam.count ? "eam" : "translatable"
                    throw t.error(key, "\(p) overlaps \(q)", hint: "each IPv4 address may stand for one IPv6 host only")
                }
            }
            for (i, e) in s.eam.enumerated() {
                for (j, f) in s.eam.enumerated() where j > i && (f.ipv6.contains(e.ipv6.address) || e.ipv6.contains(f.ipv6.address)) {
                    throw t.error("eam[\(j)].v6", "\(f.ipv6) overlaps eam[\(i)].v6 \(e.ipv6)")
                }
                if s.prefix.contains(e.ipv6.address) || e.ipv6.contains(s.prefix.address) {
                    throw t.error("eam[\(i)].v6", "\(e.ipv6) overlaps the NAT64 prefix \(s.prefix)")
                }
            }
            if s.checkNonGlobal && s.prefix == NAT64Settings.wellKnownPrefix {
                for (i, p) in s.translatable.enumerated() where !p.address.isGloballyReachable {
                    throw t.error("translatable[\(i)]", "\(p) is not globally reachable and cannot be embedded in the Well-Known Prefix 64:ff9b::/96 (RFC 6052 §3.1)",
                                  hint: "use a network-specific prefix such as 2001:db8:64::/96, or set check_non_global = false")
                }
            }
        }
        for (i, r) in s.rfc6791Pool.enumerated() {
            for p in s.ipv4Prefixes where p.contains(r.address) || r.contains(p.address) {
                throw t.error("rfc6791_pool[\(i)]", "\(r) overlaps \(p), which stands for IPv6 hosts", hint: "RFC 6791 addresses must be addresses of their own")
            }
        }
        try t.finish()
        return s
    }

    /// `mode = "stateful"`: RFC 6146 NAPT64. Every value is checked here and by
    /// ``NAPT64Configuration/validate()``, whose complaints are reported under this table's key names.
    static func readStateful(_ t: TableReader, prefix: IPv6Prefix, checkNonGlobal: Bool) throws(ConfigurationError) -> NAPT64Configuration {
        var c = NAPT64Configuration()
        do {
            c.prefix = try NAT64Prefix(prefix, restrictsToGlobalIPv4: checkNonGlobal && prefix == NAT64Settings.wellKnownPrefix)
        } catch {
            throw t.error("prefix", error.problem)
        }
        guard let p = try t.stringArray("pool") else {
            throw t.error("pool", "is missing", hint: "the IPv4 addresses IPv6 hosts share by ports, e.g. pool = [\"198.51.100.64/30\"]")
        }
        c.pool = try p.enumerated().map { (i, x) throws(ConfigurationError) in try t.prefix(x, key: "pool[\(i)]") }
        func ports(_ k: String) throws(ConfigurationError) -> PortSet? {
            guard let rs = try t.stringArray(k) else { return nil }
            var ranges: [ClosedRange<UInt16>] = []
            for (i, r) in rs.enumerated() { ranges.append(try t.portRange(r, key: "\(k)[\(i)]")) }
            guard !ranges.isEmpty else { throw t.error(k, "is empty", hint: "e.g. \(k) = [\"1024-65535\"], or leave the key out for every port") }
            return PortSet(ranges: ranges)
        }
        if let v = try ports("tcp_ports") { c.tcpPorts = v }
        if let v = try ports("udp_ports") { c.udpPorts = v }
        if let v = try ports("icmp_identifiers") { c.icmpIdentifiers = v }
        if let v = try t.string("filtering") {
            guard let f = NAT64Filtering(rawValue: v) else {
                throw t.error("filtering", "is '\(v)'", hint: "use \"endpoint-independent\" or \"address-dependent\" (RFC 6146 §3.5.1)")
            }
            c.filtering = f
        }
        if let v = try t.bool("paired_pooling") { c.pairedPooling = v }
        if let v = try t.bool("port_preservation") { c.portPreservation = v }
        if let v = try t.bool("parity_preservation") { c.parityPreservation = v }
        if let v = try t.int("max_port_attempts", in: 1...65536) { c.maxPortAttempts = v }
        if let v = try t.string("unsolicited_syn") {
            guard let u = NAT64UnsolicitedSYNPolicy(rawValue: v) else { throw t.error("unsolicited_syn", "is '\(v)'", hint: "use \"icmp\" or \"drop\"") }
            c.unsolicitedSYN = u
        }
        if let v = try t.bool("drop_externally_initiated_tcp") { c.dropExternallyInitiatedTCP = v }
        if let v = try t.bool("tcp_probes") { c.tcpProbes = v }
        if let v = try t.bool("hairpinning") { c.hairpinning = v }
        if let v = try t.int("hash_seed", in: 1...Int.max) { c.hashSeed = UInt64(v) }
        if let tt = try t.table("timeouts") {
            func secs(_ k: String, _ lo: Int) throws(ConfigurationError) -> UInt32? {
                try tt.int(k, in: lo...Int(UInt32.max)).map { UInt32($0) }
            }
            if let v = try secs("udp", 1) { c.timeouts.udp = v }
            if let v = try secs("tcp_established", 1) { c.timeouts.tcpEstablished = v }
            if let v = try secs("tcp_transitory", 1) { c.timeouts.tcpTransitory = v }
            if let v = try secs("icmp", 1) { c.timeouts.icmp = v }
            if let v = try secs("port_hold", 0) { c.timeouts.portHold = v }
            if let v = try tt.seconds("tcp_incoming_syn") { c.timeouts.synHoldMilliseconds = v }
            if let v = try tt.seconds("fragment") { c.timeouts.fragmentMilliseconds = v }
            try tt.finish()
        }
        if let l = try t.table("limits") {
            if let v = try l.int("max_sessions", in: 1...(1 << 24)) { c.maxSessions = v }
            if let v = try l.int("max_bib_entries", in: 1...(1 << 24)) { c.maxBindings = v }
            if let v = try l.int("max_hosts", in: 1...(1 << 24)) { c.maxHosts = v }
            if let v = try l.int("max_sessions_per_host", in: 1...(1 << 24)) { c.maxSessionsPerHost = v }
            if let v = try l.int("max_bib_entries_per_host", in: 1...(1 << 24)) { c.maxBindingsPerHost = v }
            if let v = try l.int("max_held_syns", in: 0...65536) { c.maxHeldSYNs = v }
            if let v = try l.int("max_fragment_flows", in: 1...(1 << 20)) { c.maxFragmentFlows = v }
            try l.finish()
        }
        for e in try t.tableArray("static_bib") {
            guard let proto = try e.string("protocol") else { throw e.error("protocol", "is missing", hint: "\"tcp\", \"udp\" or \"icmp\"") }
            guard let pr = NAT64Protocol(rawValue: proto.lowercased()) else {
                throw e.error("protocol", "is '\(proto)'", hint: "\"tcp\", \"udp\" or \"icmp\" (for ICMP the ports are echo identifiers)")
            }
            let example = "e.g. { protocol = \"tcp\", ipv6 = \"2001:db8:1::80\", ipv6_port = 80, ipv4 = \"198.51.100.64\", ipv4_port = 8080 }"
            guard let a6 = try e.string("ipv6") else { throw e.error("ipv6", "is missing", hint: example) }
            guard let p6 = try e.int("ipv6_port", in: 0...65535) else { throw e.error("ipv6_port", "is missing", hint: example) }
            guard let a4 = try e.string("ipv4") else { throw e.error("ipv4", "is missing", hint: example) }
            guard let p4 = try e.int("ipv4_port", in: 0...65535) else { throw e.error("ipv4_port", "is missing", hint: example) }
            c.staticBindings.append(NAT64StaticBinding(proto: pr, ipv6: try e.ipv6Address(a6, key: "ipv6"), ipv6Port: UInt16(p6),
                                                       ipv4: try e.address(a4, key: "ipv4"), ipv4Port: UInt16(p4)))
            try e.finish()
        }
        do {
            try c.validate()
        } catch {
            throw t.error(error.key, error.problem)
        }
        return c
    }

    /// protomask's file: `Nat64Prefix`, `Prometheus`, `[Pool]` with `Prefixes`, `MaxIdleDuration`, `Static`.
    /// The rest of the file may hold swiftnat's own `[tun]`, `[routing]` and `[nat44]` tables.
    static func readProtomask(_ r: TableReader, file: String) throws(ConfigurationError) -> NAT64Settings {
        let prefixText = try r.string("Nat64Prefix") ?? NAT64Settings.wellKnownPrefix.description
        var s = NAT64Settings(mode: .pool, prefix: try r.nat64Prefix(prefixText, key: "Nat64Prefix"))
        s.fromProtomask = true
        if let p = try r.string("Prometheus") {
            guard Self.isSocketAddress(p) else {
                throw r.error("Prometheus", "'\(p)' is not a socket address", hint: "e.g. \"[::]:8080\" or \"127.0.0.1:9100\"")
            }
            s.prometheus = p
        }
        guard let pt = try r.table("Pool") else {
            throw r.error("Pool", "is missing", hint: "add [Pool] with Prefixes = [\"192.0.2.0/24\"] (protomask's format)")
        }
        guard let prefixes = try pt.stringArray("Prefixes") else {
            throw pt.error("Prefixes", "is missing", hint: "e.g. Prefixes = [\"192.0.2.0/24\"]")
        }
        var pool = AddressPoolConfiguration(prefixes: try prefixes.enumerated().map { (i, x) throws(ConfigurationError) in try pt.prefix(x, key: "Prefixes[\(i)]") })
        if let v = try pt.int("MaxIdleDuration", in: 1...Int(AddressPoolConfiguration.maximumIdleSeconds)) { pool.maxIdleSeconds = UInt32(v) }
        for e in try pt.tableArray("Static") {
            pool.staticMappings.append(try e.staticPair(v4Key: "v4", v6Key: "v6"))
        }
        try pt.finish()
        try validatePool(pool, reader: pt, keys: PoolKeys.protomask)
        s.pool = pool
        return s
    }

    struct PoolKeys {
        var prefixes: String
        var maxIdle: String
        var staticList: String
        static let swiftnat = PoolKeys(prefixes: "pool", maxIdle: "max_idle", staticList: "static")
        static let protomask = PoolKeys(prefixes: "Prefixes", maxIdle: "MaxIdleDuration", staticList: "Static")
    }

    /// Runs the pool's own checks and reports them under this file's key names.
    static func validatePool(_ pool: AddressPoolConfiguration, reader t: TableReader, keys: PoolKeys) throws(ConfigurationError) {
        do {
            try pool.validate()
        } catch {
            var k = error.key
            for (a, b) in [("prefixes", keys.prefixes), ("max_idle", keys.maxIdle), ("static", keys.staticList)] where k.hasPrefix(a) {
                k = b + k.dropFirst(a.count)
            }
            throw t.error(k, error.problem)
        }
    }

    /// `host:port`, `[v6]:port`.
    static func isSocketAddress(_ s: String) -> Bool {
        guard let colon = s.lastIndex(of: ":"), let port = UInt16(s[s.index(after: colon)...]) else { return false }
        _ = port
        let host = s[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") { return IPv6Address(host.dropFirst().dropLast()) != nil }
        return IPv4Address(host) != nil
    }

    /// Checks that NAT44 and NAT64 do not claim the same IPv4 addresses.
    static func checkOverlap(_ cfg: DaemonConfiguration) throws(ConfigurationError) {
        guard let n64 = cfg.nat64, let n44 = cfg.nat44 else { return }
        let where64 = n64.fromProtomask ? "Pool.Prefixes" : (n64.mode == .siit ? "nat64.eam" : "nat64.pool")
        for p in n64.ipv4Prefixes {
            for q in n44.pool where q.contains(p.address) || p.contains(q.address) {
                throw ConfigurationError(file: cfg.file, key: where64, problem: "\(p) overlaps the NAT44 pool \(q)",
                                      hint: "NAT44 and NAT64 need IPv4 addresses of their own")
            }
            for q in n44.insidePrefixes where q.contains(p.address) || p.contains(q.address) {
                throw ConfigurationError(file: cfg.file, key: where64, problem: "\(p) overlaps the NAT44 inside prefix \(q)")
            }
            for s in n44.staticNAT where p.contains(s.outside) {
                throw ConfigurationError(file: cfg.file, key: where64, problem: "\(p) holds \(s.outside), a NAT44 static_nat address")
            }
        }
        if n64.mode != .siit && cfg.tun.queues > 1 {
            throw ConfigurationError(file: cfg.file, key: "tun.queues", problem: "is \(cfg.tun.queues); the NAT64 \(n64.mode == .pool ? "address pool" : "BIB and session table") is owned by one packet thread",
                                  hint: "set queues = 1 with a NAT64 pool or stateful NAT64 (SIIT keeps no state and has no such limit)")
        }
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

    /// An RFC 6052 prefix: one of the six lengths, and bits 64-71 (the "u" octet) zero.
    func nat64Prefix(_ s: String, key: String) throws(ConfigurationError) -> IPv6Prefix {
        let p = try ipv6Prefix(s, key: key)
        guard NAT64Settings.allowedPrefixLengths.contains(p.length) else {
            throw error(key, "\(p) is /\(p.length); RFC 6052 §2.2 allows /32, /40, /48, /56, /64 and /96", hint: "e.g. \"64:ff9b::/96\" or \"2001:db8:64::/96\"")
        }
        guard p.address.byte(8) == 0 else {
            throw error(key, "\(p) has bits 64-71 set; RFC 6052 §2.2 reserves them (the u octet) as zero")
        }
        return p
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
