import Testing
import NATWire
import NATCore
import NAPT44

@Suite("RFC 6887 §12: PCP PEER in the NAT44 engine")
struct PeerTests {
    @Test("RFC 6887 §12.3: PEER creates the session before any packet; the flow then leaves from the answered port and the peer's answer gets in")
    func rfc6887_12_3_peerCreatesTheSessionTheFlowThenUses() throws {
        var e = engine(config(.portRestrictedCone))
        let m = try #require(try e.peer(proto: IPProtocol.udp, inside: clientA, insidePort: 5000, remote: serverX, remotePort: 3478,
                                        create: true, now: .seconds(10)))
        #expect(m.created && m.outsideAddress == poolP && m.outsidePort == 5000)
        #expect(m.lifetime == Timeouts().udp)
        #expect(e.table.sessionCount == 1 && e.counters.sessionsCreated == 1)
        // Port-restricted filtering: the remote peer may send first now (the PEER session admits it).
        let (v, back) = send(&e, udp(serverX, 3478, poolP, 5000), at: 11)
        #expect(v == .toInside(tenant: 0) && back == udp(serverX, 3478, clientA, 5000))
        // Another remote is still filtered.
        #expect(send(&e, udp(serverY, 3478, poolP, 5000), at: 11).0 != .toInside(tenant: 0))
        // The flow's packets use the answered external endpoint.
        #expect(openUDP(&e, clientA, 5000, serverX, 3478, at: 12) == (poolP, 5000))
        #expect(e.table.sessionCount == 1)
    }

    @Test("RFC 6887 §12.3: PEER on an existing session keeps its external port and restarts its idle timer; without create it only looks")
    func rfc6887_12_3_peerExtendsAnExistingSession() throws {
        var e = engine(config(.portRestrictedCone))
        // Port 5000 is taken by another host's flow: clientB then gets another port for its own 5000.
        _ = openUDP(&e, clientA, 5000, serverY, 1, at: 0)
        let (_, port) = openUDP(&e, clientB, 5000, serverX, 3478, at: 0)
        #expect(port != 5000)
        let looked = try #require(try e.peer(proto: IPProtocol.udp, inside: clientB, insidePort: 5000, remote: serverX, remotePort: 3478,
                                             create: false, now: .seconds(100)))
        #expect(!looked.created && looked.outsidePort == port && looked.lifetime == Timeouts().udp - 100)
        let m = try #require(try e.peer(proto: IPProtocol.udp, inside: clientB, insidePort: 5000, remote: serverX, remotePort: 3478,
                                        create: true, now: .seconds(100)))
        #expect(!m.created && m.outsidePort == port && m.lifetime == Timeouts().udp)
        // Kept past the first idle timeout by the PEER refresh (clientA's unrefreshed session ends), gone after the second.
        e.expire(now: .seconds(Double(Timeouts().udp) + 50))
        #expect(e.table.sessionCount == 1)
        #expect(try e.peer(proto: IPProtocol.udp, inside: clientB, insidePort: 5000, remote: serverX, remotePort: 3478,
                           create: false, now: .seconds(Double(Timeouts().udp) + 50))?.lifetime == 50)
        e.expire(now: .seconds(Double(Timeouts().udp) + 101))
        #expect(e.table.sessionCount == 0)
        // Nothing there and not asked to create: nil, and nothing made.
        #expect(try e.peer(proto: IPProtocol.udp, inside: clientB, insidePort: 5000, remote: serverX, remotePort: 3478,
                           create: false, now: .seconds(1000)) == nil)
        #expect(e.table.sessionCount == 0)
    }

    @Test("RFC 6887 §12: a TCP PEER session is as after an outbound SYN; the SYN then goes out on the answered port")
    func rfc6887_12_tcpPeerThenSYN() throws {
        var e = engine(config(.portRestrictedCone))
        let m = try #require(try e.peer(proto: IPProtocol.tcp, inside: clientA, insidePort: 40000, remote: serverX, remotePort: 443,
                                        create: true, now: .seconds(1)))
        #expect(m.lifetime == Timeouts().tcpTransitory)
        let (v, out) = send(&e, tcp(clientA, 40000, serverX, 443, .syn), at: 2)
        #expect(v == .toOutside && parse(out).sourcePort == m.outsidePort && parse(out).source == m.outsideAddress)
        #expect(e.table.sessionCount == 1)
    }

    @Test("RFC 6887 §12.3, RFC 6888 REQ-11: PEER meets the NAT's limits (ports per host) and never evicts; bad arguments are refused")
    func rfc6887_12_3_peerLimits() throws {
        var e = engine(config { $0.limits.maxPortsPerHost = 1 })
        _ = try e.peer(proto: IPProtocol.udp, inside: clientA, insidePort: 1, remote: serverX, remotePort: 1, create: true, now: .seconds(1))
        #expect(throws: DropReason.hostPortLimit) {
            try e.peer(proto: IPProtocol.udp, inside: clientA, insidePort: 2, remote: serverX, remotePort: 1, create: true, now: .seconds(1))
        }
        #expect(throws: DropReason.unsupportedProtocol) {
            try e.peer(proto: IPProtocol.icmp, inside: clientA, insidePort: 2, remote: serverX, remotePort: 1, create: true, now: .seconds(1))
        }
        #expect(throws: DropReason.notNATTraffic) {
            try e.peer(proto: IPProtocol.udp, inside: serverY, insidePort: 2, remote: serverX, remotePort: 1, create: true, now: .seconds(1))
        }
        #expect(e.table.sessionCount == 1)
    }
}
