import Testing
import NATWire
import NATCore
@testable import NAPT44

/// The burst entry points prefetch ahead but must translate exactly like the one-packet calls.
@Suite("Burst translation (prefetch pipeline) and the established-flow fast path")
struct BurstTests {
    /// A mixed stream: new and established UDP/TCP/ICMP flows both ways, hairpinned flows, replies to real mappings,
    /// unsolicited and malformed packets, ICMP errors, fragments — through two engines with the same
    /// seed, one packet at a time and in bursts of every length from 1 to 40. Verdicts, output bytes,
    /// generated packets and counters must match.
    ///
    /// With `fastPathOff`, the second engine takes single packets with its fast path switched off: the
    /// fast path must give the full pipeline's bytes, verdicts and counters.
    @Test(arguments: [false, true])
    func burstsTranslateExactlyLikeSinglePackets(fastPathOff: Bool) {
        let c = config(.portRestrictedCone, pool: ["198.51.100.0/30"]) { $0.inboundRefresh = fastPathOff }
        var single = engine(c)
        var burst = engine(c)
        if fastPathOff { burst.fastPathEnabled = false }
        var rng = SeededRandom(seed: 2024)
        var replies: [[UInt8]] = []
        var burstLength = 1
        var compared = 0
        for round in 0..<60 {
            // Build this round's packets from the single engine's previous outputs (real replies).
            var packets: [[UInt8]] = []
            for _ in 0..<burstLength {
                let src = IPv4Address(100, 64, 0, UInt8.random(in: 1...20, using: &rng))
                let dst = IPv4Address(203, 0, 113, UInt8.random(in: 1...4, using: &rng))
                let sp = UInt16.random(in: 1000...1010, using: &rng), dp = UInt16.random(in: 80...82, using: &rng)
                switch Int.random(in: 0..<11, using: &rng) {
                case 0...2: packets.append(udp(src, sp, dst, dp))
                case 10:
                    // Hairpinning (RFC 4787 REQ-9): a few flows, so that they repeat and become
                    // established, to our own outside address at ports that other inside hosts'
                    // mappings hold (ports are preserved), over UDP or TCP.
                    let from = IPv4Address(100, 64, 0, UInt8.random(in: 1...3, using: &rng))
                    let own = IPv4Address(198, 51, 100, 1), port = UInt16.random(in: 1000...1002, using: &rng)
                    packets.append(Bool.random(using: &rng) ? udp(from, 1000, own, port) : tcp(from, 1000, own, port, [.ack]))
                case 3: packets.append(tcp(src, sp, dst, dp, [[.syn], [.ack], [.fin, .ack], [.rst]][Int.random(in: 0..<4, using: &rng)]))
                case 4: packets.append(PacketBuilder.echo4(source: src, destination: dst, identifier: sp))
                case 5, 6: if let r = replies.randomElement(using: &rng) { packets.append(r) } else { packets.append(udp(src, sp, dst, dp)) }
                case 7: packets.append(udp(dst, dp, IPv4Address(198, 51, 100, 1), sp))  // unsolicited
                case 8:
                    var junk = udp(src, sp, dst, dp)
                    junk[Int.random(in: 0..<junk.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                    packets.append(junk)
                default:
                    var h = IPv4Header(protocolNumber: IPProtocol.udp, source: src, destination: dst, identification: sp)
                    h.fragmentOffset = 8 * Int.random(in: 1...4, using: &rng)
                    packets.append(PacketBuilder.ipv4(h, payload: Array(repeating: 7, count: 24)))
                }
            }
            let now = Timestamp.seconds(Double(round))
            // One at a time.
            var singleOut: [([UInt8], Verdict)] = []
            var singleGenerated: [[UInt8]] = []
            for p in packets {
                var b = p
                let v = single.process(&b, now: now)
                singleOut.append((b, v))
                while let o = single.nextOutput() { singleGenerated.append(Array(o.bytes)) }
            }
            // As one burst.
            var buffers = packets.map { p -> UnsafeMutableRawBufferPointer in
                let m = UnsafeMutableRawBufferPointer.allocate(byteCount: p.count, alignment: 8)
                m.copyBytes(from: p)
                return m
            }
            let verdicts = UnsafeMutablePointer<Verdict>.allocate(capacity: packets.count)
            verdicts.initialize(repeating: .held, count: packets.count)
            if fastPathOff {
                for i in 0..<packets.count { verdicts[i] = burst.process(buffers[i], now: now) }
            } else {
                buffers.withUnsafeBufferPointer { bp in
                    burst.process(burst: bp.baseAddress!, count: packets.count, verdicts: verdicts, now: now)
                }
            }
            var burstGenerated: [[UInt8]] = []
            while let o = burst.nextOutput() { burstGenerated.append(Array(o.bytes)) }
            for i in 0..<packets.count {
                #expect(verdicts[i] == singleOut[i].1, "round \(round) packet \(i)")
                #expect(Array(buffers[i]) == singleOut[i].0, "round \(round) packet \(i) bytes")
                if case .toOutside = singleOut[i].1, parse(singleOut[i].0).proto != IPProtocol.icmp {
                    let o = parse(singleOut[i].0)
                    if o.sourcePort != 0 {
                        replies.append(o.proto == IPProtocol.tcp
                            ? tcp(o.destination, o.destinationPort, o.source, o.sourcePort, [[.syn, .ack], [.ack], [.fin, .ack], [.rst]][Int.random(in: 0..<4, using: &rng)])
                            : udp(o.destination, o.destinationPort, o.source, o.sourcePort))
                    }
                }
                compared += 1
            }
            #expect(burstGenerated == singleGenerated, "round \(round) generated packets")
            for b in buffers { b.deallocate() }
            buffers.removeAll()
            verdicts.deallocate()
            burstLength = burstLength % 40 + 1
        }
        #expect(compared > 1000)
        let s = single.counters, b = burst.counters
        #expect(s.outboundPackets == b.outboundPackets && s.inboundPackets == b.inboundPackets)
        #expect(s.outboundPackets > 100 && s.inboundPackets > 50)
        #expect(s.totalDropped == b.totalDropped && s.totalDropped > 0)
        #expect(single.sessionCount == burst.sessionCount)
        let ss = single.sessions(limit: 10_000).map(\.description), bs = burst.sessions(limit: 10_000).map(\.description)
        #expect(ss == bs)
    }

    /// The one-direction burst calls agree with their one-packet forms too.
    @Test func directionalBurstsMatch() {
        let c = config(.fullCone)
        var single = engine(c)
        var burst = engine(c)
        let outs = (0..<33).map { i in udp(IPv4Address(100, 64, 0, UInt8(1 + i % 5)), UInt16(2000 + i), serverX, 53) }
        func buffers(_ ps: [[UInt8]]) -> [UnsafeMutableRawBufferPointer] {
            ps.map { p in
                let m = UnsafeMutableRawBufferPointer.allocate(byteCount: p.count, alignment: 8)
                m.copyBytes(from: p)
                return m
            }
        }
        let singleBufs = buffers(outs)
        let expectedVerdicts = singleBufs.map { single.translateOutbound($0, now: .seconds(1)) }
        var bufs = buffers(outs)
        let verdicts = UnsafeMutablePointer<Verdict>.allocate(capacity: outs.count)
        verdicts.initialize(repeating: .held, count: outs.count)
        bufs.withUnsafeBufferPointer { burst.translateOutbound(burst: $0.baseAddress!, count: outs.count, verdicts: verdicts, now: .seconds(1)) }
        for i in 0..<outs.count {
            #expect(verdicts[i] == .toOutside && verdicts[i] == expectedVerdicts[i])
            #expect(Array(bufs[i]) == Array(singleBufs[i]))
        }
        // Replies, inbound burst.
        let replies = bufs.map { b -> [UInt8] in
            let o = parse(Array(b))
            return udp(o.destination, o.destinationPort, o.source, o.sourcePort)
        }
        var inBufs = buffers(replies)
        inBufs.withUnsafeBufferPointer { burst.translateInbound(burst: $0.baseAddress!, count: replies.count, verdicts: verdicts, now: .seconds(2)) }
        for i in 0..<replies.count {
            #expect(verdicts[i] == .toInside(tenant: 0))
            let back = parse(Array(inBufs[i]))
            let orig = parse(outs[i])
            #expect(back.destination == orig.source && back.destinationPort == orig.sourcePort)
            #expect(checksumsValid(Array(inBufs[i])))
        }
        for b in bufs + inBufs + singleBufs { b.deallocate() }
        bufs.removeAll(); inBufs.removeAll()
        verdicts.deallocate()
    }
}
