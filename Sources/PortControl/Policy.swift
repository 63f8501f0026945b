import NATCore
import NATWire

/// A permission rule as miniupnpd writes them (`allow 1024-65535 100.64.0.0/24 1024-65535`): allow or
/// deny external ports for internal addresses and ports. Rules are checked in order and the first that
/// matches decides; when none matches, the request is allowed (as miniupnpd does).
public struct PermissionRule: Sendable, Equatable, CustomStringConvertible {
    public var allow: Bool
    public var externalPorts: ClosedRange<UInt16>
    public var internalPrefix: IPv4Prefix
    public var internalPorts: ClosedRange<UInt16>

    public init(allow: Bool, externalPorts: ClosedRange<UInt16>, internalPrefix: IPv4Prefix, internalPorts: ClosedRange<UInt16>) {
        self.allow = allow
        self.externalPorts = externalPorts
        self.internalPrefix = internalPrefix
        self.internalPorts = internalPorts
    }

    /// Parses `allow|deny EXT-PORTS ADDRESS[/LEN] INT-PORTS` (a port or `lo-hi`); nil when it is not one.
    public init?(_ text: String) {
        let w = text.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard w.count == 4, let e = Self.ports(w[1]), let i = Self.ports(w[3]) else { return nil }
        let p: IPv4Prefix
        if let x = IPv4Prefix(String(w[2])) { p = x } else if let a = IPv4Address(w[2]) { p = IPv4Prefix(containing: a, length: 32) } else { return nil }
        switch w[0].lowercased() {
        case "allow": allow = true
        case "deny": allow = false
        default: return nil
        }
        externalPorts = e
        internalPrefix = p
        internalPorts = i
    }

    static func ports(_ s: Substring) -> ClosedRange<UInt16>? {
        let parts = s.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2, let lo = UInt16(parts[0]) else { return nil }
        let hi = parts.count == 2 ? UInt16(parts[1]) : lo
        guard let hi, lo <= hi else { return nil }
        return lo...hi
    }

    public func matches(externalPort: UInt16, internalAddress: IPv4Address, internalPort: UInt16) -> Bool {
        externalPorts.contains(externalPort) && internalPrefix.contains(internalAddress) && internalPorts.contains(internalPort)
    }

    public var description: String {
        func r(_ x: ClosedRange<UInt16>) -> String { x.lowerBound == x.upperBound ? "\(x.lowerBound)" : "\(x.lowerBound)-\(x.upperBound)" }
        return "\(allow ? "allow" : "deny") \(r(externalPorts)) \(internalPrefix) \(r(internalPorts))"
    }
}

/// What every port-control protocol may grant (`[port_control]`).
public struct PortControlPolicy: Sendable, Equatable {
    /// A client maps only to its own address (UPnP NewInternalClient, PCP THIRD_PARTY must be itself).
    public var secureMode = true
    /// miniupnpd's permission rules, first match decides; none matching allows.
    public var rules: [PermissionRule] = []
    /// Most port-control mappings in all, and per inside address.
    public var maxMappings = 256
    public var maxPerClient = 32
    /// Lease bounds in seconds: every lease is raised to `minLease` and cut to `maxLease`; an infinite
    /// UPnP lease (0) gets `defaultLease`.
    public var minLease: UInt32 = 120
    public var maxLease: UInt32 = 86_400
    public var defaultLease: UInt32 = 3600

    public init() {}

    /// Checks every value; keys as in `[port_control]`.
    public func validate() throws(ConfigurationError) {
        if let e = ConfigurationError.outside(1...65_535, key: "max_mappings", value: maxMappings) { throw e }
        if let e = ConfigurationError.outside(1...maxMappings, key: "max_per_client", value: maxPerClient,
                                              hint: "at most max_mappings (\(maxMappings))") { throw e }
        if let e = ConfigurationError.outside(1...604_800, key: "max_lease", value: maxLease, hint: "UPnP IGD v2 caps leases at 604800 s") { throw e }
        if let e = ConfigurationError.outside(1...maxLease, key: "min_lease", value: minLease, hint: "between 1 and max_lease (\(maxLease))") { throw e }
        if let e = ConfigurationError.outside(minLease...maxLease, key: "default_lease", value: defaultLease,
                                              hint: "between min_lease (\(minLease)) and max_lease (\(maxLease))") { throw e }
    }

    /// Whether the rules let `internal:internalPort` have `externalPort`.
    public func permits(externalPort: UInt16, internalAddress: IPv4Address, internalPort: UInt16) -> Bool {
        rules.first { $0.matches(externalPort: externalPort, internalAddress: internalAddress, internalPort: internalPort) }?.allow ?? true
    }

    /// The lease granted for `requested` seconds; `infinite` for UPnP's 0.
    public func lease(_ requested: UInt32) -> UInt32 {
        requested == 0 ? defaultLease : min(max(requested, minLease), maxLease)
    }
}
