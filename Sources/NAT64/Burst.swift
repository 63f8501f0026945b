import NATCore
import NATWire

/// The burst entry point. A packet thread that has several packets at hand (a TUN read loop, a ring of
/// descriptors) hands them over together: the mapping first reads every packet's key and prefetches the
/// first table bucket it needs (``NAT64Mapping/burstPeek(_:count:)``), then follows each packet's chain
/// one step per stage, ``pipelineLead`` packets apart (``NAT64Mapping/burstPrefetch(_:stage:)``: the host
/// record, the session bucket, the session record …), and only then translates the packets one by one,
/// so that the tables' cache misses overlap instead of queueing behind each other. Every verdict, length,
/// output byte, counter and state change is exactly that of calling ``process(_:into:now:)`` on the
/// packets in order.
extension NAT64Translator where Mapping: ~Copyable {
    /// A good burst length: long enough for the prefetch pipeline to fill.
    public static var preferredBurst: Int { 32 }

    /// Packets between two stages of the prefetch pipeline.
    @inlinable static var pipelineLead: Int { 4 }

    /// Translates `count` packets (IPv6 or IPv4, each told apart by its version nibble): `packets[i]` into
    /// `outputs[i]`, with `verdicts[i]` and `lengths[i]` what ``process(_:into:now:)`` would have returned
    /// for it. The input bytes are only read; outputs must not overlap any input. Packets the translator
    /// generates (ICMP errors, further fragments) collect in the outbox as usual: drain it with
    /// ``nextOutput()`` after the call; it holds ``NAT64Configuration/outboxSlots`` packets, and a burst
    /// that would generate more counts the rest as `outbox_full` where one-packet calls drained in between
    /// would not (keep bursts at most `outboxSlots` long when many packets may be answered with errors).
    @inlinable
    public mutating func process(burst packets: UnsafePointer<UnsafeRawBufferPointer>, count: Int,
                                 into outputs: UnsafePointer<UnsafeMutableRawBufferPointer>,
                                 verdicts: UnsafeMutablePointer<Verdict>, lengths: UnsafeMutablePointer<Int>,
                                 now: Timestamp) {
        let stages = Mapping.burstStages
        guard stages > 0 else {
            for i in 0..<count {
                let r = process(packets[i], into: outputs[i], now: now)
                verdicts[i] = r.verdict
                lengths[i] = r.length
            }
            return
        }
        let lead = Self.pipelineLead
        let depth = (stages + 1) * lead
        precondition(depth <= 32, "the burst pipeline holds 32 packets")
        var hints = InlineArray<32, NAT64BurstHint>(repeating: NAT64BurstHint())
        var i = 0
        while i < count + depth {
            if i < count, let b = packets[i].baseAddress, packets[i].count > 0 {
                hints[i & 31] = mapping.burstPeek(b, count: packets[i].count)
            } else if i < count {
                hints[i & 31] = NAT64BurstHint()
            }
            var stage = 1
            while stage <= stages {
                let j = i - stage * lead
                if j >= 0 && j < count && hints[j & 31].direction != 0 {
                    mapping.burstPrefetch(&hints[j & 31], stage: stage)
                }
                stage += 1
            }
            let k = i - depth
            if k >= 0 {
                let o = outputs[k]
                if let base = o.baseAddress {
                    let r = translate(packets[k], into: base, capacity: o.count, now: now, hint: hints[k & 31])
                    verdicts[k] = r.verdict
                    lengths[k] = r.length
                } else {
                    record(.outputTooSmall, sixToFour: nil)
                    verdicts[k] = .drop(.outputTooSmall)
                    lengths[k] = 0
                }
            }
            i += 1
        }
    }
}
