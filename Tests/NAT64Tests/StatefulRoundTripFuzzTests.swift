import Testing
import NATCore
import NATWire
@testable import NAT64

/// Many random flows both ways through stateful NAT64, and random or mutated packets that must never trap
/// and must always be either forwarded well formed, held, or dropped and counted.
@Suite struct StatefulRoundTripFuzzTests {
    typealias RNG = FuzzTests.SplitMix64

    @Test func rfc6146_3_5_roundTripsOverManyRandomFlows() throws {
        var t = makeStateful { $0.maxSessions = 8192 }
        var rng = RNG(state: 0x6146)
        struct Flow { var proto: NAT64Protocol; var host: IPv6Address; var port: UInt16; var server: IPv4Address; var serverPort: UInt16 }
        var flows: [Flow] = []
        var seen = Set<String>()
        while flows.count < 600 {
            let proto: NAT64Protocol = [.udp, .tcp, .icmp][rng.below(3)]
            let host = IPv6Address(high: 0x2001_0db8_0006_0000 | UInt64(rng.below(4)), low: UInt64(1 + rng.below(40)))
            let port = UInt16(1 + rng.below(65535))
            let server = IPv4Address(0xC000_0200 | UInt32(1 + rng.below(250)))
            let serverPort = proto == .icmp ? 0 : UInt16(1 + rng.below(65535))
            guard seen.insert("\(proto)\(host)\(port)\(server)\(serverPort)").inserted else { continue }
            flows.append(Flow(proto: proto, host: host, port: port, server: server, serverPort: serverPort))
        }
        let prefix = try NAT64Prefix("64:ff9b::/96", restrictsToGlobalIPv4: false)
        var id: UInt16 = 1
        for (i, f) in flows.enumerated() {
            let now = at(Double(i) / 100)
            let server6 = prefix.embedUnchecked(f.server)
            let n = rng.below(100)
            // Out.
            let out6: [UInt8]
            switch f.proto {
            case .udp: out6 = PacketBuilder.udp6(source: f.host, sourcePort: f.port, destination: server6, destinationPort: f.serverPort, payload: payload(n))
            case .tcp: out6 = tcp6(f.host, f.port, server6, f.serverPort, [.syn], seq: UInt32(i), n: n)
            case .icmp: out6 = PacketBuilder.echo6(source: f.host, destination: server6, identifier: f.port, sequenceNumber: UInt16(i), payload: payload(n))
            }
            let r = run(&t, out6, at: now)
            #expect(r.verdict == toIPv4, "flow \(i)")
            let h1 = bib(t, f.proto, f.host, f.port)
            let b = try #require(h1)
            #expect(statefulPool.contains(b.ipv4))
            let expectedOut: [UInt8]
            switch f.proto {
            case .udp: expectedOut = udp4(b.ipv4, b.ipv4Port, f.server, f.serverPort, n: n, ttl: 63, id: id)
            case .tcp: expectedOut = tcp4(b.ipv4, b.ipv4Port, f.server, f.serverPort, [.syn], seq: UInt32(i), n: n, ttl: 63, id: id)
            case .icmp:
                var e = PacketBuilder.echo4(source: b.ipv4, destination: f.server, identifier: b.ipv4Port, sequenceNumber: UInt16(i), payload: payload(n))
                e[8] = 63; e[4] = UInt8(id >> 8); e[5] = UInt8(id & 0xFF)
                fixIPv4HeaderChecksum(&e)
                expectedOut = e
            }
            id &+= 1
            #expect(r.bytes == expectedOut, "flow \(i): \(diff(r.bytes, expectedOut))")
            // Back.
            let m = rng.below(100)
            let in4: [UInt8], expectedIn: [UInt8]
            switch f.proto {
            case .udp:
                in4 = udp4(f.server, f.serverPort, b.ipv4, b.ipv4Port, n: m)
                expectedIn = PacketBuilder.udp6(source: server6, sourcePort: f.serverPort, destination: f.host, destinationPort: f.port, payload: payload(m), hopLimit: 63)
            case .tcp:
                in4 = tcp4(f.server, f.serverPort, b.ipv4, b.ipv4Port, [.syn, .ack], seq: 9, ack: UInt32(i) &+ 1, n: m)
                expectedIn = tcp6(server6, f.serverPort, f.host, f.port, [.syn, .ack], seq: 9, ack: UInt32(i) &+ 1, n: m, hopLimit: 63)
            case .icmp:
                in4 = PacketBuilder.echo4(source: f.server, destination: b.ipv4, identifier: b.ipv4Port, sequenceNumber: UInt16(i), reply: true, payload: payload(m))
                expectedIn = PacketBuilder.echo6(source: server6, destination: f.host, identifier: f.port, sequenceNumber: UInt16(i), reply: true, payload: payload(m), hopLimit: 63)
            }
            let back = run(&t, in4, at: now)
            #expect(back.verdict == toIPv6, "flow \(i)")
            #expect(back.bytes == expectedIn, "flow \(i) back: \(diff(back.bytes, expectedIn))")
            if f.proto == .tcp {
                let h2 = session(t, .tcp, f.host, f.port, f.server, f.serverPort)
                #expect(h2?.tcpState == .established)
            }
        }
        #expect(t.mapping.sessionCount == flows.count)
        // Bindings never collide: one IPv4 transport address per (protocol, IPv6 transport address).
        let all = t.mapping.bindings()
        #expect(Set(all.map { "\($0.proto)\($0.ipv4):\($0.ipv4Port)" }).count == all.count)
        let c = t.counters
        #expect(c.totalDropped == 0)
    }

    static func seeds() -> [[UInt8]] {
        let pool6 = addr6("64:ff9b::198.51.100.65")
        var s = FuzzTests.seeds()
        s += [
            udp6(host6, 5000, server6, 53),
            udp6(host6, 5000, pool6, 7000),
            tcp6([.syn]),
            tcp6([.ack]),
            tcp6(host6, 40000, pool6, 9, [.syn]),
            PacketBuilder.echo6(source: host6, destination: server6, identifier: 5),
            udp4(server4, 53, poolFirst, 7000),
            tcp4(server4, 80, poolFirst, 8080, [.syn]),
            tcp4(server4, 80, poolFirst, 8080, [.ack]),
            PacketBuilder.echo4(source: server4, destination: poolFirst, identifier: 7),
            PacketBuilder.icmp4Error(source: router4, destination: poolFirst, type: 11, code: 0,
                                     original: udp4(poolFirst, 7000, server4, 53, ttl: 63)),
            PacketBuilder.icmp6Error(source: host6, destination: server6, type: 1, code: 4,
                                     original: PacketBuilder.udp6(source: server6, sourcePort: 53, destination: host6, destinationPort: 5000)),
        ]
        return s
    }

    @Test func statefulFuzzNeverTrapsAndCountsEveryDrop() {
        var t = makeStateful {
            $0.maxSessions = 256
            $0.maxHeldSYNs = 8
            $0.staticBindings = [NAT64StaticBinding(proto: .udp, ipv6: peer6, ipv6Port: 7000, ipv4: poolFirst, ipv4Port: 7000),
                                 NAT64StaticBinding(proto: .tcp, ipv6: peer6, ipv6Port: 8080, ipv4: poolFirst, ipv4Port: 8080)]
        }
        var rng = RNG(state: 42)
        let seeds = Self.seeds()
        var drops: UInt64 = 0, forwarded = 0, held: UInt64 = 0
        for i in 0..<30_000 {
            let now = at(Double(i) * 0.05)
            var p: [UInt8]
            if rng.below(8) == 0 {
                p = (0..<rng.below(120)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                if !p.isEmpty && rng.below(2) == 0 { p[0] = rng.below(2) == 0 ? 0x45 : 0x60 }
            } else {
                p = seeds[rng.below(seeds.count)]
                for _ in 0..<rng.below(4) where !p.isEmpty {
                    p[rng.below(min(p.count, 64))] = UInt8(truncatingIfNeeded: rng.next())
                }
                if rng.below(6) == 0 { p = Array(p.prefix(rng.below(p.count + 1))) }
            }
            let r = run(&t, p, at: now)
            switch r.verdict {
            case .drop: drops += 1
            case .held: held += 1
            case .toOutside, .toInside:
                forwarded += 1
                #expect(FuzzTests.wellFormed(r.bytes), "input \(p)")
            }
            for g in r.generated { #expect(FuzzTests.wellFormed(g.bytes)) }
            if i % 97 == 0 {
                for g in expire(&t, at: now) { #expect(FuzzTests.wellFormed(g.bytes)) }
            }
        }
        let c = t.counters
        #expect(c.totalDropped == drops)
        #expect(c.synsHeld == held)
        #expect(forwarded > 3000 && drops > 3000)
        // The tables stay consistent: everything that was made can be expired away.
        _ = expire(&t, at: at(1_000_000))
        _ = expire(&t, at: at(1_000_300))  // probed ESTABLISHED sessions wait out TCP_TRANS
        #expect(t.mapping.sessionCount == 0)
        #expect(t.mapping.bindingCount == 2, "only the static entries are left")
        #expect(t.mapping.hostCount == 1)
        #expect(t.mapping.heldSYNCount == 0)
    }
}
