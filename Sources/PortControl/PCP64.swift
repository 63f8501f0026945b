import NATWire

/// A static BIB entry of the stateful NAT64 as PCP sees it (RFC 6887 §11 from an IPv6 client): the IPv6
/// transport address inside, the IPv4 one outside.
public struct NAT64PortMapping: Sendable, Equatable {
    public var proto: MappingProtocol
    public var internalAddress: IPv6Address
    public var internalPort: UInt16
    public var externalAddress: IPv4Address
    /// The external port (in a request to the backend: the one suggested, 0 for any).
    public var externalPort: UInt16
    /// When it ends (seconds on the caller's clock), nil for never.
    public var expiresAt: Double?
    /// PCP's mapping nonce (RFC 6887 §11.1).
    public var nonce: [UInt8]?

    public init(proto: MappingProtocol, internalAddress: IPv6Address, internalPort: UInt16, externalAddress: IPv4Address = .any,
                externalPort: UInt16, expiresAt: Double? = nil, nonce: [UInt8]? = nil) {
        self.proto = proto
        self.internalAddress = internalAddress
        self.internalPort = internalPort
        self.externalAddress = externalAddress
        self.externalPort = externalPort
        self.expiresAt = expiresAt
        self.nonce = nonce
    }
}

/// Why the NAT64 does not make a static BIB entry.
public enum NAT64BindRefusal: Error, Sendable, Equatable {
    /// The exact external port asked for is taken.
    case portInUse
    /// No free port, or a table is full.
    case noResources
    /// The IPv6 host has its most BIB entries.
    case quota
    /// No stateful NAT64 here (or it cannot take run-time entries); why.
    case unavailable(String)
}

/// The stateful NAT64's static BIB as PCP needs it. The daemon implements it over its controller (a
/// run-time static BIB entry in the packet thread's NAT64); tests implement it in memory.
public protocol NAT64BindingBackend {
    /// The run-time static BIB entries, expired ones left out.
    func bindings(now: Double) -> [NAT64PortMapping]
    /// Makes (or refreshes) the entry of `m`'s internal transport address for `lifetime` seconds, on
    /// `m.externalPort` when free (only there when `exact`), on `m.externalAddress` first when it is not
    /// 0.0.0.0 (a suggestion); returns the entry as made.
    func bind(_ m: NAT64PortMapping, exact: Bool, lifetime: UInt32, now: Double) -> Result<NAT64PortMapping, NAT64BindRefusal>
    /// Removes the entry on `externalAddress:externalPort`; false when there was none.
    @discardableResult func unbind(_ proto: MappingProtocol, externalAddress: IPv4Address, externalPort: UInt16) -> Bool
}

extension PortControlService {
    /// Whether `a` is in one of the IPv6 inside prefixes (the NAT64's IPv6 side).
    public func isInside(_ a: IPv6Address) -> Bool { insidePrefixes6.contains { $0.contains(a) } }

    /// RFC 6887 from an IPv6 client of the stateful NAT64: MAP makes a static BIB entry (the client's
    /// IPv6 transport address reachable from IPv4 on the answered IPv4 address and port, RFC 6146 §3.1),
    /// with the same nonce, lifetime, THIRD_PARTY, PREFER_FAILURE and policy rules as over IPv4; ANNOUNCE
    /// is answered. PEER gets UNSUPP_OPCODE (the NAT64's dynamic sessions are not offered to PCP). NAT-PMP
    /// (version 0) is IPv4 only: no answer. Returns the answer, or nil for none.
    public func handlePCP(_ b: [UInt8], fromIPv6 client: IPv6Address, now: Double, backend: some NAT64BindingBackend) -> [UInt8]? {
        guard b.count >= 2, b[0] != 0, isInside(client) else { return nil }
        let e = epoch(at: now)
        let r: PCP.Request
        switch parsePCPRequest(b, epoch: e) {
        case .request(let parsed): r = parsed
        case .answer(let a): return a
        }
        let op = r.opcode.rawValue
        func fail(_ code: PCP.ResultCode, body: [UInt8]) -> [UInt8] {
            PCP.response(opcode: op, result: code, lifetime: code.errorLifetime, epoch: e, body: body)
        }
        let echo = Array(b[24...])
        // §8.3: the client's address field must be the packet's source.
        guard r.clientAddress == client else { return fail(.addressMismatch, body: echo) }
        guard let m = r.mapping else { return PCP.response(opcode: op, result: .success, lifetime: 0, epoch: e, body: []) }
        guard r.opcode == .map else { return fail(.unsupportedOpcode, body: echo) }
        var internalAddress = client
        var processed: [UInt8] = []
        if let t = r.thirdParty {
            // §13.1: a mapping for another host; secure mode refuses it.
            guard !policy.secureMode, isInside(t) else { return fail(.notAuthorized, body: echo) }
            internalAddress = t
            processed += PCP.option(PCP.OptionCode.thirdParty.rawValue, addressBytes(t))
        }
        if r.preferFailure { processed += PCP.option(PCP.OptionCode.preferFailure.rawValue, []) }
        let requested = PCP.mappingBody(m, externalPort: m.suggestedExternalPort, externalAddress: m.suggestedExternalAddress) + processed
        func success(_ x: NAT64PortMapping?, lifetime: UInt32) -> [UInt8] {
            let body = PCP.mappingBody(m, externalPort: x?.externalPort ?? m.suggestedExternalPort,
                                       externalAddress: x.map { IPv6Address(ipv4Mapped: $0.externalAddress) } ?? m.suggestedExternalAddress)
            return PCP.response(opcode: op, result: .success, lifetime: lifetime, epoch: e, body: body + processed)
        }
        let all = backend.bindings(now: now)
        if m.protocolNumber == 0 && m.internalPort == 0 && r.lifetime == 0 {
            // §15: delete all of this client's mappings (of every protocol) that carry its nonce.
            for x in all where x.internalAddress == internalAddress && (x.nonce == nil || x.nonce == m.nonce) {
                backend.unbind(x.proto, externalAddress: x.externalAddress, externalPort: x.externalPort)
            }
            return success(nil, lifetime: 0)
        }
        guard let p = MappingProtocol(rawValue: m.protocolNumber) else { return fail(.unsupportedProtocol, body: requested) }
        guard m.internalPort != 0 else { return fail(.notAuthorized, body: requested) }
        let existing = all.first { $0.proto == p && $0.internalAddress == internalAddress && $0.internalPort == m.internalPort }
        // §11.3: a mapping is its nonce's; another nonce may not change or delete it.
        if let x = existing, let n = x.nonce, n != m.nonce { return fail(.notAuthorized, body: requested) }
        if r.lifetime == 0 {
            if let x = existing { backend.unbind(p, externalAddress: x.externalAddress, externalPort: x.externalPort) }
            return success(existing, lifetime: 0)
        }
        if existing == nil {
            guard all.count < policy.maxMappings else { return fail(.noResources, body: requested) }
            guard all.filter({ $0.internalAddress == internalAddress }).count < policy.maxPerClient else {
                return fail(.userExceededQuota, body: requested)
            }
        }
        let suggested = m.suggestedExternalAddress
        let anyAddress = suggested == .any || suggested == IPv6Address(ipv4Mapped: .any)
        if !anyAddress && suggested.ipv4Mapped == nil && r.preferFailure { return fail(.cannotProvideExternal, body: requested) }
        let granted = min(max(r.lifetime, policy.minLease), policy.maxLease)
        let ask = NAT64PortMapping(proto: p, internalAddress: internalAddress, internalPort: m.internalPort,
                                   externalAddress: anyAddress ? .any : suggested.ipv4Mapped ?? .any,
                                   externalPort: m.suggestedExternalPort, expiresAt: now + Double(granted), nonce: m.nonce)
        switch backend.bind(ask, exact: r.preferFailure && m.suggestedExternalPort != 0, lifetime: granted, now: now) {
        case .success(let x):
            if r.preferFailure, !anyAddress, let want = suggested.ipv4Mapped, want != x.externalAddress {
                if existing == nil { backend.unbind(p, externalAddress: x.externalAddress, externalPort: x.externalPort) }
                return fail(.cannotProvideExternal, body: requested)
            }
            return success(x, lifetime: granted)
        case .failure(.portInUse): return fail(r.preferFailure ? .cannotProvideExternal : .noResources, body: requested)
        case .failure(.noResources): return fail(.noResources, body: requested)
        case .failure(.quota): return fail(.userExceededQuota, body: requested)
        case .failure(.unavailable): return fail(.networkFailure, body: requested)
        }
    }
}
