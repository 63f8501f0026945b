import Testing
import NATWire
import NATCore
import NAPT44

@Suite("Forwards, redirects, 1:1 NAT, fragments, limits")
struct StaticFragmentLimitTests {
    let web = PortForward(proto: IPProtocol.tcp, outsideAddress: poolP, outsidePorts: 8080...8080, insideAddress: clientB, insidePort: 80)

    @Test func portForwardAdmitsInboundAndRepliesFromTheForwardedPort() {
        var e = engine(config(.symmetric) { $0.forwards = [web] })
        let (v, out) = send(&e, tcp(serverX, 40000, poolP, 8080, [.syn]))
        #expect(v == .toInside(tenant: 0))
        #expect(out == tcp(serverX, 40000, clientB, 80, [.syn]))
        let (v2, back) = send(&e, tcp(clientB, 80, serverX, 40000, [.syn, .ack]))
        #expect(v2 == .toOutside)
        #expect(back == tcp(poolP, 8080, serverX, 40000, [.syn, .ack]))
        // The inside server's own outbound traffic from port 80 uses the forward's port too.
        #expect(parse(send(&e, tcp(clientB, 80, serverY, 443, [.syn])).1).sourcePort == 8080)
    }

    @Test func forwardRangeMapsPortForPort() {
        var e = engine(config {
            $0.forwards = [PortForward(proto: IPProtocol.udp, outsideAddress: poolP, outsidePorts: 10000...10009, insideAddress: clientB, insidePort: 20000)]
        })
        for p in UInt16(10000)...10009 {
            let (v, out) = send(&e, udp(serverX, 5, poolP, p))
            #expect(v == .toInside(tenant: 0))
            #expect(parse(out).destinationPort == 20000 + (p - 10000))
        }
    }

    @Test func dynamicMappingNeverTakesAForwardedPort() {
        var e = engine(config { $0.forwards = [web] })
        // Forwards are per protocol: UDP 8080 is free and preserved.
        let p = openUDP(&e, clientA, 8080, serverX, 53).1
        #expect(p == 8080)
        // A client whose TCP source port is the forwarded port gets another one.
        let (_, out) = send(&e, tcp(clientA, 8080, serverX, 80, [.syn]))
        #expect(parse(out).sourcePort != 8080)
        // And a forward cannot be added over a live mapping.
        var conflict: ConfigurationError?
        do {
            try e.addForward(PortForward(proto: IPProtocol.udp, outsideAddress: poolP, outsidePorts: p...p, insideAddress: clientB, insidePort: 1))
        } catch { conflict = error }
        #expect(conflict?.problem.contains("live mapping") == true)
    }

    @Test func forwardsExpire() {
        var e = engine(config())
        var f = web
        f.expires = .seconds(100)
        try? e.addForward(f)
        #expect(send(&e, tcp(serverX, 40000, poolP, 8080, [.syn]), at: 1).0 == .toInside(tenant: 0))
        e.expire(now: .seconds(100))
        #expect(e.forwards.isEmpty)
        #expect(e.sessionCount == 0)
        #expect(send(&e, tcp(serverX, 40001, poolP, 8080, [.syn]), at: 101).0 == .held)
    }

    @Test func renewForwardMovesItsEndAndKeepsItsSessions() {
        var e = engine(config())
        var f = web
        f.expires = .seconds(100)
        try? e.addForward(f)
        _ = send(&e, tcp(serverX, 40000, poolP, 8080, [.syn]), at: 1)
        let renewed = e.renewForward(proto: IPProtocol.tcp, outsideAddress: poolP, port: 8080, expires: .seconds(200))
        let none = e.renewForward(proto: IPProtocol.udp, outsideAddress: poolP, port: 8080, expires: nil)
        #expect(renewed && !none)
        e.expire(now: .seconds(150))
        #expect(e.forwards.count == 1 && e.sessionCount == 1)
        e.expire(now: .seconds(200))
        #expect(e.forwards.isEmpty)
    }

    @Test func removeForwardEndsItsSessions() {
        var e = engine(config { $0.forwards = [web] })
        _ = send(&e, tcp(serverX, 40000, poolP, 8080, [.syn]))
        #expect(e.sessionCount == 1)
        let removed = e.removeForward(proto: IPProtocol.tcp, outsideAddress: poolP, port: 8080)
        #expect(removed)
        #expect(e.sessionCount == 0 && e.mappingCount == 0)
    }

    @Test func redirectRewritesDestinationAndRestoresItOnReplies() {
        let dns = IPv4Address("192.0.2.53")!
        var e = engine(config {
            $0.redirects = [Redirect(proto: IPProtocol.udp, matchAddress: dns, matchPorts: 53...53, targetAddress: serverX, targetPort: 5353)]
        })
        let (v, out) = send(&e, udp(clientA, 40000, dns, 53))
        #expect(v == .toOutside)
        #expect(out == udp(poolP, 40000, serverX, 5353))
        let (v2, back) = send(&e, udp(serverX, 5353, poolP, 40000))
        #expect(v2 == .toInside(tenant: 0))
        #expect(back == udp(dns, 53, clientA, 40000))
        #expect(e.sessions().first?.description.contains("via 192.0.2.53:53") == true)
    }

    @Test func oneToOneNATKeepsPortsAndAdmitsInbound() {
        let outside = IPv4Address("198.51.100.20")!
        var e = engine(config { $0.staticNAT = [StaticNAT(inside: clientB, outside: outside)] })
        #expect(send(&e, udp(clientB, 1234, serverX, 53)).1 == udp(outside, 1234, serverX, 53))
        // Unsolicited inbound to the 1:1 address reaches the host.
        let (v, out) = send(&e, tcp(serverY, 5555, outside, 22, [.syn]))
        #expect(v == .toInside(tenant: 0))
        #expect(out == tcp(serverY, 5555, clientB, 22, [.syn]))
        // Protocols without ports (GRE) pass through 1:1 NAT, address only.
        let gre = PacketBuilder.ipv4(IPv4Header(protocolNumber: IPProtocol.gre, source: clientB, destination: serverX), payload: [0, 0, 0x88, 0x0B, 0, 0, 0, 1])
        let (v3, g) = send(&e, gre)
        #expect(v3 == .toOutside)
        #expect(g == PacketBuilder.ipv4(IPv4Header(protocolNumber: IPProtocol.gre, source: outside, destination: serverX), payload: [0, 0, 0x88, 0x0B, 0, 0, 0, 1]))
        // Without 1:1 NAT such protocols are refused.
        let gre2 = PacketBuilder.ipv4(IPv4Header(protocolNumber: IPProtocol.gre, source: clientA, destination: serverX), payload: [0, 0, 0x88, 0x0B])
        #expect(send(&e, gre2).0 == .drop(.unsupportedProtocol))
    }

    // MARK: Fragments

    /// Splits an IPv4 datagram into fragments of `size` payload bytes (a multiple of 8).
    func fragments(_ packet: [UInt8], size: Int) -> [[UInt8]] {
        let ip = packet.withUnsafeBytes { IPv4Header(try! IPv4View(validating: $0)) }
        let payload = Array(packet[20...])
        var out: [[UInt8]] = []
        var off = 0
        while off < payload.count {
            var h = ip
            h.fragmentOffset = off
            h.moreFragments = off + size < payload.count
            out.append(PacketBuilder.ipv4(h, payload: Array(payload[off..<min(off + size, payload.count)])))
            off += size
        }
        return out
    }

    @Test func rfc4787_req13_laterFragmentsFollowTheFirst() {
        var e = engine(config())
        let big = udp(clientA, 40000, serverX, 53, payload: Array(repeating: 7, count: 100), id: 0x7777)
        let frags = fragments(big, size: 48)
        #expect(frags.count == 3)
        let expected = fragments(udp(poolP, 40000, serverX, 53, payload: Array(repeating: 7, count: 100), id: 0x7777), size: 48)
        for (i, f) in frags.enumerated() {
            let (v, out) = send(&e, f)
            #expect(v == .toOutside)
            #expect(out == expected[i])
        }
    }

    @Test func rfc4787_req14_outOfOrderFragmentsAreHeldThenReleased() {
        var e = engine(config(.fullCone))
        let (a, p) = openUDP(&e, clientA, 40000, serverX, 53)
        let big = udp(serverX, 53, a, p, payload: Array(repeating: 9, count: 100), id: 0x1111)
        let frags = fragments(big, size: 48)
        let expected = fragments(udp(serverX, 53, clientA, 40000, payload: Array(repeating: 9, count: 100), id: 0x1111), size: 48)
        #expect(send(&e, frags[2]).0 == .held)
        #expect(send(&e, frags[1]).0 == .held)
        let (v, first) = send(&e, frags[0])
        #expect(v == .toInside(tenant: 0))
        #expect(first == expected[0])
        let released = outputs(&e)
        #expect(released.count == 2)
        #expect(Set(released.map(\.0)) == Set([expected[1], expected[2]]))
        #expect(released.allSatisfy { $0.1 == .toInside(tenant: 0) })
    }

    @Test func fragmentFloodIsBoundedAndDoesNotHurtOtherTraffic() {
        var e = engine(config { $0.fragments.maxHeld = 16 })
        var rng = SeededRandom(seed: 1)
        var held = 0, full = 0
        for i in 0..<10_000 {
            var h = IPv4Header(protocolNumber: IPProtocol.udp, source: serverX, destination: poolP, identification: UInt16(truncatingIfNeeded: i))
            h.fragmentOffset = 8 * Int.random(in: 1...100, using: &rng)
            let v = send(&e, PacketBuilder.ipv4(h, payload: Array(repeating: 0, count: 64)), at: 0.0001 * Double(i)).0
            if v == .held { held += 1 } else if v == .drop(.fragmentBufferFull) { full += 1 }
            if i % 100 == 0 { #expect(send(&e, udp(clientA, 5000, serverX, 53), at: 0.0001 * Double(i)).0 == .toOutside) }
        }
        #expect(held == 16 && full == 10_000 - 16)
        #expect(e.fragmentState.held == 16)
        e.expire(now: .seconds(5))
        #expect(e.fragmentState.held == 0)
        #expect(e.counters.dropped(.fragmentTimeout) == 16)
    }

    // MARK: Limits (RFC 6888)

    @Test func rfc6888_totalSessionLimitRefusesNewFlowsAndNeverEvicts() {
        var e = engine(config { $0.maxSessions = 4 })
        for i in 0..<4 { _ = openUDP(&e, clientA, UInt16(1000 + i), serverX, 53) }
        let (v, _) = send(&e, udp(clientB, 5000, serverX, 53))
        #expect(v == .drop(.sessionTableFull))
        let gen = outputs(&e)
        #expect(gen.count == 1 && parse(gen[0].0).icmpType == 3 && parse(gen[0].0).icmpCode == 13)
        // The existing sessions still work.
        #expect(send(&e, udp(serverX, 53, poolP, 1000)).0 == .toInside(tenant: 0))
        #expect(e.sessionCount == 4)
    }

    @Test func rfc6888_req4_perHostSessionLimit() {
        var e = engine(config { $0.limits.maxSessionsPerHost = 3 })
        for i in 0..<3 { _ = openUDP(&e, clientA, 5000, IPv4Address(203, 0, 113, UInt8(10 + i)), 53) }
        #expect(send(&e, udp(clientA, 5000, serverY, 53)).0 == .drop(.hostSessionLimit))
        #expect(send(&e, udp(clientB, 5000, serverY, 53)).0 == .toOutside)
        #expect(e.counters.dropped(.hostSessionLimit) == 1)
    }

    @Test func rfc6888_req3_perHostPortLimit() {
        var e = engine(config { $0.limits.maxPortsPerHost = 2 })
        _ = openUDP(&e, clientA, 5000, serverX, 53)
        _ = openUDP(&e, clientA, 5001, serverX, 53)
        _ = openUDP(&e, clientA, 5001, serverY, 53)   // same mapping (EIM): no new port
        #expect(send(&e, udp(clientA, 5002, serverX, 53)).0 == .drop(.hostPortLimit))
        e.expire(now: .seconds(300))
        #expect(send(&e, udp(clientA, 5002, serverX, 53), at: 300).0 == .toOutside)
    }

    @Test func icmpErrorsTheEngineSendsAreRateLimited() {
        var e = engine(config { $0.maxSessions = 1; $0.limits.icmpErrorsPerSecond = 3 })
        _ = openUDP(&e, clientA, 1, serverX, 53)
        for i in 0..<10 { _ = send(&e, udp(clientB, UInt16(100 + i), serverX, 53)) }
        #expect(outputs(&e).count == 3)
        #expect(e.counters.dropped(.icmpRateLimited) == 7)
    }

    // MARK: Malformed input

    @Test func malformedPacketsAreDroppedWithAReason() {
        var e = engine(config())
        var good = udp(clientA, 5000, serverX, 53)
        #expect(send(&e, Array(good.prefix(10))).0 == .drop(.truncated))
        var badIHL = good; badIHL[0] = 0x44
        #expect(send(&e, badIHL).0 == .drop(.badIPHeaderLength))
        var badLen = good; badLen[3] = 200
        #expect(send(&e, badLen).0 == .drop(.badIPLength))
        var badSum = good; badSum[10] ^= 1
        #expect(send(&e, badSum).0 == .drop(.badIPChecksum))
        var v6 = good; v6[0] = 0x65
        #expect(send(&e, v6).0 == .drop(.badIPVersion))
        // A UDP length larger than the datagram.
        good[25] = 0xFF
        good.withUnsafeMutableBytes { MutableIPv4View(unchecked: $0.baseAddress!, count: $0.count).updateChecksum() }
        #expect(send(&e, good).0 == .drop(.badTransportHeader))
        #expect(send(&e, udp(serverY, 1, serverX, 2)).0 == .drop(.notNATTraffic))
        #expect(e.counters.totalDropped == 7)
    }

    @Test func thousandsOfRandomAndMutatedPacketsNeverTrap() {
        var e = engine(config(.fullCone) {
            $0.forwards = [PortForward(proto: IPProtocol.udp, outsideAddress: poolP, outsidePorts: 53...53, insideAddress: clientB, insidePort: 53)]
            $0.staticNAT = [StaticNAT(inside: IPv4Address("100.64.9.9")!, outside: IPv4Address("198.51.100.99")!)]
        })
        var rng = SeededRandom(seed: 2026)
        let seeds: [[UInt8]] = [
            udp(clientA, 5000, serverX, 53), tcp(clientA, 5000, serverX, 80, [.syn]),
            PacketBuilder.echo4(source: clientA, destination: serverX, identifier: 3),
            udp(serverX, 53, poolP, 5000), tcp(serverX, 80, poolP, 5000, [.syn, .ack]),
            PacketBuilder.icmp4Error(source: serverX, destination: poolP, type: 3, code: 3, original: udp(poolP, 5000, serverX, 53)),
            PacketBuilder.icmp4Error(source: clientA, destination: serverX, type: 3, code: 3, original: udp(serverX, 53, clientA, 5000)),
        ]
        var forwarded = 0, dropped = 0, held = 0
        for i in 0..<40_000 {
            var p: [UInt8]
            if i % 4 == 0 {
                p = (0..<Int.random(in: 0...120, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                if p.count > 0 && Bool.random(using: &rng) { p[0] = 0x45 }
            } else {
                p = seeds[Int.random(in: 0..<seeds.count, using: &rng)]
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    p[Int.random(in: 0..<p.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
                if Bool.random(using: &rng) {
                    // Keep the IP header checksum valid so the mutation reaches deeper layers.
                    p.withUnsafeMutableBytes { b in
                        if b[0] >> 4 == 4, Int(b[0] & 0xF) * 4 <= b.count, b[0] & 0xF >= 5 {
                            MutableIPv4View(unchecked: b.baseAddress!, count: b.count).updateChecksum()
                        }
                    }
                }
                if Int.random(in: 0..<8, using: &rng) == 0 { p = Array(p.prefix(Int.random(in: 0..<p.count, using: &rng))) }
            }
            let (v, _) = send(&e, p, at: Double(i) * 0.01)
            switch v {
            case .toOutside, .toInside: forwarded += 1
            case .held: held += 1
            case .drop: dropped += 1
            }
            while e.nextOutput() != nil {}
            if i % 1000 == 0 { e.expire(now: .seconds(Double(i) * 0.01)) }
        }
        #expect(forwarded + dropped + held == 40_000)
        #expect(UInt64(dropped) == e.counters.totalDropped - e.counters.dropped(.icmpRateLimited) - e.counters.dropped(.unsolicitedSYN) - e.counters.dropped(.fragmentTimeout) - e.counters.dropped(.fragmentTableFull) - e.counters.dropped(.outboxFull))
        #expect(forwarded > 1000 && dropped > 1000)
    }

    @Test func everyDropReasonHasASnakeCaseName() {
        let names = DropReason.allCases.map(\.name)
        #expect(Set(names).count == names.count)
        #expect(names.allSatisfy { $0.allSatisfy { $0.isLowercase || $0 == "_" || $0.isNumber } })
    }

    @Test func configurationErrorsNameTheKey() {
        var c = config()
        c.pool = []
        #expect(throws: ConfigurationError.self) { try c.validate() }
        c = config { $0.timeouts.udp = 30 }
        do { try c.validate() } catch { #expect(error.key == "timeouts.udp") }
        c = config { $0.pool = [IPv4Prefix("100.64.1.0/24")!] }
        do { try c.validate() } catch { #expect(error.key == "pool[0]") }
        c = config { $0.forwards = [PortForward(proto: IPProtocol.tcp, outsideAddress: serverX, outsidePorts: 80...80, insideAddress: clientA, insidePort: 80)] }
        do { try c.validate() } catch { #expect(error.key == "forward[0].outside") }
    }

    /// The rules that were only the daemon's loader's are the configuration's own: a library user gets them.
    @Test func validateHoldsTheLoadersRulesToo() {
        func key(_ change: (inout NAPT44Configuration) -> Void) -> String? {
            do { try config(.portRestrictedCone, change).validate(); return nil } catch { return error.key }
        }
        #expect(key { _ in } == nil)
        #expect(key { $0.insidePrefixes = [] } == "inside")
        #expect(key { $0.maxPortAttempts = 65537 } == "max_port_attempts")
        #expect(key { $0.maxSessions = 0 } == "max_sessions")
        #expect(key { $0.maxHeldSYNs = 65537 } == "max_held_syns")
        #expect(key { $0.timeouts.other = 0 } == "timeouts.other")
        #expect(key { $0.timeouts.synHoldMilliseconds = 86_400_001 } == "timeouts.syn_hold")
        #expect(key { $0.limits.icmpErrorsPerSecond = 1_000_001 } == "limits.icmp_errors_per_second")
        #expect(key { $0.fragments.maxFlows = 0 } == "fragments.max_flows")
        #expect(key { $0.fragments.maxHeldSize = 67 } == "fragments.max_held_size")
        #expect(key { $0.ports = PortSet(ranges: []) } == "ports")
    }
}
