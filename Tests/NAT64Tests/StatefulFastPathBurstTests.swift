import Testing
import NATCore
import NATWire
@testable import NAT64

/// The established-flow fast path and the burst call (with its prefetch pipeline) against the full path:
/// the same packets, byte for byte the same results, generated packets, counters and state.
@Suite struct StatefulFastPathBurstTests {
    typealias RNG = FuzzTests.SplitMix64

    /// One translated packet: verdict and output bytes.
    struct Result: Equatable {
        var verdict: Verdict
        var bytes: [UInt8]
    }

    static func drain<M: NAT64Mapping & ~Copyable>(_ t: inout NAT64Translator<M>) -> [[UInt8]] {
        var out: [[UInt8]] = []
        while let g = t.nextOutput() { out.append(Array(UnsafeRawBufferPointer(g.bytes)) + [g.verdict == toIPv4 ? 4 : 6]) }
        return out
    }

    /// One packet at a time with `process(_:into:now:)`, the outbox drained after each.
    static func oneByOne(_ t: inout NAPT64Translator, _ packets: [[UInt8]], now: Timestamp,
                         output: UnsafeMutableRawBufferPointer) -> ([Result], [[UInt8]]) {
        var results: [Result] = []
        var generated: [[UInt8]] = []
        for p in packets {
            let r = p.withUnsafeBytes { t.process($0, into: output, now: now) }
            results.append(Result(verdict: r.verdict, bytes: r.verdict.isForwarded ? Array(output[0..<r.length]) : []))
            generated += drain(&t)
        }
        return (results, generated)
    }

    /// All packets in one `process(burst:)` call, the outbox drained after it.
    static func burst(_ t: inout NAPT64Translator, _ packets: [[UInt8]], now: Timestamp,
                      outputs: UnsafeMutablePointer<UnsafeMutableRawBufferPointer>) -> ([Result], [[UInt8]]) {
        let n = packets.count
        let inputs = UnsafeMutablePointer<UnsafeRawBufferPointer>.allocate(capacity: max(n, 1))
        var storage: [UnsafeMutableRawPointer] = []
        for (i, p) in packets.enumerated() {
            let s = UnsafeMutableRawPointer.allocate(byteCount: max(p.count, 1), alignment: 8)
            p.withUnsafeBytes { if let b = $0.baseAddress { s.copyMemory(from: b, byteCount: p.count) } }
            storage.append(s)
            inputs[i] = UnsafeRawBufferPointer(start: s, count: p.count)
        }
        let verdicts = UnsafeMutablePointer<Verdict>.allocate(capacity: max(n, 1))
        verdicts.initialize(repeating: .held, count: max(n, 1))
        let lengths = UnsafeMutablePointer<Int>.allocate(capacity: max(n, 1))
        lengths.initialize(repeating: -1, count: max(n, 1))
        defer {
            storage.forEach { $0.deallocate() }
            inputs.deallocate()
            verdicts.deallocate()
            lengths.deallocate()
        }
        t.process(burst: inputs, count: n, into: outputs, verdicts: verdicts, lengths: lengths, now: now)
        var results: [Result] = []
        for i in 0..<n {
            results.append(Result(verdict: verdicts[i],
                                  bytes: verdicts[i].isForwarded ? Array(outputs[i][0..<lengths[i]]) : []))
        }
        return (results, drain(&t))
    }

    struct Flow {
        var proto: NAT64Protocol
        var host: IPv6Address
        var port: UInt16
        var server: IPv4Address
        var serverPort: UInt16
    }

    /// A random mixed stream: new flows and established ones both ways (UDP, TCP with every kind of
    /// segment, echo), unsolicited IPv4 packets, ICMP errors about sessions both ways, fragments (first and
    /// later, both families), Hop Limit/TTL 1, bad IPv4 checksums, IPv4 options, zero UDP checksums,
    /// hairpinned packets, destinations outside the prefix, packets that need fragmenting, truncated and
    /// mutated packets — translated by the full path one at a time, by the fast path one at a time, and in
    /// bursts of random length; all three agree on every byte, generated packet, counter and session.
    @Test(arguments: [UInt64(1), 2, 3])
    func rfc6146_fastPathAndBurstEqualTheFullPath(seed: UInt64) throws {
        func make() -> NAPT64Translator {
            makeStateful({ $0.maxSessions = 300; $0.hairpinning = true },
                         translator: { $0.outboxSlots = 4096 })
        }
        var full = make()
        full.fastPathEnabled = false
        var fast = make()
        var bursty = make()
        let output = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_600, alignment: 16)
        let slots = 48
        let outputs = UnsafeMutablePointer<UnsafeMutableRawBufferPointer>.allocate(capacity: slots)
        for i in 0..<slots { outputs[i] = .allocate(byteCount: 65_600, alignment: 16) }
        defer {
            output.deallocate()
            for i in 0..<slots { outputs[i].deallocate() }
            outputs.deallocate()
        }

        var rng = RNG(state: 0x6146_0000 &+ seed)
        let prefix = try NAT64Prefix("64:ff9b::/96", restrictsToGlobalIPv4: false)
        var flows: [Flow] = []
        var sentIPv4: [[UInt8]] = []   // translated IPv6 → IPv4 packets, for ICMPv4 errors about them
        var sentIPv6: [[UInt8]] = []   // translated IPv4 → IPv6 packets, for ICMPv6 errors about them
        var now = 0.0
        var total = 0
        var forwarded = 0

        func newFlow() -> Flow {
            let proto: NAT64Protocol = [.udp, .udp, .tcp, .tcp, .icmp][rng.below(5)]
            let host = IPv6Address(high: 0x2001_0db8_0006_0000, low: UInt64(1 + rng.below(12)))
            let server = IPv4Address(0xC000_0200 | UInt32(1 + rng.below(20)))
            return Flow(proto: proto, host: host, port: UInt16(1 + rng.below(60000)), server: server,
                        serverPort: proto == .icmp ? 0 : UInt16(1 + rng.below(2000)))
        }

        func outbound(_ f: Flow, size: Int, hopLimit: UInt8 = 64) -> [UInt8] {
            let s6 = prefix.embedUnchecked(f.server)
            switch f.proto {
            case .udp:
                return PacketBuilder.udp6(source: f.host, sourcePort: f.port, destination: s6, destinationPort: f.serverPort,
                                          payload: payload(size), hopLimit: hopLimit)
            case .tcp:
                let flags: TCPFlags = [[.syn], [.ack], [.ack, .psh], [.fin, .ack], [.rst], [.syn, .ack]][rng.below(6)]
                return tcp6(f.host, f.port, s6, f.serverPort, flags, seq: UInt32(rng.below(1 << 30)), n: size, hopLimit: hopLimit)
            case .icmp:
                return PacketBuilder.echo6(source: f.host, destination: s6, identifier: f.port, sequenceNumber: UInt16(rng.below(65536)),
                                           reply: rng.below(8) == 0, payload: payload(size), hopLimit: hopLimit)
            }
        }

        func inbound(_ f: Flow, size: Int, ttl: UInt8 = 64, df: Bool = false) -> [UInt8] {
            let b = bib(full, f.proto, f.host, f.port)
            let (a, p) = b.map { ($0.ipv4, $0.ipv4Port) } ?? (poolFirst, UInt16(1024 + rng.below(3000)))
            switch f.proto {
            case .udp:
                return PacketBuilder.udp4(source: f.server, sourcePort: f.serverPort, destination: a, destinationPort: p,
                                          payload: payload(size), ttl: ttl, identification: UInt16(rng.below(65536)), dontFragment: df)
            case .tcp:
                let flags: TCPFlags = [[.syn, .ack], [.ack], [.ack, .psh], [.fin, .ack], [.rst], [.syn]][rng.below(6)]
                return tcp4(f.server, f.serverPort, a, p, flags, seq: UInt32(rng.below(1 << 30)), n: size, ttl: ttl,
                            id: UInt16(rng.below(65536)), df: df)
            case .icmp:
                var e = PacketBuilder.echo4(source: f.server, destination: a, identifier: p, sequenceNumber: UInt16(rng.below(65536)),
                                            reply: rng.below(8) != 0, payload: payload(size))
                e[8] = ttl
                fixIPv4HeaderChecksum(&e)
                return e
            }
        }

        func size() -> Int { rng.below(10) == 0 ? 1200 + rng.below(200) : rng.below(120) }

        func nextPacket() -> [UInt8] {
            if flows.isEmpty || rng.below(10) == 0 {
                let f = newFlow()
                flows.append(f)
                return outbound(f, size: size())
            }
            let f = flows[rng.below(flows.count)]
            switch rng.below(40) {
            case 0..<14:
                return outbound(f, size: size())
            case 14..<28:
                return inbound(f, size: size(), df: rng.below(2) == 0)
            case 28:
                return outbound(f, size: size(), hopLimit: 1)
            case 29:
                return inbound(f, size: size(), ttl: 1)
            case 30:
                // A bad IPv4 header checksum, IPv4 options, or a zero UDP checksum.
                var p = inbound(f, size: size())
                switch rng.below(3) {
                case 0: p[10] ^= 0x5A
                case 1:
                    let hl = 24
                    p.insert(contentsOf: [1, 1, 1, 0], at: 20)
                    p[0] = 0x40 | UInt8(hl / 4)
                    let total = p.count
                    p[2] = UInt8(total >> 8); p[3] = UInt8(total & 0xFF)
                    fixIPv4HeaderChecksum(&p)
                default:
                    if p[9] == IPProtocol.udp { p[26] = 0; p[27] = 0 }
                }
                return p
            case 31:
                // Fragments: a first IPv6 fragment (with the transport header) or a later one.
                let s6 = prefix.embedUnchecked(f.server)
                let h6 = IPv6Header(nextHeader: f.proto == .tcp ? IPProtocol.tcp : IPProtocol.udp, source: f.host, destination: s6)
                if rng.below(2) == 0 {
                    let udp = PacketBuilder.udp6(source: f.host, sourcePort: f.port, destination: s6, destinationPort: f.serverPort,
                                                 payload: payload(32))
                    return PacketBuilder.ipv6(IPv6Header(nextHeader: IPProtocol.udp, source: f.host, destination: s6),
                                              extensionHeaders: [.fragment(offset: 0, moreFragments: true, identification: UInt32(rng.below(8)))],
                                              payload: Array(udp[40..<80]))
                }
                return PacketBuilder.ipv6(h6, extensionHeaders: [.fragment(offset: 40, moreFragments: false, identification: UInt32(rng.below(8)))],
                                          payload: payload(16))
            case 32:
                // IPv4 fragments: a first one (MF) or a later one (offset).
                var p = inbound(f, size: 40)
                if rng.below(2) == 0 {
                    p[6] = 0x20
                } else {
                    p[6] = 0; p[7] = 5
                }
                p[4] = 0; p[5] = UInt8(rng.below(8))
                fixIPv4HeaderChecksum(&p)
                return p
            case 33:
                // An ICMPv4 error about a packet that went out.
                guard !sentIPv4.isEmpty else { return outbound(f, size: 8) }
                let sent = sentIPv4[rng.below(sentIPv4.count)]
                let dst = IPv4Address(UInt32(sent[12]) << 24 | UInt32(sent[13]) << 16 | UInt32(sent[14]) << 8 | UInt32(sent[15]))
                return PacketBuilder.icmp4Error(source: IPv4Address("203.0.113.9")!, destination: dst, type: 3, code: [0, 1, 3, 4][rng.below(4)],
                                                restOfHeader: 1400, original: sent)
            case 34:
                // An ICMPv6 error about a packet that came in.
                guard !sentIPv6.isEmpty else { return inbound(f, size: 8) }
                let sent = sentIPv6[rng.below(sentIPv6.count)]
                let src = loadIPv6(sent, 24)
                return PacketBuilder.icmp6Error(source: src, destination: loadIPv6(sent, 8), type: [1, 2, 3][rng.below(3)], code: 0,
                                                restOfHeader: 1280, original: sent)
            case 35:
                // Hairpinning: to another flow's IPv4 transport address under the prefix.
                let g = flows[rng.below(flows.count)]
                guard let b = bib(full, g.proto, g.host, g.port), g.proto != .icmp else { return outbound(f, size: 8) }
                let s6 = prefix.embedUnchecked(b.ipv4)
                return PacketBuilder.udp6(source: f.host, sourcePort: f.port, destination: s6, destinationPort: b.ipv4Port,
                                          payload: payload(rng.below(40)))
            case 36:
                // Outside the prefix.
                return PacketBuilder.udp6(source: f.host, sourcePort: f.port, destination: IPv6Address("2001:db8:99::1")!,
                                          destinationPort: 53, payload: payload(8))
            case 37:
                // Truncated.
                let p = rng.below(2) == 0 ? outbound(f, size: size()) : inbound(f, size: size())
                return Array(p.prefix(rng.below(p.count + 1)))
            case 38:
                // One byte changed.
                var p = rng.below(2) == 0 ? outbound(f, size: size()) : inbound(f, size: size())
                p[rng.below(p.count)] ^= UInt8(1 + rng.below(255))
                return p
            default:
                // Unsolicited from the IPv4 side.
                let g = newFlow()
                return inbound(g, size: size())
            }
        }

        for round in 0..<260 {
            let n = 1 + rng.below(40)
            var packets: [[UInt8]] = []
            for _ in 0..<n { packets.append(nextPacket()) }
            now += Double(rng.below(3000)) / 1000
            let ts = at(now)
            let (a, ga) = Self.oneByOne(&full, packets, now: ts, output: output)
            let (b, gb) = Self.oneByOne(&fast, packets, now: ts, output: output)
            let (c, gc) = Self.burst(&bursty, packets, now: ts, outputs: outputs)
            for i in 0..<n {
                #expect(a[i] == b[i], "round \(round) packet \(i): fast path \(b[i].verdict) vs full path \(a[i].verdict): \(diff(b[i].bytes, a[i].bytes))")
                #expect(a[i] == c[i], "round \(round) packet \(i): burst \(c[i].verdict) vs full path \(a[i].verdict): \(diff(c[i].bytes, a[i].bytes))")
                if a[i].verdict == toIPv4 && a[i].bytes.count >= 20 && a[i].bytes[0] == 0x45 { sentIPv4.append(a[i].bytes) }
                if a[i].verdict == toIPv6 && a[i].bytes.count >= 40 { sentIPv6.append(a[i].bytes) }
                if a[i].verdict.isForwarded { forwarded += 1 }
            }
            #expect(ga == gb, "round \(round): generated packets differ (fast path)")
            // One-packet calls drain the mapping's packets between the translator's; a burst after them all.
            #expect(ga.sorted { $0.lexicographicallyPrecedes($1) } == gc.sorted { $0.lexicographicallyPrecedes($1) },
                    "round \(round): generated packets differ (burst)")
            if sentIPv4.count > 64 { sentIPv4.removeFirst(32) }
            if sentIPv6.count > 64 { sentIPv6.removeFirst(32) }
            if rng.below(20) == 0 {
                now += 30
                #expect(expire(&full, at: at(now)).map(\.bytes) == expire(&fast, at: at(now)).map(\.bytes))
                _ = expire(&bursty, at: at(now))
            }
            total += n
        }
        #expect(full.counters == fast.counters)
        #expect(full.counters == bursty.counters)
        #expect(full.counters6to4 == bursty.counters6to4 && full.counters4to6 == bursty.counters4to6)
        #expect(full.counters6to4 == fast.counters6to4 && full.counters4to6 == fast.counters4to6)
        #expect(full.mapping.counters == fast.mapping.counters && full.mapping.counters == bursty.mapping.counters)
        #expect(Set(full.mapping.bindings()) == Set(fast.mapping.bindings()))
        #expect(Set(full.mapping.bindings()) == Set(bursty.mapping.bindings()))
        #expect(Set(full.mapping.sessions(now: at(now))) == Set(bursty.mapping.sessions(now: at(now))))
        #expect(Set(full.mapping.sessions(now: at(now))) == Set(fast.mapping.sessions(now: at(now))))
        // The stream is mixed, not degenerate: many packets forwarded, many not.
        #expect(forwarded > total / 3 && forwarded < total)
    }

    static func loadIPv6Address(_ b: [UInt8], _ o: Int) -> IPv6Address {
        var high: UInt64 = 0, low: UInt64 = 0
        for i in 0..<8 { high = high << 8 | UInt64(b[o + i]); low = low << 8 | UInt64(b[o + 8 + i]) }
        return IPv6Address(high: high, low: low)
    }

    /// RFC 6146 §3.5 through the fast path: an established UDP session's packets take it both ways
    /// (and produce the full path's bytes); a packet of no session leaves it without changing anything.
    @Test func rfc6146_3_5_establishedPacketsTakeTheFastPathOthersLeaveItUntouched() throws {
        var t = makeStateful()
        let output = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_600, alignment: 16)
        defer { output.deallocate() }
        // No session yet: the fast path declines and nothing is created.
        let first = udp6(host6, 5000, server6, 53, n: 20)
        let declined = first.withUnsafeBytes { t.fast6to4($0.baseAddress!, available: $0.count, out: output.baseAddress!,
                                                          capacity: output.count, now: .zero, hint: NAT64BurstHint()) }
        #expect(declined == 0)
        #expect(t.mapping.sessionCount == 0 && t.mapping.hostCount == 0 && t.counters.outboundPackets == 0)
        // The full path makes the session.
        let r = run(&t, first, at: .zero)
        #expect(r.verdict == toIPv4)
        let found = bib(t, .udp, host6, 5000)
        let b = try #require(found)
        // Now the fast path translates the next packet both ways, with the full path's bytes.
        let second = udp6(host6, 5000, server6, 53, n: 30)
        let n6 = second.withUnsafeBytes { t.fast6to4($0.baseAddress!, available: $0.count, out: output.baseAddress!,
                                                     capacity: output.count, now: .zero, hint: NAT64BurstHint()) }
        #expect(n6 == 20 + 8 + 30)
        #expect(Array(output[0..<n6]) == udp4(b.ipv4, b.ipv4Port, server4, 53, n: 30, ttl: 63, id: 2))
        let reply = udp4(server4, 53, b.ipv4, b.ipv4Port, n: 10)
        let n4 = reply.withUnsafeBytes { t.fast4to6($0.baseAddress!, available: $0.count, out: output.baseAddress!,
                                                    capacity: output.count, now: .zero, hint: NAT64BurstHint()) }
        #expect(n4 == 40 + 8 + 10)
        #expect(Array(output[0..<n4]) == PacketBuilder.udp6(source: server6, sourcePort: 53, destination: host6, destinationPort: 5000,
                                                            payload: payload(10), hopLimit: 63))
        #expect(t.counters.outboundPackets == 2 && t.counters.inboundPackets == 1)
        // A reply to a port with no session: declined, nothing counted.
        let stray = udp4(server4, 53, b.ipv4, b.ipv4Port &+ 1, n: 10)
        let n0 = stray.withUnsafeBytes { t.fast4to6($0.baseAddress!, available: $0.count, out: output.baseAddress!,
                                                    capacity: output.count, now: .zero, hint: NAT64BurstHint()) }
        #expect(n0 == 0 && t.counters.inboundPackets == 1 && t.counters.totalDropped == 0)
    }
}

private func loadIPv6(_ b: [UInt8], _ o: Int) -> IPv6Address { StatefulFastPathBurstTests.loadIPv6Address(b, o) }
