import Testing
import NATCore
import NATWire
@testable import NAT64

/// Issue 11: stateful NAT64's session timers (RFC 6146 §4: UDP_MIN 2 min, TCP_EST 2 h 4 min, ICMP 60 s,
/// the same minimums as RFC 4787 REQ-5, RFC 5382 REQ-5 and RFC 5508 REQ-1) never end a session before
/// its configured idle time has fully passed, whatever the fraction of a second of its last packet.
@Suite struct StatefulTimerBoundaryTests {
    @Test func rfc6146_4_rfc4787_req5_udpNeverExpiresEarly() {
        var t = makeStateful()
        _ = run(&t, udp6(), at: at(0.999))
        _ = expire(&t, at: at(300.998))
        let first = session(t, .udp, host6, 5000, server4, 53)
        #expect(first != nil)
        _ = run(&t, udp6(), at: at(200.001))                 // a refresh on the fast path
        _ = expire(&t, at: at(500.0))
        let s1 = session(t, .udp, host6, 5000, server4, 53)
        #expect(s1 != nil)
        _ = expire(&t, at: at(501.0))
        let s2 = session(t, .udp, host6, 5000, server4, 53)
        #expect(s2 == nil)
    }

    @Test func rfc6146_4_rfc5382_req5_tcpEstablishedNeverExpiresEarly() throws {
        var t = makeStateful()
        _ = run(&t, tcp6([.syn]), at: at(0.1))
        let found = bib(t, .tcp, host6, 40000)
        let b = try #require(found)
        _ = run(&t, tcp4(server4, 80, b.ipv4, b.ipv4Port, [.syn, .ack]), at: at(0.2))
        _ = run(&t, tcp6([.ack]), at: at(0.999))
        _ = expire(&t, at: at(0.999 + 7440 - 0.001))
        let s3 = session(t, .tcp, host6, 40000, server4, 80)
        #expect(s3?.tcpState == .established)
    }

    @Test func rfc6146_4_rfc5508_req1_icmpNeverExpiresEarly() {
        var t = makeStateful()
        _ = run(&t, PacketBuilder.echo6(source: host6, destination: server6, identifier: 3), at: at(0.999))
        _ = expire(&t, at: at(60.998))
        let s4 = session(t, .icmp, host6, 3, server4, 0)
        #expect(s4 != nil)
        _ = expire(&t, at: at(62))
        let s5 = session(t, .icmp, host6, 3, server4, 0)
        #expect(s5 == nil)
    }
}
