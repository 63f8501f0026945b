import Testing
import NATWire
import NATCore
import NAPT44

@Suite("Timers (manual clock) and the TCP state machine")
struct TimerTCPTests {
    /// RFC 5382 REQ-5 allows established timeouts longer than 2 h 4 min; at 2^16 s or more a packet that
    /// comes exactly 65 536 s after the last one must still refresh the session (the engine then has the
    /// table compare all 32 bits of the last use). The session outlives another full timeout after it.
    @Test func rfc5382_req5_longEstablishedTimeoutRefreshesAfterExactlyTwoToTheSixteenSeconds() {
        var c = config()
        c.timeouts.tcpEstablished = 100_000
        var e = engine(c)
        let longReadsHigh = e.table.refreshReadsHighBits
        let defaultEngine = engine(config())
        let defaultReadsHigh = defaultEngine.table.refreshReadsHighBits
        #expect(longReadsHigh && !defaultReadsHigh)
        let (a, p) = openUDP(&e, clientA, 5000, serverX, 53, at: 0)
        c.timeouts.udp = 100_000
        var long = engine(c)
        let (la, lp) = openUDP(&long, clientA, 5000, serverX, 53, at: 0)
        // Refreshed from inside exactly 2^16 s later, then quiet for most of a timeout.
        #expect(send(&long, udp(clientA, 5000, serverX, 53), at: 65_536).0 == .toOutside)
        long.expire(now: .seconds(65_536 + 99_000))
        #expect(send(&long, udp(serverX, 53, la, lp), at: 65_536 + 99_000).0 == .toInside(tenant: 0))
        // The default engine (5-minute UDP timeout) forgot its mapping long ago.
        e.expire(now: .seconds(65_536))
        #expect(send(&e, udp(serverX, 53, a, p), at: 65_536).0 != .toInside(tenant: 0))
    }

    @Test func rfc4787_req5_udpMappingLivesFiveMinutesAfterLastOutbound() {
        var e = engine(config())
        let (a, p) = openUDP(&e, clientA, 5000, serverX, 53, at: 0)
        e.expire(now: .seconds(299))
        #expect(send(&e, udp(serverX, 53, a, p), at: 299).0 == .toInside(tenant: 0))
        e.expire(now: .seconds(300))
        #expect(e.sessionCount == 0)
        #expect(send(&e, udp(serverX, 53, a, p), at: 300).0 == .drop(.noMapping))
    }

    @Test func rfc4787_req6_outboundRefreshesInboundDoesNotByDefault() {
        var e = engine(config())
        let (a, p) = openUDP(&e, clientA, 5000, serverX, 53, at: 0)
        _ = send(&e, udp(serverX, 53, a, p), at: 200)          // inbound: no refresh
        e.expire(now: .seconds(300))
        #expect(e.sessionCount == 0)
        var f = engine(config())
        _ = openUDP(&f, clientA, 5000, serverX, 53, at: 0)
        _ = openUDP(&f, clientA, 5000, serverX, 53, at: 200)   // outbound: refresh
        f.expire(now: .seconds(499))
        #expect(f.sessionCount == 1)
        f.expire(now: .seconds(500))
        #expect(f.sessionCount == 0)
    }

    @Test func inboundRefreshIsASetting() {
        var e = engine(config { $0.inboundRefresh = true })
        let (a, p) = openUDP(&e, clientA, 5000, serverX, 53, at: 0)
        _ = send(&e, udp(serverX, 53, a, p), at: 200)
        e.expire(now: .seconds(499))
        #expect(e.sessionCount == 1)
    }

    @Test func timeoutsAreConfigurable() {
        var e = engine(config { $0.timeouts.udp = 120 })
        _ = openUDP(&e, clientA, 5000, serverX, 53, at: 10)
        e.expire(now: .seconds(129))
        #expect(e.sessionCount == 1)
        e.expire(now: .seconds(130))
        #expect(e.sessionCount == 0)
    }

    @Test func rfc6888_req8_freedPortIsHeld120Seconds() {
        var e = engine(config { $0.ports = PortSet(ranges: [20000...20000]) })
        _ = openUDP(&e, clientA, 5000, serverX, 53, at: 0)
        e.expire(now: .seconds(300))
        #expect(e.sessionCount == 0)
        // The only port is in its hold: another host cannot have it yet.
        #expect(send(&e, udp(clientB, 6000, serverX, 53), at: 301).0 == .drop(.portsExhausted))
        e.expire(now: .seconds(420))
        #expect(openUDP(&e, clientB, 6000, serverX, 53, at: 420).1 == 20000)
    }

    @Test func rfc6888_req8_cleanTCPCloseFreesPortAtOnce() {
        var e = engine(config { $0.ports = PortSet(ranges: [20000...20000]) })
        _ = send(&e, tcp(clientA, 5000, serverX, 80, [.syn]), at: 0)
        _ = send(&e, tcp(serverX, 80, poolP, 20000, [.syn, .ack]), at: 0)
        _ = send(&e, tcp(clientA, 5000, serverX, 80, [.fin, .ack]), at: 1)
        _ = send(&e, tcp(serverX, 80, poolP, 20000, [.fin, .ack]), at: 1)
        #expect(e.sessions().first?.tcpState == .bothFIN)
        e.expire(now: .seconds(241))
        #expect(e.sessionCount == 0)
        #expect(send(&e, tcp(clientB, 6000, serverX, 80, [.syn]), at: 241).0 == .toOutside)
    }

    @Test func rfc5508_req1_icmpQueryTimeoutIs60Seconds() {
        var e = engine(config())
        _ = send(&e, PacketBuilder.echo4(source: clientA, destination: serverX, identifier: 77), at: 0)
        e.expire(now: .seconds(59))
        #expect(e.sessionCount == 1)
        e.expire(now: .seconds(60))
        #expect(e.sessionCount == 0)
    }

    @Test func rfc5382_req5_establishedTimeoutIs7440Seconds() {
        var e = engine(config())
        _ = send(&e, tcp(clientA, 5000, serverX, 80, [.syn]), at: 0)
        _ = send(&e, tcp(serverX, 80, poolP, 5000, [.syn, .ack]), at: 0)
        _ = send(&e, tcp(clientA, 5000, serverX, 80, [.ack]), at: 0)
        #expect(e.sessions().first?.tcpState == .established)
        e.expire(now: .seconds(7439))
        #expect(e.sessionCount == 1)
        e.expire(now: .seconds(7440))
        #expect(e.sessionCount == 0)
    }

    @Test func tcpTransitoryTimeoutIs240SecondsBeforeEstablishment() {
        var e = engine(config())
        _ = send(&e, tcp(clientA, 5000, serverX, 80, [.syn]), at: 0)
        #expect(e.sessions().first?.tcpState == .outboundInit)
        e.expire(now: .seconds(239))
        #expect(e.sessionCount == 1)
        e.expire(now: .seconds(240))
        #expect(e.sessionCount == 0)
    }

    @Test func rfc5382_req2_simultaneousOpen() {
        var e = engine(config(.portRestrictedCone))
        // Inside SYN, then the remote's own SYN (not SYN-ACK) for the same 4-tuple.
        #expect(send(&e, tcp(clientA, 5000, serverX, 6000, [.syn]), at: 0).0 == .toOutside)
        let (v, out) = send(&e, tcp(serverX, 6000, poolP, 5000, [.syn]), at: 0.1)
        #expect(v == .toInside(tenant: 0))
        #expect(parse(out).destination == clientA)
        #expect(e.sessions().first?.tcpState == .established)
    }

    @Test func rfc7857_s2_1_rstMovesToTransitoryInsteadOfDeleting() {
        var e = engine(config())
        _ = send(&e, tcp(clientA, 5000, serverX, 80, [.syn]), at: 0)
        _ = send(&e, tcp(serverX, 80, poolP, 5000, [.syn, .ack]), at: 0)
        _ = send(&e, tcp(clientA, 5000, serverX, 80, [.ack]), at: 0)
        // A (possibly spoofed) RST from outside does not tear the session down.
        #expect(send(&e, tcp(serverX, 80, poolP, 5000, [.rst]), at: 10).0 == .toInside(tenant: 0))
        #expect(e.sessions().first?.tcpState == .transitory)
        // Traffic continues and brings the session back to ESTABLISHED.
        #expect(send(&e, tcp(clientA, 5000, serverX, 80, [.ack]), at: 11).0 == .toOutside)
        #expect(e.sessions().first?.tcpState == .established)
        // An RST that is not followed by traffic ends it after the transitory time.
        _ = send(&e, tcp(clientA, 5000, serverX, 80, [.rst]), at: 20)
        e.expire(now: .seconds(259))
        #expect(e.sessionCount == 1)
        e.expire(now: .seconds(260))
        #expect(e.sessionCount == 0)
    }

    @Test func outboundRSTWithoutSessionCreatesNothing() {
        var e = engine(config())
        #expect(send(&e, tcp(clientA, 5000, serverX, 80, [.rst])).0 == .drop(.tcpNotSYN))
        #expect(e.sessionCount == 0)
    }

    @Test func inboundNonSYNToOpenMappingIsRefused() {
        var e = engine(config(.fullCone))
        _ = send(&e, tcp(clientA, 5000, serverX, 80, [.syn]))
        #expect(send(&e, tcp(serverY, 80, poolP, 5000, [.ack])).0 == .drop(.tcpNotSYN))
        #expect(send(&e, tcp(serverY, 80, poolP, 5000, [.syn])).0 == .toInside(tenant: 0))
    }

    @Test func rfc5382_req4_unsolicitedSYNHeldSixSecondsThenPortUnreachable() {
        var e = engine(config(.portRestrictedCone))
        let syn = tcp(serverX, 4444, poolP, 5000, [.syn])
        #expect(send(&e, syn, at: 0).0 == .held)
        e.expire(now: .seconds(5.9))
        #expect(outputs(&e).isEmpty)
        e.expire(now: .seconds(6))
        let gen = outputs(&e)
        #expect(gen.count == 1)
        let icmp = parse(gen[0].0)
        #expect(icmp.icmpType == 3 && icmp.icmpCode == 3)
        #expect(icmp.source == poolP && icmp.destination == serverX)
        #expect(gen[0].1 == .toOutside)
        #expect(Array(embedded(gen[0].0).prefix(28)) == Array(syn.prefix(28)))
        #expect(checksumsValid(gen[0].0))
        #expect(e.counters.dropped(.unsolicitedSYN) == 1)
    }

    @Test func rfc5382_req4_outboundSYNWithinSixSecondsDropsHeldSYNSilently() {
        var e = engine(config(.portRestrictedCone))
        #expect(send(&e, tcp(serverX, 4444, poolP, 5000, [.syn]), at: 0).0 == .held)
        #expect(send(&e, tcp(clientA, 5000, serverX, 4444, [.syn]), at: 2).0 == .toOutside)
        e.expire(now: .seconds(10))
        #expect(outputs(&e).isEmpty)
        #expect(e.heldSYNCount == 0)
    }

    @Test func unsolicitedSYNPolicyDrop() {
        var e = engine(config { $0.unsolicitedSYN = .drop })
        #expect(send(&e, tcp(serverX, 4444, poolP, 5000, [.syn]), at: 0).0 == .held)
        e.expire(now: .seconds(7))
        #expect(outputs(&e).isEmpty)
        #expect(e.counters.dropped(.unsolicitedSYN) == 1)
    }

    @Test func synHoldTableIsBounded() {
        var e = engine(config { $0.maxHeldSYNs = 8 })
        for i in 0..<8 { #expect(send(&e, tcp(serverX, UInt16(4000 + i), poolP, 5000, [.syn])).0 == .held) }
        #expect(send(&e, tcp(serverX, 4999, poolP, 5000, [.syn])).0 == .drop(.unsolicitedSYN))
        // Unrelated traffic is unaffected.
        #expect(send(&e, udp(clientA, 1, serverX, 2)).0 == .toOutside)
    }

    @Test func expiryIsPerSessionNotASweep() {
        var e = engine(config { $0.maxSessions = 20000; $0.maxHosts = 10000; $0.ports = .all })
        for i in 0..<10000 {
            _ = send(&e, udp(IPv4Address(100, 64, UInt8(i / 250), UInt8(i % 250)), 5000, serverX, 53), at: Double(i / 1000))
        }
        #expect(e.sessionCount == 10000)
        e.expire(now: .seconds(304))    // sessions created at t = 0...4 are due
        #expect(e.sessionCount == 5000)
        e.expire(now: .seconds(309))
        #expect(e.sessionCount == 0)
        #expect(e.counters.sessionsExpired == 10000)
    }
}
