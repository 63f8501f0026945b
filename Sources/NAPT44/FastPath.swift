import NATCore
import NATWire

/// The established-flow fast path: the common packet (IPv4 without options, not a fragment, TCP or UDP,
/// of a session that exists, not hairpinned) translated with one pass over its header. Anything else —
/// a new flow, ICMP, fragments, options, a bad checksum, a malformed header — returns false before
/// changing anything, and the full pipeline (``outbound(_:tenant:now:)`` / ``inbound(_:now:hairpin:)``)
/// handles it, drops included. The result is byte for byte the full pipeline's (tests compare them).
extension NAPT44Engine {
    /// Checks the header the fast path relies on: version 4, IHL 5, total length within the buffer
    /// and big enough for a transport header, not a fragment, header checksum valid. Returns the total
    /// length, or 0.
    @inline(__always)
    static func fastHeaderLength(_ p: UnsafeMutableRawPointer, _ available: Int) -> Int {
        guard available >= 28, p.load(as: UInt8.self) == 0x45 else { return 0 }
        let total = Int(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
        guard total >= 28, total <= available else { return 0 }
        // Flags and fragment offset: no MF, offset 0 (DF may be set; the reserved bit sends it the slow way).
        guard UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 6, as: UInt16.self)) & 0xBFFF == 0 else { return 0 }
        // RFC 1071 over the five header words. One's complement addition does not care about byte
        // order, so the words are summed as they lie in memory and the all-ones result checked.
        let a = p.loadUnaligned(as: UInt64.self)
        let b = p.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        let c = p.loadUnaligned(fromByteOffset: 16, as: UInt32.self)
        var s = (a & 0xFFFF_FFFF) &+ (a >> 32) &+ (b & 0xFFFF_FFFF) &+ (b >> 32) &+ UInt64(c)
        s = (s & 0xFFFF) &+ (s >> 16)
        s = (s & 0xFFFF) &+ (s >> 16)
        s = (s & 0xFFFF) &+ (s >> 16)
        return s == 0xFFFF ? total : 0
    }

    /// The transport header checks of ``incomingTuple(_:inbound:)`` for an unfragmented TCP or UDP
    /// packet with a 20-byte IP header; returns the TCP flags (0 for UDP), or nil to take the slow path.
    @inline(__always)
    static func fastTransport(_ p: UnsafeMutableRawPointer, proto: UInt8, total: Int) -> UInt8? {
        let n = total - 20
        if proto == IPProtocol.udp {
            let len = Int(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 24, as: UInt16.self)))
            return len >= 8 && len <= n ? 0 : nil
        }
        guard proto == IPProtocol.tcp, n >= 20 else { return nil }
        let off = Int(p.load(fromByteOffset: 32, as: UInt8.self) >> 4) << 2
        return off >= 20 && off <= n ? p.load(fromByteOffset: 33, as: UInt8.self) : nil
    }

    /// Writes the new addresses and ports and updates both checksums (RFC 1624), as
    /// ``rewriteAddresses(_:source:destination:)`` and ``rewriteTransport(proto:_:available:addressDelta:sourcePort:destinationPort:icmpIdentifierIsSource:)`` do.
    @inline(__always)
    static func fastRewrite(_ p: UnsafeMutableRawPointer, proto: UInt8, source: UInt32, destination: UInt32,
                            sourcePort: UInt16, destinationPort: UInt16) {
        var d = ChecksumDelta()
        d.replace(UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 12, as: UInt32.self)), with: source)
        d.replace(UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 16, as: UInt32.self)), with: destination)
        let ipSum = UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 10, as: UInt16.self))
        p.storeBytes(of: d.apply(to: ipSum).bigEndian, toByteOffset: 10, as: UInt16.self)
        p.storeBytes(of: source.bigEndian, toByteOffset: 12, as: UInt32.self)
        p.storeBytes(of: destination.bigEndian, toByteOffset: 16, as: UInt32.self)
        d.replace(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 20, as: UInt16.self)), with: sourcePort)
        d.replace(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 22, as: UInt16.self)), with: destinationPort)
        p.storeBytes(of: sourcePort.bigEndian, toByteOffset: 20, as: UInt16.self)
        p.storeBytes(of: destinationPort.bigEndian, toByteOffset: 22, as: UInt16.self)
        let off = proto == IPProtocol.tcp ? 20 + TCPLayout.checksum : 20 + UDPLayout.checksum
        let old = UInt16(bigEndian: p.loadUnaligned(fromByteOffset: off, as: UInt16.self))
        let new = proto == IPProtocol.tcp ? d.apply(to: old) : d.applyUDP(to: old)
        p.storeBytes(of: new.bigEndian, toByteOffset: off, as: UInt16.self)
    }

    /// The packet's start, total length, protocol and TCP flags when it qualifies for the fast path.
    @inline(__always)
    func fastCandidate(_ packet: UnsafeMutableRawBufferPointer) -> (p: UnsafeMutableRawPointer, total: Int, proto: UInt8, flags: UInt8)? {
        guard fastPathEnabled, let p = packet.baseAddress else { return nil }
        let total = Self.fastHeaderLength(p, packet.count)
        guard total != 0 else { return nil }
        let proto = p.load(fromByteOffset: 9, as: UInt8.self)
        guard let flags = Self.fastTransport(p, proto: proto, total: total) else { return nil }
        return (p, total, proto, flags)
    }

    /// An established outbound TCP/UDP packet, translated; false (nothing changed) for anything else.
    /// `hash`: the session key's hash when a burst computed it already.
    @inline(__always)
    mutating func fastOutbound(_ packet: UnsafeMutableRawBufferPointer, tenant: UInt32, now: Timestamp, hash: UInt32? = nil) -> Bool {
        guard let (p, total, proto, flags) = fastCandidate(packet) else { return false }
        let inside = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
        let insidePort = UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 20, as: UInt16.self))
        let remote = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 16, as: UInt32.self))
        let remotePort = UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 22, as: UInt16.self))
        let sid = if let hash {
            table.lookupFromInside(hash: hash, tenant: tenant, proto: proto, insideAddress: inside, insidePort: insidePort,
                                   remoteAddress: remote, remotePort: remotePort)
        } else {
            table.lookupFromInside(tenant: tenant, proto: proto, insideAddress: inside, insidePort: insidePort,
                                   remoteAddress: remote, remotePort: remotePort)
        }
        guard sid != 0 else { return false }
        let s = table.sessions + Int(sid)
        // Addressed to one of our own outside addresses: hairpinning, the full pipeline's job.
        guard !isOutside(s.pointee.remoteAddress) else { return false }
        if proto == IPProtocol.tcp {
            tcpTransition(sid, flags: flags, outbound: true, now: now.seconds)
        } else {
            table.touch(sid, now: now.seconds)
        }
        Self.fastRewrite(p, proto: proto, source: s.pointee.outsideAddress, destination: s.pointee.remoteAddress,
                         sourcePort: s.pointee.outsidePort, destinationPort: s.pointee.remotePort)
        counters.outboundPackets &+= 1
        counters.outboundBytes &+= UInt64(total)
        return true
    }

    /// An inbound TCP/UDP packet of an existing session, translated; the inside tenant, or nil (nothing
    /// changed) for anything else.
    @inline(__always)
    mutating func fastInbound(_ packet: UnsafeMutableRawBufferPointer, now: Timestamp, hash: UInt32? = nil) -> UInt32? {
        guard let (p, total, proto, flags) = fastCandidate(packet) else { return nil }
        let outside = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 16, as: UInt32.self))
        let outsidePort = UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 22, as: UInt16.self))
        let remote = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
        let remotePort = UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 20, as: UInt16.self))
        let sid = if let hash {
            table.lookupFromOutside(hash: hash, proto: proto, outsideAddress: outside, outsidePort: outsidePort,
                                    remoteAddress: remote, remotePort: remotePort)
        } else {
            table.lookupFromOutside(proto: proto, outsideAddress: outside, outsidePort: outsidePort,
                                    remoteAddress: remote, remotePort: remotePort)
        }
        guard sid != 0 else { return nil }
        if proto == IPProtocol.tcp {
            tcpTransition(sid, flags: flags, outbound: false, now: now.seconds)
        } else if inboundRefresh {
            table.touch(sid, now: now.seconds)
        }
        let s = table.sessions + Int(sid)
        Self.fastRewrite(p, proto: proto, source: s.pointee.viaAddress, destination: s.pointee.insideAddress,
                         sourcePort: s.pointee.viaPort, destinationPort: s.pointee.insidePort)
        counters.inboundPackets &+= 1
        counters.inboundBytes &+= UInt64(total)
        return s.pointee.tenant
    }
}
