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
    /// validates), with its bucket prefetched; nil when the packet is not TCP or UDP (only those take
    /// the fast path, the one user of the hash).
    @inline(__always)
    func peekOutbound(_ p: UnsafeMutableRawBufferPointer, tenant: UInt32) -> UInt32? {
        guard let k = Self.peekKey(p) else { return nil }
        return table.prefetchBucket(insideHash: table.sessionHash(insideWire: k.addresses, ports: k.ports, tenant: tenant, proto: k.proto))
    }

    @inline(__always)
    func peekInbound(_ p: UnsafeMutableRawBufferPointer) -> UInt32? {
        guard let k = Self.peekKey(p) else { return nil }
        return table.prefetchBucket(outsideHash: table.sessionHash(outsideWire: k.addresses, ports: k.ports, proto: k.proto))
    }

    /// The session key of a packet in wire form (``WireKey``): its address pair and its port pair, read
    /// as the fast path reads them (20-byte header, TCP or UDP) and not validated: the hash only steers
    /// prefetches and ``fastOutbound(_:tenant:now:hash:)`` / ``fastInbound(_:now:hash:)``, which
    /// validate the packet before they use it, and anything else goes the full way, which hashes again.
    @inline(__always)
    static func peekKey(_ p: UnsafeMutableRawBufferPointer) -> (proto: UInt8, addresses: UInt64, ports: UInt32)? {
        guard p.count >= 24, let b = p.baseAddress else { return nil }
        let proto = b.load(fromByteOffset: 9, as: UInt8.self)
        guard proto == IPProtocol.udp || proto == IPProtocol.tcp else { return nil }
        return (proto, b.loadUnaligned(fromByteOffset: 12, as: UInt64.self), b.loadUnaligned(fromByteOffset: 20, as: UInt32.self))
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

    /// How far ahead of the packet being translated its session record is prefetched.
    static var pipelineLead: Int { 4 }

    /// The software pipeline, over chunks of up to 32 packets: first `peek` hashes every packet of the
    /// chunk and prefetches its index bucket, returning (hash, 1 = inside index / 2 = outside index /
    /// 0 = nothing); then, walking the chunk, the first candidate record of packet i + lead is
    /// prefetched (its bucket has arrived by then) while packet i is translated by `process`.
    @inline(__always)
    mutating func pipeline(_ count: Int, peek: (inout Self, Int) -> (UInt32, UInt8),
                           process: (inout Self, Int, UInt32, UInt8) -> Void) {
        let lead = Self.pipelineLead
        var hashes = InlineArray<32, UInt32>(repeating: 0)
        var kinds = InlineArray<32, UInt8>(repeating: 0)
        var base = 0
        while base < count {
            let n = min(32, count - base)
            for i in 0..<n { (hashes[i], kinds[i]) = peek(&self, base + i) }
            for i in 0..<min(lead, n) { prefetchRecord(hashes[i], kinds[i]) }
            for i in 0..<n {
                if i + lead < n { prefetchRecord(hashes[i + lead], kinds[i + lead]) }
                process(&self, base + i, hashes[i], kinds[i])
            }
            base += n
        }
    }

    @inline(__always)
    func prefetchRecord(_ hash: UInt32, _ kind: UInt8) {
        if kind == 1 { table.prefetchSession(insideHash: hash) } else if kind == 2 { table.prefetchSession(outsideHash: hash) }
    }
}
