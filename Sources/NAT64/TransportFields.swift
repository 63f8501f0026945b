import NATCore
import NATWire

// Reading the transport fields a mapping needs (ports, echo identifier, TCP flags), shared by the
// outer packet of each direction and the packet embedded in an ICMP error.

extension NAT64Transport {
    /// Sets the kind and identifier of an ICMP or ICMPv6 echo (`request` and `reply` are the family's
    /// echo types): the identifier is the source "port" of a request, the destination of a reply.
    /// Returns false, changing nothing, for any other type.
    @inlinable @inline(__always)
    mutating func setEcho(type: UInt8, request: UInt8, reply: UInt8, identifier: UInt16) -> Bool {
        if type == request {
            kind = .icmpEchoRequest
            ports = NAT64Ports(source: identifier, destination: 0)
        } else if type == reply {
            kind = .icmpEchoReply
            ports = NAT64Ports(source: 0, destination: identifier)
        } else {
            return false
        }
        return true
    }

    /// Reads the ports and flags of a TCP segment (the first fragment or an unfragmented packet) at `l4`,
    /// `length` bytes of transport header and payload.
    @inlinable @inline(__always)
    mutating func readTCP(_ l4: UnsafeRawPointer, length: Int) throws(DropReason) {
        guard length >= TCPLayout.minimumHeaderLength else { throw .badTransportHeader }
        kind = .tcp
        ports = NAT64Ports(source: load16(l4, 0), destination: load16(l4, 2))
        tcpFlags = TCPFlags(rawValue: load8(l4, TCPLayout.flags))
    }

    /// Reads the ports of a UDP datagram (the first fragment or an unfragmented packet) at `l4`, `length`
    /// bytes of header and payload.
    @inlinable @inline(__always)
    mutating func readUDP(_ l4: UnsafeRawPointer, length: Int) throws(DropReason) {
        guard length >= UDPLayout.headerLength else { throw .badTransportHeader }
        kind = .udp
        ports = NAT64Ports(source: load16(l4, 0), destination: load16(l4, 2))
    }

    /// Reads the transport of the packet embedded in an ICMP error (the first fragment or an unfragmented
    /// packet) from `il4`, of which `available` bytes are present: TCP/UDP ports (and TCP flags when
    /// present), or the echo identifier for an embedded ICMP (`ipv6` false) or ICMPv6 (`ipv6` true) echo.
    @inlinable @inline(__always)
    mutating func readEmbedded(_ il4: UnsafeRawPointer, available il4Available: Int, ipv6: Bool) throws(DropReason) {
        switch protocolNumber {
        case IPProtocol.tcp, IPProtocol.udp:
            guard il4Available >= 4 else { throw .badEmbeddedPacket }
            kind = protocolNumber == IPProtocol.tcp ? .tcp : .udp
            ports = NAT64Ports(source: load16(il4, 0), destination: load16(il4, 2))
            if kind == .tcp && il4Available > TCPLayout.flags {
                tcpFlags = TCPFlags(rawValue: load8(il4, TCPLayout.flags))
            }
        case ipv6 ? IPProtocol.icmpv6 : IPProtocol.icmp:
            guard il4Available >= (ipv6 ? ICMPv6Layout.headerLength : ICMPv4Layout.headerLength) else {
                throw .badEmbeddedPacket
            }
            let itype = load8(il4, 0)
            if ipv6 ? ICMPv6Type.isError(itype) : ICMPv4Type.isError(itype) { throw .icmpErrorAboutICMPError }
            let isEcho = ipv6
                ? setEcho(type: itype, request: ICMPv6Type.echoRequest, reply: ICMPv6Type.echoReply,
                          identifier: load16(il4, ICMPv6Layout.identifier))
                : setEcho(type: itype, request: ICMPv4Type.echoRequest, reply: ICMPv4Type.echoReply,
                          identifier: load16(il4, ICMPv4Layout.identifier))
            guard isEcho else { throw .untranslatableICMP }
        default:
            break
        }
    }
}

/// Rewrites a TCP or UDP header at `l4o` that crossed families: the ports become `new` when they
/// differ from `old`, and the checksum is adjusted incrementally (RFC 1624) for the pseudo-header's
/// addresses (`oldAddressSum` → `newAddressSum`) and the ports. A computed UDP zero is sent as 0xFFFF
/// (RFC 768, RFC 8200 §8.1). With `keepZeroUDPChecksum` (toward IPv4) a UDP checksum of zero stays
/// zero: over IPv4 it means "none".
@inlinable @inline(__always)
func rewriteTransport(_ l4o: UnsafeMutableRawPointer, tcp: Bool, oldAddressSum: UInt64, newAddressSum: UInt64,
                      from old: NAT64Ports, to new: NAT64Ports, keepZeroUDPChecksum: Bool) {
    var oldSum = oldAddressSum, newSum = newAddressSum
    if new != old {
        oldSum &+= UInt64(old.source) &+ UInt64(old.destination)
        newSum &+= UInt64(new.source) &+ UInt64(new.destination)
        store16(l4o, 0, new.source)
        store16(l4o, 2, new.destination)
    }
    let at = tcp ? TCPLayout.checksum : UDPLayout.checksum
    let checksum = load16(l4o, at)
    if !tcp && checksum == 0 && keepZeroUDPChecksum { return }
    let sum = adjustChecksum(checksum, oldSum: oldSum, newSum: newSum)
    store16(l4o, at, !tcp && sum == 0 ? 0xFFFF : sum)
}

/// Rewrites an echo request or reply at `l4o` for the other family: the type becomes `request` or `reply`
/// (the new family's echo types; the code byte is kept), the identifier the mapped one from `ports`, and
/// the checksum is adjusted incrementally (RFC 1624), the ICMPv6 pseudo-header sum taken out
/// (`oldPseudoHeaderSum`) or put in (`newPseudoHeaderSum`). ICMP and ICMPv6 echo share the layout.
@inlinable @inline(__always)
func rewriteEcho(_ l4o: UnsafeMutableRawPointer, kind: NAT64PacketKind, request: UInt8, reply: UInt8,
                 ports: NAT64Ports, oldPseudoHeaderSum: UInt64, newPseudoHeaderSum: UInt64) {
    let oldWord = load16(l4o, 0)
    let newType = kind == .icmpEchoRequest ? request : reply
    let newWord = UInt16(newType) << 8 | oldWord & 0xFF
    let oldID = load16(l4o, ICMPv4Layout.identifier)
    let newID = kind == .icmpEchoRequest ? ports.source : ports.destination
    store16(l4o, 0, newWord)
    store16(l4o, ICMPv4Layout.identifier, newID)
    store16(l4o, ICMPv4Layout.checksum, adjustChecksum(load16(l4o, ICMPv4Layout.checksum),
                                                     oldSum: oldPseudoHeaderSum &+ UInt64(oldWord) &+ UInt64(oldID),
                                                     newSum: newPseudoHeaderSum &+ UInt64(newWord) &+ UInt64(newID)))
}
