import NATCore
import NATWire

/// IPv6-to-IPv6 Network Prefix Translation (RFC 6296): stateless and checksum-neutral. Packet bytes and
/// `now` in, the same bytes rewritten in place and a ``Verdict`` out; no state, no clock, no allocation.
///
/// - A packet whose destination is under the outside prefix gets the inside prefix in its destination
///   (`.toInside(tenant: 0)`); otherwise a packet whose source is under the inside prefix gets the
///   outside prefix in its source (`.toOutside`). Anything else is dropped with `.notNATTraffic`.
///   Inbound first: a packet from an inside address to an outside one (an inside host reaching another
///   by its outside address, or the NAT host's own ICMPv6 error from its inside address about a packet
///   it could not forward out) has only its destination mapped, and so arrives as it would have without
///   the translator (the quoted packet of an error included); the other host answers inside directly.
/// - The prefix is replaced and one 16-bit word is adjusted by a constant (RFC 6296 §3.2), so that the
///   address's one's complement sum does not change: pseudo-header checksums (TCP, UDP, ICMPv6, …) stay
///   valid and are never touched. A result of 0xFFFF is written as 0x0000 (§3.4). The word is bits 48-63
///   (the subnet ID) for prefixes of /48 or shorter (§3.4); a subnet ID of 0xFFFF is refused
///   (`.adjustmentWordAllOnes`): one's complement has two zeros, so it would come back as 0x0000. For
///   longer prefixes it is the first of the IID's four words that is not 0xFFFF (§3.5); an all-ones IID
///   is refused (§3.7, `.adjustmentWordAllOnes`; no Parameter Problem is sent).
/// - ICMPv6 errors (RFC 4443 §2.1, types below 128): the address in the quoted packet that the outer
///   translation mirrors is translated too (RFC 6296 §3.7/§5): the quoted destination on the way out,
///   the quoted source on the way in. That change is neutral for the quoted packet's own checksum, and,
///   the quoted addresses lying at even offsets, for the ICMPv6 checksum as well; the ICMPv6 checksum is
///   adjusted incrementally (RFC 1624) only should that delta not be zero.
/// - Every forwarded packet and every drop is counted in ``counters``.
public struct NPTv6Translator: Sendable {
    public let configuration: NPTv6Configuration
    public var counters = Counters()
    /// The prefixes' upper 64 bits (a prefix is at most /64) and their mask.
    @usableFromInline let insideHigh: UInt64
    @usableFromInline let outsideHigh: UInt64
    @usableFromInline let maskHigh: UInt64
    /// RFC 6296 §3.2: added (one's complement) to the adjustment word inside → outside; its complement
    /// (one's complement negation) outside → inside.
    @usableFromInline let outboundAdjustment: UInt16
    @usableFromInline let inboundAdjustment: UInt16
    /// Whether the adjustment word is bits 48-63 (prefix ≤ /48) rather than a word of the IID.
    @usableFromInline let adjustsSubnetWord: Bool

    /// Builds a translator; the configuration must pass ``NPTv6Configuration/validate()``.
    public init(configuration c: NPTv6Configuration) throws(ConfigurationError) {
        try c.validate()
        configuration = c
        insideHigh = c.insidePrefix.address.high
        outsideHigh = c.outsidePrefix.address.high
        maskHigh = IPv6Prefix.mask(c.insidePrefix.length).0
        outboundAdjustment = Self.adjustment(from: c.insidePrefix.address, to: c.outsidePrefix.address)
        inboundAdjustment = Self.adjustment(from: c.outsidePrefix.address, to: c.insidePrefix.address)
        adjustsSubnetWord = c.insidePrefix.length <= 48
    }

    /// RFC 6296 §3.2: the one's complement sum of the `from` prefix minus that of the `to` prefix (the
    /// prefixes' host bits are zero, so all eight words may be summed).
    static func adjustment(from: IPv6Address, to: IPv6Address) -> UInt16 {
        let f = Checksum.fold(from.wordSum), t = Checksum.fold(to.wordSum)
        return Checksum.fold(UInt64(f) &+ UInt64(~t))
    }

    /// One's complement addition of two 16-bit words; the result 0xFFFF (minus zero) is written as 0x0000
    /// (RFC 6296 §3.4), so that a mapped word is never 0xFFFF.
    @inlinable @inline(__always)
    static func onesComplementAdd(_ a: UInt16, _ b: UInt16) -> UInt16 {
        let s = UInt32(a) &+ UInt32(b)
        let r = UInt16(truncatingIfNeeded: (s & 0xFFFF) &+ (s >> 16))
        return r == 0xFFFF ? 0 : r
    }

    // MARK: Address mapping

    /// The outside address of an inside host (RFC 6296 §3.6's mapping). Throws `.notNATTraffic` when
    /// `inside` is not under the inside prefix, `.adjustmentWordAllOnes` when no adjustment word can be used
    /// (a subnet ID of 0xFFFF up to /48, an all-ones IID above).
    @inlinable
    public func outsideAddress(for inside: IPv6Address) throws(DropReason) -> IPv6Address {
        try map(inside, from: insideHigh, to: outsideHigh, adjustment: outboundAdjustment)
    }

    /// The inside address behind an outside address (the inverse mapping).
    @inlinable
    public func insideAddress(for outside: IPv6Address) throws(DropReason) -> IPv6Address {
        try map(outside, from: outsideHigh, to: insideHigh, adjustment: inboundAdjustment)
    }

    @inlinable @inline(__always)
    func map(_ a: IPv6Address, from: UInt64, to: UInt64, adjustment: UInt16) throws(DropReason) -> IPv6Address {
        guard a.high & maskHigh == from else { throw .notNATTraffic }
        var r = IPv6Address(high: a.high & ~maskHigh | to, low: a.low)
        if adjustsSubnetWord {
            let w = UInt16(truncatingIfNeeded: r.high)
            guard w != 0xFFFF else { throw .adjustmentWordAllOnes }
            r.high = r.high & ~0xFFFF | UInt64(Self.onesComplementAdd(w, adjustment))
            return r
        }
        // RFC 6296 §3.5/§3.7: the first IID word that is not 0xFFFF. The mapped word never is 0xFFFF and
        // the words before it are unchanged, so the inverse mapping picks the same word.
        var shift: UInt64 = 48
        while true {
            let w = UInt16(truncatingIfNeeded: r.low >> shift)
            if w != 0xFFFF {
                r.low = r.low & ~(0xFFFF << shift) | UInt64(Self.onesComplementAdd(w, adjustment)) << shift
                return r
            }
            guard shift > 0 else { throw .adjustmentWordAllOnes }
            shift -= 16
        }
    }

    // MARK: Entry points

    /// Translates one IPv6 packet in place. The direction comes from the addresses (see the type's
    /// documentation). On a drop the packet's bytes are unchanged.
    @inlinable
    public mutating func process(_ packet: UnsafeMutableRawBufferPointer, now: Timestamp) -> Verdict {
        do throws(DropReason) {
            let (verdict, length) = try translate(packet)
            switch verdict {
            case .toOutside:
                counters.outboundPackets &+= 1
                counters.outboundBytes &+= UInt64(length)
            default:
                counters.inboundPackets &+= 1
                counters.inboundBytes &+= UInt64(length)
            }
            return verdict
        } catch {
            counters.recordDrop(error)
            return .drop(error)
        }
    }

    /// Convenience for tests and tools: translates the bytes of an array in place.
    public mutating func process(_ packet: inout [UInt8], now: Timestamp) -> Verdict {
        packet.withUnsafeMutableBytes { process($0, now: now) }
    }

    @inlinable
    mutating func translate(_ packet: UnsafeMutableRawBufferPointer) throws(DropReason) -> (Verdict, Int) {
        guard packet.count >= IPv6Layout.headerLength else { throw .truncated }
        let view: MutableIPv6View
        do throws(WireError) {
            view = try MutableIPv6View(validating: packet)
        } catch {
            throw error == .badVersion ? .badIPVersion : .badIPLength
        }
        if view.destination.high & maskHigh == outsideHigh {
            let destination = try insideAddress(for: view.destination)
            try translateQuotedPacket(view, quotedAddressOffset: IPv6Layout.source, outbound: false)
            view.setDestination(destination)
            return (.toInside(tenant: 0), view.count)
        }
        if view.source.high & maskHigh == insideHigh {
            let source = try outsideAddress(for: view.source)
            try translateQuotedPacket(view, quotedAddressOffset: IPv6Layout.destination, outbound: true)
            view.setSource(source)
            return (.toOutside, view.count)
        }
        throw .notNATTraffic
    }

    /// RFC 6296 §3.7/§5, RFC 4443 §2.4: in an ICMPv6 error, the quoted packet's address that mirrors the
    /// outer one (`quotedAddressOffset` within the quoted IPv6 header) is mapped the same way. Other
    /// packets are left alone. Throws before anything is written.
    @inlinable
    mutating func translateQuotedPacket(_ view: MutableIPv6View, quotedAddressOffset: Int, outbound: Bool) throws(DropReason) {
        switch view.nextHeader {
        case IPProtocol.tcp, IPProtocol.udp, IPProtocol.esp, IPProtocol.gre, IPProtocol.noNextHeader: return
        default: break
        }
        let chain: IPv6ExtensionChain
        do throws(WireError) { chain = try view.walkExtensionHeaders() } catch { throw .badExtensionHeaders }
        guard chain.upperLayerProtocol == IPProtocol.icmpv6, !chain.isNonFirstFragment else { return }
        let icmp = chain.upperLayerOffset
        guard icmp + ICMPv6Layout.headerLength <= view.count else { throw .truncated }
        let p = view.mutablePointer
        guard ICMPv6Type.isError(load8(p, icmp + ICMPv6Layout.type)) else { return }
        let quoted = icmp + ICMPv6Layout.headerLength
        guard quoted + IPv6Layout.headerLength <= view.count else { throw .malformedICMPError }
        guard load8(p, quoted) >> 4 == 6 else { throw .badEmbeddedPacket }
        let at = quoted + quotedAddressOffset
        let old = IPv6Address(high: load64(p, at), low: load64(p, at + 8))
        let new: IPv6Address
        do throws(DropReason) {
            new = outbound ? try outsideAddress(for: old) : try insideAddress(for: old)
        } catch {
            throw error == .notNATTraffic ? .badEmbeddedPacket : error
        }
        var delta = ChecksumDelta()
        delta.replace(old, with: new)
        store64(p, at, new.high)
        store64(p, at + 8, new.low)
        if !delta.isZero {
            let c = icmp + ICMPv6Layout.checksum
            store16(p, c, delta.apply(to: load16(p, c)))
        }
        counters.icmpErrorsTranslated &+= 1
    }
}
