import NATWire

extension PortControlService {
    /// One datagram to UDP 5351: NAT-PMP (version 0) or PCP (version 2), by its first byte (RFC 6887 §9).
    /// Returns the answer, or nil for none. `natPMP`/`pcp` say which protocols are on.
    public func handleDatagram(_ b: [UInt8], from client: IPv4Address, now: Double, backend: some PortMappingBackend,
                               natPMP: Bool = true, pcp: Bool = true) -> [UInt8]? {
        guard b.count >= 2, isInside(client) else { return nil }
        if b[0] == 0 {
            return natPMP ? handleNATPMP(b, from: client, now: now, backend: backend) : nil
        }
        return pcp ? handlePCP(b, from: client, now: now, backend: backend) : nil
    }

    // MARK: NAT-PMP

    /// RFC 6886: answers a NAT-PMP request, or nil for none (§3.5: truncated, a response, a version that
    /// neither NAT-PMP nor PCP knows gets result 1).
    public func handleNATPMP(_ b: [UInt8], from client: IPv4Address, now: Double, backend: some PortMappingBackend) -> [UInt8]? {
        let e = epoch(at: now)
        let request: NATPMP.Request
        do {
            request = try NATPMP.parse(b)
        } catch {
            switch error {
            case .ignored, .truncated: return nil
            case .unsupportedVersion: return NATPMP.errorResponse(opcode: b[1], result: .unsupportedVersion, epoch: e)
            case .unsupportedOpcode(let op): return NATPMP.errorResponse(opcode: op, result: .unsupportedOpcode, epoch: e)
            }
        }
        switch request {
        case .externalAddress:
            return NATPMP.externalAddressResponse(result: .success, epoch: e, address: externalAddress)
        case .map(let p, let internalPort, let suggested, let lifetime):
            if lifetime == 0 {
                // §3.4: delete one mapping, or all of the client's for this protocol (internal port 0).
                for m in backend.mappings(now: now) where m.origin.isPMPFamily && m.proto == p && m.internalAddress == client
                    && (internalPort == 0 || m.internalPort == internalPort) {
                    backend.remove(p, externalPort: m.externalPort)
                }
                return NATPMP.mapResponse(p, result: .success, epoch: e, internalPort: internalPort, externalPort: 0, lifetime: 0)
            }
            guard internalPort != 0 else {
                return NATPMP.mapResponse(p, result: .notAuthorized, epoch: e, internalPort: 0, externalPort: 0, lifetime: 0)
            }
            let ask = Ask(proto: p, client: client, internalAddress: client, internalPort: internalPort, externalPort: suggested,
                          exact: false, lifetime: lifetime, origin: .natpmp, description: "NAT-PMP \(client):\(internalPort)")
            let granted = min(max(lifetime, policy.minLease), policy.maxLease)
            do {
                let m = try grant(ask, lifetime: granted, backend: backend, now: now)
                return NATPMP.mapResponse(p, result: .success, epoch: e, internalPort: internalPort, externalPort: m.externalPort, lifetime: granted)
            } catch {
                let code: NATPMP.ResultCode
                switch error {
                case .notAuthorized, .conflict, .cannotProvide: code = .notAuthorized
                case .clientQuota, .noResources: code = .outOfResources
                case .failed: code = .networkFailure
                }
                return NATPMP.mapResponse(p, result: code, epoch: e, internalPort: internalPort, externalPort: 0, lifetime: 0)
            }
        }
    }

    // MARK: PCP

    enum PCPParse {
        case request(PCP.Request)
        /// Not a request to act on: the error answer (§8.3), or nil for none.
        case answer([UInt8]?)
    }

    /// RFC 6887 §8.3: a request parsed, or what to answer instead (over IPv4 and IPv6 alike).
    func parsePCPRequest(_ b: [UInt8], epoch e: UInt32) -> PCPParse {
        do {
            return .request(try PCP.parse(b))
        } catch {
            switch error {
            case .ignored: return .answer(nil)
            case .failure(let code, let op, let body):
                return .answer(PCP.response(opcode: op, result: code, lifetime: code.errorLifetime, epoch: e, body: body))
            }
        }
    }

    /// RFC 6887: answers a PCP request (§8.3), or nil for none.
    public func handlePCP(_ b: [UInt8], from client: IPv4Address, now: Double, backend: some PortMappingBackend) -> [UInt8]? {
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
        // §8.3: the client's address field must be the packet's source (else a NAT is in between).
        guard r.clientAddress == IPv6Address(ipv4Mapped: client) else { return fail(.addressMismatch, body: echo) }
        guard let m = r.mapping else {
            // §14.1: ANNOUNCE gets SUCCESS with the current epoch.
            return PCP.response(opcode: op, result: .success, lifetime: 0, epoch: e, body: [])
        }
        var internalAddress = client
        var processed: [UInt8] = []
        if let t = r.thirdParty {
            // §13.1: a mapping for another host; secure mode refuses it.
            guard !policy.secureMode else { return fail(.notAuthorized, body: echo) }
            guard let a = t.ipv4Mapped, isInside(a) else { return fail(.notAuthorized, body: echo) }
            internalAddress = a
            processed += PCP.option(PCP.OptionCode.thirdParty.rawValue, addressBytes(t))
        }
        if r.preferFailure { processed += PCP.option(PCP.OptionCode.preferFailure.rawValue, []) }
        let externalMapped = IPv6Address(ipv4Mapped: externalAddress)
        func body(_ port: UInt16, _ address: IPv6Address) -> [UInt8] {
            r.opcode == .peer
                ? PCP.peerBody(m, externalPort: port, externalAddress: address, remotePort: r.remotePort, remoteAddress: r.remoteAddress)
                : PCP.mappingBody(m, externalPort: port, externalAddress: address)
        }
        let requested = body(m.suggestedExternalPort, m.suggestedExternalAddress) + processed
        if r.opcode == .map && m.protocolNumber == 0 && m.internalPort == 0 && r.lifetime == 0 {
            // §15: delete all of this client's mappings (of every protocol).
            for x in backend.mappings(now: now) where x.origin.isPMPFamily && x.internalAddress == internalAddress {
                if let n = x.nonce, n != m.nonce { continue }
                backend.remove(x.proto, externalPort: x.externalPort)
            }
            return PCP.response(opcode: op, result: .success, lifetime: 0, epoch: e, body: requested)
        }
        guard let p = MappingProtocol(rawValue: m.protocolNumber) else { return fail(.unsupportedProtocol, body: requested) }
        guard m.internalPort != 0 else { return fail(r.opcode == .peer ? .malformedRequest : .notAuthorized, body: requested) }
        if r.opcode == .peer {
            return peer(r, m, p, internalAddress: internalAddress, backend: backend, epoch: e, requested: requested, processed: processed)
        }
        let existing = backend.mappings(now: now).first {
            $0.origin.isPMPFamily && $0.proto == p && $0.internalAddress == internalAddress && $0.internalPort == m.internalPort
        }
        // §11.3: a mapping is its nonce's; another nonce may not change or delete it.
        if let x = existing, let n = x.nonce, n != m.nonce { return fail(.notAuthorized, body: requested) }
        if r.lifetime == 0 {
            if let x = existing { backend.remove(p, externalPort: x.externalPort) }
            return PCP.response(opcode: op, result: .success, lifetime: 0, epoch: e,
                                body: body(existing?.externalPort ?? m.suggestedExternalPort, externalMapped) + processed)
        }
        let suggestedAddress = m.suggestedExternalAddress
        let anyAddress = suggestedAddress == .any || suggestedAddress == IPv6Address(ipv4Mapped: .any)
        if !anyAddress && suggestedAddress != externalMapped && r.preferFailure {
            return fail(.cannotProvideExternal, body: requested)
        }
        let ask = Ask(proto: p, client: client, internalAddress: internalAddress, internalPort: m.internalPort,
                      externalPort: m.suggestedExternalPort, exact: r.preferFailure && m.suggestedExternalPort != 0,
                      lifetime: r.lifetime, origin: .pcp, description: "PCP \(internalAddress):\(m.internalPort)", nonce: m.nonce)
        let granted = min(max(r.lifetime, policy.minLease), policy.maxLease)
        do {
            let x = try grant(ask, lifetime: granted, backend: backend, now: now)
            return PCP.response(opcode: op, result: .success, lifetime: granted, epoch: e, body: body(x.externalPort, externalMapped) + processed)
        } catch {
            let code: PCP.ResultCode
            switch error {
            case .notAuthorized, .conflict: code = .notAuthorized
            case .clientQuota: code = .userExceededQuota
            case .noResources: code = .noResources
            case .cannotProvide: code = .cannotProvideExternal
            case .failed: code = .networkFailure
            }
            return fail(code, body: requested)
        }
    }

    /// RFC 6887 §12.3: PEER creates the flow's dynamic mapping if there is none (so that the client learns
    /// its external endpoint before it sends), or extends an existing one; the answer carries the
    /// external address and port the NAT uses for the flow and how long the mapping lives without traffic
    /// (the lifetime asked for, cut to the NAT's idle timeout for the flow and to `max_lease`: traffic
    /// or another PEER keeps it).
    /// A lifetime of 0 changes nothing (the mapping is the flow's, which may be in use) and reports it.
    /// The suggested external port is a hint the NAT's own port choice (port preservation) may not meet;
    /// PREFER_FAILURE is MAP's alone (§13.2) and refused by the parser.
    func peer(_ r: PCP.Request, _ m: PCP.MappingData, _ p: MappingProtocol, internalAddress: IPv4Address, backend: some PortMappingBackend,
              epoch e: UInt32, requested: [UInt8], processed: [UInt8]) -> [UInt8] {
        let op = r.opcode.rawValue
        func fail(_ code: PCP.ResultCode) -> [UInt8] {
            PCP.response(opcode: op, result: code, lifetime: code.errorLifetime, epoch: e, body: requested)
        }
        guard let remote = r.remoteAddress.ipv4Mapped, remote != .any, r.remotePort != 0 else { return fail(.malformedRequest) }
        let create = r.lifetime != 0
        switch backend.peer(p, internal: internalAddress, internalPort: m.internalPort, remote: remote, remotePort: r.remotePort, create: create) {
        case .mapping(let address, let port, let lifetime):
            // Never more than asked (raised to min_lease), than the NAT keeps the idle flow, or than max_lease.
            let granted = create ? min(max(r.lifetime, policy.minLease), lifetime, policy.maxLease) : 0
            let body = PCP.peerBody(m, externalPort: port, externalAddress: IPv6Address(ipv4Mapped: address),
                                    remotePort: r.remotePort, remoteAddress: r.remoteAddress)
            return PCP.response(opcode: op, result: .success, lifetime: granted, epoch: e, body: body + processed)
        case .none:
            return PCP.response(opcode: op, result: .success, lifetime: 0, epoch: e, body: requested)
        case .noResources: return fail(.noResources)
        case .quota: return fail(.userExceededQuota)
        case .unavailable: return fail(.networkFailure)
        }
    }

    func addressBytes(_ a: IPv6Address) -> [UInt8] {
        var out: [UInt8] = []
        out.put(a)
        return out
    }
}
