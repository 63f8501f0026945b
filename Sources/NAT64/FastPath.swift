import NATCore
import NATWire

/// The established-flow fast path (for mappings with ``NAT64Mapping/hasEstablishedFastPath``): the common
/// packet — unfragmented TCP or UDP, IPv6 without extension headers or IPv4 without options, of a session
/// that exists, not hairpinned — translated in one pass: a few header checks, one session lookup
/// (``NAT64Mapping/mapEstablished6to4(source:destination:transport:now:hint:)``), the new header, the
/// payload copied, the transport checksum adjusted (RFC 1624), counters. Anything else — a new flow, ICMP,
/// fragments, extension headers or options, an expiring Hop Limit/TTL, a packet that needs fragmentation
/// or an ICMP error, a malformed header — returns 0 before changing anything, and the full path
/// (``translate6to4(_:available:out:capacity:now:)`` / ``translate4to6(_:available:out:capacity:hairpin:now:)``)
/// handles it, drops included. Every check and every output byte follows the full path (tests compare them).
extension NAT64Translator where Mapping: ~Copyable {
    /// RFC 7915 §5 for an established TCP/UDP packet from the IPv6 side; the IPv4 packet's length, or 0.
    @inlinable @inline(__always)
    mutating func fast6to4(_ p: UnsafeRawPointer, available: Int, out: UnsafeMutableRawPointer, capacity: Int,
                           now: Timestamp, hint: NAT64BurstHint) -> Int {
        guard available >= IPv6Layout.headerLength + UDPLayout.headerLength else { return 0 }
        let payloadLength = Int(load16(p, IPv6Layout.payloadLength))
        let nextHeader = load8(p, IPv6Layout.nextHeader)
        let hopLimit = load8(p, IPv6Layout.hopLimit)
        let isTCP = nextHeader == IPProtocol.tcp
        guard isTCP || nextHeader == IPProtocol.udp, hopLimit > 1,
              IPv6Layout.headerLength + payloadLength <= available,
              payloadLength >= (isTCP ? TCPLayout.minimumHeaderLength : UDPLayout.headerLength) else { return 0 }
        let size4 = IPv4Layout.minimumHeaderLength + payloadLength
        guard size4 <= ipv4MTU, size4 <= capacity else { return 0 }
        let src6 = loadIPv6Address(p, IPv6Layout.source)
        guard !isIllegalIPv6Source(src6) else { return 0 }
        let dst6 = loadIPv6Address(p, IPv6Layout.destination)
        let l4 = p + IPv6Layout.headerLength
        let ports = NAT64Ports(source: load16(l4, 0), destination: load16(l4, 2))
        let t = NAT64Transport(kind: isTCP ? .tcp : .udp, protocolNumber: nextHeader, ports: ports,
                               tcpFlags: isTCP ? TCPFlags(rawValue: load8(l4, TCPLayout.flags)) : [])
        guard let m = mapping.mapEstablished6to4(source: src6, destination: dst6, transport: t, now: now, hint: hint) else {
            return 0
        }
        // From here on exactly what translate6to4 does for this packet.
        let flags: UInt16
        let identification: UInt16
        if size4 > 1260 {
            flags = IPv4Layout.flagDF
            identification = 0
        } else {
            flags = 0
            identification = takeIdentification()
        }
        let tc = UInt8(truncatingIfNeeded: load32(p, 0) >> IPv6Layout.trafficClassShift)
        writeIPv4Header(out, tos: trafficClass(tc), totalLength: size4, identification: identification,
                        flagsAndOffset: flags, ttl: hopLimit &- 1, protocolNumber: nextHeader,
                        source: m.source, destination: m.destination)
        let l4o = out + IPv4Layout.minimumHeaderLength
        copyBytes(l4o, l4, payloadLength)
        rewriteTransport(l4o, tcp: isTCP, oldAddressSum: src6.wordSum &+ dst6.wordSum,
                         newAddressSum: wordSum(m.source) &+ wordSum(m.destination), from: ports, to: m.ports,
                         keepZeroUDPChecksum: true)
        counters.outboundPackets &+= 1
        counters.outboundBytes &+= UInt64(size4)
        counters6to4.outboundPackets &+= 1
        counters6to4.outboundBytes &+= UInt64(size4)
        return size4
    }

    /// RFC 7915 §4 for an established TCP/UDP packet from the IPv4 side; the IPv6 packet's length, or 0.
    @inlinable @inline(__always)
    mutating func fast4to6(_ p: UnsafeRawPointer, available: Int, out: UnsafeMutableRawPointer, capacity: Int,
                           now: Timestamp, hint: NAT64BurstHint) -> Int {
        let hl = IPv4Layout.minimumHeaderLength
        guard available >= hl + UDPLayout.headerLength, load8(p, 0) == 0x45 else { return 0 }
        let total = Int(load16(p, IPv4Layout.totalLength))
        let fo = load16(p, IPv4Layout.flagsFragmentOffset)
        let proto = load8(p, IPv4Layout.protocolNumber)
        let ttl = load8(p, IPv4Layout.ttl)
        let isTCP = proto == IPProtocol.tcp
        let l4Length = total - hl
        // Not a fragment (DF may be set; the reserved bit goes the full way), TTL does not expire here.
        guard isTCP || proto == IPProtocol.udp, fo & ~IPv4Layout.flagDF == 0, ttl > 1, total <= available,
              l4Length >= (isTCP ? TCPLayout.minimumHeaderLength : UDPLayout.headerLength),
              ipv4HeaderChecksumValid(p, headerLength: hl) else { return 0 }
        let l4 = p + hl
        // RFC 7915 §4.5: a zero UDP checksum is computed or refused: the full path's business.
        guard isTCP || load16(l4, UDPLayout.checksum) != 0 else { return 0 }
        let src4 = IPv4Address(load32(p, IPv4Layout.source))
        let dst4 = IPv4Address(load32(p, IPv4Layout.destination))
        guard !isMartianIPv4(src4), !isMartianIPv4(dst4) else { return 0 }
        let size6 = IPv6Layout.headerLength + l4Length
        guard size6 <= (fo & IPv4Layout.flagDF != 0 ? ipv6MTU : lowestIPv6MTU), size6 <= capacity else { return 0 }
        let ports = NAT64Ports(source: load16(l4, 0), destination: load16(l4, 2))
        let t = NAT64Transport(kind: isTCP ? .tcp : .udp, protocolNumber: proto, ports: ports,
                               tcpFlags: isTCP ? TCPFlags(rawValue: load8(l4, TCPLayout.flags)) : [])
        guard let m = mapping.mapEstablished4to6(source: src4, destination: dst4, transport: t, now: now, hint: hint) else {
            return 0
        }
        // From here on exactly what translate4to6 does for this packet.
        writeIPv6Header(out, trafficClass: trafficClass(load8(p, IPv4Layout.tos)), payloadLength: l4Length,
                        nextHeader: proto, hopLimit: ttl &- 1, source: m.source, destination: m.destination)
        let l4o = out + IPv6Layout.headerLength
        copyBytes(l4o, l4, l4Length)
        rewriteTransport(l4o, tcp: isTCP, oldAddressSum: wordSum(src4) &+ wordSum(dst4),
                         newAddressSum: m.source.wordSum &+ m.destination.wordSum, from: ports, to: m.ports,
                         keepZeroUDPChecksum: false)
        counters.inboundPackets &+= 1
        counters.inboundBytes &+= UInt64(size6)
        counters4to6.inboundPackets &+= 1
        counters4to6.inboundBytes &+= UInt64(size6)
        return size6
    }
}
