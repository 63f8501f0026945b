import NATCore
import NATWire

/// NAPT64's part of the translator's fast path and burst pipeline (see ``NAT64Mapping``): an unfragmented
/// TCP or UDP packet of an existing session, mapped exactly as ``NAPT64Mapping/map6to4(source:destination:transport:now:)``
/// and ``NAPT64Mapping/map4to6(source:destination:transport:hairpin:now:)`` map it, or nil before touching
/// anything; and the prefetch stages that bring the IPv6 host table's and the session table's lines
/// into cache ahead of the packet.
///
/// Burst stages, IPv6 side: peek (host hash, host bucket prefetched) → 1 (host bucket read: its first
/// record prefetched, the session hash computed with that host id and the session bucket prefetched) →
/// 2 (session bucket read: the session record prefetched). IPv4 side: peek (session hash, bucket) → 1
/// (the session record) → 2 (the session's IPv6 host record, for the destination address).
extension NAPT64Mapping {
    @inlinable public static var hasEstablishedFastPath: Bool { true }
    @inlinable public static var burstStages: Int { 2 }

    /// The IPv4 address under the prefix, or nil (the full path throws for it).
    @inlinable @inline(__always)
    func embeddedIPv4(_ a: IPv6Address) -> UInt32? {
        if prefixIs96 {
            guard a.high == prefixHigh && a.low >> 32 == prefixLow >> 32 else { return nil }
            return UInt32(truncatingIfNeeded: a.low)
        }
        return prefix.extractUnchecked(a)?.rawValue
    }

    @inlinable @inline(__always)
    public mutating func mapEstablished6to4(source: IPv6Address, destination: IPv6Address, transport t: NAT64Transport,
                                            now: Timestamp, hint: NAT64BurstHint) -> NAT64Mapped4? {
        guard let y = embeddedIPv4(destination) else { return nil }
        if restrictsToGlobal && !SpecialPurposeIPv4.isGlobal(IPv4Address(y)) { return nil }
        // RFC 6146 §3.8: hairpinned packets take the full path.
        if hairpinning && isPoolAddress(IPv4Address(y)) { return nil }
        let proto = t.protocolNumber
        let local = t.ports.source
        let rp = t.ports.destination
        let ours = hint.direction == 1
        let hid = ours ? hosts.lookup(hash: hint.hashA, source) : hosts.lookup(source)
        guard hid != 0 else { return nil }
        let sid = ours && hint.id == hid
            ? table.lookupFromInside(hash: hint.hashB, tenant: 0, proto: proto, insideAddress: hid, insidePort: local,
                                     remoteAddress: y, remotePort: rp)
            : table.lookupFromInside(tenant: 0, proto: proto, insideAddress: hid, insidePort: local,
                                     remoteAddress: y, remotePort: rp)
        guard sid != 0 else { return nil }
        sessionPacket(sid, proto: proto, flags: t.tcpFlags, fromInside: true, now: now.sessionSeconds)
        let s = table.sessions + Int(sid)
        return NAT64Mapped4(source: IPv4Address(s.pointee.outsideAddress), destination: IPv4Address(y),
                            ports: NAT64Ports(source: s.pointee.outsidePort, destination: rp))
    }

    @inlinable @inline(__always)
    public mutating func mapEstablished4to6(source: IPv4Address, destination: IPv4Address, transport t: NAT64Transport,
                                            now: Timestamp, hint: NAT64BurstHint) -> NAT64Mapped6? {
        if restrictsToGlobal && !SpecialPurposeIPv4.isGlobal(source) { return nil }
        let proto = t.protocolNumber
        let local = t.ports.destination
        let rp = t.ports.source
        let sid = hint.direction == 2
            ? table.lookupFromOutside(hash: hint.hashA, proto: proto, outsideAddress: destination.rawValue, outsidePort: local,
                                      remoteAddress: source.rawValue, remotePort: rp)
            : table.lookupFromOutside(proto: proto, outsideAddress: destination.rawValue, outsidePort: local,
                                      remoteAddress: source.rawValue, remotePort: rp)
        guard sid != 0 else { return nil }
        sessionPacket(sid, proto: proto, flags: t.tcpFlags, fromInside: false, now: now.sessionSeconds)
        let s = table.sessions + Int(sid)
        let src = prefixIs96 ? IPv6Address(high: prefixHigh, low: prefixLow | UInt64(source.rawValue))
                             : prefix.embedUnchecked(source)
        return NAT64Mapped6(source: src, destination: hosts.address(s.pointee.insideAddress),
                            ports: NAT64Ports(source: rp, destination: s.pointee.insidePort))
    }

    @inlinable @inline(__always)
    public func burstPeek(_ p: UnsafeRawPointer, count: Int) -> NAT64BurstHint {
        var h = NAT64BurstHint()
        guard count >= 28 else { return h }
        let v = load8(p, 0)
        if v >> 4 == 6 {
            guard count >= IPv6Layout.headerLength + 4 else { return h }
            let nh = load8(p, IPv6Layout.nextHeader)
            guard nh == IPProtocol.tcp || nh == IPProtocol.udp,
                  let y = embeddedIPv4(loadIPv6Address(p, IPv6Layout.destination)) else { return h }
            h.direction = 1
            h.proto = nh
            h.localPort = load16(p, IPv6Layout.headerLength)
            h.remotePort = load16(p, IPv6Layout.headerLength + 2)
            h.remote = y
            h.hashA = hosts.hash(loadIPv6Address(p, IPv6Layout.source))
            hosts.prefetchBucket(hash: h.hashA)
        } else if v >> 4 == 4 {
            let hl = Int(v & 0x0F) << 2
            guard hl >= IPv4Layout.minimumHeaderLength, count >= hl + 4,
                  load16(p, IPv4Layout.flagsFragmentOffset) & IPv4Layout.offsetMask == 0 else { return h }
            let proto = load8(p, IPv4Layout.protocolNumber)
            guard proto == IPProtocol.tcp || proto == IPProtocol.udp else { return h }
            h.direction = 2
            h.proto = proto
            h.hashA = table.prefetchFromOutside(proto: proto, outsideAddress: load32(p, IPv4Layout.destination),
                                                outsidePort: load16(p, hl + 2), remoteAddress: load32(p, IPv4Layout.source),
                                                remotePort: load16(p, hl))
        }
        return h
    }

    @inlinable @inline(__always)
    public func burstPrefetch(_ h: inout NAT64BurstHint, stage: Int) {
        if h.direction == 1 {
            if stage == 1 {
                h.id = hosts.prefetchFirstRecord(hash: h.hashA)
                guard h.id != 0 else { return }
                h.hashB = table.prefetchFromInside(tenant: 0, proto: h.proto, insideAddress: h.id, insidePort: h.localPort,
                                                   remoteAddress: h.remote, remotePort: h.remotePort)
            } else if h.id != 0 {
                table.prefetchSession(insideHash: h.hashB)
            }
        } else {
            if stage == 1 {
                h.id = table.prefetchSession(outsideHash: h.hashA)
            } else if h.id != 0 {
                hosts.prefetchRecord(table.sessions[Int(h.id)].insideAddress)
            }
        }
    }
}
