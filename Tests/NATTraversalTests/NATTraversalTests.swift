#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NATWire
import STUN
import Testing
@testable import NATTraversal

/// A datagram socket pair standing in for client and server (no network: the client's socket is
/// "connected", so answers need no address).
func socketPair() -> (client: Socket, server: Socket) {
    var fds: [Int32] = [0, 0]
    precondition(socketpair(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0, &fds) == 0)
    return (Socket(fd: fds[0], family: AF_INET, tcp: false), Socket(fd: fds[1], family: AF_INET, tcp: false))
}

@Suite struct NATTraversalTests {
    /// RFC 8489 §6.3: malformed and hostile answers are discarded with a reason, and the transaction
    /// still takes the good answer that follows.
    @Test func rfc8489_6_3_hostileAnswersRefusedWithAReason() throws {
        let (client, server) = socketPair()
        let request = STUNMessage.bindingRequest(id: STUNTransactionID(1, 2, 3))
        let mapped = STUNEndpoint(IPv4Address(198, 51, 100, 1), 40000)
        var badFingerprint = STUNMessage.bindingSuccess(id: request.transactionID, mapped: mapped).encode(fingerprint: true)
        badFingerprint[badFingerprint.count - 1] ^= 1
        let hostile: [[UInt8]] = [
            Array("HTTP/1.1 200 OK\r\n\r\n".utf8),                                                    // not STUN
            Array(STUNMessage.bindingSuccess(id: request.transactionID, mapped: mapped).encode().prefix(25)), // truncated
            STUNMessage.bindingSuccess(id: STUNTransactionID(9, 9, 9), mapped: mapped).encode(),      // another transaction
            badFingerprint,
            STUNMessage.bindingSuccess(id: request.transactionID, mapped: STUNEndpoint(IPv4Address(0), 40000)).encode(),
            STUNMessage(type: .bindingSuccess, transactionID: request.transactionID,
                        attributes: [.xorMappedAddress(mapped), .other(type: 0x7F00, value: [0, 0, 0, 0])]).encode(),
            STUNMessage.bindingSuccess(id: request.transactionID, mapped: STUNEndpoint(IPv6Address("2001:db8::1")!, 40000)).encode(),
            STUNMessage.bindingSuccess(id: request.transactionID, mapped: mapped).encode(),              // the good one
        ]
        Thread.detachNewThread {
            _ = try? server.wait(timeout: .seconds(5))
            _ = try? server.receive()
            for h in hostile { _ = try? server.send(h) }
        }
        var reasons: [String] = []
        let answer = try stunTransaction(socket: client, to: nil, request: request,
                                         timing: STUNRetransmission(rto: .milliseconds(500), rc: 2, rm: 4)) { e, _ in reasons.append(e.reason) }
        #expect(answer.response.mapped == mapped)
        #expect(reasons == ["not_stun", "truncated", "transaction_mismatch", "fingerprint_mismatch", "unusable_mapped_address",
                            "unknown_comprehension_required", "unusable_mapped_address"])
    }

    /// RFC 8489 §6.3.4: an error response ends the transaction at once with its code and reason.
    @Test func rfc8489_6_3_4_errorResponseEndsTheTransaction() throws {
        let (client, server) = socketPair()
        let request = STUNMessage.bindingRequest(id: STUNTransactionID(4, 5, 6))
        Thread.detachNewThread {
            _ = try? server.wait(timeout: .seconds(5))
            _ = try? server.receive()
            _ = try? server.send(STUNMessage.bindingError(id: request.transactionID, code: 400, reason: "Bad Request").encode())
        }
        #expect {
            try stunTransaction(socket: client, to: nil, request: request)
        } throws: { e in
            guard case STUNClientError.refused(_, .errorResponse(400, "Bad Request")) = e else { return false }
            return true
        }
    }

    /// RFC 8489 §6.2.1: no answer at all times out after the schedule, and the requests were retransmitted.
    @Test func rfc8489_6_2_1_timesOutAfterTheSchedule() throws {
        let (client, server) = socketPair()
        let start = monotonicNow()
        #expect(throws: STUNClientError.self) {
            try stunTransaction(socket: client, to: nil, request: .bindingRequest(id: .random()),
                                timing: STUNRetransmission(rto: .milliseconds(50), rc: 3, rm: 2))
        }
        let took = monotonicNow() - start
        #expect(took >= .milliseconds(250) && took < .seconds(3), "\(took)")
        var requests = 0
        while (try? server.wait(timeout: .zero)) == true, (try? server.receive()) != nil { requests += 1 }
        #expect(requests == 3)
    }

    /// NATMap's -b and -f spellings.
    @Test func natmapBindPortAndMarkSpellings() {
        #expect(BindPort("0") == .any && BindPort("8080") == .fixed(8080))
        #expect(BindPort("10000~10010") == .randomIn(10000...10010) && BindPort("10000-10010") == .nextFreeIn(10000...10010))
        #expect(BindPort("10-5") == nil && BindPort("x") == nil && BindPort("70000") == nil && BindPort("0-5") == nil)
        #expect(MapConfiguration.parseMark("0x1f") == 31 && MapConfiguration.parseMark("017") == 15 && MapConfiguration.parseMark("17") == 17)
        #expect(MapConfiguration.parseMark("0") == 0 && MapConfiguration.parseMark("0x") == nil && MapConfiguration.parseMark("09") == nil)
        var c = MapConfiguration()
        #expect(c.problem()?.contains("-s") == true)
        c.stunServers = ["203.0.113.2"]
        #expect(c.problem()?.contains("-h") == true)
        c.udp = true
        #expect(c.problem() == nil)
        c.interface = "2001:db8::1"
        #expect(c.problem()?.contains("IPv4") == true)
    }

    /// The six script arguments in NATMap's order, IP4P zero-padded; a keep-alive with the same mapping is no change.
    @Test func natmapScriptArguments() {
        let m = MappingInfo(public: STUNEndpoint(IPv4Address(198, 51, 100, 1), 1549), bindPort: 40000, protocol: "udp",
                            privateAddress: "100.64.0.2", stunServer: "203.0.113.2:3478")
        #expect(m.scriptArguments == ["198.51.100.1", "1549", "2001::060d:c633:6401", "40000", "udp", "100.64.0.2"])
        var other = m
        other.stunServer = "203.0.113.3:3478"
        #expect(m.sameMapping(as: other))
        other.publicPort = 1550
        #expect(!m.sameMapping(as: other))
    }

    /// Exponential backoff: doubles to the maximum, starts over after a success.
    @Test func backoffDoublesAndResets() {
        var b = Backoff(initial: .seconds(1), maximum: .seconds(8))
        #expect((0..<6).map { _ in b.failed() } == [.seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(8), .seconds(8)])
        b.succeeded()
        #expect(b.failed() == .seconds(1))
    }
}
