import NAT64
import NATCore
import NATWire

/// How the daemon's NAT64 finds IPv4 addresses for IPv6 hosts, with what that way needs.
public enum NAT64Mode: Sendable, Equatable {
    /// protomask's 1:1 mode: each IPv6 host gets a whole IPv4 address from the pool, first come first served.
    case pool(NAT64PoolSettings)
    /// Stateless IP/ICMP translation (RFC 7915): addresses by the RFC 6052 prefix and EAM entries (RFC 7757).
    case siit(SIITSettings)
    /// Stateful NAPT64 (RFC 6146): IPv6 hosts share the pool's addresses by ports (BIB and sessions). The
    /// configuration's `prefix` is set from ``NAT64Settings/prefix`` and ``NAT64Settings/checkNonGlobal``
    /// when the translator is built.
    case stateful(NAPT64Configuration)

    /// `pool`, `siit` or `stateful`: the value of `mode` in `[nat64]`.
    public var name: String {
        switch self {
        case .pool: "pool"
        case .siit: "siit"
        case .stateful: "stateful"
        }
    }

    /// The names `mode` takes.
    public static let names = ["pool", "siit", "stateful"]
}

/// Pool mode (protomask's): the address pool, RFC 6791 addresses, and where the reservations are kept.
public struct NAT64PoolSettings: Sendable, Equatable {
    /// The pool: prefixes, idle time, static pairs.
    public var pool: AddressPoolConfiguration
    /// RFC 7915 §4.2 / RFC 6791: IPv4 source addresses for ICMP errors from IPv6 nodes that have no pool
    /// address. Empty: such errors are dropped.
    public var rfc6791Pool: [IPv4Prefix] = []
    /// Where the reservations are kept across restarts (nil: not kept).
    public var stateFile: String?
    /// Seconds between state file writes (also written at stop).
    public var stateInterval = 60

    public init(pool: AddressPoolConfiguration) { self.pool = pool }
}

/// SIIT (RFC 7915, stateless): which IPv4 addresses stand for which IPv6 hosts.
public struct SIITSettings: Sendable, Equatable {
    /// Explicit Address Mappings (RFC 7757).
    public var eam: [EAMSetting] = []
    /// IPv4 prefixes whose hosts are IPv6 hosts with IPv4-embedded addresses under the NAT64 prefix
    /// (routed into the TUN device; IPv4 packets to them are translated).
    public var translatable: [IPv4Prefix] = []
    /// RFC 7915 §4.2 / RFC 6791: IPv4 source addresses for ICMP errors from IPv6 nodes whose address
    /// cannot be translated. Empty: such errors are dropped.
    public var rfc6791Pool: [IPv4Prefix] = []
    /// No RFC 6052 prefix: every address on both sides is translated by the EAM table alone (RFC 7757
    /// §3.3 with no pool6; `prefix = "none"`). IPv4 hosts then need EAM entries of their own
    /// (``EAMSetting/ipv4Host``), and the translator's own ICMPv6 errors need `pool6791v6`.
    public var eamOnly = false

    public init(eam: [EAMSetting] = [], translatable: [IPv4Prefix] = []) {
        self.eam = eam
        self.translatable = translatable
    }

    /// Every IPv4 prefix that stands for IPv6 hosts: the EAM entries', then the translatable ones.
    public var ipv4Prefixes: [IPv4Prefix] { eam.filter { !$0.ipv4Host }.map(\.ipv4) + translatable }

    /// The IPv6 prefixes that stand for IPv4 hosts besides the NAT64 prefix (EAM entries of IPv4 hosts):
    /// routed into the TUN device.
    public var ipv6Routes: [IPv6Prefix] { eam.filter(\.ipv4Host).map(\.ipv6) }

    /// The translator's ``SIITConfiguration`` for these settings under `prefix` (the EAM rows checked as
    /// ``ExplicitAddressMapping`` checks them, keys as in `[nat64]`).
    public func translatorConfiguration(prefix: NAT64Prefix) throws(ConfigurationError) -> SIITConfiguration {
        var rows: [ExplicitAddressMapping] = []
        for (i, e) in eam.enumerated() {
            do {
                rows.append(try ExplicitAddressMapping(ipv4: e.ipv4, ipv6: e.ipv6))
            } catch {
                throw ConfigurationError(key: "eam[\(i)].v6", problem: error.problem, hint: error.hint)
            }
        }
        return SIITConfiguration(prefix: eamOnly ? nil : prefix, explicitMappings: rows, rfc6791Pool: rfc6791Pool)
    }

    /// Checks the entries against each other and against the NAT64 prefix; keys as in `[nat64]`. Every EAM
    /// form RFC 7757 §3.2 allows is taken (any prefix length with suffixes of equal size, a bare address as
    /// a /32 ↔ /128, entries nested in others: longest match first, §3.3); stricter than the translator
    /// only where the daemon's routes need it: no entry under the NAT64 prefix, none overlapping
    /// `translatable`.
    public func validate(prefix: IPv6Prefix, checkNonGlobal: Bool) throws(ConfigurationError) {
        if eamOnly, !translatable.isEmpty {
            throw ConfigurationError(key: "translatable", problem: "needs the RFC 6052 prefix, and prefix is \"none\"",
                                     hint: "give IPv6 hosts EAM entries instead, or set a prefix")
        }
        guard !eam.isEmpty || !translatable.isEmpty else {
            throw ConfigurationError(key: "eam", problem: "is missing",
                                     hint: "SIIT needs IPv4 addresses for the IPv6 hosts: eam = [{ v4 = ..., v6 = ... }] and/or translatable = [\"<IPv4 prefix>\"]")
        }
        for (i, e) in eam.enumerated() where 32 - Int(e.ipv4.length) != 128 - Int(e.ipv6.length) {
            throw ConfigurationError(key: "eam[\(i)].v6", problem: "\(e.ipv6) has a \(128 - Int(e.ipv6.length))-bit suffix but \(e.ipv4) has \(32 - Int(e.ipv4.length))",
                                     hint: "RFC 7757 §3.2: both sides of an entry hold as many addresses, e.g. /29 with /125")
        }
        // RFC 7757 §3.2, §3.3: EAM entries may nest (a longer prefix inside a shorter one; the longest match
        // wins, as the translator's table does); identical prefixes, and EAM entries overlapping the
        // translatable prefixes, are refused.
        let all = ipv4Prefixes
        for (i, p) in all.enumerated() {
            for (k, q) in all[(i + 1)...].enumerated() where q.contains(p.address) || p.contains(q.address) {
                if i + 1 + k < eam.count && p.length != q.length { continue }
                throw ConfigurationError(key: i < eam.count ? "eam" : "translatable", problem: "\(p) overlaps \(q)",
                                         hint: "each IPv4 address may stand for one IPv6 host only (EAM entries may nest, RFC 7757 §3.3: longest match)")
            }
        }
        for (i, e) in eam.enumerated() {
            for (j, f) in eam.enumerated() where j > i && (f.ipv6.contains(e.ipv6.address) || e.ipv6.contains(f.ipv6.address))
                && f.ipv6.length == e.ipv6.length {
                throw ConfigurationError(key: "eam[\(j)].v6", problem: "\(f.ipv6) is eam[\(i)].v6 again")
            }
            if !eamOnly && (prefix.contains(e.ipv6.address) || e.ipv6.contains(prefix.address)) {
                throw ConfigurationError(key: "eam[\(i)].v6", problem: "\(e.ipv6) overlaps the NAT64 prefix \(prefix)")
            }
        }
        if checkNonGlobal && prefix == NAT64Settings.wellKnownPrefix {
            for (i, p) in translatable.enumerated() where !p.address.isGloballyReachable {
                throw ConfigurationError(key: "translatable[\(i)]", problem: "\(p) is not globally reachable and cannot be embedded in the Well-Known Prefix 64:ff9b::/96 (RFC 6052 §3.1)",
                                         hint: "use a network-specific prefix such as 2001:db8:64::/96, or set check_non_global = false")
            }
        }
    }
}

/// One Explicit Address Mapping (RFC 7757 §3.2): an IPv4 prefix and an IPv6 prefix with equally long suffixes.
public struct EAMSetting: Sendable, Equatable, CustomStringConvertible {
    public var ipv4: IPv4Prefix
    public var ipv6: IPv6Prefix
    /// The entry stands for IPv4 hosts (`ipv4_host = true`): its IPv6 side is routed into the TUN device
    /// and its IPv4 side is not. By default an entry stands for IPv6 hosts (its IPv4 side is routed).
    /// RFC 7757 entries have no direction; only the daemon's routes need one.
    public var ipv4Host: Bool
    public init(ipv4: IPv4Prefix, ipv6: IPv6Prefix, ipv4Host: Bool = false) {
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.ipv4Host = ipv4Host
    }
    public var description: String { "\(ipv4) <-> \(ipv6)\(ipv4Host ? " (ipv4 host)" : "")" }
}

/// The daemon's NAT64 (`[nat64]` in swiftnat's TOML, or a protomask configuration file). Check with
/// ``validate()``; its keys are the file's (protomask's `Pool.Prefixes` when ``fromProtomask``).
public struct NAT64Settings: Sendable, Equatable {
    public var mode: NAT64Mode
    /// The RFC 6052 prefix (/32, /40, /48, /56, /64 or /96) that embeds IPv4 addresses in IPv6 ones.
    public var prefix: IPv6Prefix
    /// RFC 7915 §4 (IPv4 → IPv6, DF clear): packets are fragmented to fit this IPv6 MTU.
    public var lowestIPv6MTU = 1280
    /// RFC 6052 §3.1: refuse to embed non-global IPv4 addresses in the Well-Known Prefix 64:ff9b::/96.
    public var checkNonGlobal = true
    /// Read from a protomask configuration file.
    public var fromProtomask = false
    /// Jool's pool6791v4 (`pool6791v4`, in every mode; `rfc6791_pool` is the same in pool and SIIT mode):
    /// IPv4 addresses for the source of translated ICMPv6 errors whose IPv6 source has no IPv4 form
    /// (RFC 6791 §4, RFC 7915 §5.2), and the first one for the translator's own ICMPv4 errors (RFC 7915
    /// §4.4). Empty: the NAT64's own address (the first of its IPv4 prefixes), as Jool uses its host's.
    public var pool6791v4: [IPv4Prefix] = []
    /// Jool's pool6791v6 (`pool6791v6`): the IPv6 source of the translator's own ICMPv6 errors (RFC 7915
    /// §5.4), and in SIIT of translated ICMPv4 errors whose IPv4 source has no IPv6 form. Nil: the IPv4
    /// error source embedded under the NAT64 prefix.
    public var pool6791v6: IPv6Address?
    /// RFC 7915 §5.1 / §4.1: the MTU of the link translated IPv4 packets leave by (`ipv4_mtu`); nil: the
    /// TUN device's.
    public var ipv4MTU: Int?
    /// RFC 7915 §4.1: the MTU of the link translated IPv6 packets leave by (`ipv6_mtu`); nil: the TUN
    /// device's (at least 1280).
    public var ipv6MTU: Int?
    /// RFC 7915 §4.5: an unfragmented IPv4 UDP datagram with a zero checksum is given one (`compute`) or
    /// dropped with ICMPv4 3/13 (`drop`): `zero_udp_checksum`.
    public var zeroUDPChecksum: ZeroUDPChecksumPolicy = .compute
    /// RFC 7915 §4.1 / §5.1: copy the traffic class / TOS (`traffic_class = "copy"`, nil) or write 0
    /// (`"zero"`, Jool's zeroize-traffic-class).
    public var trafficClassOverride: UInt8?

    public init(mode: NAT64Mode, prefix: IPv6Prefix = NAT64Settings.wellKnownPrefix) {
        self.mode = mode
        self.prefix = prefix
    }

    /// The IPv4 prefixes that stand for IPv6 hosts: routed into the TUN device, and IPv4 packets to
    /// them go to the NAT64 rather than to NAT44.
    public var ipv4Prefixes: [IPv4Prefix] {
        switch mode {
        case .pool(let p): p.pool.prefixes
        case .siit(let s): s.ipv4Prefixes
        case .stateful(let c): c.pool
        }
    }

    /// Whether the RFC 6052 prefix is used (not in SIIT with `prefix = "none"`).
    public var usesPrefix: Bool {
        if case .siit(let s) = mode { return !s.eamOnly }
        return true
    }

    /// IPv6 prefixes routed into the TUN device besides ``prefix``: EAM entries of IPv4 hosts.
    public var ipv6Routes: [IPv6Prefix] {
        if case .siit(let s) = mode { return s.ipv6Routes }
        return []
    }

    /// RFC 6791 addresses (pool and SIIT mode; stateful NAT64 sends translated errors from the pool
    /// address of the session, RFC 6146 §3.5.4).
    public var rfc6791Pool: [IPv4Prefix] {
        switch mode {
        case .pool(let p): p.rfc6791Pool + pool6791v4
        case .siit(let s): s.rfc6791Pool + pool6791v4
        case .stateful: pool6791v4
        }
    }

    /// One line for the daemon's `ready` log: `nat64=MODE prefix=… ipv4=…` and what the mode adds.
    public var summary: String {
        var detail = ""
        switch mode {
        case .pool(let p): detail = " max_idle=\(p.pool.maxIdleSeconds)s static=\(p.pool.staticMappings.count)\(p.stateFile.map { " state_file=\($0)" } ?? "")"
        case .siit: break
        case .stateful(let c): detail = " filtering=\(c.filtering.rawValue) max_sessions=\(c.maxSessions) static_bib=\(c.staticBindings.count)"
        }
        return "nat64=\(mode.name)\(fromProtomask ? "(protomask file)" : "") prefix=\(usesPrefix ? prefix.description : "none") ipv4=\(ipv4Prefixes.map(\.description).joined(separator: ","))\(detail)"
    }

    /// The prefix as the translator takes it, with the RFC 6052 §3.1 check on for the Well-Known Prefix
    /// unless ``checkNonGlobal`` is off.
    public func nat64Prefix() throws(ConfigurationError) -> NAT64Prefix {
        try NAT64Prefix(prefix, restrictsToGlobalIPv4: checkNonGlobal && prefix == NAT64Settings.wellKnownPrefix)
    }

    /// Checks every value, as ``NAT64Configuration``, ``AddressPoolConfiguration``,
    /// ``NAPT64Configuration`` and ``SIITSettings`` do and against each other: keys as in `[nat64]`, or
    /// protomask's names (`Nat64Prefix`, `Pool.Prefixes`, `Pool.MaxIdleDuration`, `Pool.Static`) for a
    /// protomask file.
    public func validate() throws(ConfigurationError) {
        do {
            try validateKeys()
        } catch {
            throw fromProtomask ? Self.protomaskKey(error) : error
        }
    }

    func validateKeys() throws(ConfigurationError) {
        let p = try nat64Prefix()
        if let e = ConfigurationError.outside(1280...65535, key: "lowest_ipv6_mtu", value: lowestIPv6MTU,
                                              hint: "1280 is the IPv6 minimum (RFC 8200 §5)") { throw e }
        if let m = ipv6MTU {
            if let e = ConfigurationError.outside(1280...65535, key: "ipv6_mtu", value: m, hint: "1280 is the IPv6 minimum (RFC 8200 §5)") { throw e }
            guard lowestIPv6MTU <= m else {
                throw ConfigurationError(key: "lowest_ipv6_mtu", problem: "is \(lowestIPv6MTU), larger than ipv6_mtu \(m)", hint: "fragments must fit the IPv6 link")
            }
        }
        if let m = ipv4MTU, let e = ConfigurationError.outside(68...65535, key: "ipv4_mtu", value: m, hint: "68 is the IPv4 minimum (RFC 791)") { throw e }
        if !pool6791v4.isEmpty {
            if case .pool(let s) = mode, !s.rfc6791Pool.isEmpty {
                throw ConfigurationError(key: "pool6791v4", problem: "is given with rfc6791_pool", hint: "they are the same pool: keep one")
            }
            if case .siit(let s) = mode, !s.rfc6791Pool.isEmpty {
                throw ConfigurationError(key: "pool6791v4", problem: "is given with rfc6791_pool", hint: "they are the same pool: keep one")
            }
            var total: UInt64 = 0
            for (i, r) in pool6791v4.enumerated() {
                total += r.count
                guard total <= 65536 else {
                    throw ConfigurationError(key: "pool6791v4[\(i)]", problem: "makes the RFC 6791 pool larger than 65536 addresses")
                }
            }
        }
        if let a = pool6791v6, prefix.contains(a) {
            throw ConfigurationError(key: "pool6791v6", problem: "\(a) is under the NAT64 prefix \(prefix)", hint: "use an address of the translator's own, outside the prefix")
        }
        switch mode {
        case .pool(let s):
            do {
                try s.pool.validate()
            } catch {
                var e = error
                if e.key.hasPrefix("prefixes") { e.key = "pool" + e.key.dropFirst("prefixes".count) }
                throw e
            }
            if let f = s.stateFile, f.isEmpty {
                throw ConfigurationError(key: "state_file", problem: "is empty", hint: "give a path such as /var/lib/swiftnat/nat64.state, or leave the key out")
            }
            if let e = ConfigurationError.outside(1...86400, key: "state_interval", value: s.stateInterval) { throw e }
            var total: UInt64 = 0
            for (i, r) in s.rfc6791Pool.enumerated() {
                total += r.count
                guard total <= 65536 else {
                    throw ConfigurationError(key: "rfc6791_pool[\(i)]", problem: "makes the RFC 6791 pool larger than 65536 addresses")
                }
            }
        case .siit(let s):
            try s.validate(prefix: prefix, checkNonGlobal: checkNonGlobal)
            try s.translatorConfiguration(prefix: p).validate()
        case .stateful(var c):
            c.prefix = p
            try c.validate()
        }
        for (i, r) in rfc6791Pool.enumerated() {
            for q in ipv4Prefixes where q.contains(r.address) || r.contains(q.address) {
                throw ConfigurationError(key: "rfc6791_pool[\(i)]", problem: "\(r) overlaps \(q), which stands for IPv6 hosts",
                                         hint: "RFC 6791 addresses must be addresses of their own")
            }
        }
    }

    /// A `[nat64]` key as protomask names it.
    static func protomaskKey(_ error: ConfigurationError) -> ConfigurationError {
        var e = error
        for (a, b) in [("prefix", "Nat64Prefix"), ("pool", "Pool.Prefixes"), ("max_idle", "Pool.MaxIdleDuration"), ("static", "Pool.Static")]
        where e.key == a || e.key.hasPrefix(a + "[") || e.key.hasPrefix(a + ".") {
            e.key = b + e.key.dropFirst(a.count)
            break
        }
        return e
    }

    /// The Well-Known Prefix of RFC 6052 §2.1.
    public static let wellKnownPrefix = IPv6Prefix("64:ff9b::/96")!
    /// The prefix lengths RFC 6052 §2.2 allows.
    public static let allowedPrefixLengths: [UInt8] = NAT64Prefix.allowedLengths
}
