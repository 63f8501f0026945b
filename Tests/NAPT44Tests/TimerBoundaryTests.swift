import Testing
import NATWire
import NATCore
import NAPT44

/// Issue 11: an idle timer never ends a session before its configured time has fully passed, whatever
/// the fraction of a second the last packet came at (the last use is recorded rounded up, expiry compares
/// with the clock rounded down: a session ends between `timeout` and `timeout + 1` s after its last packet).
/// Each test sends its last packet just before a second turns over, where whole-second truncation used to
/// cut up to 0.999 s off the idle time.
@Suite("Timers never fire early (RFC 4787 REQ-5, RFC 5382 REQ-5, RFC 5508 REQ-1)")
struct TimerBoundaryTests {
    @Test func rfc4787_req5_udpNeverExpiresBeforeItsTimeout() {
        var e = engine(config())
        let (a, p) = openUDP(&e, clientA, 5000, serverX, 53, at: 0.999)
        e.expire(now: .seconds(300.998))                       // idle 299.999 s
        #expect(e.sessionCount == 1)
        #expect(send(&e, udp(serverX, 53, a, p), at: 300.998).0 == .toInside(tenant: 0))
        e.expire(now: .seconds(301.999))                       // idle 301 s: gone, at most a second late
        #expect(e.sessionCount == 0)
        // A refresh that takes the established fast path (touch) rounds up too.
        var f = engine(config())
        _ = openUDP(&f, clientA, 5000, serverX, 53, at: 0)
        #expect(send(&f, udp(clientA, 5000, serverX, 53), at: 100.001).0 == .toOutside)
        f.expire(now: .seconds(400.0))                          // idle 299.999 s
        #expect(f.sessionCount == 1)
        f.expire(now: .seconds(401.0))
        #expect(f.sessionCount == 0)
    }

    @Test func rfc4787_req5_udpMinimumTwoMinutesHoldsToTheMillisecond() {
        var e = engine(config { $0.timeouts.udp = 120 })
        _ = openUDP(&e, clientA, 5000, serverX, 53, at: 7.5)
        e.expire(now: .seconds(127.499))
        #expect(e.sessionCount == 1)
        e.expire(now: .seconds(128.5))
        #expect(e.sessionCount == 0)
    }

    @Test func rfc5382_req5_tcpEstablishedNeverExpiresBeforeTwoHoursFourMinutes() {
        var e = engine(config())
        _ = send(&e, tcp(clientA, 5000, serverX, 80, [.syn]), at: 0.2)
        _ = send(&e, tcp(serverX, 80, poolP, 5000, [.syn, .ack]), at: 0.5)
        _ = send(&e, tcp(clientA, 5000, serverX, 80, [.ack]), at: 0.9)
        #expect(e.sessions().first?.tcpState == .established)
        _ = send(&e, tcp(clientA, 5000, serverX, 80, [.ack]), at: 10.999)   // fast path
        e.expire(now: .seconds(10.999 + 7440 - 0.001))
        #expect(e.sessionCount == 1)
        e.expire(now: .seconds(10.999 + 7441))
        #expect(e.sessionCount == 0)
    }

    @Test func rfc5508_req1_icmpQueryNeverExpiresBeforeSixtySeconds() {
        var e = engine(config())
        _ = send(&e, PacketBuilder.echo4(source: clientA, destination: serverX, identifier: 77), at: 0.999)
        e.expire(now: .seconds(60.998))
        #expect(e.sessionCount == 1)
        _ = send(&e, PacketBuilder.echo4(source: clientA, destination: serverX, identifier: 77), at: 30.4)
        e.expire(now: .seconds(90.399))
        #expect(e.sessionCount == 1)
        e.expire(now: .seconds(91.4))
        #expect(e.sessionCount == 0)
    }
}
