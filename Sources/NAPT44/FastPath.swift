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
        guard available >= 28 else { return 0 }
        // The first eight bytes as they lie in memory: version 4 and IHL 5 in byte 0; in bytes 6 and 7
        // the flags and fragment offset, of which only DF may be set (no MF, offset 0; the reserved bit
        // sends the packet the slow way). One compare checks both.
        // (Constants written as the little-endian value of those bytes, converted for this machine.)
        let head = p.loadUnaligned(as: UInt64.self)
        guard head & UInt64(littleEndian: 0xFFBF_0000_0000_00FF) == UInt64(littleEndian: 0x45) else { return 0 }
        let total = Int(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
        guard total >= 28, total <= available else { return 0 }
        return Checksum.isValidIPv4Header20(p) ? total : 0
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

    /// Replaces the address pair (bytes 12..<20) and the port pair (bytes 20..<24) with `addresses` and
    /// `ports`, both in wire form (``WireKey``), and updates both checksums (RFC 1624), as
    /// ``rewriteAddresses(_:source:destination:)`` and ``rewriteTransport(proto:_:available:addressDelta:sourcePort:destinationPort:icmpIdentifierIsSource:)`` do.
    /// A one's complement sum does not depend on byte order (RFC 1071 §2.B), so the words are summed as
    /// they lie in memory and each checksum is updated where it lies, without a byte swap.
    @inline(__always)
    static func fastRewrite(_ p: UnsafeMutableRawPointer, proto: UInt8, from oldAddresses: UInt64, _ oldPorts: UInt32,
                            to addresses: UInt64, _ ports: UInt32) {
        var d = ChecksumDelta()
        d.replace(oldAddresses, with: addresses)
        p.storeBytes(of: d.apply(to: p.loadUnaligned(fromByteOffset: 10, as: UInt16.self)), toByteOffset: 10, as: UInt16.self)
        p.storeBytes(of: addresses, toByteOffset: 12, as: UInt64.self)
        d.replace(oldPorts, with: ports)
        p.storeBytes(of: ports, toByteOffset: 20, as: UInt32.self)
        if proto == IPProtocol.tcp {
            let old = p.loadUnaligned(fromByteOffset: 20 + TCPLayout.checksum, as: UInt16.self)
            p.storeBytes(of: d.apply(to: old), toByteOffset: 20 + TCPLayout.checksum, as: UInt16.self)
        } else {
            let old = p.loadUnaligned(fromByteOffset: 20 + UDPLayout.checksum, as: UInt16.self)
            p.storeBytes(of: d.applyUDP(to: old), toByteOffset: 20 + UDPLayout.checksum, as: UInt16.self)
        }
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
        // Source and destination address, source and destination port: the session's inside key as is.
        let addresses = p.loadUnaligned(fromByteOffset: 12, as: UInt64.self)
        let ports = p.loadUnaligned(fromByteOffset: 20, as: UInt32.self)
        let sid = table.lookup(insideWire: addresses, ports: ports, tenant: tenant, proto: proto,
                               hash: hash ?? table.sessionHash(insideWire: addresses, ports: ports, tenant: tenant, proto: proto))
        guard sid != 0 else { return false }
        let s = table.sessions + Int(sid)
        // Addressed to one of our own outside addresses: hairpinning, the full pipeline's job; so is a
        // session a helper watches (its payloads and sequence numbers may change).
        guard s.pointee.flags & (SessionRecord.flagHairpin | SessionRecord.flagHelped) == 0 else { return false }
        if proto == IPProtocol.tcp {
            tcpTransition(sid, flags: flags, outbound: true, now: now.sessionSeconds)
        } else {
            table.touch(sid, now: now.sessionSeconds)
        }
        // The outside key (remote, outside) with its halves exchanged is the new (source, destination).
        Self.fastRewrite(p, proto: proto, from: addresses, ports,
                         to: WireKey.swapped(s.pointee.outsideWire), WireKey.swapped(s.pointee.outsidePortsWire))
        counters.outboundPackets &+= 1
        counters.outboundBytes &+= UInt64(total)
        return true
    }

    /// An inbound TCP/UDP packet of an existing session, translated; the inside tenant, or nil (nothing
    /// changed) for anything else.
    @inline(__always)
    mutating func fastInbound(_ packet: UnsafeMutableRawBufferPointer, now: Timestamp, hash: UInt32? = nil) -> UInt32? {
        guard let (p, total, proto, flags) = fastCandidate(packet) else { return nil }
        let addresses = p.loadUnaligned(fromByteOffset: 12, as: UInt64.self)
        let ports = p.loadUnaligned(fromByteOffset: 20, as: UInt32.self)
        let sid = table.lookup(outsideWire: addresses, ports: ports, proto: proto,
                               hash: hash ?? table.sessionHash(outsideWire: addresses, ports: ports, proto: proto))
        guard sid != 0 else { return nil }
        let s = table.sessions + Int(sid)
        guard s.pointee.flags & SessionRecord.flagHelped == 0 else { return nil }
        if proto == IPProtocol.tcp {
            tcpTransition(sid, flags: flags, outbound: false, now: now.sessionSeconds)
        } else if inboundRefresh {
            table.touch(sid, now: now.sessionSeconds)
        }
        // The inside key (inside, via) with its halves exchanged is the new (source, destination).
        Self.fastRewrite(p, proto: proto, from: addresses, ports,
                         to: WireKey.swapped(s.pointee.insideWire), WireKey.swapped(s.pointee.insidePortsWire))
        counters.inboundPackets &+= 1
        counters.inboundBytes &+= UInt64(total)
        return s.pointee.tenant
    }
}
