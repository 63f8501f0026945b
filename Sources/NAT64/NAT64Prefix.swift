import NATCore
import NATWire

/// An IPv6 prefix that IPv4 addresses are embedded in, after RFC 6052 §2.2: IPv4-embedded IPv6
/// addresses for prefix lengths 32, 40, 48, 56, 64 and 96. Bits 64-71 (the "u" octet) are skipped
/// and must be zero; the suffix after the IPv4 bits is zero when embedding and ignored when extracting.
///
/// ```
/// +--+---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+
/// |PL| 0-------------32--40--48--56--64--72--80--88--96--104---------|
/// +--+---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+
/// |32|     prefix    |v4(32)         | u | suffix                    |
/// |40|     prefix        |v4(24)     | u |(8)| suffix                |
/// |48|     prefix            |v4(16) | u | (16)  | suffix            |
/// |56|     prefix                |(8)| u |  v4(24)   | suffix        |
/// |64|     prefix                    | u |   v4(32)      | suffix    |
/// |96|     prefix                                    |    v4(32)     |
/// +--+---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+
/// ```
///
/// The Well-Known Prefix `64:ff9b::/96` (RFC 6052 §2.1) must not represent non-global IPv4 addresses
/// (§3.1): with ``restrictsToGlobalIPv4`` (on by default for the WKP) ``embed(_:)`` and
/// ``extract(_:)`` refuse them. The local-use prefix `64:ff9b:1::/48` (RFC 8215) and network-specific
/// prefixes have no such restriction.
public struct NAT64Prefix: Hashable, Sendable, CustomStringConvertible {
    /// The prefix (host bits zero, u-octet zero).
    public let prefix: IPv6Prefix
    /// RFC 6052 §3.1: refuse non-global IPv4 addresses (RFC 6890 special-purpose blocks). Only
    /// meaningful for the Well-Known Prefix; a lab that uses documentation addresses turns it off.
    public var restrictsToGlobalIPv4: Bool
    /// The prefix mask, precomputed (the packet path checks containment on every packet).
    @usableFromInline let maskHigh: UInt64
    @usableFromInline let maskLow: UInt64

    /// The Well-Known Prefix `64:ff9b::/96` (RFC 6052 §2.1).
    public static let wellKnownPrefix = IPv6Prefix(address: IPv6Address(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), length: 96)!
    /// The local-use prefix `64:ff9b:1::/48` (RFC 8215 §3).
    public static let localUsePrefix = IPv6Prefix(address: IPv6Address(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), length: 48)!
    /// The prefix lengths RFC 6052 §2.2 allows.
    public static let allowedLengths: [UInt8] = [32, 40, 48, 56, 64, 96]

    /// The Well-Known Prefix with the RFC 6052 §3.1 check on.
    public static let wellKnown = NAT64Prefix(unchecked: wellKnownPrefix, restrictsToGlobalIPv4: true)

    /// Checks the prefix against RFC 6052 §2.2: its length must be 32, 40, 48, 56, 64 or 96, and bits
    /// 64-71 must be zero. `restrictsToGlobalIPv4` defaults to true for the Well-Known Prefix and false
    /// for every other prefix.
    public init(_ prefix: IPv6Prefix, restrictsToGlobalIPv4: Bool? = nil) throws(ConfigurationError) {
        guard NAT64Prefix.allowedLengths.contains(prefix.length) else {
            throw ConfigurationError(key: "prefix", problem:
                "\(prefix) is /\(prefix.length); RFC 6052 §2.2 allows /32, /40, /48, /56, /64 and /96",
                                     hint: "e.g. \"64:ff9b::/96\" or \"2001:db8:64::/96\"")
        }
        guard prefix.address.byte(8) == 0 else {
            throw ConfigurationError(key: "prefix", problem:
                "\(prefix) has bits 64-71 set; RFC 6052 §2.2 reserves them (the u octet) as zero")
        }
        self.prefix = prefix
        self.restrictsToGlobalIPv4 = restrictsToGlobalIPv4 ?? (prefix == NAT64Prefix.wellKnownPrefix)
        (maskHigh, maskLow) = IPv6Prefix.mask(prefix.length)
    }

    /// Parses `addr/len` text and checks it as ``init(_:restrictsToGlobalIPv4:)`` does.
    public init(_ text: String, restrictsToGlobalIPv4: Bool? = nil) throws(ConfigurationError) {
        guard let p = IPv6Prefix(text) else {
            throw ConfigurationError(key: "prefix", problem: "\"\(text)\" is not an IPv6 prefix (address/length)")
        }
        try self.init(p, restrictsToGlobalIPv4: restrictsToGlobalIPv4)
    }

    init(unchecked prefix: IPv6Prefix, restrictsToGlobalIPv4: Bool) {
        self.prefix = prefix
        self.restrictsToGlobalIPv4 = restrictsToGlobalIPv4
        (maskHigh, maskLow) = IPv6Prefix.mask(prefix.length)
    }

    public var length: UInt8 { prefix.length }
    /// Whether this is the Well-Known Prefix `64:ff9b::/96`.
    public var isWellKnown: Bool { prefix == NAT64Prefix.wellKnownPrefix }

    public var description: String { prefix.description }

    /// Whether `address` lies under the prefix.
    @inlinable public func contains(_ address: IPv6Address) -> Bool {
        address.high & maskHigh == prefix.address.high && address.low & maskLow == prefix.address.low
    }

    /// RFC 6052 §2.3: the IPv4-embedded IPv6 address for `v4`, or nil when the Well-Known Prefix may not
    /// represent it (§3.1).
    @inlinable
    public func embed(_ v4: IPv4Address) -> IPv6Address? {
        if restrictsToGlobalIPv4 && !SpecialPurposeIPv4.isGlobal(v4) { return nil }
        return embedUnchecked(v4)
    }

    /// As ``embed(_:)`` without the §3.1 check (RFC 7915 §4.1: the source of an ICMPv4 error is
    /// translated even when it is not global, for troubleshooting).
    @inlinable
    public func embedUnchecked(_ v4: IPv4Address) -> IPv6Address {
        let a = UInt64(v4.rawValue)
        let h = prefix.address.high, l = prefix.address.low
        switch prefix.length {
        case 32: return IPv6Address(high: h | a, low: 0)
        case 40: return IPv6Address(high: h | a >> 8, low: (a & 0xFF) << 48)
        case 48: return IPv6Address(high: h | a >> 16, low: (a & 0xFFFF) << 40)
        case 56: return IPv6Address(high: h | a >> 24, low: (a & 0xFF_FFFF) << 32)
        case 64: return IPv6Address(high: h, low: a << 24)
        default: return IPv6Address(high: h, low: l | a)
        }
    }

    /// RFC 6052 §2.3: the IPv4 address embedded in `address`, or nil when `address` is not under the
    /// prefix, its u-octet (bits 64-71) is not zero, or the Well-Known Prefix may not represent the
    /// result (§3.1).
    @inlinable
    public func extract(_ address: IPv6Address) -> IPv4Address? {
        guard let v4 = extractUnchecked(address) else { return nil }
        if restrictsToGlobalIPv4 && !SpecialPurposeIPv4.isGlobal(v4) { return nil }
        return v4
    }

    /// As ``extract(_:)`` without the §3.1 check.
    @inlinable
    public func extractUnchecked(_ address: IPv6Address) -> IPv4Address? {
        guard contains(address) else { return nil }
        let h = address.high, l = address.low
        let v: UInt64
        switch prefix.length {
        case 32: v = h
        case 40: v = (h & 0xFF_FFFF) << 8 | l >> 48 & 0xFF
        case 48: v = (h & 0xFFFF) << 16 | l >> 40 & 0xFFFF
        case 56: v = (h & 0xFF) << 24 | l >> 32 & 0xFF_FFFF
        case 64: v = l >> 24
        default: return IPv4Address(UInt32(truncatingIfNeeded: l))
        }
        // RFC 6052 §2.2: bits 64-71 must be zero.
        guard l >> 56 == 0 else { return nil }
        return IPv4Address(UInt32(truncatingIfNeeded: v))
    }
}

/// RFC 6890's special-purpose IPv4 blocks that are not globally reachable ("Global: False"), plus the
/// multicast block 224.0.0.0/4 (RFC 5771; RFC 5735 §3, which RFC 6052 §3.1 cites, lists it too).
/// RFC 6052 §3.1 forbids representing these with the Well-Known Prefix.
public enum SpecialPurposeIPv4 {
    /// (network, prefix length) pairs, in address order.
    public static let nonGlobalBlocks: [(network: IPv4Address, length: UInt8)] = [
        (IPv4Address(0, 0, 0, 0), 8),         // "This host on this network" (RFC 1122 §3.2.1.3)
        (IPv4Address(10, 0, 0, 0), 8),        // Private-Use (RFC 1918)
        (IPv4Address(100, 64, 0, 0), 10),     // Shared Address Space (RFC 6598)
        (IPv4Address(127, 0, 0, 0), 8),       // Loopback (RFC 1122 §3.2.1.3)
        (IPv4Address(169, 254, 0, 0), 16),    // Link Local (RFC 3927)
        (IPv4Address(172, 16, 0, 0), 12),     // Private-Use (RFC 1918)
        (IPv4Address(192, 0, 0, 0), 24),      // IETF Protocol Assignments (RFC 6890 §2.1)
        (IPv4Address(192, 0, 2, 0), 24),      // Documentation TEST-NET-1 (RFC 5737)
        (IPv4Address(192, 168, 0, 0), 16),    // Private-Use (RFC 1918)
        (IPv4Address(198, 18, 0, 0), 15),     // Benchmarking (RFC 2544)
        (IPv4Address(198, 51, 100, 0), 24),   // Documentation TEST-NET-2 (RFC 5737)
        (IPv4Address(203, 0, 113, 0), 24),    // Documentation TEST-NET-3 (RFC 5737)
        (IPv4Address(224, 0, 0, 0), 4),       // Multicast (RFC 5771)
        (IPv4Address(240, 0, 0, 0), 4),       // Reserved (RFC 1112 §4), includes 255.255.255.255/32
    ]

    /// Whether `a` is globally reachable: outside every block of ``nonGlobalBlocks``. Branches on the
    /// first octet so that the common case costs a few comparisons and no table walk.
    @inlinable
    public static func isGlobal(_ a: IPv4Address) -> Bool {
        let v = a.rawValue
        switch v >> 24 {
        case 0, 10, 127: return false
        case 100: return v & 0xFFC0_0000 != 0x6440_0000
        case 169: return v & 0xFFFF_0000 != 0xA9FE_0000
        case 172: return v & 0xFFF0_0000 != 0xAC10_0000
        case 192:
            let n24 = v & 0xFFFF_FF00
            return n24 != 0xC000_0000 && n24 != 0xC000_0200 && v & 0xFFFF_0000 != 0xC0A8_0000
        case 198: return v & 0xFFFE_0000 != 0xC612_0000 && v & 0xFFFF_FF00 != 0xC633_6400
        case 203: return v & 0xFFFF_FF00 != 0xCB00_7100
        case 224...255: return false
        default: return true
        }
    }
}
