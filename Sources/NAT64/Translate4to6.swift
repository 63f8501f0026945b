import NATCore
import NATWire

extension NAT64Translator where Mapping: ~Copyable {
    /// RFC 7915 §4 and §4.1: an IPv4 packet becomes an IPv6 packet.
    ///
    /// - Version 6; Traffic Class = TOS (or the configured override); Flow Label 0; Payload Length = Total
    ///   Length − IHL × 4 (+ 8 with a Fragment header); Next Header = Protocol (1 becomes 58); Hop Limit =
    ///   TTL − 1, and a TTL that would reach 0 gets ICMPv4 Time Exceeded (11/0). IPv4 options are ignored,
    ///   but an unexpired source route is refused with ICMPv4 3/5.
    /// - A Fragment header is added only when the IPv4 packet is already a fragment (MF or an offset):
    ///   offset and M copied, Identification = the IPv4 ID in the low 16 bits. No atomic fragments are
    ///   made (RFC 8021).
    /// - DF clear and larger than ``NAT64Configuration/lowestIPv6MTU``: fragmented so that every IPv6
    ///   packet fits. DF set and larger than ``NAT64Configuration/ipv6MTU``: ICMPv4 Fragmentation Needed
    ///   with the IPv6 MTU − 20 (− 28 for a fragment that fits only without its Fragment header).
    /// - Transport checksums absorb the pseudo-header change incrementally (§4.5); a zero UDP checksum is
    ///   computed (or the datagram dropped, a setting), and a fragmented one is dropped. ICMPv4 echo gains
    ///   the ICMPv6 pseudo-header and the type change (§4.2).
    ///
    /// `hairpin` is the second pass of an IPv6 packet whose IPv4 form is addressed to the translator's own
    /// IPv6 side (RFC 7757 §4.3): no TTL decrement, no ICMPv4 errors, no MTU check against the IPv4 view.
    @inlinable
    mutating func translate4to6(_ p: UnsafeRawPointer, available: Int, out: UnsafeMutableRawPointer, capacity: Int,
                                hairpin: Bool, now: Timestamp) throws(DropReason) -> (verdict: Verdict, length: Int) {
        guard available >= IPv4Layout.minimumHeaderLength else { throw .truncated }
        let hl = Int(load8(p, 0) & 0x0F) << 2
        guard hl >= IPv4Layout.minimumHeaderLength, hl <= available else { throw .badIPHeaderLength }
        let total = Int(load16(p, IPv4Layout.totalLength))
        guard total >= hl, total <= available else { throw .badIPLength }
        if !hairpin {
            guard ipv4HeaderChecksumValid(p, headerLength: hl) else { throw .badIPChecksum }
        }
        let fo = load16(p, IPv4Layout.flagsFragmentOffset)
        let df = fo & IPv4Layout.flagDF != 0
        let mf = fo & IPv4Layout.flagMF != 0
        let offset = Int(fo & IPv4Layout.offsetMask) << 3
        let isFragment = mf || offset != 0
        let identification = load16(p, IPv4Layout.identification)
        let proto = load8(p, IPv4Layout.protocolNumber)
        let src4 = IPv4Address(load32(p, IPv4Layout.source))
        let dst4 = IPv4Address(load32(p, IPv4Layout.destination))
        let l4 = p + hl
        let l4Length = total - hl
        var t = NAT64Transport(kind: .other, protocolNumber: proto, isFragment: isFragment,
                               fragmentIdentification: UInt32(identification))
        var computeUDPChecksum = false
        var refuseZeroUDPChecksum = false
        if offset == 0 {
            switch proto {
            case IPProtocol.tcp:
                try t.readTCP(l4, length: l4Length)
            case IPProtocol.udp:
                try t.readUDP(l4, length: l4Length)
                if load16(l4, UDPLayout.checksum) == 0 {
                    // RFC 7915 §4.5: a fragment cannot be summed; an unfragmented datagram per the setting.
                    // Refused after the address and TTL checks (below), so that an expiring or
                    // untranslatable datagram is answered as such.
                    if isFragment || configuration.zeroUDPChecksum != .compute {
                        refuseZeroUDPChecksum = true
                    } else {
                        computeUDPChecksum = true
                    }
                }
            case IPProtocol.icmp:
                guard !isFragment else { throw .fragmentedICMP }
                guard l4Length >= ICMPv4Layout.headerLength else { throw .badTransportHeader }
                let type = load8(l4, ICMPv4Layout.type)
                if t.setEcho(type: type, request: ICMPv4Type.echoRequest, reply: ICMPv4Type.echoReply,
                             identifier: load16(l4, ICMPv4Layout.identifier)) {
                    // An echo: `t` now carries its kind and identifier.
                } else if type == ICMPv4Type.destinationUnreachable || type == ICMPv4Type.timeExceeded
                            || type == ICMPv4Type.parameterProblem {
                    return try translateICMPv4Error(p, headerLength: hl, total: total, out: out, capacity: capacity,
                                                    hairpin: hairpin, now: now)
                } else {
                    // RFC 7915 §4.2: timestamp, information, address mask, router advertisement and
                    // solicitation, source quench, redirect, alternative host address and unknown types.
                    throw .untranslatableICMP
                }
            case 2:
                // RFC 7915 §4.2: IGMP messages are single-hop and SHOULD be silently dropped.
                throw .unsupportedProtocol
            default:
                break
            }
        } else if proto == IPProtocol.icmp {
            throw .fragmentedICMP
        }
        // RFC 7915 §4.1 "Source Address": an illegal source (RFC 1812 §5.3.7: 0/8, 127/8, multicast, class E
        // and broadcast) SHOULD be silently dropped, whatever the prefix; so is such a destination (RFC 1812
        // §5.3.7 forbids forwarding it). ICMPv4 errors (handled above) keep theirs for troubleshooting.
        if !hairpin && (isMartianIPv4(src4) || isMartianIPv4(dst4)) { throw .nonGlobalIPv4Address }

        let m: NAT64Mapped6
        do {
            m = try mapping.map4to6(source: src4, destination: dst4, transport: t, hairpin: hairpin, now: now)
        } catch {
            // RFC 7915 §4.4: optionally tell the sender (ICMPv4 3/13) that its packet cannot be translated.
            if configuration.sendProhibitedErrors && !hairpin && offset == 0
                && (error == .noMapping || error == .nonGlobalIPv4Address || error == .filtered) {
                sendICMPv4Error(type: ICMPv4Type.destinationUnreachable,
                                code: ICMPv4UnreachableCode.communicationAdministrativelyProhibited,
                                rest: 0, about: p, length: total)
            }
            throw error
        }

        let ttl = load8(p, IPv4Layout.ttl)
        if !hairpin {
            if ttl <= 1 {
                if offset == 0 {
                    sendICMPv4Error(type: ICMPv4Type.timeExceeded, code: 0, rest: 0, about: p, length: total)
                }
                throw .ttlExceeded
            }
            if hl > IPv4Layout.minimumHeaderLength && hasUnexpiredSourceRoute(p, headerLength: hl) {
                if offset == 0 {
                    sendICMPv4Error(type: ICMPv4Type.destinationUnreachable, code: ICMPv4UnreachableCode.sourceRouteFailed,
                                    rest: 0, about: p, length: total)
                }
                throw .sourceRouteRefused
            }
        }
        if refuseZeroUDPChecksum {
            // RFC 7915 §4.4: the discarded datagram's sender hears ICMPv4 3/13 (not about a hairpinned
            // packet, whose sender is on the IPv6 side).
            if !hairpin {
                sendICMPv4Error(type: ICMPv4Type.destinationUnreachable,
                                code: ICMPv4UnreachableCode.communicationAdministrativelyProhibited,
                                rest: 0, about: p, length: total)
            }
            throw .udpChecksumZero
        }

        // The IPv6 Fragment Offset ends at 65535 too (RFC 8200 §4.5).
        if isFragment && offset + l4Length > 65535 { throw .fragmentTooLarge }
        var withFragmentHeader = isFragment
        var size6 = IPv6Layout.headerLength + (withFragmentHeader ? IPv6ExtensionLayout.fragmentHeaderLength : 0) + l4Length
        var fragmentTo = 0
        if df {
            if !hairpin && size6 > ipv6MTU {
                // RFC 7915 §4.1: Fragmentation Needed when "the MTU of the next-hop interface is less than
                // the total length value of the IPv4 packet plus 20", reporting that MTU − 20. A fragment
                // that fits by that rule but not with its Fragment header is told MTU − 28.
                let mtu = withFragmentHeader && total + 20 <= ipv6MTU
                    ? ipv6MTU - 20 - IPv6ExtensionLayout.fragmentHeaderLength : ipv6MTU - 20
                if offset == 0 {
                    sendICMPv4Error(type: ICMPv4Type.destinationUnreachable, code: ICMPv4UnreachableCode.fragmentationNeeded,
                                    rest: UInt32(mtu), about: p, length: total)
                }
                throw .packetTooBig
            }
        } else if size6 > lowestIPv6MTU {
            if !withFragmentHeader {
                withFragmentHeader = true
                size6 += IPv6ExtensionLayout.fragmentHeaderLength
            }
            fragmentTo = lowestIPv6MTU
        }
        guard size6 <= capacity else { throw .outputTooSmall }

        let proto6 = proto == IPProtocol.icmp ? IPProtocol.icmpv6 : proto
        writeIPv6Header(out, trafficClass: trafficClass(load8(p, IPv4Layout.tos)), payloadLength: size6 - IPv6Layout.headerLength,
                        nextHeader: withFragmentHeader ? IPProtocol.ipv6Fragment : proto6,
                        hopLimit: hairpin ? ttl : ttl &- 1, source: m.source, destination: m.destination)
        var l4o = out + IPv6Layout.headerLength
        if withFragmentHeader {
            writeFragmentHeader(l4o, nextHeader: proto6, offset: offset, more: mf, identification: UInt32(identification))
            l4o += IPv6ExtensionLayout.fragmentHeaderLength
        }
        copyBytes(l4o, l4, l4Length)

        switch t.kind {
        case .tcp, .udp:
            if computeUDPChecksum {
                store16(l4o, UDPLayout.checksum, 0)
                let ph = Checksum.pseudoHeaderSum(source: m.source, destination: m.destination, nextHeader: IPProtocol.udp,
                                                  length: l4Length)
                var sum = Checksum.finish(Checksum.sum(l4o, count: l4Length, initial: ph))
                if m.ports != t.ports {
                    store16(l4o, 0, m.ports.source)
                    store16(l4o, 2, m.ports.destination)
                    sum = Checksum.finish(Checksum.sum(l4o, count: l4Length, initial: ph))
                }
                store16(l4o, UDPLayout.checksum, sum == 0 ? 0xFFFF : sum)
                break
            }
            // Over IPv6 a UDP checksum of zero is not allowed (RFC 8200 §8.1): a computed zero is 0xFFFF.
            rewriteTransport(l4o, tcp: t.kind == .tcp, oldAddressSum: wordSum(src4) &+ wordSum(dst4),
                             newAddressSum: m.source.wordSum &+ m.destination.wordSum, from: t.ports, to: m.ports,
                             keepZeroUDPChecksum: false)
        case .icmpEchoRequest, .icmpEchoReply:
            // RFC 7915 §4.2: type 8/0 → 128/129; the checksum gains the ICMPv6 pseudo-header.
            let ph = Checksum.pseudoHeaderSum(source: m.source, destination: m.destination, nextHeader: IPProtocol.icmpv6,
                                              length: l4Length)
            rewriteEcho(l4o, kind: t.kind, request: ICMPv6Type.echoRequest, reply: ICMPv6Type.echoReply, ports: m.ports,
                        oldPseudoHeaderSum: 0, newPseudoHeaderSum: ph)
        case .icmpError, .other:
            break
        }

        if isFragment {
            counters.fragmentsTranslated &+= 1
            counters4to6.fragmentsTranslated &+= 1
        }
        if !hairpin {
            counters.inboundPackets &+= 1
            counters.inboundBytes &+= UInt64(size6)
            counters4to6.inboundPackets &+= 1
            counters4to6.inboundBytes &+= UInt64(size6)
        }
        if fragmentTo > 0 {
            return (.toInside(tenant: 0), try fragment6(out, length: size6, mtu: fragmentTo))
        }
        return (.toInside(tenant: 0), size6)
    }
}
