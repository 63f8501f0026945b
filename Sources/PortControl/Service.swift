import NATWire

/// The port-control decisions shared by NAT-PMP, PCP and UPnP IGD: who may map what, which external
/// port, for how long. Pure: the NAT is a ``PortMappingBackend`` and time comes in as `now`.
public struct PortControlService: Sendable {
    public var policy: PortControlPolicy
    /// The address the servers announce and map on (the NAT's pool address).
    public var externalAddress: IPv4Address
    /// Only hosts in these prefixes are served (and may be mapped to).
    public var insidePrefixes: [IPv4Prefix]
    /// When this server's epoch began (RFC 6886 §3.6, RFC 6887 §8.5), on the `now` clock.
    public var epochStart: Double
    /// The IPv6 hosts served over IPv6 (the stateful NAT64's inside, RFC 6887 from IPv6 clients).
    public var insidePrefixes6: [IPv6Prefix] = []
    /// External ports the scan for a free one stays in.
    public var dynamicPorts: ClosedRange<UInt16> = 1024...65535

    public init(policy: PortControlPolicy, externalAddress: IPv4Address, insidePrefixes: [IPv4Prefix], epochStart: Double) {
        self.policy = policy
        self.externalAddress = externalAddress
        self.insidePrefixes = insidePrefixes
        self.epochStart = epochStart
    }

    /// Seconds since the epoch began.
    public func epoch(at now: Double) -> UInt32 { UInt32(clamping: Int(max(0, now - epochStart))) }

    public func isInside(_ a: IPv4Address) -> Bool { insidePrefixes.contains { $0.contains(a) } }

    /// Why a mapping is not granted.
    public enum Refusal: Error, Sendable, Equatable {
        /// The policy: secure mode, a deny rule, an address that is not inside.
        case notAuthorized
        /// The client has `maxPerClient` mappings.
        case clientQuota
        /// `maxMappings` in all, or no free external port.
        case noResources
        /// The exact external port asked for is another client's (or another mechanism's).
        case conflict(MappingOrigin)
        /// The exact port asked for is not permitted or not free (PCP PREFER_FAILURE).
        case cannotProvide
        /// The NAT refused the forward.
        case failed(String)
    }

    /// A mapping request as every protocol makes it.
    public struct Ask: Sendable {
        public var proto: MappingProtocol
        public var client: IPv4Address
        public var internalAddress: IPv4Address
        public var internalPort: UInt16
        /// The external port wanted (0: any).
        public var externalPort: UInt16
        /// Only `externalPort` will do (UPnP AddPortMapping, PCP PREFER_FAILURE).
        public var exact: Bool
        public var lifetime: UInt32
        public var origin: MappingOrigin
        public var description: String
        public var nonce: [UInt8]?
        /// UPnP NewEnabled.
        public var enabled: Bool

        public init(proto: MappingProtocol, client: IPv4Address, internalAddress: IPv4Address, internalPort: UInt16,
                    externalPort: UInt16, exact: Bool, lifetime: UInt32, origin: MappingOrigin, description: String = "",
                    nonce: [UInt8]? = nil, enabled: Bool = true) {
            self.proto = proto
            self.client = client
            self.internalAddress = internalAddress
            self.internalPort = internalPort
            self.externalPort = externalPort
            self.exact = exact
            self.lifetime = lifetime
            self.origin = origin
            self.description = description
            self.nonce = nonce
            self.enabled = enabled
        }
    }

    /// Checks `ask` against the policy and the existing mappings, picks the external port and adds the
    /// mapping. A NAT-PMP or PCP request for an internal endpoint that already has a mapping of either
    /// refreshes it (keeping its external port); a UPnP request for a port the same client holds updates it.
    public func grant(_ ask: Ask, lifetime granted: UInt32, backend: some PortMappingBackend, now: Double)
        throws(Refusal) -> PortMapping {
        guard isInside(ask.client), isInside(ask.internalAddress) else { throw .notAuthorized }
        if policy.secureMode && ask.internalAddress != ask.client { throw .notAuthorized }
        let all = backend.mappings(now: now)
        let taken = Set(all.filter { $0.proto == ask.proto }.map(\.externalPort))
        var existing: PortMapping? = nil
        if ask.origin.isPMPFamily {
            existing = all.first { $0.origin.isPMPFamily && $0.proto == ask.proto && $0.internalAddress == ask.internalAddress
                && $0.internalPort == ask.internalPort }
        } else if let m = all.first(where: { $0.proto == ask.proto && $0.externalPort == ask.externalPort }) {
            if m.origin == .upnp && m.internalAddress == ask.internalAddress && m.internalPort == ask.internalPort {
                existing = m
            } else if ask.exact {
                throw .conflict(m.origin)
            }
        }
        if existing == nil {
            let mine = all.filter { $0.origin.isPortControl }
            guard mine.count < policy.maxMappings else { throw .noResources }
            guard mine.filter({ $0.internalAddress == ask.internalAddress }).count < policy.maxPerClient else { throw .clientQuota }
        }
        var candidates: [UInt16] = []
        if let e = existing {
            candidates = [e.externalPort]
        } else {
            let want = ask.externalPort != 0 ? ask.externalPort : ask.internalPort
            func usable(_ p: UInt16) -> Bool {
                p != 0 && !taken.contains(p)
                    && policy.permits(externalPort: p, internalAddress: ask.internalAddress, internalPort: ask.internalPort)
            }
            if usable(want) { candidates.append(want) }
            if ask.exact {
                guard !candidates.isEmpty else {
                    if !policy.permits(externalPort: want, internalAddress: ask.internalAddress, internalPort: ask.internalPort) {
                        throw ask.origin == .pcp ? .cannotProvide : .notAuthorized
                    }
                    throw ask.origin == .pcp ? .cannotProvide : .conflict(all.first { $0.proto == ask.proto && $0.externalPort == want }?.origin ?? .cli)
                }
            } else {
                // The next free permitted ports after the one wanted, wrapping once round the range.
                let span = Int(dynamicPorts.upperBound) - Int(dynamicPorts.lowerBound) + 1
                let start = dynamicPorts.contains(want) ? Int(want) - Int(dynamicPorts.lowerBound) : 0
                var i = 1
                while candidates.count < 8 && i <= span {
                    let p = UInt16(Int(dynamicPorts.lowerBound) + (start + i) % span)
                    if usable(p) { candidates.append(p) }
                    i += 1
                }
            }
        }
        guard !candidates.isEmpty else { throw .noResources }
        var last = ""
        for port in candidates {
            let m = PortMapping(proto: ask.proto, externalPort: port, internalAddress: ask.internalAddress, internalPort: ask.internalPort,
                                origin: ask.origin, description: ask.description, expiresAt: now + Double(granted), nonce: ask.nonce,
                                enabled: ask.enabled)
            guard let problem = backend.add(m, lifetime: granted, now: now) else { return m }
            last = problem
            if existing != nil || ask.exact { break }
        }
        throw .failed(last)
    }
}
