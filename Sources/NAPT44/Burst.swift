import NATCore
import NATWire

/// Burst entry points. A packet thread that has several packets at hand (a TUN read loop, a ring of
/// descriptors) hands them over together: the engine first computes every packet's session-index
/// hash and prefetches the bucket, then prefetches each first candidate record, and only then
/// translates the packets one by one, so the table's cache misses overlap instead of queueing behind
/// each other. Verdicts and results are exactly those of the one-packet calls, in order.
extension NAPT44Engine {
    /// A good burst length: long enough for the prefetch pipeline to fill (see ``pipelineLead``).
    public static let preferredBurst = 32

    /// The session-index hash of a packet from the inside, read without validation (the translation
    /// validates); nil when the packet does not look like a first fragment of TCP, UDP or an ICMP query.
    @inline(__always)
    func peekOutbound(_ p: UnsafeMutableRawBufferPointer, tenant: UInt32) -> UInt32? {
        guard let k = Self.peekTuple(p, inbound: false) else { return nil }
        return table.prefetchFromInside(tenant: tenant, proto: k.proto, insideAddress: k.source, insidePort: k.sourcePort,
                                        remoteAddress: k.destination, remotePort: k.destinationPort)
    }

    @inline(__always)
    func peekInbound(_ p: UnsafeMutableRawBufferPointer) -> UInt32? {
        guard let k = Self.peekTuple(p, inbound: true) else { return nil }
        return table.prefetchFromOutside(proto: k.proto, outsideAddress: k.destination, outsidePort: k.destinationPort,
                                         remoteAddress: k.source, remotePort: k.sourcePort)
    }

    @inline(__always)
    static func peekTuple(_ p: UnsafeMutableRawBufferPointer, inbound: Bool)
        -> (proto: UInt8, source: UInt32, destination: UInt32, sourcePort: UInt16, destinationPort: UInt16)? {
        guard p.count >= 28, let b = p.baseAddress else { return nil }
        let vihl = b.load(as: UInt8.self)
        let ihl = Int(vihl & 0x0F) << 2
        guard vihl >> 4 == 4, ihl >= 20, p.count >= ihl + 8 else { return nil }
        // Non-first fragments carry no transport header.
        guard UInt16(bigEndian: b.loadUnaligned(fromByteOffset: 6, as: UInt16.self)) & 0x1FFF == 0 else { return nil }
        let proto = b.load(fromByteOffset: 9, as: UInt8.self)
        let source = UInt32(bigEndian: b.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
        let destination = UInt32(bigEndian: b.loadUnaligned(fromByteOffset: 16, as: UInt32.self))
        let w0 = UInt16(bigEndian: b.loadUnaligned(fromByteOffset: ihl, as: UInt16.self))
        let w1 = UInt16(bigEndian: b.loadUnaligned(fromByteOffset: ihl + 2, as: UInt16.self))
        switch proto {
        case IPProtocol.tcp, IPProtocol.udp:
            return (proto, source, destination, w0, w1)
        case IPProtocol.icmp:
            let id = UInt16(bigEndian: b.loadUnaligned(fromByteOffset: ihl + 4, as: UInt16.self))
            return inbound ? (proto, source, destination, 0, id) : (proto, source, destination, id, 0)
        default:
            return nil
        }
    }

    /// Translates `count` packets that arrived on the inside interface of `tenant`; `verdicts[i]` is
    /// what ``translateOutbound(_:tenant:now:)`` would have returned for `packets[i]`. Generated packets
    /// (ICMP errors and the like) collect in the outbox: drain it with ``nextOutput()`` after the call
    /// (it holds 64, so keep bursts at most that long when many may be generated).
    public mutating func translateOutbound(burst packets: UnsafePointer<UnsafeMutableRawBufferPointer>, count: Int,
                                           verdicts: UnsafeMutablePointer<Verdict>, tenant: UInt32 = 0, now: Timestamp) {
        lastNow = now
        pipeline(count) { e, i in e.peekOutbound(packets[i], tenant: tenant).map { ($0, 1) } ?? (0, 0) }
            process: { e, i, h, k in
                verdicts[i] = k == 1 && e.fastOutbound(packets[i], tenant: tenant, now: now, hash: h)
                    ? .toOutside : e.fullOutbound(packets[i], tenant: tenant, now: now)
            }
    }

    /// Translates `count` packets that arrived on the outside interface (see the outbound burst call).
    public mutating func translateInbound(burst packets: UnsafePointer<UnsafeMutableRawBufferPointer>, count: Int,
                                          verdicts: UnsafeMutablePointer<Verdict>, now: Timestamp) {
        lastNow = now
        pipeline(count) { e, i in e.peekInbound(packets[i]).map { ($0, 2) } ?? (0, 0) }
            process: { e, i, h, k in
                if k == 2, let t = e.fastInbound(packets[i], now: now, hash: h) {
                    verdicts[i] = .toInside(tenant: t)
                } else {
                    verdicts[i] = e.fullInbound(packets[i], now: now)
                }
            }
    }

    /// The burst form of ``process(_:tenant:now:)`` (direction from the addresses), for a TUN device
    /// that carries both sides.
    public mutating func process(burst packets: UnsafePointer<UnsafeMutableRawBufferPointer>, count: Int,
                                 verdicts: UnsafeMutablePointer<Verdict>, tenant: UInt32 = 0, now: Timestamp) {
        lastNow = now
        pipeline(count) { e, i in
            let p = packets[i]
            guard p.count >= 20, let b = p.baseAddress else { return (0, 0) }
            if e.isInside(UInt32(bigEndian: b.loadUnaligned(fromByteOffset: 12, as: UInt32.self))) {
                return e.peekOutbound(p, tenant: tenant).map { ($0, 1) } ?? (0, 0)
            }
            return e.peekInbound(p).map { ($0, 2) } ?? (0, 0)
        } process: { e, i, h, k in
            if k == 1 {
                if e.fastOutbound(packets[i], tenant: tenant, now: now, hash: h) { verdicts[i] = .toOutside; return }
            } else if k == 2, let t = e.fastInbound(packets[i], now: now, hash: h) {
                verdicts[i] = .toInside(tenant: t)
                return
            }
            verdicts[i] = e.fullProcess(packets[i], tenant: tenant, now: now)
        }
    }

    /// Packets between the stages of the software pipeline: packet i's bucket is prefetched while packet
    /// i − 2·lead is translated, and its first record once packet i − lead is.
    static var pipelineLead: Int { 4 }

    /// Runs the three stages over `count` packets: `peek` hashes packet i and prefetches its bucket,
    /// returning (hash, 1 = inside index / 2 = outside index / 0 = nothing); the record is prefetched
    /// `lead` packets later; `process` translates it `lead` packets after that.
    @inline(__always)
    mutating func pipeline(_ count: Int, peek: (inout Self, Int) -> (UInt32, UInt8),
                           process: (inout Self, Int, UInt32, UInt8) -> Void) {
        let lead = Self.pipelineLead
        var hashes = InlineArray<16, UInt32>(repeating: 0)
        var kinds = InlineArray<16, UInt8>(repeating: 0)
        var i = 0
        while i < count + 2 * lead {
            if i < count {
                let (h, k) = peek(&self, i)
                hashes[i & 15] = h
                kinds[i & 15] = k
            }
            let j = i - lead
            if j >= 0 && j < count {
                let h = hashes[j & 15]
                switch kinds[j & 15] {
                case 1: table.prefetchSession(insideHash: h)
                case 2: table.prefetchSession(outsideHash: h)
                default: break
                }
            }
            let k = i - 2 * lead
            if k >= 0 { process(&self, k, hashes[k & 15], kinds[k & 15]) }
            i += 1
        }
    }
}
