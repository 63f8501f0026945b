import NATWire
import Testing
@testable import STUN

@Suite struct STUNTransportTests {
    /// RFC 8489 §6.2.1: with RTO 500 ms, Rc 7, Rm 16, requests leave at 0, 500, 1500, 3500, 7500, 15500,
    /// 31500 ms and the transaction fails at 39500 ms.
    @Test func rfc8489_6_2_1_retransmissionSchedule() {
        var r = STUNRetransmission()
        var sends: [Int] = []
        var failedAt: Int? = nil
        var t = 0
        while t <= 45_000 {
            switch r.poll(now: .milliseconds(t)) {
            case .send: sends.append(t)
            case .wait(let until): #expect(until > .milliseconds(t))
            case .timedOut: if failedAt == nil { failedAt = t }
            }
            t += 100
        }
        #expect(sends == [0, 500, 1500, 3500, 7500, 15500, 31500])
        #expect(failedAt == 39500)
        #expect(STUNRetransmission().totalTimeout == .milliseconds(39500))
    }

    /// RFC 8489 §6.2.1: other Rc/Rm/RTO values follow the same rule; `wait` names the next deadline.
    @Test func rfc8489_6_2_1_customSchedule() {
        var r = STUNRetransmission(rto: .milliseconds(100), rc: 3, rm: 4)
        #expect(r.poll(now: .zero) == .send)
        #expect(r.poll(now: .milliseconds(50)) == .wait(until: .milliseconds(100)))
        #expect(r.poll(now: .milliseconds(100)) == .send)
        #expect(r.poll(now: .milliseconds(299)) == .wait(until: .milliseconds(300)))
        #expect(r.poll(now: .milliseconds(300)) == .send)
        #expect(r.poll(now: .milliseconds(699)) == .wait(until: .milliseconds(700)))
        #expect(r.poll(now: .milliseconds(700)) == .timedOut)
        #expect(r.totalTimeout == .milliseconds(700))
        var once = STUNRetransmission(rto: .milliseconds(100), rc: 1, rm: 2)
        #expect(once.poll(now: .seconds(5)) == .send)
        #expect(once.poll(now: .seconds(5) + .milliseconds(200)) == .timedOut)
    }

    /// RFC 8489 §7.2.2: over TCP, messages follow each other on the stream; they come out whole whatever
    /// the chunking, and a bad header on the stream is refused.
    @Test func rfc8489_7_2_2_tcpFraming() throws {
        let a = STUNMessage.bindingSuccess(id: STUNTransactionID(1, 0, 0), mapped: STUNEndpoint(IPv4Address(198, 51, 100, 1), 1))
        let b = STUNMessage.bindingError(id: STUNTransactionID(2, 0, 0), code: 400, reason: "Bad Request")
        let stream = a.encode(fingerprint: true) + b.encode() + Fixtures.rfc5769IPv4Response
        for chunk in [1, 3, 7, 20, 1000] {
            var f = STUNStreamFramer()
            var out: [STUNMessage] = []
            var i = 0
            while i < stream.count {
                f.append(stream[i..<min(stream.count, i + chunk)])
                i += chunk
                while let m = try f.next() { out.append(m) }
            }
            #expect(out.count == 3 && out[0].transactionID == a.transactionID && out[1] == b && out[2].transactionID == Fixtures.rfc5769ID)
            #expect(f.bufferedCount == 0)
        }
        var f = STUNStreamFramer()
        f.append([0x47, 0x45, 0x54, 0x20] + [UInt8](repeating: 0x41, count: 20))  // "GET AAAA…": an HTTP server, not STUN
        #expect(throws: STUNError.self) { try f.next() }
    }

    /// NATMap's IP4P: 2001::{port}:{ipv4-hi16}:{ipv4-lo16}, every group zero-padded in text.
    @Test func ip4p_bothWays() throws {
        let a = IPv4Address(198, 51, 100, 1)
        #expect(IP4P.text(a, port: 1549) == "2001::060d:c633:6401")
        #expect(IP4P.encode(a, port: 1549) == IPv6Address("2001::60d:c633:6401"))
        #expect(IP4P.text(IPv4Address(203, 0, 113, 7), port: 53906) == "2001::d292:cb00:7107")
        #expect(IP4P.text(IPv4Address(0, 0, 0, 1), port: 1) == "2001::0001:0000:0001")
        let back = try #require(IP4P.parse("2001::060d:c633:6401"))
        #expect(back.address == a && back.port == 1549)
        let compressed = try #require(IP4P.parse("2001:0:0:0:0:d292:cb00:7107"))
        #expect(compressed.address == IPv4Address(203, 0, 113, 7) && compressed.port == 53906)
        #expect(IP4P.parse("2001:db8::60d:c633:6401") == nil)
        #expect(IP4P.parse("2001::1:60d:c633:6401") == nil)
        #expect(IP4P.parse("not an address") == nil)
        for (addr, port) in [(IPv4Address(100, 64, 0, 2), UInt16(0)), (IPv4Address(255, 255, 255, 255), 65535)] {
            let r = try #require(IP4P.parse(IP4P.text(addr, port: port)))
            #expect(r.address == addr && r.port == port)
        }
    }

    /// RFC 5780 §4.3 and §4.4: the verdicts from the tests' results.
    @Test func rfc5780_4_3_classification() {
        let local = STUNEndpoint(IPv4Address(100, 64, 0, 2), 4000)
        let m1 = STUNEndpoint(IPv4Address(198, 51, 100, 1), 5000)
        let m2 = STUNEndpoint(IPv4Address(198, 51, 100, 1), 5001)
        let m3 = STUNEndpoint(IPv4Address(198, 51, 100, 1), 5002)
        #expect(NATMappingBehavior.classify(local: local, testI: local, testII: local, testIII: local) == .noNAT)
        #expect(NATMappingBehavior.classify(local: local, testI: m1, testII: m1, testIII: m1) == .endpointIndependent)
        #expect(NATMappingBehavior.classify(local: local, testI: m1, testII: m2, testIII: m2) == .addressDependent)
        #expect(NATMappingBehavior.classify(local: local, testI: m1, testII: m2, testIII: m3) == .addressAndPortDependent)
        #expect(NATFilteringBehavior.classify(testIIAnswered: true, testIIIAnswered: false) == .endpointIndependent)
        #expect(NATFilteringBehavior.classify(testIIAnswered: false, testIIIAnswered: true) == .addressDependent)
        #expect(NATFilteringBehavior.classify(testIIAnswered: false, testIIIAnswered: false) == .addressAndPortDependent)
    }

    /// RFC 5780 §4.6: the lifetime binary search doubles until a mapping dies, then halves the interval.
    @Test func rfc5780_4_6_lifetimeSearch() {
        var s = LifetimeSearch(maximum: .seconds(120), resolution: .seconds(1))
        let lifetime = Duration.seconds(30)
        var tried: [Duration] = []
        while let t = s.next, tried.count < 50 {
            tried.append(t)
            s.record(idle: t, alive: t < lifetime)
        }
        #expect(tried.prefix(6) == [.seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(16), .seconds(32)])
        #expect(s.alive < lifetime && s.dead! >= lifetime && s.dead! - s.alive <= .seconds(1))
        var forever = LifetimeSearch(maximum: .seconds(10))
        while let t = forever.next { forever.record(idle: t, alive: true) }
        #expect(forever.alive == .seconds(10) && forever.dead == nil)
    }
}
