import NATCore
import NATWire

/// RFC 6146 §3.5.1: how the NAT64 filters packets from the IPv4 side that have a BIB entry but no session.
/// (Mapping is always endpoint-independent, RFC 6146 §3.5.1 "REQ".)
public enum NAT64Filtering: String, Sendable, Hashable, CaseIterable {
    /// Any IPv4 host may use a BIB entry ("endpoint-independent filtering", RFC 4787 §5).
    case endpointIndependent = "endpoint-independent"
    /// Only IPv4 hosts that the IPv6 host has a session with (RFC 6146 §3.5.1 "address-dependent
    /// filtering"); an unsolicited SYN from another host is kept for 6 s (§3.5.2.2).
    case addressDependent = "address-dependent"
}

/// What happens to an unsolicited IPv4 SYN when its 6 seconds (TCP_INCOMING_SYN) run out without an IPv6
/// SYN for the same connection (RFC 6146 §3.5.2.2).
public enum NAT64UnsolicitedSYNPolicy: String, Sendable, Hashable, CaseIterable {
    /// ICMPv4 Destination Unreachable, Port Unreachable (3/3) quoting the SYN, from the address it was sent
    /// to (what RFC 6146 §3.5.2.2 says).
    case icmpPortUnreachable = "icmp"
    /// Dropped silently.
    case drop
}

/// A static BIB entry (RFC 6146 §3.1): an IPv6 transport address bound to an IPv4 one, for one protocol,
/// so that IPv4 hosts can start connections to the IPv6 host. For ICMP the "ports" are echo identifiers.
public struct NAT64StaticBinding: Sendable, Hashable, CustomStringConvertible {
    public var proto: NAT64Protocol
    public var ipv6: IPv6Address
    public var ipv6Port: UInt16
    public var ipv4: IPv4Address
    public var ipv4Port: UInt16

    public init(proto: NAT64Protocol, ipv6: IPv6Address, ipv6Port: UInt16, ipv4: IPv4Address, ipv4Port: UInt16) {
        self.proto = proto
        self.ipv6 = ipv6
        self.ipv6Port = ipv6Port
        self.ipv4 = ipv4
        self.ipv4Port = ipv4Port
    }

    public var description: String { "\(proto) [\(ipv6)]:\(ipv6Port) <-> \(ipv4):\(ipv4Port)" }
}

/// The three protocols a stateful NAT64 keeps BIBs for (RFC 6146 §3.1).
public enum NAT64Protocol: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case tcp
    case udp
    case icmp

    /// The IPv4 protocol number the BIB and session tables are keyed by (ICMPv6 sessions are kept as 1).
    @inlinable public var ipv4Number: UInt8 {
        switch self {
        case .tcp: IPProtocol.tcp
        case .udp: IPProtocol.udp
        case .icmp: IPProtocol.icmp
        }
    }

    public init?(ipv4Number n: UInt8) {
        switch n {
        case IPProtocol.tcp: self = .tcp
        case IPProtocol.udp: self = .udp
        case IPProtocol.icmp: self = .icmp
        default: return nil
        }
    }

    public var description: String { rawValue }
}

/// Everything stateful NAT64 (RFC 6146) needs besides the translator's own settings: the prefix, the IPv4
/// pool and its ports, filtering, timers, limits and static BIB entries. Check with ``validate()``.
public struct NAPT64Configuration: Sendable, Equatable {
    /// The RFC 6052 prefix IPv4 hosts are seen under (Pref64::/n). RFC 6146 §3.5.1: the destination of an
    /// IPv6 packet is translatable when it is under it.
    public var prefix: NAT64Prefix = .wellKnown
    /// The IPv4 pool: the addresses BIB entries are made with (RFC 6146 §3.5.1.1). At most 65 536 addresses.
    public var pool: [IPv4Prefix] = []
    /// IPv4 ports dynamic TCP BIB entries may use.
    public var tcpPorts: PortSet = .all
    /// IPv4 ports dynamic UDP BIB entries may use.
    public var udpPorts: PortSet = .all
    /// ICMPv4 echo identifiers dynamic ICMP BIB entries may use.
    public var icmpIdentifiers: PortSet = .all
    /// RFC 6146 §3.5.1.1 (after RFC 4787 REQ-2): all dynamic BIB entries of one IPv6 host use the same IPv4
    /// address when it has a free port. Off: the next pool address is tried when that one is full.
    public var pairedPooling = true
    /// Use the IPv6 host's own port (or identifier) when it is free. Off by default: ports come from the
    /// RFC 6056 hash (harder to guess, RFC 6146 §5).
    public var portPreservation = false
    /// RFC 6146 §3.5.1.1: keep the port's parity (after RFC 4787 REQ-4).
    public var parityPreservation = true
    /// How many candidate ports the RFC 6056 §3.3.3 search looks at per address before it gives up.
    public var maxPortAttempts = 1024
    /// RFC 6146 §3.5.1: endpoint-independent or address-dependent filtering.
    public var filtering: NAT64Filtering = .endpointIndependent
    /// RFC 6146 §3.5.2.2: "If the security policy requires silently dropping externally initiated TCP
    /// connections": drop every IPv4 SYN that has no session (static BIB entries included).
    public var dropExternallyInitiatedTCP = false
    /// What an unsolicited IPv4 SYN gets after its 6 seconds.
    public var unsolicitedSYN: NAT64UnsolicitedSYNPolicy = .icmpPortUnreachable
    /// RFC 6146 §3.5.2.2: when an ESTABLISHED session's TCP_EST runs out, send the IPv6 host a probe (an
    /// empty ACK with sequence and acknowledgment numbers zero) and move to TRANS; a live host answers and
    /// the session is ESTABLISHED again. Off: the session is deleted.
    public var tcpProbes = true
    /// RFC 6146 §3.8: IPv6 packets to a pool address are translated back to IPv6 (hairpinning).
    public var hairpinning = true
    public var timeouts = Timeouts()
    /// Sessions (TCP, UDP and ICMP together): the table's capacity (RFC 6888 REQ-3: never evicted to
    /// make room; a new flow is refused).
    public var maxSessions = 65536
    /// BIB entries (all protocols); nil: as many as sessions.
    public var maxBindings: Int? = nil
    /// IPv6 hosts with at least one BIB entry; nil: max(1024, maxSessions / 8).
    public var maxHosts: Int? = nil
    /// Sessions one IPv6 host may have at once (RFC 6888 REQ-4); nil: no limit but the table's.
    public var maxSessionsPerHost: Int? = nil
    /// New sessions one IPv6 host may open per second, and at once (a token bucket per host, RFC 6888
    /// REQ-4's spirit; the packet that would open one more is dropped silently: `host_new_session_rate`).
    /// 0: unlimited.
    public var newSessionsPerSecond = 2000
    public var newSessionBurst = 4000
    /// BIB entries (IPv4 ports and identifiers) one IPv6 host may have at once; nil: no limit.
    public var maxBindingsPerHost: Int? = nil
    /// Unsolicited IPv4 SYNs kept at once.
    public var maxHeldSYNs = 256
    /// Datagrams whose first fragment was translated and whose later fragments may still come.
    public var maxFragmentFlows = 1024
    /// Static BIB entries. Their IPv4 addresses must be pool addresses.
    public var staticBindings: [NAT64StaticBinding] = []
    /// Hash seed for the tables and the RFC 6056 port search; random when nil.
    public var hashSeed: UInt64? = nil

    public init(prefix: NAT64Prefix = .wellKnown, pool: [IPv4Prefix] = []) {
        self.prefix = prefix
        self.pool = pool
    }

    /// The ports dynamic BIB entries of `proto` may use.
    public func ports(for proto: NAT64Protocol) -> PortSet {
        switch proto {
        case .tcp: tcpPorts
        case .udp: udpPorts
        case .icmp: icmpIdentifiers
        }
    }

    /// The size of the IPv6 host table: ``maxHosts``, or max(1024, maxSessions / 8).
    public var hostCapacity: Int { maxHosts ?? max(1024, min(maxSessions / 8, 1 << 20)) }

    /// Whether `a` is a pool address.
    public func poolContains(_ a: IPv4Address) -> Bool { pool.contains { $0.contains(a) } }

    /// Every pool address, in order.
    public var poolAddresses: [IPv4Address] {
        var out: [IPv4Address] = []
        for p in pool {
            for i in 0..<UInt32(min(p.count, 1 << 16)) { out.append(p.address(at: i)) }
        }
        return out
    }

    /// Checks every value; the first problem found is thrown, naming its key (as in swiftnat's `[nat64]`
    /// table, `mode = "stateful"`) and what is wrong. The daemon's loader runs exactly these checks.
    public func validate() throws(ConfigurationError) {
        guard !pool.isEmpty else {
            throw ConfigurationError(key: "pool", problem: "is empty: stateful NAT64 needs at least one IPv4 address or prefix")
        }
        var total: UInt64 = 0
        for (i, p) in pool.enumerated() {
            total += p.count
            for (j, o) in pool.enumerated() where j > i && (o.contains(p.address) || p.contains(o.address)) {
                throw ConfigurationError(key: "pool[\(i)]", problem: "\(p) overlaps pool[\(j)] \(o)")
            }
        }
        guard total <= 1 << 16 else {
            throw ConfigurationError(key: "pool", problem: "has \(total) addresses; at most 65536 are supported")
        }
        for proto in NAT64Protocol.allCases where ports(for: proto).count == 0 {
            let k = proto == .icmp ? "icmp_identifiers" : "\(proto)_ports"
            throw ConfigurationError(key: k, problem: "leaves no usable port", hint: "e.g. \(k) = [\"1024-65535\"], or leave the key out for every port")
        }
        if let e = ConfigurationError.outside(1...65536, key: "max_port_attempts", value: maxPortAttempts) { throw e }
        if timeouts.udp < 120 {
            throw ConfigurationError(key: "timeouts.udp", problem:
                "is \(timeouts.udp) s; RFC 6146 §4 does not allow less than UDP_MIN, 120 s")
        }
        if timeouts.tcpEstablished < 7440 {
            throw ConfigurationError(key: "timeouts.tcp_established", problem:
                "is \(timeouts.tcpEstablished) s; RFC 6146 §4 does not allow less than 2 h 4 min (7440 s)")
        }
        if timeouts.tcpTransitory < 240 {
            throw ConfigurationError(key: "timeouts.tcp_transitory", problem:
                "is \(timeouts.tcpTransitory) s; RFC 6146 §4 does not allow less than 4 min (240 s)")
        }
        if timeouts.icmp < 1 {
            throw ConfigurationError(key: "timeouts.icmp", problem: "is 0 s; ICMP sessions need at least 1 s (RFC 6146 §4: 60 s)")
        }
        guard timeouts.synHoldMilliseconds >= 1, timeouts.synHoldMilliseconds <= 600_000 else {
            throw ConfigurationError(key: "timeouts.tcp_incoming_syn", problem:
                "is \(timeouts.synHoldMilliseconds) ms; it must be between 1 ms and 10 min (RFC 6146 §4: 6 s)")
        }
        guard timeouts.fragmentMilliseconds >= 1 else {
            throw ConfigurationError(key: "timeouts.fragment", problem: "is 0 ms; it must be positive (RFC 6146 §4: 2 s)")
        }
        guard maxSessions >= 1, maxSessions <= 1 << 24 else {
            throw ConfigurationError(key: "limits.max_sessions", problem: "is \(maxSessions); it must be between 1 and 16777216")
        }
        if let b = maxBindings, b < 1 || b > 1 << 24 {
            throw ConfigurationError(key: "limits.max_bib_entries", problem: "is \(b); it must be between 1 and 16777216")
        }
        if let h = maxHosts, h < 1 || h > 1 << 24 {
            throw ConfigurationError(key: "limits.max_hosts", problem: "is \(h); it must be between 1 and 16777216")
        }
        if let l = maxSessionsPerHost, l < 1 {
            throw ConfigurationError(key: "limits.max_sessions_per_host", problem: "is \(l); it must be at least 1")
        }
        if let e = ConfigurationError.outside(0...1_000_000, key: "limits.new_sessions_per_second", value: newSessionsPerSecond) { throw e }
        if let e = ConfigurationError.outside(1...1_000_000, key: "limits.new_session_burst", value: newSessionBurst) { throw e }
        if let l = maxBindingsPerHost, l < 1 {
            throw ConfigurationError(key: "limits.max_bib_entries_per_host", problem: "is \(l); it must be at least 1")
        }
        guard maxHeldSYNs >= 0, maxHeldSYNs <= 65536 else {
            throw ConfigurationError(key: "limits.max_held_syns", problem: "is \(maxHeldSYNs); it must be between 0 and 65536")
        }
        guard maxFragmentFlows >= 1, maxFragmentFlows <= 1 << 20 else {
            throw ConfigurationError(key: "limits.max_fragment_flows", problem: "is \(maxFragmentFlows); it must be between 1 and 1048576")
        }
        let bindings = maxBindings ?? maxSessions
        guard staticBindings.count <= bindings else {
            throw ConfigurationError(key: "static_bib", problem:
                "has \(staticBindings.count) entries, more than the \(bindings) BIB entries the table holds")
        }
        let staticHosts = Set(staticBindings.map(\.ipv6)).count
        guard staticHosts <= hostCapacity else {
            throw ConfigurationError(key: "static_bib", problem:
                "names \(staticHosts) IPv6 hosts, more than the \(hostCapacity) the host table holds (limits.max_hosts)")
        }
        for (i, b) in staticBindings.enumerated() {
            guard poolContains(b.ipv4) else {
                throw ConfigurationError(key: "static_bib[\(i)].ipv4", problem: "\(b.ipv4) is not a pool address")
            }
            guard !prefix.contains(b.ipv6) else {
                throw ConfigurationError(key: "static_bib[\(i)].ipv6", problem:
                    "\(b.ipv6) is under the NAT64 prefix \(prefix): it stands for an IPv4 host, not an IPv6 one")
            }
            if b.proto != .icmp {
                guard b.ipv4Port != 0 else {
                    throw ConfigurationError(key: "static_bib[\(i)].ipv4_port", problem: "port 0 cannot be bound")
                }
                guard b.ipv6Port != 0 else {
                    throw ConfigurationError(key: "static_bib[\(i)].ipv6_port", problem: "port 0 cannot be bound")
                }
            }
            for (j, o) in staticBindings.enumerated() where j < i && o.proto == b.proto {
                if o.ipv4 == b.ipv4 && o.ipv4Port == b.ipv4Port {
                    throw ConfigurationError(key: "static_bib[\(i)]", problem:
                        "binds \(b.proto) \(b.ipv4):\(b.ipv4Port) again (static_bib[\(j)] has it)")
                }
                if o.ipv6 == b.ipv6 && o.ipv6Port == b.ipv6Port {
                    throw ConfigurationError(key: "static_bib[\(i)]", problem:
                        "binds \(b.proto) [\(b.ipv6)]:\(b.ipv6Port) again (static_bib[\(j)] has it)")
                }
            }
        }
    }
}
