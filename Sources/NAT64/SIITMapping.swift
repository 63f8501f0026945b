import NATCore
import NATWire

/// Settings of stateless SIIT address translation.
public struct SIITConfiguration: Sendable, Hashable {
    /// The RFC 6052 prefix ("pool6") for addresses the EAM table does not cover. Nil: EAM only.
    public var prefix: NAT64Prefix?
    /// The Explicit Address Mapping table (RFC 7757).
    public var explicitMappings: [ExplicitAddressMapping] = []
    /// RFC 6791 §4: IPv4 addresses to use as the source of translated ICMPv6 errors whose IPv6 source
    /// (a router) cannot be translated. One is chosen per error by hashing the IPv6 source, so one
    /// router always gets the same address (which keeps traceroute readable).
    public var rfc6791Pool: [IPv4Prefix] = []
    /// The IPv6 source for translated ICMPv4 errors whose IPv4 source cannot be translated (only
    /// possible without a ``prefix``, or when the EAM table is all there is).
    public var rfc6791IPv6: IPv6Address?
    /// RFC 7757 §4.3: translate IPv6 packets whose IPv4 destination is an EAM address back to IPv6.
    public var hairpinning: Bool = true

    public init(prefix: NAT64Prefix? = nil, explicitMappings: [ExplicitAddressMapping] = [],
                rfc6791Pool: [IPv4Prefix] = [], rfc6791IPv6: IPv6Address? = nil) {
        self.prefix = prefix
        self.explicitMappings = explicitMappings
        self.rfc6791Pool = rfc6791Pool
        self.rfc6791IPv6 = rfc6791IPv6
    }

    /// Checks the configuration as ``SIITMapping/init(_:)`` does: something to translate with, EAM rows
    /// that are not repeated (RFC 7757 allows overlapping prefixes of different lengths: longest match),
    /// RFC 6791 prefixes of at most a /16.
    public func validate() throws(ConfigurationError) {
        guard prefix != nil || !explicitMappings.isEmpty else {
            throw ConfigurationError(key: "siit", problem: "has neither a prefix nor explicit address mappings: nothing could be translated")
        }
        _ = try ExplicitAddressMappingTable(explicitMappings)
        for (i, q) in rfc6791Pool.enumerated() where q.count > 65536 {
            throw ConfigurationError(key: "rfc6791_pool[\(i)]", problem: "\(q) is larger than a /16")
        }
    }
}

/// Stateless IP/ICMP translation (SIIT, RFC 7915 §1.3) addressing: the Explicit Address Mapping table
/// (RFC 7757) first, then the RFC 6052 prefix, then — for the outer source of an ICMP error only — the
/// RFC 6791 pool. Keeps no per-flow state; a plain value.
public struct SIITMapping: NAT64Mapping, Sendable {
    public let configuration: SIITConfiguration
    public let table: ExplicitAddressMappingTable
    @usableFromInline let prefix: NAT64Prefix?
    @usableFromInline let hasPrefix: Bool
    @usableFromInline let pool: [UInt32]
    @usableFromInline let hairpinning: Bool

    /// Builds the mapping; the configuration must pass ``SIITConfiguration/validate()``.
    public init(_ c: SIITConfiguration) throws(ConfigurationError) {
        try c.validate()
        configuration = c
        table = try ExplicitAddressMappingTable(c.explicitMappings)
        prefix = c.prefix
        hasPrefix = c.prefix != nil
        var p: [UInt32] = []
        for q in c.rfc6791Pool {
            for n in 0..<UInt32(q.count) { p.append(q.address.rawValue &+ n) }
        }
        pool = p
        hairpinning = c.hairpinning
    }

    /// Convenience: a prefix only.
    public init(prefix: NAT64Prefix) {
        // A prefix alone always validates.
        try! self.init(SIITConfiguration(prefix: prefix))
    }

    // MARK: Address functions (RFC 7757 §3.3 order: EAM, then RFC 6052)

    /// IPv6 → IPv4 for one address, or nil.
    @inlinable
    public func ipv4(for a: IPv6Address) -> IPv4Address? {
        if let v = table.ipv4(for: a) { return v }
        if hasPrefix, let v = prefix.unsafelyUnwrapped.extract(a) { return v }
        return nil
    }

    /// IPv4 → IPv6 for one address, or nil.
    @inlinable
    public func ipv6(for a: IPv4Address) -> IPv6Address? {
        if let v = table.ipv6(for: a) { return v }
        if hasPrefix, let v = prefix.unsafelyUnwrapped.embed(a) { return v }
        return nil
    }

    /// RFC 6791 §4: the pool address for an untranslatable ICMPv6 error source.
    @inlinable
    func rfc6791Address(for a: IPv6Address) -> IPv4Address? {
        guard !pool.isEmpty else { return nil }
        var h = a.high ^ (a.low &* 0x9E37_79B9_7F4A_7C15)
        h ^= h >> 29
        return IPv4Address(pool[Int(h % UInt64(pool.count))])
    }

    /// IPv6 → IPv4 for one address: EAM, then the prefix; the reason when neither maps it.
    @inlinable
    func mapped4(_ a: IPv6Address) throws(DropReason) -> IPv4Address {
        if let v = table.ipv4(for: a) { return v }
        if hasPrefix, let v = prefix.unsafelyUnwrapped.extractUnchecked(a) {
            // RFC 6052 §3.1.
            guard !prefix.unsafelyUnwrapped.restrictsToGlobalIPv4 || SpecialPurposeIPv4.isGlobal(v) else {
                throw .nonGlobalIPv4Address
            }
            return v
        }
        throw .noMapping
    }

    /// IPv4 → IPv6 for one address: EAM, then the prefix; the reason when neither maps it.
    @inlinable
    func mapped6(_ a: IPv4Address, eam: Bool = true) throws(DropReason) -> IPv6Address {
        if eam, let v = table.ipv6(for: a) { return v }
        guard hasPrefix else { throw .noMapping }
        guard let v = prefix.unsafelyUnwrapped.embed(a) else { throw .nonGlobalIPv4Address }
        return v
    }

    // MARK: NAT64Mapping

    @inlinable
    public mutating func map6to4(source: IPv6Address, destination: IPv6Address, transport: NAT64Transport,
                                 now: Timestamp) throws(DropReason) -> NAT64Mapped4 {
        let d = try mapped4(destination)
        let s: IPv4Address
        do {
            s = try mapped4(source)
        } catch {
            // RFC 6791: an ICMPv6 error from a router whose address has no IPv4 form.
            guard transport.kind == .icmpError, let v = rfc6791Address(for: source) else { throw error }
            s = v
        }
        return NAT64Mapped4(source: s, destination: d, ports: transport.ports)
    }

    @inlinable
    public mutating func map4to6(source: IPv4Address, destination: IPv4Address, transport: NAT64Transport,
                                 hairpin: Bool, now: Timestamp) throws(DropReason) -> NAT64Mapped6 {
        let d = try mapped6(destination)
        let s: IPv6Address
        if hairpin {
            // RFC 7757 §4.3: the hairpinned packet's source takes its RFC 6052 form, so that the reply
            // comes back through the translator to the address the sender used.
            s = try mapped6(source, eam: false)
        } else if transport.kind == .icmpError {
            // RFC 7915 §4.1: an ICMPv4 error's "illegal" source is translated for troubleshooting.
            if let v = table.ipv6(for: source) { s = v }
            else if hasPrefix { s = prefix.unsafelyUnwrapped.embedUnchecked(source) }
            else if let v = configuration.rfc6791IPv6 { s = v }
            else { throw .noMapping }
        } else {
            s = try mapped6(source)
        }
        return NAT64Mapped6(source: s, destination: d, ports: transport.ports)
    }

    @inlinable
    public mutating func mapInner6to4(source: IPv6Address, destination: IPv6Address, transport: NAT64Transport,
                                      now: Timestamp) throws(DropReason) -> NAT64Mapped4 {
        NAT64Mapped4(source: try mapped4(source), destination: try mapped4(destination), ports: transport.ports)
    }

    @inlinable
    public mutating func mapInner4to6(source: IPv4Address, destination: IPv4Address, transport: NAT64Transport,
                                      hairpin: Bool, now: Timestamp) throws(DropReason) -> NAT64Mapped6 {
        // With hairpin, the inner packet's destination is the hairpinned sender's peer: its RFC 6052 form (§4.3).
        NAT64Mapped6(source: try mapped6(source), destination: try mapped6(destination, eam: !hairpin),
                     ports: transport.ports)
    }

    /// RFC 7757 §4.3: an IPv6 packet sent to the RFC 6052 form of an EAM IPv4 address goes back to the
    /// IPv6 host behind that EAM row. A packet sent to the EAM IPv6 address itself is not hairpinned (the
    /// row then stands for a host on the IPv4 side).
    @inlinable
    public func isHairpin(_ destination: IPv4Address, ipv6Destination: IPv6Address) -> Bool {
        hairpinning && table.covers(destination) && table.ipv4(for: ipv6Destination) == nil
    }
}
