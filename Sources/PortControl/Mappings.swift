import NATWire

/// Who made a forward: the configuration file, the CLI, or one of the port-control protocols.
public enum MappingOrigin: String, Sendable, Equatable, CaseIterable {
    case config, cli, upnp, natpmp, pcp

    /// The three protocols of this module (their mappings count against the policy's limits).
    public var isPortControl: Bool { self == .upnp || self == .natpmp || self == .pcp }
    /// NAT-PMP and PCP share their mappings (RFC 6887 §9: a server that speaks both keeps one state).
    var isPMPFamily: Bool { self == .natpmp || self == .pcp }
}

/// A port mapping as the port-control protocols see a forward of the NAT.
public struct PortMapping: Sendable, Equatable {
    public var proto: MappingProtocol
    public var externalPort: UInt16
    public var internalAddress: IPv4Address
    public var internalPort: UInt16
    public var origin: MappingOrigin
    public var description: String
    /// When it ends (seconds on the caller's clock, the same as every `now:`), nil for never.
    public var expiresAt: Double?
    /// PCP's mapping nonce (RFC 6887 §11.1), which a later request for it must repeat.
    public var nonce: [UInt8]?
    /// UPnP's NewEnabled: a disabled mapping is kept and listed (its external port stays reserved for
    /// it) but forwards nothing until it is added again enabled.
    public var enabled: Bool

    public init(proto: MappingProtocol, externalPort: UInt16, internalAddress: IPv4Address, internalPort: UInt16,
                origin: MappingOrigin, description: String = "", expiresAt: Double? = nil, nonce: [UInt8]? = nil,
                enabled: Bool = true) {
        self.proto = proto
        self.externalPort = externalPort
        self.internalAddress = internalAddress
        self.internalPort = internalPort
        self.origin = origin
        self.description = description
        self.expiresAt = expiresAt
        self.nonce = nonce
        self.enabled = enabled
    }

    /// Seconds left at `now` (0 when ended), nil for never.
    public func remaining(at now: Double) -> UInt32? {
        expiresAt.map { UInt32(clamping: Int(max(0, ($0 - now).rounded(.up)))) }
    }
}

/// Byte and packet totals of the outside interface (UPnP WANCommonInterfaceConfig).
public struct TrafficTotals: Sendable, Equatable {
    public var bytesSent: UInt64 = 0
    public var bytesReceived: UInt64 = 0
    public var packetsSent: UInt64 = 0
    public var packetsReceived: UInt64 = 0
    public init(bytesSent: UInt64 = 0, bytesReceived: UInt64 = 0, packetsSent: UInt64 = 0, packetsReceived: UInt64 = 0) {
        self.bytesSent = bytesSent
        self.bytesReceived = bytesReceived
        self.packetsSent = packetsSent
        self.packetsReceived = packetsReceived
    }
}

/// What the NAT answers to a PEER request (``PortMappingBackend/peer(_:internal:internalPort:remote:remotePort:create:)``).
public enum PeerOutcome: Sendable, Equatable {
    /// The flow's session: its external endpoint and the seconds it lives without traffic.
    case mapping(externalAddress: IPv4Address, externalPort: UInt16, lifetime: UInt32)
    /// No session for the flow (only when not asked to create one).
    case none
    /// The NAT has no room (session or mapping table full, no free port).
    case noResources
    /// The inside host is at its session or port limit.
    case quota
    /// The NAT cannot do it at all (no NAT44, several queues); why.
    case unavailable(String)
}

/// What the protocols need of the NAT: its forwards, and a way to add and remove them. The daemon
/// implements it over its controller (the forwards become run-time forwards of the engine); tests
/// implement it in memory. Calls are synchronous; the implementation keeps them thread-safe.
public protocol PortMappingBackend {
    /// Every forward on the external address (all origins), expired ones left out.
    func mappings(now: Double) -> [PortMapping]
    /// Adds `m` for `lifetime` seconds, replacing a mapping of the same protocol and external port
    /// (a refresh); returns why the NAT refused, or nil. A mapping with `enabled` false is kept and
    /// listed but not installed in the NAT.
    func add(_ m: PortMapping, lifetime: UInt32, now: Double) -> String?
    /// Removes the mapping of `proto` on `externalPort`; false when there was none.
    @discardableResult func remove(_ proto: MappingProtocol, externalPort: UInt16) -> Bool
    /// PCP PEER (RFC 6887 §12.3): the NAT's dynamic mapping (session) for a flow. With `create` it is
    /// made if missing, as the flow's first outbound packet would make it, or refreshed; without, it is
    /// only looked up (`.none` when there is none).
    func peer(_ proto: MappingProtocol, internal: IPv4Address, internalPort: UInt16, remote: IPv4Address, remotePort: UInt16,
              create: Bool) -> PeerOutcome
    /// The outside traffic totals.
    func totals() -> TrafficTotals
}
