import NAPT44
import NATCore
import NATWire
import Testing

// Holding the load: one inside host's burst of new flows costs that host, not the others (issue 12;
// RFC 6888 REQ-4's spirit for the rate, REQ-3/REQ-4 for the counts).
@Suite struct LoadLimitTests {
    @Test("host token bucket: a new host starts with its burst, refills at the rate, never above the burst")
    func tokenBucket() {
        var h = HostRecord()
        func take(_ r: inout HostRecord, _ t: UInt32, _ rate: UInt32, _ burst: UInt32) -> Bool {
            r.takeNewSessionCredit(nowMilliseconds: t, rate: rate, burst: burst)
        }
        for _ in 0..<5 { #expect(take(&h, 1000, 10, 5)) }
        #expect(!take(&h, 1000, 10, 5))
        // 10 per second: one more after 100 ms, not before.
        #expect(!take(&h, 1050, 10, 5))
        #expect(take(&h, 1100, 10, 5))
        // A long pause fills the bucket to the burst and no further.
        for _ in 0..<5 { #expect(take(&h, 60_000, 10, 5)) }
        #expect(!take(&h, 60_000, 10, 5))
        // The millisecond clock wraps (49.7 days): a jump across the wrap still counts as elapsed time.
        var w = HostRecord()
        #expect(take(&w, UInt32.max - 10, 1000, 1))
        #expect(!take(&w, UInt32.max - 10, 1000, 1))
        #expect(take(&w, 20, 1000, 1))
    }

    @Test("RFC 6888 REQ-4 spirit: a host spraying new flows is held to new_sessions_per_second; other hosts and its own sessions go on")
    func newSessionRatePerHost() {
        var e = engine(config { $0.limits.newSessionsPerSecond = 100; $0.limits.newSessionBurst = 10 })
        // B's established flow, opened before the flood.
        _ = openUDP(&e, clientB, 7000, serverY, 53)
        var created = 0, refused = 0
        for p in 0..<50 {
            let v = send(&e, udp(clientA, UInt16(10_000 + p), serverX, 9), at: 1.0).0
            if v == .toOutside { created += 1 } else if v == .drop(.hostNewSessionRate) { refused += 1 }
        }
        #expect(created == 10)
        #expect(refused == 40)
        #expect(e.counters.dropped(.hostNewSessionRate) == 40)
        // Refused silently: no ICMP error fed back to the flooding host.
        #expect(outputs(&e).isEmpty)
        // A's own existing session still passes; B opens new ones and its old one passes.
        #expect(send(&e, udp(clientA, 10_000, serverX, 9), at: 1.0).0 == .toOutside)
        #expect(send(&e, udp(clientB, 7000, serverY, 53), at: 1.0).0 == .toOutside)
        #expect(send(&e, udp(clientB, 7001, serverY, 53), at: 1.0).0 == .toOutside)
        // 100 ms later A may open 10 more (100 per second).
        var later = 0
        for p in 0..<20 where send(&e, udp(clientA, UInt16(20_000 + p), serverX, 9), at: 1.1).0 == .toOutside { later += 1 }
        #expect(later == 10)
    }

    @Test("a SYN flood of new connections is held to the same per-host rate")
    func synFloodHeld() {
        var e = engine(config { $0.limits.newSessionsPerSecond = 1000; $0.limits.newSessionBurst = 20 })
        var passed = 0
        for p in 0..<200 where send(&e, tcp(clientA, UInt16(30_000 + p), serverX, 80, .syn), at: 2.0).0 == .toOutside { passed += 1 }
        #expect(passed == 20)
        #expect(e.counters.dropped(.hostNewSessionRate) == 180)
    }

    @Test("new_sessions_per_second = 0 turns the rate limit off")
    func rateOff() {
        var e = engine(config { $0.limits.newSessionsPerSecond = 0; $0.limits.newSessionBurst = 1 })
        for p in 0..<100 { #expect(send(&e, udp(clientA, UInt16(10_000 + p), serverX, 9), at: 1.0).0 == .toOutside) }
    }

    @Test("RFC 6888 REQ-4: the default per-host session limit is a sixteenth of the table (at least 4096); 0 is unlimited")
    func defaultPerHostLimit() {
        var l = Limits()
        #expect(l.sessionsPerHost(maxSessions: 262_144) == 16_384)
        #expect(l.sessionsPerHost(maxSessions: 10_000) == 4096)
        #expect(l.sessionsPerHost(maxSessions: 1000) == 1000)
        l.maxSessionsPerHost = 0
        #expect(l.sessionsPerHost(maxSessions: 262_144) == nil)
        l.maxSessionsPerHost = 7
        #expect(l.sessionsPerHost(maxSessions: 262_144) == 7)
        // In force: with a 64k table, one host gets 4096 sessions and the next is refused.
        var e = engine(config { $0.maxSessions = 65_536; $0.limits.newSessionsPerSecond = 0 })
        for p in 0..<4096 { _ = send(&e, udp(clientA, UInt16(1024 + p), serverX, 9), at: 1.0) }
        #expect(send(&e, udp(clientA, 6000, serverX, 9), at: 1.0).0 == .drop(.hostSessionLimit))
        #expect(send(&e, udp(clientB, 6000, serverX, 9), at: 1.0).0 == .toOutside)
    }
}
