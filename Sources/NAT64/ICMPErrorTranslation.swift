import NATCore
import NATWire

extension NAT64Translator where Mapping: ~Copyable {
    /// RFC 7915 §5.2 and §5.3: an ICMPv6 error becomes an ICMPv4 error.
    ///
    /// The ICMPv6 checksum must verify. Type and code follow §5.2 (untranslatable ones are dropped); Packet
    /// Too Big's MTU becomes min(MTU − 20, IPv4 MTU, IPv6 MTU − 20) (− 28 instead of − 20 when the packet in
    /// error carries a Fragment header, as §5.2 asks to take it into account); a Parameter Problem pointer
    /// follows Figure 6. The packet in error is translated as an IPv6 packet would be, except that its Hop
    /// Limit is not decremented; its addresses are mapped with ``NAT64Mapping/mapInner6to4(source:destination:transport:now:)``
    /// and its transport checksum is updated incrementally for the pseudo-header (and port) change, as far
    /// as the quoted bytes reach. The result is cut to 576 bytes (RFC 1812 §4.3.2.3) and the ICMPv4 checksum
    /// computed over it. ICMP extensions (RFC 4884) are not carried over: the packet in error ends where the
    /// ICMPv6 length attribute says, and the ICMPv4 message has none.
    @inlinable
    mutating func translateICMPv6Error(_ p: UnsafeRawPointer, total: Int, chain c: IPv6TranslationChain,
                                       out: UnsafeMutableRawPointer, capacity: Int,
                                       now: Timestamp) throws(DropReason) -> (verdict: Verdict, length: Int) {
        // RFC 7915 §5.1: not translated with a Routing header that has Segments Left (no error about an error).
        guard c.routingHeaderOffset < 0 || c.segmentsLeft == 0 else { throw .segmentsLeftNonZero }
        let src6 = loadIPv6Address(p, IPv6Layout.source)
        let dst6 = loadIPv6Address(p, IPv6Layout.destination)
        let icmp = p + c.upperOffset
        let icmpLength = total - c.upperOffset
        let ph = Checksum.pseudoHeaderSum(source: src6, destination: dst6, nextHeader: IPProtocol.icmpv6, length: icmpLength)
        guard Checksum.fold(Checksum.sum(icmp, count: icmpLength, initial: ph)) == 0xFFFF else { throw .badICMPChecksum }
        let type = load8(icmp, ICMPv6Layout.type), code = load8(icmp, ICMPv6Layout.code)
        guard let mapped = ICMPTranslationTables.error6to4(type: type, code: code) else { throw .untranslatableICMP }
        var rest4: UInt32 = 0
        if mapped.rest == .translatedPointer {
            guard let v = ICMPTranslationTables.pointer6to4(load32(icmp, ICMPv6Layout.pointer)) else { throw .untranslatableICMP }
            rest4 = UInt32(v) << 24
        }

        // The packet in error.
        let inner = icmp + ICMPv6Layout.headerLength
        let payloadLength = icmpLength - ICMPv6Layout.headerLength
        var innerAvailable = payloadLength
        var extensionLength = 0
        if type == ICMPv6Type.destinationUnreachable || type == ICMPv6Type.timeExceeded {
            // RFC 4884 §4.5: a non-zero length attribute (64-bit words) ends the (padded) original
            // datagram; an ICMP extension structure follows it.
            (innerAvailable, extensionLength) = try splitICMPExtension(lengthAttribute: Int(load8(icmp, 4)) << 3,
                                                                        payloadLength: payloadLength)
        }
        guard innerAvailable >= IPv6Layout.headerLength, load8(inner, 0) >> 4 == 6 else { throw .malformedICMPError }
        let ic: IPv6TranslationChain
        do { ic = try walkIPv6ForTranslation(inner, count: innerAvailable) } catch { throw .badEmbeddedPacket }
        let innerStatedUpper = Int(load16(inner, IPv6Layout.payloadLength)) + IPv6Layout.headerLength - ic.upperOffset
        guard innerStatedUpper >= 0 else { throw .badEmbeddedPacket }
        let isrc6 = loadIPv6Address(inner, IPv6Layout.source)
        let idst6 = loadIPv6Address(inner, IPv6Layout.destination)
        let il4 = inner + ic.upperOffset
        let il4Available = innerAvailable - ic.upperOffset
        var it = NAT64Transport(kind: .other, protocolNumber: ic.upperProtocol, isFragment: ic.isFragment,
                                fragmentIdentification: ic.fragmentIdentification)
        if ic.isFirst {
            try it.readEmbedded(il4, available: il4Available, ipv6: true)
        }

        let im = try mapping.mapInner6to4(source: isrc6, destination: idst6, transport: it, now: now)
        let om: NAT64Mapped4
        do {
            om = try mapping.map6to4(source: src6, destination: dst6,
                                     transport: NAT64Transport(kind: .icmpError, protocolNumber: IPProtocol.icmpv6),
                                     now: now)
        } catch {
            // RFC 6791 §4: an error from a router without an IPv4 form and no pool for it takes the
            // translator's own public IPv4 address, when the error goes to the source of the packet in error
            // (whose IPv4 form the inner mapping just gave).
            guard error == .noMapping, dst6 == isrc6, let own = configuration.ipv4ErrorSource else { throw error }
            om = NAT64Mapped4(source: own, destination: im.source, ports: NAT64Ports(source: 0, destination: 0))
        }
        let hopLimit = load8(p, IPv6Layout.hopLimit)
        // No ICMP error about an ICMP error (RFC 4443 §2.4 (e.1)).
        guard hopLimit > 1 else { throw .ttlExceeded }

        if mapped.rest == .mtu {
            let adjust = ic.hasFragmentHeader ? 28 : 20
            let v = min(Int(load32(icmp, ICMPv6Layout.mtu)) - adjust, ipv4MTU, ipv6MTU - 20)
            rest4 = UInt32(max(0, min(v, 65535)))
        }

        let hairpin = mapping.isHairpin(om.destination, ipv6Destination: dst6)
        let o = hairpin ? scratch : out
        let limit = hairpin ? Self.bufferCapacity : min(576, capacity)
        let headers = IPv4Layout.minimumHeaderLength + ICMPv4Layout.headerLength + IPv4Layout.minimumHeaderLength
        guard limit >= headers else { throw .outputTooSmall }
        // RFC 7915 §5.2 "ICMP Error Payload", RFC 4884 §4.1: the extension is carried as an opaque string
        // after the translated datagram, zero padded to 32 bits (at least 128 bytes), with the length
        // attribute in 32-bit words; it goes when it does not fit in 576 bytes with 128 of datagram.
        let layout = ICMPExtensionLayout(outerHeaders: IPv4Layout.minimumHeaderLength + ICMPv4Layout.headerLength,
                                         translatedInner: IPv4Layout.minimumHeaderLength + il4Available,
                                         extensionLength: extensionLength, limit: limit, unit: 4, maximumWords: 255)
        let size = layout.size
        let copied = layout.innerLength - IPv4Layout.minimumHeaderLength
        if layout.keepsExtension { rest4 |= UInt32(layout.lengthAttribute) << 16 }

        // The inner IPv4 header.
        let ih = o + IPv4Layout.minimumHeaderLength + ICMPv4Layout.headerLength
        let innerTotal = IPv4Layout.minimumHeaderLength + innerStatedUpper
        let innerFlags: UInt16
        let innerID: UInt16
        if ic.hasFragmentHeader {
            innerFlags = UInt16(truncatingIfNeeded: ic.fragmentOffset >> 3) | (ic.moreFragments ? IPv4Layout.flagMF : 0)
            innerID = UInt16(truncatingIfNeeded: ic.fragmentIdentification)
        } else {
            // The Identification the packet had on the IPv4 side cannot be known here: 0.
            innerFlags = innerTotal > 1260 ? IPv4Layout.flagDF : 0
            innerID = 0
        }
        let itc = UInt8(truncatingIfNeeded: load32(inner, 0) >> IPv6Layout.trafficClassShift)
        writeIPv4Header(ih, tos: trafficClass(itc), totalLength: innerTotal, identification: innerID,
                        flagsAndOffset: innerFlags, ttl: load8(inner, IPv6Layout.hopLimit),
                        protocolNumber: ic.upperProtocol == IPProtocol.icmpv6 ? IPProtocol.icmp : ic.upperProtocol,
                        source: im.source, destination: im.destination)
        let il4o = ih + IPv4Layout.minimumHeaderLength
        il4o.copyMemory(from: il4, byteCount: copied)
        layout.writeExtension(after: ih, from: inner + innerAvailable)
        switch it.kind {
        case .tcp, .udp:
            var d = ChecksumDelta(oldSum: isrc6.wordSum &+ idst6.wordSum, newSum: wordSum(im.source) &+ wordSum(im.destination))
            if copied >= 4 && im.ports != it.ports {
                d.replace(it.ports.source, with: im.ports.source)
                d.replace(it.ports.destination, with: im.ports.destination)
                store16(il4o, 0, im.ports.source)
                store16(il4o, 2, im.ports.destination)
            }
            let at = it.kind == .tcp ? TCPLayout.checksum : UDPLayout.checksum
            if copied >= at + 2 {
                let old = load16(il4o, at)
                store16(il4o, at, it.kind == .tcp ? d.apply(to: old) : d.applyUDP(to: old))
            }
        case .icmpEchoRequest, .icmpEchoReply:
            let iph = Checksum.pseudoHeaderSum(source: isrc6, destination: idst6, nextHeader: IPProtocol.icmpv6,
                                               length: innerStatedUpper)
            rewriteEcho(il4o, kind: it.kind, request: ICMPv4Type.echoRequest, reply: ICMPv4Type.echoReply, ports: im.ports,
                        oldPseudoHeaderSum: iph, newPseudoHeaderSum: 0)
        case .icmpError, .other:
            break
        }

        // The ICMPv4 header and checksum.
        let m4 = o + IPv4Layout.minimumHeaderLength
        store8(m4, 0, mapped.type)
        store8(m4, 1, mapped.code)
        store16(m4, 2, 0)
        store32(m4, 4, rest4)
        store16(m4, 2, Checksum.finish(Checksum.sum(m4, count: size - IPv4Layout.minimumHeaderLength)))

        // The outer IPv4 header. An error that came as an atomic fragment (a Fragment header, offset 0,
        // M clear) keeps the low 16 bits of its Identification with DF clear, as every packet with a
        // Fragment header does (RFC 7915 §5.1.1). Otherwise as §5.1: up to 1260 bytes DF is clear and
        // the Identification is counted; larger ones get DF and Identification 0 (RFC 6864 §4.1).
        let tc = UInt8(truncatingIfNeeded: load32(p, 0) >> IPv6Layout.trafficClassShift)
        let outerID: UInt16, outerFlags: UInt16
        if c.hasFragmentHeader {
            (outerID, outerFlags) = (UInt16(truncatingIfNeeded: c.fragmentIdentification), 0)
        } else if size > 1260 {
            (outerID, outerFlags) = (0, IPv4Layout.flagDF)
        } else {
            (outerID, outerFlags) = (takeIdentification(), 0)
        }
        writeIPv4Header(o, tos: trafficClass(tc), totalLength: size,
                        identification: outerID,
                        flagsAndOffset: outerFlags, ttl: hopLimit &- 1,
                        protocolNumber: IPProtocol.icmp, source: om.source, destination: om.destination)
        counters.icmpErrorsTranslated &+= 1
        counters6to4.icmpErrorsTranslated &+= 1
        if hairpin {
            counters.hairpinnedPackets &+= 1
            counters6to4.hairpinnedPackets &+= 1
            return try translate4to6(UnsafeRawPointer(o), available: size, out: out, capacity: capacity, hairpin: true, now: now)
        }
        counters.outboundPackets &+= 1
        counters.outboundBytes &+= UInt64(size)
        counters6to4.outboundPackets &+= 1
        counters6to4.outboundBytes &+= UInt64(size)
        return (.toOutside, size)
    }

    /// RFC 7915 §4.2 and §4.3: an ICMPv4 error becomes an ICMPv6 error.
    ///
    /// The ICMPv4 checksum must verify, and so must the checksum of the quoted IPv4 header. Type and code
    /// follow §4.2 (untranslatable ones are dropped); Fragmentation Needed's MTU becomes
    /// max(1280, min(MTU + 20, IPv6 MTU, IPv4 MTU + 20)), with the RFC 1191 plateau below the quoted Total
    /// Length when the MTU field is zero; a Parameter Problem pointer follows Figure 3. The packet in error
    /// is translated as an IPv4 packet would be (TTL kept), its addresses mapped with
    /// ``NAT64Mapping/mapInner4to6(source:destination:transport:hairpin:now:)``, its transport checksum
    /// updated incrementally. The result is cut to 1280 bytes (the IPv6 minimum MTU, RFC 4443 §2.4 (c)) and
    /// the ICMPv6 checksum computed with the pseudo-header. An ICMP extension (RFC 4884) is carried
    /// as an opaque string with the length attribute recomputed (``ICMPExtensionLayout``); not for Packet
    /// Too Big and Parameter Problem, which have no length attribute.
    @inlinable
    mutating func translateICMPv4Error(_ p: UnsafeRawPointer, headerLength hl: Int, total: Int,
                                       out: UnsafeMutableRawPointer, capacity: Int, hairpin: Bool,
                                       now: Timestamp) throws(DropReason) -> (verdict: Verdict, length: Int) {
        let icmp = p + hl
        let icmpLength = total - hl
        // RFC 7915 §4.1: the source of an ICMPv4 error is translated even when illegal (for troubleshooting);
        // the destination is not (RFC 1812 §5.3.7).
        if !hairpin && isMartianIPv4(IPv4Address(load32(p, IPv4Layout.destination))) { throw .nonGlobalIPv4Address }
        // RFC 7915 §4.1: a packet with an unexpired source route is not translated; no error about an error.
        if !hairpin && hl > IPv4Layout.minimumHeaderLength && hasUnexpiredSourceRoute(p, headerLength: hl) {
            throw .sourceRouteRefused
        }
        guard Checksum.fold(Checksum.sum(icmp, count: icmpLength)) == 0xFFFF else { throw .badICMPChecksum }
        let type = load8(icmp, ICMPv4Layout.type), code = load8(icmp, ICMPv4Layout.code)
        guard let mapped = ICMPTranslationTables.error4to6(type: type, code: code) else { throw .untranslatableICMP }
        var rest6: UInt32 = 0
        switch mapped.rest {
        case .translatedPointer:
            guard let v = ICMPTranslationTables.pointer4to6(load8(icmp, ICMPv4Layout.pointer)) else { throw .untranslatableICMP }
            rest6 = v
        case .fixedPointer(let v):
            rest6 = v
        case .zero, .mtu:
            break
        }

        let inner = icmp + ICMPv4Layout.headerLength
        let payloadLength = icmpLength - ICMPv4Layout.headerLength
        // RFC 4884 §4.1: a non-zero length attribute (32-bit words) ends the (padded) original datagram;
        // an ICMP extension structure follows it.
        let (innerAvailable, carried) = try splitICMPExtension(lengthAttribute: Int(load8(icmp, 5)) << 2,
                                                               payloadLength: payloadLength)
        var extensionLength = carried
        // Packet Too Big and Parameter Problem have no length attribute in ICMPv6: the extension goes.
        if mapped.type != ICMPv6Type.destinationUnreachable && mapped.type != ICMPv6Type.timeExceeded {
            extensionLength = 0
        }
        guard innerAvailable >= IPv4Layout.minimumHeaderLength, load8(inner, 0) >> 4 == 4 else { throw .malformedICMPError }
        let ihl = Int(load8(inner, 0) & 0x0F) << 2
        guard ihl >= IPv4Layout.minimumHeaderLength, ihl <= innerAvailable else { throw .malformedICMPError }
        guard ipv4HeaderChecksumValid(inner, headerLength: ihl) else { throw .badEmbeddedPacket }
        let innerTotal = Int(load16(inner, IPv4Layout.totalLength))
        guard innerTotal >= ihl else { throw .badEmbeddedPacket }
        let ifo = load16(inner, IPv4Layout.flagsFragmentOffset)
        let imf = ifo & IPv4Layout.flagMF != 0
        let ioffset = Int(ifo & IPv4Layout.offsetMask) << 3
        let iIsFragment = imf || ioffset != 0
        let iid = load16(inner, IPv4Layout.identification)
        let iproto = load8(inner, IPv4Layout.protocolNumber)
        let isrc4 = IPv4Address(load32(inner, IPv4Layout.source))
        let idst4 = IPv4Address(load32(inner, IPv4Layout.destination))
        let il4 = inner + ihl
        let il4Available = innerAvailable - ihl
        var it = NAT64Transport(kind: .other, protocolNumber: iproto, isFragment: iIsFragment,
                                fragmentIdentification: UInt32(iid))
        if ioffset == 0 {
            try it.readEmbedded(il4, available: il4Available, ipv6: false)
        }

        let im = try mapping.mapInner4to6(source: isrc4, destination: idst4, transport: it, hairpin: hairpin, now: now)
        let om = try mapping.map4to6(source: IPv4Address(load32(p, IPv4Layout.source)),
                                     destination: IPv4Address(load32(p, IPv4Layout.destination)),
                                     transport: NAT64Transport(kind: .icmpError, protocolNumber: IPProtocol.icmp),
                                     hairpin: hairpin, now: now)
        let ttl = load8(p, IPv4Layout.ttl)
        // No ICMP error about an ICMP error (RFC 1812 §4.3.2.7).
        guard hairpin || ttl > 1 else { throw .ttlExceeded }

        if mapped.rest == .mtu {
            var mtu = Int(load16(icmp, ICMPv4Layout.nextHopMTU))
            if mtu == 0 { mtu = ICMPTranslationTables.plateau(below: innerTotal) }
            rest6 = UInt32(max(1280, min(mtu + 20, ipv6MTU, ipv4MTU + 20)))
        }

        let innerHeader = IPv6Layout.headerLength + (iIsFragment ? IPv6ExtensionLayout.fragmentHeaderLength : 0)
        let headers = IPv6Layout.headerLength + ICMPv6Layout.headerLength + innerHeader
        let limit = min(1280, capacity)
        guard limit >= headers else { throw .outputTooSmall }
        // RFC 7915 §4.2 "ICMP Error Payload", RFC 4884 §4.5: the extension is carried as an opaque string
        // after the translated datagram, zero padded to 64 bits (at least 128 bytes), with the length
        // attribute in 64-bit words; it goes ("simply truncated") when it does not fit in 1280 bytes with
        // 128 of datagram.
        let layout = ICMPExtensionLayout(outerHeaders: IPv6Layout.headerLength + ICMPv6Layout.headerLength,
                                         translatedInner: innerHeader + il4Available,
                                         extensionLength: extensionLength, limit: limit, unit: 8, maximumWords: 255)
        let size = layout.size
        let copied = layout.innerLength - innerHeader
        if layout.keepsExtension { rest6 |= UInt32(layout.lengthAttribute) << 24 }

        let iproto6 = iproto == IPProtocol.icmp ? IPProtocol.icmpv6 : iproto
        let ih = out + IPv6Layout.headerLength + ICMPv6Layout.headerLength
        writeIPv6Header(ih, trafficClass: trafficClass(load8(inner, IPv4Layout.tos)),
                        payloadLength: innerTotal - ihl + (iIsFragment ? IPv6ExtensionLayout.fragmentHeaderLength : 0),
                        nextHeader: iIsFragment ? IPProtocol.ipv6Fragment : iproto6, hopLimit: load8(inner, IPv4Layout.ttl),
                        source: im.source, destination: im.destination)
        if iIsFragment {
            writeFragmentHeader(ih + IPv6Layout.headerLength, nextHeader: iproto6, offset: ioffset, more: imf,
                                identification: UInt32(iid))
        }
        let il4o = ih + innerHeader
        il4o.copyMemory(from: il4, byteCount: copied)
        layout.writeExtension(after: ih, from: inner + innerAvailable)
        switch it.kind {
        case .tcp, .udp:
            var d = ChecksumDelta(oldSum: wordSum(isrc4) &+ wordSum(idst4), newSum: im.source.wordSum &+ im.destination.wordSum)
            if copied >= 4 && im.ports != it.ports {
                d.replace(it.ports.source, with: im.ports.source)
                d.replace(it.ports.destination, with: im.ports.destination)
                store16(il4o, 0, im.ports.source)
                store16(il4o, 2, im.ports.destination)
            }
            let at = it.kind == .tcp ? TCPLayout.checksum : UDPLayout.checksum
            if copied >= at + 2 {
                let old = load16(il4o, at)
                // A quoted UDP datagram without a checksum keeps zero: it cannot be computed from a quote.
                if !(it.kind == .udp && old == 0) {
                    var v = d.apply(to: old)
                    if it.kind == .udp && v == 0 { v = 0xFFFF }
                    store16(il4o, at, v)
                }
            }
        case .icmpEchoRequest, .icmpEchoReply:
            let iph = Checksum.pseudoHeaderSum(source: im.source, destination: im.destination,
                                               nextHeader: IPProtocol.icmpv6, length: innerTotal - ihl)
            rewriteEcho(il4o, kind: it.kind, request: ICMPv6Type.echoRequest, reply: ICMPv6Type.echoReply, ports: im.ports,
                        oldPseudoHeaderSum: 0, newPseudoHeaderSum: iph)
        case .icmpError, .other:
            break
        }

        let m6 = out + IPv6Layout.headerLength
        let icmp6Length = size - IPv6Layout.headerLength
        store8(m6, 0, mapped.type)
        store8(m6, 1, mapped.code)
        store16(m6, 2, 0)
        store32(m6, 4, rest6)
        let ph = Checksum.pseudoHeaderSum(source: om.source, destination: om.destination, nextHeader: IPProtocol.icmpv6,
                                          length: icmp6Length)
        store16(m6, 2, Checksum.finish(Checksum.sum(m6, count: icmp6Length, initial: ph)))
        writeIPv6Header(out, trafficClass: trafficClass(load8(p, IPv4Layout.tos)), payloadLength: icmp6Length,
                        nextHeader: IPProtocol.icmpv6, hopLimit: hairpin ? ttl : ttl &- 1,
                        source: om.source, destination: om.destination)
        if !hairpin {
            counters.icmpErrorsTranslated &+= 1
            counters4to6.icmpErrorsTranslated &+= 1
            counters.inboundPackets &+= 1
            counters.inboundBytes &+= UInt64(size)
            counters4to6.inboundPackets &+= 1
            counters4to6.inboundBytes &+= UInt64(size)
        }
        return (.toInside(tenant: 0), size)
    }
}

/// RFC 4884: splits an ICMP error's payload at its length attribute (in bytes) into the original datagram
/// and the extension structure after it. Zero (no extension) or the whole payload: no extension. A valid
/// split leaves at least 128 bytes of datagram (RFC 4884 §4.1/§4.5) and ends before the payload does; a
/// length attribute that does not is read as no extension at all (the whole payload is the datagram), as
/// Jool does, rather than dropping the error.
@inlinable
func splitICMPExtension(lengthAttribute l: Int, payloadLength: Int) throws(DropReason) -> (datagram: Int, extension: Int) {
    guard l != 0, l != payloadLength, l >= 128, l < payloadLength else { return (payloadLength, 0) }
    return (l, payloadLength - l)
}

/// Where the translated packet in error, its padding and an RFC 4884 extension go in a translated ICMP
/// error of at most `limit` bytes (RFC 7915 §4.2/§5.2 "ICMP Error Payload"). The outer headers and the
/// first 128 bytes of the datagram come first, then the extension (never cut: it goes whole when it does
/// not fit), then the rest of the datagram as far as it fits. With the extension, the datagram is zero
/// padded to a multiple of `unit` bytes (4 for ICMPv4, 8 for ICMPv6) and to at least 128 bytes, and the
/// length attribute counts it in units.
@usableFromInline
struct ICMPExtensionLayout {
    @usableFromInline let outerHeaders: Int
    /// Bytes of the translated datagram that are written (headers included).
    @usableFromInline let innerLength: Int
    /// Zero bytes after them.
    @usableFromInline let padding: Int
    /// Bytes of extension after the padding (0: none).
    @usableFromInline let extensionLength: Int
    @usableFromInline let unit: Int

    @inlinable
    init(outerHeaders: Int, translatedInner: Int, extensionLength e: Int, limit: Int, unit: Int, maximumWords: Int) {
        self.outerHeaders = outerHeaders
        self.unit = unit
        let room = min(limit - outerHeaders - e, maximumWords * unit)
        guard e > 0, room >= 128 else {
            innerLength = min(translatedInner, limit - outerHeaders)
            padding = 0
            extensionLength = 0
            return
        }
        let rounded = (translatedInner + unit - 1) / unit * unit
        var n = translatedInner, pad = rounded - translatedInner
        if rounded > room {
            n = room / unit * unit
            pad = 0
        }
        if n + pad < 128 { pad = 128 - n }
        innerLength = n
        padding = pad
        extensionLength = e
    }

    @inlinable var keepsExtension: Bool { extensionLength > 0 }
    @inlinable var size: Int { outerHeaders + innerLength + padding + extensionLength }
    /// The length attribute, in units.
    @inlinable var lengthAttribute: Int { (innerLength + padding) / unit }

    /// Writes the padding and the extension after the datagram that starts at `inner`.
    @inlinable
    func writeExtension(after inner: UnsafeMutableRawPointer, from source: UnsafeRawPointer) {
        guard extensionLength > 0 else { return }
        (inner + innerLength).initializeMemory(as: UInt8.self, repeating: 0, count: padding)
        (inner + innerLength + padding).copyMemory(from: source, byteCount: extensionLength)
    }
}
