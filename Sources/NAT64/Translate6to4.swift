import NATCore
import NATWire

extension NAT64Translator where Mapping: ~Copyable {
    /// RFC 7915 §5 and §5.1: an IPv6 packet becomes an IPv4 packet.
    ///
    /// - Version 4, IHL 5 (no options); Type of Service = Traffic Class (or the configured override).
    /// - Total Length = Payload Length − extension headers + 20; the Hop-by-Hop, Routing (Segments Left 0)
    ///   and Destination Options headers are skipped, and Protocol is the first other next header (58
    ///   becomes 1). A Routing header with Segments Left ≠ 0 is refused with an ICMPv6 Parameter Problem
    ///   pointing at Segments Left.
    /// - Without a Fragment header: DF is clear when the IPv4 packet is at most 1260 bytes, else set (§5);
    ///   the Identification comes from a counter for DF-clear packets (RFC 6864 §4.2) and is 0 otherwise
    ///   (atomic datagrams, RFC 6864 §4.1). With one (§5.1.1): ID = low 16 bits of its Identification, MF
    ///   = M, offset copied, DF clear.
    /// - TTL = Hop Limit − 1; a packet whose Hop Limit would reach 0 gets ICMPv6 Time Exceeded (code 0).
    /// - The transport checksum absorbs the pseudo-header change (RFC 7915 §5.5) incrementally
    ///   (RFC 1624): TCP and UDP by the address difference, ICMPv6 echo by removing the ICMPv6 pseudo-
    ///   header and the type change (§5.2). Fragments after the first are not touched.
    /// - Larger than ``NAT64Configuration/ipv4MTU``: with DF, or a fragment of more than 1280 bytes, ICMPv6
    ///   Packet Too Big (MTU = IPv4 MTU + 20, at least 1280); otherwise fragmented as an IPv4 router would.
    @inlinable
    mutating func translate6to4(_ p: UnsafeRawPointer, available: Int, out: UnsafeMutableRawPointer, capacity: Int,
                                now: Timestamp) throws(DropReason) -> (verdict: Verdict, length: Int) {
        guard available >= IPv6Layout.headerLength else { throw .truncated }
        let total = IPv6Layout.headerLength + Int(load16(p, IPv6Layout.payloadLength))
        guard total <= available else { throw .badIPLength }
        let c: IPv6TranslationChain
        do {
            c = try walkIPv6ForTranslation(p, count: total)
        } catch {
            if error == .extensionHeaderAfterFragment {
                // RFC 7915 §5.1.1 "SHOULD be dropped and logged", and §5.4: the sender hears ICMPv6 1/1.
                sendICMPv6Error(type: ICMPv6Type.destinationUnreachable, code: ICMPv6UnreachableCode.administrativelyProhibited,
                                rest: 0, about: p, length: total)
            }
            throw error
        }
        let src6 = loadIPv6Address(p, IPv6Layout.source)
        let dst6 = loadIPv6Address(p, IPv6Layout.destination)
        // RFC 7915 §5.1 "Source Address": an illegal source SHOULD be silently dropped.
        if isIllegalIPv6Source(src6) { throw .notNATTraffic }
        let l4 = p + c.upperOffset
        let l4Length = total - c.upperOffset
        let isFragment = c.isFragment
        var t = NAT64Transport(kind: .other, protocolNumber: c.upperProtocol, isFragment: isFragment,
                               fragmentIdentification: c.fragmentIdentification)
        if c.isFirst {
            switch c.upperProtocol {
            case IPProtocol.tcp:
                try t.readTCP(l4, length: l4Length)
            case IPProtocol.udp:
                try t.readUDP(l4, length: l4Length)
            case IPProtocol.icmpv6:
                guard !isFragment else { throw .fragmentedICMP }
                guard l4Length >= ICMPv6Layout.headerLength else { throw .badTransportHeader }
                let type = load8(l4, ICMPv6Layout.type)
                if t.setEcho(type: type, request: ICMPv6Type.echoRequest, reply: ICMPv6Type.echoReply,
                             identifier: load16(l4, ICMPv6Layout.identifier)) {
                    // An echo: `t` now carries its kind and identifier.
                } else if ICMPv6Type.isError(type) {
                    return try translateICMPv6Error(p, total: total, chain: c, out: out, capacity: capacity, now: now)
                } else {
                    // RFC 7915 §5.2: MLD, Neighbor Discovery and unknown informational messages.
                    throw .untranslatableICMP
                }
            default:
                break
            }
        } else if c.upperProtocol == IPProtocol.icmpv6 {
            throw .fragmentedICMP
        }

        let m: NAT64Mapped4
        do {
            m = try mapping.map6to4(source: src6, destination: dst6, transport: t, now: now)
        } catch {
            // RFC 7915 §5.4: optionally tell the sender (ICMPv6 1/1) that its packet cannot be translated.
            if configuration.sendProhibitedErrors && (error == .noMapping || error == .nonGlobalIPv4Address || error == .filtered) {
                sendICMPv6Error(type: ICMPv6Type.destinationUnreachable, code: ICMPv6UnreachableCode.administrativelyProhibited,
                                rest: 0, about: p, length: total)
            }
            throw error
        }

        let hopLimit = load8(p, IPv6Layout.hopLimit)
        if hopLimit <= 1 {
            sendICMPv6Error(type: ICMPv6Type.timeExceeded, code: ICMPv6TimeExceededCode.hopLimitExceeded, rest: 0,
                            about: p, length: total)
            throw .ttlExceeded
        }
        if c.routingHeaderOffset >= 0 && c.segmentsLeft != 0 {
            sendICMPv6Error(type: ICMPv6Type.parameterProblem, code: ICMPv6ParameterProblemCode.erroneousHeaderField,
                            rest: UInt32(c.routingHeaderOffset + IPv6ExtensionLayout.segmentsLeft), about: p, length: total)
            throw .segmentsLeftNonZero
        }

        let hairpin = mapping.isHairpin(m.destination, ipv6Destination: dst6)
        let size4 = IPv4Layout.minimumHeaderLength + l4Length
        // An IPv4 datagram ends by byte 65535 (RFC 791 §3.1): a fragment reaching beyond cannot be expressed.
        if c.hasFragmentHeader && IPv4Layout.minimumHeaderLength + c.fragmentOffset + l4Length > 65535 {
            throw .fragmentTooLarge
        }
        let flags: UInt16
        let identification: UInt16
        if c.hasFragmentHeader {
            flags = UInt16(truncatingIfNeeded: c.fragmentOffset >> 3) | (c.moreFragments ? IPv4Layout.flagMF : 0)
            identification = UInt16(truncatingIfNeeded: c.fragmentIdentification)
        } else if size4 > 1260 {
            flags = IPv4Layout.flagDF
            identification = 0
        } else {
            flags = 0
            identification = takeIdentification()
        }
        var fragmentTo = 0
        if !hairpin && size4 > ipv4MTU {
            // RFC 7915 §1.4: Packet Too Big or fragmentation. Packet Too Big whenever the IPv6 source can
            // send smaller packets: DF set, or a fragment of more than 1280 bytes (§5.1.1 clears DF, but its
            // source fragments by the path MTU); IPv4 fragmentation for what is already at the IPv6 minimum.
            if flags & IPv4Layout.flagDF != 0 || (c.hasFragmentHeader && size4 > 1260) {
                let mtu = max(1280, min(ipv4MTU + 20, 65535))
                sendICMPv6Error(type: ICMPv6Type.packetTooBig, code: 0, rest: UInt32(mtu), about: p, length: total)
                throw .packetTooBig
            }
            fragmentTo = ipv4MTU
        }
        guard size4 <= 65535 else { throw .packetTooBig }  // only reachable when hairpinned (no MTU check)
        let o = hairpin ? scratch : out
        guard size4 <= (hairpin ? Self.bufferCapacity : capacity) else { throw .outputTooSmall }

        let tc = UInt8(truncatingIfNeeded: load32(p, 0) >> IPv6Layout.trafficClassShift)
        writeIPv4Header(o, tos: trafficClass(tc), totalLength: size4, identification: identification,
                        flagsAndOffset: flags, ttl: hopLimit &- 1,
                        protocolNumber: c.upperProtocol == IPProtocol.icmpv6 ? IPProtocol.icmp : c.upperProtocol,
                        source: m.source, destination: m.destination)
        let l4o = o + IPv4Layout.minimumHeaderLength
        copyBytes(l4o, l4, l4Length)

        switch t.kind {
        case .tcp, .udp:
            // Over IPv4 a zero UDP checksum means "none" and stays zero.
            rewriteTransport(l4o, tcp: t.kind == .tcp, oldAddressSum: src6.wordSum &+ dst6.wordSum,
                             newAddressSum: wordSum(m.source) &+ wordSum(m.destination), from: t.ports, to: m.ports,
                             keepZeroUDPChecksum: true)
        case .icmpEchoRequest, .icmpEchoReply:
            // RFC 7915 §5.2: type 128/129 → 8/0; the checksum loses the ICMPv6 pseudo-header.
            let ph = Checksum.pseudoHeaderSum(source: src6, destination: dst6, nextHeader: IPProtocol.icmpv6, length: l4Length)
            rewriteEcho(l4o, kind: t.kind, request: ICMPv4Type.echoRequest, reply: ICMPv4Type.echoReply, ports: m.ports,
                        oldPseudoHeaderSum: ph, newPseudoHeaderSum: 0)
        case .icmpError, .other:
            break
        }

        if isFragment {
            counters.fragmentsTranslated &+= 1
            counters6to4.fragmentsTranslated &+= 1
        }
        if hairpin {
            // RFC 7757 §4.3: back to IPv6, without a second TTL decrement.
            counters.hairpinnedPackets &+= 1
            counters6to4.hairpinnedPackets &+= 1
            do {
                return try translate4to6(UnsafeRawPointer(o), available: size4, out: out, capacity: capacity,
                                         hairpin: true, now: now)
            } catch {
                // RFC 6146 §3.5.2.2 with §3.8: a hairpinned SYN without a BIB entry is an unsolicited IPv4
                // SYN like any other: the mapping keeps its IPv4 form, and answers it when its time is up.
                guard error == .unsolicitedSYN else { throw error }
                return refused(UnsafeRawBufferPointer(start: o, count: size4), error, sixToFour: false, now: now)
            }
        }
        counters.outboundPackets &+= 1
        counters.outboundBytes &+= UInt64(size4)
        counters6to4.outboundPackets &+= 1
        counters6to4.outboundBytes &+= UInt64(size4)
        if fragmentTo > 0 {
            return (.toOutside, try fragment4(o, length: size4, mtu: fragmentTo))
        }
        return (.toOutside, size4)
    }
}
