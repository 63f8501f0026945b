import Testing
import NATCore
import NATWire
@testable import NAT64

/// RFC 6146 §4 timers on a manual clock, resource limits (RFC 6146 §3.5.1.1, RFC 6888), static BIB
/// entries (RFC 6146 §3.1) and configuration checks.
@Suite struct StatefulTimerLimitStaticTests {
    // MARK: Timers

    @Test func rfc6146_4_udpSessionLastsUDPDefaultFiveMinutes() {
        var t = makeStateful()
        _ = run(&t, udp6(), at: at(0))
        _ = expire(&t, at: at(299))
        let h1 = session(t, .udp, host6, 5000, server4, 53)
        #expect(h1 != nil)
        _ = expire(&t, at: at(300))
        let h2 = session(t, .udp, host6, 5000, server4, 53)
        #expect(h2 == nil)
        #expect(t.mapping.bindingCount == 0 && t.mapping.hostCount == 0)
        let m = t.mapping.counters
        #expect(m.sessionsExpired == 1 && m.mappingsFreed == 1)
    }

    @Test func rfc6146_4_outboundPacketsRefreshUDP() {
        var t = makeStateful()
        _ = run(&t, udp6(), at: at(0))
        _ = run(&t, udp6(), at: at(250))
        _ = expire(&t, at: at(549))
        let h3 = session(t, .udp, host6, 5000, server4, 53)
        #expect(h3 != nil)
        _ = expire(&t, at: at(550))
        let h4 = session(t, .udp, host6, 5000, server4, 53)
        #expect(h4 == nil)
    }

    @Test func rfc6146_3_5_1_inboundPacketsRefreshUDP() throws {
        var t = makeStateful()
        _ = run(&t, udp6(), at: at(0))
        let h5 = bib(t, .udp, host6, 5000)
        let b = try #require(h5)
        _ = run(&t, udp4(server4, 53, b.ipv4, b.ipv4Port), at: at(200))
        _ = expire(&t, at: at(450))
        let h6 = session(t, .udp, host6, 5000, server4, 53)
        #expect(h6 != nil)
        let h7 = session(t, .udp, host6, 5000, server4, 53, at: at(450))
        #expect(h7?.idleSeconds == 250)
    }

    @Test func rfc6146_4_udpTimeoutConfigurable() {
        var t = makeStateful { $0.timeouts.udp = 600 }
        _ = run(&t, udp6(), at: at(0))
        _ = expire(&t, at: at(599))
        let h8 = session(t, .udp, host6, 5000, server4, 53)
        #expect(h8 != nil)
        _ = expire(&t, at: at(600))
        let h9 = session(t, .udp, host6, 5000, server4, 53)
        #expect(h9 == nil)
    }

    @Test func rfc6146_4_icmpSessionLastsSixtySeconds() {
        var t = makeStateful()
        _ = run(&t, PacketBuilder.echo6(source: host6, destination: server6, identifier: 3), at: at(0))
        _ = expire(&t, at: at(59))
        let h10 = session(t, .icmp, host6, 3, server4, 0)
        #expect(h10 != nil)
        _ = expire(&t, at: at(60))
        let h11 = session(t, .icmp, host6, 3, server4, 0)
        #expect(h11 == nil)
    }

    @Test func rfc6146_4_tcpTransitoryConfigurable() {
        var t = makeStateful { $0.timeouts.tcpTransitory = 600 }
        _ = run(&t, tcp6([.syn]), at: at(0))
        _ = expire(&t, at: at(599))
        let h12 = session(t, .tcp, host6, 40000, server4, 80)
        #expect(h12 != nil)
        _ = expire(&t, at: at(600))
        let h13 = session(t, .tcp, host6, 40000, server4, 80)
        #expect(h13 == nil)
    }

    @Test func rfc6146_4_expiryTakesOnlyWhatIsDue() {
        // 500 sessions at t=0 and 5 at t=200, all UDP: at 300 exactly the 500 go, in last-use order.
        var t = makeStateful()
        for i in 0..<500 { _ = run(&t, udp6(host6, UInt16(10000 + i)), at: at(0)) }
        for i in 0..<5 { _ = run(&t, udp6(host6b, UInt16(20000 + i)), at: at(200)) }
        #expect(t.mapping.sessionCount == 505)
        _ = expire(&t, at: at(299))
        #expect(t.mapping.sessionCount == 505)
        _ = expire(&t, at: at(300))
        #expect(t.mapping.sessionCount == 5)
        #expect(t.mapping.hostCount == 1)
        _ = expire(&t, at: at(500))
        #expect(t.mapping.sessionCount == 0 && t.mapping.hostCount == 0)
    }

    @Test func rfc6146_4_minimumLifetimesEnforced() {
        func problem(_ edit: (inout NAPT64Configuration) -> Void) -> String? {
            var c = statefulConfiguration()
            edit(&c)
            do { try c.validate(); return nil } catch { return error.key }
        }
        #expect(problem { $0.timeouts.udp = 119 } == "timeouts.udp")
        #expect(problem { $0.timeouts.udp = 120 } == nil, "UDP_MIN is 2 minutes")
        #expect(problem { $0.timeouts.tcpEstablished = 7439 } == "timeouts.tcp_established")
        #expect(problem { $0.timeouts.tcpTransitory = 239 } == "timeouts.tcp_transitory")
        #expect(problem { $0.timeouts.icmp = 0 } == "timeouts.icmp")
        #expect(problem { $0.timeouts.synHoldMilliseconds = 0 } == "timeouts.tcp_incoming_syn")
    }

    // MARK: Limits

    @Test func rfc6146_3_5_1_1_sessionTableFullDropsWithICMPv6AndNeverEvicts() throws {
        var t = makeStateful { $0.maxSessions = 4; $0.maxBindings = 16 }
        for i in 0..<4 { #expect(run(&t, udp6(host6, UInt16(5000 + i)), at: at(0)).verdict == toIPv4) }
        let fifth = udp6(host6, 6000)
        let r = run(&t, fifth, at: at(1))
        #expect(r.verdict == .drop(.sessionTableFull))
        let expected = PacketBuilder.icmp6Error(source: translator6, destination: host6, type: ICMPv6Type.destinationUnreachable,
                                                code: ICMPv6UnreachableCode.address, original: fifth)
        #expect(r.generated.map(\.bytes) == [expected])
        // The four live sessions keep working (RFC 6888 REQ-11: no eviction).
        let h14 = bib(t, .udp, host6, 5000)
        let b = try #require(h14)
        #expect(run(&t, udp4(server4, 53, b.ipv4, b.ipv4Port), at: at(2)).verdict == toIPv6)
        #expect(t.mapping.sessionCount == 4)
        // Once they expire there is room again (the full table runs the timers itself).
        #expect(run(&t, fifth, at: at(302)).verdict == toIPv4)
    }

    @Test func rfc6888_req4_perHostSessionLimit() {
        var t = makeStateful { $0.maxSessionsPerHost = 2 }
        #expect(run(&t, udp6(host6, 5000, server6), at: at(0)).verdict == toIPv4)
        #expect(run(&t, udp6(host6, 5000, server6b), at: at(0)).verdict == toIPv4)
        #expect(run(&t, udp6(host6, 5000, server6c), at: at(0)).verdict == .drop(.hostSessionLimit))
        #expect(run(&t, udp6(host6b, 5000, server6c), at: at(0)).verdict == toIPv4, "another host is not affected")
        let c = t.counters6to4
        #expect(c.dropped(.hostSessionLimit) == 1)
    }

    @Test("RFC 6888 REQ-4 spirit: an IPv6 host spraying new flows is held to new_sessions_per_second; another host is not")
    func perHostNewSessionRate() {
        var t = makeStateful { $0.newSessionsPerSecond = 100; $0.newSessionBurst = 5 }
        var passed = 0
        for p in 0..<30 where run(&t, udp6(host6, UInt16(6000 + p), server6), at: at(1)).verdict == toIPv4 { passed += 1 }
        #expect(passed == 5)
        #expect(t.counters6to4.dropped(.hostNewSessionRate) == 25)
        #expect(run(&t, udp6(host6b, 6000, server6), at: at(1)).verdict == toIPv4, "another host is not affected")
        // Its own existing session goes on; 100 ms later the bucket has refilled (10 at 100/s) up to its
        // burst of 5.
        #expect(run(&t, udp6(host6, 6000, server6), at: at(1)).verdict == toIPv4)
        var later = 0
        for p in 0..<20 where run(&t, udp6(host6, UInt16(7000 + p), server6), at: at(1.1)).verdict == toIPv4 { later += 1 }
        #expect(later == 5)
    }

    @Test func rfc6888_req4_perHostBIBLimitAlsoForInboundSessions() throws {
        var t = makeStateful { $0.maxBindingsPerHost = 1; $0.maxSessionsPerHost = 2 }
        #expect(run(&t, udp6(host6, 5000), at: at(0)).verdict == toIPv4)
        #expect(run(&t, udp6(host6, 5001), at: at(0)).verdict == .drop(.hostPortLimit))
        let h15 = bib(t, .udp, host6, 5000)
        let b = try #require(h15)
        #expect(run(&t, udp4(server4b, 1, b.ipv4, b.ipv4Port), at: at(0)).verdict == toIPv6)
        #expect(run(&t, udp4(server4c, 1, b.ipv4, b.ipv4Port), at: at(0)).verdict == .drop(.hostSessionLimit),
                "inbound sessions count toward the host's limit")
    }

    @Test func ipv6HostRecordsFitOneCacheLine() {
        #expect(MemoryLayout<IPv6HostTable.Host>.stride == 32)
        var h = IPv6HostTable(capacity: 4, seed: 1)
        let a = h.intern(host6), b = h.intern(host6b)
        #expect(a != nil && b != nil && a != b)
        #expect(h.lookup(host6) == a && h.intern(host6) == a && h.count == 2)
        #expect(h.records[Int(a!)].isLive && h.address(a!) == host6)
        h.releaseIfUnused(a!)
        #expect(h.lookup(host6) == 0 && h.lookup(host6b) == b && h.count == 1)
        #expect(!h.records[Int(a!)].isLive)
        h.records[Int(b!)].bindings = 1
        h.releaseIfUnused(b!)
        #expect(h.lookup(host6b) == b, "a host with a BIB entry stays")
    }

    @Test func rfc6146_3_5_1_1_hostTableFull() {
        var t = makeStateful { $0.maxHosts = 2 }
        #expect(run(&t, udp6(host6), at: at(0)).verdict == toIPv4)
        #expect(run(&t, udp6(host6b), at: at(0)).verdict == toIPv4)
        let r = run(&t, udp6(addr6("2001:db8:6::99")), at: at(0))
        #expect(r.verdict == .drop(.hostTableFull))
        #expect(r.generated.count == 1)
    }

    @Test func rfc6146_3_5_1_1_bibFull() {
        var t = makeStateful { $0.maxBindings = 2 }
        #expect(run(&t, udp6(host6, 1), at: at(0)).verdict == toIPv4)
        #expect(run(&t, udp6(host6, 2), at: at(0)).verdict == toIPv4)
        #expect(run(&t, udp6(host6, 3), at: at(0)).verdict == .drop(.mappingTableFull))
        #expect(t.mapping.sessionCount == 2)
    }

    // MARK: Static BIB entries (RFC 6146 §3.1)

    let staticServer = addr6("2001:db8:6::10")

    func withStatic(_ edit: (inout NAPT64Configuration) -> Void = { _ in }) -> NAPT64Translator {
        makeStateful {
            $0.staticBindings = [
                NAT64StaticBinding(proto: .udp, ipv6: staticServer, ipv6Port: 53, ipv4: poolFirst, ipv4Port: 5353),
                NAT64StaticBinding(proto: .tcp, ipv6: staticServer, ipv6Port: 80, ipv4: poolFirst, ipv4Port: 8080),
                NAT64StaticBinding(proto: .icmp, ipv6: staticServer, ipv6Port: 7, ipv4: poolFirst, ipv4Port: 700),
            ]
            edit(&$0)
        }
    }

    @Test func rfc6146_3_1_staticBIBLetsIPv4HostsInGolden() throws {
        var t = withStatic()
        #expect(t.mapping.bindingCount == 3 && t.mapping.sessionCount == 0)
        let r = run(&t, udp4(server4, 3333, poolFirst, 5353), at: at(1))
        #expect(r.verdict == toIPv6)
        let expected = PacketBuilder.udp6(source: server6, sourcePort: 3333, destination: staticServer, destinationPort: 53,
                                          payload: payload(20), hopLimit: 63)
        #expect(r.bytes == expected, "\(diff(r.bytes, expected))")
        // The answer leaves from the static IPv4 transport address.
        let a = run(&t, udp6(staticServer, 53, server6, 3333), at: at(1))
        #expect(a.bytes == udp4(poolFirst, 5353, server4, 3333, ttl: 63, id: 1))
    }

    @Test func rfc6146_3_1_staticBIBAdmitsEvenWithAddressDependentFiltering() {
        var t = withStatic { $0.filtering = .addressDependent }
        #expect(run(&t, udp4(server4, 3333, poolFirst, 5353), at: at(1)).verdict == toIPv6)
        #expect(run(&t, tcp4(server4, 3333, poolFirst, 8080, [.syn]), at: at(1)).verdict == toIPv6, "not held")
        let h16 = t.mapping.session(.tcp, ipv6: staticServer, port: 80, remote: server4, remotePort: 3333, now: at(1))
        #expect(h16?.tcpState == .inboundInit)
    }

    @Test func rfc6146_3_1_staticICMPBindingAnswersPings() throws {
        var t = withStatic()
        let r = run(&t, PacketBuilder.echo4(source: server4, destination: poolFirst, identifier: 700, sequenceNumber: 2), at: at(1))
        #expect(r.verdict == toIPv6)
        let expected = PacketBuilder.echo6(source: server6, destination: staticServer, identifier: 7, sequenceNumber: 2, hopLimit: 63)
        #expect(r.bytes == expected, "\(diff(r.bytes, expected))")
        let reply = run(&t, PacketBuilder.echo6(source: staticServer, destination: server6, identifier: 7, sequenceNumber: 2,
                                                reply: true), at: at(1))
        #expect(reply.verdict == toIPv4)
        #expect(Array(reply.bytes[24..<26]) == [0x02, 0xBC], "identifier 700 again")
    }

    @Test func rfc6146_3_1_staticBIBOutlivesItsSessions() {
        var t = withStatic()
        _ = run(&t, udp4(server4, 3333, poolFirst, 5353), at: at(0))
        #expect(t.mapping.sessionCount == 1)
        _ = expire(&t, at: at(10_000))
        #expect(t.mapping.sessionCount == 0 && t.mapping.bindingCount == 3)
        let h17 = bib(t, .udp, staticServer, 53)
        #expect(h17?.isStatic == true)
        #expect(run(&t, udp4(server4, 3333, poolFirst, 5353), at: at(10_001)).verdict == toIPv6)
    }

    @Test func rfc6146_3_1_dynamicPortsAvoidStaticOnes() throws {
        var t = makeStateful {
            $0.pool = [IPv4Prefix("198.51.100.64/32")!]
            $0.udpPorts = PortSet(ranges: [40000...40003])
            $0.staticBindings = [NAT64StaticBinding(proto: .udp, ipv6: host6b, ipv6Port: 1, ipv4: poolFirst, ipv4Port: 40000)]
        }
        for i in 0..<2 {
            let h = IPv6Address(high: host6.high, low: 0x50 &+ UInt64(i))
            #expect(run(&t, udp6(h, 6000), at: at(0)).verdict == (i == 0 ? toIPv4 : .drop(.portsExhausted)))
        }
        let h18 = bib(t, .udp, IPv6Address(high: host6.high, low: 0x50), 6000)
        #expect(try #require(h18).ipv4Port == 40002)
    }

    @Test func rfc6146_3_1_staticBIBConfigurationChecked() {
        func problem(_ b: [NAT64StaticBinding]) -> String? {
            var c = statefulConfiguration()
            c.staticBindings = b
            do { try c.validate(); return nil } catch { return "\(error.key): \(error.problem)" }
        }
        #expect(problem([NAT64StaticBinding(proto: .udp, ipv6: host6, ipv6Port: 1, ipv4: server4, ipv4Port: 1)])?
            .hasPrefix("static_bib[0].ipv4: 192.0.2.33 is not a pool address") == true)
        #expect(problem([NAT64StaticBinding(proto: .udp, ipv6: host6, ipv6Port: 1, ipv4: poolFirst, ipv4Port: 1),
                         NAT64StaticBinding(proto: .udp, ipv6: host6b, ipv6Port: 1, ipv4: poolFirst, ipv4Port: 1)])?
            .hasPrefix("static_bib[1]: binds udp 198.51.100.64:1 again") == true)
        #expect(problem([NAT64StaticBinding(proto: .tcp, ipv6: host6, ipv6Port: 1, ipv4: poolFirst, ipv4Port: 1),
                         NAT64StaticBinding(proto: .tcp, ipv6: host6, ipv6Port: 1, ipv4: poolFirst, ipv4Port: 2)])?
            .hasPrefix("static_bib[1]: binds tcp [2001:db8:6::5]:1 again") == true)
        #expect(problem([NAT64StaticBinding(proto: .udp, ipv6: host6, ipv6Port: 1, ipv4: poolFirst, ipv4Port: 1),
                         NAT64StaticBinding(proto: .tcp, ipv6: host6, ipv6Port: 1, ipv4: poolFirst, ipv4Port: 1)]) == nil,
                "each protocol has its own BIB")
        #expect(problem([NAT64StaticBinding(proto: .udp, ipv6: server6, ipv6Port: 1, ipv4: poolFirst, ipv4Port: 1)])?
            .hasPrefix("static_bib[0].ipv6") == true)
        #expect(problem([NAT64StaticBinding(proto: .udp, ipv6: host6, ipv6Port: 0, ipv4: poolFirst, ipv4Port: 1)])?
            .hasPrefix("static_bib[0].ipv6_port") == true)
    }

    @Test func configurationRefusesAnEmptyOrOverlappingPool() {
        var c = statefulConfiguration()
        c.pool = []
        #expect(throws: ConfigurationError.self) { try c.validate() }
        c.pool = [IPv4Prefix("198.51.100.64/30")!, IPv4Prefix("198.51.100.66/31")!]
        #expect((#expect(throws: ConfigurationError.self) { try c.validate() })?.key == "pool[0]")
        c.pool = [IPv4Prefix("198.51.100.0/24")!]
        c.udpPorts = PortSet(ranges: [])
        #expect((#expect(throws: ConfigurationError.self) { try c.validate() })?.key == "udp_ports")
    }
}
