import NATCore
import NATWire

/// RFC 4787 §4.1 mapping behaviour.
public enum MappingBehavior: String, Sendable, Hashable, CaseIterable {
    case endpointIndependent = "endpoint-independent"
    case addressDependent = "address-dependent"
    case addressAndPortDependent = "address-and-port-dependent"
}

/// RFC 4787 §5 filtering behaviour.
public enum FilteringBehavior: String, Sendable, Hashable, CaseIterable {
    case endpointIndependent = "endpoint-independent"
    case addressDependent = "address-dependent"
    case addressAndPortDependent = "address-and-port-dependent"
}

/// A mapping and filtering pair, with the classic names as presets.
public struct Behavior: Sendable, Hashable, CustomStringConvertible {
    public var mapping: MappingBehavior
    public var filtering: FilteringBehavior

    public init(mapping: MappingBehavior, filtering: FilteringBehavior) {
        self.mapping = mapping
        self.filtering = filtering
    }

    /// EIM + EIF.
    public static let fullCone = Behavior(mapping: .endpointIndependent, filtering: .endpointIndependent)
    /// EIM + ADF.
    public static let restrictedCone = Behavior(mapping: .endpointIndependent, filtering: .addressDependent)
    /// EIM + APDF (what Linux masquerade does).
    public static let portRestrictedCone = Behavior(mapping: .endpointIndependent, filtering: .addressAndPortDependent)
    /// APDM + APDF.
    public static let symmetric = Behavior(mapping: .addressAndPortDependent, filtering: .addressAndPortDependent)

    public static let presets: [(String, Behavior)] = [
        ("full-cone", .fullCone), ("restricted-cone", .restrictedCone),
        ("port-restricted-cone", .portRestrictedCone), ("symmetric", .symmetric),
    ]

    /// A preset by name: `full-cone`, `restricted-cone`, `port-restricted-cone`, `symmetric`.
    public init?(preset: String) {
        guard let b = Behavior.presets.first(where: { $0.0 == preset })?.1 else { return nil }
        self = b
    }

    public var presetName: String? { Behavior.presets.first(where: { $0.1 == self })?.0 }

    public var description: String { presetName ?? "\(mapping.rawValue) mapping, \(filtering.rawValue) filtering" }
}

/// Resource limits (RFC 6888 REQ-3, REQ-4).
public struct Limits: Sendable, Hashable {
    /// Sessions one inside host may hold. nil: the default, a sixteenth of the session table (at least
    /// 4096), so that no host takes the table from the others; 0: unlimited (up to the table size).
    public var maxSessionsPerHost: Int? = nil
    public var maxPortsPerHost: Int? = nil
    /// ICMP errors the engine itself generates, per second (RFC 1812 §4.3.2.8 rate limiting).
    public var icmpErrorsPerSecond: Int = 1000
    /// New sessions one inside host may open per second, on average (a token bucket per host, RFC 6888
    /// REQ-4's spirit): a host that sprays new flows is held to this rate and its other packets go on.
    /// 0: unlimited.
    public var newSessionsPerSecond: Int = 2000
    /// New sessions a host may open at once beyond that rate (the bucket's size).
    public var newSessionBurst: Int = 4000
    public init() {}

    /// The per-host session limit in force for a table of `maxSessions` (nil: none).
    public func sessionsPerHost(maxSessions: Int) -> Int? {
        switch maxSessionsPerHost {
        case nil: min(maxSessions, max(4096, maxSessions / 16))
        case 0?: nil
        case let l?: l
        }
    }
}

/// What to do with an unsolicited inbound SYN once its 6-second hold ends (RFC 5382 REQ-4).
public enum UnsolicitedSYNPolicy: String, Sendable, Hashable {
    /// Answer with ICMP port unreachable (3/3), as REQ-4 says SHOULD.
    case icmpPortUnreachable = "icmp"
    /// Drop silently.
    case drop
}

/// A static port forward: outside address and port (or range) to an inside endpoint (ranges map to
/// ranges of equal length). Optional expiry.
public struct PortForward: Sendable, Hashable, CustomStringConvertible {
    public var proto: UInt8
    public var outsideAddress: IPv4Address
    public var outsidePorts: ClosedRange<UInt16>
    public var insideAddress: IPv4Address
    public var insidePort: UInt16
    public var tenant: UInt32
    /// When the forward ends, in engine time; nil for never.
    public var expires: Timestamp?

    public init(proto: UInt8, outsideAddress: IPv4Address, outsidePorts: ClosedRange<UInt16>,
                insideAddress: IPv4Address, insidePort: UInt16, tenant: UInt32 = 0, expires: Timestamp? = nil) {
        self.proto = proto
        self.outsideAddress = outsideAddress
        self.outsidePorts = outsidePorts
        self.insideAddress = insideAddress
        self.insidePort = insidePort
        self.tenant = tenant
        self.expires = expires
    }

    public var description: String {
        let p = proto == IPProtocol.tcp ? "tcp" : proto == IPProtocol.udp ? "udp" : "proto \(proto)"
        let ports = outsidePorts.count == 1 ? "\(outsidePorts.lowerBound)" : "\(outsidePorts.lowerBound)-\(outsidePorts.upperBound)"
        return "\(p) \(outsideAddress):\(ports) -> \(insideAddress):\(insidePort)"
    }
}

/// A destination rewrite for traffic from the inside (mirage-nat's Redirect): packets to
/// `matchAddress:matchPorts` go to `targetAddress:targetPort` instead, and replies come back from the
/// address the inside host used.
public struct Redirect: Sendable, Hashable {
    public var proto: UInt8
    public var matchAddress: IPv4Address
    public var matchPorts: ClosedRange<UInt16>
    public var targetAddress: IPv4Address
    public var targetPort: UInt16
    public init(proto: UInt8, matchAddress: IPv4Address, matchPorts: ClosedRange<UInt16>,
                targetAddress: IPv4Address, targetPort: UInt16) {
        self.proto = proto
        self.matchAddress = matchAddress
        self.matchPorts = matchPorts
        self.targetAddress = targetAddress
        self.targetPort = targetPort
    }
}

/// 1:1 static address NAT: every port of `inside` appears as `outside`.
public struct StaticNAT: Sendable, Hashable {
    public var inside: IPv4Address
    public var outside: IPv4Address
    public var tenant: UInt32
    public init(inside: IPv4Address, outside: IPv4Address, tenant: UInt32 = 0) {
        self.inside = inside
        self.outside = outside
        self.tenant = tenant
    }
}

/// Bounds on fragment handling, so a fragment flood cannot starve unfragmented traffic.
public struct FragmentSettings: Sendable, Hashable {
    /// Datagrams whose first fragment was translated and whose later fragments may still come.
    public var maxFlows = 1024
    /// Out-of-order fragments held until their first fragment arrives.
    public var maxHeld = 64
    /// Largest fragment that can be held.
    public var maxHeldSize = 2048
    public init() {}
}

/// Everything the NAPT44 engine needs to know. Validate with ``validate()`` before use.
public struct NAPT44Configuration: Sendable {
    /// Inside networks; `process` treats packets from them as outbound.
    public var insidePrefixes: [IPv4Prefix] = [IPv4Prefix("100.64.0.0/10")!]
    /// Outside addresses for dynamic mappings.
    public var pool: [IPv4Prefix] = []
    /// RFC 4787 REQ-2: all of one inside host's mappings use one outside address.
    public var pairedPooling = true
    public var tcp: Behavior = .portRestrictedCone
    public var udp: Behavior = .portRestrictedCone
    public var icmp: Behavior = .portRestrictedCone
    /// Outside ports (and ICMP identifiers) dynamic mappings may use: ranges or a MAP-E port set.
    public var ports: PortSet = .all
    /// Keep the inside source port when it is free (RFC 4787 §4.2.1 port preservation).
    public var portPreservation = true
    /// Keep the parity of the source port (RFC 4787 REQ-4, MAY).
    public var parityPreservation = false
    /// How many candidate ports the RFC 6056 search tries before giving up.
    public var maxPortAttempts = 1024
    public var timeouts = Timeouts()
    /// Whether inbound UDP/ICMP packets refresh a session (RFC 4787 REQ-6 makes outbound refresh mandatory;
    /// inbound is a choice). TCP sessions are refreshed by their state machine in both directions.
    public var inboundRefresh = false
    public var unsolicitedSYN: UnsolicitedSYNPolicy = .icmpPortUnreachable
    public var maxSessions = 262_144
    /// Inside hosts tracked for per-host limits; nil means max(1024, maxSessions / 8).
    public var maxHosts: Int? = nil
    /// Unsolicited SYNs held at once.
    public var maxHeldSYNs = 256
    public var limits = Limits()
    public var forwards: [PortForward] = []
    public var redirects: [Redirect] = []
    public var staticNAT: [StaticNAT] = []
    public var fragments = FragmentSettings()
    /// RFC 4787 REQ-9 / RFC 5382 REQ-8 / RFC 5508 REQ-7.
    public var hairpinning = true
    /// Send ICMP 3/13 when a new flow is refused for lack of resources (RFC 5508 REQ-8).
    public var icmpOnResourceLimit = true
    /// Answer echo requests sent to pool addresses that have no mapping.
    public var answerPing = true
    /// Source of the ICMP errors the engine builds; the first pool address when nil.
    public var icmpSourceAddress: IPv4Address? = nil
    /// Hash seed for the tables; random when nil.
    public var hashSeed: UInt64? = nil
    /// Application-level gateways (`[nat44.helpers]`): FTP on port 21 by default.
    public var helpers = HelperSettings()

    public init(pool: [IPv4Prefix] = []) { self.pool = pool }

    /// Sets the same behaviour for TCP, UDP and ICMP.
    public mutating func setBehavior(_ b: Behavior) {
        tcp = b
        udp = b
        icmp = b
    }

    @inlinable public func behavior(for proto: UInt8) -> Behavior {
        proto == IPProtocol.tcp ? tcp : proto == IPProtocol.udp ? udp : icmp
    }

    /// Every pool address, in order.
    public var poolAddresses: [IPv4Address] {
        var out: [IPv4Address] = []
        for p in pool {
            let n = min(p.count, 1 << 20)
            for i in 0..<UInt32(n) { out.append(p.address(at: i)) }
        }
        return out
    }

    /// Checks every value and the configuration as a whole: the first problem found is thrown, naming
    /// its key as in swiftnat's `[nat44]` table (`pool[0]`, `timeouts.udp`, `forward[1].outside`), what is
    /// wrong and, where there is more to say, what to do. The daemon's loader runs exactly these checks.
    public func validate() throws(ConfigurationError) {
        guard !insidePrefixes.isEmpty else {
            throw ConfigurationError(key: "inside", problem: "is empty", hint: "list the inside networks, e.g. [\"100.64.0.0/10\"]")
        }
        guard !pool.isEmpty else {
            throw ConfigurationError(key: "pool", problem: "is empty: give at least one outside address or prefix", hint: "e.g. pool = [\"198.51.100.1/32\"]")
        }
        let total = pool.reduce(UInt64(0)) { $0 + $1.count }
        guard total <= 1 << 20 else { throw ConfigurationError(key: "pool", problem: "has \(total) addresses; at most 1048576 are supported") }
        for (i, p) in pool.enumerated() {
            for q in insidePrefixes where q.contains(p.address) || p.contains(q.address) {
                throw ConfigurationError(key: "pool[\(i)]", problem: "\(p) overlaps inside prefix \(q)")
            }
            for (j, o) in pool.enumerated() where j > i && (o.contains(p.address) || p.contains(o.address)) {
                throw ConfigurationError(key: "pool[\(i)]", problem: "\(p) overlaps pool entry \(o)")
            }
        }
        guard ports.count > 0 else {
            throw ConfigurationError(key: "ports", problem: "leaves no usable port", hint: "e.g. ranges = [\"1024-65535\"]")
        }
        if let e = ConfigurationError.outside(1...65536, key: "max_port_attempts", value: maxPortAttempts) { throw e }
        if let e = ConfigurationError.outside(1...(1 << 26), key: "max_sessions", value: maxSessions) { throw e }
        if let h = maxHosts, let e = ConfigurationError.outside(1...(1 << 24), key: "max_hosts", value: h) { throw e }
        if let e = ConfigurationError.outside(0...65536, key: "max_held_syns", value: maxHeldSYNs) { throw e }
        try validateTimeouts()
        try helpers.validate()
        if let l = limits.maxSessionsPerHost, let e = ConfigurationError.outside(0...Int.max, key: "limits.max_sessions_per_host", value: l) { throw e }
        if let e = ConfigurationError.outside(0...1_000_000, key: "limits.new_sessions_per_second", value: limits.newSessionsPerSecond) { throw e }
        if let e = ConfigurationError.outside(1...1_000_000, key: "limits.new_session_burst", value: limits.newSessionBurst) { throw e }
        if let l = limits.maxPortsPerHost, let e = ConfigurationError.outside(1...Int.max, key: "limits.max_ports_per_host", value: l) { throw e }
        if let e = ConfigurationError.outside(0...1_000_000, key: "limits.icmp_errors_per_second", value: limits.icmpErrorsPerSecond) { throw e }
        if let e = ConfigurationError.outside(1...1_000_000, key: "fragments.max_flows", value: fragments.maxFlows) { throw e }
        if let e = ConfigurationError.outside(0...65536, key: "fragments.max_held", value: fragments.maxHeld) { throw e }
        if let e = ConfigurationError.outside(68...65535, key: "fragments.max_held_size", value: fragments.maxHeldSize) { throw e }
        try validateStatic()
    }

    /// RFC 4787 REQ-5, RFC 5382 REQ-5, RFC 5508 REQ-1 minimums; the SYN hold and fragment state at most a day.
    func validateTimeouts() throws(ConfigurationError) {
        if timeouts.udp < 120 {
            throw ConfigurationError(key: "timeouts.udp", problem: "is \(timeouts.udp) s; RFC 4787 REQ-5 needs at least 120 s")
        }
        if timeouts.tcpEstablished < 7440 {
            throw ConfigurationError(key: "timeouts.tcp_established", problem: "is \(timeouts.tcpEstablished) s; RFC 5382 REQ-5 needs at least 7440 s")
        }
        if timeouts.tcpTransitory < 240 {
            throw ConfigurationError(key: "timeouts.tcp_transitory", problem: "is \(timeouts.tcpTransitory) s; RFC 5382 needs at least 240 s")
        }
        if timeouts.icmp < 60 {
            throw ConfigurationError(key: "timeouts.icmp", problem: "is \(timeouts.icmp) s; RFC 5508 REQ-1 needs at least 60 s")
        }
        if timeouts.other < 1 { throw ConfigurationError(key: "timeouts.other", problem: "is 0 s; it must be at least 1 s") }
        if timeouts.synHoldMilliseconds > 86_400_000 {
            throw ConfigurationError(key: "timeouts.syn_hold", problem: "is \(Double(timeouts.synHoldMilliseconds) / 1000) s; it must be between 0 and 86400")
        }
        if timeouts.fragmentMilliseconds > 86_400_000 {
            throw ConfigurationError(key: "timeouts.fragment", problem: "is \(Double(timeouts.fragmentMilliseconds) / 1000) s; it must be between 0 and 86400")
        }
    }

    /// Forwards, 1:1 NAT and redirects: against the pool and each other.
    func validateStatic() throws(ConfigurationError) {
        var seen = Set<UInt64>()
        for (i, f) in forwards.enumerated() {
            guard f.proto == IPProtocol.tcp || f.proto == IPProtocol.udp else {
                throw ConfigurationError(key: "forward[\(i)].protocol", problem: "must be tcp or udp")
            }
            guard f.outsidePorts.lowerBound > 0 else { throw ConfigurationError(key: "forward[\(i)].outside", problem: "port 0 cannot be forwarded") }
            guard Int(f.insidePort) + f.outsidePorts.count - 1 <= 65535, f.insidePort > 0 else {
                throw ConfigurationError(key: "forward[\(i)].inside", problem: "the range runs past port 65535 or starts at 0")
            }
            guard isOutsideAddress(f.outsideAddress) else {
                throw ConfigurationError(key: "forward[\(i)].outside", problem: "\(f.outsideAddress) is not in the pool")
            }
            for port in f.outsidePorts {
                let k = UInt64(f.proto) << 48 | UInt64(f.outsideAddress.rawValue) << 16 | UInt64(port)
                guard seen.insert(k).inserted else {
                    throw ConfigurationError(key: "forward[\(i)]", problem: "outside port \(port) is already forwarded")
                }
            }
        }
        for (i, s) in staticNAT.enumerated() {
            for p in pool where p.contains(s.outside) {
                throw ConfigurationError(key: "static_nat[\(i)].outside", problem: "\(s.outside) is in the dynamic pool \(p); use an address outside it")
            }
            for (j, t) in staticNAT.enumerated() where j > i && (t.outside == s.outside || (t.inside == s.inside && t.tenant == s.tenant)) {
                throw ConfigurationError(key: "static_nat[\(j)]", problem: "repeats an address of static_nat[\(i)]")
            }
        }
        for (i, r) in redirects.enumerated() {
            guard r.proto == IPProtocol.tcp || r.proto == IPProtocol.udp else {
                throw ConfigurationError(key: "redirect[\(i)].protocol", problem: "must be tcp or udp")
            }
            guard r.targetPort > 0, Int(r.targetPort) + r.matchPorts.count - 1 <= 65535 else {
                throw ConfigurationError(key: "redirect[\(i)].target", problem: "the range runs past port 65535 or starts at 0")
            }
        }
    }

    /// Whether `a` is one of the engine's outside addresses (pool or 1:1).
    /// The inside prefixes, packed for per-packet matching (the caller deallocates it).
    public var insidePrefixMatcher: IPv4PrefixMatcher {
        IPv4PrefixMatcher(insidePrefixes.map { ($0.address.rawValue, $0.mask) })
    }

    /// The outside addresses (pool prefixes and 1:1 outside addresses), packed for per-packet matching
    /// (the caller deallocates it).
    public var outsideMatcher: IPv4PrefixMatcher {
        IPv4PrefixMatcher(pool.map { ($0.address.rawValue, $0.mask) } + staticNAT.map { ($0.outside.rawValue, UInt32.max) })
    }

    public func isOutsideAddress(_ a: IPv4Address) -> Bool {
        pool.contains { $0.contains(a) } || staticNAT.contains { $0.outside == a }
    }
}

extension PortForward {
    /// A forward as people write it: `protocol` "tcp" or "udp", `outside` "198.51.100.1:8080" or
    /// "198.51.100.1:5000-5009", `inside` "100.64.0.10:80" (a range maps onto consecutive inside ports).
    public init(protocol p: String, outside: String, inside: String, tenant: UInt32 = 0,
                expires: Timestamp? = nil) throws(ConfigurationError) {
        let proto: UInt8
        switch p.lowercased() {
        case "tcp": proto = IPProtocol.tcp
        case "udp": proto = IPProtocol.udp
        default: throw ConfigurationError(key: "protocol", problem: "'\(p)' is not tcp or udp")
        }
        func split(_ s: String, _ key: String, _ example: String) throws(ConfigurationError) -> (IPv4Address, Substring) {
            guard let colon = s.lastIndex(of: ":"), let a = IPv4Address(String(s[..<colon])) else {
                throw ConfigurationError(key: key, problem: "'\(s)' must look like \"\(example)\"")
            }
            return (a, s[s.index(after: colon)...])
        }
        func port(_ s: Substring, _ key: String) throws(ConfigurationError) -> UInt16 {
            guard let v = UInt16(s), v > 0 else { throw ConfigurationError(key: key, problem: "'\(s)' is not a port (1-65535)") }
            return v
        }
        let (oa, ops) = try split(outside, "outside", "198.51.100.1:8080")
        let parts = ops.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2 else {
            throw ConfigurationError(key: "outside", problem: "'\(ops)' is not a port or a range like 5000-5009")
        }
        let lo = try port(parts[0], "outside")
        let hi = parts.count == 2 ? try port(parts[1], "outside") : lo
        guard lo <= hi else { throw ConfigurationError(key: "outside", problem: "'\(ops)' runs backwards") }
        let (ia, ips) = try split(inside, "inside", "100.64.0.2:80")
        let ip = try port(ips, "inside")
        guard Int(ip) + Int(hi - lo) <= 65535 else {
            throw ConfigurationError(key: "inside", problem: "the range runs past port 65535 on the inside")
        }
        self.init(proto: proto, outsideAddress: oa, outsidePorts: lo...hi, insideAddress: ia, insidePort: ip, tenant: tenant)
        self.expires = expires
    }

    /// "198.51.100.1:8080" or "198.51.100.1:5000-5009".
    public var outsideText: String {
        outsidePorts.count == 1 ? "\(outsideAddress):\(outsidePorts.lowerBound)" : "\(outsideAddress):\(outsidePorts.lowerBound)-\(outsidePorts.upperBound)"
    }

    public var protocolName: String { proto == IPProtocol.tcp ? "tcp" : proto == IPProtocol.udp ? "udp" : "\(proto)" }
}

/// Application-level gateways (issue 15), `[nat44.helpers]`. RFC 4787 REQ-10 and RFC 5382 REQ-6 leave
/// ALGs to the operator; FTP's is on by default because active-mode FTP cannot work through a NAT without
/// it.
public struct HelperSettings: Sendable, Hashable {
    /// Server ports whose TCP sessions the FTP helper watches (RFC 959, RFC 2428); `[]` turns it off.
    public var ftpPorts: [UInt16] = [21]
    /// Expectations (announced connections) in all, and per control session.
    public var maxExpectations = 256
    public var maxExpectationsPerSession = 4
    /// Seconds an expectation waits for its connection.
    public var expectationTimeout: UInt32 = 120
    /// Sessions a helper may watch at once (each keeps its TCP sequence offsets); more are forwarded
    /// unhelped.
    public var maxHelpedSessions = 4096

    public init() {}

    public func validate() throws(ConfigurationError) {
        for (i, p) in ftpPorts.enumerated() where p == 0 {
            throw ConfigurationError(key: "helpers.ftp[\(i)]", problem: "is 0", hint: "give TCP ports, e.g. ftp = [21]")
        }
        if let e = ConfigurationError.outside(1...65536, key: "helpers.max_expectations", value: maxExpectations) { throw e }
        if let e = ConfigurationError.outside(1...1024, key: "helpers.max_expectations_per_session", value: maxExpectationsPerSession) { throw e }
        if let e = ConfigurationError.outside(1...(1 << 24), key: "helpers.max_helped_sessions", value: maxHelpedSessions) { throw e }
        if expectationTimeout < 1 || expectationTimeout > 86_400 {
            throw ConfigurationError(key: "helpers.expectation_timeout", problem: "is \(expectationTimeout) s; it must be between 1 and 86400")
        }
    }
}
