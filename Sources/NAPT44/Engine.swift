import NATCore
import NATWire

/// The NAPT44 engine: packet bytes and `now` in, rewritten bytes and a ``Verdict`` out. No I/O, no
/// clock, no locks: one packet thread owns one engine. Nothing allocates per forwarded packet.
///
/// The pipeline follows RFC 6146 §3.4: determine the incoming tuple, filter and update the session,
/// compute the outgoing tuple, translate the packet, hairpin if the new destination is ours.
public struct NAPT44Engine: ~Copyable {
    public internal(set) var configuration: NAPT44Configuration
    public var table: SessionTable
    public var counters = Counters()
    /// Packets the engine generated (ICMP errors, echo replies, released fragments): drain after each call.
    public var outbox: Outbox
    var fragmentFlows: FragmentTracker
    var heldFragments: HeldPackets
    var heldSYNs: HeldPackets

    // Precomputed from the configuration.
    @usableFromInline let insideNets: IPv4PrefixMatcher
    /// Pool prefixes and 1:1 outside addresses.
    @usableFromInline var outsideNets: IPv4PrefixMatcher
    var poolAddresses: [UInt32]
    /// Outside ports (TCP and UDP ranges kept apart) and ICMP identifiers of dynamic mappings; rebuilt by
    /// a reload that changes preservation, parity or the search length (same ports).
    var ports: PortAllocator
    let seed: UInt64
    var icmpSource: UInt32 = 0
    var hasRedirects = false
    var inboundRefresh = false
    // Settings read on every new flow, copied out of `configuration` so that path reads plain fields.
    var mappingTCP = MappingBehavior.endpointIndependent
    var mappingUDP = MappingBehavior.endpointIndependent
    var mappingICMP = MappingBehavior.endpointIndependent
    var pairedPooling = true
    var maxSessionsPerHost: Int? = nil
    var maxPortsPerHost: Int? = nil
    /// New sessions per second and burst per inside host (0: unlimited).
    var newSessionRate: UInt32 = 0
    var newSessionBurst: UInt32 = 1
    /// The table's outside-endpoint lookup as a copyable value (pointers into the table, which never moves).
    let endpointProbe: EndpointProbe
    /// Tests turn the fast path off to compare it with the full pipeline.
    var fastPathEnabled = true
    var staticInside: [UInt64: UInt32] = [:]
    var staticOutside: [UInt32: UInt64] = [:]
    /// Live forwards: (proto<<48 | outside address<<16 | first port) → forward.
    public internal(set) var forwards: [PortForward] = []
    var icmpTokens = 0
    var icmpTokenSecond: UInt32 = .max
    public internal(set) var lastNow: Timestamp = .zero
    /// For runtimes that shard the NAT over several engines by outside port: when true, outbound
    /// translation stops before the hairpin step, so a packet whose new destination is one of our outside
    /// addresses comes back as `.toOutside`, already translated outbound; the caller hands it to
    /// ``translateHairpinned(_:now:)`` of the engine that owns the destination port (RFC 4787 REQ-9).
    public var deferHairpinning = false
    /// When set, every mapping created and removed is recorded here (RFC 6888 §4 logging); the runtime
    /// drains it between bursts. nil (the default) costs one test per new or freed mapping.
    public var mappingEvents: MappingEventLog? = nil
    /// Application-level gateways (issue 15): the server ports whose sessions are helped, the helped
    /// sessions' state (capacity reserved up front: no allocation while under the limit), and the
    /// connections helpers announced.
    var helperPorts: [UInt16] = []
    var helped: [UInt32: HelperState] = [:]
    public var expectations: ExpectationTable

    /// Builds an engine; the configuration must pass ``NAPT44Configuration/validate()``.
    public init(configuration c: NAPT44Configuration) throws(ConfigurationError) {
        try c.validate()
        configuration = c
        var s = c.hashSeed ?? UInt64.random(in: 1...UInt64.max)
        if s == 0 { s = 0x5EED }
        seed = s
        table = SessionTable(sessionCapacity: c.maxSessions, hostCapacity: c.maxHosts, seed: s)
        outbox = Outbox(slots: 64, slotSize: max(576, c.fragments.maxHeldSize))
        fragmentFlows = FragmentTracker(capacity: c.fragments.maxFlows, seed: s &* 31)
        heldFragments = HeldPackets(capacity: c.fragments.maxHeld, slotSize: c.fragments.maxHeldSize)
        heldSYNs = HeldPackets(capacity: c.maxHeldSYNs, slotSize: 576)
        insideNets = c.insidePrefixMatcher
        outsideNets = c.outsideMatcher
        poolAddresses = c.poolAddresses.map(\.rawValue)
        ports = Self.portAllocator(c, seed: s)
        endpointProbe = table.endpointProbe
        expectations = ExpectationTable(capacity: c.helpers.maxExpectations, perMaster: c.helpers.maxExpectationsPerSession)
        helped.reserveCapacity(c.helpers.maxHelpedSessions)
        loadSettings(c)
        for st in c.staticNAT {
            staticInside[UInt64(st.tenant) << 32 | UInt64(st.inside.rawValue)] = st.outside.rawValue
            staticOutside[st.outside.rawValue] = UInt64(st.tenant) << 32 | UInt64(st.inside.rawValue)
        }
        // validate() has checked the forwards against each other; the table is empty, so none can clash.
        for f in c.forwards { installForward(f) }
    }

    deinit {
        insideNets.deallocate()
        outsideNets.deallocate()
    }

    static func portAllocator(_ c: NAPT44Configuration, seed: UInt64) -> PortAllocator {
        PortAllocator(ports: c.ports, keepsRange: true, preservesPort: c.portPreservation,
                      preservesParity: c.parityPreservation, maxAttempts: c.maxPortAttempts, seed: seed)
    }

    /// The settings read on every new flow, copied out of `c` into plain fields (at start, and by a
    /// reload: ``reconfigure(_:now:)``).
    mutating func loadSettings(_ c: NAPT44Configuration) {
        ports = Self.portAllocator(c, seed: seed)
        icmpSource = (c.icmpSourceAddress ?? IPv4Address(poolAddresses[0])).rawValue
        hasRedirects = !c.redirects.isEmpty
        inboundRefresh = c.inboundRefresh
        mappingTCP = c.tcp.mapping
        mappingUDP = c.udp.mapping
        mappingICMP = c.icmp.mapping
        pairedPooling = c.pairedPooling
        maxSessionsPerHost = c.limits.sessionsPerHost(maxSessions: c.maxSessions)
        newSessionRate = UInt32(c.limits.newSessionsPerSecond)
        newSessionBurst = UInt32(c.limits.newSessionBurst)
        maxPortsPerHost = c.limits.maxPortsPerHost
        helperPorts = c.helpers.ftpPorts
        // Every idle timeout under 2^16 s: an established packet need not read the second half of its session.
        table.refreshReadsHighBits = TimerClass.allCases.contains { c.timeouts.seconds(for: $0) >= 1 << 16 }
    }

    // MARK: Classification

    @inlinable @inline(__always)
    func isInside(_ a: UInt32) -> Bool { insideNets.contains(a) }

    /// Whether `a` is one of our outside addresses (pool or 1:1).
    @inlinable @inline(__always)
    public func isOutside(_ a: UInt32) -> Bool { outsideNets.contains(a) }

    @inline(__always)
    mutating func drop(_ r: DropReason) -> Verdict {
        counters.recordDrop(r)
        return .drop(r)
    }

    @inline(__always)
    static func dropReason(_ e: WireError) -> DropReason {
        switch e {
        case .truncated: .truncated
        case .badVersion: .badIPVersion
        case .badHeaderLength: .badIPHeaderLength
        case .badLength: .badIPLength
        case .badChecksum: .badIPChecksum
        case .badExtensionChain: .badIPHeaderLength
        }
    }

    @inline(__always)
    static func validate(_ packet: UnsafeMutableRawBufferPointer) throws(DropReason) -> MutableIPv4View {
        let ip: MutableIPv4View
        do {
            ip = try MutableIPv4View(validating: packet)
        } catch {
            throw dropReason(error)
        }
        guard ip.isChecksumValid else { throw .badIPChecksum }
        return ip
    }

    // MARK: Entry points

    /// Translates a packet whose direction the engine works out itself: from an inside prefix means
    /// outbound (then hairpinned if it is addressed to one of our outside addresses); to an outside
    /// address means inbound. This is what a TUN device that carries both sides needs.
    public mutating func process(_ packet: UnsafeMutableRawBufferPointer, tenant: UInt32 = 0, now: Timestamp) -> Verdict {
        lastNow = now
        if packet.count >= 20, let b = packet.baseAddress {
            if isInside(UInt32(bigEndian: b.loadUnaligned(fromByteOffset: 12, as: UInt32.self))) {
                if fastOutbound(packet, tenant: tenant, now: now) { return .toOutside }
            } else if let t = fastInbound(packet, now: now) {
                return .toInside(tenant: t)
            }
        }
        return fullProcess(packet, tenant: tenant, now: now)
    }

    /// ``process(_:tenant:now:)`` without the fast path.
    mutating func fullProcess(_ packet: UnsafeMutableRawBufferPointer, tenant: UInt32, now: Timestamp) -> Verdict {
        do throws(DropReason) {
            let ip = try Self.validate(packet)
            if isInside(ip.source.rawValue) { return try outbound(ip, tenant: tenant, now: now) }
            if isOutside(ip.destination.rawValue) { return try inbound(ip, now: now, hairpin: false) }
            throw .notNATTraffic
        } catch {
            return drop(error)
        }
    }

    /// Translates a packet that arrived on the inside interface of `tenant`.
    public mutating func translateOutbound(_ packet: UnsafeMutableRawBufferPointer, tenant: UInt32 = 0, now: Timestamp) -> Verdict {
        lastNow = now
        if fastOutbound(packet, tenant: tenant, now: now) { return .toOutside }
        return fullOutbound(packet, tenant: tenant, now: now)
    }

    mutating func fullOutbound(_ packet: UnsafeMutableRawBufferPointer, tenant: UInt32, now: Timestamp) -> Verdict {
        do {
            return try outbound(try Self.validate(packet), tenant: tenant, now: now)
        } catch {
            return drop(error)
        }
    }

    /// Translates a packet that arrived on the outside interface.
    public mutating func translateInbound(_ packet: UnsafeMutableRawBufferPointer, now: Timestamp) -> Verdict {
        lastNow = now
        if let t = fastInbound(packet, now: now) { return .toInside(tenant: t) }
        return fullInbound(packet, now: now)
    }

    mutating func fullInbound(_ packet: UnsafeMutableRawBufferPointer, now: Timestamp) -> Verdict {
        do throws(DropReason) {
            let ip = try Self.validate(packet)
            guard isOutside(ip.destination.rawValue) else { throw .notNATTraffic }
            return try inbound(ip, now: now, hairpin: false)
        } catch {
            return drop(error)
        }
    }

    /// The second half of hairpinning (RFC 4787 REQ-9, RFC 5382 REQ-8, RFC 5508 REQ-7) for a packet that
    /// an engine with ``deferHairpinning`` translated outbound: the inbound translation toward the inside
    /// host that owns the destination. Only useful when `configuration.hairpinning` is on.
    public mutating func translateHairpinned(_ packet: UnsafeMutableRawBufferPointer, now: Timestamp) -> Verdict {
        lastNow = now
        do throws(DropReason) {
            let ip = try Self.validate(packet)
            guard isOutside(ip.destination.rawValue) else { throw .notNATTraffic }
            return try inbound(ip, now: now, hairpin: true)
        } catch {
            return drop(error)
        }
    }

    /// Convenience for tests and tools: translates bytes in an array in place.
    public mutating func process(_ packet: inout [UInt8], tenant: UInt32 = 0, now: Timestamp) -> Verdict {
        packet.withUnsafeMutableBytes { process($0, tenant: tenant, now: now) }
    }

    /// Takes the next packet the engine generated; its bytes are valid until the next engine call.
    public mutating func nextOutput() -> (bytes: UnsafeMutableRawBufferPointer, verdict: Verdict)? {
        outbox.pop()
    }
}
