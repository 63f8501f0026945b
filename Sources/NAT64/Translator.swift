import NATCore
import NATWire

/// The IP/ICMP translator (RFC 7915): IPv6 packets become IPv4 packets and IPv4 packets become IPv6
/// packets, with addresses (and, for stateful mappings, ports) from a ``NAT64Mapping``. Packet bytes and
/// `now` in, bytes and a ``Verdict`` out; no I/O, no clock, no locks. Nothing allocates per packet: the
/// output buffers and the outbox are allocated in `init`.
///
/// - An IPv6 packet that is translated to IPv4 gives `.toOutside`; an IPv4 packet translated to IPv6
///   (including a hairpinned IPv6 packet, RFC 7757 §4.3) gives `.toInside(tenant: 0)`.
/// - The translated packet is in ``output`` (after ``process(_:now:)``) or in the caller's buffer (after
///   ``process(_:into:now:)``), valid until the next call.
/// - Packets the translator makes itself — further fragments (RFC 7915 §4.1, RFC 791 §2.3) and ICMP
///   errors (TTL/Hop Limit exceeded, Fragmentation Needed, Packet Too Big, Parameter Problem, Source
///   Route Failed) — wait in an outbox: drain it with ``nextOutput()`` after every call. A dropped
///   packet can still leave an ICMP error there.
/// - Every drop has a ``DropReason`` and is counted in ``counters`` and in the per-direction counters.
public struct NAT64Translator<Mapping: NAT64Mapping & ~Copyable>: ~Copyable {
    public let configuration: NAT64Configuration
    /// The address mapping; the control plane may reach it between packets (for example to add EAM rows
    /// or read a pool's bindings).
    public var mapping: Mapping
    /// All directions together.
    public var counters = Counters()
    /// IPv6 → IPv4 only (`outboundPackets`, drops of IPv6 input).
    public var counters6to4 = Counters()
    /// IPv4 → IPv6 only (`inboundPackets`, drops of IPv4 input).
    public var counters4to6 = Counters()
    /// Packets the translator generated: drain with ``nextOutput()``.
    public var outbox: Outbox

    @usableFromInline let buffer: UnsafeMutableRawPointer
    @usableFromInline let scratch: UnsafeMutableRawPointer
    /// The capacity of ``buffer`` and ``scratch``: the largest IPv4 or IPv6 packet plus a fragment header.
    @inlinable static var bufferCapacity: Int { 65_535 + 64 }
    @usableFromInline var outputLength = 0
    @usableFromInline var nextIdentification: UInt16
    @usableFromInline let trafficClassOverride: Int
    @usableFromInline let lowestIPv6MTU: Int
    @usableFromInline let ipv6MTU: Int
    @usableFromInline let ipv4MTU: Int
    public var lastNow: Timestamp = .zero
    /// Whether packets may take the established-flow fast path (``NAT64Mapping/hasEstablishedFastPath``);
    /// results are the same either way (tests turn it off to compare).
    public var fastPathEnabled = true
    @usableFromInline var icmpTokens = 0
    @usableFromInline var icmpTokenSecond: UInt32 = .max

    /// Builds a translator; the configuration must pass ``NAT64Configuration/validate()``.
    public init(configuration c: NAT64Configuration, mapping: consuming Mapping) throws(ConfigurationError) {
        try c.validate()
        configuration = c
        self.mapping = mapping
        buffer = .allocate(byteCount: Self.bufferCapacity, alignment: 16)
        scratch = .allocate(byteCount: Self.bufferCapacity, alignment: 16)
        outbox = Outbox(slots: c.outboxSlots, slotSize: max(1280, c.lowestIPv6MTU, c.ipv4MTU))
        nextIdentification = c.identificationSeed
        trafficClassOverride = c.trafficClassOverride.map { Int($0) } ?? -1
        lowestIPv6MTU = c.lowestIPv6MTU
        ipv6MTU = c.ipv6MTU
        ipv4MTU = c.ipv4MTU
    }

    deinit {
        buffer.deallocate()
        scratch.deallocate()
    }

    // MARK: Entry points

    /// Translates one packet (IPv6 or IPv4, told apart by the version nibble). The packet's bytes are
    /// only read. On `.toOutside`/`.toInside` the translated packet is in ``output``.
    @inlinable
    public mutating func process(_ packet: UnsafeMutableRawBufferPointer, now: Timestamp) -> Verdict {
        let r = translate(UnsafeRawBufferPointer(packet), into: buffer, capacity: Self.bufferCapacity, now: now)
        outputLength = r.length
        return r.verdict
    }

    /// As ``process(_:now:)``, writing the translated packet into `output` (at most 65,599 bytes are ever
    /// needed; a smaller buffer drops larger translations with `.outputTooSmall`). Returns its length.
    @inlinable
    public mutating func process(_ packet: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer,
                                 now: Timestamp) -> (verdict: Verdict, length: Int) {
        guard let o = output.baseAddress else {
            record(.outputTooSmall, sixToFour: nil)
            return (.drop(.outputTooSmall), 0)
        }
        return translate(packet, into: o, capacity: output.count, now: now)
    }

    /// Convenience for tests and tools: translates the bytes of an array and replaces them with the
    /// translated packet (allocates; not for the packet path).
    public mutating func process(_ packet: inout [UInt8], now: Timestamp) -> Verdict {
        let v = packet.withUnsafeMutableBytes { process($0, now: now) }
        if v.isForwarded { packet = Array(UnsafeRawBufferPointer(output)) }
        return v
    }

    /// The packet that the last ``process(_:now:)`` translated (empty after a drop).
    @inlinable public var output: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: buffer, count: outputLength)
    }

    /// Takes the next packet the translator generated; its bytes are valid until the next call.
    /// Packets the mapping made (``NAT64Mapping/nextGeneratedPacket()``: a stateful mapping's ICMP errors
    /// for expired unsolicited SYNs and its TCP probes) come after the translator's own.
    public mutating func nextOutput() -> (bytes: UnsafeMutableRawBufferPointer, verdict: Verdict)? {
        if let o = outbox.pop() { return o }
        guard let g = mapping.nextGeneratedPacket() else { return nil }
        return hairpinGenerated(g)
    }

    /// RFC 6146 §3.8: a packet the mapping made for one of its own IPv4 addresses (the Port Unreachable
    /// that answers a kept hairpinned SYN) is translated back to the IPv6 host, as hairpinned packets are;
    /// anything else leaves as it is. Off the packet path (timers).
    @usableFromInline
    mutating func hairpinGenerated(_ g: (bytes: UnsafeMutableRawBufferPointer, verdict: Verdict)) -> (bytes: UnsafeMutableRawBufferPointer, verdict: Verdict)? {
        guard g.verdict == .toOutside, let p = g.bytes.baseAddress, g.bytes.count >= IPv4Layout.minimumHeaderLength,
              load8(p, 0) >> 4 == 4 else { return g }
        let destination = IPv4Address(UInt32(bigEndian: p.loadUnaligned(fromByteOffset: IPv4Layout.destination, as: UInt32.self)))
        guard mapping.isHairpin(destination, ipv6Destination: IPv6Address(high: 0, low: 0)) else { return g }
        guard let slot = outbox.reserve(), let o = slot.baseAddress else {
            record(.outboxFull, sixToFour: false)
            return nil
        }
        do throws(DropReason) {
            let (v, n) = try translate4to6(UnsafeRawPointer(p), available: g.bytes.count, out: o, capacity: slot.count,
                                           hairpin: true, now: lastNow)
            outbox.commit(length: n, verdict: v)
            return outbox.pop()
        } catch {
            record(error, sixToFour: false)
            return nil
        }
    }

    // MARK: Dispatch

    @inlinable @inline(__always)
    mutating func translate(_ packet: UnsafeRawBufferPointer, into out: UnsafeMutableRawPointer, capacity: Int,
                            now: Timestamp) -> (verdict: Verdict, length: Int) {
        translate(packet, into: out, capacity: capacity, now: now, hint: NAT64BurstHint())
    }

    /// One packet: the fast path (``fast6to4(_:available:out:capacity:now:hint:)``) when the mapping has one
    /// and the packet qualifies, else the full path.
    @inlinable
    mutating func translate(_ packet: UnsafeRawBufferPointer, into out: UnsafeMutableRawPointer, capacity: Int,
                            now: Timestamp, hint: NAT64BurstHint) -> (verdict: Verdict, length: Int) {
        lastNow = now
        guard let p = packet.baseAddress, packet.count >= 1 else {
            record(.truncated, sixToFour: nil)
            return (.drop(.truncated), 0)
        }
        let version = load8(p, 0) >> 4
        if Mapping.hasEstablishedFastPath && fastPathEnabled {
            if version == 6 {
                let n = fast6to4(p, available: packet.count, out: out, capacity: capacity, now: now, hint: hint)
                if n > 0 { return (.toOutside, n) }
            } else if version == 4 {
                let n = fast4to6(p, available: packet.count, out: out, capacity: capacity, now: now, hint: hint)
                if n > 0 { return (.toInside(tenant: 0), n) }
            }
        }
        return translateFull(p, count: packet.count, into: out, capacity: capacity, now: now)
    }

    /// The full path for one packet (every check, every error, state created as needed).
    @inlinable
    mutating func translateFull(_ p: UnsafeRawPointer, count: Int, into out: UnsafeMutableRawPointer, capacity: Int,
                                now: Timestamp) -> (verdict: Verdict, length: Int) {
        let packet = UnsafeRawBufferPointer(start: p, count: count)
        switch load8(p, 0) >> 4 {
        case 6:
            do throws(DropReason) {
                return try translate6to4(p, available: packet.count, out: out, capacity: capacity, now: now)
            } catch {
                return refused(packet, error, sixToFour: true, now: now)
            }
        case 4:
            do throws(DropReason) {
                return try translate4to6(p, available: packet.count, out: out, capacity: capacity, hairpin: false, now: now)
            } catch {
                return refused(packet, error, sixToFour: false, now: now)
            }
        default:
            record(.badIPVersion, sixToFour: nil)
            return (.drop(.badIPVersion), 0)
        }
    }

    /// A dropped input packet: the mapping may keep it (``NAT64RefusalAction/held``) or ask for an ICMP
    /// Destination Unreachable (``NAT64Mapping/refusal(of:reason:now:)``); otherwise it is counted.
    @inlinable
    mutating func refused(_ packet: UnsafeRawBufferPointer, _ reason: DropReason, sixToFour: Bool,
                          now: Timestamp) -> (verdict: Verdict, length: Int) {
        switch mapping.refusal(of: packet, reason: reason, now: now) {
        case .drop:
            break
        case .held:
            counters.synsHeld &+= 1
            if sixToFour { counters6to4.synsHeld &+= 1 } else { counters4to6.synsHeld &+= 1 }
            return (.held, 0)
        case .unreachable(let code):
            sendUnreachable(packet, code: code)
        }
        record(reason, sixToFour: sixToFour)
        return (.drop(reason), 0)
    }

    /// ICMP Destination Unreachable with `code` about an input packet (not about an ICMP error or a
    /// non-first IPv4 fragment: RFC 4443 §2.4 (e), RFC 1812 §4.3.2.7).
    @inlinable
    mutating func sendUnreachable(_ packet: UnsafeRawBufferPointer, code: UInt8) {
        guard let p = packet.baseAddress else { return }
        if load8(p, 0) >> 4 == 6 {
            guard packet.count >= IPv6Layout.headerLength else { return }
            let total = min(packet.count, IPv6Layout.headerLength + Int(load16(p, IPv6Layout.payloadLength)))
            guard let c = try? walkIPv6ForTranslation(p, count: total) else { return }
            if c.upperProtocol == IPProtocol.icmpv6 {
                guard c.isFirst, c.upperOffset < total, !ICMPv6Type.isError(load8(p, c.upperOffset)) else { return }
            }
            sendICMPv6Error(type: ICMPv6Type.destinationUnreachable, code: code, rest: 0, about: p, length: total)
        } else {
            guard packet.count >= IPv4Layout.minimumHeaderLength else { return }
            let hl = Int(load8(p, 0) & 0x0F) << 2
            let total = min(packet.count, Int(load16(p, IPv4Layout.totalLength)))
            guard hl >= IPv4Layout.minimumHeaderLength, hl < total,
                  load16(p, IPv4Layout.flagsFragmentOffset) & IPv4Layout.offsetMask == 0 else { return }
            if load8(p, IPv4Layout.protocolNumber) == IPProtocol.icmp && ICMPv4Type.isError(load8(p, hl)) { return }
            sendICMPv4Error(type: ICMPv4Type.destinationUnreachable, code: code, rest: 0, about: p, length: total)
        }
    }

    @inlinable @inline(__always)
    mutating func record(_ r: DropReason, sixToFour: Bool?) {
        counters.recordDrop(r)
        if let s = sixToFour {
            if s { counters6to4.recordDrop(r) } else { counters4to6.recordDrop(r) }
        }
    }

    /// The next IPv4 Identification for an unfragmented packet sent with DF clear (RFC 6864 §4.2).
    @inlinable @inline(__always)
    mutating func takeIdentification() -> UInt16 {
        let v = nextIdentification
        nextIdentification &+= 1
        return v
    }

    /// Passes over `count` identifications: a caller that had one packet translated for a whole GSO
    /// super-packet of `count + 1` datagrams, which the kernel numbers on from the one chosen, keeps the
    /// next packets' identifications off theirs.
    public mutating func skipIdentifications(_ count: Int) {
        nextIdentification &+= UInt16(truncatingIfNeeded: count)
    }

    /// RFC 4443 §2.4 (f): takes a token for one generated ICMP error, refilled every second of `lastNow`.
    @inlinable
    mutating func takeICMPToken(sixToFour: Bool) -> Bool {
        guard let limit = configuration.icmpErrorsPerSecond else { return true }
        let second = lastNow.seconds
        if second != icmpTokenSecond {
            icmpTokenSecond = second
            icmpTokens = limit
        }
        guard icmpTokens > 0 else {
            record(.icmpRateLimited, sixToFour: sixToFour)
            return false
        }
        icmpTokens -= 1
        return true
    }

    @inlinable @inline(__always)
    func trafficClass(_ original: UInt8) -> UInt8 {
        trafficClassOverride < 0 ? original : UInt8(truncatingIfNeeded: trafficClassOverride)
    }
}
