import Testing
import NATCore
import NATWire
@testable import NAT64

/// Restart without loss (issue 12) for stateful NAT64: BIB entries, sessions (TCP state included) and
/// held IPv4 ports exported at a clean stop and imported into a fresh translator, with the downtime added.
@Suite struct StatefulPersistenceTests {
    static let static6 = IPv6Address("2001:db8:6::9")!

    static func makeWithStatic() -> NAPT64Translator {
        makeStateful { $0.staticBindings = [NAT64StaticBinding(proto: .udp, ipv6: static6, ipv6Port: 7000, ipv4: poolFirst, ipv4Port: 7000)] }
    }

    /// UDP (two sessions on one BIB entry), established TCP, ICMP echo, a session of a static BIB entry,
    /// and a held port.
    static func populated() -> NAPT64Translator {
        var t = makeWithStatic()
        _ = run(&t, udp6(host6b, 6000, server6, 123), at: at(1))
        _ = expire(&t, at: at(301))      // host6b's entry ends: its port is held
        _ = run(&t, udp6(host6, 5000, server6, 53), at: at(310))
        _ = run(&t, udp6(host6, 5000, server6b, 53), at: at(311))
        _ = run(&t, tcp6([.syn]), at: at(312))
        let b = bib(t, .tcp, host6, 40000)!
        _ = run(&t, tcp4(server4, 80, b.ipv4, b.ipv4Port, [.syn, .ack], seq: 5000, ack: 1001), at: at(312))
        _ = run(&t, tcp6([.ack], seq: 1001, ack: 5001), at: at(312))
        _ = run(&t, PacketBuilder.echo6(source: host6, destination: server6, identifier: 99), at: at(313))
        _ = run(&t, udp6(static6, 7000, server6, 53), at: at(314))
        return t
    }

    @Test func restart_nat64RoundTripsEverySessionKind() {
        let a = Self.populated()
        let saved = a.mapping.exportState(now: at(320))
        #expect(saved.sessions.count == 5 && saved.holds.count == 1)
        var b = Self.makeWithStatic()
        let r = b.mapping.importState(saved, elapsedSeconds: 0, now: at(50_000))
        #expect(r.sessionsRestored == 5 && r.holdsRestored == 1 && r.skippedTotal == 0, "\(r.summary)")
        #expect(b.mapping.exportState(now: at(50_000)) == saved)
        #expect(b.mapping.bindingCount == a.mapping.bindingCount && b.mapping.hostCount == a.mapping.hostCount)
        #expect(b.mapping.session(.tcp, ipv6: host6, port: 40000, remote: server4, remotePort: 80, now: at(50_000))?.tcpState == .established)
        // Traffic from the IPv4 side reaches the IPv6 host through the restored entry, and no state is made.
        let ub = bib(a, .udp, host6, 5000)!
        let back = run(&b, udp4(server4, 53, ub.ipv4, ub.ipv4Port), at: at(50_000))
        #expect(back.verdict.isForwarded)
        let tb = bib(a, .tcp, host6, 40000)!
        #expect(run(&b, tcp4(server4, 80, tb.ipv4, tb.ipv4Port, [.ack], seq: 5001, ack: 1001), at: at(50_000)).verdict.isForwarded)
        #expect(b.mapping.counters.sessionsCreated == 0)
    }

    @Test func restart_nat64TimersContinueFromElapsedTimeAndExpiredEntriesAreDropped() {
        var a = makeStateful()
        _ = run(&a, udp6(host6, 5000, server6, 53), at: at(0))
        _ = run(&a, udp6(host6b, 6000, server6, 53), at: at(200))
        let saved = a.mapping.exportState(now: at(250))   // idle 250 and 50
        var b = makeStateful()
        let r = b.mapping.importState(saved, elapsedSeconds: 100, now: at(1000))
        #expect(r.sessionsRestored == 1 && r.skipped[.expired] == 1, "\(r.summary)")
        _ = expire(&b, at: at(1149))
        #expect(b.mapping.sessionCount == 1)
        _ = expire(&b, at: at(1150))
        #expect(b.mapping.sessionCount == 0 && b.mapping.heldPortCount == 1)
    }

    @Test func restart_nat64EntriesOutsideTheNewPoolAreSkipped() {
        let saved = Self.populated().mapping.exportState(now: at(320))
        var b = makeStateful { $0.pool = [IPv4Prefix("198.51.100.128/30")!] }
        let r = b.mapping.importState(saved, elapsedSeconds: 0, now: at(400))
        #expect(r.sessionsRestored == 0 && r.skipped[.outsideNotInPool] == 6, "\(r.summary)")
        var noStatic = makeStateful()
        let r2 = noStatic.mapping.importState(saved, elapsedSeconds: 0, now: at(400))
        #expect(r2.sessionsRestored == 4 && r2.skipped[.noForward] == 1, "\(r2.summary)")
    }
}
