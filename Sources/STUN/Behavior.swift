/// RFC 4787 §4.1 mapping behaviour, as RFC 5780 §4.3 finds it.
public enum NATMappingBehavior: String, Hashable, Sendable, CustomStringConvertible {
    /// The mapped address is the local one (RFC 5780 §4.3: "no NAT").
    case noNAT = "no-nat"
    case endpointIndependent = "endpoint-independent"
    case addressDependent = "address-dependent"
    case addressAndPortDependent = "address-and-port-dependent"

    public var description: String {
        switch self {
        case .noNAT: "no NAT (endpoint-independent)"
        case .endpointIndependent: "endpoint-independent mapping"
        case .addressDependent: "address-dependent mapping"
        case .addressAndPortDependent: "address-and-port-dependent mapping"
        }
    }

    /// RFC 5780 §4.3. Test I: to the primary address → `testI`; test II: to the alternate address,
    /// primary port → `testII`; test III: alternate address and port → `testIII`. `local` is the
    /// address the requests were sent from.
    public static func classify(local: STUNEndpoint, testI: STUNEndpoint, testII: STUNEndpoint, testIII: STUNEndpoint?) -> NATMappingBehavior {
        if testI == local { return .noNAT }
        if testII == testI { return .endpointIndependent }
        guard let testIII else { return .addressAndPortDependent }
        return testIII == testII ? .addressDependent : .addressAndPortDependent
    }
}

/// RFC 4787 §5 filtering behaviour, as RFC 5780 §4.4 finds it.
public enum NATFilteringBehavior: String, Hashable, Sendable, CustomStringConvertible {
    case endpointIndependent = "endpoint-independent"
    case addressDependent = "address-dependent"
    case addressAndPortDependent = "address-and-port-dependent"

    public var description: String {
        switch self {
        case .endpointIndependent: "endpoint-independent filtering"
        case .addressDependent: "address-dependent filtering"
        case .addressAndPortDependent: "address-and-port-dependent filtering"
        }
    }

    /// RFC 5780 §4.4: test II asks the server to answer from its other address and port; test III from
    /// its other port only. Each flag says whether that answer arrived.
    public static func classify(testIIAnswered: Bool, testIIIAnswered: Bool) -> NATFilteringBehavior {
        if testIIAnswered { return .endpointIndependent }
        return testIIIAnswered ? .addressDependent : .addressAndPortDependent
    }
}

/// RFC 5780 §4.6: a binary search for the mapping lifetime, pure: tell it each probe's outcome.
/// `next` is the idle time to try; `record(alive:)` narrows the interval; done when the interval is
/// narrower than `resolution`.
public struct LifetimeSearch: Hashable, Sendable {
    /// Longest idle time known to keep the mapping.
    public private(set) var alive: Duration
    /// Shortest idle time known to lose it (nil: none seen up to `maximum`).
    public private(set) var dead: Duration?
    public let maximum: Duration
    public let resolution: Duration

    public init(maximum: Duration, resolution: Duration = .seconds(1)) {
        alive = .zero
        dead = nil
        self.maximum = maximum
        self.resolution = resolution
    }

    /// The idle time to test next, nil when the search is over.
    public var next: Duration? {
        guard let dead else { return alive >= maximum ? nil : (alive == .zero ? min(maximum, .seconds(1)) : min(maximum, alive * 2)) }
        guard dead - alive > resolution else { return nil }
        return alive + (dead - alive) / 2
    }

    public mutating func record(idle: Duration, alive isAlive: Bool) {
        if isAlive { alive = max(alive, idle) } else { dead = min(dead ?? idle, idle) }
    }
}
