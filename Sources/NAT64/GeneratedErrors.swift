import NATCore
import NATWire

extension NAT64Translator where Mapping: ~Copyable {
    /// RFC 7915 §5.4 (and §5.1: Hop Limit exceeded, Packet Too Big, Parameter Problem for Segments Left):
    /// an ICMPv6 error from ``NAT64Configuration/ipv6ErrorSource`` back to the source of the IPv6 packet at
    /// `p`, quoting as much of it as fits in 1280 bytes (RFC 4443 §2.4 (c)). Not sent without a configured
    /// source, about an ICMPv6 error (RFC 4443 §2.4 (e.1), checked by the caller), or to an unspecified or
    /// multicast source (§2.4 (e.3)). Waits in the outbox with `.toInside(tenant: 0)`.
    @inlinable
    mutating func sendICMPv6Error(type: UInt8, code: UInt8, rest: UInt32, about p: UnsafeRawPointer, length: Int) {
        guard let source = configuration.ipv6ErrorSource else { return }
        let destination = loadIPv6Address(p, IPv6Layout.source)
        guard destination != .any, destination.high >> 56 != 0xFF else { return }
        guard takeICMPToken(sixToFour: true) else { return }
        guard let slot = outbox.reserve(), let o = slot.baseAddress else {
            record(.outboxFull, sixToFour: true)
            return
        }
        let quote = min(length, 1280 - IPv6Layout.headerLength - ICMPv6Layout.headerLength,
                        slot.count - IPv6Layout.headerLength - ICMPv6Layout.headerLength)
        let icmpLength = ICMPv6Layout.headerLength + quote
        writeIPv6Header(o, trafficClass: 0, payloadLength: icmpLength, nextHeader: IPProtocol.icmpv6, hopLimit: 64,
                        source: source, destination: destination)
        let m = o + IPv6Layout.headerLength
        writeICMPError(m, type: type, code: code, rest: rest, quoting: p, count: quote)
        let ph = Checksum.pseudoHeaderSum(source: source, destination: destination, nextHeader: IPProtocol.icmpv6,
                                          length: icmpLength)
        store16(m, 2, Checksum.finish(Checksum.sum(m, count: icmpLength, initial: ph)))
        outbox.commit(length: IPv6Layout.headerLength + icmpLength, verdict: .toInside(tenant: 0))
        counters.icmpErrorsGenerated &+= 1
        counters6to4.icmpErrorsGenerated &+= 1
    }

    /// RFC 7915 §4.4 (and §4.1: TTL exceeded, Fragmentation Needed, Source Route Failed): an ICMPv4 error
    /// from ``NAT64Configuration/ipv4ErrorSource`` back to the source of the IPv4 datagram at `p`, quoting
    /// as much as fits in 576 bytes (RFC 1812 §4.3.2.3). Not sent without a configured source, about an
    /// ICMP error or a non-initial fragment (RFC 1812 §4.3.2.7, checked by the caller), or to a source that
    /// is not a unicast address (0/8, 127/8, 224/4, 240/4). Waits in the outbox with `.toOutside`.
    @inlinable
    mutating func sendICMPv4Error(type: UInt8, code: UInt8, rest: UInt32, about p: UnsafeRawPointer, length: Int) {
        guard let source = configuration.ipv4ErrorSource else { return }
        let destination = IPv4Address(load32(p, IPv4Layout.source))
        let first = destination.rawValue >> 24
        guard first != 0, first != 127, first < 224 else { return }
        guard takeICMPToken(sixToFour: false) else { return }
        guard let slot = outbox.reserve(), let o = slot.baseAddress else {
            record(.outboxFull, sixToFour: false)
            return
        }
        let quote = min(length, 576 - IPv4Layout.minimumHeaderLength - ICMPv4Layout.headerLength)
        let icmpLength = ICMPv4Layout.headerLength + quote
        writeIPv4Header(o, tos: 0, totalLength: IPv4Layout.minimumHeaderLength + icmpLength,
                        identification: takeIdentification(), flagsAndOffset: 0, ttl: 64,
                        protocolNumber: IPProtocol.icmp, source: source, destination: destination)
        let m = o + IPv4Layout.minimumHeaderLength
        writeICMPError(m, type: type, code: code, rest: rest, quoting: p, count: quote)
        store16(m, 2, Checksum.finish(Checksum.sum(m, count: icmpLength)))
        outbox.commit(length: IPv4Layout.minimumHeaderLength + icmpLength, verdict: .toOutside)
        counters.icmpErrorsGenerated &+= 1
        counters4to6.icmpErrorsGenerated &+= 1
    }
}

/// Writes an ICMP or ICMPv6 error message at `m` (both have the same 8-byte header): type, code, a zero
/// checksum (the caller sums the message), the four bytes after it, and `count` bytes quoted from `p`.
@inlinable @inline(__always)
func writeICMPError(_ m: UnsafeMutableRawPointer, type: UInt8, code: UInt8, rest: UInt32, quoting p: UnsafeRawPointer,
                    count: Int) {
    store8(m, 0, type)
    store8(m, 1, code)
    store16(m, 2, 0)
    store32(m, 4, rest)
    (m + ICMPv4Layout.headerLength).copyMemory(from: p, byteCount: count)
}
