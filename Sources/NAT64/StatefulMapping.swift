import NATCore
import NATWire

/// Stateful NAT64 (RFC 6146) as a ``NAT64Mapping``: IPv6 hosts share an IPv4 pool by ports, and every
/// flow gets a BIB entry and a session. Use it as `NAT64Translator<NAPT64Mapping>` (``NAPT64Translator``);
/// call ``expire(now:)`` regularly (every 100 ms to 1 s) and drain ``NAT64Translator/nextOutput()`` after it.
///
/// - Tables (RFC 6146 §3.1, §3.2): NATCore's ``SessionTable`` holds the BIB (its mappings) and the session
///   table, both reachable from the IPv6 side and the IPv4 side. Its keys hold 32-bit addresses, so each
///   IPv6 host is interned to a 32-bit id (``IPv6HostTable``) that stands for it as the "inside address";
///   the remote address is the IPv4 address embedded in the IPv6 destination (RFC 6052).
/// - Mapping is endpoint-independent always (RFC 6146 §3.5.1 REQ); filtering is endpoint-independent or
///   address-dependent (``NAPT64Configuration/filtering``).
/// - IPv4 transport addresses (RFC 6146 §3.5.1.1): from the pool, keeping the port's range (0-1023 or
///   1024-65535) and parity, chosen by the RFC 6056 §3.3.3 hash with a bounded number of attempts;
///   ICMP echo identifiers likewise (RFC 6146 §3.5.3). Static BIB entries from the configuration.
/// - TCP (RFC 6146 §3.5.2): the state machine shared with NAPT44 (``TCPState``, RFC 7857 §2.1 RST
///   handling); an IPv4 SYN without a BIB entry (or, with address-dependent filtering, without a session
///   toward its source) is kept 6 s and then answered with ICMP Port Unreachable or dropped; an IPv6 SYN
///   for the same connection discards it. Expired ESTABLISHED sessions are probed (§3.5.2.2).
/// - Timers (RFC 6146 §4): per-class idle lists, O(1) work per expired session. Packets from either
///   side refresh their session (TCP through its state machine).
/// - ICMP errors (RFC 6146 §3.5.4, §3.6): the packet inside is looked up in reverse; errors never create
///   state and never refresh it.
/// - Hairpinning (RFC 6146 §3.8): an IPv6 packet to a pool address comes back to the IPv6 host that owns
///   that BIB entry, from the sender's own IPv4 transport address (under the prefix).
/// - Limits: sessions, BIB entries, IPv6 hosts, sessions and BIB entries per host. A new flow that does
///   not fit is dropped and counted, never by evicting a live one (RFC 6888 REQ-11); an IPv6 packet gets
///   ICMPv6 Destination Unreachable, Address Unreachable (RFC 6146 §3.5.1.1).
public struct NAPT64Mapping: NAT64Mapping, ~Copyable {
    public let configuration: NAPT64Configuration
    /// BIB entries (``SessionTable`` mappings; inside address = IPv6 host id) and sessions.
    public var table: SessionTable
    /// The IPv6 hosts behind the ids.
    public var hosts: IPv6HostTable
    /// State events and timer-driven drops: sessions and BIB entries made and ended, unsolicited SYNs
    /// whose time ran out (`unsolicited_syn`), ICMP errors the mapping sent. Packet drops are counted by
    /// the translator.
    public var counters = Counters()
    /// TCP probes sent for expired ESTABLISHED sessions (RFC 6146 §3.5.2.2).
    public internal(set) var probesSent: UInt64 = 0
    /// Static BIB entries added at run time (PCP MAP), by BIB entry id, and when each ends (`.max`: never).
    /// Looked at by ``expire(now:)`` only, never per packet.
    var runtimeBindings: [UInt32: Timestamp] = [:]

    @usableFromInline var fragments: FragmentTracker
    @usableFromInline var heldSYNs: HeldPackets
    @usableFromInline var generated: Outbox
    @usableFromInline let prefix: NAT64Prefix
    @usableFromInline let restrictsToGlobal: Bool
    /// A /96 prefix (the usual case: the IPv4 address is the last 32 bits) is extracted and embedded inline.
    @usableFromInline let prefixIs96: Bool
    @usableFromInline let prefixHigh: UInt64
    @usableFromInline let prefixLow: UInt64
    @usableFromInline let poolNets: IPv4PrefixMatcher
    @usableFromInline let hairpinning: Bool
    @usableFromInline let fragmentMilliseconds: UInt64
    let poolAddresses: [UInt32]
    /// IPv4 ports of TCP and UDP BIB entries (ranges kept apart, parity kept), and ICMP identifiers.
    let tcpPorts: PortAllocator
    let udpPorts: PortAllocator
    let icmpIdentifiers: PortAllocator
    let seed: UInt64
    var nextIdentification: UInt16 = 1
    // The packet inside the ICMP error being translated, as ``mapInner6to4`` / ``mapInner4to6`` found it,
    // for the outer call that follows.
    @usableFromInline var innerOutside: UInt32 = 0
    @usableFromInline var innerHost: UInt32 = 0
    @usableFromInline var innerValid = false

    /// Builds the tables and installs the static BIB entries; the configuration must pass
    /// ``NAPT64Configuration/validate()``.
    public init(configuration c: NAPT64Configuration) throws(ConfigurationError) {
        try c.validate()
        configuration = c
        var s = c.hashSeed ?? UInt64.random(in: 1...UInt64.max)
        if s == 0 { s = 0x6146 }
        seed = s
        let bindings = c.maxBindings ?? c.maxSessions
        var t = SessionTable(sessionCapacity: c.maxSessions, mappingCapacity: bindings, hostCapacity: 1, seed: s)
        // Every idle timeout under 2^16 s: an established packet need not read the second half of its session.
        t.refreshReadsHighBits = TimerClass.allCases.contains { c.timeouts.seconds(for: $0) >= 1 << 16 }
        var h = IPv6HostTable(capacity: c.hostCapacity, seed: s &* 0x9E37)
        for (i, b) in c.staticBindings.enumerated() {
            // validate() checked that the static entries fit the BIB and the host table.
            guard let id = h.intern(b.ipv6) else { preconditionFailure("static_bib[\(i)]: host table full") }
            var rec = MappingRecord()
            rec.insideAddress = id
            rec.insidePort = b.ipv6Port
            rec.outsideAddress = b.ipv4.rawValue
            rec.outsidePort = b.ipv4Port
            rec.proto = b.proto.ipv4Number
            rec.flags = MappingRecord.flagStatic
            guard t.createMapping(rec) != nil else { preconditionFailure("static_bib[\(i)]: BIB full") }
            h.records[Int(id)].bindings += 1
        }
        table = t
        hosts = h
        fragments = FragmentTracker(capacity: c.maxFragmentFlows, seed: s &* 31)
        heldSYNs = HeldPackets(capacity: c.maxHeldSYNs, slotSize: 576)
        generated = Outbox(slots: 64, slotSize: 576)
        prefix = c.prefix
        restrictsToGlobal = c.prefix.restrictsToGlobalIPv4
        prefixIs96 = c.prefix.length == 96
        prefixHigh = c.prefix.prefix.address.high
        prefixLow = c.prefix.prefix.address.low
        poolNets = IPv4PrefixMatcher(c.pool.map { ($0.address.rawValue, $0.mask) })
        hairpinning = c.hairpinning
        fragmentMilliseconds = c.timeouts.fragmentMilliseconds
        poolAddresses = c.poolAddresses.map(\.rawValue)
        tcpPorts = PortAllocator(ports: c.tcpPorts, keepsRange: true, preservesPort: c.portPreservation,
                                 preservesParity: c.parityPreservation, maxAttempts: c.maxPortAttempts, seed: s)
        udpPorts = PortAllocator(ports: c.udpPorts, keepsRange: true, preservesPort: c.portPreservation,
                                 preservesParity: c.parityPreservation, maxAttempts: c.maxPortAttempts, seed: s)
        icmpIdentifiers = PortAllocator(ports: c.icmpIdentifiers, keepsRange: false, preservesPort: c.portPreservation,
                                        preservesParity: false, maxAttempts: c.maxPortAttempts, seed: s)
    }

    deinit {
        poolNets.deallocate()
    }

    // MARK: Helpers

    /// The IPv4 protocol a packet's sessions are kept under.
    @inlinable @inline(__always)
    static func proto(_ k: NAT64PacketKind) -> UInt8 {
        switch k {
        case .tcp: IPProtocol.tcp
        case .udp: IPProtocol.udp
        default: IPProtocol.icmp
        }
    }

    /// Whether the port of "our" host (the IPv6 host, or its IPv4 transport address) is the packet's
    /// source field: TCP and UDP packets from it (`towardLocal` false); an echo identifier sits in
    /// ``NAT64Ports/source`` for requests and ``NAT64Ports/destination`` for replies, whichever way they go.
    @inlinable @inline(__always)
    static func localIsSource(_ k: NAT64PacketKind, towardLocal: Bool) -> Bool {
        switch k {
        case .icmpEchoRequest: true
        case .icmpEchoReply: false
        default: !towardLocal
        }
    }

    @inlinable @inline(__always)
    static func localPort(_ t: NAT64Transport, towardLocal: Bool) -> UInt16 {
        localIsSource(t.kind, towardLocal: towardLocal) ? t.ports.source : t.ports.destination
    }

    /// The remote port of a TCP/UDP packet; 0 for echo (sessions are keyed by the identifier alone).
    @inlinable @inline(__always)
    static func remotePort(_ t: NAT64Transport, towardLocal: Bool) -> UInt16 {
        if t.kind == .icmpEchoRequest || t.kind == .icmpEchoReply { return 0 }
        return towardLocal ? t.ports.source : t.ports.destination
    }

    /// `t`'s ports with our host's port replaced by `local`.
    @inlinable @inline(__always)
    static func ports(_ t: NAT64Transport, local: UInt16, towardLocal: Bool) -> NAT64Ports {
        var p = t.ports
        if localIsSource(t.kind, towardLocal: towardLocal) { p.source = local } else { p.destination = local }
        return p
    }

    /// The IPv4 address under the prefix (RFC 6052 §2.3), or why there is none.
    @inlinable @inline(__always)
    func remote4(_ a: IPv6Address) throws(DropReason) -> IPv4Address {
        let v: IPv4Address
        if prefixIs96 {
            guard a.high == prefixHigh && a.low >> 32 == prefixLow >> 32 else { throw .noMapping }
            v = IPv4Address(UInt32(truncatingIfNeeded: a.low))
        } else {
            guard let x = prefix.extractUnchecked(a) else { throw .noMapping }
            v = x
        }
        if restrictsToGlobal && !SpecialPurposeIPv4.isGlobal(v) { throw .nonGlobalIPv4Address }
        return v
    }

    /// The IPv6 form of an IPv4 host (RFC 6052 §2.3).
    @inlinable @inline(__always)
    func remote6(_ a: IPv4Address) throws(DropReason) -> IPv6Address {
        if restrictsToGlobal && !SpecialPurposeIPv4.isGlobal(a) { throw .nonGlobalIPv4Address }
        if prefixIs96 { return IPv6Address(high: prefixHigh, low: prefixLow | UInt64(a.rawValue)) }
        return prefix.embedUnchecked(a)
    }

    /// Whether `a` is a pool address.
    @inlinable @inline(__always)
    public func isPoolAddress(_ a: IPv4Address) -> Bool {
        poolNets.contains(a.rawValue)
    }

    @inlinable @inline(__always)
    static func fragmentKey(_ a: UInt32, _ b: UInt32, identification: UInt32, proto: UInt8, toIPv6: Bool) -> (UInt64, UInt64) {
        (UInt64(a) << 32 | UInt64(b), UInt64(identification) << 16 | UInt64(proto) << 8 | (toIPv6 ? 1 : 0))
    }

    /// A packet of session `sid`, in either direction: a TCP segment goes through ``tcpSegment``, any other
    /// protocol refreshes the session's last use.
    @inlinable @inline(__always)
    mutating func sessionPacket(_ sid: UInt32, proto: UInt8, flags: TCPFlags, fromInside: Bool, now: UInt32) {
        if proto == IPProtocol.tcp {
            tcpSegment(sid, flags: flags, fromInside: fromInside, now: now)
        } else {
            table.touch(sid, now: now)
        }
    }

    /// A TCP segment of session `sid`: the shared state machine (RFC 6146 §3.5.2.2, RFC 7857 §2.1), plus
    /// one rule of our own: a SYN (without ACK) in "V6 FIN + V4 FIN RCV" opens the same 4-tuple again
    /// (V6 INIT or V4 INIT, on TCP_TRANS), as connection tracking does after TIME-WAIT; under RFC 6146
    /// alone the session would run out 4 minutes after the old connection closed and take the new one
    /// with it.
    @usableFromInline
    mutating func tcpSegment(_ sid: UInt32, flags: TCPFlags, fromInside: Bool, now: UInt32) {
        let l = table.sessionLinks + Int(sid)
        if l.pointee.state == TCPState.bothFIN.rawValue && flags.contains(.syn) && !flags.contains(.ack) {
            l.pointee.state = (fromInside ? TCPState.outboundInit : TCPState.inboundInit).rawValue
            table.sessions[Int(sid)].flags &= ~SessionRecord.flagCleanClose
            table.setTimerClass(sid, .tcpTransitory, now: now)
            return
        }
        table.tcpTransition(sid, flags: flags, fromInside: fromInside, now: now)
    }

    // MARK: NAT64Mapping

    /// RFC 6146 §3.4/§3.5: an IPv6 packet's session (made when it is the first of its flow), refreshed,
    /// and its IPv4 addresses and ports: (T, t) from the BIB entry, Y from the destination under the prefix.
    ///
    /// The common case — an unfragmented UDP datagram or echo message of an existing session, to a /96
    /// prefix — is handled inline; everything else (TCP and its state machine, new flows, fragments, ICMP
    /// errors, other prefix lengths) by ``map6to4Full(source:destination:transport:now:)``.
    @inlinable @inline(__always)
    public mutating func map6to4(source: IPv6Address, destination: IPv6Address, transport t: NAT64Transport,
                                 now: Timestamp) throws(DropReason) -> NAT64Mapped4 {
        if (t.kind == .udp || t.kind == .icmpEchoRequest || t.kind == .icmpEchoReply) && !t.isFragment && prefixIs96
            && !restrictsToGlobal && destination.high == prefixHigh && destination.low >> 32 == prefixLow >> 32 {
            let y = UInt32(truncatingIfNeeded: destination.low)
            let udp = t.kind == .udp
            let local = Self.localPort(t, towardLocal: false)
            let hid = hosts.lookup(source)
            if hid != 0 {
                let sid = table.lookupFromInside(tenant: 0, proto: udp ? IPProtocol.udp : IPProtocol.icmp, insideAddress: hid,
                                                 insidePort: local, remoteAddress: y, remotePort: udp ? t.ports.destination : 0)
                if sid != 0 {
                    table.touch(sid, now: now.sessionSeconds)
                    let s = table.sessions + Int(sid)
                    return NAT64Mapped4(source: IPv4Address(s.pointee.outsideAddress), destination: IPv4Address(y),
                                        ports: Self.ports(t, local: s.pointee.outsidePort, towardLocal: false))
                }
            }
        }
        return try map6to4Full(source: source, destination: destination, transport: t, now: now)
    }

    /// ``map6to4(source:destination:transport:now:)`` for every packet.
    @usableFromInline @inline(never)
    mutating func map6to4Full(source: IPv6Address, destination: IPv6Address, transport t: NAT64Transport,
                              now: Timestamp) throws(DropReason) -> NAT64Mapped4 {
        let y = try remote4(destination)
        switch t.kind {
        case .tcp, .udp, .icmpEchoRequest, .icmpEchoReply:
            let proto = Self.proto(t.kind)
            let local = Self.localPort(t, towardLocal: false)
            let rp = Self.remotePort(t, towardLocal: false)
            let hid = hosts.lookup(source)
            if hid != 0 {
                let sid = table.lookupFromInside(tenant: 0, proto: proto, insideAddress: hid, insidePort: local,
                                                 remoteAddress: y.rawValue, remotePort: rp)
                if sid != 0 {
                    sessionPacket(sid, proto: proto, flags: t.tcpFlags, fromInside: true, now: now.sessionSeconds)
                    let s = table.sessions + Int(sid)
                    let outside = s.pointee.outsideAddress
                    if t.isFragment { recordFragment(hid, y.rawValue, outside: outside, t, toIPv6: false, now: now) }
                    return NAT64Mapped4(source: IPv4Address(outside), destination: y,
                                        ports: Self.ports(t, local: s.pointee.outsidePort, towardLocal: false))
                }
            }
            return try newFlow6to4(source: source, hostID: hid, remote: y, proto: proto, local: local, remotePort: rp,
                                   transport: t, now: now)
        case .icmpError:
            // RFC 6146 §3.5.4: the outer source is the IPv4 address of the BIB entry the packet inside used.
            guard innerValid else { throw .noSessionForICMPError }
            innerValid = false
            return NAT64Mapped4(source: IPv4Address(innerOutside), destination: y, ports: t.ports)
        case .other:
            guard t.isFragment else { throw .unsupportedProtocol }
            let hid = hosts.lookup(source)
            let (a, b) = Self.fragmentKey(hid, y.rawValue, identification: t.fragmentIdentification,
                                          proto: t.protocolNumber, toIPv6: false)
            guard hid != 0, let f = fragments.lookup(keyA: a, keyB: b, now: now.milliseconds) else {
                throw .fragmentBeforeFirst
            }
            return NAT64Mapped4(source: IPv4Address(f.newSource), destination: y, ports: t.ports)
        }
    }

    /// RFC 6146 §3.4/§3.5: an IPv4 packet's session (found by the IPv4 side; made when the BIB entry
    /// exists and filtering lets it in), and its IPv6 addresses and ports: (X', x) from the BIB entry, the
    /// source under the prefix.
    ///
    /// The common case — an unfragmented UDP datagram or echo message of an existing session, with a /96
    /// prefix — is handled inline; everything else by ``map4to6Full(source:destination:transport:hairpin:now:)``.
    @inlinable @inline(__always)
    public mutating func map4to6(source: IPv4Address, destination: IPv4Address, transport t: NAT64Transport,
                                 hairpin: Bool, now: Timestamp) throws(DropReason) -> NAT64Mapped6 {
        if (t.kind == .udp || t.kind == .icmpEchoRequest || t.kind == .icmpEchoReply) && !t.isFragment && prefixIs96
            && !restrictsToGlobal {
            let udp = t.kind == .udp
            let sid = table.lookupFromOutside(proto: udp ? IPProtocol.udp : IPProtocol.icmp, outsideAddress: destination.rawValue,
                                              outsidePort: Self.localPort(t, towardLocal: true), remoteAddress: source.rawValue,
                                              remotePort: udp ? t.ports.source : 0)
            if sid != 0 {
                table.touch(sid, now: now.sessionSeconds)
                let s = table.sessions + Int(sid)
                return NAT64Mapped6(source: IPv6Address(high: prefixHigh, low: prefixLow | UInt64(source.rawValue)),
                                    destination: hosts.address(s.pointee.insideAddress),
                                    ports: Self.ports(t, local: s.pointee.insidePort, towardLocal: true))
            }
        }
        return try map4to6Full(source: source, destination: destination, transport: t, hairpin: hairpin, now: now)
    }

    /// ``map4to6(source:destination:transport:hairpin:now:)`` for every packet.
    @usableFromInline @inline(never)
    mutating func map4to6Full(source: IPv4Address, destination: IPv4Address, transport t: NAT64Transport,
                              hairpin: Bool, now: Timestamp) throws(DropReason) -> NAT64Mapped6 {
        switch t.kind {
        case .tcp, .udp, .icmpEchoRequest, .icmpEchoReply:
            let proto = Self.proto(t.kind)
            let local = Self.localPort(t, towardLocal: true)
            let rp = Self.remotePort(t, towardLocal: true)
            let sid = table.lookupFromOutside(proto: proto, outsideAddress: destination.rawValue, outsidePort: local,
                                              remoteAddress: source.rawValue, remotePort: rp)
            guard sid != 0 else {
                return try newFlow4to6(source: source, destination: destination, proto: proto, local: local,
                                       remotePort: rp, transport: t, hairpin: hairpin, now: now)
            }
            sessionPacket(sid, proto: proto, flags: t.tcpFlags, fromInside: false, now: now.sessionSeconds)
            let s = table.sessions + Int(sid)
            let hid = s.pointee.insideAddress
            let src = try remote6(source)
            if t.isFragment { recordFragment(source.rawValue, destination.rawValue, outside: hid, t, toIPv6: true, now: now) }
            return NAT64Mapped6(source: src, destination: hosts.address(hid),
                                ports: Self.ports(t, local: s.pointee.insidePort, towardLocal: true))
        case .icmpError:
            // RFC 6146 §3.5.4, RFC 7915 §4.1: the error's source (the server or a router) under the prefix,
            // even when it is not global (troubleshooting); the destination is the IPv6 host of the session.
            guard innerValid else { throw .noSessionForICMPError }
            innerValid = false
            return NAT64Mapped6(source: prefix.embedUnchecked(source), destination: hosts.address(innerHost), ports: t.ports)
        case .other:
            guard t.isFragment else { throw .unsupportedProtocol }
            let (a, b) = Self.fragmentKey(source.rawValue, destination.rawValue, identification: t.fragmentIdentification,
                                          proto: t.protocolNumber, toIPv6: true)
            guard let f = fragments.lookup(keyA: a, keyB: b, now: now.milliseconds),
                  hosts.records[Int(f.newSource)].isLive else { throw .fragmentBeforeFirst }
            return NAT64Mapped6(source: try remote6(source), destination: hosts.address(f.newSource), ports: t.ports)
        }
    }

    /// RFC 6146 §3.5.4: the packet inside an ICMPv6 error went from an IPv4 host (Y', under the prefix) to an
    /// IPv6 host; its session is looked up from the IPv6 side (then its BIB entry), and it becomes what
    /// the IPv4 host sent: Y → (T, t). Nothing is created or refreshed.
    @inlinable
    public mutating func mapInner6to4(source: IPv6Address, destination: IPv6Address, transport t: NAT64Transport,
                                      now: Timestamp) throws(DropReason) -> NAT64Mapped4 {
        innerValid = false
        let y = try remote4(source)
        switch t.kind {
        case .tcp, .udp, .icmpEchoRequest, .icmpEchoReply: break
        default: throw .noSessionForICMPError
        }
        let proto = Self.proto(t.kind)
        let local = Self.localPort(t, towardLocal: true)
        let rp = Self.remotePort(t, towardLocal: true)
        let hid = hosts.lookup(destination)
        guard hid != 0 else { throw .noSessionForICMPError }
        let sid = table.lookupFromInside(tenant: 0, proto: proto, insideAddress: hid, insidePort: local,
                                         remoteAddress: y.rawValue, remotePort: rp)
        let outside: UInt32, outsidePort: UInt16
        if sid != 0 {
            outside = table.sessions[Int(sid)].outsideAddress
            outsidePort = table.sessions[Int(sid)].outsidePort
        } else {
            let mid = table.lookupMapping(tenant: 0, proto: proto, insideAddress: hid, insidePort: local,
                                          qualifierAddress: 0, qualifierPort: 0)
            guard mid != 0 else { throw .noSessionForICMPError }
            outside = table.mappings[Int(mid)].outsideAddress
            outsidePort = table.mappings[Int(mid)].outsidePort
        }
        innerOutside = outside
        innerHost = hid
        innerValid = true
        return NAT64Mapped4(source: y, destination: IPv4Address(outside), ports: Self.ports(t, local: outsidePort, towardLocal: true))
    }

    /// RFC 6146 §3.5.4: the packet inside an ICMPv4 error went from (T, t) to an IPv4 host; its session is
    /// looked up from the IPv4 side (then its BIB entry), and it becomes what the IPv6 host sent:
    /// (X', x) → Y'. Nothing is created or refreshed.
    @inlinable
    public mutating func mapInner4to6(source: IPv4Address, destination: IPv4Address, transport t: NAT64Transport,
                                      hairpin: Bool, now: Timestamp) throws(DropReason) -> NAT64Mapped6 {
        innerValid = false
        switch t.kind {
        case .tcp, .udp, .icmpEchoRequest, .icmpEchoReply: break
        default: throw .noSessionForICMPError
        }
        let proto = Self.proto(t.kind)
        let local = Self.localPort(t, towardLocal: false)
        let rp = Self.remotePort(t, towardLocal: false)
        let sid = table.lookupFromOutside(proto: proto, outsideAddress: source.rawValue, outsidePort: local,
                                          remoteAddress: destination.rawValue, remotePort: rp)
        let hid: UInt32, insidePort: UInt16
        if sid != 0 {
            hid = table.sessions[Int(sid)].insideAddress
            insidePort = table.sessions[Int(sid)].insidePort
        } else {
            let mid = table.lookupMapping(proto: proto, outsideAddress: source.rawValue, outsidePort: local)
            guard mid != 0, !table.mappings[Int(mid)].isHeld else { throw .noSessionForICMPError }
            hid = table.mappings[Int(mid)].insideAddress
            insidePort = table.mappings[Int(mid)].insidePort
        }
        let y6 = try remote6(destination)
        innerOutside = source.rawValue
        innerHost = hid
        innerValid = true
        return NAT64Mapped6(source: hosts.address(hid), destination: y6, ports: Self.ports(t, local: insidePort, towardLocal: false))
    }

    /// RFC 6146 §3.8: a packet to one of the pool's addresses goes back to the IPv6 side.
    @inlinable @inline(__always)
    public func isHairpin(_ destination: IPv4Address, ipv6Destination: IPv6Address) -> Bool {
        hairpinning && isPoolAddress(destination)
    }

    /// RFC 6146 §3.5.2.2: an unsolicited IPv4 SYN is kept (6 s); RFC 6146 §3.5.1.1: an IPv6 packet for
    /// which no BIB entry or session can be made gets ICMPv6 Destination Unreachable, code 3 (Address
    /// Unreachable).
    public mutating func refusal(of packet: UnsafeRawBufferPointer, reason: DropReason, now: Timestamp) -> NAT64RefusalAction {
        switch reason {
        case .unsolicitedSYN:
            return holdSYN(packet, now: now) ? .held : .drop
        case .sessionTableFull, .mappingTableFull, .hostTableFull, .hostSessionLimit, .hostPortLimit, .portsExhausted:
            guard let p = packet.baseAddress, packet.count > 0, p.load(as: UInt8.self) >> 4 == 6 else { return .drop }
            return .unreachable(code: ICMPv6UnreachableCode.address)
        default:
            return .drop
        }
    }

    public mutating func nextGeneratedPacket() -> (bytes: UnsafeMutableRawBufferPointer, verdict: Verdict)? {
        generated.pop()
    }
}

/// A translator for stateful NAT64 (RFC 6146).
public typealias NAPT64Translator = NAT64Translator<NAPT64Mapping>
