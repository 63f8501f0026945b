import NATCore
import NATWire

/// One row of the Explicit Address Mapping table (RFC 7757 §3.1): an IPv4 prefix and an IPv6 prefix
/// with suffixes of equal length; address `n` of one maps to address `n` of the other.
public struct ExplicitAddressMapping: Sendable, Hashable, CustomStringConvertible {
    public let ipv4: IPv4Prefix
    public let ipv6: IPv6Prefix

    /// RFC 7757 §3.2: the suffix lengths (32 − IPv4 length, 128 − IPv6 length) must be equal.
    public init(ipv4: IPv4Prefix, ipv6: IPv6Prefix) throws(ConfigurationError) {
        guard 32 - Int(ipv4.length) == 128 - Int(ipv6.length) else {
            throw ConfigurationError(key: "eam", problem:
                "\(ipv4) and \(ipv6) have suffixes of \(32 - Int(ipv4.length)) and \(128 - Int(ipv6.length)) bits; RFC 7757 §3.2 needs them equal")
        }
        self.ipv4 = ipv4
        self.ipv6 = ipv6
    }

    /// Parses `"192.0.2.0/24"` and `"2001:db8:aaaa::/120"`.
    public init(ipv4 v4: String, ipv6 v6: String) throws(ConfigurationError) {
        guard let a = IPv4Prefix(v4) else {
            throw ConfigurationError(key: "eam", problem: "\"\(v4)\" is not an IPv4 prefix with its host bits zero")
        }
        guard let b = IPv6Prefix(v6) else {
            throw ConfigurationError(key: "eam", problem: "\"\(v6)\" is not an IPv6 prefix with its host bits zero")
        }
        try self.init(ipv4: a, ipv6: b)
    }

    /// The number of suffix bits.
    public var suffixLength: Int { 32 - Int(ipv4.length) }

    public var description: String { "\(ipv4) <-> \(ipv6)" }
}

/// The EAM table (RFC 7757 §3.3): longest-prefix match on the IPv4 side for IPv4 → IPv6 and on the
/// IPv6 side for IPv6 → IPv4. Two arrays, each sorted by descending prefix length, so the first hit is
/// the longest match; lookups read them and never allocate.
public struct ExplicitAddressMappingTable: Sendable {
    @usableFromInline struct Row: Sendable {
        @usableFromInline var v4Network: UInt32
        @usableFromInline var v4Mask: UInt32
        @usableFromInline var v6High: UInt64
        @usableFromInline var v6Low: UInt64
        @usableFromInline var v6MaskHigh: UInt64
        @usableFromInline var v6MaskLow: UInt64
    }
    @usableFromInline let byIPv4: [Row]
    @usableFromInline let byIPv6: [Row]
    public let entries: [ExplicitAddressMapping]

    /// Builds the table; refuses two rows with the same IPv4 prefix or the same IPv6 prefix, which would
    /// make the mapping ambiguous. Overlapping prefixes of different lengths are allowed (longest match).
    public init(_ entries: [ExplicitAddressMapping]) throws(ConfigurationError) {
        for (i, e) in entries.enumerated() {
            for (j, f) in entries.enumerated() where j > i {
                if e.ipv4 == f.ipv4 {
                    throw ConfigurationError(key: "eam[\(j)]", problem: "repeats the IPv4 prefix \(f.ipv4) of eam[\(i)]")
                }
                if e.ipv6 == f.ipv6 {
                    throw ConfigurationError(key: "eam[\(j)]", problem: "repeats the IPv6 prefix \(f.ipv6) of eam[\(i)]")
                }
            }
        }
        self.entries = entries
        func row(_ e: ExplicitAddressMapping) -> Row {
            let (mh, ml) = IPv6Prefix.mask(e.ipv6.length)
            return Row(v4Network: e.ipv4.address.rawValue, v4Mask: e.ipv4.mask,
                       v6High: e.ipv6.address.high, v6Low: e.ipv6.address.low, v6MaskHigh: mh, v6MaskLow: ml)
        }
        byIPv4 = entries.sorted { $0.ipv4.length > $1.ipv4.length }.map(row)
        byIPv6 = entries.sorted { $0.ipv6.length > $1.ipv6.length }.map(row)
    }

    public var isEmpty: Bool { entries.isEmpty }

    /// RFC 7757 §3.3: the IPv6 address for `a`, or nil when no row covers it.
    @inlinable
    public func ipv6(for a: IPv4Address) -> IPv6Address? {
        let v = a.rawValue
        for r in byIPv4 where v & r.v4Mask == r.v4Network {
            // The suffix is at most 32 bits: it lands in the low half, below the IPv6 prefix.
            let suffix = UInt64(v & ~r.v4Mask)
            return IPv6Address(high: r.v6High, low: r.v6Low | suffix)
        }
        return nil
    }

    /// RFC 7757 §3.3: the IPv4 address for `a`, or nil when no row covers it.
    @inlinable
    public func ipv4(for a: IPv6Address) -> IPv4Address? {
        for r in byIPv6 where a.high & r.v6MaskHigh == r.v6High && a.low & r.v6MaskLow == r.v6Low {
            let suffix = UInt32(truncatingIfNeeded: a.low & ~r.v6MaskLow) & ~r.v4Mask
            return IPv4Address(r.v4Network | suffix)
        }
        return nil
    }

    /// Whether a row's IPv4 prefix covers `a`.
    @inlinable
    public func covers(_ a: IPv4Address) -> Bool {
        let v = a.rawValue
        for r in byIPv4 where v & r.v4Mask == r.v4Network { return true }
        return false
    }
}
