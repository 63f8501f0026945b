import NATCore
import NATWire

/// What to do with an IPv4 UDP datagram whose checksum is zero ("no checksum", RFC 768), which IPv6 does
/// not allow (RFC 8200 §8.1). RFC 7915 §4.5 asks for a setting with these two choices.
public enum ZeroUDPChecksumPolicy: String, Sendable, Hashable, CaseIterable {
    /// Compute the checksum and forward (the default: costs one pass over the payload).
    case compute
    /// Drop the datagram (counted as `udp_checksum_zero`).
    case drop
}

/// The translator's settings (RFC 7915): MTUs, the addresses of its own ICMP errors, traffic class and
/// checksum choices. The address mapping (SIIT, pool, NAPT64) is configured separately.
public struct NAT64Configuration: Sendable, Hashable {
    /// RFC 7915 §4.1 "lowest-ipv6-mtu": the smallest MTU of the IPv6 network. IPv4 packets without DF
    /// are fragmented so that every IPv6 packet fits into it. At least 1280 (RFC 8200 §5); the RFC asks
    /// that it be settable to a larger value when the operator knows it.
    public var lowestIPv6MTU: Int = 1280
    /// The MTU of the link the translated IPv6 packets leave by (RFC 7915 §4.1: an IPv4 packet with DF
    /// whose IPv6 translation exceeds it gets ICMPv4 "Fragmentation Needed" with this MTU − 20).
    public var ipv6MTU: Int = 1500
    /// The MTU of the link the translated IPv4 packets leave by (RFC 7915 §5.1: larger translations of
    /// packets that may not be fragmented get ICMPv6 "Packet Too Big"; others are fragmented as an IPv4
    /// router would, RFC 791 §2.3).
    public var ipv4MTU: Int = 1500
    /// The source address of ICMPv4 errors the translator itself sends to IPv4 hosts (TTL exceeded,
    /// Fragmentation Needed, Source Route Failed). RFC 7915 §4.4. Nil: such errors are not sent.
    public var ipv4ErrorSource: IPv4Address?
    /// The source address of ICMPv6 errors the translator itself sends to IPv6 hosts (Hop Limit exceeded,
    /// Packet Too Big, Parameter Problem). RFC 7915 §5.4. Nil: such errors are not sent.
    public var ipv6ErrorSource: IPv6Address?
    /// RFC 7915 §4.4/§5.4: send ICMP "administratively prohibited" (ICMPv4 3/13, ICMPv6 1/1) when a
    /// packet is dropped because its addresses cannot be translated. Off by default.
    public var sendProhibitedErrors: Bool = false
    /// RFC 7915 §4.1/§5.1: copy the TOS / traffic class (default). When set, the translator writes this
    /// value instead ("ignore the IPv4 TOS and always set the IPv6 traffic class to zero" is `0`).
    public var trafficClassOverride: UInt8?
    /// RFC 4443 §2.4 (f), RFC 1812 §4.3.2.8: at most this many ICMP errors generated per second (both
    /// families together; translated errors do not count). Nil: no limit. Errors over the limit are not
    /// sent and are counted as `icmp_rate_limited`.
    public var icmpErrorsPerSecond: Int? = 1000
    /// RFC 7915 §4.5: unfragmented IPv4 UDP with a zero checksum. Fragmented ones are always dropped.
    public var zeroUDPChecksum: ZeroUDPChecksumPolicy = .compute
    /// The first IPv4 Identification the translator uses for unfragmented IPv6 packets it sends with DF
    /// clear (RFC 7915 §5.1, RFC 6864 §4.2: unique per source, destination and protocol while the
    /// datagram may live); it counts up from here. Set it for reproducible output.
    public var identificationSeed: UInt16 = 1
    /// How many generated packets (fragments, ICMP errors) can wait for ``NAT64Translator/nextOutput()``.
    public var outboxSlots: Int = 64

    public init() {}

    /// Checks every value; the first problem found is thrown, naming its key.
    public func validate() throws(ConfigurationError) {
        guard lowestIPv6MTU >= 1280, lowestIPv6MTU <= 65535 else {
            throw ConfigurationError(key: "lowest_ipv6_mtu", problem:
                "is \(lowestIPv6MTU); it must be between 1280 (the IPv6 minimum, RFC 8200 §5) and 65535")
        }
        guard ipv6MTU >= 1280, ipv6MTU <= 65535 else {
            throw ConfigurationError(key: "ipv6_mtu", problem: "is \(ipv6MTU); it must be between 1280 and 65535")
        }
        guard lowestIPv6MTU <= ipv6MTU else {
            throw ConfigurationError(key: "lowest_ipv6_mtu", problem:
                "is \(lowestIPv6MTU), larger than ipv6_mtu \(ipv6MTU): fragments would not fit the IPv6 link")
        }
        guard ipv4MTU >= 68, ipv4MTU <= 65535 else {
            throw ConfigurationError(key: "ipv4_mtu", problem:
                "is \(ipv4MTU); it must be between 68 (the IPv4 minimum, RFC 791) and 65535")
        }
        if let r = icmpErrorsPerSecond, r < 0 {
            throw ConfigurationError(key: "icmp_errors_per_second", problem: "is \(r); it must be 0 or more")
        }
        guard outboxSlots >= 1, outboxSlots <= 4096 else {
            throw ConfigurationError(key: "outbox_slots", problem: "is \(outboxSlots); it must be between 1 and 4096")
        }
    }
}
