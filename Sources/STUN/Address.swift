import NATWire

/// An IPv4 or IPv6 address as STUN carries it (RFC 8489 §14.1 family 0x01 / 0x02).
public enum STUNAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(IPv4Address)
    case v6(IPv6Address)

    public init?(_ text: some StringProtocol) {
        if let a = IPv4Address(text) { self = .v4(a) } else if let a = IPv6Address(text) { self = .v6(a) } else { return nil }
    }

    /// RFC 8489 §14.1: 0x01 IPv4, 0x02 IPv6.
    public var family: UInt8 {
        switch self {
        case .v4: 0x01
        case .v6: 0x02
        }
    }

    public var isIPv4: Bool { if case .v4 = self { true } else { false } }

    /// The unspecified address (0.0.0.0 or ::): never a usable mapped address.
    public var isUnspecified: Bool {
        switch self {
        case .v4(let a): a.rawValue == 0
        case .v6(let a): a.high == 0 && a.low == 0
        }
    }

    public var description: String {
        switch self {
        case .v4(let a): a.description
        case .v6(let a): a.description
        }
    }
}

/// A transport address: IP address and port.
public struct STUNEndpoint: Hashable, Sendable, CustomStringConvertible {
    public var address: STUNAddress
    public var port: UInt16

    public init(_ address: STUNAddress, _ port: UInt16) { self.address = address; self.port = port }
    public init(_ address: IPv4Address, _ port: UInt16) { self.init(.v4(address), port) }
    public init(_ address: IPv6Address, _ port: UInt16) { self.init(.v6(address), port) }

    /// Parses `a.b.c.d:port`, `[v6]:port`, or a bare address with `defaultPort`.
    public init?(_ text: some StringProtocol, defaultPort: UInt16? = nil) {
        let s = String(text)
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]"), let a = IPv6Address(s[s.index(after: s.startIndex)..<close]) else { return nil }
            let rest = s[s.index(after: close)...]
            if rest.isEmpty {
                guard let defaultPort else { return nil }
                self.init(a, defaultPort)
            } else {
                guard rest.hasPrefix(":"), let p = UInt16(rest.dropFirst()) else { return nil }
                self.init(a, p)
            }
            return
        }
        if let a = IPv6Address(s) {
            guard let defaultPort else { return nil }
            self.init(a, defaultPort)
            return
        }
        let parts = s.split(separator: ":", omittingEmptySubsequences: false)
        guard let a = IPv4Address(parts[0]) else { return nil }
        if parts.count == 1 {
            guard let defaultPort else { return nil }
            self.init(a, defaultPort)
        } else if parts.count == 2, let p = UInt16(parts[1]) {
            self.init(a, p)
        } else {
            return nil
        }
    }

    public var description: String {
        switch address {
        case .v4(let a): "\(a):\(port)"
        case .v6(let a): "[\(a)]:\(port)"
        }
    }
}
