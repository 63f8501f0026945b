import NAT64
import NATWire

/// How the daemon's NAT64 finds IPv4 addresses for IPv6 hosts.
public enum NAT64Mode: String, Sendable, Equatable, CaseIterable {
    /// protomask's 1:1 mode: each IPv6 host gets a whole IPv4 address from the pool, first come first served.
    case pool
    /// Stateless IP/ICMP translation (RFC 7915): addresses by the RFC 6052 prefix and EAM entries (RFC 7757).
    case siit
    /// Stateful NAPT64 (RFC 6146): IPv6 hosts share the pool's addresses by ports (BIB and sessions).
    case stateful
}

/// One Explicit Address Mapping (RFC 7757 §3.2): an IPv4 prefix and an IPv6 prefix with equally long suffixes.
public struct EAMSetting: Sendable, Equatable, CustomStringConvertible {
    public var ipv4: IPv4Prefix
    public var ipv6: IPv6Prefix
    public init(ipv4: IPv4Prefix, ipv6: IPv6Prefix) {
        self.ipv4 = ipv4
        self.ipv6 = ipv6
    }
    public var description: String { "\(ipv4) <-> \(ipv6)" }
}

/// The daemon's NAT64 (`[nat64]` in swiftnat's TOML, or a protomask configuration file).
public struct NAT64Settings: Sendable, Equatable {
    public var mode: NAT64Mode
    /// The RFC 6052 prefix (/32, /40, /48, /56, /64 or /96) that embeds IPv4 addresses in IPv6 ones.
    public var prefix: IPv6Prefix
    /// Pool mode: the pool (prefixes, idle time, static pairs).
    public var pool: AddressPoolConfiguration?
    /// Stateful mode: the pool, ports, filtering, timeouts, limits and static BIB entries. Its `prefix`
    /// is set from ``prefix`` and ``checkNonGlobal`` when the translator is built.
    public var stateful: NAPT64Configuration?
    /// SIIT: Explicit Address Mappings (RFC 7757).
    public var eam: [EAMSetting] = []
    /// SIIT: IPv4 prefixes whose hosts are IPv6 hosts with IPv4-embedded addresses under `prefix`
    /// (routed into the TUN device; IPv4 packets to them are translated).
    public var translatable: [IPv4Prefix] = []
    /// RFC 7915 §4.2 / RFC 6791: IPv4 source addresses for ICMP errors from IPv6 nodes whose address
    /// cannot be translated. Empty: such errors are dropped.
    public var rfc6791Pool: [IPv4Prefix] = []
    /// RFC 7915 §4 (IPv4 → IPv6, DF clear): packets are fragmented to fit this IPv6 MTU.
    public var lowestIPv6MTU = 1280
    /// RFC 6052 §3.1: refuse to embed non-global IPv4 addresses in the Well-Known Prefix 64:ff9b::/96.
    public var checkNonGlobal = true
    /// Pool mode: where the reservations are kept across restarts (nil: not kept).
    public var stateFile: String?
    /// Seconds between state file writes (also written at stop).
    public var stateInterval = 60
    /// protomask's `Prometheus` key, kept for the log: swiftnat does not serve metrics over HTTP yet.
    public var prometheus: String?
    /// Read from a protomask configuration file.
    public var fromProtomask = false

    public init(mode: NAT64Mode, prefix: IPv6Prefix) {
        self.mode = mode
        self.prefix = prefix
    }

    /// The IPv4 prefixes that stand for IPv6 hosts: routed into the TUN device, and IPv4 packets to
    /// them go to the NAT64 rather than to NAT44.
    public var ipv4Prefixes: [IPv4Prefix] {
        switch mode {
        case .pool: pool?.prefixes ?? []
        case .siit: eam.map(\.ipv4) + translatable
        case .stateful: stateful?.pool ?? []
        }
    }

    /// The Well-Known Prefix of RFC 6052 §2.1.
    public static let wellKnownPrefix = IPv6Prefix("64:ff9b::/96")!
    /// The prefix lengths RFC 6052 §2.2 allows.
    public static let allowedPrefixLengths: [UInt8] = [32, 40, 48, 56, 64, 96]
}
